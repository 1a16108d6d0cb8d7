"""A shard served: its stored Index loaded and verified against the manifest, weighing terms with the
corpus-wide statistics, answering in global sentence and term ids. ShardServer runs in this process
(LocalShards) or inside a Dask actor (cluster.py); nothing here imports dask.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qabot.features import paragraph_members
from qabot.generations import CacheInvalid, read_pointer
from qabot.index import Index
from qabot.shards import (
    Manifest,
    ShardBuilt,
    ShardJob,
    ShardsDamaged,
    global_idf,
    shard_folder,
    update_shard,
)
from qabot.store import IndexParams, load_index


@dataclass(frozen=True, slots=True)
class SentenceBatch:
    """Sentences fetched from their shard: what the answerer reads of each (text, terms, place)."""

    sents: np.ndarray  # int64, global ids
    texts: tuple[str, ...]
    starts: np.ndarray
    ends: np.ndarray
    lines: np.ndarray
    end_lines: np.ndarray
    columns: np.ndarray
    para_before: np.ndarray  # sentences of its paragraph before and after each
    para_after: np.ndarray
    cues: np.ndarray  # uint8, answer_type.sentence_cues
    term_ptr: np.ndarray  # int64[n + 1]
    terms: np.ndarray  # int32, global term ids of every sentence in order


@dataclass(frozen=True, slots=True)
class Prefetched:
    """What the answerer reads next of a search's candidates: each query term's presence and weight
    in them, their neighbours and paragraphs (rows: terms, columns: `weighed`), and the candidates
    and neighbours themselves."""

    terms: tuple[int, ...]
    weighed: np.ndarray  # int64[P], global ids of the weights' columns
    present: np.ndarray  # bool[T, P]
    weights: np.ndarray  # float64[T, P]
    batch: SentenceBatch


# The SentenceBatch arrays that merge by concatenation.
_CONCATENATED = ("starts", "ends", "lines", "end_lines", "columns", "para_before", "para_after", "cues", "terms")


def merge_prefetched(parts: Sequence[Prefetched]) -> Prefetched:
    """Several shards' Prefetched (same terms, disjoint sentences) as one."""
    if len(parts) == 1:
        return parts[0]
    batches = [part.batch for part in parts]
    term_ptr = np.zeros(sum(len(b.sents) for b in batches) + 1, dtype=np.int64)
    np.cumsum(np.concatenate([np.diff(b.term_ptr) for b in batches]), out=term_ptr[1:])
    batch = SentenceBatch(
        sents=np.concatenate([b.sents for b in batches]),
        texts=tuple(text for b in batches for text in b.texts),
        **{name: np.concatenate([getattr(b, name) for b in batches]) for name in _CONCATENATED},
        term_ptr=term_ptr,
    )  # fmt: skip
    return Prefetched(parts[0].terms, np.concatenate([part.weighed for part in parts]),
                      np.hstack([part.present for part in parts]), np.hstack([part.weights for part in parts]),
                      batch)  # fmt: skip


