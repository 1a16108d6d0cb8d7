"""Generations on disk: folders of checksummed .npy arrays plus one JSON metadata file, published atomically.

A folder's `CURRENT` names its complete generation `gen-<id>/` and the sha256 of that generation's
metadata, which holds the arrays' checksums. A writer fills a `tmp-<id>/` folder, syncs it, renames
it into place, then swaps in a new CURRENT; a crash at any point leaves the previous generation in
force. Arrays that several generations share (the index's text packs) live in a folder of their own,
written once, each named in the metadata with its checksum. The single index (store.py) and the
sharded index's manifest (shards.py) are both stored this way. No pickle anywhere.
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
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np

POINTER = "CURRENT"
SPARED_SECONDS = 60  # files younger than this may belong to a writer still finishing; clean-up spares them


class CacheInvalid(Exception):
    """The stored generation is missing, from another version or damaged; it must be rebuilt."""


def write_array(path: Path, array: np.ndarray) -> str:
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


def file_checksum(path: Path) -> str:
    """CRC-32 of the file (integrity against torn or damaged writes; 3 GB/s, so loads stay fast)."""
    crc = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            crc = zlib.crc32(block, crc)
    return f"crc32:{crc:08x}"


def load_array(path: Path, checksum: object) -> np.ndarray:
    """The .npy at path memory-mapped, after its checksum is verified; CacheInvalid when it differs or
    the file cannot be read."""
    try:
        if file_checksum(path) != checksum:
            raise CacheInvalid(f"checksum mismatch in {path.name}")
        # A plain ndarray view of the map: slicing a np.memmap is several times slower.
        return np.load(path, mmap_mode="r", allow_pickle=False).view(np.ndarray)
    except (OSError, ValueError) as exc:
        raise CacheInvalid(f"arrays unreadable ({path.name}: {exc.__class__.__name__})") from None


def load_arrays(generation: Path, names: Sequence[str], checksums: object) -> dict[str, np.ndarray]:
    """The named arrays of a generation, each verified against `checksums` (its metadata's, by name)."""
    if not isinstance(checksums, Mapping) or not all(name in checksums for name in names):
        raise CacheInvalid("the metadata lacks some arrays' checksums")
    return {name: load_array(generation / f"{name}.npy", checksums[name]) for name in names}


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
    """Write arrays and the metadata (meta plus an "arrays" entry of their checksums) as a new generation
    under folder and make it current; returns its name and the metadata's sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        checksums = {name: write_array(tmp / f"{name}.npy", array) for name, array in arrays.items()}
        meta_bytes = json.dumps({**meta, "arrays": checksums}, ensure_ascii=False).encode("utf-8")
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
    # CURRENT names the generation and checksums its metadata (the arrays' checksums live there).
    write_synced(pointer, f"{generation} {sha}\n".encode())
    os.replace(pointer, folder / POINTER)
    fsync_dir(folder)
    return generation, sha


def save_shared(folder: Path, arrays: Sequence[tuple[str, np.ndarray, str | None]]) -> list[list[str]]:
    """Write the shared arrays (name, data, checksum if already on disk) not yet under folder, each synced
    and then renamed into place; returns [[name, checksum], ...] for the metadata.

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
                checksum = write_array(tmp, data)
                os.rename(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            wrote = True
        saved.append([name, checksum])
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
