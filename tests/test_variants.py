"""Spelling variants: the edit distance and the bigram-filtered search."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from qabot.variants import VariantFinder, bigram_table, edit_distance, max_distance, renumbered_table


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


def brute_force(vocab: list[str], term: str, limit: int = 3) -> list[tuple[int, int]]:
    """Every vocabulary term within the edit budget sharing the first letter, closest first."""
    budget = max_distance(term)
    if not budget:
        return []
    found = sorted(
        (reference_distance(term, candidate), candidate, i)
        for i, candidate in enumerate(vocab)
        if candidate != term and candidate[:1] == term[:1] and abs(len(candidate) - len(term)) <= budget
    )
    return [(i, distance) for distance, _, i in found if distance <= budget][:limit]


def test_the_stored_bigram_table_finds_what_a_scan_of_the_vocabulary_finds(answerer):
    index = answerer.index
    vocab = list(index.vocab)
    stored = VariantFinder(index.vocab, index.bigrams)
    table = bigram_table(index.vocab)
    for name in ("codes", "ptr", "terms", "term_grams", "term_length", "term_first"):
        assert np.array_equal(getattr(table, name), getattr(index.bigrams, name)), name
    rng = np.random.default_rng(3)
    for term_id in rng.choice(len(vocab), 40, replace=False).tolist():
        word = vocab[term_id]
        for typo in (word, word[:2] + word[3:], word[:3] + "x" + word[3:], word + "e", word[:1] + word[2:]):
            assert stored.find(typo) == brute_force(vocab, typo), typo


def test_an_empty_vocabulary_has_an_empty_table():
    table = bigram_table(())
    assert len(table.codes) == 0 and table.ptr.tolist() == [0] and VariantFinder((), table).find("okapi") == []


def test_a_refreshed_vocabularys_table_renumbered_from_the_old_one_is_the_one_built_afresh(answerer):
    """A refresh renumbers the old table's terms and merges in the added terms' bigrams: the same arrays as
    building the table of the new vocabulary, whichever terms go and come (none, all, a new longest id)."""
    old = list(answerer.index.vocab)
    rng = np.random.default_rng(8)
    cases = [(0, 0), (0.3, 0), (0, 40), (0.2, 25), (1.0, 5), (0.9, 3000)]
    for share_gone, added in cases:
        kept = [term for term in old if rng.random() >= share_gone]
        new = sorted({*kept, *("zz" + "".join(rng.choice(list("abcéß東q"), rng.integers(1, 9))) for _ in range(added))})
        new_ids = np.array([new.index(term) if term in kept else -1 for term in old], dtype=np.int32)
        expected = bigram_table(new)
        got = renumbered_table(bigram_table(old), new_ids, new)
        for name in ("codes", "ptr", "terms", "term_grams", "term_length", "term_first"):
            expected_array, got_array = getattr(expected, name), getattr(got, name)
            assert got_array.dtype == expected_array.dtype and np.array_equal(got_array, expected_array), name
