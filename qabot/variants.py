"""Spelling variants: vocabulary terms within a small edit distance of a query term."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_LENGTH = 4  # shorter terms have too many one-letter neighbours to guess from
_BEGIN, _END = 0x110000, 0x110001  # padding code points, outside Unicode


def max_distance(term: str) -> int:
    """How many edits a variant of `term` may be away: 1 from 4 letters, 2 from 8."""
    if len(term) < MIN_LENGTH or term.isdigit():
        return 0
    return 1 if len(term) < 8 else 2


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether one substitution, insertion, deletion or adjacent swap turns a into b (a != b)."""
    if len(a) > len(b):
        a, b = b, a
    prefix = 0
    while prefix < len(a) and a[prefix] == b[prefix]:
        prefix += 1
    if len(a) == len(b):
        rest = prefix + 1
        if a[rest:] == b[rest:]:
            return True
        return a[prefix + 2 :] == b[prefix + 2 :] and a[prefix : prefix + 2] == b[prefix : prefix + 2][::-1]
    return len(b) - len(a) == 1 and a[prefix:] == b[prefix + 1 :]


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (Damerau-Levenshtein with adjacent swaps), capped at limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    if a == b:
        return 0
    if _one_edit_apart(a, b):
        return 1
    if limit == 1:
        return 2
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return min(previous[-1], limit + 1)


def _bigram_codes(term: str) -> set[int]:
    points = [_BEGIN, *map(ord, term), _END]
    return {points[i] * (_END + 1) + points[i + 1] for i in range(len(points) - 1)}


class VariantFinder:
    """Bigram-filtered edit-distance search over a vocabulary (Ukkonen's q-gram lemma).

    The bigram posting lists are built with numpy in one pass over a fixed-width
    copy of the vocabulary, so even a 200,000-term vocabulary is ready in well under a second.
    """

    def __init__(self, vocab: Sequence[str]) -> None:
        self._vocab = vocab
        width = max((len(term) for term in vocab), default=1)
        chars = np.array(vocab, dtype=f"<U{width}").view(np.uint32).reshape(len(vocab), width).astype(np.int64)
        self._lengths = (chars > 0).sum(axis=1)
        padded = np.zeros((len(vocab), width + 2), dtype=np.int64)
        padded[:, 0] = _BEGIN
        padded[:, 1 : width + 1] = chars
        padded[np.arange(len(vocab)), self._lengths + 1] = _END
        codes = padded[:, :-1] * (_END + 1) + padded[:, 1:]
        valid = np.arange(width + 1)[None, :] <= self._lengths[:, None]
        term_ids = np.broadcast_to(np.arange(len(vocab))[:, None], codes.shape)[valid]
        pairs = np.unique(np.stack([codes[valid], term_ids]), axis=1)  # a term counts a bigram once
        self._codes, starts = np.unique(pairs[0], return_index=True)
        self._ptr = np.append(starts, pairs.shape[1])
        self._terms = pairs[1].astype(np.int32)
        self._gram_counts = np.bincount(self._terms, minlength=len(vocab))
        self._first = chars[:, 0] if width else np.zeros(len(vocab), dtype=np.int64)

    def find(self, term: str, limit: int = 3) -> list[tuple[int, int]]:
        """Up to `limit` (term id, distance) pairs of vocabulary terms close to term, closest first.

        Variants share the first letter (misspellings rarely touch it; keeps seek and week apart).
        """
        budget = max_distance(term)
        if not budget or not len(self._codes):
            return []
        grams = _bigram_codes(term)
        wanted = np.fromiter(grams, dtype=np.int64, count=len(grams))
        at = np.searchsorted(self._codes, wanted)
        at = at[(at < len(self._codes)) & (self._codes[np.minimum(at, len(self._codes) - 1)] == wanted)]
        if not len(at):
            return []
        hits = np.concatenate([self._terms[self._ptr[i] : self._ptr[i + 1]] for i in at])
        shared = np.bincount(hits, minlength=len(self._vocab))
        # Each edit destroys at most two bigrams of either word.
        close = np.nonzero(
            (shared >= np.maximum(self._gram_counts, len(grams)) - 2 * budget)
            & (np.abs(self._lengths - len(term)) <= budget)
            & (self._first == ord(term[0]))
        )[0]
        found = []
        for term_id in close.tolist():
            candidate = self._vocab[term_id]
            if candidate != term:
                distance = edit_distance(term, candidate, budget)
                if distance <= budget:
                    found.append((distance, candidate, term_id))
        found.sort()
        return [(term_id, distance) for distance, _, term_id in found[:limit]]
