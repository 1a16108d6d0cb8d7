"""The sharded index as the answerer sees it: ShardedIndex offers what a single Index offers
(searchable.SearchableIndex) over shards served in this process or on a Dask cluster, with the
single index's ids, scores and answers; ShardedAnswerer marks answers that miss a shard.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from qabot.answer import Answerer, AnswerParams
from qabot.index import neighbours_in_documents, neighbours_of
from qabot.model import Answer
from qabot.shard_server import LocalRunner, Prefetched, SentenceBatch, merge_prefetched
from qabot.shards import (
    Manifest,
    OpenedShards,
    ShardPool,
    ShardRunner,
    ShardsDamaged,
    ShardsUnavailable,
    global_idf,
    open_shards,
    shard_folder,
    shard_name,
)
from qabot.store import IndexParams, Warn
from qabot.variants import BigramTable, bigram_table

if TYPE_CHECKING:
    from qabot.config import Settings

CACHED_SENTENCES = 100_000  # sentence texts and terms the coordinator keeps (about 30 MB)
PREFETCH_SPARE = 4  # candidates a shard prefetches beyond twice its share of the top k


@dataclass(frozen=True, slots=True)
class _Sentence:
    """What the answerer reads of one sentence, as its shard sent it."""

    text: str
    terms: np.ndarray
    start: int
    end: int
    line: int
    end_line: int
    column: int
    para_before: int  # sentences of its paragraph before and after it
    para_after: int
    cues: int  # answer_type.sentence_cues


class _PrefetchLookup:
    """A search's Prefetched, found by sentence id and term id."""

    def __init__(self, prefetched: Prefetched) -> None:
        self.prefetched = prefetched
        self.weighed = _SortedIds(prefetched.weighed)
        self.shipped = _SortedIds(prefetched.batch.sents)
        self.rows = {term: row for row, term in enumerate(prefetched.terms)}

    def fill(self, terms: Sequence[int], sents: np.ndarray, present: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Copy the prefetched columns of term_weights(terms, sents) into present and weights;
        returns which sentences were filled (none unless every term was prefetched)."""
        rows = [self.rows.get(term) for term in terms]
        if None in rows:
            return np.zeros(len(sents), dtype=bool)
        found, columns = self.weighed.find(sents)
        present[:, found] = self.prefetched.present[rows][:, columns[found]]
        weights[:, found] = self.prefetched.weights[rows][:, columns[found]]
        return found

    def sentence(self, sent: int) -> _Sentence | None:
        found, columns = self.shipped.find(np.array([sent], dtype=np.int64))
        return _sentence_of(self.prefetched.batch, int(columns[0])) if found[0] else None


class _SortedIds:
    """Sentence ids, found by binary search."""

    def __init__(self, sents: np.ndarray) -> None:
        self.order = np.argsort(sents, kind="stable")
        self.sorted = sents[self.order]

    def find(self, sents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each sentence is here, and its position in the ids given where it is."""
        if not len(self.sorted):
            return np.zeros(len(sents), dtype=bool), np.zeros(len(sents), dtype=np.int64)
        at = np.minimum(np.searchsorted(self.sorted, sents), len(self.sorted) - 1)
        return self.sorted[at] == sents, self.order[at]


def _sentence_of(batch: SentenceBatch, i: int) -> _Sentence:
    return _Sentence(batch.texts[i], batch.terms[batch.term_ptr[i] : batch.term_ptr[i + 1]], int(batch.starts[i]),
                     int(batch.ends[i]), int(batch.lines[i]), int(batch.end_lines[i]), int(batch.columns[i]),
                     int(batch.para_before[i]), int(batch.para_after[i]), int(batch.cues[i]))  # fmt: skip


class _SentenceField:
    """A per-sentence value of ShardedIndex (sent_start, ...), read from its shard on first use."""

    def __init__(self, index: ShardedIndex, name: str) -> None:
        self.index, self.name = index, name

    def __getitem__(self, sents: Any) -> Any:
        if np.ndim(sents) == 0:
            return getattr(self.index._sentence(int(sents)), self.name)
        records = self.index._records(np.asarray(sents, dtype=np.int64).ravel())
        return np.array([getattr(record, self.name) for record in records], dtype=np.int64).reshape(np.shape(sents))

    def __len__(self) -> int:
        return self.index.n_sentences


class _DocOfSentence:
    """sent_doc of ShardedIndex: computed from the document pointers, no shard asked."""

    def __init__(self, doc_sent_ptr: np.ndarray) -> None:
        self.doc_sent_ptr = doc_sent_ptr

    def __getitem__(self, sents: Any) -> Any:
        # 'right' skips documents without an indexed sentence, which share the next one's start
        return np.searchsorted(self.doc_sent_ptr, sents, side="right") - 1

    def __len__(self) -> int:
        return int(self.doc_sent_ptr[-1])


class ShardedIndex:
    """The corpus-wide index the Answerer reads (searchable.SearchableIndex), over a ShardPool.

    Statistics, documents and neighbours are answered here; a search fans out to every shard and
    merges, each shard sending along the term weights and sentences of its candidates and their
    neighbours, which is what the answerer reads next; anything else is asked of its shard.
    """

    def __init__(self, manifest: Manifest, pool: ShardPool, k1: float, b: float) -> None:
        self.manifest, self.pool = manifest, pool
        self.root, self.docs, self.skipped = manifest.root, manifest.docs, manifest.skipped
        self.k1, self.b = k1, b
        self.vocab = manifest.vocab
        self.term_ids = {term: i for i, term in enumerate(self.vocab)}
        self.df = manifest.df
        self.idf = global_idf(manifest)
        self.doc_sent_ptr = manifest.doc_sent_ptr
        self.doc_shard = manifest.doc_shard
        self.doc_local = np.zeros(len(self.doc_shard), dtype=np.int64)
        for s in range(len(manifest.shards)):
            held = np.flatnonzero(self.doc_shard == s)
            self.doc_local[held] = np.arange(len(held))
        self.sent_doc = _DocOfSentence(self.doc_sent_ptr)
        self.sent_start, self.sent_end = _SentenceField(self, "start"), _SentenceField(self, "end")
        self.sent_line, self.sent_end_line = _SentenceField(self, "line"), _SentenceField(self, "end_line")
        self.sent_column, self.sent_cues = _SentenceField(self, "column"), _SentenceField(self, "cues")
        self.sent_para_before = _SentenceField(self, "para_before")
        self.sent_para_after = _SentenceField(self, "para_after")
        self._cache: OrderedDict[int, _Sentence] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._question = threading.local()

    @property
    def n_sentences(self) -> int:
        return self.manifest.n_sentences

    @property
    def n_shards(self) -> int:
        return len(self.manifest.shards)

    def begin_question(self) -> None:
        """Start collecting, for this thread, the shards a search could not reach."""
        self._question.missing = set()

    def missing_shards(self) -> tuple[int, ...]:
        return tuple(sorted(getattr(self._question, "missing", ())))

    def _shards_of(self, sents: np.ndarray) -> np.ndarray:
        return self.doc_shard[self.sent_doc[sents]]

    def search(self, weighted_terms: Sequence[tuple[int, float]], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Every shard's top-k, merged: the single index's top-k (ids and scores) when all answer."""
        if not weighted_terms or k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0)
        if self.pool.prefetch:
            # A shard seldom holds more than twice its share of the top k; the rest is fetched when needed.
            request: tuple = (list(weighted_terms), k, min(k, 2 * -(-k // self.n_shards) + PREFETCH_SPARE))
            method = "search_prefetch"
        else:
            request, method = (list(weighted_terms), k), "search"
        results, failed = self.pool.call(method, dict.fromkeys(range(self.n_shards), request))
        if failed:
            missing = getattr(self._question, "missing", None)
            if missing is None:
                raise ShardsUnavailable(_unavailable(failed, self.n_shards), failed)
            missing.update(failed)
        sents = np.concatenate([np.empty(0, dtype=np.int64), *(results[s][0] for s in sorted(results))])
        scores = np.concatenate([np.empty(0), *(results[s][1] for s in sorted(results))])
        order = np.lexsort((sents, -scores))[:k]
        if results and self.pool.prefetch:
            self._question.prefetched = _PrefetchLookup(merge_prefetched([results[s][2] for s in sorted(results)]))
        return sents[order].astype(np.int64), scores[order]

    def term_weights(self, terms: Sequence[int], sents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index.term_weights: from what the last search prefetched, else asked of the shards holding
        the sentences (which also send their text)."""
        sents = np.asarray(sents, dtype=np.int64)
        present = np.zeros((len(terms), len(sents)), dtype=bool)
        weights = np.zeros((len(terms), len(sents)))
        wanted = (sents >= 0) & (sents < self.n_sentences)
        prefetched = getattr(self._question, "prefetched", None)
        if prefetched is not None:
            wanted &= ~prefetched.fill(terms, sents, present, weights)
        columns = np.flatnonzero(wanted)
        owners = self._shards_of(sents[columns])
        requests = {int(s): (list(terms), sents[columns[owners == s]]) for s in np.unique(owners)}
        for s, (shard_present, shard_weights, batch) in self._call_all("details", requests).items():
            cols = columns[owners == s]
            present[:, cols], weights[:, cols] = shard_present, shard_weights
            self._remember(batch)
        return present, weights

    def _call_all(self, method: str, requests: Mapping[int, tuple]) -> dict[int, Any]:
        """Results of every request; ShardsUnavailable when a shard could not answer."""
        if not requests:
            return {}
        results, failed = self.pool.call(method, requests)
        if failed:
            raise ShardsUnavailable(_unavailable(failed, self.n_shards), failed)
        return results

    def _remember(self, batch: SentenceBatch) -> None:
        with self._cache_lock:
            for i, sent in enumerate(batch.sents.tolist()):
                self._cache[sent] = _sentence_of(batch, i)
                self._cache.move_to_end(sent)
            while len(self._cache) > CACHED_SENTENCES:
                self._cache.popitem(last=False)

    def _sentence(self, sent: int) -> _Sentence:
        prefetched = getattr(self._question, "prefetched", None)
        cached = prefetched.sentence(sent) if prefetched is not None else None
        if cached is not None:
            return cached
        with self._cache_lock:
            cached = self._cache.get(sent)
        if cached is not None:
            return cached
        if not 0 <= sent < self.n_sentences:
            raise IndexError(f"sentence {sent} is not in the index")
        shard = int(self._shards_of(np.array([sent]))[0])
        self._remember(self._call_all("sentences", {shard: (np.array([sent], dtype=np.int64),)})[shard])
        with self._cache_lock:
            return self._cache[sent]

    def sentence_text(self, sent: int) -> str:
        return self._sentence(sent).text

    def sentence_terms(self, sent: int) -> np.ndarray:
        return self._sentence(sent).terms

    def doc_text(self, doc_id: int) -> str:
        shard = int(self.doc_shard[doc_id])
        return self._call_all("doc_text", {shard: (int(self.doc_local[doc_id]),)})[shard]

    @cached_property
    def bigrams(self) -> BigramTable:
        """The spelling-variant table of the global vocabulary, built on first use."""
        return bigram_table(self.vocab)

    def paragraph_bounds(self, sents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index.paragraph_bounds, from the sentences' records."""
        sents = np.asarray(sents, dtype=np.int64)
        return sents - self.sent_para_before[sents], sents + 1 + self.sent_para_after[sents]

    def cues(self, sents: np.ndarray) -> np.ndarray:
        """Index.cues, from the sentences' records."""
        return self.sent_cues[np.asarray(sents, dtype=np.int64)].astype(np.uint8)

    def _records(self, sents: np.ndarray) -> list[_Sentence]:
        """The sentences' records: prefetched by the search, cached, or fetched in one request to
        each shard holding some that are not."""
        self._fetch_missing(sents)
        return [self._sentence(sent) for sent in sents.tolist()]

    def _fetch_missing(self, sents: np.ndarray) -> None:
        """Fetch, one request to each shard, the sentences neither prefetched nor cached."""
        prefetched = getattr(self._question, "prefetched", None)
        shipped = prefetched.shipped.find(sents)[0] if prefetched is not None else np.zeros(len(sents), dtype=bool)
        with self._cache_lock:
            missing = [sent for sent in sents[~shipped].tolist() if sent not in self._cache]
        if not missing:
            return
        wanted = np.unique(np.array(missing, dtype=np.int64))
        owners = self._shards_of(wanted)
        requests = {int(s): (wanted[owners == s],) for s in np.unique(owners)}
        for batch in self._call_all("sentences", requests).values():
            self._remember(batch)

    def neighbour_arrays(self, sents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Previous and next sentence ids in the same document, -1 where there is none."""
        return neighbours_in_documents(sents, self.sent_doc[sents], self.doc_sent_ptr)

    def neighbours(self, sent: int) -> tuple[int | None, int | None]:
        return neighbours_of(sent, int(self.sent_doc[sent]), self.doc_sent_ptr)


def _unavailable(shards: frozenset[int] | Sequence[int], n_shards: int) -> str:
    names = ", ".join(shard_name(s) for s in sorted(shards))
    return f"{names} (of {n_shards} shards) could not be served: their workers were lost and reloading failed"


class ShardedAnswerer(Answerer):
    """The Answerer over a ShardedIndex; an answer missing some shards says so in its reason."""

    index: ShardedIndex

    def __init__(self, index: ShardedIndex, params: AnswerParams | None = None) -> None:
        super().__init__(index, params)  # type: ignore[arg-type]

    def ask(self, question: str, top_k: int | None = None) -> Answer:
        self.index.begin_question()
        try:
            answer = super().ask(question, top_k)
        except ShardsUnavailable as exc:
            return Answer(question, (), True, f"Cannot answer now: {exc}.", (), self.index.n_sentences,
                          missing_shards=tuple(map(shard_name, exc.shards)))  # fmt: skip
        missing = self.index.missing_shards()
        if not missing:
            return answer
        note = f"incomplete answer: {_unavailable(missing, self.index.n_shards)}; their articles were not searched"
        return replace(answer, reason=f"{note}; {answer.reason}" if answer.reason else note,
                       missing_shards=tuple(map(shard_name, missing)))  # fmt: skip

    def close(self) -> None:
        self.index.pool.close()


def runner_for(settings: Settings) -> ShardRunner:
    """A Dask runner when settings name a cluster (imports dask), else this process."""
    if settings.cluster:
        from qabot.cluster import DaskRunner

        return DaskRunner.connect(settings.cluster)
    return LocalRunner()


def serve_shards(
    settings: Settings, runner: ShardRunner, warn: Warn, note: Warn
) -> tuple[OpenedShards, ShardPool]:
    """Bring the sharded index up to date and serve it; a damaged shard is rebuilt once, as a
    damaged single index is."""
    params = IndexParams.from_settings(settings)
    opened = open_shards(settings.corpus, settings.index_dir, params, settings.shards, runner, warn, note)
    try:
        return opened, runner.serve(opened.manifest, params)
    except ShardsDamaged as exc:
        warn(f"sharded index: {exc}; rebuilding")
        for number in exc.shards:  # without its CURRENT pointer, the refresh rebuilds the shard
            (shard_folder(opened.manifest.ref.layout, number) / "CURRENT").unlink(missing_ok=True)
    opened = open_shards(settings.corpus, settings.index_dir, params, settings.shards, runner, warn, note)
    return opened, runner.serve(opened.manifest, params)


def open_sharded_answerer(settings: Settings, warn: Warn = lambda message: None) -> ShardedAnswerer:
    """The answerer over the settings' sharded index (built or refreshed first), on their cluster or here."""
    runner = runner_for(settings)
    try:
        opened, pool = serve_shards(settings, runner, warn, warn)
    except BaseException:
        runner.close()
        raise
    index = ShardedIndex(opened.manifest, pool, settings.k1, settings.b)
    return ShardedAnswerer(index, AnswerParams.from_settings(settings))


def index_summary(settings: Settings, warn: Warn) -> str:
    """Build or refresh the sharded index (`qabot index --shards N`) and describe it in one line."""
    runner = runner_for(settings)
    try:
        params = IndexParams.from_settings(settings)
        opened = open_shards(settings.corpus, settings.index_dir, params, settings.shards, runner, warn, warn)
    finally:
        runner.close()
    manifest = opened.manifest
    refreshed = opened.action == "refreshed"
    detail = f" ({len(opened.updated)} of {len(manifest.shards)} shards updated)" if refreshed else ""
    return (f"sharded index {opened.action}{detail} in {opened.seconds:.2f}s: {len(manifest.shards)} shards, "
            f"{len(manifest.docs)} articles, {manifest.n_sentences} sentences, {len(manifest.vocab)} terms, "
            f"{len(manifest.skipped)} files skipped")  # fmt: skip
