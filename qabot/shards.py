"""A sharded index: files spread over shards by a stable hash of their path, each shard an ordinary
stored index (store.py), plus a checksummed manifest of the corpus-wide statistics, so that every
shard scores with the global IDF and average length exactly as one index would (Elasticsearch's
"DFS query then fetch").

Sentence and document ids are the ones the single index gives (documents by path), so scores, ties
and answers are identical. The shard work runs wherever a ShardPool puts it: in this process here,
on Dask workers in cluster.py. This module never imports dask.

Layout beside the single index's folder: `<name>-<key>.shards/CURRENT` names a manifest generation
`gen-<id>/` (manifest.json and .npy arrays); `shard-NNNN/` are the shards' own index folders.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from qabot.answer import Answerer, AnswerParams
from qabot.corpus import FileEntry, Skipped, check_root, list_articles
from qabot.errors import ClusterError, ConfigError
from qabot.index import DocInfo, Index, idf_okapi, length_norm, tf_okapi
from qabot.model import Answer
from qabot.store import (
    CacheInvalid,
    IndexParams,
    Warn,
    _file_checksum,
    _fsync_dir,
    _read_pointer,
    _SkippedEntry,
    _write_array,
    _write_synced,
    corpus_cache_dir,
    load_index,
    update_index,
)

if TYPE_CHECKING:
    from qabot.config import Settings

FORMAT = "qabot-shards"
VERSION = 1
MAX_SHARDS = 4096
CACHED_SENTENCES = 100_000  # sentence texts and terms the coordinator keeps (about 30 MB)
MANIFEST_ARRAYS = ("df", "doc_shard", "doc_sent_ptr")


def shard_of(path: str, n_shards: int) -> int:
    """The shard of a file: sha256 of its corpus-relative path, modulo the shard count (stable
    across machines and Python runs, unlike hash())."""
    digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % n_shards


def listing_digest(entries: Sequence[FileEntry]) -> str:
    """sha256 of the (path, size, mtime) of a shard's files: a shard whose digest is unchanged has
    no file added, removed or touched, so a refresh leaves it alone."""
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(f"{entry.path}\0{entry.size}\0{entry.mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def layout_folder(cache_root: Path, corpus_root: Path) -> Path:
    """The sharded index's folder, beside the single index's (whose clean-up would remove a subfolder)."""
    folder = corpus_cache_dir(cache_root, corpus_root)
    return folder.with_name(f"{folder.name}.shards")


def shard_folder(layout: Path, number: int) -> Path:
    return layout / f"shard-{number:04d}"


@dataclass(frozen=True, slots=True)
class ShardJob:
    """Bring one shard's stored index up to date with its files (build, refresh or leave it)."""

    number: int
    root: Path
    folder: Path
    entries: tuple[FileEntry, ...]
    params: IndexParams


@dataclass(frozen=True, slots=True)
class ShardBuilt:
    """What a shard job did: the stored generation now current, and what it said on the way."""

    number: int
    action: str  # "loaded", "refreshed" or "built"
    files: int
    sentences: int
    seconds: float
    warnings: tuple[str, ...]


def update_shard(job: ShardJob) -> ShardBuilt:
    """Run a ShardJob (in this process or on a worker that sees the same files)."""
    started = time.perf_counter()
    messages: list[str] = []
    index, report = update_index(job.root, job.folder, job.entries, (), job.params, messages.append)
    return ShardBuilt(job.number, report.action, len(job.entries), index.n_sentences,
                      time.perf_counter() - started, tuple(messages))  # fmt: skip


@dataclass(frozen=True, slots=True)
class ShardRecord:
    """A shard as the manifest saw it: its stored generation (CURRENT's content) and its files."""

    generation: str
    meta_sha256: str
    listing: str
    files: int
    sentences: int
    tokens: int


