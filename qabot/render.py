"""Pure renderings of an Answer: plain text, ANSI-emphasised text and JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from qabot.analyze import analyze, term_spans
from qabot.cite import display_path, printable
from qabot.model import Answer, AnswerPhrase, Location, Passage

BOLD, RESET = "\x1b[1m", "\x1b[0m"
UNDERLINE, NORMAL = "\x1b[4m", "\x1b[22m"  # NORMAL ends bold but keeps the underline on
# How a confidence reads, highest first: (at least this confidence, words). The confidence is
# calibrated, so "possible match" at 0.5 means about half of such first passages answer.
CONFIDENCE_WORDS = ((0.7, "Likely answer"), (0.4, "Possible match"), (0.0, "Weak match: check the source"))


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


def confidence_label(confidence: float) -> str:
    """The confidence in words a reader understands, with its percentage: "Possible match (confidence 45%)"."""
    words = next(words for floor, words in CONFIDENCE_WORDS if confidence >= floor)
    return f"{words} (confidence {confidence:.0%})"


def render_text(answer: Answer, color: bool = False, cwd: Path | None = None) -> str:
    """Human-readable answer: how confident, numbered passages with citations; or a plain abstention sentence."""
    if answer.abstained:
        return f"No answer in the corpus. {printable(answer.reason)}"
    lines = [phrase_line(answer.phrase, color)] if answer.phrase else []
    lines.append(f"{confidence_label(answer.confidence)}:")
    lines += [
        line
        for number, p in enumerate(answer.passages, 1)
        for line in passage_lines(number, p, color, cwd, answer.phrase if number == 1 else None)
    ]
    if answer.reason:
        lines.append(f"({printable(answer.reason)})")
    return "\n".join(lines)


def phrase_line(phrase: AnswerPhrase, color: bool = False) -> str:
    """`Answer: senior advisor for Caucasus negotiations (72%)`, the phrase in bold where colour is on."""
    text = f"{BOLD}{printable(phrase.text)}{RESET}" if color else printable(phrase.text)
    return f"Answer: {text} ({phrase.probability:.0%})"


def passage_lines(
    number: int, passage: Passage, color: bool = False, cwd: Path | None = None, phrase: AnswerPhrase | None = None
) -> list[str]:
    """`[N] text` exactly as in the file (no quote marks added: the sentence keeps its own), its citation line
    and one line per wire copy. With colour, matched words are bold and the answer phrase (of this passage)
    underlined; without, the text is left exactly as the file has it, so `qabot verify` can check it."""
    text = printable(passage.text)
    if color and phrase is not None:
        start, end = phrase.start - passage.location.start, phrase.end - passage.location.start
        inside = emphasise(text[start:end], passage.matched_terms, BOLD, NORMAL)
        text = (emphasise(text[:start], passage.matched_terms, BOLD, RESET) + UNDERLINE + inside + RESET
                + emphasise(text[end:], passage.matched_terms, BOLD, RESET))  # fmt: skip
    elif color:
        text = emphasise(text, passage.matched_terms, BOLD, RESET)
    where = printable(citation(passage.location, cwd))
    lines = [f"[{number}] {text}", f"    — {where}  ({printable(_title_line(passage))})"]
    lines += [f"    also in {printable(citation(other, cwd))}" for other in passage.also_in]
    return lines


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
    """The answer as DESIGN.md's JSON object (plus each passage's sha256 to detect stale citations, "answer":
    the answer phrase or null, and "missing_shards" on a sharded answer some shards could not give)."""
    record: dict[str, Any] = {
        "question": answer.question,
        "abstained": answer.abstained,
        "reason": answer.reason,
        "confidence": round(answer.confidence, 4),
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
