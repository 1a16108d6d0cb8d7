"""Citations: parsing them, finding the cited file inside the corpus, reading it, lines and columns.

Three citation forms are accepted, PATH being relative to the current directory, absolute, or relative
to the corpus root:

- `PATH:LINE:COL` (as `qabot ask` prints it, as compilers and grep do): the sentence starting at line
  LINE, column COL (both 1-based; lines end at "\\n", columns count characters);
- `PATH:LINE`: the sentences starting on line LINE (a line may hold several);
- exact-span form `PATH:START-END` (as the JSON `start`/`end`): `text[START:END]` where `text` is the
  file decoded as UTF-8, offsets being Python string indices (characters, not bytes).

Whichever way PATH is written, the file it names (after resolving `..` and symbolic links) must lie
inside the corpus root; anything else is refused before a byte of it is read.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from qabot.corpus import NotText, check_root, decode_article
from qabot.errors import CitationError

# At most 18 digits: any real offset fits, and int() never meets Python's 4,300-digit limit.
# The path is the shortest prefix that leaves a valid tail, so `a.txt:5:3` is line 5, column 3 of a.txt.
_CITATION = re.compile(
    r"(?P<path>[^\x00]+?):(?:(?P<start>\d{1,18})-(?P<end>\d{1,18})|(?P<line>\d{1,18})(?::(?P<column>\d{1,18}))?)"
)
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class OutsideCorpus(CitationError):
    """A cited path resolves outside the corpus root (through `..`, an absolute path or a link)."""


class MissingFile(CitationError):
    """A cited file does not exist (or can no longer be opened)."""


@dataclass(frozen=True, slots=True)
class Citation:
    """A parsed citation: `line` (and `column`) for the line forms, `start`/`end` for the exact-span form."""

    path: str
    line: int | None = None
    start: int | None = None
    end: int | None = None
    column: int | None = None


@dataclass(frozen=True, slots=True)
class CitedFile:
    """A cited file read from inside the corpus: its absolute path, UTF-8 text and sha256 of its bytes."""

    file: Path
    text: str
    sha256: str


def parse_citation(text: str) -> Citation:
    """`PATH:LINE:COL`, `PATH:LINE` or `PATH:START-END`; CitationError with examples when it is none of them."""
    match = _CITATION.fullmatch(text.strip())
    if not match or not match["path"].strip():
        raise CitationError(
            f"{escaped(repr(text))} is not a citation; expected PATH:LINE:COL (seeds/003_b5d4c7ccf50ad595.txt:19:1), "
            "PATH:LINE (seeds/003_b5d4c7ccf50ad595.txt:19) or PATH:START-END (seeds/003_b5d4c7ccf50ad595.txt:1234-1456)"
        )
    if match["line"] is not None:
        column = int(match["column"]) if match["column"] is not None else None
        return Citation(match["path"], line=int(match["line"]), column=column)
    return Citation(match["path"], start=int(match["start"]), end=int(match["end"]))


def locate(corpus_root: Path, written: str, cwd: Path | None = None) -> Path:
    """The resolved file `written` names, tried relative to cwd then to the corpus root.

    Raises OutsideCorpus when it lies outside the root, MissingFile when no such file exists.
    """
    root = check_root(corpus_root)
    cwd = (cwd or Path.cwd()).resolve()
    try:
        path = Path(written).expanduser()
    except RuntimeError:  # "~name/..." where no user has that name
        raise MissingFile(f"{escaped(written)}: no such user's home folder, so no such file") from None
    candidates = [path] if path.is_absolute() else [cwd / path, root / path]
    targets = [_resolved(candidate) for candidate in candidates]
    for target in targets:
        if target is not None and target.is_relative_to(root) and target.is_file():
            return target
    # A missing file is refused too when the path itself leaves the root (../x, /elsewhere/x).
    outside = [t for t in targets if t is not None and not t.is_relative_to(root)]
    if any(t.exists() for t in outside) or (outside and outside[-1] == targets[-1]):
        raise OutsideCorpus(f"{escaped(written)} is outside the corpus folder {root}; refusing to read it")
    raise MissingFile(f"{escaped(written)}: no such file in the corpus folder {root}")


def read_cited(file: Path) -> CitedFile:
    """The file's text and sha256; CitationError when it cannot be read, is binary or is not UTF-8."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise MissingFile(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        text = decode_article(data)
    except NotText as exc:
        raise CitationError(f"{file} is not an article: {exc}") from None
    return CitedFile(file, text, hashlib.sha256(data).hexdigest())


def line_of(text: str, offset: int) -> int:
    """1-based number of the line holding text[offset] (lines end at "\\n", as the index counts them)."""
    return text.count("\n", 0, offset) + 1


def column_of(text: str, offset: int) -> int:
    """1-based column of text[offset] on its line, in characters (PATH:LINE:COL)."""
    return offset - text.rfind("\n", 0, offset)


def offset_of_line(text: str, line: int) -> int:
    """Offset of the first character of 1-based line `line` (which must exist)."""
    position = 0
    for _ in range(line - 1):
        position = text.index("\n", position) + 1
    return position


def printable(text: str) -> str:
    """text with each control character or line break made one space (one character for one).

    Terminal and chat output must not carry escape sequences from a file; offsets live in JSON.
    """
    return "".join(ch if ch.isprintable() else " " for ch in text)


def escaped(text: str) -> str:
    """text with control characters and bidi overrides escaped (\\x1b), so a file cannot drive the terminal."""
    return _UNSAFE.sub(lambda match: match[0].encode("unicode_escape").decode(), text)


def display_path(file: Path, cwd: Path | None = None) -> str:
    """The file relative to cwd when it lies under it (seeds/003_….txt), else absolute."""
    cwd = (cwd or Path.cwd()).resolve()
    return file.relative_to(cwd).as_posix() if file.is_relative_to(cwd) else file.as_posix()


def _resolved(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symbolic link loop
        return None
