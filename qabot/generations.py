"""Generations on disk: folders of checksummed .npy arrays plus one JSON metadata file, published atomically.

A folder's `CURRENT` names its complete generation `gen-<id>/` and the sha256 of that generation's
metadata, which records each array's CRC-32, size and status-change time (ctime) as it was written.
A writer fills a `tmp-<id>/` folder, syncs it, renames it into place, then swaps in a new CURRENT; a
crash at any point leaves the previous generation in force. Arrays that several generations share (the
index's text packs) live in a folder of their own, written once, each named in the metadata with its
record. The single index (store.py) and the sharded index's manifest (shards.py) are both stored this
way. No pickle anywhere.

Opening checks every array's size and header, and its CRC-32 whenever its ctime is not the recorded one:
any write to a file moves its ctime, which no program can set back, so a file damaged by a write (or
copied, restored or touched) is read in full and checked, while an untouched one is mapped without
reading it. Strings (file paths, titles, the vocabulary) are stored as JsonColumn arrays, decoded when used.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import time
import uuid
import zlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

POINTER = "CURRENT"
SPARED_SECONDS = 60  # files younger than this may belong to a writer still finishing; clean-up spares them
WRITERS = 3  # arrays of a generation written at once (a 1M-sentence index's 218 MB: 0.55-0.9 s one by one, 0.17-0.3 s)


class CacheInvalid(Exception):
    """The stored generation is missing, from another version or damaged; it must be rebuilt."""


def write_array(path: Path, array: np.ndarray) -> list:
    """Save array as .npy, synced to disk; returns its record: [checksum, size, ctime_ns], the checksum
    computed as it is written."""
    array = np.ascontiguousarray(array)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(array))
    data = memoryview(array).cast("B")
    with open(path, "wb") as handle:
        handle.write(header.getvalue())
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())  # on disk before CURRENT can name it, even across a power cut
        status = os.fstat(handle.fileno())
    return [f"crc32:{zlib.crc32(data, zlib.crc32(header.getvalue())):08x}", status.st_size, status.st_ctime_ns]


def file_checksum(path: Path) -> str:
    """CRC-32 of the file (integrity against torn or damaged writes; 3 GB/s)."""
    crc = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            crc = zlib.crc32(block, crc)
    return f"crc32:{crc:08x}"


def load_array(path: Path, record: object, verify: bool = False) -> np.ndarray:
    """The .npy at path memory-mapped, after its size is checked against its record ([checksum, size,
    ctime_ns]) and, when its ctime moved since (or `verify` asks), its checksum verified; CacheInvalid
    when either differs or the file cannot be read."""
    if not (isinstance(record, list) and len(record) == 3 and isinstance(record[0], str)
            and all(type(number) is int for number in record[1:])):  # fmt: skip
        raise CacheInvalid(f"the metadata's record of {path.name} is damaged")
    checksum, size, ctime_ns = record
    try:
        status = os.stat(path)
        if status.st_size != size:
            raise CacheInvalid(f"{path.name} has {status.st_size} bytes, not {size}")
        if (verify or status.st_ctime_ns != ctime_ns) and file_checksum(path) != checksum:
            raise CacheInvalid(f"checksum mismatch in {path.name}")
        # A plain ndarray view of the map: slicing a np.memmap is several times slower.
        return np.load(path, mmap_mode="r", allow_pickle=False).view(np.ndarray)
    except (OSError, ValueError) as exc:
        raise CacheInvalid(f"arrays unreadable ({path.name}: {exc.__class__.__name__})") from None


def load_arrays(
    generation: Path, names: Sequence[str], records: object, verify: bool = False
) -> dict[str, np.ndarray]:
    """The named arrays of a generation, each checked against `records` (its metadata's, by name)."""
    if not isinstance(records, Mapping) or not all(name in records for name in names):
        raise CacheInvalid("the metadata lacks some arrays' records")
    return {name: load_array(generation / f"{name}.npy", records[name], verify) for name in names}


class JsonColumn(Sequence[Any]):
    """JSON scalars (strings, None, numbers) stored as two arrays: their text as one JSON list with a
    newline between values (JSON text never holds a raw newline), and where each value starts (then
    the text's length). A value is decoded when it is read; a fresh process decodes the few it uses."""

    __slots__ = ("_starts", "_text")

    def __init__(self, text: np.ndarray, starts: np.ndarray) -> None:
        if not (text.dtype == np.uint8 and text.ndim == 1 and starts.ndim == 1 and len(starts) >= 1
                and int(starts[-1]) == len(text) >= 2 and (len(starts) == 1 or int(starts[0]) == 1)
                and bool(np.all(starts[1:] > starts[:-1]))):  # fmt: skip
            raise CacheInvalid("a column of stored strings is damaged")
        self._text, self._starts = text, starts

    @staticmethod
    def encode(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """The two arrays (text, starts) that hold values."""
        text = np.frombuffer(json.dumps(list(values), separators=("\n", ":")).encode("ascii"), dtype=np.uint8)
        starts = np.flatnonzero(text == ord("\n")) + 1
        return text, np.concatenate([[1] if len(values) else [], starts, [len(text)]]).astype(np.int64)

    def __len__(self) -> int:
        return len(self._starts) - 1

    def __getitem__(self, at):  # type: ignore[override]
        if isinstance(at, slice):
            start, stop, step = at.indices(len(self))
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            if start >= stop:
                return []
            run = self._text[self._starts[start] : self._starts[stop] - 1].tobytes()  # one decoding for the run
            return json.loads(b"[" + run.replace(b"\n", b",") + b"]")
        at = range(len(self))[at]
        return json.loads(self._text[self._starts[at] : self._starts[at + 1] - 1].tobytes())

    def __iter__(self) -> Iterator[Any]:
        return iter(self.decoded())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def decoded(self) -> list:
        """Every value, decoded at once; CacheInvalid when the text is not the list it should be."""
        try:
            values = json.loads(self._text.tobytes().replace(b"\n", b","))
        except (ValueError, RecursionError):
            raise CacheInvalid("a column of stored strings is damaged") from None
        if not isinstance(values, list) or len(values) != len(self):
            raise CacheInvalid("a column of stored strings is damaged")
        return values


def read_pointer(folder: Path) -> tuple[str, str]:
    """(generation folder name, sha256 of its metadata) from CURRENT; CacheInvalid if absent or damaged."""
    try:
        content = (folder / POINTER).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise CacheInvalid(f"no current index ({exc.__class__.__name__})") from None
    match = re.fullmatch(r"(gen-[0-9a-f]{32}) ([0-9a-f]{64})\n", content)
    if not match:
        raise CacheInvalid(f"{POINTER} pointer is damaged")
    return match.group(1), match.group(2)


def read_metadata(generation: Path, meta_name: str, sha256: str) -> dict:
    """A generation's metadata (a JSON object), verified against the sha256 its pointer gives."""
    try:
        meta_bytes = (generation / meta_name).read_bytes()
        if hashlib.sha256(meta_bytes).hexdigest() != sha256:
            raise CacheInvalid(f"checksum mismatch in {meta_name}")
        meta = json.loads(meta_bytes.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CacheInvalid(f"{meta_name} unreadable ({exc.__class__.__name__})") from None
    if not isinstance(meta, dict):
        raise CacheInvalid(f"{meta_name} is not an object")
    return meta


def save_generation(folder: Path, arrays: Mapping[str, np.ndarray], meta_name: str, meta: Mapping) -> tuple[str, str]:
    """Write arrays and the metadata (meta plus an "arrays" entry of their records) as a new generation
    under folder and make it current; returns its name and the metadata's sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        with ThreadPoolExecutor(WRITERS) as writers:  # writing, syncing and checksumming release the GIL
            written = list(writers.map(lambda item: write_array(tmp / f"{item[0]}.npy", item[1]), arrays.items()))
        records = dict(zip(arrays, written, strict=True))
        meta_bytes = json.dumps({**meta, "arrays": records}, ensure_ascii=False).encode("utf-8")
        return publish(folder, tmp, meta_name, meta_bytes)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def publish(folder: Path, tmp: Path, meta_name: str, meta_bytes: bytes) -> tuple[str, str]:
    """Make tmp (its arrays written) the current generation under folder: write its metadata as meta_name,
    sync, rename it into place, then swap in a CURRENT naming it. Returns its name and the metadata's sha256."""
    write_synced(tmp / meta_name, meta_bytes)
    fsync_dir(tmp)
    generation = f"gen-{uuid.uuid4().hex}"
    os.rename(tmp, folder / generation)
    sha = hashlib.sha256(meta_bytes).hexdigest()
    pointer = folder / f"{POINTER}.{uuid.uuid4().hex}.tmp"
    # CURRENT names the generation and checksums its metadata (the arrays' records live there).
    write_synced(pointer, f"{generation} {sha}\n".encode())
    os.replace(pointer, folder / POINTER)
    fsync_dir(folder)
    return generation, sha


def save_shared(folder: Path, arrays: Sequence[tuple[str, np.ndarray, str | None]]) -> list[list]:
    """Write the shared arrays (name, data, checksum if already on disk) not yet under folder, each synced
    and then renamed into place; returns [[name, checksum, size, ctime_ns], ...] for the metadata.

    One already on disk is touched instead, so a concurrent writer's clean-up, which spares young files,
    cannot delete it before the new generation names it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    saved, wrote = [], False
    for name, data, checksum in arrays:
        path = folder / f"{name}.npy"
        if checksum is None or not _touched(path):
            tmp = folder / f"tmp-{uuid.uuid4().hex}"
            try:
                checksum = write_array(tmp, data)[0]
                os.rename(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            wrote = True
        status = os.stat(path)  # after the rename or the touch, which both move its ctime
        saved.append([name, checksum, status.st_size, status.st_ctime_ns])
    if wrote:
        fsync_dir(folder)
    return saved


def remove_old_generations(folder: Path, keep: str) -> None:
    """Delete superseded generations and abandoned temporary files under folder, sparing what a
    concurrent writer may still be finishing (younger than SPARED_SECONDS), `keep` and what CURRENT
    names now. Other entries (shared arrays, subfolders of other owners) are left alone."""
    try:
        current = read_pointer(folder)[0]
    except CacheInvalid:
        current = keep
    young = time.time() - SPARED_SECONDS
    for entry in _entries(folder):
        if entry.name in (keep, current) or not entry.name.startswith(("gen-", "tmp-", f"{POINTER}.")):
            continue
        try:
            if entry.stat().st_mtime >= young:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        except OSError:
            continue


def remove_unused_shared(folder: Path, generation_folder: Path, keep: str, used: Collection[str]) -> None:
    """Delete the shared arrays under folder that no generation of generation_folder uses: only while
    CURRENT there still names `keep` (whose metadata lists `used`), and only those older than
    SPARED_SECONDS (a concurrent writer touches what it reuses)."""
    try:
        if read_pointer(generation_folder)[0] != keep:
            return
    except CacheInvalid:
        return
    young = time.time() - SPARED_SECONDS
    for entry in _entries(folder):
        try:
            if entry.stem not in used and entry.stat().st_mtime < young:
                entry.unlink(missing_ok=True)
        except OSError:
            continue


def write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _touched(path: Path) -> bool:
    """Whether path exists; its modification time is set to now."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []
