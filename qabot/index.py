"""BM25 over sentences: build from documents, score with precomputed sparse weights, refresh.

Scores are rank-bm25's BM25Okapi (Robertson et al., with ATIRE's epsilon floor on
negative IDF), computed once per (term, sentence) at build time, so a query costs
the sum of its posting lists instead of a pass over every sentence.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qabot.analyze import analyze
from qabot.corpus import Document, Skipped
from qabot.segment import line_starts, sentence_spans

EPSILON = 0.25  # rank-bm25's default floor for negative IDF, as a share of the mean IDF
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class DocInfo:
    """What the index remembers of a file to tell whether it changed."""

    path: str
    sha256: str
    title: str
    date: str | None
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class DocSentences:
    """One document's indexed sentences and their terms: the unit of incremental refresh."""

    info: DocInfo
    text: str
    starts: np.ndarray  # int64, character offsets into text
    ends: np.ndarray
    lines: np.ndarray
    end_lines: np.ndarray
    terms: tuple[tuple[str, ...], ...]  # analyzed terms per sentence


def idf_okapi(df: np.ndarray, n_docs: int, epsilon: float = EPSILON) -> np.ndarray:
    """BM25Okapi IDF as in rank-bm25: log((N - df + .5) / (df + .5)); negatives floored to eps * mean."""
    idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
    if len(idf):
        idf[idf < 0] = epsilon * (idf.sum() / len(idf))
    return idf


def tf_okapi(tf: np.ndarray, doc_len: np.ndarray, avgdl: float, k1: float, b: float) -> np.ndarray:
    """BM25 term-frequency saturation: tf (k1 + 1) / (tf + k1 (1 - b + b |d| / avgdl))."""
    return tf * (k1 + 1) / (tf + k1 * (1 - b + b * doc_len / avgdl))


def analyze_document(doc: Document, boilerplate: re.Pattern[str] | None) -> DocSentences:
    """Segment and analyze one document; boilerplate sentences are left out."""
    spans = [(start, end) for start, end, flagged in sentence_spans(doc.text, boilerplate) if not flagged]
    starts = np.array([s for s, _ in spans], dtype=np.int64)
    ends = np.array([e for _, e in spans], dtype=np.int64)
    newlines = np.array(line_starts(doc.text), dtype=np.int64)
    info = DocInfo(doc.path, doc.sha256, doc.title, doc.date, doc.size, doc.mtime_ns)
    return DocSentences(
        info,
        doc.text,
        starts,
        ends,
        np.searchsorted(newlines, starts, side="right"),
        np.searchsorted(newlines, np.maximum(ends - 1, starts), side="right"),
        tuple(tuple(analyze(doc.text[s:e])) for s, e in spans),
    )


