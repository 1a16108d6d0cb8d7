"""BM25 over sentences: build from documents, score over posting lists, refresh.

Scores are rank-bm25's BM25Okapi (Robertson et al., with ATIRE's epsilon floor on
negative IDF). Postings hold term frequencies and sentence lengths; IDF and the
length normaliser are derived when the index is opened. A query costs the sum of its
posting lists (a weight is a table lookup), and a refresh never rewrites weights that
a change in corpus size or average sentence length would alter.
"""

from __future__ import annotations

import math
import re
import threading
import uuid
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qabot.analyze import analyze
from qabot.answer_type import sentence_cues
from qabot.corpus import Document, Skipped
from qabot.segment import line_starts, paragraph_breaks, sentence_spans
from qabot.variants import BigramTable, bigram_table

EPSILON = 0.25  # rank-bm25's default floor for negative IDF, as a share of the mean IDF
# Document text lives in packs that generations share, so a refresh writes only the changed text.
COMPACT_LIVE_SHARE = 0.5  # below this share of live bytes, all text is rewritten into one pack
MAX_PACKS = 16  # above this many, every pack but the largest is merged into one
# Top-k search: below this many postings a query is scored exhaustively (bounds would cost more than they save).
EXHAUSTIVE_POSTINGS = 30_000
BOUND_SLACK = 1e-9  # relative margin, so float rounding never lets a bound fall below a real score
MOSTLY = 0.5  # a list to scan holding more than this share of a query's postings: score exhaustively
LOOKUP_COST = 4  # a binary search per sentence costs about as much as this many postings scattered and read


@dataclass(frozen=True, slots=True)
class DocInfo:
    """What the index remembers of a file to tell whether it changed."""

    path: str
    sha256: str
    title: str
    date: str | None
    size: int
    mtime_ns: int
    url: str | None = None  # the article's original web address (front matter url or source)


def idf_okapi(df: np.ndarray, n_docs: int, epsilon: float = EPSILON) -> np.ndarray:
    """BM25Okapi IDF as in rank-bm25: log((N - df + .5) / (df + .5)); negatives floored to eps * mean."""
    idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
    if len(idf):
        idf[idf < 0] = epsilon * (idf.sum() / len(idf))
    return idf


def length_norm(doc_len: np.ndarray, avgdl: float, k1: float, b: float) -> np.ndarray:
    """BM25's length normaliser per sentence: k1 (1 - b + b |d| / avgdl)."""
    return k1 * (1 - b + b * doc_len / avgdl)


def tf_okapi(tf: np.ndarray, norm: np.ndarray, k1: float) -> np.ndarray:
    """BM25 term-frequency saturation: tf (k1 + 1) / (tf + norm), as rank-bm25's get_scores computes it.

    Reuses norm's memory for the denominator.
    """
    norm += tf
    weight = tf * (k1 + 1)
    weight /= norm
    return weight


@dataclass(frozen=True, slots=True)
class TextPack:
    """Documents' UTF-8 bytes, one after another; immutable once written, shared by index versions.

    `checksum` is known once the pack is on disk under its `name`.
    """

    name: str
    data: np.ndarray  # uint8
    checksum: str | None = None

    @staticmethod
    def new(data: np.ndarray) -> TextPack:
        return TextPack(uuid.uuid4().hex, data)


@dataclass(frozen=True, slots=True)
class Chunk:
    """Documents' sentences and terms as flat arrays: what building and refreshing assemble.

    `tok_ids` index into this chunk's own `vocab`; offsets are characters into each document.
    """

    docs: tuple[DocInfo, ...]
    text: np.ndarray  # uint8: the documents' UTF-8 text, one after another
    text_lengths: np.ndarray  # int64, bytes per document
    sent_counts: np.ndarray  # int64, indexed sentences per document
    starts: np.ndarray  # int64 per sentence
    ends: np.ndarray
    lines: np.ndarray  # int32 per sentence, 1-based
    end_lines: np.ndarray
    columns: np.ndarray  # int32 per sentence, 1-based: characters from its line's start to its own
    para_before: np.ndarray  # int32 per sentence: sentences of its paragraph before it
    para_after: np.ndarray  # int32 per sentence: sentences of its paragraph after it
    cues: np.ndarray  # uint8 per sentence: answer_type.sentence_cues
    lengths: np.ndarray  # int64, terms per sentence
    tok_ids: np.ndarray  # int32 per term occurrence
    vocab: tuple[str, ...]


