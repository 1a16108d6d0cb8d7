"""The persisted index: open (load, refresh or build) a corpus's index, stored as a generation (generations.py).

Layout under the cache folder: `<corpus-key>/CURRENT` names a complete generation
folder `gen-<id>/` holding `meta.json` and one `.npy` per array; the documents' text
lives in `texts/<name>.npy` packs that generations share, so a refresh writes only
the text that changed. Freshness is decided here: which files are new, changed or gone.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qabot.corpus import FileEntry, Listing, Skipped, check_root, list_articles, read_document
from qabot.errors import ConfigError
from qabot.generations import (
    CacheInvalid,
    JsonColumn,
    load_array,
    load_arrays,
    read_metadata,
    read_pointer,
    remove_old_generations,
    remove_unused_shared,
    save_generation,
    save_shared,
)
from qabot.index import DocTable, Index
from qabot.text_packs import TextPack

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

    from qabot.config import Settings
    from qabot.postings import Chunk

FORMAT = "qabot-index"
VERSION = 10
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
# The documents (index.DocTable) and the vocabulary (a JsonColumn), stored beside the Index's arrays.
DOC_ARRAYS = ("doc_path_text", "doc_path_starts", "doc_detail_text", "doc_detail_starts", "doc_size", "doc_mtime_ns",
              "doc_ctime_ns")  # fmt: skip
VOCAB_ARRAYS = ("vocab_text", "vocab_starts")
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
    import Stemmer

    digest = hashlib.sha256(f"PyStemmer {Stemmer.version()}".encode())
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
    verify: bool = False,
) -> tuple[Index, OpenReport]:
    """The corpus's index: loaded when no file changed, else refreshed or rebuilt, then saved. With
    `verify`, every stored array's checksum is checked, whatever its ctime says (`qabot index`)."""
    started = time.perf_counter()
    root = check_root(corpus_root)
    if cache_root.exists() and not cache_root.is_dir():
        raise ConfigError(f"cache_dir {cache_root} is a file, not a folder; point cache_dir at a folder")
    entries, listing_skips = list_articles(root)
    folder = corpus_cache_dir(cache_root, root)
    index, report = update_index(root, folder, entries, listing_skips, params, warn, progress, verify)
    return index, replace(report, seconds=time.perf_counter() - started)


def update_index(
    root: Path,
    folder: Path,
    entries: Sequence[FileEntry],
    listing_skips: Sequence[Skipped],
    params: IndexParams,
    warn: Warn,
    progress: Progress | None = None,
    verify: bool = False,
) -> tuple[Index, OpenReport]:
    """The index of `entries` (files of root) stored in folder: loaded when none changed, else
    refreshed or rebuilt, then saved. A shard of a sharded index is one such folder."""
    started = time.perf_counter()
    try:
        stored = load_index(folder, root, params, verify)
    except CacheInvalid as exc:
        if (folder / "CURRENT").exists():
            warn(f"index cache {folder} is out of date or damaged: {exc}; rebuilding it")
        stored = None
    if stored is None:
        index = build_corpus_index(root, entries, listing_skips, params, warn, progress)
        _save_quietly(index, folder, params, warn)
        return index, OpenReport("built", added=len(index.docs), seconds=time.perf_counter() - started)
    index, stored_skips = stored
    stale, removed = _changes(index, stored_skips, entries)
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
    from qabot.postings import refresh_index

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
    stale, removed = _changes(index, index.skipped, entries)
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
    from qabot.postings import build_index

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
    from concurrent.futures import ProcessPoolExecutor
    from itertools import repeat

    with ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context()) as pool:
        results = pool.map(analyze_batch, repeat(root), batches, repeat(params), batch_known)
        for batch, result in zip(batches, results, strict=True):
            collect(result, len(batch))
    return chunks, skips, same


def _worker_context() -> BaseContext:
    """How worker processes start: forked from this process when it runs no other thread (at once, sharing
    what is loaded), else from a single-threaded fork server, since a fork would copy a lock that another
    thread (the bot's event loop, a benchmark's memory sampler) may hold. Workers started that way import
    the caller's main module, so a script that builds a large index from a thread needs the usual
    `if __name__ == "__main__":` guard."""
    import multiprocessing
    import threading

    return multiprocessing.get_context("fork" if threading.active_count() == 1 else "forkserver")


def analyze_batch(
    root: Path, entries: Sequence[FileEntry], params: IndexParams, known: Mapping[str, str]
) -> tuple[Chunk, list[Skipped], list[FileEntry]]:
    """One batch of files read and analyzed into a Chunk, the files skipped and why, and the files
    whose bytes still have the sha256 `known` gives for their path (read, not analyzed)."""
    from qabot.postings import analyze_documents
    from qabot.segment import compile_boilerplate

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


