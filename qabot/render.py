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
from qabot.model import Answer, AnswerPhrase, Location, Passage

BOLD, RESET = "\x1b[1m", "\x1b[0m"
UNDERLINE, NORMAL = "\x1b[4m", "\x1b[22m"  # NORMAL ends bold but keeps the underline on
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
    lines = wrap_words(phrase_line(answer.phrase, color), width) if answer.phrase else []
    lines += wrap_words(f"{confidence_label(answer)}:", width)
    lines += [
        line
        for number, p in enumerate(answer.passages, 1)
        for line in passage_lines(number, p, color, cwd, width, answer.phrase if number == 1 else None)
    ]
    if answer.reason:
        lines += wrap_words(f"({printable(answer.reason)})", width)
    return "\n".join(lines)


def phrase_line(phrase: AnswerPhrase, color: bool = False) -> str:
    """`Answer: senior advisor for Caucasus negotiations (72%)`, the phrase in bold where colour is on."""
    text = f"{BOLD}{printable(phrase.text)}{RESET}" if color else printable(phrase.text)
    return f"Answer: {text} ({phrase.probability:.0%})"


def passage_lines(
    number: int,
    passage: Passage,
    color: bool = False,
    cwd: Path | None = None,
    width: int | None = None,
    phrase: AnswerPhrase | None = None,
) -> list[str]:
    """`[N] text` exactly as in the file (no quote marks added: the sentence keeps its own), its citation line,
    the article's web address on a line of its own when it has one, and one line per wire copy. With colour,
    matched words are bold and the answer phrase (of this passage) underlined; without, the text is left
    exactly as the file has it, so `qabot verify` can check it."""
    head = f"[{number}] "
    text = printable(passage.text)
    lines = wrap_words(text, width, head, " " * len(head))
    if color:
        spaced = "".join(" " if char.isspace() else char for char in text)  # as wrapping writes whitespace
        phrase_at = (phrase.start - passage.location.start, phrase.end - passage.location.start) if phrase else None
        cursor, coloured = 0, []
        for line in lines:
            body = line[len(head) :]
            found = spaced.find(body, cursor)
            at = found if found >= 0 else cursor
            cursor = at + len(body)
            coloured.append(line[: len(head)] + _marked(body, at, passage.matched_terms, phrase_at))
        lines = coloured
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


def _marked(body: str, at: int, matched_terms: tuple[str, ...], phrase_at: tuple[int, int] | None) -> str:
    """A line's text (starting at offset `at` of its passage) with matched words in bold and the part of the
    answer phrase it holds underlined."""
    if phrase_at is None:
        return emphasise(body, matched_terms, BOLD, RESET)
    start, end = (min(max(offset - at, 0), len(body)) for offset in phrase_at)
    if start == end:
        return emphasise(body, matched_terms, BOLD, RESET)
    inside = emphasise(body[start:end], matched_terms, BOLD, NORMAL)
    return (emphasise(body[:start], matched_terms, BOLD, RESET) + UNDERLINE + inside + RESET
            + emphasise(body[end:], matched_terms, BOLD, RESET))  # fmt: skip


def wrap_words(text: str, width: int | None, first_indent: str = "", indent: str = "") -> list[str]:
    """text as lines of at most width columns, broken only at spaces (a longer word keeps a line of its own);
    one line when width is None."""
    if width is None:
        return [first_indent + text]
    wrapped = textwrap.wrap(
        text, width, initial_indent=first_indent, subsequent_indent=indent,
        break_long_words=False, break_on_hyphens=False, expand_tabs=False,
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
    citations) and its article's web address (`url`, null when none); "answer": the answer phrase or null;
    "missing_shards" on a sharded answer some shards could not give."""
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
    record["answer"] = phrase_json(answer.phrase) if answer.phrase else None
    if answer.missing_shards:
        record["missing_shards"] = list(answer.missing_shards)
    return record


def phrase_json(phrase: AnswerPhrase) -> dict[str, Any]:
    """The answer phrase: its text, offsets into the first passage's file, line, column and probability."""
    return {
        "text": phrase.text,
        "start": phrase.start,
        "end": phrase.end,
        "line": phrase.line,
        "column": phrase.column,
        "probability": round(phrase.probability, 4),
    }


def render_json(answer: Answer, cwd: Path | None = None) -> str:
    """One line of JSON (non-ASCII kept as is)."""
    return json.dumps(answer_json(answer, cwd), ensure_ascii=False)
