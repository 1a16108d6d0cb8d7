"""The engines qabot is compared with, each built from qabot's own analyzed tokens.

Every engine answers the same call: `search(terms, k)` takes a query's analyzed
terms (qabot.analyze.analyze, duplicates kept) and returns the top-k sentence ids,
best first. Sentence ids are qabot's, so results can be checked side by side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True, slots=True)
class Tokens:
    """qabot's sentences as term lists: sentence i is vocab[tok_ids[tok_ptr[i]:tok_ptr[i + 1]]]."""

    vocab: list[str]
    tok_ptr: np.ndarray
    tok_ids: np.ndarray

    @property
    def n_sentences(self) -> int:
        return len(self.tok_ptr) - 1

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "tok_ptr.npy", np.asarray(self.tok_ptr, dtype=np.int64))
        np.save(folder / "tok_ids.npy", np.asarray(self.tok_ids, dtype=np.int32))
        (folder / "vocab.json").write_text(json.dumps(self.vocab, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> Tokens:
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        return cls(vocab, np.load(folder / "tok_ptr.npy"), np.load(folder / "tok_ids.npy"))

    def sentences(self) -> list[list[str]]:
        """Every sentence as a list of term strings (the input rank-bm25 and bm25s expect)."""
        words = np.array(self.vocab, dtype=object)[self.tok_ids].tolist()
        ptr = self.tok_ptr.tolist()
        return [words[ptr[i] : ptr[i + 1]] for i in range(len(ptr) - 1)]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Ids of the k highest scores, best first, ties by lower id (qabot's order)."""
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k] if len(scores) > k else np.arange(len(scores))
    return top[np.lexsort((top, -scores[top]))]


def okapi_matrix(tokens: Tokens, k1: float, b: float):
    """Sentence x term CSC matrix of BM25Okapi weights (rank-bm25's formula, epsilon-floored IDF)."""
    from scipy.sparse import csc_matrix

    n_sent, n_terms = tokens.n_sentences, len(tokens.vocab)
    lengths = np.diff(tokens.tok_ptr)
    sent_of_token = np.repeat(np.arange(n_sent, dtype=np.int64), lengths)
    pairs, tf = np.unique(tokens.tok_ids.astype(np.int64) * n_sent + sent_of_token, return_counts=True)
    term, sent = pairs // n_sent, (pairs % n_sent).astype(np.int32)
    df = np.bincount(term, minlength=n_terms)
    idf = np.log(n_sent - df + 0.5) - np.log(df + 0.5)
    idf[idf < 0] = 0.25 * idf.mean()
    doc_len = lengths[sent] / lengths.mean()
    weight = idf[term] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * doc_len))
    ptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(df, out=ptr[1:])
    return csc_matrix((weight, sent, ptr), shape=(n_sent, n_terms))


class RankBM25:
    """rank_bm25.BM25Okapi: a Python loop over every sentence per query term (no persistence)."""

    name = "rank-bm25"
    persistent = False

    def build(self, tokens: Tokens, k1: float, b: float, folder: Path) -> None:
        from rank_bm25 import BM25Okapi

        self.bm25 = BM25Okapi(tokens.sentences(), k1=k1, b=b)

    def search(self, terms: list[str], k: int) -> np.ndarray:
        return top_k(self.bm25.get_scores(terms), k)


class BM25S:
    """bm25s with the Robertson variant (rank-bm25's ranking; negative IDF clipped to 0), numpy backend."""

    name = "bm25s"
    persistent = True

    def build(self, tokens: Tokens, k1: float, b: float, folder: Path) -> None:
        import bm25s

        self.retriever = bm25s.BM25(k1=k1, b=b, method="robertson")
        self.retriever.index(tokens.sentences(), show_progress=False)
        self.retriever.save(str(folder))

    def load(self, folder: Path) -> None:
        import bm25s

        self.retriever = bm25s.BM25.load(str(folder))

    def search(self, terms: list[str], k: int) -> np.ndarray:
        ids, _ = self.retriever.retrieve([terms], k=k, show_progress=False, n_threads=0)
        return ids[0]


class Tantivy:
    """tantivy (Rust, via the tantivy Python package): one text field, whitespace tokenizer over qabot's terms."""

    name = "tantivy"
    persistent = True

    def build(self, tokens: Tokens, k1: float, b: float, folder: Path) -> None:
        import tantivy

        folder.mkdir(parents=True, exist_ok=True)
        index = tantivy.Index(self._schema(), path=str(folder), reuse=False)
        writer = index.writer(heap_size=500_000_000, num_threads=1)
        for sent, terms in enumerate(tokens.sentences()):
            doc = tantivy.Document()
            doc.add_text("body", " ".join(terms))
            doc.add_unsigned("sid", sent)
            writer.add_document(doc)
        writer.commit()
        writer.wait_merging_threads()

    def load(self, folder: Path) -> None:
        import tantivy

        self.index = tantivy.Index.open(str(folder))
        self.index.reload()
        self.schema = self.index.schema
        self.searcher = self.index.searcher()
        self.tantivy = tantivy

    def search(self, terms: list[str], k: int) -> np.ndarray:
        t = self.tantivy
        clauses = [(t.Occur.Should, t.Query.term_query(self.schema, "body", term)) for term in terms]
        hits = self.searcher.search(t.Query.boolean_query(clauses), k, count=False).hits
        return np.array(self.searcher.fast_field_values("sid", [address for _, address in hits]), dtype=np.int64)

    @staticmethod
    def _schema():
        import tantivy

        builder = tantivy.SchemaBuilder()
        builder.add_text_field("body", stored=False, tokenizer_name="whitespace", index_option="freq")
        builder.add_unsigned_field("sid", stored=False, fast=True)
        return builder.build()


class ScipyColumnSum:
    """Dense baseline: CSC matrix of BM25Okapi weights; a query sums its columns, then argpartition."""

    name = "scipy column-sum"
    persistent = True

    def build(self, tokens: Tokens, k1: float, b: float, folder: Path) -> None:
        from scipy.sparse import save_npz

        folder.mkdir(parents=True, exist_ok=True)
        save_npz(folder / "weights.npz", okapi_matrix(tokens, k1, b), compressed=False)
        (folder / "vocab.json").write_text(json.dumps(tokens.vocab, ensure_ascii=False), encoding="utf-8")

    def load(self, folder: Path) -> None:
        from scipy.sparse import load_npz

        self.matrix = load_npz(folder / "weights.npz").tocsc()
        self.term_ids = {term: i for i, term in enumerate(json.loads((folder / "vocab.json").read_text("utf-8")))}

    def search(self, terms: list[str], k: int) -> np.ndarray:
        ids = [self.term_ids[term] for term in terms if term in self.term_ids]
        scores = np.asarray(self.matrix[:, ids].sum(axis=1)).ravel()
        return top_k(scores, k)


ENGINES = {engine.name: engine for engine in (RankBM25, BM25S, Tantivy, ScipyColumnSum)}
