"""`qabot show`: the cited text exactly as in its file, emphasised, with numbered lines of context."""

from __future__ import annotations

import re
from pathlib import Path

from qabot.cite import (
    CitedFile,
    column_of,
    display_path,
    escaped,
    line_of,
    locate,
    offset_of_line,
    parse_citation,
    read_cited,
)
from qabot.cite_resolve import head_of, resolve
from qabot.markdown import is_markdown

BOLD, RESET = "\x1b[1m", "\x1b[0m"
OPEN_MARK, CLOSE_MARK = "»", "«"  # emphasis where ANSI is not wanted (pipes, NO_COLOR)


def show_citation(
    corpus_root: Path,
    citation: str,
    context_lines: int,
    *,
    color: bool = False,
    cwd: Path | None = None,
    boilerplate: re.Pattern[str] | None = None,
) -> str:
    """The cited text exactly as in the file, emphasised, with numbered lines of context around it.

    boilerplate is the index's pattern (segment.compile_boilerplate), so sentences split as the index splits them.
    """
    parsed = parse_citation(citation)
    cited = read_cited(locate(corpus_root, parsed.path, cwd))
    span = resolve(cited.text, parsed, citation, boilerplate, markdown=is_markdown(cited.file.name))
    shown = render_span(cited, span.start, span.end, max(0, context_lines), color=color, cwd=cwd,
                        boilerplate=boilerplate)
    return f"{shown}\n{escaped(span.note)}" if span.note else shown


def render_span(
    cited: CitedFile,
    start: int,
    end: int,
    context_lines: int,
    *,
    color: bool = False,
    cwd: Path | None = None,
    boilerplate: re.Pattern[str] | None = None,
) -> str:
    """A header naming file, lines, column and offsets, then the numbered lines around text[start:end].

    The span is emphasised (ANSI bold, or » « markers) and its lines are flagged with '>' in the gutter;
    control characters are shown as escapes (\\x1b) so a file cannot drive the terminal.
    """
    text = cited.text
    first, last = line_of(text, start), line_of(text, max(start, end - 1))
    lines = text.split("\n")
    low, high = max(1, first - context_lines), min(len(lines), last + context_lines)
    head = head_of(text, is_markdown(cited.file.name), boilerplate)
    title, date = head.title, head.date
    column = column_of(text, start)
    where = f"line {first}, column {column}" if first == last else f"lines {first}-{last} from column {column}"
    if len(title) > 70:
        title = title[:69].rstrip() + "…"
    about = f" — {title}" + (f", {date}" if date else "") if title else ""
    out = [escaped(f"{display_path(cited.file, cwd)}: {where}, characters {start}-{end}{about}")]
    width = len(str(high))
    before, after = (BOLD, RESET) if color else (OPEN_MARK, CLOSE_MARK)
    offset = offset_of_line(text, low)
    for number in range(low, high + 1):
        line = lines[number - 1]
        shown = line.removesuffix("\r")  # part of a CRLF line break, not of the text
        lo, hi = max(start - offset, 0), min(end - offset, len(shown))
        if first <= number <= last:
            opening = before if number == first or color else ""
            closing = after if number == last or color else ""
            body = escaped(shown[:lo]) + opening + escaped(shown[lo:hi]) + closing + escaped(shown[hi:])
        else:
            body = escaped(shown)
        out.append(f"{'>' if first <= number <= last else ' '} {number:>{width}} | {body}")
        offset += len(line) + 1
    return "\n".join(out)
