"""The index of a corpus's sentences: what it remembers of each file (DocInfo), its arrays (Index),
and what they answer: sentences, their text and neighbours, and BM25 search (scoring.py's Bm25Postings).

Building and refreshing an Index live in postings.py, its document text in text_packs.py, storing
it in store.py.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qabot.corpus import Skipped
from qabot.generations import CacheInvalid, JsonColumn
from qabot.scoring import Bm25Postings, idf_okapi
from qabot.text_packs import TextPack
from qabot.variants import BigramTable


@dataclass(frozen=True, slots=True)
class DocInfo:
    """What the index remembers of a file to tell whether it changed.

    A ctime_ns of -1 is unknown (an index stored before it was kept): the file's bytes are checked once.
    """

    path: str
    sha256: str
    title: str
    date: str | None
    size: int
    mtime_ns: int
    ctime_ns: int = -1
    url: str | None = None  # the article's original web address (front matter url or source)


class DocTable(Sequence[DocInfo]):
    """A stored index's documents as columns, each DocInfo made when it is asked for: a fresh process
    compares 50,000 files' paths, sizes and times as arrays and makes objects only for what it shows.

    `details` holds (sha256, title, date, url) of document d at 4d .. 4d + 3. Once iterated (a refresh
    reads every document, twice), the DocInfo are kept.
    """

    __slots__ = ("_details", "_made", "ctimes_ns", "mtimes_ns", "paths", "sizes")

    def __init__(self, paths: Sequence[str], details: JsonColumn, sizes: np.ndarray, mtimes_ns: np.ndarray,
                 ctimes_ns: np.ndarray) -> None:  # fmt: skip
        self.paths, self.sizes, self.mtimes_ns, self.ctimes_ns = paths, sizes, mtimes_ns, ctimes_ns
        self._details = details
        self._made: list[DocInfo] | None = None

    @staticmethod
    def columns(docs: Sequence[DocInfo]) -> dict[str, np.ndarray]:
        """The arrays that store docs (named as the generation's files)."""
        path_text, path_starts = JsonColumn.encode([doc.path for doc in docs])
        detail_text, detail_starts = JsonColumn.encode(
            [value for doc in docs for value in (doc.sha256, doc.title, doc.date, doc.url)]
        )
        return {
            "doc_path_text": path_text, "doc_path_starts": path_starts, "doc_detail_text": detail_text,
            "doc_detail_starts": detail_starts, "doc_size": np.array([doc.size for doc in docs], dtype=np.int64),
            "doc_mtime_ns": np.array([doc.mtime_ns for doc in docs], dtype=np.int64),
            "doc_ctime_ns": np.array([doc.ctime_ns for doc in docs], dtype=np.int64),
        }  # fmt: skip

    @staticmethod
    def stored(arrays: Mapping[str, np.ndarray]) -> DocTable:
        """The documents that `columns` stored; CacheInvalid when the columns do not agree."""
        paths = JsonColumn(arrays["doc_path_text"], arrays["doc_path_starts"]).decoded()
        details = JsonColumn(arrays["doc_detail_text"], arrays["doc_detail_starts"])
        sizes, mtimes, ctimes = arrays["doc_size"], arrays["doc_mtime_ns"], arrays["doc_ctime_ns"]
        if not (len(details) == 4 * len(paths) and len(sizes) == len(mtimes) == len(ctimes) == len(paths)
                and set(map(type, paths)) <= {str}):  # fmt: skip
            raise CacheInvalid("the documents' columns do not agree")
        return DocTable(paths, details, sizes, mtimes, ctimes)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, at):  # type: ignore[override]
        if isinstance(at, slice):
            return [self[i] for i in range(*at.indices(len(self)))]
        at = range(len(self))[at]
        if self._made is not None:
            return self._made[at]
        sha256, title, date, url = self._details[4 * at : 4 * at + 4]
        return DocInfo(self.paths[at], sha256, title, date, int(self.sizes[at]), int(self.mtimes_ns[at]),
                       int(self.ctimes_ns[at]), url)  # fmt: skip

    def __iter__(self) -> Iterator[DocInfo]:
        if self._made is None:
            details = self._details.decoded()
            self._made = list(map(DocInfo, self.paths, details[0::4], details[1::4], details[2::4],
                                  self.sizes.tolist(), self.mtimes_ns.tolist(), self.ctimes_ns.tolist(),
                                  details[3::4]))  # fmt: skip
        return iter(self._made)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


# A lookup in a stored vocabulary decodes about log2(V) terms, each costing some 400 times what decoding one
# term costs when the whole vocabulary is decoded at once; after V / LOOKUPS_PER_DECODE lookups the lazy probes
# have cost what decoding everything would, so the vocabulary is decoded into a dictionary (a fresh `qabot ask`
# makes ~20 lookups; a long-lived process makes thousands, at 0.3 us each instead of 3 us by bisection).
LOOKUPS_PER_DECODE = 400


class VocabularyIds(Mapping[str, int]):
    """A sorted vocabulary's term -> id (its position), by binary search: an index opens without
    building a dictionary of every term, which a fresh process would pay for a handful of lookups.
    Once a long-lived process has looked up enough terms to make it cheaper, the vocabulary (read
    term by term when stored) is decoded into a dictionary."""

    __slots__ = ("_lookups", "_vocab")

    def __init__(self, vocab: Sequence[str]) -> None:
        self._vocab: Sequence[str] | dict[str, int] = vocab
        self._lookups = 0

    def get(self, term: str, default: int | None = None) -> int | None:  # type: ignore[override]
        vocab = self._vocab
        if isinstance(vocab, dict):
            return vocab.get(term, default)
        self._lookups += 1
        if self._lookups * LOOKUPS_PER_DECODE > len(vocab):
            decoded = vocab.decoded() if isinstance(vocab, JsonColumn) else vocab
            self._vocab = {known: at for at, known in enumerate(decoded)}  # threads racing here build the same one
            return self._vocab.get(term, default)
        at = bisect_left(vocab, term)
        return at if at < len(vocab) and vocab[at] == term else default

    def __getitem__(self, term: str) -> int:
        at = self.get(term)
        if at is None:
            raise KeyError(term)
        return at

    def __contains__(self, term: object) -> bool:
        return isinstance(term, str) and self.get(term) is not None

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
    docs: Sequence[DocInfo]  # a tuple, or a stored index's DocTable
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
    vocab: Sequence[str]  # sorted terms (a tuple, or a stored index's JsonColumn); a term's id is its position
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
    term_ids: VocabularyIds = field(init=False, repr=False, compare=False)
    # The postings scored with this index's own statistics, or the whole corpus's (with_statistics).
    scorer: Bm25Postings = field(init=False, repr=False, compare=False)
    _text_cache: dict[int, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n_sent = len(self.sent_doc)
        avgdl = float(self.tok_ptr[-1]) / n_sent if n_sent else 1.0
        self.with_statistics(idf_okapi(self.df.astype(np.float64), n_sent), avgdl)
        object.__setattr__(self, "term_ids", VocabularyIds(self.vocab))
        object.__setattr__(self, "_text_cache", {})

    def with_statistics(self, idf: np.ndarray, avgdl: float) -> Index:
        """This index, from now on weighing terms with the given IDF (per term) and average sentence
        length: a shard's are the whole corpus's, so each weight equals the single index's bit for bit."""
        scorer = Bm25Postings(self.post_ptr, self.post_sent, self.post_tf, self.post_len, self.term_max_tf,
                              self.term_min_len, len(self.sent_doc), idf, avgdl, self.k1, self.b,
                              (self.tok_ptr, self.tok_ids))  # fmt: skip
        object.__setattr__(self, "scorer", scorer)
        return self

    @property
    def idf(self) -> np.ndarray:
        """float64[V]: BM25Okapi IDF of each term, as the scorer weighs it."""
        return self.scorer.idf

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

    def score_all(self, terms: Sequence[str]) -> np.ndarray:
        """BM25Okapi score of every sentence for a query given as terms (rank-bm25's get_scores)."""
        scores = np.zeros(self.n_sentences)
        for term in terms:
            term_id = self.term_ids.get(term)
            if term_id is not None:
                sents, weights = self.scorer.postings(term_id)
                scores[sents] += weights
        return scores

    def search(self, weighted_terms: Sequence[tuple[int, float]], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k sentences (ids, scores, best first, ties by id) for a weighted sum of term weights
        (Bm25Postings.search: exact, pruned for long queries). Thread-safe."""
        return self.scorer.search(weighted_terms, k)

    def search_exhaustive(self, weighted_terms: Sequence[tuple[int, float]], k: int) -> tuple[np.ndarray, np.ndarray]:
        """What `search` returns, found by scoring every posting of the query's terms (the reference)."""
        return self.scorer.search_exhaustive(weighted_terms, k)

    def term_weights(self, terms: Sequence[int], sents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per term (rows) and sentence (columns): whether the sentence holds the term, and the
        term's BM25 weight there (0 where absent)."""
        return self.scorer.term_weights(terms, sents)

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
