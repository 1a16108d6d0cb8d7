"""Spelling variants: the edit distance and the bigram-filtered search."""

from __future__ import annotations

import itertools

import pytest

from qabot.variants import VariantFinder, edit_distance


def reference_distance(a: str, b: str) -> int:
    """Textbook optimal-string-alignment distance, for checking the fast paths."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i, j in itertools.product(range(1, len(a) + 1), range(1, len(b) + 1)):
        d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
        if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
            d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


WORDS = ["pashinyan", "pashinian", "shultz", "schultz", "antoni", "anthoni", "abcd", "abdc", "bacd", "ab", "",
         "peace", "piece", "peaces", "talk", "talks", "kalt", "lachin", "lanchin", "x"]  # fmt: skip


@pytest.mark.parametrize("limit", [1, 2])
def test_edit_distance_agrees_with_the_textbook_definition(limit):
    for a, b in itertools.product(WORDS, repeat=2):
        assert edit_distance(a, b, limit) == min(reference_distance(a, b), limit + 1), (a, b)


def test_finder_returns_close_terms_sharing_the_first_letter():
    vocab = sorted(["pashinian", "pashinyan", "shultz", "antoni", "seek", "week", "see", "peac", "piec", "talk"])
    finder = VariantFinder(vocab)
    found = lambda term: [vocab[i] for i, _ in finder.find(term)]  # noqa: E731
    assert found("pashinyan") == ["pashinian"]
    assert found("schultz") == ["shultz"]
    assert found("anthoni") == ["antoni"]
    assert "week" not in found("seek") and found("seek") == ["see"]
    assert found("tal") == [], "terms under four letters are not guessed at"
    assert found("zzzz") == []
