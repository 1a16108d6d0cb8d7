"""The persisted index: versioned, checksummed .npy arrays plus JSON metadata, written atomically.

Layout under the cache folder: `<corpus-key>/CURRENT` names a complete generation
folder `gen-<id>/` holding `meta.json` and one `.npy` per array; the documents' text
lives in `texts/<name>.npy` packs that generations share, so a refresh writes only
the text that changed. A writer writes new packs, fills a temporary folder, renames it
into place, then replaces CURRENT; a crash at any point leaves the previous generation
in force. No pickle anywhere.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import re
import shutil
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from functools import cache
from importlib.resources import files
from itertools import repeat
from pathlib import Path

import numpy as np

from qabot.corpus import FileEntry, Skipped, check_root, list_articles, read_document
from qabot.errors import ConfigError
from qabot.index import Chunk, DocInfo, Index, TextPack, analyze_documents, build_index, refresh_index
from qabot.segment import compile_boilerplate

FORMAT = "qabot-index"
VERSION = 9
TEXTS = "texts"  # folder of text packs, beside the generations
# Code and data that decide what a sentence and a term are: any change to them rebuilds the index.
# (A change to what index.py stores or how it weighs terms bumps VERSION instead.)
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


class CacheInvalid(Exception):
    """The stored index is missing, from another version or damaged; it must be rebuilt."""


@dataclass(frozen=True, slots=True)
class IndexParams:
    """Everything that changes what the index holds; a stored index with other params is rebuilt."""

    k1: float
    b: float
    boilerplate_patterns: tuple[str, ...]
    max_file_bytes: int

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
    renewed = {entry.path: replace(indexed[entry.path], mtime_ns=entry.mtime_ns) for entry in same}
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
    # Forking is only safe with no other thread running (the bot reloads from a worker thread);
    # spawn-like methods would re-run the caller's main script, so those callers go serial.
    if len(entries) < PARALLEL_FILES or workers < 2 or threading.active_count() > 1:
        for batch, batch_shas in zip(batches, batch_known, strict=True):
            collect(analyze_batch(root, batch, params, batch_shas), len(batch))
        return chunks, skips, same
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        results = pool.map(analyze_batch, repeat(root), batches, repeat(params), batch_known)
        for batch, result in zip(batches, results, strict=True):
            collect(result, len(batch))
    return chunks, skips, same


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
            skips.append(_SkippedEntry(doc.path, doc.reason, entry.size, entry.mtime_ns))
        elif known.get(entry.path) == doc.sha256:
            same.append(entry)
        else:
            docs.append(doc)
    return analyze_documents(docs, boilerplate), skips, same


@dataclass(frozen=True, slots=True)
class _SkippedEntry(Skipped):
    """A skipped file with the size and mtime it had, so an unchanged one is not re-read."""

    size: int = -1
    mtime_ns: int = -1


def stored_skip(row: Sequence) -> Skipped:
    """A skipped file as saved ([path, reason, size, mtime_ns]): a file that was read keeps its size and
    mtime; one the listing left out (size -1: a link, an unsupported format) is a plain Skipped, as
    the listing makes it, so an unchanged folder compares equal and the index just loads."""
    return _SkippedEntry(*row) if row[2] >= 0 else Skipped(row[0], row[1])


def _stale_entries(index: Index, stored_skips: Sequence[Skipped], entries: Sequence[FileEntry]) -> list[FileEntry]:
    """Files that are new or whose size or mtime differ from what the index saw."""
    seen = {doc.path: (doc.size, doc.mtime_ns) for doc in index.docs}
    seen.update({s.path: (s.size, s.mtime_ns) for s in stored_skips if isinstance(s, _SkippedEntry)})
    return [entry for entry in entries if seen.get(entry.path) != (entry.size, entry.mtime_ns)]


def _removed(index: Index, entries: Sequence[FileEntry]) -> set[str]:
    return {doc.path for doc in index.docs} - {entry.path for entry in entries}


def _kept_skips(stored: Sequence[Skipped], entries: Sequence[FileEntry], stale: Sequence[FileEntry]) -> list[Skipped]:
    present = {entry.path for entry in entries} - {entry.path for entry in stale}
    return [s for s in stored if isinstance(s, _SkippedEntry) and s.path in present]


def _same_skips(stored: Sequence[Skipped], listing: Sequence[Skipped]) -> bool:
    """Whether the listing found the same unusable entries (links, loops) as when the index was saved."""
    listed = {(s.path, s.reason) for s in listing}
    stored_listing = {(s.path, s.reason) for s in stored if not isinstance(s, _SkippedEntry)}
    return listed == stored_listing


def _save_quietly(index: Index, folder: Path, params: IndexParams, warn: Warn) -> None:
    try:
        save_index(index, folder, params)
    except OSError as exc:
        warn(f"could not save the index to {folder} ({exc.strerror or exc}); it will be rebuilt next time")


def save_index(index: Index, folder: Path, params: IndexParams) -> Path:
    """Write index as a new generation under folder and make it current (atomic); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    packs = _save_packs(index.text_packs, folder / TEXTS)
    tmp = folder / f"tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        arrays = {}
        for name in ARRAYS:
            arrays[name] = _write_array(tmp / f"{name}.npy", getattr(index, name))
        meta = {
            **params.fingerprint(),
            "root": str(index.root),
            "docs": [[d.path, d.sha256, d.title, d.date, d.size, d.mtime_ns, d.url] for d in index.docs],
            "skipped": [
                [s.path, s.reason, getattr(s, "size", -1), getattr(s, "mtime_ns", -1)] for s in index.skipped
            ],
            "vocab": list(index.vocab),
            "arrays": arrays,
            "packs": packs,
        }
        generation, _ = publish_generation(folder, tmp, "meta.json", json.dumps(meta, ensure_ascii=False).encode())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_old_generations(folder, keep=generation, packs={name for name, _ in packs})
    return folder / generation


