"""Words the question writes one way and the corpus another: joined ("Sky Drive" for SkyDrive), as
initials ("European Union" for EU) or apart ("ceasefire" for cease-fire). Pure: vocabulary lookups."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import pairwise

from qabot.analyze import term_of

Span = tuple[int, int, str]  # start, end and term of a question word (analyze.term_spans)
MAX_INITIALS = 6  # the longest run of capitalised words whose initials are looked up


def joined_words(question: str, spans: Sequence[Span], term_ids: Mapping[str, int]) -> dict[str, list[int]]:
    """Term -> ids of the corpus terms its word forms with the next or previous word written as one,
    when the two are split by one space or hyphen ("Sky Drive", "cease-fire" -> skydrive, ceasefire)."""
    return _found(_joined(question, spans), term_ids)


def initials(question: str, spans: Sequence[Span], term_ids: Mapping[str, int]) -> dict[str, list[int]]:
    """Term -> ids of the corpus terms spelled by the initials of a run of capitalised words its word
    is in ("European Union" -> eu, "World War II" -> wwii)."""
    return _found(_initials(question, spans), term_ids)


def _found(wholes: Iterator[tuple[tuple[str, ...], str]], term_ids: Mapping[str, int]) -> dict[str, list[int]]:
    """Term -> ids of the corpus terms that the words written as one make, for each of their terms."""
    found: dict[str, list[int]] = {}
    for terms, whole in wholes:
        term = term_of(whole)
        whole_id = term_ids.get(term) if term else None
        if whole_id is None:
            continue
        for word_term in terms:
            ids = found.setdefault(word_term, [])
            if whole_id not in ids:
                ids.append(whole_id)
    return found


def split_words(word: str, term_ids: Mapping[str, int]) -> list[tuple[int, int]]:
    """Ids of the pairs of corpus terms a word splits into, most even split first
    ("ceasefire" -> cease + fire)."""
    pairs = []
    for cut in sorted(range(1, len(word)), key=lambda cut: (abs(len(word) - 2 * cut), cut)):
        left, right = term_of(word[:cut]), term_of(word[cut:])
        left_id = term_ids.get(left) if left else None
        right_id = term_ids.get(right) if right else None
        if left_id is not None and right_id is not None:
            pairs.append((left_id, right_id))
    return pairs


def _joined(question: str, spans: Sequence[Span]) -> Iterator[tuple[tuple[str, ...], str]]:
    """Each pair of neighbouring words split by one space or hyphen, and the two written as one."""
    for (start, middle, first), (after, end, second) in pairwise(spans):
        if question[middle:after] in (" ", "-"):
            yield (first, second), question[start:middle] + question[after:end]


def _initials(question: str, spans: Sequence[Span]) -> Iterator[tuple[tuple[str, ...], str]]:
    """Each run of two to MAX_INITIALS capitalised words split by single spaces, and its initials
    (a word in capitals gives all its letters: the II of World War II)."""
    runs: list[list[Span]] = []
    for span in spans:
        if not question[span[0]].isupper():
            continue
        if runs and question[runs[-1][-1][1] : span[0]] == " ":
            runs[-1].append(span)
        else:
            runs.append([span])
    for run in runs:
        for first in range(len(run)):
            for stop in range(first + 2, min(len(run), first + MAX_INITIALS) + 1):
                words = [question[start:end] for start, end, _ in run[first:stop]]
                initials = "".join(word if word.isupper() else word[0] for word in words)
                yield tuple(term for _, _, term in run[first:stop]), initials