@dataclass(frozen=True, slots=True)
class ManifestRef:
    """Where a manifest generation lives and the sha256 of its manifest.json (enough to load it anywhere)."""

    layout: Path
    generation: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """The shard list and the corpus-wide statistics, in the single index's document order."""

    ref: ManifestRef
    root: Path
    shards: tuple[ShardRecord, ...]
    docs: tuple[DocInfo, ...]
    skipped: tuple[Skipped, ...]
    listing_skips: tuple[Skipped, ...]
    vocab: tuple[str, ...]
    df: np.ndarray  # int64[V], sentences holding each term, over all shards
    doc_shard: np.ndarray  # int32[D], the shard holding each document
    doc_sent_ptr: np.ndarray  # int64[D + 1], global sentence ids of each document
    tokens: int

    @property
    def n_sentences(self) -> int:
        return int(self.doc_sent_ptr[-1])

    def term_map(self, number: int) -> np.ndarray:
        """int32: global term id of each of shard `number`'s terms (both vocabularies sorted, so ascending)."""
        return _load_array(self.ref.layout / self.ref.generation, f"terms-{number:04d}", self.checksums)

    @property
    def checksums(self) -> dict[str, str]:
        return _manifest_checksums(self.ref)


@dataclass(frozen=True, slots=True)
class OpenedShards:
    """How open_shards obtained the manifest, shard by shard."""

    manifest: Manifest
    action: str  # "loaded", "refreshed" or "built"
    updated: tuple[ShardBuilt, ...]
    seconds: float


class ShardRunner(Protocol):
    """Where shard work runs: this process (LocalRunner) or a Dask cluster (cluster.DaskRunner)."""

    def default_shards(self) -> int: ...

    def update_shards(self, jobs: Sequence[ShardJob], done: Callable[[ShardBuilt], None]) -> None: ...

    def serve(self, manifest: Manifest, params: IndexParams) -> ShardPool: ...

    def close(self) -> None: ...


class ShardPool(Protocol):
    """Shard servers answering calls; `call` runs a ShardServer method on several shards at once."""

    n_shards: int
    prefetch: bool  # whether a search should bring what the answerer reads next (saves a round trip)

    def call(self, method: str, requests: Mapping[int, tuple]) -> tuple[dict[int, Any], frozenset[int]]:
        """Results by shard, and the shards that could not be served (bounded waits, retried)."""

    def close(self) -> None: ...


class ShardsDamaged(ClusterError):
    """Some shards' stored index is missing or damaged; they must be rebuilt."""

    def __init__(self, shards: Sequence[int], detail: str) -> None:
        super().__init__(f"{', '.join(shard_name(s) for s in shards)}: {detail}")
        self.shards = tuple(shards)


class ShardsUnavailable(ClusterError):
    """Some shards holding sentences an answer needs could not be served."""


def shard_name(number: int) -> str:
    return f"shard-{number:04d}"


def open_shards(
    corpus_root: Path,
    cache_root: Path,
    params: IndexParams,
    n_shards: int,
    runner: ShardRunner,
    warn: Warn,
    note: Warn,
) -> OpenedShards:
    """The sharded index of the corpus: loaded when no file changed, else the shards whose files
    changed are refreshed (by the runner) and the manifest rewritten. n_shards 0 keeps the stored
    count (or the runner's default); another count re-shards. `note` hears of each shard as it is done."""
    started = time.perf_counter()
    root = check_root(corpus_root)
    if cache_root.exists() and not cache_root.is_dir():
        raise ConfigError(f"cache_dir {cache_root} is a file, not a folder; point cache_dir at a folder")
    if n_shards > MAX_SHARDS:
        raise ConfigError(f"shards must be at most {MAX_SHARDS}, got {n_shards}")
    layout = layout_folder(cache_root, root)
    entries, listing_skips = list_articles(root)
    current = _current_manifest(layout, root, params, warn)
    n_shards = n_shards or (len(current.shards) if current else runner.default_shards())
    if current is not None and len(current.shards) != n_shards:
        note(f"re-sharding the index from {len(current.shards)} to {n_shards} shards")
        current = None
    groups: list[list[FileEntry]] = [[] for _ in range(n_shards)]
    for entry in entries:
        groups[shard_of(entry.path, n_shards)].append(entry)
    digests = [listing_digest(group) for group in groups]
    stale = [s for s in range(n_shards) if current is None or not _shard_current(layout, s, current, digests[s])]
    known_skips = {(s.path, s.reason) for s in current.listing_skips} if current else set()
    for skip in listing_skips:
        if (skip.path, skip.reason) not in known_skips:
            warn(str(skip))
    if current is not None and not stale and known_skips == {(s.path, s.reason) for s in listing_skips}:
        return OpenedShards(current, "loaded", (), time.perf_counter() - started)
    updated: list[ShardBuilt] = []

    def done(built: ShardBuilt) -> None:
        updated.append(built)
        for message in built.warnings:
            warn(message)
        note(f"{shard_name(built.number)} ({len(updated)}/{len(stale)}): {built.action}, {built.files} files, "
             f"{built.sentences} sentences in {built.seconds:.2f}s")  # fmt: skip

    jobs = [ShardJob(s, root, shard_folder(layout, s), tuple(groups[s]), params) for s in stale]
    runner.update_shards(jobs, done)
    manifest = write_manifest(layout, root, params, digests, listing_skips)
    action = "built" if current is None else "refreshed"
    return OpenedShards(manifest, action, tuple(sorted(updated, key=lambda b: b.number)),
                        time.perf_counter() - started)  # fmt: skip