class ShardServer:
    """One shard's Index, memory-mapped, answering in global sentence and term ids."""

    def __init__(self, number: int, index: Index, term_map: np.ndarray, doc_starts: np.ndarray) -> None:
        self.number = number
        self.index = index
        self.term_map = term_map  # global id of each local term, ascending
        self.doc_starts = doc_starts  # global id of each local document's first sentence, ascending

    @classmethod
    def load(cls, manifest: Manifest, number: int, params: IndexParams, idf: np.ndarray | None = None) -> ShardServer:
        """Load and verify shard `number` as the manifest recorded it; ShardsDamaged when it cannot be."""
        record = manifest.shards[number]
        folder = shard_folder(manifest.ref.layout, number)
        try:
            if read_pointer(folder) != (record.generation, record.meta_sha256):
                raise CacheInvalid("it changed since the manifest was written")
            index, _ = load_index(folder, manifest.root, params)
            if index.n_sentences != record.sentences or int(index.tok_ptr[-1]) != record.tokens:
                raise CacheInvalid("it disagrees with the manifest")
            term_map = manifest.term_map(number)
        except CacheInvalid as exc:
            raise ShardsDamaged([number], str(exc)) from None
        idf = global_idf(manifest) if idf is None else idf
        avgdl = manifest.tokens / manifest.n_sentences if manifest.n_sentences else 1.0
        doc_starts = manifest.doc_sent_ptr[:-1][manifest.doc_shard == number]
        return cls(number, index.with_statistics(idf[term_map], avgdl), term_map, doc_starts)

    def _local_terms(self, terms: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Local ids of global term ids, and which of them this shard holds."""
        wanted = np.asarray(terms, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.term_map, wanted), max(len(self.term_map) - 1, 0))
        found = self.term_map[at] == wanted if len(self.term_map) else np.zeros(len(wanted), dtype=bool)
        return at, found

    def _local_sents(self, sents: np.ndarray) -> np.ndarray:
        docs = np.searchsorted(self.doc_starts, sents, side="right") - 1
        return self.index.doc_sent_ptr[docs] + (sents - self.doc_starts[docs])

    def _global_sents(self, local: np.ndarray) -> np.ndarray:
        docs = self.index.sent_doc[local]
        return self.doc_starts[docs] + (local - self.index.doc_sent_ptr[docs])

    def search(self, weighted_terms: Sequence[tuple[int, float]], k: int) -> tuple[np.ndarray, np.ndarray]:
        """This shard's top-k (global ids, scores), best first; the query's terms in the query's order."""
        at, found = self._local_terms([term for term, _ in weighted_terms])
        local = [(int(a), weight) for a, f, (_, weight) in zip(at, found, weighted_terms, strict=True) if f]
        sents, scores = self.index.search(local, k)
        return self._global_sents(sents), scores

    def search_prefetch(
        self, weighted_terms: Sequence[tuple[int, float]], k: int, prefetch: int
    ) -> tuple[np.ndarray, np.ndarray, Prefetched]:
        """search, plus what the answerer reads next of the best `prefetch` candidates: the term
        weights in them, their neighbours and paragraphs, and the sentences of the candidates and
        neighbours (one round trip, not three)."""
        sents, scores = self.search(weighted_terms, k)
        local = self._local_sents(sents[:prefetch])
        before, after = self.index.neighbour_arrays(local)
        around = np.unique(np.concatenate([local, before[before >= 0], after[after >= 0]]))
        members, _ = paragraph_members(local, *self.index.paragraph_bounds(local))
        weighed = np.unique(np.concatenate([around, members]))
        terms = tuple(dict.fromkeys(term for term, _ in weighted_terms))
        present, weights = self._term_weights(terms, weighed)
        return sents, scores, Prefetched(terms, self._global_sents(weighed), present, weights, self._batch(around))

    def details(self, terms: Sequence[int], sents: np.ndarray) -> tuple[np.ndarray, np.ndarray, SentenceBatch]:
        """term_weights over this shard's sentences, and the sentences themselves (read next)."""
        present, weights = self._term_weights(terms, self._local_sents(sents))
        return present, weights, self.sentences(np.unique(sents))

    def _term_weights(self, terms: Sequence[int], local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        at, found = self._local_terms(terms)
        present = np.zeros((len(terms), len(local)), dtype=bool)
        weights = np.zeros((len(terms), len(local)))
        rows = np.flatnonzero(found)
        if len(rows):
            present[rows], weights[rows] = self.index.term_weights(at[rows].tolist(), local)
        return present, weights

    def sentences(self, sents: np.ndarray) -> SentenceBatch:
        return self._batch(self._local_sents(np.asarray(sents, dtype=np.int64)))

    def _batch(self, local: np.ndarray) -> SentenceBatch:
        index = self.index
        lengths = index.tok_ptr[local + 1] - index.tok_ptr[local]
        term_ptr = np.zeros(len(local) + 1, dtype=np.int64)
        np.cumsum(lengths, out=term_ptr[1:])
        tokens = np.repeat(index.tok_ptr[local] - term_ptr[:-1], lengths) + np.arange(int(term_ptr[-1]))
        return SentenceBatch(
            sents=self._global_sents(local),
            texts=tuple(index.sentence_text(int(s)) for s in local),
            starts=index.sent_start[local],
            ends=index.sent_end[local],
            lines=index.sent_line[local],
            end_lines=index.sent_end_line[local],
            columns=index.sent_column[local],
            para_before=index.sent_para_before[local],
            para_after=index.sent_para_after[local],
            cues=index.sent_cues[local],
            term_ptr=term_ptr,
            terms=self.term_map[index.tok_ids[tokens]],
        )

    def doc_text(self, local_doc: int) -> str:
        return self.index.doc_text(local_doc)


class LocalShards:
    """Every shard served in this process, one after another."""

    prefetch = False  # a call costs nothing here, and reading ahead would

    def __init__(self, servers: Sequence[ShardServer]) -> None:
        self.servers = tuple(servers)
        self.n_shards = len(servers)

    def call(self, method: str, requests: Mapping[int, tuple]) -> tuple[dict[int, Any], frozenset[int]]:
        return {s: getattr(self.servers[s], method)(*args) for s, args in requests.items()}, frozenset()

    def close(self) -> None:
        """Nothing to release: the shards are memory maps."""


class LocalRunner:
    """Shard work in this process: shards are built one after another, and served here."""

    def default_shards(self) -> int:
        return 1

    def update_shards(self, jobs: Sequence[ShardJob], done: Callable[[ShardBuilt], None]) -> None:
        for job in jobs:
            done(update_shard(job))

    def serve(self, manifest: Manifest, params: IndexParams) -> LocalShards:
        idf = global_idf(manifest)
        servers, damaged, details = [], [], []
        for number in range(len(manifest.shards)):
            try:
                servers.append(ShardServer.load(manifest, number, params, idf))
            except ShardsDamaged as exc:
                damaged.extend(exc.shards)
                details.append(str(exc))
        if damaged:
            raise ShardsDamaged(damaged, "; ".join(details))
        return LocalShards(servers)

    def close(self) -> None:
        """Nothing to release."""
