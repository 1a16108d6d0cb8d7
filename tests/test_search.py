"""Pruned top-k search returns exactly what scoring every posting returns: ids, scores (bit for bit), ties."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qabot import index as index_module
from qabot import scoring
from qabot.arrays import distinct, distinct_with_inverse, run_starts
from qabot.corpus import Document
from qabot.generations import JsonColumn
from qabot.index import Index, VocabularyIds
from qabot.postings import analyze_documents, build_index
from qabot.scoring import Bm25Postings, length_norm
from qabot.store import IndexParams, open_index
from tests.conftest import SEEDS

PARAMS = IndexParams(1.2, 0.75, ("top of page", "bottom of page"), 10_000_000)


@pytest.fixture
def always_pruned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every query takes the pruned path."""
    monkeypatch.setattr(scoring, "EXHAUSTIVE_POSTINGS", 0)


@pytest.fixture(scope="module")
def seeds_index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    index, _ = open_index(SEEDS, tmp_path_factory.mktemp("cache"), PARAMS, warn=lambda m: None)
    return index


def index_of(sentences: list[str]) -> Index:
    """An in-memory index of one article per group of three sentences."""
    docs = []
    for i in range(0, len(sentences), 3):
        text = "Title\n\n" + " ".join(f"{s}." for s in sentences[i : i + 3]) + "\n"
        docs.append(Document(f"a{i:05d}.txt", text, f"{i:064x}", "Title", None, len(text), 0))
    return build_index(Path("/nowhere"), [analyze_documents(docs, None)], [], 1.2, 0.75)


def formula_weights(index: Index, lo: int, hi: int, scale: float) -> np.ndarray:
    """BM25's term weight of postings lo:hi written out as rank-bm25 computes it, no lookup tables."""
    tf, lengths = index.post_tf[lo:hi].astype(np.float64), index.post_len[lo:hi].astype(np.float64)
    avgdl = float(index.tok_ptr[-1]) / index.n_sentences
    return tf * (index.k1 + 1) / (tf + length_norm(lengths, avgdl, index.k1, index.b)) * scale


def dense_top_k(index: Index, query: list[tuple[int, float]], k: int) -> tuple[list[int], np.ndarray]:
    """The plainest reference: every sentence's score summed term by term, every touched sentence sorted."""
    scores, touched = np.zeros(index.n_sentences), np.zeros(index.n_sentences, dtype=bool)
    for term, weight in query:
        lo, hi = index.post_ptr[term], index.post_ptr[term + 1]
        scores[index.post_sent[lo:hi]] += formula_weights(index, lo, hi, index.idf[term] * weight)
        touched[index.post_sent[lo:hi]] = True
    ranked = sorted(np.flatnonzero(touched).tolist(), key=lambda s: (-scores[s], s))[:k]
    return ranked, scores[ranked]


def assert_same(index: Index, query: list[tuple[int, float]], k: int) -> None:
    sents, scores = index.search(query, k)
    for ref_sents, ref_scores in (index.search_exhaustive(query, k), dense_top_k(index, query, k)):
        assert sents.tolist() == list(ref_sents), (query, k)
        assert scores.tobytes() == np.asarray(ref_scores).tobytes(), (query, k)


@pytest.mark.parametrize("dense_share", [0.0, 0.25, 1e9])
@pytest.mark.parametrize("k", [1, 3, 10, 50, 100])
def test_pruned_search_equals_exhaustive_on_the_seeds(seeds_index, always_pruned, monkeypatch, k, dense_share):
    monkeypatch.setattr(scoring, "DENSE_SHARE", dense_share)  # seen sentences gathered by one pass, or sorted
    rng = np.random.default_rng(k)
    by_df = np.argsort(-seeds_index.df)
    for _ in range(60):
        common = by_df[: rng.integers(0, 4)].tolist()  # frequent terms make long lists worth skipping
        rare = rng.choice(len(seeds_index.vocab), rng.integers(1, 5), replace=False).tolist()
        weights = rng.choice([1.0, 0.7, 2.0, 1.7], len(common) + len(rare)).tolist()
        assert_same(seeds_index, list(zip(common + rare, weights, strict=True)), k)


