"""The interactive prompt: questions answered as `qabot ask` does, plus a few `:` commands.

Line editing and history come from GNU readline when Python has it (history persists in
settings.history_file, default the user's data folder); without it the prompt still works, unedited.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, ClassVar, TextIO

from qabot.config import Settings
from qabot.errors import QabotError, QuestionError
from qabot.frontend import answerer_for, corpus_changed, open_answerer, typed_question, warn

if TYPE_CHECKING:
    from qabot.answer import Answerer
    from qabot.model import Answer

PROMPT = "qabot> "
LEAVE_WORDS = ("quit", "exit")  # leave without the colon too, as in Python's REPL
SHOW_CONTEXT_LINES = 3
HISTORY_LENGTH = 1000
HELP = """\
Type a question and press Enter. Commands:
  :help       this list
  :show N     passage [N] of the last answer in its file, with the lines around it
  :sources    the articles searched: file, title, date, sentence count
  :top N      answer with N passages (without N: show the current number)
  :json       toggle JSON output (one object per answer, as 'qabot ask --json')
  :reload     re-read changed files of the corpus and swap in the new index
              (done by itself before a question when a file changed)
  :quit       leave (or quit, exit, Ctrl-D); Ctrl-C cancels the line being typed"""


def history_path(settings: Settings) -> Path:
    """settings.history_file, else `history` in the user's data folder (platformdirs)."""
    if settings.history_file is not None:
        return settings.history_file
    from platformdirs import user_data_dir

    return Path(user_data_dir("qabot")) / "history"


