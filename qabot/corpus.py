"""Finding and reading articles: Documents for the good files, Skipped reasons for the rest."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from qabot.errors import CorpusError
from qabot.markdown import SUFFIXES as MARKDOWN_SUFFIXES
from qabot.markdown import BadFrontMatter, is_markdown, read_front_matter, title_heading

DATE_HEADER = re.compile(r"[ \t]*date[ \t]+(\d{4}-\d{2}-\d{2})[ \t]+")
# A line holding only a date (optionally `date ` first, optionally a time after): the date under a title.
DATE_LINE = re.compile(r"[ \t]*(?:date[ \t]+)?(\d{4}-\d{2}-\d{2})(?:[T ]\d{2}:\d{2}[0-9:.+\-Z]*)?[ \t]*")
ARTICLE_SUFFIXES = (".txt", *MARKDOWN_SUFFIXES)
UNSUPPORTED = "not a supported format (.txt, .md); import web pages and dumps with qabot add"
# A headline is short and does not end like a sentence; a first paragraph of one line is not a title.
TITLE_MAX_CHARS = 200
SENTENCE_END = (".", ";", ",", ":")
HEAD_LINES = 20  # leading blank or boilerplate lines looked past to find a title


@dataclass(frozen=True, slots=True)
class FileEntry:
    """An article file found under the corpus root, not yet read."""

    path: str  # relative to the corpus root, with forward slashes
    size: int
    mtime_ns: int
    ctime_ns: int  # status change: moves on any write, even when the mtime is set back


@dataclass(frozen=True, slots=True)
class Head:
    """An article's metadata and where it sits in the text.

    No sentence starts in [meta_start, body_start) (a `.txt` title and date lines, Markdown front
    matter), nor on the line of `title_span`; the title (text[title_span]) becomes a passage only
    when the article has no other sentence.
    """

    title: str
    date: str | None = None  # YYYY-MM-DD
    url: str | None = None  # the article's original web address
    author: str | None = None
    markdown: bool = False
    meta_start: int = 0
    body_start: int = 0
    title_span: tuple[int, int] | None = None


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
    url: str | None = None
    head: Head | None = None  # None: read from the text as a .txt article


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


def is_article(name: str) -> bool:
    """Whether a file name has an article suffix (.txt, .md, .markdown; any case)."""
    return name.lower().endswith(ARTICLE_SUFFIXES)


@dataclass(frozen=True, slots=True)
class Listing(Sequence[FileEntry]):
    """The article files of a corpus, sorted by path, as columns: a fresh process lists 50,000 files
    without making an object for each; a FileEntry is made when one is asked for."""

    paths: tuple[str, ...]
    sizes: tuple[int, ...]
    mtimes_ns: tuple[int, ...]
    ctimes_ns: tuple[int, ...]

    @staticmethod
    def of(entries: Sequence[FileEntry]) -> Listing:
        """The listing of entries (sorted by path)."""
        if isinstance(entries, Listing):
            return entries
        columns = tuple(zip(*((e.path, e.size, e.mtime_ns, e.ctime_ns) for e in entries), strict=True))
        return Listing(*columns) if columns else Listing((), (), (), ())

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, at):  # type: ignore[override]
        if isinstance(at, slice):
            return [self[i] for i in range(*at.indices(len(self)))]
        return FileEntry(self.paths[at], self.sizes[at], self.mtimes_ns[at], self.ctimes_ns[at])

    def __iter__(self) -> Iterator[FileEntry]:
        return map(FileEntry, self.paths, self.sizes, self.mtimes_ns, self.ctimes_ns)


def list_articles(root: Path) -> tuple[Listing, list[Skipped]]:
    """Every article file under root (sorted), without following links that leave it; every other
    file is Skipped as not supported. Hidden files and folders and index caches are passed over."""
    root = check_root(root)
    found: list[tuple[str, int, int, int]] = []
    skipped: list[Skipped] = []
    _list_folder(str(root), "", root, found, skipped)
    paths = [row[0] for row in found]
    if paths != sorted(paths):  # names that sort before "/" ("a-b" < "a/x")
        found.sort()
    skipped.sort(key=lambda skip: skip.path)
    return Listing(*zip(*found, strict=True)) if found else Listing((), (), (), ()), skipped


def _list_folder(
    folder: str, prefix: str, root: Path, found: list[tuple[str, int, int, int]], skipped: list[Skipped]
) -> None:
    """Append the articles under folder, names in order (so the paths come out sorted but for names
    that sort before "/"), and the entries passed over."""
    try:
        # Names looked up through a descriptor: each stat resolves one name, not the whole path.
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        skipped.append(Skipped(prefix.rstrip("/") or ".", f"folder cannot be listed ({exc.strerror or exc})"))
        return
    try:
        names = sorted(os.listdir(descriptor))
        for name in names:
            if name.startswith("."):
                continue
            rel = prefix + name
            try:
                status = os.stat(name, dir_fd=descriptor, follow_symlinks=False)
            except OSError as exc:
                skipped.append(Skipped(rel, f"cannot be read ({exc.strerror or exc})"))
                continue
            if stat.S_ISREG(status.st_mode) and is_article(name):  # most entries: this one stat, no path made
                found.append((rel, status.st_size, status.st_mtime_ns, status.st_ctime_ns))
            else:
                _list_other(status.st_mode, f"{folder}/{name}", rel, root, found, skipped)
    except OSError as exc:
        skipped.append(Skipped(prefix.rstrip("/") or ".", f"folder cannot be listed ({exc.strerror or exc})"))
    finally:
        os.close(descriptor)


def _list_other(
    mode: int, path: str, rel: str, root: Path, found: list[tuple[str, int, int, int]], skipped: list[Skipped]
) -> None:
    """A folder (listed unless it is an index cache), or an entry other than a regular article file."""
    if stat.S_ISDIR(mode):
        if not os.path.exists(os.path.join(path, "CURRENT")):  # CURRENT marks a qabot index cache
            _list_folder(path, rel + "/", root, found, skipped)
    elif not is_article(rel):
        if stat.S_ISLNK(mode) and os.path.isdir(path):
            skipped.append(Skipped(rel, "symbolic link to a folder; not followed"))
        else:
            skipped.append(Skipped(rel, UNSUPPORTED))
    elif stat.S_ISLNK(mode):
        problem = _link_problem(Path(path), root)
        if problem:
            skipped.append(Skipped(rel, problem))
        else:
            try:
                status = os.stat(path)
            except OSError as exc:
                skipped.append(Skipped(rel, f"cannot be read ({exc.strerror or exc})"))
            else:
                found.append((rel, status.st_size, status.st_mtime_ns, status.st_ctime_ns))
    else:
        skipped.append(Skipped(rel, "not a regular file"))


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
    """A Document from a file's bytes (Markdown by its suffix), or Skipped when empty, binary, not UTF-8
    or with bad front matter."""
    if not data.strip():
        return Skipped(path, "empty file")
    try:
        text = decode_article(data)
        head = read_head(text, is_markdown(path), boilerplate)
    except (NotText, BadFrontMatter) as exc:
        return Skipped(path, str(exc))
    sha256 = hashlib.sha256(data).hexdigest()
    return Document(path, text, sha256, head.title, head.date, len(data), mtime_ns, ctime_ns, head.url, head)


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


def read_head(text: str, markdown: bool, boilerplate: re.Pattern[str] | None = None) -> Head:
    """The article's title, date and address, and where they sit; BadFrontMatter when Markdown's is unusable.

    `.txt`: a first line ` date YYYY-MM-DD Title`, or a title line followed by a blank line (or by a
    date line, then a blank line). Markdown: the front matter, and its `title` or the first `# ` heading.
    Without a title, the first non-blank, non-boilerplate line is shown as one and stays a sentence.
    """
    if markdown:
        return _markdown_head(text, boilerplate)
    header = DATE_HEADER.match(text)
    if header:
        line_end = _line_end(text, 0)
        span = _stripped(text, header.end(), line_end)
        title = text[span[0] : span[1]] if span else _first_line(text[line_end:], boilerplate)
        return Head(title, header.group(1), meta_start=0, body_start=line_end, title_span=span)
    lines = _leading_lines(text)
    for number, (start, end) in enumerate(lines):
        line = text[start:end].strip()
        if not line or (boilerplate and boilerplate.fullmatch(line)):
            continue
        following = [text[s:e].strip() for s, e in lines[number + 1 : number + 3]] + ["", ""]
        if _title_like(line):
            date = DATE_LINE.fullmatch(following[0])
            if not following[0]:
                return Head(line, meta_start=start, body_start=end, title_span=_stripped(text, start, end))
            if date and not following[1]:
                body_start = lines[number + 1][1]
                return Head(line, date.group(1), meta_start=start, body_start=body_start,
                            title_span=_stripped(text, start, end))  # fmt: skip
        break
    return Head(_first_line(text, boilerplate))


def _markdown_head(text: str, boilerplate: re.Pattern[str] | None) -> Head:
    front = read_front_matter(text)
    heading = title_heading(text, front.end)
    heading_text = text[heading[0] : heading[1]] if heading else None
    title = front.title or heading_text
    if front.title and heading_text and " ".join(heading_text.split()).casefold() != front.title.casefold():
        heading = None  # a heading other than the title is part of the article
    return Head(title or _first_line(text[front.end :], boilerplate), front.date, front.url, front.author,
                markdown=True, meta_start=0, body_start=front.end, title_span=heading)  # fmt: skip


def _title_like(line: str) -> bool:
    return len(line) <= TITLE_MAX_CHARS and not line.endswith(SENTENCE_END)


def _leading_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of the first HEAD_LINES + 2 lines of text."""
    lines, position = [], 0
    while position <= len(text) and len(lines) < HEAD_LINES + 2:
        end = _line_end(text, position)
        lines.append((position, end))
        position = end + 1
    return lines


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end < 0 else end


def _stripped(text: str, start: int, end: int) -> tuple[int, int] | None:
    """(start, end) of text[start:end] without its surrounding whitespace; None when it is blank."""
    piece = text[start:end]
    if not piece.strip():
        return None
    first = start + len(piece) - len(piece.lstrip())
    return first, first + len(piece.strip())


def _first_line(text: str, boilerplate: re.Pattern[str] | None) -> str:
    """The first non-blank, non-boilerplate line (the first non-blank one when all are boilerplate)."""
    first = ""
    for line in text.split("\n", HEAD_LINES * 50)[: HEAD_LINES * 50]:
        line = line.strip()
        if line and not (boilerplate and boilerplate.fullmatch(line)):
            return line
        first = first or line
    return first
