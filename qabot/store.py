"""The persisted index: open (load, refresh or build) a corpus's index, stored as a generation (generations.py).

Layout under the cache folder: `<corpus-key>/CURRENT` names a complete generation
folder `gen-<id>/` holding `meta.json` and one `.npy` per array; the documents' text
lives in `texts/<name>.npy` packs that generations share, so a refresh writes only
the text that changed. Freshness is decided here: which files are new, changed or gone.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from functools import cache
from importlib.resources import files
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qabot.corpus import FileEntry, Skipped, check_root, list_articles, read_document
from qabot.errors import ConfigError
from qabot.generations import (
    CacheInvalid,
    load_array,
    load_arrays,
    read_metadata,
    read_pointer,
    remove_old_generations,
    remove_unused_shared,
    save_generation,
    save_shared,
)
from qabot.index import DocInfo, Index
from qabot.postings import Chunk, analyze_documents, build_index, refresh_index
from qabot.segment import compile_boilerplate
from qabot.text_packs import TextPack

if TYPE_CHECKING:
    from qabot.config import Settings

FORMAT = "qabot-index"
VERSION = 9
META = "meta.json"
TEXTS = "texts"  # folder of text packs, beside the generations
# Code and data that decide what a sentence and a term are: any change to them rebuilds the index.
# (A change to what an Index stores (index.py, postings.py) or how it weighs terms (scoring.py) bumps VERSION.)
_ANALYSIS_SOURCES = (
    "analyze.py", "segment.py", "corpus.py", "markdown.py", "answer_type.py", "data/stopwords_en.txt",
    "data/irregular_verbs.txt", "data/combining_marks.txt",
)  # fmt: skip
ARRAYS = (
    "doc_pack", "doc_text_start", "doc_text_end", "doc_sent_ptr", "sent_doc", "sent_start", "sent_end", "sent_line",
    "sent_end_line", "sent_column", "sent_para_before", "sent_para_after", "sent_cues", "tok_ptr", "tok_ids", "df",
    "post_ptr", "post_sent", "post_tf", "post_len", "term_max_tf", "term_min_len", "gram_codes", "gram_ptr",
    "gram_terms", "term_grams", "term_length", "term_first",
)  # fmt: skip
SENTENCE_ARRAYS = (
    "sent_start", "sent_end", "sent_line", "sent_end_line", "sent_column", "sent_para_before", "sent_para_after",
    "sent_cues",
)  # fmt: skip
POSTING_ARRAYS = ("post_sent", "post_tf", "post_len")
PER_TERM_ARRAYS = ("term_max_tf", "term_min_len", "term_grams", "term_length", "term_first")
BATCH_FILES = 200  # files analyzed together (one Chunk; one task for a worker process)
PARALLEL_FILES = 2000  # below this many files, worker start-up costs more than it saves
MAX_WORKERS = 4
Warn = Callable[[str], None]
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class IndexParams:
    """Everything that changes what the index holds; a stored index with other params is rebuilt."""

    k1: float
    b: float
    boilerplate_patterns: tuple[str, ...]
    max_file_bytes: int

    @staticmethod
    def from_settings(settings: Settings) -> IndexParams:
        return IndexParams(settings.k1, settings.b, settings.boilerplate_patterns, settings.max_file_bytes)

    def fingerprint(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "analyzer": analysis_fingerprint(),
            "k1": self.k1,
            "b": self.b,
            "boilerplate_patterns": list(self.boilerplate_patterns),
            "max_file_bytes": self.max_file_bytes,
        }


@dataclass(frozen=True, slots=True)
class OpenReport:
    """How open_index obtained the index: loaded as stored, refreshed, or built from scratch."""

    action: str  # "loaded", "refreshed" or "built"
    added: int = 0
    changed: int = 0
    removed: int = 0
    seconds: float = 0.0


@cache
def analysis_fingerprint() -> str:
    """sha256 over the analyzer's and segmenter's code and word lists, plus the stemmer's version."""
    from importlib.metadata import version

    digest = hashlib.sha256(f"PyStemmer {version('PyStemmer')}".encode())
    package = files("qabot")
    for name in _ANALYSIS_SOURCES:
        digest.update(package.joinpath(name).read_bytes())
    return digest.hexdigest()[:16]


