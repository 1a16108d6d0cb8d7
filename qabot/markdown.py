"""Markdown articles: YAML front matter, the `# ` title, and the stretches of raw text that may hold sentences.

Nothing is rewritten: every stretch is a slice of the file's text, so citations stay exact. Block
markup (front matter, code fences, HTML comments and tags, tables, rules, images alone on a line,
link definitions) holds no sentence; heading, list and quote markers are left out of the stretch.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass

SUFFIXES = (".md", ".markdown")
# Front matter opens on the very first line and closes at the next `---` (or YAML's `...`) line.
_FRONT_MATTER_OPEN = re.compile(r"\ufeff?---[ \t]*\n")
_FRONT_MATTER_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.MULTILINE)
_FENCE = re.compile(r"[ ]{0,3}(`{3,}|~{3,})")
_ATX_HEADING = re.compile(r"[ ]{0,3}(#{1,6})(?:[ \t]+|$)")
_CLOSING_HASHES = re.compile(r"[ \t]+#+[ \t]*$")
_RULE = re.compile(r"[ ]{0,3}(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,}|=+[ \t]*)$")
_HTML_TAG_LINE = re.compile(r"[ \t]*(?:<[A-Za-z/!][^>]*>[ \t]*)+$")
_IMAGE_LINE = re.compile(r"[ \t]*(?:\[?!\[[^\]]*\]\([^)]*\)(?:\]\([^)]*\))?[ \t]*)+$")
_LINK_DEFINITION = re.compile(r"[ ]{0,3}\[[^\]]+\]:[ \t]*\S+")
_QUOTE = re.compile(r"[ \t]*(?:>[ \t]?)+")
_LIST_ITEM = re.compile(r"[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?")
_COMMENT_OPEN, _COMMENT_CLOSE = "<!--", "-->"


class BadFrontMatter(ValueError):
    """The front matter cannot be read as a YAML mapping, or one of its known keys holds a wrong value."""


@dataclass(frozen=True, slots=True)
class FrontMatter:
    """What a Markdown file's front matter says; `end` is the offset just past it (0 when there is none)."""

    end: int = 0
    title: str | None = None
    date: str | None = None  # YYYY-MM-DD
    url: str | None = None
    author: str | None = None


def is_markdown(path: str) -> bool:
    """Whether the file name has a Markdown suffix (.md, .markdown; any case)."""
    return path.lower().endswith(SUFFIXES)


def read_front_matter(text: str) -> FrontMatter:
    """The front matter at the start of text (FrontMatter() when none); BadFrontMatter saying why it is unusable.

    Parsed with PyYAML's safe loader only; keys other than title, date, url, source and author are ignored.
    """
    opening = _FRONT_MATTER_OPEN.match(text)
    if not opening:
        return FrontMatter()
    closing = _FRONT_MATTER_CLOSE.search(text, opening.end())
    if not closing:
        raise BadFrontMatter("front matter opened with --- on line 1 is never closed by a --- line")
    end = closing.end() + (1 if text.startswith("\n", closing.end()) else 0)
    import yaml  # only Markdown with front matter needs it

    # Safe loading only (SafeConstructor: plain values, no Python objects), in C when libyaml is there:
    # ten times faster than the Python parser, which a corpus of 100,000 clippings would feel.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        fields = yaml.load(text[opening.end() : closing.start()], Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" on line {mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise BadFrontMatter(f"front matter is not valid YAML{where} ({problem})") from None
    except RecursionError:
        raise BadFrontMatter("front matter is nested too deeply") from None
    if fields is None:
        return FrontMatter(end)
    if not isinstance(fields, dict):
        raise BadFrontMatter(f"front matter is a YAML {type(fields).__name__}, not a mapping of keys to values")
    url = _address(fields.get("url"), "url", required=True) or _address(fields.get("source"), "source")
    return FrontMatter(end, _text(fields.get("title"), "title"), _iso_date(fields.get("date")), url,
                       _author(fields.get("author")))  # fmt: skip


