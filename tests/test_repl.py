"""The REPL: its commands on the real seeds index, then the real program in a pseudo-terminal."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

from qabot.answer import Answerer
from qabot.config import Settings, replace
from qabot.frontend import answerer_for
from qabot.repl import PROMPT, ReplSession, history_path, run_repl
from tests.conftest import PROJECT, SEEDS, settings_for

UP = "\x1b[A"


@pytest.fixture
def session(seeds_settings: Settings, answerer: Answerer) -> ReplSession:
    return ReplSession(seeds_settings, answerer, cwd=PROJECT)


CONFIDENCE_LINE = r"(?:Likely answer|Possible match|Weak match: check the source) \(confidence \d+%\):"


def test_a_question_is_answered_as_ask_does(session: ReplSession, answerer: Answerer) -> None:
    from qabot.render import render_text

    out = session.handle("Who is Louis Bono?")
    assert out == render_text(answerer.ask("Who is Louis Bono?"), cwd=PROJECT)
    assert re.match(CONFIDENCE_LINE, out) and "\n[1] " in out and "\n[2] " in out and "seeds/" in out


def test_empty_and_blank_lines_do_nothing(session: ReplSession) -> None:
    assert session.handle("") == ""
    assert session.handle("   \t ") == ""
    assert session.last is None


def test_show_prints_the_cited_passage_in_its_file(session: ReplSession) -> None:
    assert "ask a question" in session.handle(":show 1")
    session.handle("who is pashinian")
    passage = session.last.passages[1]
    shown = session.handle(":show 2")
    assert f"»{passage.text}«" in shown
    assert shown.splitlines()[0].startswith(f"seeds/{Path(passage.location.source).name}: line {passage.location.line}")
    numbered = [line for line in shown.splitlines()[1:] if re.match(r"[> ] +\d+ \| ", line)]
    assert len(numbered) == len(shown.splitlines()) - 1 >= 4  # context lines around it
    for bad in (":show", ":show 0", ":show 4", ":show two"):
        assert session.handle(bad) == "usage: :show N, where N is a passage number from 1 to 3"


def test_show_refuses_a_passage_whose_file_changed(tmp_path: Path, corpus_copy: Path) -> None:
    settings = settings_for(corpus_copy, tmp_path / "cache")
    session = ReplSession(settings, answerer_for(settings))
    session.handle("who is pashinian")
    file = session.last.passages[0].location.file
    file.write_text("rewritten\n" + file.read_text("utf-8"), encoding="utf-8")
    assert "changed since it was indexed; type :reload" in session.handle(":show 1")


def test_sources_lists_every_article_with_its_sentence_count(session: ReplSession, answerer: Answerer) -> None:
    lines = session.handle(":sources").splitlines()
    assert lines[0].split() == ["file", "date", "sentences", "title"]
    rows = lines[1:-1]
    assert [row.split()[0] for row in rows] == [doc.path for doc in answerer.index.docs]
    assert sum(int(row.split()[2]) for row in rows) == answerer.index.n_sentences
    assert "2023-08-03" in rows[0] and "Senior Advisor" in rows[0]
    assert lines[-1].startswith(f"5 articles, {answerer.index.n_sentences} sentences")


def test_top_changes_the_number_of_passages(session: ReplSession) -> None:
    assert session.handle(":top") == "answers show up to 3 passages"
    assert session.handle(":top 1") == "answers now show up to 1 passage"
    assert "[2]" not in session.handle("who is pashinian") and len(session.last.passages) == 1
    for bad in (":top 0", ":top -2", ":top many"):
        assert session.handle(bad).startswith("usage: :top N")
    assert session.top_k == 1


def test_json_toggles_machine_readable_output(session: ReplSession) -> None:
    assert session.handle(":json") == "JSON output on"
    data = json.loads(session.handle("who is pashinian"))
    assert data["question"] == "who is pashinian" and len(data["passages"]) == 3
    assert data["passages"][0]["source"].startswith("seeds/")
    assert session.handle(":json") == "JSON output off"
    assert re.match(CONFIDENCE_LINE + r"\n\[1\] ", session.handle("who is pashinian"))


def test_help_unknown_and_quit(session: ReplSession) -> None:
    help_text = session.handle(":help")
    for command in (":show N", ":sources", ":top N", ":json", ":reload", ":quit"):
        assert command in help_text
    assert session.handle(":frobnicate now") == "unknown command :frobnicate; type :help for the list"
    assert session.handle(":quit") is None and session.handle(":q") is None


@pytest.mark.parametrize("word", ["quit", "exit", "EXIT", "  quit  ", ":exit"])
def test_quit_and_exit_leave_without_the_colon(session: ReplSession, word: str) -> None:
    assert session.handle(word) is None


def test_a_line_without_words_is_told_so_and_an_escape_sequence_is_removed_whole(session: ReplSession) -> None:
    for line in ("?!", "\x01\x02", "\x1b[2J"):
        assert session.handle(line).startswith("the question has no words") and session.last is None
    session.handle("who is \x1b[31mbono\x1b[0m")
    assert session.last.question == "who is bono" and "bono" in session.last.passages[0].matched_terms


def test_a_changed_file_is_read_again_before_the_next_question(tmp_path: Path, corpus_copy: Path) -> None:
    settings = settings_for(corpus_copy, tmp_path / "cache")
    notes: list[str] = []
    session = ReplSession(settings, answerer_for(settings), warn=notes.append)
    first = session.handle("Who is Louis Bono?")
    assert "May 4, 2023" in first and notes == []
    file = corpus_copy / "003_b5d4c7ccf50ad595.txt"
    file.write_text(file.read_text("utf-8").replace("May 4, 2023", "May 5, 2023"), "utf-8")
    second = session.handle("Who is Louis Bono?")
    assert "May 5, 2023" in second and "May 4, 2023" not in second
    assert len(notes) == 1 and re.match(r"the corpus changed; reloaded in \d+\.\d\ds: 5 articles", notes[0])
    assert "(1 new or changed, 0 removed)" in notes[0]
    session.handle("who is pashinian")
    assert len(notes) == 1  # nothing changed since: the index is kept


def test_answers_wrap_to_the_width_the_session_is_given(session: ReplSession) -> None:
    session.width = lambda: 50
    out = session.handle("Who is Louis Bono?")
    citations = {f"    — seeds/{Path(p.location.source).name}:{p.location.line}:{p.location.column}"
                 for p in session.last.passages}
    assert citations <= set(out.splitlines())
    assert all(len(line) <= 50 for line in out.splitlines() if line not in citations)


def test_reload_picks_up_changes_and_survives_failure(tmp_path: Path, corpus_copy: Path) -> None:
    settings = settings_for(corpus_copy, tmp_path / "cache")
    warnings: list[str] = []
    session = ReplSession(settings, answerer_for(settings), warn=warnings.append)
    assert session.handle("what did the okapi sanctuary announce").startswith("No answer in the corpus.")
    (corpus_copy / "new.txt").write_text("Okapi news\n\nThe okapi sanctuary announced a new breeding programme.\n")
    message = session.handle(":reload")
    assert re.fullmatch(r"reloaded in \d+\.\d\ds: 6 articles, \d+ sentences \(1 new or changed, 0 removed\)", message)
    assert "new.txt:3" in session.handle("what did the okapi sanctuary announce")
    shutil.rmtree(corpus_copy)
    message = session.handle(":reload")
    assert message.startswith("reload failed, still using the previous index: corpus folder")
    assert "\n" not in message
    # The old index cites files that are gone: a question gets no passage of them, but the session lives on.
    message = session.handle("who is pashinian")
    assert message.startswith("cannot answer: the corpus could not be re-read (corpus folder") and "[1]" not in message
    shutil.copytree(SEEDS, corpus_copy)
    assert "[1]" in session.handle("who is pashinian") and len(session.answerer.index.docs) == 5


def test_run_repl_without_a_terminal_reads_lines_until_eof(seeds_settings: Settings) -> None:
    out = io.StringIO()
    code = run_repl(seeds_settings, io.StringIO("who is pashinian\n\n:show 1\n:top 1\n"), out)
    text = out.getvalue()
    assert code == 0
    assert re.match(r"Loaded 5 articles, \d+ sentences from \S+ in \d+\.\d\ds\.", text)
    assert text.count(PROMPT) == 5 and "[1] " in text and "> " in text and "passage" in text


def test_history_file_defaults_to_the_user_data_folder(seeds_settings: Settings, tmp_path: Path) -> None:
    assert history_path(replace(seeds_settings, history_file=tmp_path / "h")) == tmp_path / "h"
    default = history_path(replace(seeds_settings, history_file=""))
    assert default.name == "history" and "qabot" in default.parts[-2]


# --- the real program in a pseudo-terminal ---------------------------------------------------------


@pytest.fixture
def pty_env(seeds_settings: Settings, tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("QABOT_")}
    env.update(
        TERM="dumb",  # no bracketed-paste or colour escapes from readline
        INPUTRC=os.devnull,  # the user's key bindings must not change what the test types
        NO_COLOR="1",
        QABOT_CACHE_DIR=str(seeds_settings.index_dir),
        QABOT_HISTORY_FILE=str(tmp_path / "history"),
        PYTHONIOENCODING="utf-8:strict",  # as under a en_US.UTF-8 locale, where a stray byte would raise
    )
    return env


def wait_until_idle(child: pexpect.spawn, timeout: float = 10.0) -> None:
    """Until the child has slept (blocked, waiting for input) through two looks 0.1 s apart, on a busy machine
    too; where /proc cannot tell (not Linux), 0.3 s."""
    status = Path(f"/proc/{child.pid}/stat")
    if not status.exists():
        time.sleep(0.3)
        return
    deadline, asleep = time.monotonic() + timeout, 0
    while time.monotonic() < deadline and asleep < 2:
        asleep = asleep + 1 if status.read_text().rsplit(")", 1)[1].split()[0] == "S" else 0
        time.sleep(0.1)


def spawn(env: dict[str, str], *args: str) -> pexpect.spawn:
    child = pexpect.spawn(
        sys.executable, ["-m", "qabot.cli", *args], cwd=str(PROJECT), env=env, encoding="utf-8",
        codec_errors="replace", timeout=30,
    )
    child.expect(r"Loaded 5 articles, \d+ sentences from seeds in \d+\.\d\ds\. Type a question")
    child.expect_exact(PROMPT)
    return child


def quit_cleanly(child: pexpect.spawn) -> None:
    """:quit ends the session with exit status 0."""
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_pty_session_question_show_history_ctrl_c_and_quit(pty_env: dict[str, str], tmp_path: Path) -> None:
    child = spawn(pty_env)  # no arguments: the REPL
    child.sendline("Who is Louis Bono?")
    child.expect_exact(PROMPT)
    first_answer = child.before
    assert "[1] " in first_answer and "seeds/000_9ad8541396ee1ed9.txt:" in first_answer
    assert (tmp_path / "history").read_text("utf-8").splitlines() == ["Who is Louis Bono?"]  # saved at once

    child.sendline(":show 1")
    child.expect_exact(PROMPT)
    assert re.search(r"> +\d+ \| .*».*Bono.*«", child.before)

    child.send("who is pashinian")  # typed, then cancelled: never answered
    child.expect_exact("who is pashinian")
    # CPython's readline loop notices SIGINT only while waiting for a key, so let it get back to waiting
    # (a person never presses Ctrl-C within microseconds of the previous key).
    wait_until_idle(child)
    child.sendintr()
    child.expect_exact(PROMPT)
    assert "^C" in child.before and "[1]" not in child.before

    child.send(UP + UP)  # ':show 1', then the question before it
    child.sendline("")
    child.expect_exact(PROMPT)
    assert "[1] " in child.before and "Bono" in child.before

    child.sendline("")  # an empty line does nothing
    child.expect_exact(PROMPT)
    assert child.before.strip() == ""

    quit_cleanly(child)
    history = (tmp_path / "history").read_text("utf-8").splitlines()
    assert history[:2] == ["Who is Louis Bono?", ":show 1"] and "who is pashinian" not in history


def test_pty_history_persists_across_sessions_and_ctrl_d_leaves(pty_env: dict[str, str]) -> None:
    child = spawn(pty_env, "repl")
    child.sendline("who is pashinian")
    child.expect_exact(PROMPT)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    child = spawn(pty_env, "repl")
    child.send(UP)
    child.sendline("")
    child.expect_exact(PROMPT)
    assert "Pashinian" in child.before and "[1] " in child.before
    child.sendline(":q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_pty_colour_emphasis_on_a_terminal(pty_env: dict[str, str]) -> None:
    env = {key: value for key, value in pty_env.items() if key != "NO_COLOR"}
    child = spawn(env, "repl")
    child.sendline("who is pashinian")
    child.expect_exact(PROMPT)
    child.sendline(":show 1")
    child.expect_exact(PROMPT)
    assert "\x1b[1m" in child.before and "»" not in child.before
    child.sendline(":quit")
    child.expect(pexpect.EOF)


def test_piped_repl_survives_non_utf8_and_control_bytes(pty_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qabot.cli", "repl"], input=b"who is \xff\xfe pashinian\n\x1b[2J\x00\n:top 1\n",
        capture_output=True, cwd=PROJECT, env=pty_env, timeout=60,
    )  # fmt: skip
    out = result.stdout.decode("utf-8")
    assert result.returncode == 0 and b"Traceback" not in result.stderr
    assert "[1] " in out and "Pashinian" in out and "answers now show up to 1 passage" in out


def test_pty_non_utf8_bytes_do_not_end_the_session(pty_env: dict[str, str]) -> None:
    child = spawn(pty_env, "repl")
    os.write(child.child_fd, b"who is \xff pashinian\r")
    child.expect_exact(PROMPT)
    assert "Pashinian" in child.before
    quit_cleanly(child)


def test_pty_unwritable_history_warns_once_and_carries_on(pty_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    child = spawn({**pty_env, "QABOT_HISTORY_FILE": str(tmp_path / "not-a-folder" / "history")}, "repl")
    child.logfile_read = transcript = io.StringIO()
    for _ in range(2):
        child.sendline("who is pashinian")
        child.expect_exact(PROMPT)
        assert "[1] " in child.before
    quit_cleanly(child)
    assert transcript.getvalue().count("qabot: cannot save history to") == 1


def test_pty_whitespace_only_lines_stay_out_of_history(pty_env: dict[str, str], tmp_path: Path) -> None:
    child = spawn(pty_env, "repl")
    child.sendline("who is pashinian")
    child.expect_exact(PROMPT)
    for blank in ("   ", "\t ", " "):
        child.sendline(blank)
        child.expect_exact(PROMPT)
        assert child.before.strip() == ""
    child.send(UP)  # the question, not a blank line
    child.sendline("")
    child.expect_exact(PROMPT)
    assert "Pashinian" in child.before and "seeds/003_b5d4c7ccf50ad595.txt:29:1" in child.before
    quit_cleanly(child)
    assert (tmp_path / "history").read_text("utf-8").splitlines() == ["who is pashinian", ":quit"]


def test_pty_an_edit_between_two_questions_is_shown_at_once(pty_env: dict[str, str], corpus_copy: Path,
                                                            tmp_path: Path) -> None:
    env = {**pty_env, "QABOT_CACHE_DIR": str(tmp_path / "cache")}
    child = pexpect.spawn(sys.executable, ["-m", "qabot.cli", "repl", "--corpus", str(corpus_copy)], cwd=str(PROJECT),
                          env=env, encoding="utf-8", timeout=60)
    child.expect(r"Loaded 5 articles, \d+ sentences from ")
    child.expect_exact(PROMPT)
    child.sendline("Who is Louis Bono?")
    child.expect_exact(PROMPT)
    assert "May 4, 2023" in " ".join(child.before.split())  # wrapped to the terminal: compare the words
    file = corpus_copy / "003_b5d4c7ccf50ad595.txt"
    file.write_text(file.read_text("utf-8").replace("May 4, 2023", "May 5, 2023"), "utf-8")  # as an editor saves
    child.sendline("Who is Louis Bono?")
    child.expect_exact(PROMPT)
    second = " ".join(child.before.split())
    assert "the corpus changed; reloaded in" in second and "(1 new or changed, 0 removed)" in second
    assert "May 5, 2023" in second and "May 4, 2023" not in second
    child.sendline("exit")  # no colon, as in Python's REPL
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_pty_answers_fit_the_terminal_without_breaking_words(pty_env: dict[str, str]) -> None:
    child = pexpect.spawn(sys.executable, ["-m", "qabot.cli", "repl"], cwd=str(PROJECT), env=pty_env,
                          encoding="utf-8", timeout=30, dimensions=(24, 60))
    child.expect_exact(PROMPT)
    child.sendline("Who is Louis Bono?")
    child.expect_exact(PROMPT)
    lines = child.before.replace("\r\n", "\n").split("\n")[1:]  # after the echoed question
    citations = [line for line in lines if line.startswith("    — seeds/")]
    whole = re.compile(r"    — seeds/\d{3}_[0-9a-f]{16}\.txt:\d+:\d+")  # the title went under it
    assert len(citations) == 3 and all(whole.fullmatch(citation) for citation in citations)
    assert all(len(line) <= 60 for line in lines if line not in citations)
    words = " ".join(lines).split()
    for word in ("Secretary", "Eurasian", "negotiations,", "Mirzoyan", "Azerbaijani"):  # never "Se / cretary"
        assert word in words
    child.sendline("quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
