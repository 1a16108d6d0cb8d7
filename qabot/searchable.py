"""What the answerer may read of an index: the one interface a single Index and a ShardedIndex share.

Sentence and document ids are the single index's (documents by path, sentences in order), so an
answerer written against this Protocol gives the same answers over shards. Reaching past it (postings,
token arrays, text packs) would only work in one process; add what you need here and in shards.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qabot.corpus import Skipped
from qabot.index import DocInfo
from qabot.variants import BigramTable


class SentenceField(Protocol):
    """One value per sentence (a document id, an offset, a line), read by sentence id or ids."""

    def __getitem__(self, sents: Any) -> Any: ...

    def __len__(self) -> int: ...


class SearchableIndex(Protocol):
    """BM25Okapi over sentences, as `qabot.index.Index` offers it to `qabot.answer.Answerer`."""

    @property
    def root(self) -> Path: ...

    @property
    def docs(self) -> Sequence[DocInfo]: ...

    @property
    def skipped(self) -> Sequence[Skipped]: ...

    @property
    def n_sentences(self) -> int: ...

    @property
    def k1(self) -> float:
        """BM25's term-frequency saturation parameter."""

    @property
    def vocab(self) -> Sequence[str]:
        """Sorted terms; a term's id is its position."""

    @property
    def term_ids(self) -> Mapping[str, int]: ...

    @property
    def bigrams(self) -> BigramTable:
        """The spelling-variant lookup table of the vocabulary."""

    @property
    def df(self) -> np.ndarray:
        """Sentences holding each term (corpus-wide)."""

    @property
    def idf(self) -> np.ndarray:
        """BM25Okapi IDF of each term (corpus-wide)."""

    @property
    def doc_sent_ptr(self) -> np.ndarray:
        """int64[D + 1]: document d holds sentences doc_sent_ptr[d]:doc_sent_ptr[d + 1]."""

    @property
    def sent_doc(self) -> SentenceField: ...

    @property
    def sent_start(self) -> SentenceField: ...

    @property
    def sent_end(self) -> SentenceField: ...

    @property
    def sent_line(self) -> SentenceField: ...

    @property
    def sent_end_line(self) -> SentenceField: ...

    @property
    def sent_column(self) -> SentenceField: ...

    def search(self, weighted_terms: Sequence[tuple[int, float]], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k sentence ids and scores, best first, ties by id."""

    def term_weights(self, terms: Sequence[int], sents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per term and sentence (-1 allowed, never present): presence, and BM25 weight (0 if absent)."""

    def neighbour_arrays(self, sents: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def neighbours(self, sent: int) -> tuple[int | None, int | None]: ...

    def sentence_text(self, sent: int) -> str: ...

    def sentence_terms(self, sent: int) -> np.ndarray: ...

    def doc_text(self, doc_id: int) -> str: ...

    def paragraph_bounds(self, sents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First and stop sentence ids of the paragraph holding each sentence."""

    def cues(self, sents: np.ndarray) -> np.ndarray:
        """The answer_type.sentence_cues bits of each sentence."""
