"""Spelling variants: vocabulary terms within a small edit distance of a query term."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

MIN_LENGTH = 4  # shorter terms have too many one-letter neighbours to guess from


def max_distance(term: str) -> int:
    """How many edits a variant of `term` may be away: 1 from 4 letters, 2 from 8."""
    if len(term) < MIN_LENGTH or term.isdigit():
        return 0
    return 1 if len(term) < 8 else 2


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (Damerau-Levenshtein with adjacent swaps), capped at limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
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
    return previous[-1]


def _grams(term: str) -> set[str]:
    padded = f"^{term}$"
    return {padded[i : i + 2] for i in range(len(padded) - 1)}


class VariantFinder:
    """Bigram-filtered edit-distance search over a vocabulary (built once, on first use)."""

    def __init__(self, vocab: Sequence[str]) -> None:
        self._vocab = vocab
        postings: dict[str, list[int]] = defaultdict(list)
        for term_id, term in enumerate(vocab):
            if len(term) >= MIN_LENGTH - 2 and not term.isdigit():
                for gram in _grams(term):
                    postings[gram].append(term_id)
        self._postings = {gram: np.array(ids, dtype=np.int32) for gram, ids in postings.items()}

    def find(self, term: str, limit: int = 3) -> list[tuple[int, int]]:
        """Up to `limit` (term id, distance) pairs of vocabulary terms close to term, closest first."""
        budget = max_distance(term)
        if not budget:
            return []
        grams = _grams(term)
        lists = [self._postings[g] for g in grams if g in self._postings]
        if not lists:
            return []
        ids, shared = np.unique(np.concatenate(lists), return_counts=True)
        # Each edit destroys at most two bigrams (Ukkonen's q-gram lemma).
        ids = ids[shared >= len(grams) - 2 * budget]
        found = []
        for term_id in ids.tolist():
            candidate = self._vocab[term_id]
            # Misspellings rarely touch the first letter; requiring it keeps seek/week apart.
            if candidate == term or candidate[0] != term[0]:
                continue
            distance = edit_distance(term, candidate, budget)
            if distance <= budget:
                found.append((distance, candidate, term_id))
        found.sort()
        return [(term_id, distance) for distance, _, term_id in found[:limit]]