def test_pruning_looks_the_common_term_up_instead_of_scanning_it(always_pruned, monkeypatch):
    """A rare term and a very common one: once the rare term's sentences set the floor, the common
    term's 4,002 postings are only searched for the few sentences that can still make the top k."""
    filler = [f"common words number{i % 7} item{i}" for i in range(4000)]
    index = index_of([*filler, "common okapi sighting", "okapi okapi near common words"])
    okapi, common = index.term_ids["okapi"], index.term_ids["common"]
    looked_up: list[tuple[int, int]] = []
    real = Bm25Postings._look_up
    monkeypatch.setattr(Bm25Postings, "_look_up", lambda self, term, sents: looked_up.append((term, len(sents))) or
                        real(self, term, sents))  # fmt: skip
    sents, _ = index.search([(okapi, 1.0), (common, 1.0)], 2)
    assert [index.sentence_text(int(s)) for s in sents] == ["okapi okapi near common words.",
                                                            "common okapi sighting."]  # fmt: skip
    assert index.df[common] == 4002 and (common, 2) in looked_up, looked_up
    assert_same(index, [(okapi, 1.0), (common, 1.0)], 2)


@pytest.mark.parametrize("tabled_tf", [1, 2, 32])
def test_looked_up_weights_are_the_formula_bit_for_bit(seeds_index, monkeypatch, tabled_tf):
    """Saturations looked up by frequency and length, or computed past the table, are rank-bm25's floats."""
    monkeypatch.setattr(scoring, "TABLED_TF", tabled_tf)
    index = index_of([f"okapi {'zebra ' * (i % 40)}harbour" for i in range(120)])
    assert index.term_max_tf.max() > 32  # the table is cut short and the formula takes over
    for probe in (index, seeds_index):
        fresh = Bm25Postings(probe.post_ptr, probe.post_sent, probe.post_tf, probe.post_len, probe.term_max_tf,
                             probe.term_min_len, probe.n_sentences, probe.idf, probe.scorer.avgdl, probe.k1,
                             probe.b)  # fmt: skip
        everything = fresh.weights(probe.post_tf, probe.post_len, 1.7)
        assert everything.tobytes() == formula_weights(probe, 0, len(probe.post_tf), 1.7).tobytes()


@pytest.mark.parametrize("dense_share", [0.0, 1e9])
def test_summing_over_every_sentence_or_the_touched_ones_ranks_alike(seeds_index, monkeypatch, dense_share):
    """The exhaustive scorer's two ways to pick the top k (a floor and one pass over every sentence, or a
    selection among the postings) both give the reference's ids and scores."""
    monkeypatch.setattr(scoring, "DENSE_SHARE", dense_share)
    rng = np.random.default_rng(5)
    by_df = np.argsort(-seeds_index.df)
    for k in (1, 3, 50, 5000):
        for _ in range(20):
            rare = rng.choice(len(seeds_index.vocab), 2, replace=False).tolist()
            terms = [*by_df[: rng.integers(0, 3)].tolist(), *rare]
            weights = rng.choice([1.0, 0.7], len(terms)).tolist()
            query = [(int(term), weight) for term, weight in zip(terms, weights, strict=True)]
            sents, scores = seeds_index.search_exhaustive(query, k)
            ref_sents, ref_scores = dense_top_k(seeds_index, query, k)
            assert sents.tolist() == ref_sents and scores.tobytes() == ref_scores.tobytes(), (query, k)


def test_a_few_sentences_counted_in_their_own_terms_weigh_what_their_postings_say(seeds_index, always_pruned):
    """Term weights read from the sentences' terms equal those found in the posting lists, and so do the
    scores of an index that has them."""
    index = seeds_index
    postings_only = Bm25Postings(index.post_ptr, index.post_sent, index.post_tf, index.post_len, index.term_max_tf,
                                 index.term_min_len, index.n_sentences, index.idf, index.scorer.avgdl, index.k1,
                                 index.b)  # fmt: skip
    rng = np.random.default_rng(3)
    by_df = np.argsort(-index.df)
    for _ in range(30):
        terms = [*by_df[:3].tolist(), *rng.choice(len(index.vocab), 5).tolist()]  # repeats allowed
        sents = np.array([-1, *rng.choice(index.n_sentences, 40)], dtype=np.int64)
        present, weights = index.scorer.term_weights(terms, sents)
        ref_present, ref_weights = postings_only.term_weights(terms, sents)
        assert present.tolist() == ref_present.tolist() and weights.tobytes() == ref_weights.tobytes()
        query = [(int(term), 1.0) for term in terms]
        assert index.search(query, 10)[1].tobytes() == postings_only.search(query, 10)[1].tobytes()