def _changes(
    index: Index, stored_skips: Sequence[Skipped], entries: Sequence[FileEntry]
) -> tuple[list[FileEntry], set[str]]:
    """The files that are new or whose size, mtime or ctime differ from what the index saw, and the
    documents whose files are gone. A file whose ctime alone moved (written in place, its mtime set
    back) is re-read and its bytes compared. Compared as arrays: a fresh process checks 50,000 files."""
    listing = Listing.of(entries)
    paths, seen = _seen(index, stored_skips)
    listed = np.array([listing.sizes, listing.mtimes_ns, listing.ctimes_ns], dtype=np.int64).T.reshape(-1, 3)
    if len(paths) == len(listing) and tuple(paths) == listing.paths:  # the same files: compare their times
        stale = (listed != seen).any(axis=1)
        removed: set[str] = set()
    else:
        position = {path: i for i, path in enumerate(paths)}
        at = np.fromiter((position.get(path, -1) for path in listing.paths), dtype=np.int64, count=len(listing))
        stale, known = np.ones(len(listing), dtype=bool), at >= 0
        stale[known] = (listed[known] != seen[at[known]]).any(axis=1)
        removed = set(_doc_paths(index)) - set(listing.paths)
    return [listing[i] for i in np.flatnonzero(stale).tolist()], removed


def _doc_paths(index: Index) -> Sequence[str]:
    docs = index.docs
    return docs.paths if isinstance(docs, DocTable) else [doc.path for doc in docs]


def _seen(index: Index, stored_skips: Sequence[Skipped]) -> tuple[Sequence[str], np.ndarray]:
    """Paths and (size, mtime_ns, ctime_ns) rows of the files the index read: its documents, then the
    read files it skipped."""
    docs = index.docs
    if isinstance(docs, DocTable):
        seen = np.column_stack([docs.sizes, docs.mtimes_ns, docs.ctimes_ns])
    else:
        seen = np.array([(doc.size, doc.mtime_ns, doc.ctime_ns) for doc in docs], dtype=np.int64).reshape(-1, 3)
    paths = _doc_paths(index)
    read = [skip for skip in stored_skips if isinstance(skip, SkippedEntry)]
    if read:
        paths = [*paths, *(skip.path for skip in read)]
        rows = np.array([(skip.size, skip.mtime_ns, skip.ctime_ns) for skip in read], dtype=np.int64)
        seen = np.concatenate([seen, rows])
    return paths, seen


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
        "skipped": [[s.path, s.reason, getattr(s, "size", -1), getattr(s, "mtime_ns", -1), getattr(s, "ctime_ns", -1)]
                    for s in index.skipped],
        "packs": packs,
    }
    vocab_text, vocab_starts = JsonColumn.encode(index.vocab)
    arrays = {**{name: getattr(index, name) for name in ARRAYS}, **DocTable.columns(index.docs),
              "vocab_text": vocab_text, "vocab_starts": vocab_starts}  # fmt: skip
    generation, _ = save_generation(folder, arrays, META, meta)
    remove_old_generations(folder, keep=generation)
    remove_unused_shared(folder / TEXTS, folder, keep=generation, used={pack[0] for pack in packs})
    return folder / generation


def load_index(folder: Path, root: Path, params: IndexParams, verify: bool = False) -> tuple[Index, list[Skipped]]:
    """The current stored generation, checked (generations.py says how; `verify`: every checksum);
    CacheInvalid when absent, stale-format or damaged."""
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
        arrays = load_arrays(generation, (*ARRAYS, *DOC_ARRAYS, *VOCAB_ARRAYS), meta["arrays"], verify)
        text_packs = tuple(_load_pack(folder / TEXTS, entry, verify) for entry in meta["packs"])
        docs = DocTable.stored({name: arrays.pop(name) for name in DOC_ARRAYS})
        vocab = JsonColumn(arrays.pop("vocab_text"), arrays.pop("vocab_starts"))
        skipped = [stored_skip(row) for row in meta["skipped"]]
        index = Index(root=root, docs=docs, skipped=tuple(skipped), k1=params.k1, b=params.b, vocab=vocab,
                      text_packs=text_packs, **arrays)  # fmt: skip
    except CacheInvalid:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CacheInvalid(f"arrays unreadable ({exc.__class__.__name__}: {exc})") from None
    _check_shapes(index)
    return index, skipped


def _load_pack(texts: Path, entry: object, verify: bool) -> TextPack:
    """A text pack from its metadata entry [name, checksum, size, ctime_ns]."""
    if not (isinstance(entry, list) and len(entry) == 4 and isinstance(entry[0], str)
            and re.fullmatch(r"[0-9a-f]{32}", entry[0])):  # fmt: skip
        raise CacheInvalid("text pack entry is damaged")
    name, record = entry[0], entry[1:]
    data = load_array(texts / f"{name}.npy", record, verify)
    if data.dtype != np.uint8 or data.ndim != 1:
        raise CacheInvalid(f"text pack {name} is not a byte array")
    return TextPack(name, data, record[0])


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