class ReplSession:
    """The state of one interactive session; `handle(line)` returns what to print (None to leave)."""

    def __init__(
        self,
        settings: Settings,
        answerer: Answerer,
        color: bool = False,
        warn: Callable[[str], None] = lambda message: None,
        cwd: Path | None = None,
        width: Callable[[], int | None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.answerer = answerer
        self.color = color
        self.warn = warn
        self.cwd = cwd
        self.width = width  # the terminal's columns, asked at each answer (it may be resized); None: no wrapping
        self.top_k = settings.top_k
        self.json = False
        self.last: Answer | None = None  # for :show

    def handle(self, line: str) -> str | None:
        """The response to one input line: '' for nothing to print, None when the session ends."""
        line = line.strip()
        if not line:
            return ""
        if line.lower() in LEAVE_WORDS:
            return None
        if not line.startswith(":"):
            return self.ask(line)
        name, _, argument = line[1:].partition(" ")
        command = self.COMMANDS.get(name.lower())
        if command is None:
            return f"unknown command :{name}; type :help for the list"
        return command(self, argument.strip())

    def ask(self, question: str) -> str:
        """The answer, from an index refreshed first if a file changed: never a passage its file no longer has."""
        from qabot.render import render_json, render_text

        try:
            question = typed_question(question)
        except QuestionError as exc:
            return str(exc)
        try:
            self.refresh()
        except Exception as exc:  # the old index may cite text that is gone: answer nothing rather than that
            return f"cannot answer: the corpus could not be re-read ({_message(exc)}); fix it, then ask again"
        self.last = self.answerer.ask(question, self.top_k)
        if self.json:
            return render_json(self.last, self.cwd)
        return render_text(self.last, color=self.color, cwd=self.cwd, width=self.width())

    def refresh(self) -> None:
        """Swap in a fresh index when a file was added, changed or removed since it was made, as `qabot ask`
        does on every run, and say so; raises what re-reading the corpus raises."""
        if corpus_changed(self.answerer):
            self.warn(f"the corpus changed; {self.reopen()}")

    def help(self, argument: str) -> str:
        return HELP

    def quit(self, argument: str) -> None:
        return None

    def show(self, argument: str) -> str:
        from qabot.cite import read_cited
        from qabot.cite_show import render_span

        if self.last is None or not self.last.passages:
            return "no passage to show: ask a question that gets an answer first"
        count = len(self.last.passages)
        if not argument.isdigit() or not 1 <= int(argument) <= count:
            return f"usage: :show N, where N is a passage number from 1 to {count}"
        location = self.last.passages[int(argument) - 1].location
        try:
            cited = read_cited(location.file)
        except QabotError as exc:
            return f"cannot show [{argument}]: {exc}"
        if cited.text[location.start : location.end] != self.last.passages[int(argument) - 1].text:
            return f"cannot show [{argument}]: {location.source} changed since it was indexed; type :reload"
        return render_span(cited, location.start, location.end, SHOW_CONTEXT_LINES, color=self.color, cwd=self.cwd)

    def sources(self, argument: str) -> str:
        index = self.answerer.index
        counts = [int(n) for n in index.doc_sent_ptr[1:] - index.doc_sent_ptr[:-1]]
        rows = [
            (doc.path, doc.date or "-", str(count), doc.title if len(doc.title) <= 60 else doc.title[:59] + "…")
            for doc, count in zip(index.docs, counts, strict=True)
        ]
        if not rows:
            return "the corpus has no articles"
        header = ("file", "date", "sentences", "title")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
        lines = [
            f"{path:<{widths[0]}}  {date:<{widths[1]}}  {count:>{widths[2]}}  {title}"
            for path, date, count, title in [header, *rows]
        ]
        lines.append(f"{len(rows)} articles, {index.n_sentences} sentences in {index.root}")
        return "\n".join(lines)

    def top(self, argument: str) -> str:
        if not argument:
            return f"answers show up to {self.top_k} passages"
        if not argument.isdigit() or int(argument) < 1:
            return f"usage: :top N, where N is a positive whole number (got {argument!r})"
        self.top_k = int(argument)
        return f"answers now show up to {self.top_k} passage{'s' if self.top_k > 1 else ''}"

    def toggle_json(self, argument: str) -> str:
        self.json = not self.json
        return f"JSON output {'on' if self.json else 'off'}"

    def reload(self, argument: str) -> str:
        try:
            return self.reopen()
        except Exception as exc:  # any failure leaves the session answering from the old index
            return f"reload failed, still using the previous index: {_message(exc)}"

    def reopen(self) -> str:
        """Open the index afresh (re-reading changed files) and use it; what changed, in one line."""
        started = time.perf_counter()
        fresh = answerer_for(self.settings, warn=self.warn)
        old = {(doc.path, doc.sha256) for doc in self.answerer.index.docs}
        new = {(doc.path, doc.sha256) for doc in fresh.index.docs}
        self.answerer = fresh  # :show re-reads the file, so the last answer stays showable
        return (
            f"reloaded in {time.perf_counter() - started:.2f}s: {len(fresh.index.docs)} articles, "
            f"{fresh.index.n_sentences} sentences ({len(new - old)} new or changed, "
            f"{len({path for path, _ in old} - {path for path, _ in new})} removed)"
        )

    COMMANDS: ClassVar[dict[str, Callable[[ReplSession, str], str | None]]] = {
        "help": help, "h": help, "?": help, "show": show, "sources": sources, "top": top,
        "json": toggle_json, "reload": reload, "quit": quit, "q": quit, "exit": quit,
    }  # fmt: skip


def run_repl(settings: Settings, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Load the index, then answer lines until :quit or end of input; exit status 0."""
    from qabot.render import terminal_width, use_color

    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    for stream in (stdin, stdout):  # a stray non-UTF-8 byte must cost one character, not the session
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    started = time.perf_counter()
    answerer = open_answerer(settings)
    index = answerer.index
    print(
        f"Loaded {len(index.docs)} articles, {index.n_sentences} sentences from {settings.corpus} "
        f"in {time.perf_counter() - started:.2f}s. Type a question, :help for commands, :quit to leave.",
        file=stdout,
        flush=True,
    )
    session = ReplSession(settings, answerer, color=use_color(stdout), warn=warn, width=lambda: terminal_width(stdout))
    history = _History.open(history_path(settings), warn) if stdin.isatty() else None
    while True:
        try:
            line = input(PROMPT) if stdin is sys.stdin else _read_line(stdin, stdout)
        except KeyboardInterrupt:  # Ctrl-C drops the line being typed, not the session
            print("^C", file=stdout, flush=True)
            continue
        except EOFError:  # Ctrl-D
            print(file=stdout, flush=True)
            return 0
        if history is not None:
            history.record(line)
        try:
            response = session.handle(line)
        except KeyboardInterrupt:
            response = "(cancelled)"
        if response is None:
            return 0
        if response:
            print(response, file=stdout, flush=True)


def _message(exc: Exception) -> str:
    return str(exc) or exc.__class__.__name__


def _read_line(stdin: TextIO, stdout: TextIO) -> str:
    print(PROMPT, end="", file=stdout, flush=True)
    line = stdin.readline()
    if not line:
        raise EOFError
    return line


class _History:
    """Readline's history, loaded from a file at start and written back after every line."""

    def __init__(self, path: Path, readline: ModuleType, warn: Callable[[str], None]) -> None:
        self.path, self.readline, self.warn = path, readline, warn
        self.failed = False

    @classmethod
    def open(cls, path: Path, warn: Callable[[str], None]) -> _History | None:
        try:
            import readline
        except ImportError:  # e.g. Windows without pyreadline: no editing, no history
            return None
        readline.set_history_length(HISTORY_LENGTH)
        try:
            if path.is_file():
                readline.read_history_file(path)
        except OSError as exc:
            warn(f"cannot read history file {path} ({exc.strerror or exc}); starting with an empty history")
        return cls(path, readline, warn)

    def record(self, line: str) -> None:
        """Keep a typed line (readline has added it) unless it is only whitespace; save at once, so a closed
        terminal loses nothing."""
        length = self.readline.get_current_history_length()
        if not line.strip() and length and self.readline.get_history_item(length) == line:
            self.readline.remove_history_item(length - 1)  # items count from 1, removal from 0
        self.save()

    def save(self) -> None:
        if self.failed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.readline.write_history_file(self.path)
        except OSError as exc:
            self.failed = True  # say so once, not after every line
            self.warn(f"cannot save history to {self.path} ({exc.strerror or exc}); history is not kept")
