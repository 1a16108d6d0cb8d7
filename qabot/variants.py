"""Spelling variants: vocabulary terms within a small edit distance of a query term."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qabot.arrays import run_starts

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


@dataclass(frozen=True, slots=True)
class BigramTable:
    """Which vocabulary terms hold each character bigram (the word padded with begin and end marks).

    Terms holding bigram codes[g] are terms[ptr[g]:ptr[g + 1]], ascending; per term: its distinct
    bigrams, its length and its first code point. Plain arrays, so the index stores them as .npy.
    """

    codes: np.ndarray  # int64[G], ascending
    ptr: np.ndarray  # int64[G + 1]
    terms: np.ndarray  # int32[E]
    term_grams: np.ndarray  # int32[V]
    term_length: np.ndarray  # int32[V]
    term_first: np.ndarray  # int32[V]


def bigram_table(vocab: Sequence[str]) -> BigramTable:
    """The BigramTable of a vocabulary, from one sort of (bigram, term) keys packed into int64."""
    lengths = np.fromiter(map(len, vocab), dtype=np.int64, count=len(vocab))
    # Every term in one UTF-32 run, each preceded by a separator (code 0; terms hold no control characters).
    points = np.frombuffer("".join(f"\0{term}" for term in vocab).encode("utf-32-le") + bytes(4), dtype=np.uint32)
    points = points.astype(np.int64)
    separator = points == 0
    left = np.where(separator[:-1], _BEGIN, points[:-1])
    right = np.where(separator[1:], _END, points[1:])
    term_of = np.cumsum(separator[:-1]) - 1
    bits = max(len(vocab), 1).bit_length()
    keys = left * (_END + 1) + right
    keys <<= bits
    keys |= term_of
    keys.sort()
    keys = keys[run_starts(keys)]  # a term counts a bigram once
    first = points[np.flatnonzero(separator[:-1]) + 1] if len(vocab) else np.empty(0, dtype=np.int64)
    return _table_of(keys, bits, lengths, first)


def renumbered_table(table: BigramTable, new_ids: np.ndarray, vocab: Sequence[str]) -> BigramTable:
    """bigram_table(vocab) from the table of an older vocabulary: its terms renumbered by new_ids (ascending
    where kept, -1 where gone) and the terms vocab adds merged in, without re-reading every term."""
    kept = new_ids >= 0
    added = np.setdiff1d(np.arange(len(vocab), dtype=np.int64), new_ids[kept])
    fresh = bigram_table([vocab[i] for i in added.tolist()])
    bits = max(len(vocab), 1).bit_length()
    old_terms = new_ids[table.terms].astype(np.int64)
    keys = np.repeat(table.codes, np.diff(table.ptr)) << bits | old_terms
    keys = keys[old_terms >= 0]  # ascending: new ids keep the old ids' order
    fresh_keys = np.repeat(fresh.codes, np.diff(fresh.ptr)) << bits | added[fresh.terms]
    fresh_keys.sort()
    keys = np.insert(keys, np.searchsorted(keys, fresh_keys), fresh_keys)
    lengths, first = np.empty(len(vocab), dtype=np.int32), np.empty(len(vocab), dtype=np.int32)
    lengths[new_ids[kept]], first[new_ids[kept]] = table.term_length[kept], table.term_first[kept]
    lengths[added], first[added] = fresh.term_length, fresh.term_first
    return _table_of(keys, bits, lengths, first)


def _table_of(keys: np.ndarray, bits: int, lengths: np.ndarray, first: np.ndarray) -> BigramTable:
    """The BigramTable of ascending distinct keys (bigram code << bits | term id), given each term's
    length and first code point."""
    gram_of = keys >> bits
    starts = run_starts(gram_of)
    terms = (keys & ((1 << bits) - 1)).astype(np.int32)
    return BigramTable(
        codes=gram_of[starts],
        ptr=np.append(starts, len(keys)).astype(np.int64),
        terms=terms,
        term_grams=np.bincount(terms, minlength=len(lengths)).astype(np.int32),
        term_length=lengths.astype(np.int32),
        term_first=first.astype(np.int32),
    )


class VariantFinder:
    """Bigram-filtered edit-distance search over a vocabulary (Ukkonen's q-gram lemma).

    Reads a BigramTable, which the index builds once and stores, so a fresh process pays nothing.
    """

    def __init__(self, vocab: Sequence[str], table: BigramTable | None = None) -> None:
        self._vocab = vocab
        self._table = bigram_table(vocab) if table is None else table

    def find(self, term: str, limit: int = 3) -> list[tuple[int, int]]:
        """Up to `limit` (term id, distance) pairs of vocabulary terms close to term, closest first.

        Variants share the first letter (misspellings rarely touch it; keeps seek and week apart).
        """
        budget = max_distance(term)
        table = self._table
        if not budget or not len(table.codes):
            return []
        grams = _bigram_codes(term)
        wanted = np.fromiter(grams, dtype=np.int64, count=len(grams))
        at = np.searchsorted(table.codes, wanted)
        at = at[(at < len(table.codes)) & (table.codes[np.minimum(at, len(table.codes) - 1)] == wanted)]
        if not len(at):
            return []
        hits = np.concatenate([table.terms[table.ptr[i] : table.ptr[i + 1]] for i in at])
        shared = np.bincount(hits, minlength=len(self._vocab))
        # Each edit destroys at most two bigrams of either word.
        close = np.nonzero(
            (shared >= np.maximum(table.term_grams, len(grams)) - 2 * budget)
            & (np.abs(table.term_length - len(term)) <= budget)
            & (table.term_first == ord(term[0]))
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
