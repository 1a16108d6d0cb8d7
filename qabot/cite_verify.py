"""`qabot verify`: every citation of saved `qabot ask` output (JSON or text) re-checked against the files."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qabot.cite import (
    CitedFile,
    MissingFile,
    OutsideCorpus,
    column_of,
    escaped,
    line_of,
    locate,
    parse_citation,
    printable,
    read_cited,
)
from qabot.cite_resolve import resolve, sentence_spans_of
from qabot.errors import CitationError
from qabot.markdown import is_markdown

_STATUSES = ("OK", "CHANGED", "MISSING", "REFUSED")
# Saved text output of `qabot ask` (render.passage_lines): the passage, its citation, its wire copies.
_CITATION_TEXT = r"(?P<citation>.+?:\d{1,18}(?::\d{1,18}|-\d{1,18})?)"
_TEXT_PASSAGE = re.compile(r"\[\d+\] (?P<text>.+)")
_TEXT_CITATION = re.compile(rf"    — {_CITATION_TEXT}  \(")
_TEXT_ALSO_IN = re.compile(rf"    also in {_CITATION_TEXT}")


@dataclass(frozen=True, slots=True)
class Check:
    """The verdict on one saved citation: status is one of OK, CHANGED, MISSING, REFUSED."""

    status: str
    citation: str
    detail: str = ""

    def __str__(self) -> str:
        return escaped(f"{self.status:<8} {self.citation}" + (f": {self.detail}" if self.detail else ""))


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of `verify`: the printable report and how many citations got each status."""

    report: str
    counts: dict[str, int]

    @property
    def all_ok(self) -> bool:
        return all(count == 0 for status, count in self.counts.items() if status != "OK")

    @property
    def refused(self) -> int:
        return self.counts.get("REFUSED", 0)


def verify_saved_output(
    corpus_root: Path, saved_file: Path, cwd: Path | None = None, boilerplate: re.Pattern[str] | None = None
) -> Verification:
    """Re-check every citation of saved `qabot ask` output (JSON, or the text form) against the files as they are.

    The report has one line per citation (OK, CHANGED, MISSING or REFUSED) then a summary;
    a file outside the corpus root is never read.
    """
    text = _read_saved(saved_file)
    if text.lstrip()[:1] in ("{", ""):
        checks = [
            check
            for answer in parse_saved_answers(text, saved_file)
            for check in check_answer(corpus_root, answer, cwd)
        ]
    else:
        checks = check_saved_text(corpus_root, text, saved_file, cwd, boilerplate)
    counts = {status: sum(check.status == status for check in checks) for status in _STATUSES}
    if not checks:
        return Verification("no citations to check (every saved answer abstained)", counts)
    summary = ", ".join(f"{counts[status]} {status}" for status in _STATUSES if counts[status])
    lines = [str(check) for check in checks]
    lines.append(f"{len(checks)} citation{'s' if len(checks) != 1 else ''} checked: {summary}")
    return Verification("\n".join(lines), counts)