def test_term_bounds_hold_every_posting(seeds_index):
    for term in range(len(seeds_index.vocab)):
        lo, hi = seeds_index.post_ptr[term], seeds_index.post_ptr[term + 1]
        assert seeds_index.post_tf[lo:hi].max() == seeds_index.term_max_tf[term]
        assert seeds_index.post_len[lo:hi].min() == seeds_index.term_min_len[term]
        bound = seeds_index.scorer.weights(seeds_index.term_max_tf[[term]], seeds_index.term_min_len[[term]], 1.0)
        assert (seeds_index.scorer.weights(seeds_index.post_tf[lo:hi], seeds_index.post_len[lo:hi], 1.0) <= bound).all()


WORDS = [f"w{i}" for i in range(40)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sentences=st.lists(
        st.lists(st.sampled_from(WORDS[:8]) | st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join),
        min_size=1, max_size=600,
    ),
    duplicate=st.integers(0, 30),
    picks=st.lists(st.tuples(st.integers(0, 39), st.sampled_from([1.0, 0.7, 2.0])), min_size=1, max_size=6),
    k=st.sampled_from([1, 2, 5, 50, 100]),
)  # fmt: skip
def test_pruned_search_equals_exhaustive_on_random_corpora(always_pruned, sentences, duplicate, picks, k):
    sentences = sentences + sentences[:duplicate]  # identical sentences tie on score: order by id
    index = index_of(sentences)
    query = [(index.term_ids[WORDS[w]], weight) for w, weight in picks if WORDS[w] in index.term_ids]
    if query:
        assert_same(index, query, k)


def test_a_dominant_list_that_must_be_scanned_goes_straight_to_the_exhaustive_scorer(monkeypatch):
    """A list holding most of the query's postings whose bound alone matches the other terms' cannot be
    skipped (the floor never passes the others' bounds): nothing is scanned before giving up."""
    index = index_of([*(f"common filler{i % 9}" for i in range(900)), *(f"rare{i % 3} filler1" for i in range(60))])
    query = [(index.term_ids["common"], 50.0), (index.term_ids["rare1"], 1.0)]
    scanned: list[int] = []
    real = Bm25Postings._accumulator
    monkeypatch.setattr(Bm25Postings, "_accumulator", lambda self: scanned.append(1) or real(self))
    terms = np.array([term for term, _ in query])
    scales = [float(index.idf[term]) * weight for term, weight in query]
    postings = int((index.post_ptr[terms + 1] - index.post_ptr[terms]).sum())
    assert index.scorer._search_pruned(terms, scales, 3, postings) is None and scanned == []
    assert_same(index, query, 3)


def test_exhaustive_search_keeps_every_tie_at_the_cut():
    """Many sentences tie with the k-th best: the lowest ids win."""
    index = index_of([*(["okapi zebra harbour"] * 40), *(["zebra harbour pier"] * 300), "okapi okapi zebra"])
    query = [(index.term_ids["okapi"], 1.0), (index.term_ids["zebra"], 0.7), (index.term_ids["harbour"], 1.0)]
    for k in (1, 5, 39, 41, 60):
        sents, scores = index.search_exhaustive(query, k)
        ref_sents, ref_scores = dense_top_k(index, query, k)
        assert sents.tolist() == ref_sents and scores.tobytes() == ref_scores.tobytes(), k


def test_threads_searching_at_once_get_what_one_thread_gets(seeds_index, always_pruned):
    rng = np.random.default_rng(11)
    by_df = np.argsort(-seeds_index.df)
    queries = [
        [(int(t), 1.0) for t in [*by_df[:2], *rng.choice(len(seeds_index.vocab), 3, replace=False)]] for _ in range(40)
    ]
    alone = [seeds_index.search(query, 10) for query in queries]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda query: seeds_index.search(query, 10), queries * 3))
    for (sents, scores), (ref_sents, ref_scores) in zip(together, alone * 3, strict=True):
        assert sents.tolist() == ref_sents.tolist() and scores.tobytes() == ref_scores.tobytes()