def corpus_cache_dir(cache_root: Path, corpus_root: Path) -> Path:
    """The cache folder of one corpus: cache_root/<name>-<hash of its absolute path>."""
    resolved = corpus_root.resolve()
    key = hashlib.sha256(str(resolved).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", resolved.name)[:40] or "corpus"
    return cache_root / f"{name}-{key}"


def open_index(
    corpus_root: Path,
    cache_root: Path,
    params: IndexParams,
    warn: Warn,
    progress: Progress | None = None,
) -> tuple[Index, OpenReport]:
    """The corpus's index: loaded when no file changed, else refreshed or rebuilt, then saved."""
    started = time.perf_counter()
    root = check_root(corpus_root)
    if cache_root.exists() and not cache_root.is_dir():
        raise ConfigError(f"cache_dir {cache_root} is a file, not a folder; point cache_dir at a folder")
    entries, listing_skips = list_articles(root)
    folder = corpus_cache_dir(cache_root, root)
    index, report = update_index(root, folder, entries, listing_skips, params, warn, progress)
    return index, replace(report, seconds=time.perf_counter() - started)


def update_index(
    root: Path,
    folder: Path,
    entries: Sequence[FileEntry],
    listing_skips: Sequence[Skipped],
    params: IndexParams,
    warn: Warn,
    progress: Progress | None = None,
) -> tuple[Index, OpenReport]:
    """The index of `entries` (files of root) stored in folder: loaded when none changed, else
    refreshed or rebuilt, then saved. A shard of a sharded index is one such folder."""
    started = time.perf_counter()
    try:
        stored = load_index(folder, root, params)
    except CacheInvalid as exc:
        if (folder / "CURRENT").exists():
            warn(f"index cache {folder} is out of date or damaged: {exc}; rebuilding it")
        stored = None
    if stored is None:
        index = build_corpus_index(root, entries, listing_skips, params, warn, progress)
        _save_quietly(index, folder, params, warn)
        return index, OpenReport("built", added=len(index.docs), seconds=time.perf_counter() - started)
    index, stored_skips = stored
    stale, removed = _stale_entries(index, stored_skips, entries), _removed(index, entries)
    if not stale and not removed and _same_skips(stored_skips, listing_skips):
        return index, OpenReport("loaded", seconds=time.perf_counter() - started)
    reported = {(s.path, s.reason) for s in stored_skips}
    for skip in listing_skips:
        if (skip.path, skip.reason) not in reported:
            warn(str(skip))
    indexed = {doc.path: doc for doc in index.docs}
    known = {entry.path: indexed[entry.path].sha256 for entry in stale if entry.path in indexed}
    parts, skips, same = _read_and_analyze(root, stale, params, warn, progress, known)
    renewed = {entry.path: replace(indexed[entry.path], mtime_ns=entry.mtime_ns, ctime_ns=entry.ctime_ns)
               for entry in same}  # fmt: skip
    keep = indexed.keys() - removed - {entry.path for entry in stale} | renewed.keys()
    skipped = sorted([*listing_skips, *skips, *_kept_skips(stored_skips, entries, stale)], key=lambda s: s.path)
    refreshed = refresh_index(index, parts, keep, skipped, renewed)
    _save_quietly(refreshed, folder, params, warn)
    changed_paths = [doc.path for chunk in parts for doc in chunk.docs]
    added = sum(1 for path in changed_paths if path not in indexed)
    report = OpenReport("refreshed", added, len(changed_paths) - added, len(removed), time.perf_counter() - started)
    return refreshed, report


def corpus_changed(index: Index, corpus_root: Path) -> bool:
    """Whether a file was added, changed (size or mtime) or removed since index was made; cheap:
    the folder is listed, nothing is read."""
    entries, listing_skips = list_articles(check_root(corpus_root))
    stale, removed = _stale_entries(index, index.skipped, entries), _removed(index, entries)
    return bool(stale or removed) or not _same_skips(index.skipped, listing_skips)


def build_corpus_index(
    root: Path,
    entries: Sequence[FileEntry],
    listing_skips: Sequence[Skipped],
    params: IndexParams,
    warn: Warn,
    progress: Progress | None = None,
) -> Index:
    """A fresh Index of every readable article (each unreadable one is reported through warn)."""
    parts, skips, _ = _read_and_analyze(root, entries, params, warn, progress)
    skipped = sorted([*listing_skips, *skips], key=lambda s: s.path)
    for skip in listing_skips:
        warn(str(skip))
    return build_index(root, parts, skipped, params.k1, params.b)


def _read_and_analyze(
    root: Path,
    entries: Sequence[FileEntry],
    params: IndexParams,
    warn: Warn,
    progress: Progress | None,
    known: Mapping[str, str] | None = None,
) -> tuple[list[Chunk], list[Skipped], list[FileEntry]]:
    """Read, segment and analyze entries in batches; on several cores for a large corpus.

    Entries whose bytes still have the sha256 in `known` (path -> sha256) are only read, not
    analyzed again, and come back in the third list.
    """
    known = known or {}
    batches = [entries[i : i + BATCH_FILES] for i in range(0, len(entries), BATCH_FILES)]
    batch_known = [{e.path: known[e.path] for e in batch if e.path in known} for batch in batches]
    chunks: list[Chunk] = []
    skips: list[Skipped] = []
    same: list[FileEntry] = []
    done = 0

    def collect(result: tuple[Chunk, list[Skipped], list[FileEntry]], size: int) -> None:
        nonlocal done
        chunk, batch_skips, batch_same = result
        chunks.append(chunk)
        same.extend(batch_same)
        for skip in batch_skips:
            skips.append(skip)
            warn(str(skip))
        done += size
        if progress:
            progress(done, len(entries))

    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    if len(entries) < PARALLEL_FILES or workers < 2:
        for batch, batch_shas in zip(batches, batch_known, strict=True):
            collect(analyze_batch(root, batch, params, batch_shas), len(batch))
        return chunks, skips, same
    with ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context()) as pool:
        results = pool.map(analyze_batch, repeat(root), batches, repeat(params), batch_known)
        for batch, result in zip(batches, results, strict=True):
            collect(result, len(batch))
    return chunks, skips, same