def _text(value: object, key: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadFrontMatter(f"{key} must be text, not a YAML {type(value).__name__}")
    return " ".join(str(value).split()) or None


def _author(value: object) -> str | None:
    if isinstance(value, list):
        return ", ".join(name for name in (_text(item, "author") for item in value) if name) or None
    return _text(value, "author")


def _iso_date(value: object) -> str | None:
    """YYYY-MM-DD from a YAML date or datetime, or from text holding an ISO date or datetime."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.date().isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return datetime.datetime.fromisoformat(value.strip()).date().isoformat()
        except ValueError:
            pass
    raise BadFrontMatter(f"date {str(value)[:40]!r} is not an ISO date (YYYY-MM-DD, or a date and time)")


def _address(value: object, key: str, required: bool = False) -> str | None:
    """An http(s) address; `source` may also name a publication (ignored), `url` may not."""
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else ""
    if re.fullmatch(r"https?://[^\s\x00-\x1f\x7f]+", text, re.IGNORECASE):
        return text
    if required:
        raise BadFrontMatter(f"{key} {str(value)[:60]!r} is not a web address (http:// or https://)")
    return None


def title_heading(text: str, start: int) -> tuple[int, int] | None:
    """(start, end) of the text of the first `# ` heading at or after start, outside code fences."""
    for line_start, line_end, fenced in _lines(text, start):
        if fenced:
            continue
        heading = _ATX_HEADING.match(text, line_start, line_end)
        if heading and len(heading.group(1)) == 1:
            return _heading_text(text, heading.end(), line_end)
    return None


def _heading_text(text: str, start: int, end: int) -> tuple[int, int] | None:
    line = text[start:end]
    closing = _CLOSING_HASHES.search(line)
    content = line[: closing.start()] if closing else line.rstrip("#")
    stripped = content.strip()
    if not stripped:
        return None
    first = start + len(content) - len(content.lstrip())
    return first, first + len(stripped)


def _lines(text: str, start: int) -> Iterator[tuple[int, int, bool]]:
    """(start, end, inside a code fence) of each line from start; fence lines themselves count as inside."""
    fence: str | None = None
    position = start
    while position <= len(text):
        end = text.find("\n", position)
        end = len(text) if end < 0 else end
        opening = _FENCE.match(text, position, end)
        if fence is None and opening:
            fence = opening.group(1)
            yield position, end, True
        elif fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence) \
                    and not text[opening.end() : end].strip():
                fence = None
            yield position, end, True
        else:
            yield position, end, False
        position = end + 1


def body_stretches(text: str, start: int, skip: tuple[int, int] | None) -> Iterator[tuple[int, int, bool]]:
    """(start, end, opens_block) of each stretch of text from start that may hold sentences.

    An empty stretch (start == end) is a break: no sentence runs across it. A stretch that opens a
    block (a heading, a list item, the first line of a quote) is never joined to the one before it.
    `skip` is the title's span: its line holds no sentence.
    """
    lines = list(_lines(text, start))
    table = _table_lines(text, lines)
    in_comment = False
    quoting = False
    for number, (line_start, line_end, fenced) in enumerate(lines):
        if fenced or number in table:
            quoting = False
            yield line_start, line_start, True
            continue
        pieces = []
        position = line_start
        while position < line_end:  # HTML comments, which may span lines, hold no sentence
            if in_comment:
                close = text.find(_COMMENT_CLOSE, position, line_end)
                if close < 0:
                    break
                in_comment, position = False, close + len(_COMMENT_CLOSE)
                continue
            opening = text.find(_COMMENT_OPEN, position, line_end)
            pieces.append((position, line_end if opening < 0 else opening))
            if opening < 0:
                break
            in_comment, position = True, opening + len(_COMMENT_OPEN)
        if not pieces or (skip and line_start <= skip[0] < line_end):
            quoting = False
            yield line_start, line_start, True
            continue
        for order, (piece_start, piece_end) in enumerate(pieces):
            stretch_start, stretch_end, opens, quoting, heading = _stretch(
                text, piece_start, piece_end, quoting, order == 0
            )
            yield stretch_start, stretch_end, opens or order > 0
            if heading:  # a heading is a line of its own: the next line never continues it
                yield stretch_end, stretch_end, True


def _stretch(
    text: str, start: int, end: int, quoting: bool, line_start: bool
) -> tuple[int, int, bool, bool, bool]:
    """(start, end, opens_block, in a quote, is a heading) of one line's text, its block markers left out."""
    if not line_start:
        return *_trimmed(text, start, end), True, quoting, False
    if _RULE.match(text, start, end) or _HTML_TAG_LINE.match(text, start, end) \
            or _IMAGE_LINE.match(text, start, end) or _LINK_DEFINITION.match(text, start, end):
        return start, start, True, False, False
    quote = _QUOTE.match(text, start, end)
    opens = False
    if quote:
        opens, start = not quoting, quote.end()
    heading = _ATX_HEADING.match(text, start, end)
    if heading:
        span = _heading_text(text, heading.end(), end)
        return (*span, True, bool(quote), True) if span else (start, start, True, bool(quote), False)
    item = _LIST_ITEM.match(text, start, end)
    if item:
        opens, start = True, item.end()
    return *_trimmed(text, start, end), opens, bool(quote), False


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return start, start
    first = start + len(piece) - len(piece.lstrip())
    return first, first + len(stripped)


def _table_lines(text: str, lines: list[tuple[int, int, bool]]) -> set[int]:
    """Numbers of the lines that belong to a pipe table: its header, delimiter row and body rows."""
    table: set[int] = set()
    for number, (start, end, fenced) in enumerate(lines):
        line = text[start:end]
        if fenced or "|" not in line or "-" not in line or line.strip(" \t|:-"):
            continue  # not a delimiter row such as |---|:--:|
        table.add(number)
        if number > 0 and "|" in text[lines[number - 1][0] : lines[number - 1][1]]:
            table.add(number - 1)
        row = number + 1
        while row < len(lines) and "|" in text[lines[row][0] : lines[row][1]] and not lines[row][2]:
            table.add(row)
            row += 1
    return table
