"""Finding and reading articles: Documents for the good files, Skipped reasons for the rest."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from qabot.errors import CorpusError

DATE_HEADER = re.compile(r"[ \t]*date[ \t]+(\d{4}-\d{2}-\d{2})[ \t]+")


@dataclass(frozen=True, slots=True)
class FileEntry:
    """An article file found under the corpus root, not yet read."""

    path: str  # relative to the corpus root, with forward slashes
    size: int
    mtime_ns: int
    ctime_ns: int  # status change: moves on any write, even when the mtime is set back


@dataclass(frozen=True, slots=True)
class Document:
    """One article: `text` is the file decoded as UTF-8, unchanged."""

    path: str
    text: str
    sha256: str
    title: str
    date: str | None
    size: int
    mtime_ns: int
    ctime_ns: int = -1


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file left out of the corpus, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"skipped {self.path}: {self.reason}"


def check_root(root: Path) -> Path:
    """The resolved corpus root; CorpusError when it is missing or not a folder."""
    if not root.exists():
        raise CorpusError(f"corpus folder {root} does not exist; pass --corpus DIR or set QABOT_CORPUS")
    if not root.is_dir():
        raise CorpusError(f"corpus path {root} is not a folder; pass --corpus DIR")
    return root.resolve()


def list_articles(root: Path) -> tuple[list[FileEntry], list[Skipped]]:
    """Every *.txt under root (sorted), without following links that leave it or hidden folders."""
    root = check_root(root)
    entries: list[FileEntry] = []
    skipped: list[Skipped] = []
    pending = [(str(root), "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            listing = list(os.scandir(folder))
        except OSError as exc:
            skipped.append(Skipped(prefix.rstrip("/") or ".", f"folder cannot be listed ({exc.strerror or exc})"))
            continue
        for item in listing:
            rel = prefix + item.name
            if item.name.startswith("."):
                continue
            if item.is_dir(follow_symlinks=False):
                pending.append((item.path, rel + "/"))
            elif item.is_symlink() and not item.name.endswith(".txt"):
                if os.path.isdir(item.path):
                    skipped.append(Skipped(rel, "symbolic link to a folder; not followed"))
            elif item.name.endswith(".txt"):
                problem = _link_problem(Path(item.path), root) if item.is_symlink() else None
                if not problem and not item.is_file():
                    problem = "not a regular file"
                if problem:
                    skipped.append(Skipped(rel, problem))
                    continue
                try:
                    stat = item.stat()
                except OSError as exc:
                    skipped.append(Skipped(rel, f"cannot be read ({exc.strerror or exc})"))
                    continue
                entries.append(FileEntry(rel, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns))
    entries.sort(key=lambda entry: entry.path)
    skipped.sort(key=lambda skip: skip.path)
    return entries, skipped


def _link_problem(path: Path, root: Path) -> str | None:
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return "broken or looping symbolic link"
    if not target.is_relative_to(root):
        return "symbolic link pointing outside the corpus folder; not followed"
    if not target.is_file():
        return "symbolic link to something other than a file"
    return None


def read_document(
    root: Path, entry: FileEntry, max_bytes: int, boilerplate: re.Pattern[str] | None = None
) -> Document | Skipped:
    """Read and validate one article; a Skipped (never an exception) when it is unusable."""
    if entry.size > max_bytes:
        return Skipped(entry.path, f"{entry.size:,} bytes is over the {max_bytes:,}-byte limit (max_file_bytes)")
    try:
        with open(root / entry.path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        return Skipped(entry.path, "disappeared before it could be read")
    except OSError as exc:
        return Skipped(entry.path, f"cannot be read ({exc.strerror or exc})")
    if len(data) > max_bytes:
        return Skipped(entry.path, f"grew over the {max_bytes:,}-byte limit (max_file_bytes)")
    return parse_document(entry.path, data, entry.mtime_ns, boilerplate, entry.ctime_ns)


def parse_document(
    path: str, data: bytes, mtime_ns: int = 0, boilerplate: re.Pattern[str] | None = None, ctime_ns: int = -1
) -> Document | Skipped:
    """A Document from a file's bytes, or Skipped when empty, binary or not UTF-8."""
    if not data.strip():
        return Skipped(path, "empty file")
    try:
        text = decode_article(data)
    except NotText as exc:
        return Skipped(path, str(exc))
    title, date = title_and_date(text, boilerplate)
    return Document(path, text, hashlib.sha256(data).hexdigest(), title, date, len(data), mtime_ns, ctime_ns)


class NotText(ValueError):
    """The bytes are not an article's text: binary, or not UTF-8 (the message says which)."""


def decode_article(data: bytes) -> str:
    """The article's text from its bytes (see read_text_like_python); NotText when binary or not UTF-8."""
    if b"\x00" in data:
        raise NotText("binary file (contains NUL bytes)")
    try:
        return read_text_like_python(data)
    except UnicodeDecodeError as exc:
        raise NotText(f"not valid UTF-8 (bad byte at offset {exc.start})") from None


def read_text_like_python(data: bytes) -> str:
    """The file's text as `open(path, encoding="utf-8").read()` gives it (universal newlines).

    Offsets in citations index this string, so they agree with what Python's read_text shows.
    """
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


def title_and_date(text: str, boilerplate: re.Pattern[str] | None = None) -> tuple[str, str | None]:
    """First non-empty, non-boilerplate line as title; a leading ` date YYYY-MM-DD` header is the date."""
    date = None
    header = DATE_HEADER.match(text)
    if header:
        date = header.group(1)
        text = text[header.end() :]
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    useful = [line for line in lines if not (boilerplate and boilerplate.fullmatch(line))]
    return (useful or lines or [""])[0], date


def header_end(text: str) -> int:
    """Offset just past a leading ` date YYYY-MM-DD ` header (0 when there is none)."""
    header = DATE_HEADER.match(text)
    return header.end() if header else 0
