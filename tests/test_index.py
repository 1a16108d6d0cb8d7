"""BM25 index: parity with rank-bm25, sparse search equals full scoring, refresh equals rebuild."""

from __future__ import annotations

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from qabot.index import Index
from qabot.store import IndexParams, open_index
from tests.conftest import SEEDS

QUERIES = [
    ["loui", "bono"],
    ["us", "host", "peac", "talk"],
    ["lachin", "corridor", "checkpoint", "checkpoint"],
    ["armenia", "azerbaijan"],  # frequent terms: rank-bm25 floors their negative IDF
    ["erdogan", "g20", "gaza", "ceasefir"],
    ["unknownterm", "peac"],
    ["peac", "peac", "peac"],
]


def all_token_lists(index: Index) -> list[list[str]]:
    return [[index.vocab[t] for t in index.sentence_terms(i)] for i in range(index.n_sentences)]


@pytest.fixture(scope="module")
def seeds_index(tmp_path_factory) -> Index:
    params = IndexParams(1.2, 0.75, ("top of page", "bottom of page"), 10_000_000)
    index, _ = open_index(SEEDS, tmp_path_factory.mktemp("cache"), params, warn=lambda m: None)
    return index


@pytest.mark.parametrize("query", QUERIES, ids=" ".join)
def test_scores_equal_rank_bm25_okapi_for_every_sentence(seeds_index, query):
    reference = BM25Okapi(all_token_lists(seeds_index), k1=1.2, b=0.75)
    expected = reference.get_scores(query)
    ours = seeds_index.score_all(query)
    assert len(ours) == seeds_index.n_sentences == len(expected)
    assert np.max(np.abs(ours - expected)) <= 1e-6
    assert np.max(expected) > 0


@pytest.mark.parametrize("query", QUERIES, ids=" ".join)
def test_sparse_top_k_equals_full_scoring(seeds_index, query):
    full = seeds_index.score_all(query)
    counts: dict[int, float] = {}
    for term in query:
        if term in seeds_index.term_ids:
            counts[seeds_index.term_ids[term]] = counts.get(seeds_index.term_ids[term], 0.0) + 1.0
    sents, scores = seeds_index.search(list(counts.items()), 5)
    expected_order = sorted(np.nonzero(full)[0].tolist(), key=lambda i: (-full[i], i))[:5]
    assert sents.tolist() == expected_order
    assert np.allclose(scores, full[sents])


def test_search_leaves_no_residue_between_queries(seeds_index):
    peace = seeds_index.term_ids["peac"]
    first = seeds_index.search([(peace, 1.0)], 3)
    seeds_index.search([(seeds_index.term_ids["armenia"], 1.0)], 3)
    again = seeds_index.search([(peace, 1.0)], 3)
    assert first[0].tolist() == again[0].tolist() and np.array_equal(first[1], again[1])


def test_boilerplate_is_not_indexed(seeds_index):
    texts = [seeds_index.sentence_text(i) for i in range(seeds_index.n_sentences)]
    assert "top of page" not in texts and "bottom of page" not in texts
    assert any(t.startswith("US gears up") for t in texts)


def test_sentence_text_matches_the_file(seeds_index):
    for i in range(seeds_index.n_sentences):
        doc = seeds_index.docs[int(seeds_index.sent_doc[i])]
        text = (SEEDS / doc.path).read_text(encoding="utf-8")
        assert text[int(seeds_index.sent_start[i]) : int(seeds_index.sent_end[i])] == seeds_index.sentence_text(i)