@dataclass(frozen=True, slots=True)
class Index:
    """Sentences of a corpus with BM25Okapi weights in term-major (posting list) order.

    For sentence i: docs[sent_doc[i]] is its file and the file's text[sent_start[i]:sent_end[i]]
    is the sentence. Postings of term t are post_sent/post_weight[post_ptr[t]:post_ptr[t + 1]].
    """

    root: Path
    docs: tuple[DocInfo, ...]
    skipped: tuple[Skipped, ...]
    k1: float
    b: float
    text_ptr: np.ndarray  # int64[D + 1], UTF-8 byte offsets of each document in text_blob
    text_blob: np.ndarray  # uint8, every document's UTF-8 bytes
    doc_sent_ptr: np.ndarray  # int64[D + 1], first sentence of each document
    sent_doc: np.ndarray  # int32[N]
    sent_start: np.ndarray  # int64[N], character offsets
    sent_end: np.ndarray
    sent_line: np.ndarray  # int32[N], 1-based
    sent_end_line: np.ndarray
    tok_ptr: np.ndarray  # int64[N + 1]
    tok_ids: np.ndarray  # int32[T], term ids of every sentence in order
    vocab: tuple[str, ...]  # sorted terms; a term's id is its position
    df: np.ndarray  # int64[V]
    idf: np.ndarray  # float64[V]
    post_ptr: np.ndarray  # int64[V + 1]
    post_sent: np.ndarray  # int32[P]
    post_weight: np.ndarray  # float64[P]
    term_ids: dict[str, int] = field(init=False, repr=False, compare=False)
    _buffers: threading.local = field(init=False, repr=False, compare=False)
    _text_cache: dict[int, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "term_ids", {term: i for i, term in enumerate(self.vocab)})
        object.__setattr__(self, "_buffers", threading.local())
        object.__setattr__(self, "_text_cache", {})

    @property
    def n_sentences(self) -> int:
        return len(self.sent_doc)

    def doc_text(self, doc_id: int) -> str:
        """The document's full text, exactly as read from its file."""
        cached = self._text_cache.get(doc_id)
        if cached is None:
            raw = self.text_blob[self.text_ptr[doc_id] : self.text_ptr[doc_id + 1]]
            cached = raw.tobytes().decode("utf-8")
            if len(self._text_cache) > 4096:
                self._text_cache.clear()
            self._text_cache[doc_id] = cached
        return cached

    def sentence_text(self, sent: int) -> str:
        """text[start:end] of sentence `sent` in its document."""
        return self.doc_text(int(self.sent_doc[sent]))[int(self.sent_start[sent]) : int(self.sent_end[sent])]

    def sentence_terms(self, sent: int) -> np.ndarray:
        return self.tok_ids[self.tok_ptr[sent] : self.tok_ptr[sent + 1]]

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.post_ptr[term], self.post_ptr[term + 1]
        return self.post_sent[lo:hi], self.post_weight[lo:hi]

    def score_all(self, terms: Sequence[str]) -> np.ndarray:
        """BM25Okapi score of every sentence for a query given as terms (rank-bm25's get_scores)."""
        scores = np.zeros(self.n_sentences)
        for term in terms:
            term_id = self.term_ids.get(term)
            if term_id is not None:
                sents, weights = self.postings(term_id)
                scores[sents] += weights
        return scores

    def search(self, weighted_terms: Sequence[tuple[int, float]], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k sentences (ids, scores, best first) for a weighted sum of term weights.

        Touches only the query terms' postings; thread-safe (one buffer per thread).
        """
        if not weighted_terms or k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0)
        acc = self._accumulator()
        touched = []
        for term_id, query_weight in weighted_terms:
            sents, weights = self.postings(term_id)
            acc[sents] += weights * query_weight
            touched.append(sents)
        candidates = np.concatenate(touched) if len(touched) > 1 else touched[0]
        scores = acc[candidates]
        acc[candidates] = 0.0
        # A sentence appears once per query term it holds, always with its full score, so
        # the best k * len(touched) entries hold the best k distinct sentences.
        wanted = k * len(touched)
        if len(candidates) > wanted:
            top = np.argpartition(-scores, wanted - 1)[:wanted]
            candidates, scores = candidates[top], scores[top]
        if len(touched) > 1:
            candidates, first = np.unique(candidates, return_index=True)
            scores = scores[first]
        order = np.lexsort((candidates, -scores))[:k]
        return candidates[order].astype(np.int64), scores[order]

    def _accumulator(self) -> np.ndarray:
        acc = getattr(self._buffers, "acc", None)
        if acc is None or len(acc) != self.n_sentences:
            acc = np.zeros(self.n_sentences)
            self._buffers.acc = acc
        return acc

    def term_weights(self, term: int, sents: np.ndarray) -> np.ndarray:
        """BM25 weight of `term` in each of `sents` (0 where absent or sentence id < 0)."""
        posting_sents, weights = self.postings(term)
        if not len(posting_sents):
            return np.zeros(len(sents))
        at = np.minimum(np.searchsorted(posting_sents, sents), len(posting_sents) - 1)
        return np.where(posting_sents[at] == sents, weights[at], 0.0)

    def neighbour_arrays(self, sents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Previous and next sentence ids in the same document, -1 where there is none."""
        docs = self.sent_doc[sents]
        before = np.where(sents - 1 >= self.doc_sent_ptr[docs], sents - 1, -1)
        after = np.where(sents + 1 < self.doc_sent_ptr[docs + 1], sents + 1, -1)
        return before, after

    def neighbours(self, sent: int) -> tuple[int | None, int | None]:
        """The indexed sentences just before and after `sent` in the same document."""
        doc = int(self.sent_doc[sent])
        before = sent - 1 if sent - 1 >= self.doc_sent_ptr[doc] else None
        after = sent + 1 if sent + 1 < self.doc_sent_ptr[doc + 1] else None
        return before, after


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Consecutive documents' arrays, ready to concatenate into an Index."""

    docs: tuple[DocInfo, ...]
    text: bytes
    text_lengths: np.ndarray  # UTF-8 bytes per document
    sent_counts: np.ndarray  # sentences per document
    starts: np.ndarray
    ends: np.ndarray
    lines: np.ndarray
    end_lines: np.ndarray
    lengths: np.ndarray  # terms per sentence
    tok_ids: np.ndarray


def _chunk_of_part(part: DocSentences, term_ids: dict[str, int]) -> _Chunk:
    text = part.text.encode("utf-8")
    return _Chunk(
        (part.info,),
        text,
        np.array([len(text)], dtype=np.int64),
        np.array([len(part.starts)], dtype=np.int64),
        part.starts,
        part.ends,
        part.lines,
        part.end_lines,
        np.array([len(sentence) for sentence in part.terms], dtype=np.int64),
        np.array([term_ids[term] for sentence in part.terms for term in sentence], dtype=np.int32),
    )


def _chunk_of_run(index: Index, first: int, stop: int, old_to_new: np.ndarray) -> _Chunk:
    """Documents first..stop-1 of an existing index, with term ids renumbered (nothing re-read)."""
    s_lo, s_hi = int(index.doc_sent_ptr[first]), int(index.doc_sent_ptr[stop])
    t_lo, t_hi = int(index.tok_ptr[s_lo]), int(index.tok_ptr[s_hi])
    b_lo, b_hi = int(index.text_ptr[first]), int(index.text_ptr[stop])
    return _Chunk(
        index.docs[first:stop],
        index.text_blob[b_lo:b_hi].tobytes(),
        np.diff(index.text_ptr[first : stop + 1]),
        np.diff(index.doc_sent_ptr[first : stop + 1]),
        index.sent_start[s_lo:s_hi],
        index.sent_end[s_lo:s_hi],
        index.sent_line[s_lo:s_hi],
        index.sent_end_line[s_lo:s_hi],
        np.diff(index.tok_ptr[s_lo : s_hi + 1]),
        old_to_new[index.tok_ids[t_lo:t_hi]],
    )


def build_index(
    root: Path,
    parts: Iterable[DocSentences],
    skipped: Sequence[Skipped],
    k1: float,
    b: float,
) -> Index:
    """Assemble an Index from analyzed documents (order kept: sorted by path by the caller)."""
    parts = list(parts)
    vocab = sorted({term for part in parts for sentence in part.terms for term in sentence})
    term_ids = {term: i for i, term in enumerate(vocab)}
    return _assemble(root, [_chunk_of_part(part, term_ids) for part in parts], skipped, k1, b, vocab)


def refresh_index(
    old: Index,
    changed: Iterable[DocSentences],
    keep: Iterable[str],
    skipped: Sequence[Skipped],
) -> Index:
    """A new Index where documents in `keep` reuse old arrays and `changed` ones are new.

    Kept documents are copied as runs of arrays, never re-read or re-analyzed. The result
    equals build_index over the same documents: same vocabulary order, ids and weights.
    """
    by_path: dict[str, DocSentences] = {part.info.path: part for part in changed}
    keep = set(keep) - set(by_path)
    kept_docs = np.array([doc.path in keep for doc in old.docs], dtype=bool)
    kept_tokens = np.repeat(np.repeat(kept_docs, np.diff(old.doc_sent_ptr)), np.diff(old.tok_ptr))
    used_old = np.flatnonzero(np.bincount(old.tok_ids[kept_tokens], minlength=len(old.vocab)))
    new_terms = {term for part in by_path.values() for sentence in part.terms for term in sentence}
    vocab = sorted(new_terms.union(old.vocab[i] for i in used_old.tolist()))
    term_ids = {term: i for i, term in enumerate(vocab)}
    old_to_new = np.full(len(old.vocab), -1, dtype=np.int32)
    old_to_new[used_old] = [term_ids[old.vocab[i]] for i in used_old.tolist()]

    old_position = {doc.path: i for i, doc in enumerate(old.docs) if doc.path in keep}
    chunks: list[_Chunk] = []
    run: list[int] = []  # old ids of consecutive kept documents

    def close_run() -> None:
        if run:
            chunks.append(_chunk_of_run(old, run[0], run[-1] + 1, old_to_new))
            run.clear()

    for path in sorted(keep | set(by_path)):
        if path in by_path:
            close_run()
            chunks.append(_chunk_of_part(by_path[path], term_ids))
        else:
            if run and old_position[path] != run[-1] + 1:
                close_run()
            run.append(old_position[path])
    close_run()
    return _assemble(old.root, chunks, skipped, old.k1, old.b, vocab)


def _assemble(
    root: Path, chunks: Sequence[_Chunk], skipped: Sequence[Skipped], k1: float, b: float, vocab: Sequence[str]
) -> Index:
    def joined(name: str, dtype: type) -> np.ndarray:
        arrays = [getattr(chunk, name) for chunk in chunks]
        return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.empty(0, dtype=dtype)

    def pointers(counts: np.ndarray) -> np.ndarray:
        ptr = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        return ptr

    sent_counts = joined("sent_counts", np.int64)
    lengths = joined("lengths", np.int64)
    tok_ids = joined("tok_ids", np.int32)
    n_sent = int(sent_counts.sum())
    return Index(
        root=root,
        docs=tuple(doc for chunk in chunks for doc in chunk.docs),
        skipped=tuple(skipped),
        k1=k1,
        b=b,
        text_ptr=pointers(joined("text_lengths", np.int64)),
        text_blob=np.frombuffer(b"".join(chunk.text for chunk in chunks), dtype=np.uint8),
        doc_sent_ptr=pointers(sent_counts),
        sent_doc=np.repeat(np.arange(len(sent_counts), dtype=np.int32), sent_counts),
        sent_start=joined("starts", np.int64),
        sent_end=joined("ends", np.int64),
        sent_line=joined("lines", np.int32),
        sent_end_line=joined("end_lines", np.int32),
        tok_ptr=pointers(lengths),
        tok_ids=tok_ids,
        vocab=tuple(vocab),
        **_okapi_postings(tok_ids, lengths, len(vocab), n_sent, k1, b),
    )


def _okapi_postings(
    tok_ids: np.ndarray, lengths: np.ndarray, n_terms: int, n_sent: int, k1: float, b: float
) -> dict[str, np.ndarray]:
    """Posting lists (term-major, sentences ascending) with BM25Okapi weights, fully vectorised."""
    stride = max(n_sent, 1)
    pairs = np.sort(tok_ids.astype(np.int64) * stride + np.repeat(np.arange(n_sent, dtype=np.int64), lengths))
    first = np.ones(len(pairs), dtype=bool)
    first[1:] = pairs[1:] != pairs[:-1]
    starts = np.flatnonzero(first)
    tf = np.diff(np.append(starts, len(pairs))).astype(np.float64)
    pairs = pairs[starts]
    post_term = pairs // stride
    post_sent = (pairs % stride).astype(np.int32)
    df = np.bincount(post_term, minlength=n_terms).astype(np.int64)
    post_ptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(df, out=post_ptr[1:])
    idf = idf_okapi(df.astype(np.float64), n_sent)
    avgdl = float(lengths.sum()) / n_sent if n_sent else 1.0
    weight = idf[post_term] * tf_okapi(tf, lengths[post_sent].astype(np.float64), avgdl or 1.0, k1, b)
    return {"df": df, "idf": idf, "post_ptr": post_ptr, "post_sent": post_sent, "post_weight": weight}


def idf_of_unknown(n_sentences: int) -> float:
    """IDF a term would have if no sentence contained it (BM25Okapi, df = 0)."""
    return math.log(n_sentences + 0.5) - math.log(0.5)