def _current_manifest(layout: Path, root: Path, params: IndexParams, warn: Warn) -> Manifest | None:
    try:
        return load_manifest(layout, root, params)
    except CacheInvalid as exc:
        if (layout / "CURRENT").exists():
            warn(f"sharded index {layout} is out of date or damaged: {exc}; rebuilding what it needs")
        return None


def _shard_current(layout: Path, number: int, manifest: Manifest, digest: str) -> bool:
    """Whether shard `number` still holds what the manifest recorded, for the same files."""
    record = manifest.shards[number]
    try:
        pointer = _read_pointer(shard_folder(layout, number))
    except CacheInvalid:
        return False
    return record.listing == digest and pointer == (record.generation, record.meta_sha256)


@dataclass(frozen=True, slots=True)
class _ShardSummary:
    """What the manifest needs of one stored shard, read without loading its postings."""

    record: ShardRecord
    docs: list[list]
    skipped: list[list]
    vocab: list[str]
    df: np.ndarray
    sent_counts: np.ndarray


def _shard_summary(folder: Path, listing: str) -> _ShardSummary:
    generation, meta_sha = _read_pointer(folder)
    meta_bytes = (folder / generation / "meta.json").read_bytes()
    if hashlib.sha256(meta_bytes).hexdigest() != meta_sha:
        raise CacheInvalid(f"checksum mismatch in {folder.name}'s meta.json")
    meta = json.loads(meta_bytes.decode("utf-8"))
    df = _load_array(folder / generation, "df", meta["arrays"])
    doc_sent_ptr = _load_array(folder / generation, "doc_sent_ptr", meta["arrays"])
    # Only the last entry is read; the whole array is verified when the shard is served.
    tokens = int(np.load(folder / generation / "tok_ptr.npy", mmap_mode="r", allow_pickle=False)[-1])
    record = ShardRecord(generation, meta_sha, listing, len(meta["docs"]), int(doc_sent_ptr[-1]), tokens)
    return _ShardSummary(record, meta["docs"], meta["skipped"], meta["vocab"], df, np.diff(doc_sent_ptr))


def write_manifest(
    layout: Path, root: Path, params: IndexParams, digests: Sequence[str], listing_skips: Sequence[Skipped]
) -> Manifest:
    """Merge the stored shards' statistics into a new manifest generation and make it current (atomic)."""
    summaries = [_shard_summary(shard_folder(layout, s), digest) for s, digest in enumerate(digests)]
    # Documents in path order, as the single index lays them out; each shard's are already in that order.
    placed = sorted((row[0], s, i) for s, summary in enumerate(summaries) for i, row in enumerate(summary.docs))
    doc_shard = np.array([s for _, s, _ in placed], dtype=np.int32)
    counts = np.array([summaries[s].sent_counts[i] for _, s, i in placed], dtype=np.int64)
    doc_sent_ptr = np.zeros(len(placed) + 1, dtype=np.int64)
    np.cumsum(counts, out=doc_sent_ptr[1:])
    vocab = sorted(set().union(*(summary.vocab for summary in summaries)))
    term_ids = {term: i for i, term in enumerate(vocab)}
    df = np.zeros(len(vocab), dtype=np.int64)
    arrays: dict[str, np.ndarray] = {"doc_shard": doc_shard, "doc_sent_ptr": doc_sent_ptr}
    for s, summary in enumerate(summaries):
        term_map = np.fromiter((term_ids[t] for t in summary.vocab), dtype=np.int32, count=len(summary.vocab))
        df[term_map] += summary.df
        arrays[f"terms-{s:04d}"] = term_map
    arrays["df"] = df
    skipped = sorted(
        [*([path, reason, -1, -1] for path, reason in ((s.path, s.reason) for s in listing_skips)),
         *(row for summary in summaries for row in summary.skipped)],
        key=lambda row: row[0],
    )  # fmt: skip
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "index": params.fingerprint(),
        "root": str(root),
        "shards": [
            [r.generation, r.meta_sha256, r.listing, r.files, r.sentences, r.tokens]
            for r in (summary.record for summary in summaries)
        ],
        "docs": [summaries[s].docs[i] for _, s, i in placed],
        "skipped": skipped,
        "listing_skips": [[s.path, s.reason] for s in listing_skips],
        "vocab": vocab,
        "tokens": sum(summary.record.tokens for summary in summaries),
    }
    ref = _save_manifest(layout, meta, arrays)
    return load_manifest(layout, root, params, ref)


