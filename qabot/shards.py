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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qabot.corpus import FileEntry, Skipped, check_root, list_articles
from qabot.errors import ClusterError, ConfigError
from qabot.generations import (
    CacheInvalid,
    JsonColumn,
    load_array,
    load_arrays,
    read_metadata,
    read_pointer,
    remove_old_generations,
    save_generation,
)
from qabot.index import DocInfo, DocTable
from qabot.scoring import idf_okapi
from qabot.store import DOC_ARRAYS, META, VOCAB_ARRAYS, IndexParams, Warn, corpus_cache_dir, stored_skip, update_index

MANIFEST = "manifest.json"
FORMAT = "qabot-shards"
VERSION = 2
MAX_SHARDS = 4096
MANIFEST_ARRAYS = ("df", "doc_shard", "doc_sent_ptr")


def shard_of(path: str, n_shards: int) -> int:
    """The shard of a file: sha256 of its corpus-relative path, modulo the shard count (stable
    across machines and Python runs, unlike hash())."""
    digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % n_shards


def listing_digest(entries: Sequence[FileEntry]) -> str:
    """sha256 of the (path, size, mtime, ctime) of a shard's files: a shard whose digest is unchanged
    has no file added, removed or touched, so a refresh leaves it alone."""
    digest = hashlib.sha256()
    for entry in entries:
        status = f"{entry.path}\0{entry.size}\0{entry.mtime_ns}\0{entry.ctime_ns}\n"
        digest.update(status.encode("utf-8", "surrogateescape"))
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
    records: dict[str, list]  # [checksum, size, ctime_ns] of its arrays, by name (the term maps among them)

    @property
    def n_sentences(self) -> int:
        return int(self.doc_sent_ptr[-1])

    def term_map(self, number: int) -> np.ndarray:
        """int32: global term id of each of shard `number`'s terms (both vocabularies sorted, so ascending)."""
        name = f"terms-{number:04d}"
        return load_array(self.ref.layout / self.ref.generation / f"{name}.npy", self.records.get(name))


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

    def __init__(self, message: str, shards: Sequence[int]) -> None:
        super().__init__(message)
        self.shards = tuple(sorted(shards))


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
        pointer = read_pointer(shard_folder(layout, number))
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
    generation, meta_sha = read_pointer(folder)
    meta = read_metadata(folder / generation, META, meta_sha)
    arrays = load_arrays(folder / generation, ("df", "doc_sent_ptr", *DOC_ARRAYS, *VOCAB_ARRAYS), meta.get("arrays"))
    df, doc_sent_ptr = arrays["df"], arrays["doc_sent_ptr"]
    docs = [[d.path, d.sha256, d.title, d.date, d.size, d.mtime_ns, d.ctime_ns, d.url]
            for d in DocTable.stored({name: arrays[name] for name in DOC_ARRAYS})]  # fmt: skip
    vocab = JsonColumn(arrays["vocab_text"], arrays["vocab_starts"]).decoded()
    # Only the last entry is read; the whole array is verified when the shard is served.
    tokens = int(np.load(folder / generation / "tok_ptr.npy", mmap_mode="r", allow_pickle=False)[-1])
    record = ShardRecord(generation, meta_sha, listing, len(docs), int(doc_sent_ptr[-1]), tokens)
    return _ShardSummary(record, docs, meta["skipped"], vocab, df, np.diff(doc_sent_ptr))


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
    generation, sha = save_generation(layout, arrays, MANIFEST, meta)
    remove_old_generations(layout, keep=generation)  # the shards' folders beside it are not generations
    return load_manifest(layout, root, params, ManifestRef(layout, generation, sha))


def load_manifest(layout: Path, root: Path, params: IndexParams, ref: ManifestRef | None = None) -> Manifest:
    """The current (or the given) manifest, verified; CacheInvalid when absent, stale-format or damaged."""
    if ref is None:
        generation, sha = read_pointer(layout)
        ref = ManifestRef(layout, generation, sha)
    meta = read_metadata(ref.layout / ref.generation, MANIFEST, ref.sha256)
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CacheInvalid("built by another version of qabot")
    if meta.get("index") != params.fingerprint():
        raise CacheInvalid("built with other index settings or by another version of qabot")
    try:
        arrays = load_arrays(layout / ref.generation, MANIFEST_ARRAYS, meta["arrays"])
        manifest = Manifest(
            ref=ref,
            root=root,
            shards=tuple(ShardRecord(*row) for row in meta["shards"]),
            docs=tuple(DocInfo(*row) for row in meta["docs"]),
            skipped=tuple(stored_skip(row) for row in meta["skipped"]),
            listing_skips=tuple(Skipped(*row) for row in meta["listing_skips"]),
            vocab=tuple(meta["vocab"]),
            tokens=int(meta["tokens"]),
            records=dict(meta["arrays"]),
            **arrays,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CacheInvalid(f"manifest unreadable ({exc.__class__.__name__}: {exc})") from None
    if not (len(manifest.doc_shard) == len(manifest.docs) == len(manifest.doc_sent_ptr) - 1
            and len(manifest.df) == len(manifest.vocab)):  # fmt: skip
        raise CacheInvalid("manifest array sizes do not agree")
    return manifest


def shards_changed(manifest: Manifest, corpus_root: Path) -> bool:
    """Whether a file was added, changed or removed since the manifest was written (lists the folder)."""
    entries, listing_skips = list_articles(check_root(corpus_root))
    groups: list[list[FileEntry]] = [[] for _ in manifest.shards]
    for entry in entries:
        groups[shard_of(entry.path, len(groups))].append(entry)
    listings = [listing_digest(group) for group in groups]
    same_skips = {(s.path, s.reason) for s in listing_skips} == {(s.path, s.reason) for s in manifest.listing_skips}
    return not same_skips or listings != [record.listing for record in manifest.shards]


def global_idf(manifest: Manifest) -> np.ndarray:
    """BM25Okapi IDF of every term over all shards: what the single index computes."""
    return idf_okapi(manifest.df.astype(np.float64), manifest.n_sentences)
