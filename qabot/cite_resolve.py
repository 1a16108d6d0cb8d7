"""What a citation names in its file: the span of one sentence (split as the index splits it), or of characters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from qabot.cite import Citation, column_of, escaped, line_of, offset_of_line
from qabot.corpus import Head, read_head
from qabot.errors import CitationError
from qabot.markdown import BadFrontMatter


@dataclass(frozen=True, slots=True)
class Span:
    """What a citation resolves to in its file: text[start:end], and a note when that needs saying."""

    start: int
    end: int
    note: str = ""


def resolve(
    text: str, parsed: Citation, written: str, boilerplate: re.Pattern[str] | None = None, *, markdown: bool = False
) -> Span:
    """The span of text a parsed citation names; CitationError saying what is wrong when it names none.

    markdown: the text is a Markdown article's (its sentences are split as the index splits them)."""
    if parsed.line is None:
        start, end = parsed.start, parsed.end
        assert start is not None and end is not None
        if end > len(text):
            raise CitationError(
                f"{escaped(written)}: characters {start}-{end} run past the end of the file, "
                f"which has {len(text)} characters"
            )
        if start >= end:
            raise CitationError(f"{escaped(written)}: START ({start}) must be below END ({end})")
        return Span(start, end)
    n_lines = text.count("\n") + 1
    if not 1 <= parsed.line <= n_lines:
        raise CitationError(f"{escaped(written)}: line {parsed.line} is not in the file, which has {n_lines} lines")
    line_start = offset_of_line(text, parsed.line)
    line_end = _line_end(text, line_start)
    line_text = text[line_start:line_end].removesuffix("\r")
    if not line_text.strip():
        raise CitationError(f"{escaped(written)}: line {parsed.line} is blank; no sentence starts there")
    spans = sentence_spans_of(text, boilerplate, markdown)
    if parsed.column is not None:
        if not 1 <= parsed.column <= len(line_text):
            raise CitationError(
                f"{escaped(written)}: column {parsed.column} is not on line {parsed.line}, "
                f"which has {len(line_text)} characters"
            )
        offset = line_start + parsed.column - 1
        holding = [(start, end) for start, end in spans if start <= offset < end]
        if not holding:
            raise CitationError(f"{escaped(written)}: no sentence at line {parsed.line}, column {parsed.column}")
        start, end = holding[0]
        if start == offset:
            return Span(start, end)
        line, column = line_of(text, start), column_of(text, start)
        return Span(start, end, f"(column {parsed.column} is inside the sentence cited as {line}:{column})")
    starting = [(start, end) for start, end in spans if line_start <= start < line_end]
    if not starting:
        wrapped = [(start, end) for start, end in spans if start < line_end and end > line_start]
        if not wrapped:  # e.g. the date header, which belongs to no sentence
            return Span(line_start, line_start + len(line_text), f"(no sentence is on line {parsed.line})")
        start, end = wrapped[0]
        line, column = line_of(text, start), column_of(text, start)
        return Span(start, end, f"(no sentence starts on line {parsed.line}; this one, cited as {line}:{column}, "
                                "continues onto it)")
    if len(starting) == 1:
        return Span(*starting[0])
    columns = ", ".join(f"{parsed.line}:{start - line_start + 1}" for start, _ in starting)
    return Span(
        starting[0][0],
        starting[-1][1],
        f"(line {parsed.line} holds {len(starting)} sentences; cite one with its column: {columns})",
    )


@lru_cache(maxsize=32)  # verify resolves many citations of one file
def sentence_spans_of(
    text: str, boilerplate: re.Pattern[str] | None = None, markdown: bool = False
) -> tuple[tuple[int, int], ...]:
    """(start, end) of each sentence of text (a Markdown article's when markdown), split as the index splits it."""
    from qabot.segment import sentence_spans  # NLTK's Punkt: only show and verify need it

    head = head_of(text, markdown, boilerplate)
    return tuple((start, end) for start, end, _ in sentence_spans(text, boilerplate, head))


def head_of(text: str, markdown: bool, boilerplate: re.Pattern[str] | None = None) -> Head:
    """The article's head (corpus.read_head); CitationError when its front matter is unusable (not indexed)."""
    try:
        return read_head(text, markdown, boilerplate)
    except BadFrontMatter as exc:
        raise CitationError(f"the file is not indexed: {exc}") from None


def _line_end(text: str, start: int) -> int:
    newline = text.find("\n", start)
    return len(text) if newline < 0 else newline