def _save_manifest(layout: Path, meta: dict, arrays: Mapping[str, np.ndarray]) -> ManifestRef:
    """Write a manifest generation (arrays, then manifest.json with their checksums) and point CURRENT at it."""
    tmp = layout / f"tmp-{uuid.uuid4().hex}"
    tmp.mkdir(parents=True)
    try:
        meta = {**meta, "arrays": {name: _write_array(tmp / f"{name}.npy", array) for name, array in arrays.items()}}
        meta_bytes = json.dumps(meta, ensure_ascii=False).encode("utf-8")
        _write_synced(tmp / "manifest.json", meta_bytes)
        _fsync_dir(tmp)
        generation = f"gen-{uuid.uuid4().hex}"
        os.rename(tmp, layout / generation)
        sha = hashlib.sha256(meta_bytes).hexdigest()
        pointer = layout / f"CURRENT.{uuid.uuid4().hex}.tmp"
        _write_synced(pointer, f"{generation} {sha}\n".encode())
        os.replace(pointer, layout / "CURRENT")
        _fsync_dir(layout)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_old_manifests(layout, keep=generation)
    return ManifestRef(layout, generation, sha)


def _remove_old_manifests(layout: Path, keep: str) -> None:
    """Delete superseded manifest generations older than a minute (a reader may still be opening one)."""
    young = time.time() - 60
    for entry in layout.iterdir():
        if entry.name == keep or not entry.name.startswith(("gen-", "tmp-", "CURRENT.")):
            continue
        try:
            if entry.stat().st_mtime < young:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
        except OSError:
            continue


_meta_cache: dict[ManifestRef, dict] = {}
_meta_lock = threading.Lock()


def _manifest_meta(ref: ManifestRef) -> dict:
    """manifest.json of a generation, verified against its sha256 (read once per process)."""
    with _meta_lock:
        meta = _meta_cache.get(ref)
    if meta is not None:
        return meta
    try:
        meta_bytes = (ref.layout / ref.generation / "manifest.json").read_bytes()
        if hashlib.sha256(meta_bytes).hexdigest() != ref.sha256:
            raise CacheInvalid("checksum mismatch in manifest.json")
        meta = json.loads(meta_bytes.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CacheInvalid(f"manifest unreadable ({exc.__class__.__name__})") from None
    if not isinstance(meta, dict):
        raise CacheInvalid("manifest is not an object")
    with _meta_lock:
        _meta_cache.clear()  # one manifest at a time is in use
        _meta_cache[ref] = meta
    return meta


def _manifest_checksums(ref: ManifestRef) -> dict[str, str]:
    return _manifest_meta(ref)["arrays"]


def _load_array(generation: Path, name: str, checksums: Mapping[str, str]) -> np.ndarray:
    path = generation / f"{name}.npy"
    try:
        if _file_checksum(path) != checksums[name]:
            raise CacheInvalid(f"checksum mismatch in {name}.npy")
        return np.load(path, mmap_mode="r", allow_pickle=False).view(np.ndarray)
    except (OSError, ValueError, KeyError) as exc:
        raise CacheInvalid(f"{name}.npy unreadable ({exc.__class__.__name__})") from None


def load_manifest(layout: Path, root: Path, params: IndexParams, ref: ManifestRef | None = None) -> Manifest:
    """The current (or the given) manifest, verified; CacheInvalid when absent, stale-format or damaged."""
    if ref is None:
        generation, sha = _read_pointer(layout)
        ref = ManifestRef(layout, generation, sha)
    meta = _manifest_meta(ref)
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CacheInvalid("built by another version of qabot")
    if meta.get("index") != params.fingerprint():
        raise CacheInvalid("built with other index settings or by another version of qabot")
    try:
        arrays = {name: _load_array(layout / ref.generation, name, meta["arrays"]) for name in MANIFEST_ARRAYS}
        manifest = Manifest(
            ref=ref,
            root=root,
            shards=tuple(ShardRecord(*row) for row in meta["shards"]),
            docs=tuple(DocInfo(*row) for row in meta["docs"]),
            skipped=tuple(_SkippedEntry(*row) for row in meta["skipped"]),
            listing_skips=tuple(Skipped(*row) for row in meta["listing_skips"]),
            vocab=tuple(meta["vocab"]),
            tokens=int(meta["tokens"]),
            **arrays,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CacheInvalid(f"manifest unreadable ({exc.__class__.__name__}: {exc})") from None
    if not (len(manifest.doc_shard) == len(manifest.docs) == len(manifest.doc_sent_ptr) - 1
            and len(manifest.df) == len(manifest.vocab)):  # fmt: skip
        raise CacheInvalid("manifest array sizes do not agree")
    return manifest


def global_idf(manifest: Manifest) -> np.ndarray:
    """BM25Okapi IDF of every term over all shards: what the single index computes."""
    return idf_okapi(manifest.df.astype(np.float64), manifest.n_sentences)


def with_global_statistics(index: Index, idf: np.ndarray, avgdl: float) -> Index:
    """The shard's Index, now weighing terms with corpus-wide IDF and average length instead of its own.

    Index derives these in __post_init__ from its own sentences; the arithmetic is repeated here
    unchanged so each weight equals the single index's, bit for bit.
    """
    longest = int(index.post_len.max()) if len(index.post_len) else 0
    norm = length_norm(np.arange(longest + 1), avgdl or 1.0, index.k1, index.b)
    object.__setattr__(index, "idf", idf)
    object.__setattr__(index, "_norm_by_length", norm)
    object.__setattr__(index, "_saturation_at_one", tf_okapi(np.ones(longest + 1), norm.copy(), index.k1))
    return index


@dataclass(frozen=True, slots=True)
class SentenceBatch:
    """Sentences fetched from their shard: what the answerer reads of each (text, terms, place)."""

    sents: np.ndarray  # int64, global ids
    texts: tuple[str, ...]
    starts: np.ndarray
    ends: np.ndarray
    lines: np.ndarray
    end_lines: np.ndarray
    term_ptr: np.ndarray  # int64[n + 1]
    terms: np.ndarray  # int32, global term ids of every sentence in order


@dataclass(frozen=True, slots=True)
class Prefetched:
    """What the answerer reads next of a search's candidates and their neighbours: each query
    term's presence and weight there (rows: terms, columns: batch.sents), and the sentences."""

    terms: tuple[int, ...]
    present: np.ndarray  # bool[T, P]
    weights: np.ndarray  # float64[T, P]
    batch: SentenceBatch


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
        **{name: np.concatenate([getattr(b, name) for b in batches])
           for name in ("starts", "ends", "lines", "end_lines", "terms")},
        term_ptr=term_ptr,
    )  # fmt: skip
    return Prefetched(parts[0].terms, np.hstack([part.present for part in parts]),
                      np.hstack([part.weights for part in parts]), batch)  # fmt: skip


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
            if _read_pointer(folder) != (record.generation, record.meta_sha256):
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
        return cls(number, with_global_statistics(index, idf[term_map], avgdl), term_map, doc_starts)

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
        self, weighted_terms: Sequence[tuple[int, float]], k: int
    ) -> tuple[np.ndarray, np.ndarray, Prefetched]:
        """search, plus what the answerer reads next of these candidates and their neighbours
        (any that make the global top-k are here, with their neighbours: one round trip, not two)."""
        sents, scores = self.search(weighted_terms, k)
        local = self._local_sents(sents)
        before, after = self.index.neighbour_arrays(local)
        around = np.unique(np.concatenate([local, before[before >= 0], after[after >= 0]]))
        terms = tuple(dict.fromkeys(term for term, _ in weighted_terms))
        present, weights = self._term_weights(terms, around)
        return sents, scores, Prefetched(terms, present, weights, self._batch(around))

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


@dataclass(frozen=True, slots=True)
class _Sentence:
    text: str
    terms: np.ndarray
    start: int
    end: int
    line: int
    end_line: int