def test_term_ids_find_every_term_and_nothing_else(seeds_index):
    assert len(seeds_index.term_ids) == len(seeds_index.vocab)
    assert all(seeds_index.term_ids[term] == i for i, term in enumerate(seeds_index.vocab))
    for missing in ("", "zzzzzz", "peace", seeds_index.vocab[0][:-1] + "\uffff"):
        assert missing not in seeds_index.term_ids and seeds_index.term_ids.get(missing) is None
    with pytest.raises(KeyError):
        seeds_index.term_ids["okapi-not-a-term"]


@pytest.mark.parametrize("pruned", [False, True])
def test_kept_weights_of_long_lists_score_as_computed_ones(seeds_index, monkeypatch, pruned):
    """Long lists keep their weights once computed (per scale); answers are the same, bit for bit, and a
    full keep is emptied rather than grown."""
    rng = np.random.default_rng(7)
    by_df = np.argsort(-seeds_index.df)
    queries = []
    for _ in range(40):
        terms = [*by_df[:3].tolist(), *rng.choice(len(seeds_index.vocab), 3).tolist()]
        queries.append([(int(term), weight) for term, weight in zip(terms, rng.choice([1.0, 0.7], 6).tolist(),
                                                                    strict=True)])  # fmt: skip
    if pruned:
        monkeypatch.setattr(scoring, "EXHAUSTIVE_POSTINGS", 0)
    computed = [seeds_index.search(query, 10) for query in queries]
    monkeypatch.setattr(scoring, "HOT_POSTINGS", 1)
    monkeypatch.setattr(scoring, "HOT_KEPT", 400)  # a few lists at a time
    kept = seeds_index.scorer.hot_weights
    try:
        for repeat in range(2):
            for query, (sents, scores) in zip(queries, computed, strict=True):
                kept_sents, kept_scores = seeds_index.search(query, 10)
                assert kept_sents.tolist() == sents.tolist() and kept_scores.tobytes() == scores.tobytes(), repeat
        assert kept and sum(map(len, kept.values())) <= 400 and not any(w.flags.writeable for w in kept.values())
    finally:
        kept.clear()  # the index is shared with other tests


@pytest.mark.parametrize("stored", [True, False])
def test_a_vocabulary_finds_the_same_ids_by_bisection_or_decoded_into_a_dictionary(monkeypatch, stored):
    terms = sorted({"a", "zebra", "é", "ß", "東京", 'qu"ote', "back\\slash", "okapi", "okapis", *map(str, range(400))})
    ids = VocabularyIds(JsonColumn(*JsonColumn.encode(terms)) if stored else tuple(terms))
    probes = [*terms, "", "aa", "zz", "東", "okap", "okapiss"]
    expected = [terms.index(p) if p in terms else None for p in probes]
    monkeypatch.setattr(index_module, "LOOKUPS_PER_DECODE", 0)  # stays lazy: never decodes
    lazy = [ids.get(probe) for probe in probes]
    assert not isinstance(ids._vocab, dict)
    monkeypatch.setattr(index_module, "LOOKUPS_PER_DECODE", 10_000)  # decodes at the next lookup
    decoded = [ids.get(probe) for probe in probes]
    assert isinstance(ids._vocab, dict)
    assert lazy == decoded == expected
    assert list(ids) == terms and len(ids) == len(terms) and ids["okapi"] == terms.index("okapi")
    assert "okapis" in ids and "okap" not in ids and None not in ids
    with pytest.raises(KeyError):
        ids["okap"]


def test_distinct_values_by_one_sort_are_numpys_unique():
    rng = np.random.default_rng(11)
    for size in (0, 1, 2, 50, 3000):
        values = rng.integers(-5, 40 if size < 100 else 10**9, size)
        assert distinct(values).tolist() == np.unique(values).tolist()
        found, where = distinct_with_inverse(values)
        expected, expected_where = np.unique(values, return_inverse=True)
        assert found.tolist() == expected.tolist() and where.tolist() == expected_where.tolist()
        ordered = np.sort(values)
        assert run_starts(ordered).tolist() == np.unique(ordered, return_index=True)[1].tolist()