def _worker_context() -> multiprocessing.context.BaseContext:
    """How worker processes start: forked from this process when it runs no other thread (at once, sharing
    what is loaded), else from a single-threaded fork server, since a fork would copy a lock that another
    thread (the bot's event loop, a benchmark's memory sampler) may hold. Workers started that way import
    the caller's main module, so a script that builds a large index from a thread needs the usual
    `if __name__ == "__main__":` guard."""
    return multiprocessing.get_context("fork" if threading.active_count() == 1 else "forkserver")


def analyze_batch(
    root: Path, entries: Sequence[FileEntry], params: IndexParams, known: Mapping[str, str]
) -> tuple[Chunk, list[Skipped], list[FileEntry]]:
    """One batch of files read and analyzed into a Chunk, the files skipped and why, and the files
    whose bytes still have the sha256 `known` gives for their path (read, not analyzed)."""
    boilerplate = compile_boilerplate(params.boilerplate_patterns)
    docs, skips, same = [], [], []
    for entry in entries:
        doc = read_document(root, entry, params.max_file_bytes, boilerplate)
        if isinstance(doc, Skipped):
            skips.append(SkippedEntry(doc.path, doc.reason, entry.size, entry.mtime_ns, entry.ctime_ns))
        elif known.get(entry.path) == doc.sha256:
            same.append(entry)
        else:
            docs.append(doc)
    return analyze_documents(docs, boilerplate), skips, same


@dataclass(frozen=True, slots=True)
class SkippedEntry(Skipped):
    """A skipped file with the size and mtime it had, so an unchanged one is not re-read."""

    size: int = -1
    mtime_ns: int = -1
    ctime_ns: int = -1


def stored_skip(row: Sequence) -> Skipped:
    """A skipped file as saved ([path, reason, size, mtime_ns, ctime_ns]): a file that was read keeps its
    size and times; one the listing left out (size -1: a link, an unsupported format) is a plain Skipped,
    as the listing makes it, so an unchanged folder compares equal and the index just loads."""
    return SkippedEntry(*row) if row[2] >= 0 else Skipped(row[0], row[1])


def _stale_entries(index: Index, stored_skips: Sequence[Skipped], entries: Sequence[FileEntry]) -> list[FileEntry]:
    """Files that are new or whose size, mtime or ctime differ from what the index saw. A file whose
    ctime alone moved (written in place, its mtime set back) is re-read and its bytes compared."""
    seen = {doc.path: (doc.size, doc.mtime_ns, doc.ctime_ns) for doc in index.docs}
    seen.update({s.path: (s.size, s.mtime_ns, s.ctime_ns) for s in stored_skips if isinstance(s, SkippedEntry)})
    return [entry for entry in entries if seen.get(entry.path) != (entry.size, entry.mtime_ns, entry.ctime_ns)]


def _removed(index: Index, entries: Sequence[FileEntry]) -> set[str]:
    return {doc.path for doc in index.docs} - {entry.path for entry in entries}


def _kept_skips(stored: Sequence[Skipped], entries: Sequence[FileEntry], stale: Sequence[FileEntry]) -> list[Skipped]:
    present = {entry.path for entry in entries} - {entry.path for entry in stale}
    return [s for s in stored if isinstance(s, SkippedEntry) and s.path in present]


def _same_skips(stored: Sequence[Skipped], listing: Sequence[Skipped]) -> bool:
    """Whether the listing found the same unusable entries (links, loops) as when the index was saved."""
    listed = {(s.path, s.reason) for s in listing}
    stored_listing = {(s.path, s.reason) for s in stored if not isinstance(s, SkippedEntry)}
    return listed == stored_listing


def _save_quietly(index: Index, folder: Path, params: IndexParams, warn: Warn) -> None:
    try:
        save_index(index, folder, params)
    except OSError as exc:
        warn(f"could not save the index to {folder} ({exc.strerror or exc}); it will be rebuilt next time")