class _PrefetchLookup:
    """A search's Prefetched, found by sentence id and term id."""

    def __init__(self, prefetched: Prefetched) -> None:
        self.prefetched = prefetched
        sents = prefetched.batch.sents
        self.order = np.argsort(sents, kind="stable")
        self.sorted = sents[self.order]
        self.rows = {term: row for row, term in enumerate(prefetched.terms)}

    def _columns(self, sents: np.ndarray) -> np.ndarray | None:
        """Each sentence's column in the batch; None unless all are there."""
        if not len(self.sorted):
            return None if len(sents) else np.empty(0, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.sorted, sents), len(self.sorted) - 1)
        return self.order[at] if bool((self.sorted[at] == sents).all()) else None

    def term_weights(self, terms: Sequence[int], sents: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Index.term_weights when every term and sentence (-1: none) was prefetched, else None."""
        rows = [self.rows.get(term) for term in terms]
        real = np.flatnonzero(sents >= 0)
        columns = self._columns(sents[real])
        if columns is None or None in rows:
            return None
        present = np.zeros((len(terms), len(sents)), dtype=bool)
        weights = np.zeros((len(terms), len(sents)))
        present[:, real] = self.prefetched.present[rows][:, columns]
        weights[:, real] = self.prefetched.weights[rows][:, columns]
        return present, weights

    def sentence(self, sent: int) -> _Sentence | None:
        columns = self._columns(np.array([sent], dtype=np.int64))
        if columns is None:
            return None
        batch, i = self.prefetched.batch, int(columns[0])
        return _Sentence(batch.texts[i], batch.terms[batch.term_ptr[i] : batch.term_ptr[i + 1]], int(batch.starts[i]),
                         int(batch.ends[i]), int(batch.lines[i]), int(batch.end_lines[i]))  # fmt: skip


class _SentenceField:
    """A per-sentence value of ShardedIndex (sent_start, ...), read from its shard on first use."""

    def __init__(self, index: ShardedIndex, name: str) -> None:
        self.index, self.name = index, name

    def __getitem__(self, sents: Any) -> Any:
        if np.ndim(sents) == 0:
            return getattr(self.index._sentence(int(sents)), self.name)
        return np.array([getattr(self.index._sentence(int(s)), self.name) for s in np.asarray(sents).ravel()],
                        dtype=np.int64).reshape(np.shape(sents))  # fmt: skip

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
        request = (list(weighted_terms), k)
        method = "search_prefetch" if self.pool.prefetch else "search"
        results, failed = self.pool.call(method, dict.fromkeys(range(self.n_shards), request))
        if failed:
            missing = getattr(self._question, "missing", None)
            if missing is None:
                raise ShardsUnavailable(_unavailable(failed, self.n_shards))
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
        prefetched = getattr(self._question, "prefetched", None)
        known = prefetched.term_weights(terms, sents) if prefetched is not None else None
        if known is not None:
            return known
        present = np.zeros((len(terms), len(sents)), dtype=bool)
        weights = np.zeros((len(terms), len(sents)))
        columns = np.flatnonzero((sents >= 0) & (sents < self.n_sentences))
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
            raise ShardsUnavailable(_unavailable(failed, self.n_shards))
        return results

    def _remember(self, batch: SentenceBatch) -> None:
        with self._cache_lock:
            for i, sent in enumerate(batch.sents.tolist()):
                self._cache[sent] = _Sentence(
                    batch.texts[i], batch.terms[batch.term_ptr[i] : batch.term_ptr[i + 1]], int(batch.starts[i]),
                    int(batch.ends[i]), int(batch.lines[i]), int(batch.end_lines[i]),
                )  # fmt: skip
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

    def neighbour_arrays(self, sents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Previous and next sentence ids in the same document, -1 where there is none."""
        docs = self.sent_doc[sents]
        before = np.where(sents - 1 >= self.doc_sent_ptr[docs], sents - 1, -1)
        after = np.where(sents + 1 < self.doc_sent_ptr[docs + 1], sents + 1, -1)
        return before, after

    def neighbours(self, sent: int) -> tuple[int | None, int | None]:
        doc = int(self.sent_doc[sent])
        before = sent - 1 if sent - 1 >= self.doc_sent_ptr[doc] else None
        after = sent + 1 if sent + 1 < self.doc_sent_ptr[doc + 1] else None
        return before, after


def _unavailable(shards: frozenset[int] | Sequence[int], n_shards: int) -> str:
    names = ", ".join(shard_name(s) for s in sorted(shards))
    return f"{names} (of {n_shards} shards) could not be served: their workers were lost and reloading failed"


class ShardedAnswerer(Answerer):
    """The Answerer over a ShardedIndex; an answer missing some shards says so in its reason."""

    index: ShardedIndex

    def __init__(self, index: ShardedIndex, params: AnswerParams | None = None, settings: Settings | None = None):
        super().__init__(index, params)  # type: ignore[arg-type]
        self.settings = settings

    def ask(self, question: str, top_k: int | None = None) -> Answer:
        self.index.begin_question()
        try:
            answer = super().ask(question, top_k)
        except ShardsUnavailable as exc:
            return Answer(question, (), True, f"Cannot answer now: {exc}.", (), self.index.n_sentences)
        missing = self.index.missing_shards()
        if not missing:
            return answer
        note = f"incomplete answer: {_unavailable(missing, self.index.n_shards)}; their articles were not searched"
        return replace(answer, reason=f"{note}; {answer.reason}" if answer.reason else note)

    def corpus_changed(self) -> bool:
        """Whether a file was added, changed or removed since the manifest was written (lists the folder)."""
        manifest = self.index.manifest
        entries, listing_skips = list_articles(check_root(self.root))
        groups: list[list[FileEntry]] = [[] for _ in manifest.shards]
        for entry in entries:
            groups[shard_of(entry.path, len(groups))].append(entry)
        listings = [listing_digest(group) for group in groups]
        same_skips = {(s.path, s.reason) for s in listing_skips} == {(s.path, s.reason) for s in manifest.listing_skips}
        return not same_skips or listings != [record.listing for record in manifest.shards]

    def close(self) -> None:
        self.index.pool.close()


def runner_for(settings: Settings) -> ShardRunner:
    """A Dask runner when settings name a cluster (imports dask), else this process."""
    if settings.cluster:
        from qabot.cluster import DaskRunner

        return DaskRunner.connect(settings.cluster)
    return LocalRunner()


def index_params(settings: Settings) -> IndexParams:
    return IndexParams(settings.k1, settings.b, settings.boilerplate_patterns, settings.max_file_bytes)


def serve_shards(
    settings: Settings, runner: ShardRunner, warn: Warn, note: Warn
) -> tuple[OpenedShards, ShardPool]:
    """Bring the sharded index up to date and serve it; a damaged shard is rebuilt once, as a
    damaged single index is."""
    params = index_params(settings)
    for attempt in range(2):
        opened = open_shards(settings.corpus, settings.index_dir, params, settings.shards, runner, warn, note)
        try:
            return opened, runner.serve(opened.manifest, params)
        except ShardsDamaged as exc:
            if attempt:
                raise
            warn(f"sharded index: {exc}; rebuilding")
            for number in exc.shards:
                (shard_folder(opened.manifest.ref.layout, number) / "CURRENT").unlink(missing_ok=True)
    raise AssertionError("unreachable")


def open_sharded_answerer(settings: Settings, warn: Warn = lambda message: None) -> ShardedAnswerer:
    """The answerer over the settings' sharded index (built or refreshed first), on their cluster or here."""
    runner = runner_for(settings)
    opened, pool = serve_shards(settings, runner, warn, warn)
    index = ShardedIndex(opened.manifest, pool, settings.k1, settings.b)
    params = AnswerParams(settings.top_k, settings.min_coverage, settings.variant_weight, settings.context_weight,
                          settings.type_bonus)  # fmt: skip
    return ShardedAnswerer(index, params, settings)


def index_summary(settings: Settings, warn: Warn) -> str:
    """Build or refresh the sharded index (`qabot index --shards N`) and describe it in one line."""
    runner = runner_for(settings)
    try:
        opened = open_shards(settings.corpus, settings.index_dir, index_params(settings), settings.shards, runner,
                             warn, warn)  # fmt: skip
    finally:
        runner.close()
    manifest = opened.manifest
    refreshed = opened.action == "refreshed"
    detail = f" ({len(opened.updated)} of {len(manifest.shards)} shards updated)" if refreshed else ""
    return (f"sharded index {opened.action}{detail} in {opened.seconds:.2f}s: {len(manifest.shards)} shards, "
            f"{len(manifest.docs)} articles, {manifest.n_sentences} sentences, {len(manifest.vocab)} terms, "
            f"{len(manifest.skipped)} files skipped")  # fmt: skip