def publish_generation(folder: Path, tmp: Path, meta_name: str, meta_bytes: bytes) -> tuple[str, str]:
    """Make tmp (its arrays written) the current generation under folder: write its metadata as meta_name,
    sync, rename it into place, then swap in a CURRENT naming it. Returns its name and the metadata's sha256."""
    _write_synced(tmp / meta_name, meta_bytes)
    _fsync_dir(tmp)
    generation = f"gen-{uuid.uuid4().hex}"
    os.rename(tmp, folder / generation)
    sha = hashlib.sha256(meta_bytes).hexdigest()
    pointer = folder / f"CURRENT.{uuid.uuid4().hex}.tmp"
    # CURRENT names the generation and checksums its metadata (the arrays' checksums live there).
    _write_synced(pointer, f"{generation} {sha}\n".encode())
    os.replace(pointer, folder / "CURRENT")
    _fsync_dir(folder)
    return generation, sha


def _save_packs(text_packs: Sequence[TextPack], texts: Path) -> list[list[str]]:
    """Write the packs not yet on disk (each synced, then renamed into place); [[name, checksum], ...].

    A pack already on disk is touched instead, so a concurrent writer's clean-up, which spares
    young files, cannot delete it before the new generation names it.
    """
    texts.mkdir(exist_ok=True)
    saved, wrote = [], False
    for pack in text_packs:
        path = texts / f"{pack.name}.npy"
        checksum = pack.checksum
        if checksum is None or not _touched(path):
            tmp = texts / f"tmp-{uuid.uuid4().hex}"
            try:
                checksum = _write_array(tmp, pack.data)
                os.rename(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            wrote = True
        saved.append([pack.name, checksum])
    if wrote:
        _fsync_dir(texts)
    return saved


def _touched(path: Path) -> bool:
    """Whether path exists; its modification time is set to now."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


def load_index(folder: Path, root: Path, params: IndexParams) -> tuple[Index, list[Skipped]]:
    """The current stored generation, verified; CacheInvalid when absent, stale-format or damaged."""
    name, meta_sha = _read_pointer(folder)
    generation = folder / name
    try:
        meta_bytes = (generation / "meta.json").read_bytes()
        if hashlib.sha256(meta_bytes).hexdigest() != meta_sha:
            raise CacheInvalid("checksum mismatch in meta.json")
        meta = json.loads(meta_bytes.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CacheInvalid(f"metadata unreadable ({exc.__class__.__name__})") from None
    if not isinstance(meta, dict):
        raise CacheInvalid("metadata is not an object")
    expected = params.fingerprint()
    for key, value in expected.items():
        if meta.get(key) != value:
            if key in ("format", "version", "analyzer"):
                raise CacheInvalid(f"built by another version of qabot ({key} differs)")
            raise CacheInvalid(f"built with {key} = {meta.get(key)!r}, now {value!r}")
    arrays = {}
    try:
        for name in ARRAYS:
            path = generation / f"{name}.npy"
            if _file_checksum(path) != meta["arrays"][name]:
                raise CacheInvalid(f"checksum mismatch in {name}.npy")
            # A plain ndarray view of the map: slicing a np.memmap is several times slower.
            arrays[name] = np.load(path, mmap_mode="r", allow_pickle=False).view(np.ndarray)
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
    path = texts / f"{name}.npy"
    if _file_checksum(path) != checksum:
        raise CacheInvalid(f"checksum mismatch in text pack {name}")
    data = np.load(path, mmap_mode="r", allow_pickle=False).view(np.ndarray)
    if data.dtype != np.uint8 or data.ndim != 1:
        raise CacheInvalid(f"text pack {name} is not a byte array")
    return TextPack(name, data, checksum)


def _read_pointer(folder: Path) -> tuple[str, str]:
    """(generation folder name, sha256 of its meta.json) from CURRENT; CacheInvalid if damaged."""
    try:
        content = (folder / "CURRENT").read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise CacheInvalid(f"no current index ({exc.__class__.__name__})") from None
    match = re.fullmatch(r"(gen-[0-9a-f]{32}) ([0-9a-f]{64})\n", content)
    if not match:
        raise CacheInvalid("CURRENT pointer is damaged")
    return match.group(1), match.group(2)


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


def _file_checksum(path: Path) -> str:
    """CRC-32 of the file (integrity against torn or damaged writes; 3 GB/s, so loads stay fast)."""
    crc = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            crc = zlib.crc32(block, crc)
    return f"crc32:{crc:08x}"


def _write_array(path: Path, array: np.ndarray) -> str:
    """Save array as .npy, synced to disk; returns its checksum, computed as it is written."""
    array = np.ascontiguousarray(array)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(array))
    data = memoryview(array).cast("B")
    with open(path, "wb") as handle:
        handle.write(header.getvalue())
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())  # on disk before CURRENT can name it, even across a power cut
    return f"crc32:{zlib.crc32(data, zlib.crc32(header.getvalue())):08x}"


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_old_generations(folder: Path, keep: str, packs: set[str]) -> None:
    """Delete superseded generations, their unused text packs and abandoned temp files, sparing
    anything a concurrent writer may still be finishing (younger than a minute) and whatever
    CURRENT names now. Packs are only collected while CURRENT names `keep`, which uses `packs`."""
    try:
        current = _read_pointer(folder)[0]
    except CacheInvalid:
        current = keep
    young = time.time() - 60
    if current == keep:
        for entry in _entries(folder / TEXTS):
            try:
                if entry.stem not in packs and entry.stat().st_mtime < young:
                    entry.unlink(missing_ok=True)
            except OSError:
                continue
    for entry in _entries(folder):
        if entry.name in (keep, current, "CURRENT", TEXTS):
            continue
        try:
            if entry.stat().st_mtime >= young:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.name.startswith("CURRENT."):
                entry.unlink(missing_ok=True)
        except OSError:
            continue


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []
