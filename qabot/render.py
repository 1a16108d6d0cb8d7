"""Pure renderings of an Answer: plain text, ANSI-emphasised text and JSON."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path
from typing import Any

from qabot.analyze import analyze, term_spans
from qabot.cite import display_path, printable
from qabot.learned import WEAK
from qabot.model import Answer, Location, Passage

BOLD, RESET = "\x1b[1m", "\x1b[0m"
UNDER_CITATION = " " * 6  # lines under a citation start where it does, past "    — "
MIN_WRAP_WIDTH = 20  # narrower terminals get lines this long: a word a line would be unreadable


def citation(location: Location, cwd: Path | None = None) -> str:
    """`path:line:column` (1-based, where the sentence starts), as editors, terminals and `qabot show` open."""
    return f"{display_path(location.file, cwd)}:{location.line}:{location.column}"


def span_citation(location: Location, cwd: Path | None = None) -> str:
    """The exact-span form `path:start-end` (character offsets), as `qabot show` accepts."""
    return f"{display_path(location.file, cwd)}:{location.start}-{location.end}"


def matched_spans(text: str, matched_terms: tuple[str, ...]) -> list[tuple[int, int]]:
    """(start, end) of every word in text whose index term is one of the matched words' terms."""
    wanted = {term for word in matched_terms for term in analyze(word)}
    return [(start, end) for start, end, term in term_spans(text) if term in wanted]


def emphasise(text: str, matched_terms: tuple[str, ...], before: str, after: str) -> str:
    """text with each matched word wrapped in before/after markers; nothing else changes."""
    pieces, last = [], 0
    for start, end in matched_spans(text, matched_terms):
        pieces += [text[last:start], before, text[start:end], after]
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def confidence_label(answer: Answer) -> str:
    """The answer's label with its confidence, as a reader sees it: "Possible match (confidence 45%)". The
    confidence is calibrated and each label's precision is measured (`qabot eval`)."""
    hint = ": check the source" if answer.label == WEAK else ""
    return f"{answer.label}{hint} (confidence {answer.confidence:.0%})"


def render_text(answer: Answer, color: bool = False, cwd: Path | None = None, width: int | None = None) -> str:
    """Human-readable answer: how confident, numbered passages with citations; or a plain abstention sentence.

    With width (a terminal's columns), prose is wrapped at spaces; citations and web addresses are never cut.
    """
    if answer.abstained:
        return "\n".join(wrap_words(f"No answer in the corpus. {printable(answer.reason)}", width))
    lines = wrap_words(f"{confidence_label(answer)}:", width)
    lines += [
        line for number, p in enumerate(answer.passages, 1) for line in passage_lines(number, p, color, cwd, width)
    ]
    if answer.reason:
        lines += wrap_words(f"({printable(answer.reason)})", width)
    return "\n".join(lines)


def passage_lines(
    number: int, passage: Passage, color: bool = False, cwd: Path | None = None, width: int | None = None
) -> list[str]:
    """`[N] text` exactly as in the file (no quote marks added: the sentence keeps its own), its citation line,
    the article's web address on a line of its own when it has one, and one line per wire copy."""
    head = f"[{number}] "
    lines = wrap_words(printable(passage.text), width, head, " " * len(head))
    if color:
        lines = [line[: len(head)] + emphasise(line[len(head) :], passage.matched_terms, BOLD, RESET) for line in lines]
    where = f"    — {printable(citation(passage.location, cwd))}"
    about = f"({printable(_title_line(passage))})"
    if width is None or len(where) + 2 + len(about) <= width:
        lines.append(f"{where}  {about}")
    else:  # the citation keeps its line whole; the title goes under it
        lines += [where, *wrap_words(about, width, UNDER_CITATION, UNDER_CITATION)]
    if passage.url:
        lines.append(UNDER_CITATION + printable(passage.url))
    lines += [f"    also in {printable(citation(other, cwd))}" for other in passage.also_in]
    return lines


def wrap_words(text: str, width: int | None, first_indent: str = "", indent: str = "") -> list[str]:
    """text as lines of at most width columns, broken only at spaces (a longer word keeps a line of its own);
    one line when width is None."""
    if width is None:
        return [first_indent + text]
    wrapped = textwrap.wrap(
        text, width, initial_indent=first_indent, subsequent_indent=indent,
        break_long_words=False, break_on_hyphens=False,
    )  # fmt: skip
    return wrapped or [first_indent.rstrip()]


def terminal_width(stream: Any) -> int | None:
    """The terminal's columns when stream is a terminal (text is wrapped to them); None elsewhere (never wrapped)."""
    if not getattr(stream, "isatty", lambda: False)():
        return None
    return max(shutil.get_terminal_size().columns, MIN_WRAP_WIDTH)


def use_color(stream: Any, environ: dict[str, str] | None = None) -> bool:
    """ANSI emphasis only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    environ = os.environ if environ is None else environ
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in environ


def _title_line(passage: Passage) -> str:
    title = passage.title if len(passage.title) <= 70 else passage.title[:69].rstrip() + "…"
    return f"{title}, {passage.date}" if passage.date else title


def location_json(location: Location, cwd: Path | None = None) -> dict[str, Any]:
    return {
        "source": display_path(location.file, cwd),
        "start": location.start,
        "end": location.end,
        "line": location.line,
        "column": location.column,
    }


def answer_json(answer: Answer, cwd: Path | None = None) -> dict[str, Any]:
    """The answer as the JSON object of docs/json.md: each passage with its file's sha256 (to detect stale
    citations) and its article's web address (`url`, null when none); "missing_shards" on a sharded answer
    some shards could not give."""
    record: dict[str, Any] = {
        "question": answer.question,
        "abstained": answer.abstained,
        "reason": answer.reason,
        "confidence": round(answer.confidence, 4),
        "label": answer.label or None,
        "passages": [
            {
                "text": p.text,
                "source": display_path(p.location.file, cwd),
                "start": p.location.start,
                "end": p.location.end,
                "line": p.location.line,
                "column": p.location.column,
                "end_line": p.location.end_line,
                "score": p.score,
                "matched_terms": list(p.matched_terms),
                "context_before": p.context_before,
                "context_after": p.context_after,
                "also_in": [location_json(other, cwd) for other in p.also_in],
                "sha256": p.location.sha256,
                "url": p.url,
            }
            for p in answer.passages
        ],
    }
    if answer.missing_shards:
        record["missing_shards"] = list(answer.missing_shards)
    return record


def render_json(answer: Answer, cwd: Path | None = None) -> str:
    """One line of JSON (non-ASCII kept as is)."""
    return json.dumps(answer_json(answer, cwd), ensure_ascii=False)
