"""Citations: parsing them, showing the text they point at, verifying saved answers, refusing outside paths.

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
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from qabot.corpus import Head, NotText, check_root, decode_article, read_head
from qabot.errors import CitationError
from qabot.markdown import BadFrontMatter, is_markdown

BOLD, RESET = "\x1b[1m", "\x1b[0m"
OPEN_MARK, CLOSE_MARK = "»", "«"  # emphasis where ANSI is not wanted (pipes, NO_COLOR)
# At most 18 digits: any real offset fits, and int() never meets Python's 4,300-digit limit.
# The path is the shortest prefix that leaves a valid tail, so `a.txt:5:3` is line 5, column 3 of a.txt.
_CITATION = re.compile(
    r"(?P<path>[^\x00]+?):(?:(?P<start>\d{1,18})-(?P<end>\d{1,18})|(?P<line>\d{1,18})(?::(?P<column>\d{1,18}))?)"
)
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_STATUSES = ("OK", "CHANGED", "MISSING", "REFUSED")
# Saved text output of `qabot ask` (render.passage_lines): the passage, its citation, its wire copies.
_CITATION_TEXT = r"(?P<citation>.+?:\d{1,18}(?::\d{1,18}|-\d{1,18})?)"
_TEXT_PASSAGE = re.compile(r"\[\d+\] (?P<text>.+)")
_TEXT_CITATION = re.compile(rf"    — {_CITATION_TEXT}  \(")
_TEXT_ALSO_IN = re.compile(rf"    also in {_CITATION_TEXT}")


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
class Span:
    """What a citation resolves to in its file: text[start:end], and a note when that needs saying."""

    start: int
    end: int
    note: str = ""


@dataclass(frozen=True, slots=True)
class CitedFile:
    """A cited file read from inside the corpus: its absolute path, UTF-8 text and sha256 of its bytes."""

    file: Path
    text: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Check:
    """The verdict on one saved citation: status is one of OK, CHANGED, MISSING, REFUSED."""

    status: str
    citation: str
    detail: str = ""

    def __str__(self) -> str:
        return _safe(f"{self.status:<8} {self.citation}" + (f": {self.detail}" if self.detail else ""))


def parse_citation(text: str) -> Citation:
    """`PATH:LINE:COL`, `PATH:LINE` or `PATH:START-END`; CitationError with examples when it is none of them."""
    match = _CITATION.fullmatch(text.strip())
    if not match or not match["path"].strip():
        raise CitationError(
            f"{_safe(repr(text))} is not a citation; expected PATH:LINE:COL (seeds/003_b5d4c7ccf50ad595.txt:19:1), "
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
        raise MissingFile(f"{_safe(written)}: no such user's home folder, so no such file") from None
    candidates = [path] if path.is_absolute() else [cwd / path, root / path]
    targets = [_resolved(candidate) for candidate in candidates]
    for target in targets:
        if target is not None and target.is_relative_to(root) and target.is_file():
            return target
    # A missing file is refused too when the path itself leaves the root (../x, /elsewhere/x).
    outside = [t for t in targets if t is not None and not t.is_relative_to(root)]
    if any(t.exists() for t in outside) or (outside and outside[-1] == targets[-1]):
        raise OutsideCorpus(f"{_safe(written)} is outside the corpus folder {root}; refusing to read it")
    raise MissingFile(f"{_safe(written)}: no such file in the corpus folder {root}")


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
    return f"{shown}\n{_safe(span.note)}" if span.note else shown


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
                f"{_safe(written)}: characters {start}-{end} run past the end of the file, "
                f"which has {len(text)} characters"
            )
        if start >= end:
            raise CitationError(f"{_safe(written)}: START ({start}) must be below END ({end})")
        return Span(start, end)
    n_lines = text.count("\n") + 1
    if not 1 <= parsed.line <= n_lines:
        raise CitationError(f"{_safe(written)}: line {parsed.line} is not in the file, which has {n_lines} lines")
    line_start = _line_start(text, parsed.line)
    line_end = _line_end(text, line_start)
    line_text = text[line_start:line_end].removesuffix("\r")
    if not line_text.strip():
        raise CitationError(f"{_safe(written)}: line {parsed.line} is blank; no sentence starts there")
    spans = sentence_spans_of(text, boilerplate, markdown)
    if parsed.column is not None:
        if not 1 <= parsed.column <= len(line_text):
            raise CitationError(
                f"{_safe(written)}: column {parsed.column} is not on line {parsed.line}, "
                f"which has {len(line_text)} characters"
            )
        offset = line_start + parsed.column - 1
        holding = [(start, end) for start, end in spans if start <= offset < end]
        if not holding:
            raise CitationError(f"{_safe(written)}: no sentence at line {parsed.line}, column {parsed.column}")
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
    out = [_safe(f"{display_path(cited.file, cwd)}: {where}, characters {start}-{end}{about}")]
    width = len(str(high))
    before, after = (BOLD, RESET) if color else (OPEN_MARK, CLOSE_MARK)
    offset = _line_start(text, low)
    for number in range(low, high + 1):
        line = lines[number - 1]
        shown = line.removesuffix("\r")  # part of a CRLF line break, not of the text
        lo, hi = max(start - offset, 0), min(end - offset, len(shown))
        if first <= number <= last:
            opening = before if number == first or color else ""
            closing = after if number == last or color else ""
            body = _safe(shown[:lo]) + opening + _safe(shown[lo:hi]) + closing + _safe(shown[hi:])
        else:
            body = _safe(shown)
        out.append(f"{'>' if first <= number <= last else ' '} {number:>{width}} | {body}")
        offset += len(line) + 1
    return "\n".join(out)


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
            for answer in load_saved_answers(saved_file)
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


def load_saved_answers(json_file: Path) -> list[dict[str, Any]]:
    """The answer objects of a saved file (one JSON object, pretty or not, or JSON lines).

    CitationError naming the line when the file is unreadable, not JSON, or not `ask --json` output.
    """
    text = _read_saved(json_file)
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
    if parsed.path not in files:
        files[parsed.path] = _open_for_check(corpus_root, parsed.path, cwd)
    cited = files[parsed.path]
    if isinstance(cited, Check):
        return Check(cited.status, label, cited.detail)
    markdown = is_markdown(cited.file.name)
    try:
        span = resolve(cited.text, parsed, written, boilerplate, markdown=markdown)
    except CitationError as exc:
        return Check("CHANGED", label, str(exc).removeprefix(f"{_safe(written)}: "))
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


def printable(text: str) -> str:
    """text with each control character or line break made one space (one character for one).

    Terminal and chat output must not carry escape sequences from a file; offsets live in JSON.
    """
    return "".join(ch if ch.isprintable() else " " for ch in text)


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
    if source not in files:
        files[source] = _open_for_check(corpus_root, source, cwd)
    cited = files[source]
    if isinstance(cited, Check):
        return Check(cited.status, label, cited.detail)
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


def _resolved(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symbolic link loop
        return None


def _line_start(text: str, line: int) -> int:
    position = 0
    for _ in range(line - 1):
        position = text.index("\n", position) + 1
    return position


def _line_end(text: str, start: int) -> int:
    newline = text.find("\n", start)
    return len(text) if newline < 0 else newline


def _safe(text: str) -> str:
    # Escape sequences and bidi overrides in a file must not reach the terminal raw.
    return _UNSAFE.sub(lambda match: match[0].encode("unicode_escape").decode(), text)


def display_path(file: Path, cwd: Path | None = None) -> str:
    """The file relative to cwd when it lies under it (seeds/003_….txt), else absolute."""
    cwd = (cwd or Path.cwd()).resolve()
    return file.relative_to(cwd).as_posix() if file.is_relative_to(cwd) else file.as_posix()