def _distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, ascending (a sort beats np.unique's hashing on the short arrays of a query)."""
    values = np.sort(values)
    return values[np.append(True, values[1:] != values[:-1])] if len(values) else values


def _joined(pieces: Sequence[np.ndarray], dtype: type) -> np.ndarray:
    """The pieces one after another as one array of dtype (empty when there are none)."""
    return np.concatenate([np.empty(0, dtype=dtype), *pieces]).astype(dtype, copy=False)


def analyze_documents(docs: Sequence[Document], boilerplate: re.Pattern[str] | None) -> Chunk:
    """Segment and analyze documents into one Chunk; boilerplate sentences are left out."""
    local: dict[str, int] = {}
    texts, starts, ends, lines, end_lines, lengths, tok_ids, counts = [], [], [], [], [], [], [], []
    before, after, cues, columns = [], [], [], []
    for doc in docs:
        spans = [(start, end) for start, end, flagged in sentence_spans(doc.text, boilerplate, doc.head)
                 if not flagged]
        first = np.fromiter((start for start, _ in spans), dtype=np.int64, count=len(spans))
        last = np.fromiter((end for _, end in spans), dtype=np.int64, count=len(spans))
        newlines = np.array(line_starts(doc.text), dtype=np.int64)
        for start, end in spans:
            sentence = doc.text[start:end]
            terms = analyze(sentence)
            cues.append(sentence_cues(sentence))
            columns.append(start - doc.text.rfind("\n", 0, start))
            lengths.append(len(terms))
            tok_ids.extend(local.setdefault(term, len(local)) for term in terms)
        texts.append(doc.text.encode("utf-8"))
        starts.append(first)
        ends.append(last)
        lines.append(np.searchsorted(newlines, first, side="right"))
        end_lines.append(np.searchsorted(newlines, np.maximum(last - 1, first), side="right"))
        paragraph = np.searchsorted(np.array(paragraph_breaks(doc.text), dtype=np.int64), first)
        position = np.arange(len(spans))
        before.append(position - np.searchsorted(paragraph, paragraph, side="left"))
        after.append(np.searchsorted(paragraph, paragraph, side="right") - 1 - position)
        counts.append(len(spans))

    return Chunk(
        docs=tuple(DocInfo(d.path, d.sha256, d.title, d.date, d.size, d.mtime_ns, d.url) for d in docs),
        text=np.frombuffer(b"".join(texts), dtype=np.uint8),
        text_lengths=np.array([len(text) for text in texts], dtype=np.int64),
        sent_counts=np.array(counts, dtype=np.int64),
        starts=_joined(starts, np.int64),
        ends=_joined(ends, np.int64),
        lines=_joined(lines, np.int32),
        end_lines=_joined(end_lines, np.int32),
        columns=np.array(columns, dtype=np.int32),
        para_before=_joined(before, np.int32),
        para_after=_joined(after, np.int32),
        cues=np.array(cues, dtype=np.uint8),
        lengths=np.array(lengths, dtype=np.int64),
        tok_ids=np.array(tok_ids, dtype=np.int32),
        vocab=tuple(local),
    )


class VocabularyIds(Mapping[str, int]):
    """A sorted vocabulary's term -> id (its position), by binary search: an index opens without
    building a dictionary of every term, which a fresh process would pay for a handful of lookups."""

    __slots__ = ("_vocab",)

    def __init__(self, vocab: Sequence[str]) -> None:
        self._vocab = vocab

    def __getitem__(self, term: str) -> int:
        at = bisect_left(self._vocab, term)
        if at < len(self._vocab) and self._vocab[at] == term:
            return at
        raise KeyError(term)

    def __len__(self) -> int:
        return len(self._vocab)

    def __iter__(self) -> Iterator[str]:
        return iter(self._vocab)


@dataclass(frozen=True, slots=True)
class Index:
    """Sentences of a corpus and their terms in term-major posting lists, scored as BM25Okapi.

    For sentence i: docs[sent_doc[i]] is its file and the file's text[sent_start[i]:sent_end[i]]
    is the sentence. Document d's text is text_packs[doc_pack[d]].data[doc_text_start[d]:doc_text_end[d]].
    Postings of term t are post_sent/post_tf/post_len[post_ptr[t]:post_ptr[t + 1]].
    """

    root: Path
    docs: tuple[DocInfo, ...]
    skipped: tuple[Skipped, ...]
    k1: float
    b: float
    text_packs: tuple[TextPack, ...]
    doc_pack: np.ndarray  # int32[D], which pack holds the document's text
    doc_text_start: np.ndarray  # int64[D], UTF-8 byte offsets in that pack
    doc_text_end: np.ndarray
    doc_sent_ptr: np.ndarray  # int64[D + 1], first sentence of each document
    sent_doc: np.ndarray  # int32[N]
    sent_start: np.ndarray  # int64[N], character offsets
    sent_end: np.ndarray
    sent_line: np.ndarray  # int32[N], 1-based
    sent_end_line: np.ndarray
    sent_column: np.ndarray  # int32[N], 1-based, in characters from the start of sent_line
    # Sentences of its paragraph before and after each sentence (blank lines end paragraphs).
    sent_para_before: np.ndarray  # int32[N]
    sent_para_after: np.ndarray  # int32[N]
    sent_cues: np.ndarray  # uint8[N], answer_type.sentence_cues of each sentence
    tok_ptr: np.ndarray  # int64[N + 1]
    tok_ids: np.ndarray  # int32[T], term ids of every sentence in order
    vocab: tuple[str, ...]  # sorted terms; a term's id is its position
    df: np.ndarray  # int64[V]
    post_ptr: np.ndarray  # int64[V + 1]
    post_sent: np.ndarray  # int32[P]
    post_tf: np.ndarray  # uint16[P], occurrences of the term in the sentence
    post_len: np.ndarray  # uint16[P], terms in the sentence (sentences hold at most 1,000 characters)
    # Per term, over its postings: the largest tf and the shortest sentence. BM25's saturation grows
    # with tf and shrinks with length, so together they bound the term's weight whatever the IDF and
    # average length are now (a refresh changes both, not these).
    term_max_tf: np.ndarray  # uint16[V]
    term_min_len: np.ndarray  # uint16[V]
    # The vocabulary's BigramTable (variants.py), stored so that no process rebuilds it.
    gram_codes: np.ndarray
    gram_ptr: np.ndarray
    gram_terms: np.ndarray
    term_grams: np.ndarray
    term_length: np.ndarray
    term_first: np.ndarray
    idf: np.ndarray = field(init=False, repr=False, compare=False)  # float64[V]
    term_ids: VocabularyIds = field(init=False, repr=False, compare=False)
    # By sentence length: BM25's length normaliser, and the saturation at tf = 1 (most postings).
    _norm_by_length: np.ndarray = field(init=False, repr=False, compare=False)
    _saturation_at_one: np.ndarray = field(init=False, repr=False, compare=False)
    _buffers: threading.local = field(init=False, repr=False, compare=False)
    _text_cache: dict[int, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n_sent = len(self.sent_doc)
        avgdl = float(self.tok_ptr[-1]) / n_sent if n_sent else 1.0
        longest = int(self.post_len.max()) if len(self.post_len) else 0
        norm = length_norm(np.arange(longest + 1), avgdl or 1.0, self.k1, self.b)
        object.__setattr__(self, "idf", idf_okapi(self.df.astype(np.float64), n_sent))
        object.__setattr__(self, "_norm_by_length", norm)
        object.__setattr__(self, "_saturation_at_one", tf_okapi(np.ones(longest + 1), norm.copy(), self.k1))
        object.__setattr__(self, "term_ids", VocabularyIds(self.vocab))
        object.__setattr__(self, "_buffers", threading.local())
        object.__setattr__(self, "_text_cache", {})

    @property
    def n_sentences(self) -> int:
        return len(self.sent_doc)

    @property
    def bigrams(self) -> BigramTable:
        return BigramTable(self.gram_codes, self.gram_ptr, self.gram_terms, self.term_grams, self.term_length,
                           self.term_first)  # fmt: skip

    def doc_text(self, doc_id: int) -> str:
        """The document's full text, exactly as read from its file."""
        cached = self._text_cache.get(doc_id)
        if cached is None:
            raw = self.text_packs[self.doc_pack[doc_id]].data[self.doc_text_start[doc_id] : self.doc_text_end[doc_id]]
            cached = raw.tobytes().decode("utf-8")
            if len(self._text_cache) > 4096:
                self._text_cache.clear()
            self._text_cache[doc_id] = cached
        return cached

    def paragraph_bounds(self, sents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First and stop sentence ids of the paragraph holding each sentence."""
        sents = np.asarray(sents, dtype=np.int64)
        return sents - self.sent_para_before[sents], sents + 1 + self.sent_para_after[sents]

    def cues(self, sents: np.ndarray) -> np.ndarray:
        """The answer_type.sentence_cues bits of each sentence."""
        return self.sent_cues[sents]

    def sentence_text(self, sent: int) -> str:
        """text[start:end] of sentence `sent` in its document."""
        return self.doc_text(int(self.sent_doc[sent]))[int(self.sent_start[sent]) : int(self.sent_end[sent])]

    def sentence_terms(self, sent: int) -> np.ndarray:
        return self.tok_ids[self.tok_ptr[sent] : self.tok_ptr[sent + 1]]

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """The sentences holding `term`, ascending, and its BM25 weight in each."""
        lo, hi = self.post_ptr[term], self.post_ptr[term + 1]
        return self.post_sent[lo:hi], self._weights(self.post_tf[lo:hi], self.post_len[lo:hi], self.idf[term])

    def _weights(
        self, tf: np.ndarray, lengths: np.ndarray, scale: float | np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """scale times the BM25 saturation of `tf` occurrences in sentences of `lengths` terms
        (rank-bm25's arithmetic; at tf = 1 looked up by length). Written to `out` when given."""
        weights = np.take(self._saturation_at_one, lengths, out=out)
        if len(tf) and tf.max() > 1:
            repeated = np.flatnonzero(tf > 1)
            norm = self._norm_by_length[lengths[repeated]]
            weights[repeated] = tf_okapi(tf[repeated].astype(np.float64), norm, self.k1)
        weights *= scale
        return weights

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
        """Top-k sentences (ids, scores, best first, ties by id) for a weighted sum of term weights.

        Exactly what scoring every posting gives (`search_exhaustive`), but long queries skip the
        postings that cannot reach the top k (MaxScore over per-term bounds). Thread-safe.
        """
        if not weighted_terms or k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0)
        terms = np.array([term_id for term_id, _ in weighted_terms], dtype=np.int64)
        scales = [self.idf[term_id] * query_weight for term_id, query_weight in weighted_terms]
        postings = int((self.post_ptr[terms + 1] - self.post_ptr[terms]).sum())
        if postings > EXHAUSTIVE_POSTINGS and min(scales) > 0:
            found = self._search_pruned(terms, scales, k, postings)
            if found is not None:
                return found
        return self.search_exhaustive(weighted_terms, k)

    def _search_pruned(
        self, terms: np.ndarray, scales: list[float], k: int, postings: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """search's answer, scanning only the postings that can change it (MaxScore, Turtle and Flood 1995);
        None when the exhaustive scorer would be cheaper.

        Terms are scanned shortest list first; the k-th best partial score so far is a floor the top
        k reach. Once the unscanned terms' bounds sum below it, no unseen sentence can make the top
        k: the seen ones are completed by looking the other terms up, weightiest first, dropping every
        sentence whose partial score plus the bounds still missing falls below the floor. Survivors
        are scored exactly, in the reference's term order. When a list that would have to be scanned
        holds most of the query's postings, pruning cannot pay and the exhaustive scorer answers.
        """
        lo, hi = self.post_ptr[terms].tolist(), self.post_ptr[terms + 1].tolist()
        upper = self._weights(self.term_max_tf[terms], self.term_min_len[terms], np.array(scales))
        order = np.argsort(np.subtract(hi, lo), kind="stable").tolist()  # shortest first: cheap, and rare weighs most
        unscanned = [*np.cumsum(upper[order][::-1])[::-1].tolist(), 0.0]  # what terms order[j:] can add at most
        acc, scratch = self._accumulator()
        seen, best, floor, scanned = [], np.empty(0, dtype=np.int32), 0.0, 0
        for i in order:
            if unscanned[scanned] < floor:
                break
            if scanned and hi[i] - lo[i] > MOSTLY * postings:
                acc[np.concatenate(seen)] = 0.0
                return None
            sents = self.post_sent[lo[i] : hi[i]]
            partial = acc[sents]
            seen.append(sents[partial == 0.0])  # every weight is positive: zero means not seen yet
            partial += self._weights(self.post_tf[lo[i] : hi[i]], self.post_len[lo[i] : hi[i]], scales[i],
                                     scratch[: hi[i] - lo[i]])  # fmt: skip
            acc[sents] = partial
            scanned += 1
            if scanned < len(order):
                best, floor = self._raised_floor(acc, best, sents, partial, floor, k)
        seen = np.concatenate(seen)
        candidates = np.sort(seen[acc[seen] + unscanned[scanned] >= floor])
        partial = acc[candidates]  # summed in scan order: good enough to prune, not to rank
        acc[seen] = 0.0
        missing = unscanned[scanned]
        for i in sorted(order[scanned:], key=lambda i: -upper[i]):  # the weightiest first: it prunes the most
            partial += self._gathered(terms[i : i + 1], scales[i : i + 1], candidates)
            missing -= upper[i]
            if len(partial) > k:  # partial scores grew: the floor may rise too
                floor = max(floor, float(np.partition(partial, len(partial) - k)[len(partial) - k]) / (1 + BOUND_SLACK))
            alive = partial + missing >= floor
            candidates, partial = candidates[alive], partial[alive]
        scores = self._gathered(terms, scales, candidates)
        if len(candidates) > k:
            kept = scores >= np.partition(scores, len(scores) - k)[len(scores) - k]  # ties at the cut stay
            candidates, scores = candidates[kept], scores[kept]
        ranked = np.lexsort((candidates, -scores))[:k]
        return candidates[ranked].astype(np.int64), scores[ranked]

    @staticmethod
    def _raised_floor(
        acc: np.ndarray, best: np.ndarray, sents: np.ndarray, partial: np.ndarray, floor: float, k: int
    ) -> tuple[np.ndarray, float]:
        """The best k sentences so far and the k-th best partial score (lowered by the rounding margin),
        after a term raised `sents` to `partial`. Partial scores only grow, so the new best k are among
        the old best k and the sentences this term raised above the old floor."""
        held = np.searchsorted(sents, best)
        pool = np.concatenate([best[sents[np.minimum(held, len(sents) - 1)] != best], sents[partial > floor]])
        if len(pool) < k:
            return pool, floor
        values = acc[pool]
        top = np.argpartition(values, len(pool) - k)[len(pool) - k :]
        return pool[top], float(values[top].min()) / (1 + BOUND_SLACK)

    def _look_up(self, term: int, sents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which of the sorted sentences hold term (a mask) and where their postings are."""
        lo, hi = int(self.post_ptr[term]), int(self.post_ptr[term + 1])
        if hi == lo:
            return np.zeros(len(sents), dtype=bool), np.empty(0, dtype=np.int64)
        listed = self.post_sent[lo:hi]
        at = np.searchsorted(listed, sents)
        np.minimum(at, hi - lo - 1, out=at)
        found = listed[at] == sents
        return found, at[found] + lo

    def _gathered(self, terms: np.ndarray, scales: list[float], sents: np.ndarray) -> np.ndarray:
        """Exact scores of sorted distinct sentences over the given terms, summed term by term in the
        given order, as search_exhaustive sums them (so the floats are identical). A term is looked up
        by binary search, or, for many sentences, scattered into the (zero) accumulator and read back."""
        total = np.zeros(len(sents))
        acc, scratch = self._accumulator()
        for term, scale in zip(terms.tolist(), scales, strict=True):
            lo, hi = int(self.post_ptr[term]), int(self.post_ptr[term + 1])
            if len(sents) * LOOKUP_COST < hi - lo:
                found, rows = self._look_up(term, sents)
                total[found] += self._weights(self.post_tf[rows], self.post_len[rows], scale)
                continue
            listed = self.post_sent[lo:hi]
            acc[listed] = self._weights(self.post_tf[lo:hi], self.post_len[lo:hi], scale, scratch[: hi - lo])
            total += acc[sents]  # adding 0.0 where the term is absent leaves the sum as it was
            acc[listed] = 0.0
        return total

    def search_exhaustive(self, weighted_terms: Sequence[tuple[int, float]], k: int) -> tuple[np.ndarray, np.ndarray]:
        """What `search` returns, found by scoring every posting of the query's terms (the reference).

        Thread-safe (one buffer per thread).
        """
        if not weighted_terms or k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0)
        acc, scratch = self._accumulator()
        touched = []
        for term_id, query_weight in weighted_terms:
            lo, hi = self.post_ptr[term_id], self.post_ptr[term_id + 1]
            sents = self.post_sent[lo:hi]
            scale = self.idf[term_id] * query_weight
            # add.at skips the gathered copy that `acc[sents] += ...` makes; each sentence appears once
            np.add.at(acc, sents, self._weights(self.post_tf[lo:hi], self.post_len[lo:hi], scale, scratch[: hi - lo]))
            touched.append(sents)
        candidates = np.concatenate(touched) if len(touched) > 1 else touched[0]
        scores = acc[candidates]
        acc[candidates] = 0.0
        # A sentence appears once per query term it holds, always with its full score, so the best
        # k * len(touched) entries, with every entry tied at the cut, hold the best k distinct sentences.
        wanted = k * len(touched)
        if len(candidates) > wanted:
            top = np.flatnonzero(scores >= np.partition(scores, len(scores) - wanted)[len(scores) - wanted])
            candidates, scores = candidates[top], scores[top]
        if len(touched) > 1:
            candidates, first = np.unique(candidates, return_index=True)
            scores = scores[first]
        order = np.lexsort((candidates, -scores))[:k]
        return candidates[order].astype(np.int64), scores[order]

    def _accumulator(self) -> tuple[np.ndarray, np.ndarray]:
        """This thread's score per sentence (all zero between searches) and room for one posting list."""
        buffers = getattr(self._buffers, "arrays", None)
        if buffers is None:
            longest = int(self.df.max()) if len(self.df) else 0
            buffers = (np.zeros(self.n_sentences), np.empty(longest))
            self._buffers.arrays = buffers
        return buffers

    def term_weights(self, terms: Sequence[int], sents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per term (rows) and sentence (columns): whether the sentence holds the term, and the
        term's BM25 weight there (0 where absent)."""
        present = np.zeros((len(terms), len(sents)), dtype=bool)
        found = np.zeros((len(terms), len(sents)), dtype=np.int64)  # posting index of (term, sentence)
        for row, term in enumerate(terms):
            lo, hi = self.post_ptr[term], self.post_ptr[term + 1]
            if hi > lo:
                at = np.minimum(np.searchsorted(self.post_sent[lo:hi], sents), hi - lo - 1)
                present[row] = self.post_sent[lo:hi][at] == sents
                found[row] = at + lo
        scale = np.repeat(self.idf[np.asarray(terms, dtype=np.int64)], len(sents))
        weights = self._weights(self.post_tf[found.ravel()], self.post_len[found.ravel()], scale)
        return present, np.where(present, weights.reshape(present.shape), 0.0)

    def neighbour_arrays(self, sents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Previous and next sentence ids in the same document, -1 where there is none."""
        return neighbours_in_documents(sents, self.sent_doc[sents], self.doc_sent_ptr)

    def neighbours(self, sent: int) -> tuple[int | None, int | None]:
        """The indexed sentences just before and after `sent` in the same document."""
        return neighbours_of(sent, int(self.sent_doc[sent]), self.doc_sent_ptr)


def neighbours_in_documents(
    sents: np.ndarray, docs: np.ndarray, doc_sent_ptr: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Previous and next sentence ids of sentences in documents `docs`, -1 past a document's ends."""
    before = np.where(sents - 1 >= doc_sent_ptr[docs], sents - 1, -1)
    after = np.where(sents + 1 < doc_sent_ptr[docs + 1], sents + 1, -1)
    return before, after


def neighbours_of(sent: int, doc: int, doc_sent_ptr: np.ndarray) -> tuple[int | None, int | None]:
    """The sentences just before and after `sent` in its document `doc`, None past its ends."""
    before = sent - 1 if sent - 1 >= doc_sent_ptr[doc] else None
    after = sent + 1 if sent + 1 < doc_sent_ptr[doc + 1] else None
    return before, after


def build_index(root: Path, chunks: Sequence[Chunk], skipped: Sequence[Skipped], k1: float, b: float) -> Index:
    """An Index of the chunks' documents, ordered by path, with a sorted vocabulary."""
    layout = _assemble(chunks)
    postings = _postings(layout.arrays["tok_ids"], layout.lengths, len(layout.vocab))
    return Index(root=root, docs=layout.docs, skipped=tuple(skipped), k1=k1, b=b, vocab=layout.vocab,
                 **_text_layout(chunks, layout.doc_runs), **layout.arrays, **postings,
                 **_derived(layout.vocab, postings))  # fmt: skip


def refresh_index(
    old: Index,
    changed: Sequence[Chunk],
    keep: Iterable[str],
    skipped: Sequence[Skipped],
    renewed: Mapping[str, DocInfo] | None = None,
) -> Index:
    """A new Index of old's documents in `keep` (arrays reused, nothing re-read) plus `changed` ones;
    `renewed` gives new DocInfo (a new mtime, same bytes) for some kept documents.

    The result equals build_index over the same documents: same order, vocabulary, ids and postings.
    Old postings are remapped and the changed documents' postings merged in, without a full sort.
    """
    keep = set(keep) - {doc.path for chunk in changed for doc in chunk.docs}
    renewed = renewed or {}
    stored = Chunk(
        docs=tuple(renewed.get(doc.path, doc) for doc in old.docs),
        text=np.empty(0, dtype=np.uint8),  # kept documents keep their text where it is
        text_lengths=old.doc_text_end - old.doc_text_start,
        sent_counts=np.diff(old.doc_sent_ptr),
        starts=old.sent_start,
        ends=old.sent_end,
        lines=old.sent_line,
        end_lines=old.sent_end_line,
        columns=old.sent_column,
        para_before=old.sent_para_before,
        para_after=old.sent_para_after,
        cues=old.sent_cues,
        lengths=np.diff(old.tok_ptr),
        tok_ids=old.tok_ids,
        vocab=old.vocab,
    )
    chunks = [stored, *changed]
    layout = _assemble(chunks, wanted=lambda doc: doc.path in keep)
    postings = _merged_postings(old, layout)
    text = _compacted(**_text_layout(chunks, layout.doc_runs, old))
    return Index(root=old.root, docs=layout.docs, skipped=tuple(skipped), k1=old.k1, b=old.b, vocab=layout.vocab,
                 **text, **layout.arrays, **postings, **_derived(layout.vocab, postings))  # fmt: skip


def _derived(vocab: Sequence[str], postings: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What an Index stores beside its postings so that no process recomputes it: term bounds, bigrams."""
    table = bigram_table(vocab)
    bigrams = {"gram_codes": table.codes, "gram_ptr": table.ptr, "gram_terms": table.terms,
               "term_grams": table.term_grams, "term_length": table.term_length, "term_first": table.term_first}
    return {**_term_bounds(postings["post_ptr"], postings["post_tf"], postings["post_len"]), **bigrams}


def _term_bounds(post_ptr: np.ndarray, post_tf: np.ndarray, post_len: np.ndarray) -> dict[str, np.ndarray]:
    """Per term: the largest tf and the shortest sentence among its postings (every term has one)."""
    if not len(post_tf):
        return {"term_max_tf": np.empty(0, dtype=np.uint16), "term_min_len": np.empty(0, dtype=np.uint16)}
    return {
        "term_max_tf": np.maximum.reduceat(post_tf, post_ptr[:-1]).astype(np.uint16),
        "term_min_len": np.minimum.reduceat(post_len, post_ptr[:-1]).astype(np.uint16),
    }


@dataclass(frozen=True, slots=True)
class _Layout:
    """Everything of an Index but its postings, and where each chunk's sentences and terms went."""

    docs: tuple[DocInfo, ...]
    vocab: tuple[str, ...]
    arrays: dict[str, np.ndarray]
    lengths: np.ndarray  # int64, terms per sentence
    doc_runs: list[tuple[int, int, int]]  # (chunk, first, stop) of documents copied, in order
    first_term_map: np.ndarray  # chunk 0's term id -> new term id, -1 if no longer used
    sentence_runs: list[tuple[int, int, int, int]]  # (chunk, first, stop, new first) of copied sentences


def _pointers(counts: np.ndarray) -> np.ndarray:
    ptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr


def _assemble(chunks: Sequence[Chunk], wanted: Callable[[DocInfo], bool] | None = None) -> _Layout:
    """The chunks' documents (those of the first chunk that `wanted` accepts) laid out by path.

    Documents are copied a run of consecutive ones at a time, straight from their chunk, so time and
    memory grow with the output; terms are renumbered into one sorted vocabulary of the terms used.
    """
    picked = [
        (doc.path, c, i)
        for c, chunk in enumerate(chunks)
        for i, doc in enumerate(chunk.docs)
        if c > 0 or wanted is None or wanted(doc)
    ]
    picked.sort()
    runs: list[list[int]] = []  # [chunk, first doc, stop doc]
    for _, c, i in picked:
        if runs and runs[-1][0] == c and runs[-1][2] == i:
            runs[-1][2] += 1
        else:
            runs.append([c, i, i + 1])

    union: dict[str, int] = {}
    to_union = [
        np.fromiter((union.setdefault(t, len(union)) for t in chunk.vocab), dtype=np.int32, count=len(chunk.vocab))
        for chunk in chunks
    ]
    pointers = [(_pointers(chunk.sent_counts), _pointers(chunk.lengths)) for chunk in chunks]

    def take(field: str, level: str, dtype: type) -> np.ndarray:
        pieces = []
        for c, first, stop in runs:
            sent_ptr, tok_ptr = pointers[c]
            if level == "doc":
                lo, hi = first, stop
            elif level == "sentence":
                lo, hi = sent_ptr[first], sent_ptr[stop]
            else:
                lo, hi = tok_ptr[sent_ptr[first]], tok_ptr[sent_ptr[stop]]
            piece = getattr(chunks[c], field)[lo:hi]
            pieces.append(to_union[c][piece] if field == "tok_ids" else piece)
        return _joined(pieces, dtype)

    tok_ids = take("tok_ids", "token", np.int32)
    union_terms = list(union)
    used = np.flatnonzero(np.bincount(tok_ids, minlength=len(union_terms)))
    vocab = sorted(union_terms[i] for i in used.tolist())
    renumber = np.full(len(union_terms), -1, dtype=np.int32)
    renumber[[union[term] for term in vocab]] = np.arange(len(vocab), dtype=np.int32)
    tok_ids = renumber[tok_ids]
    sent_counts = take("sent_counts", "doc", np.int64)
    lengths = take("lengths", "sentence", np.int64)
    sentence_runs, placed = [], 0
    for c, first, stop in runs:
        lo, hi = pointers[c][0][first], pointers[c][0][stop]
        sentence_runs.append((c, int(lo), int(hi), placed))
        placed += int(hi - lo)
    arrays = {
        "doc_sent_ptr": _pointers(sent_counts),
        "sent_doc": np.repeat(np.arange(len(sent_counts), dtype=np.int32), sent_counts),
        "sent_start": take("starts", "sentence", np.int64),
        "sent_end": take("ends", "sentence", np.int64),
        "sent_line": take("lines", "sentence", np.int32),
        "sent_end_line": take("end_lines", "sentence", np.int32),
        "sent_column": take("columns", "sentence", np.int32),
        "sent_para_before": take("para_before", "sentence", np.int32),
        "sent_para_after": take("para_after", "sentence", np.int32),
        "sent_cues": take("cues", "sentence", np.uint8),
        "tok_ptr": _pointers(lengths),
        "tok_ids": tok_ids,
    }
    return _Layout(
        docs=tuple(chunks[c].docs[i] for _, c, i in picked),
        vocab=tuple(vocab),
        arrays=arrays,
        lengths=lengths,
        doc_runs=[(c, first, stop) for c, first, stop in runs],
        first_term_map=renumber[to_union[0]] if chunks else np.empty(0, dtype=np.int32),
        sentence_runs=sentence_runs,
    )


def _text_layout(
    chunks: Sequence[Chunk], doc_runs: Sequence[tuple[int, int, int]], old: Index | None = None
) -> dict:
    """Where each document's text lives: old's documents (chunk 0 when old is given) stay in their
    packs; the other chunks' text is copied, in document order, into one new pack."""
    packs, fresh = list(old.text_packs) if old else [], []
    doc_pack, starts, ends = [], [], []
    written = 0
    for c, first, stop in doc_runs:
        if old is not None and c == 0:
            doc_pack.append(old.doc_pack[first:stop])
            starts.append(old.doc_text_start[first:stop])
            ends.append(old.doc_text_end[first:stop])
            continue
        text_ptr = _pointers(chunks[c].text_lengths)
        fresh.append(chunks[c].text[text_ptr[first] : text_ptr[stop]])
        doc_pack.append(np.full(stop - first, len(packs), dtype=np.int32))
        starts.append(text_ptr[first:stop] - text_ptr[first] + written)
        ends.append(text_ptr[first + 1 : stop + 1] - text_ptr[first] + written)
        written += int(text_ptr[stop] - text_ptr[first])
    if fresh:
        packs.append(TextPack.new(_joined(fresh, np.uint8)))

    return {
        "text_packs": tuple(packs),
        "doc_pack": _joined(doc_pack, np.int32),
        "doc_text_start": _joined(starts, np.int64),
        "doc_text_end": _joined(ends, np.int64),
    }


def _compacted(
    text_packs: tuple[TextPack, ...], doc_pack: np.ndarray, doc_text_start: np.ndarray, doc_text_end: np.ndarray
) -> dict:
    """The text layout without packs no document uses, and with dead bytes and small packs merged
    away once they outweigh the live text.

    Mostly dead packs: every document is copied into one new pack. Too many packs: all packs but
    the largest are merged into one. Otherwise only unused packs are dropped.
    """
    used = np.bincount(doc_pack, minlength=len(text_packs)) > 0
    if not used.all():
        text_packs = tuple(pack for pack, u in zip(text_packs, used, strict=True) if u)
        doc_pack = (np.cumsum(used) - 1)[doc_pack].astype(np.int32)
    sizes = np.array([len(pack.data) for pack in text_packs], dtype=np.int64)
    live = int((doc_text_end - doc_text_start).sum())
    if live >= COMPACT_LIVE_SHARE * sizes.sum() and len(text_packs) <= MAX_PACKS:
        return {"text_packs": text_packs, "doc_pack": doc_pack, "doc_text_start": doc_text_start,
                "doc_text_end": doc_text_end}  # fmt: skip
    moved = (
        np.ones(len(text_packs), dtype=bool)
        if live < COMPACT_LIVE_SHARE * sizes.sum()
        else np.arange(len(text_packs)) != np.argmax(sizes)
    )
    kept_packs = [pack for pack, m in zip(text_packs, moved, strict=True) if not m]
    renumber = np.cumsum(~moved) - 1
    copied = np.flatnonzero(moved[doc_pack])
    placed = _pointers(doc_text_end[copied] - doc_text_start[copied])
    pieces = [text_packs[doc_pack[d]].data[doc_text_start[d] : doc_text_end[d]] for d in copied.tolist()]
    starts, ends = doc_text_start.copy(), doc_text_end.copy()
    starts[copied], ends[copied] = placed[:-1], placed[1:]
    doc_pack = np.where(moved[doc_pack], len(kept_packs), renumber[doc_pack]).astype(np.int32)
    return {"text_packs": (*kept_packs, TextPack.new(_joined(pieces, np.uint8))), "doc_pack": doc_pack,
            "doc_text_start": starts, "doc_text_end": ends}  # fmt: skip


def _postings(tok_ids: np.ndarray, lengths: np.ndarray, n_terms: int) -> dict[str, np.ndarray]:
    """Posting lists (term-major, sentences ascending) with term frequencies, fully vectorised.

    Works in place where it can: on a VM, touching fresh memory costs more than the arithmetic.
    """
    n_sent = len(lengths)
    bits = max(n_sent, 1).bit_length()  # (term << bits) | sentence sorts term-major, then by sentence
    pairs = tok_ids.astype(np.int64)
    pairs <<= bits
    pairs |= np.repeat(np.arange(n_sent, dtype=np.int64), lengths)
    pairs.sort()
    first = np.empty(len(pairs), dtype=bool)
    first[:1] = True
    np.not_equal(pairs[1:], pairs[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    post_tf = np.diff(starts, append=len(pairs)).astype(np.uint16)  # a sentence holds at most 1000 characters
    pairs = pairs[starts]
    del starts, first
    post_sent = (pairs & ((1 << bits) - 1)).astype(np.int32)
    pairs >>= bits
    df = np.bincount(pairs, minlength=n_terms).astype(np.int64)
    post_len = lengths.astype(np.uint16)[post_sent]
    return {"df": df, "post_ptr": _pointers(df), "post_sent": post_sent, "post_tf": post_tf, "post_len": post_len}


def _merged_postings(old: Index, layout: _Layout) -> dict[str, np.ndarray]:
    """The postings of a refreshed layout: old's postings of kept sentences, renumbered (both maps
    keep order, so they stay sorted), with the postings of the newly read sentences inserted."""
    sent_map = np.full(old.n_sentences, -1, dtype=np.int32)
    new_sents = []
    for c, lo, hi, placed in layout.sentence_runs:
        if c == 0:
            sent_map[lo:hi] = np.arange(placed, placed + hi - lo, dtype=np.int32)
        else:
            new_sents.append(np.arange(placed, placed + hi - lo, dtype=np.int64))
    renumbered = sent_map[old.post_sent]
    dropped = np.flatnonzero(renumbered < 0)
    dropped_terms = np.searchsorted(old.post_ptr, dropped, side="right") - 1
    kept_per_old_term = old.df - np.bincount(dropped_terms, minlength=len(old.vocab))
    kept = {"post_sent": np.delete(renumbered, dropped)}
    del renumbered
    kept.update({name: np.delete(getattr(old, name), dropped) for name in ("post_tf", "post_len")})
    kept_df = np.zeros(len(layout.vocab), dtype=np.int64)
    live = kept_per_old_term > 0  # a term with no kept sentence may have left the vocabulary
    kept_df[layout.first_term_map[live]] = kept_per_old_term[live]
    kept_ptr = _pointers(kept_df)

    sents = np.concatenate(new_sents) if new_sents else np.empty(0, dtype=np.int64)
    lengths = layout.lengths[sents]
    first_token = layout.arrays["tok_ptr"][sents] - _pointers(lengths)[:-1]
    tokens = np.repeat(first_token, lengths) + np.arange(int(lengths.sum()))
    fresh = _postings(layout.arrays["tok_ids"][tokens], lengths, len(layout.vocab))
    fresh_sent = sents[fresh["post_sent"]].astype(np.int32)
    # Where each new posting goes among the kept ones: after its term's earlier terms, by sentence.
    insert_at = np.empty(len(fresh_sent), dtype=np.int64)
    for term in np.flatnonzero(fresh["df"]).tolist():
        lo, hi = fresh["post_ptr"][term], fresh["post_ptr"][term + 1]
        kept_lo, kept_hi = kept_ptr[term], kept_ptr[term + 1]
        insert_at[lo:hi] = kept_lo + np.searchsorted(kept["post_sent"][kept_lo:kept_hi], fresh_sent[lo:hi])
    fresh["post_sent"] = fresh_sent
    df = kept_df + fresh["df"]
    merged = {name: np.insert(kept[name], insert_at, fresh[name]) for name in ("post_sent", "post_tf", "post_len")}
    return {"df": df, "post_ptr": _pointers(df), **merged}


def idf_of_unknown(n_sentences: int) -> float:
    """IDF a term would have if no sentence contained it (BM25Okapi, df = 0)."""
    return math.log(n_sentences + 0.5) - math.log(0.5)