def save_index(index: Index, folder: Path, params: IndexParams) -> Path:
    """Write index as a new generation under folder and make it current (atomic); returns its path.

    New text packs are written first, beside the generations; a pack already on disk is reused."""
    packs = save_shared(folder / TEXTS, [(pack.name, pack.data, pack.checksum) for pack in index.text_packs])
    meta = {
        **params.fingerprint(),
        "root": str(index.root),
        "docs": [[d.path, d.sha256, d.title, d.date, d.size, d.mtime_ns, d.ctime_ns, d.url] for d in index.docs],
        "skipped": [[s.path, s.reason, getattr(s, "size", -1), getattr(s, "mtime_ns", -1), getattr(s, "ctime_ns", -1)]
                    for s in index.skipped],
        "vocab": list(index.vocab),
        "packs": packs,
    }
    arrays = {name: getattr(index, name) for name in ARRAYS}
    generation, _ = save_generation(folder, arrays, META, meta)
    remove_old_generations(folder, keep=generation)
    remove_unused_shared(folder / TEXTS, folder, keep=generation, used={name for name, _ in packs})
    return folder / generation


def load_index(folder: Path, root: Path, params: IndexParams) -> tuple[Index, list[Skipped]]:
    """The current stored generation, verified; CacheInvalid when absent, stale-format or damaged."""
    name, meta_sha = read_pointer(folder)
    generation = folder / name
    meta = read_metadata(generation, META, meta_sha)
    expected = params.fingerprint()
    for key, value in expected.items():
        if meta.get(key) != value:
            if key in ("format", "version", "analyzer"):
                raise CacheInvalid(f"built by another version of qabot ({key} differs)")
            raise CacheInvalid(f"built with {key} = {meta.get(key)!r}, now {value!r}")
    try:
        arrays = load_arrays(generation, ARRAYS, meta["arrays"])
        text_packs = tuple(_load_pack(folder / TEXTS, name, checksum) for name, checksum in meta["packs"])
        docs = tuple(DocInfo(*row) for row in meta["docs"])
        skipped = [stored_skip(row) for row in meta["skipped"]]
        index = Index(root=root, docs=docs, skipped=tuple(skipped), k1=params.k1, b=params.b,
                      vocab=tuple(meta["vocab"]), text_packs=text_packs, **arrays)  # fmt: skip
    except CacheInvalid:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CacheInvalid(f"arrays unreadable ({exc.__class__.__name__}: {exc})") from None
    _check_shapes(index)
    return index, skipped


def _load_pack(texts: Path, name: object, checksum: object) -> TextPack:
    if not isinstance(name, str) or not re.fullmatch(r"[0-9a-f]{32}", name) or not isinstance(checksum, str):
        raise CacheInvalid("text pack entry is damaged")
    data = load_array(texts / f"{name}.npy", checksum)
    if data.dtype != np.uint8 or data.ndim != 1:
        raise CacheInvalid(f"text pack {name} is not a byte array")
    return TextPack(name, data, checksum)


def _check_shapes(index: Index) -> None:
    n_docs, n_sent, n_terms = len(index.docs), len(index.sent_doc), len(index.vocab)
    checks = (
        all(len(getattr(index, a)) == n_docs for a in ("doc_pack", "doc_text_start", "doc_text_end")),
        len(index.doc_sent_ptr) == n_docs + 1,
        len(index.tok_ptr) == n_sent + 1,
        len(index.post_ptr) == n_terms + 1,
        len(index.df) == n_terms,
        all(len(getattr(index, a)) == n_sent for a in SENTENCE_ARRAYS),
        all(len(getattr(index, a)) == (int(index.post_ptr[-1]) if n_terms else 0) for a in POSTING_ARRAYS),
        all(len(getattr(index, a)) == n_terms for a in PER_TERM_ARRAYS),
        len(index.gram_ptr) == len(index.gram_codes) + 1,
        len(index.gram_terms) == (int(index.gram_ptr[-1]) if len(index.gram_codes) else 0),
        not len(index.gram_terms) or 0 <= index.gram_terms.min() <= index.gram_terms.max() < n_terms,
    )
    if not all(checks):
        raise CacheInvalid("array sizes do not agree")
    pack_sizes = np.array([len(pack.data) for pack in index.text_packs], dtype=np.int64)
    in_packs = n_docs == 0 or (
        index.doc_pack.min() >= 0
        and index.doc_pack.max() < len(pack_sizes)
        and (index.doc_text_start >= 0).all()
        and (index.doc_text_start <= index.doc_text_end).all()
        and (index.doc_text_end <= pack_sizes[index.doc_pack]).all()
    )
    if not in_packs:
        raise CacheInvalid("document text lies outside its pack")