def parse_saved_answers(text: str, json_file: Path) -> list[dict[str, Any]]:
    """The answer objects of a saved file's text (one JSON object, pretty or not, or JSON lines).

    CitationError naming the line when the text is not JSON or not `ask --json` output.
    """
    decoder = json.JSONDecoder()
    answers: list[dict[str, Any]] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            break
        line = line_of(text, position)
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise CitationError(f"{json_file}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        if not _looks_like_answer(value):
            raise CitationError(
                f"{json_file}:{line}: not an answer from 'qabot ask --json' "
                "(expected an object with a 'passages' list of source/start/end/text)"
            )
        answers.append(value)
    if not answers:
        raise CitationError(f"{json_file} is empty; expected the output of 'qabot ask --json'")
    return answers


def _read_saved(saved_file: Path) -> str:
    try:
        return saved_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CitationError(f"cannot read {saved_file}: {getattr(exc, 'strerror', None) or exc}") from None


def check_saved_text(
    corpus_root: Path, text: str, saved_file: Path, cwd: Path | None, boilerplate: re.Pattern[str] | None = None
) -> list[Check]:
    """One Check per citation of saved text output: `[N] passage`, then `    — CITATION  (title)` and
    `    also in CITATION` lines. A passage is OK when its citation, in any of the three forms, still names
    exactly the text shown; an `also in` citation, when a sentence still starts where it points."""
    checks: list[Check] = []
    shown: str | None = None
    files: dict[str, CitedFile | Check] = {}
    for line in text.splitlines():
        if passage := _TEXT_PASSAGE.fullmatch(line):
            shown = passage["text"]
        elif (cited := _TEXT_CITATION.match(line)) and shown is not None:
            checks.append(_check_text_citation(corpus_root, cited["citation"], shown, files, cwd, boilerplate))
            shown = None
        elif also := _TEXT_ALSO_IN.fullmatch(line):
            checks.append(_check_text_citation(corpus_root, also["citation"], None, files, cwd, boilerplate))
    if not checks and "No answer in the corpus." not in text:
        raise CitationError(f"{saved_file} holds no citations; expected the output of 'qabot ask' (text or --json)")
    return checks


def _check_text_citation(
    corpus_root: Path,
    written: str,
    shown: str | None,
    files: dict[str, CitedFile | Check],
    cwd: Path | None,
    boilerplate: re.Pattern[str] | None,
) -> Check:
    label = written if shown is not None else f"also in {written}"
    parsed = parse_citation(written)
    cited = _open_once(corpus_root, parsed.path, cwd, files, label)
    if isinstance(cited, Check):
        return cited
    markdown = is_markdown(cited.file.name)
    try:
        span = resolve(cited.text, parsed, written, boilerplate, markdown=markdown)
    except CitationError as exc:
        return Check("CHANGED", label, str(exc).removeprefix(f"{escaped(written)}: "))
    if parsed.column is not None and span.note:  # the column no longer starts a sentence
        return Check("CHANGED", label, span.note.strip("()"))
    starts = [span.start]
    if parsed.line is not None and parsed.column is None:  # PATH:LINE names each sentence starting on its line
        starts = [start for start, _ in sentence_spans_of(cited.text, boilerplate, markdown)
                  if span.start <= start < span.end]
    if shown is None:
        spans = sentence_spans_of(cited.text, boilerplate, markdown)
        starts_a_sentence = any(start == span.start for start, _ in spans)
        return Check("OK", label) if starts_a_sentence else Check("CHANGED", label, "no sentence starts there now")
    if any(printable(cited.text[start : start + len(shown)]) == shown for start in starts):
        return Check("OK", label)
    return Check("CHANGED", label, "the text there differs from the passage shown")


def check_answer(corpus_root: Path, answer: dict[str, Any], cwd: Path | None = None) -> list[Check]:
    """One Check per passage of a saved answer, each followed by one per `also_in` entry; first, one for the
    answer phrase (in the first passage's file) when there is one."""
    files: dict[str, CitedFile | Check] = {}
    shas = {p["source"]: p["sha256"] for p in answer["passages"] if isinstance(p.get("sha256"), str)}
    checks = []
    phrase = answer.get("answer")
    if phrase is not None and answer["passages"]:
        entry = {**phrase, "source": answer["passages"][0]["source"]}
        checks.append(_check_span(corpus_root, entry, phrase["text"], shas, files, cwd, kind="answer "))
    for passage in answer["passages"]:
        checks.append(_check_span(corpus_root, passage, passage["text"], shas, files, cwd))
        for other in passage.get("also_in") or ():
            checks.append(_check_span(corpus_root, other, None, shas, files, cwd, kind="also in "))
    return checks


def _check_span(
    corpus_root: Path,
    entry: dict[str, Any],
    expected_text: str | None,
    shas: dict[str, str],
    files: dict[str, CitedFile | Check],
    cwd: Path | None,
    kind: str = "",
) -> Check:
    source, start, end = entry["source"], entry["start"], entry["end"]
    label = f"{kind}{source}:{start}-{end}"
    cited = _open_once(corpus_root, source, cwd, files, label)
    if isinstance(cited, Check):
        return cited
    problems = []
    if not 0 <= start < end <= len(cited.text):
        problems.append(f"characters {start}-{end} are past the end of the file ({len(cited.text)} characters)")
    elif expected_text is not None and cited.text[start:end] != expected_text:
        problems.append("text at these offsets differs")
    elif isinstance(entry.get("line"), int) and line_of(cited.text, start) != entry["line"]:
        problems.append(f"the span now starts on line {line_of(cited.text, start)}, not {entry['line']}")
    elif isinstance(entry.get("column"), int) and column_of(cited.text, start) != entry["column"]:
        problems.append(f"the span now starts at column {column_of(cited.text, start)}, not {entry['column']}")
    if source in shas and cited.sha256 != shas[source]:
        problems.append("file sha256 differs")
    if problems:
        return Check("CHANGED", label, "; ".join(problems))
    return Check("OK", label)


def _open_once(
    corpus_root: Path, source: str, cwd: Path | None, files: dict[str, CitedFile | Check], label: str
) -> CitedFile | Check:
    """The cited file, read once per answer or saved text; else the Check, under label, saying why it cannot be."""
    if source not in files:
        files[source] = _open_for_check(corpus_root, source, cwd)
    cited = files[source]
    return Check(cited.status, label, cited.detail) if isinstance(cited, Check) else cited


def _open_for_check(corpus_root: Path, source: str, cwd: Path | None) -> CitedFile | Check:
    try:
        return read_cited(locate(corpus_root, source, cwd))
    except OutsideCorpus as exc:
        return Check("REFUSED", source, str(exc))
    except MissingFile as exc:
        return Check("MISSING", source, str(exc))
    except CitationError as exc:  # binary or no longer UTF-8
        return Check("CHANGED", source, str(exc))


def _looks_like_answer(value: Any) -> bool:
    if not isinstance(value, dict) or not isinstance(value.get("passages"), list):
        return False
    phrase = value.get("answer")
    return (
        all(_looks_like_span(p, with_text=True) for p in value["passages"])
        and all(_looks_like_span(other) for p in value["passages"] for other in p.get("also_in") or ())
        and (phrase is None or (isinstance(phrase, dict) and _looks_like_span({**phrase, "source": ""}, True)))
    )


def _looks_like_span(value: Any, with_text: bool = False) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("source"), str)
        and all(isinstance(value.get(key), int) and not isinstance(value.get(key), bool) for key in ("start", "end"))
        and (not with_text or isinstance(value.get("text"), str))
    )
