"""End to end: the `qabot` command's output, exit codes and one-line errors (in-process and as a real process)."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import discord
import pytest

from qabot.cli import main
from qabot.config import Settings
from qabot.discord_invite import bot_permissions
from tests.conftest import PROJECT, SEEDS

COMMANDS = ["ask", "eval", "index", "show", "verify", "repl", "bot"]
SECRET = "TOP-SECRET-OUTSIDE-THE-CORPUS"


@pytest.fixture
def cli_env(seeds_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Run from the project root with the session's index cache; the caller's QABOT_* are ignored."""
    for key in list(os.environ):
        if key.startswith("QABOT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("QABOT_CACHE_DIR", str(seeds_settings.index_dir))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(PROJECT)
    return dict(os.environ)


def run(env: dict[str, str], *args: str, stdin: str = "", cwd: Path = PROJECT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qabot.cli", *args],
        input=stdin, capture_output=True, text=True, encoding="utf-8", env=env, cwd=cwd, timeout=60,
    )  # fmt: skip


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    assert stderr.count("\n") == 1 and stderr.startswith("qabot: error: "), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in stderr


# --- help ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_of_every_command(command: str | None, cli_env: dict, capsys: pytest.CaptureFixture) -> None:
    argv = [command, "--help"] if command else ["--help"]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert out.startswith(f"usage: qabot {command or ''}".rstrip())
    assert "--corpus DIR" in out and "--config FILE" in out
    if command is None:
        assert all(name in out for name in COMMANDS)


def test_show_help_documents_the_three_citation_forms(cli_env: dict, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["show", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "PATH:LINE:COL (as printed by 'ask')" in out and "PATH:LINE (" in out and "PATH:START-END" in out


# --- ask ----------------------------------------------------------------------------------------


def test_ask_text_prints_numbered_cited_passages(cli_env: dict, capsys: pytest.CaptureFixture) -> None:
    assert main(["ask", "Who is Louis Bono?"]) == 0
    out = capsys.readouterr().out
    labels = r"(?:Likely answer|Possible match|Weak match: check the source)"
    assert re.match(rf"(?:Answer: .+ \(\d+%\)\n)?{labels} \(confidence \d+%\):\n\[1\] ", out)
    assert "\n[2] " in out
    assert re.search(r"\n    — seeds/\d{3}_[0-9a-f]{16}\.txt:\d+:\d+  \(", out)
    assert "\x1b[" not in out  # NO_COLOR and not a terminal


def test_ask_json_passages_are_exact_slices_of_their_files(cli_env: dict, capsys: pytest.CaptureFixture) -> None:
    assert main(["ask", "--json", "--top-k", "2", "who is pashinian"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["abstained"] is False and len(data["passages"]) == 2
    for passage in data["passages"]:
        text = (PROJECT / passage["source"]).read_text("utf-8")
        assert text[passage["start"] : passage["end"]] == passage["text"]


def test_ask_without_an_answer_exits_1(cli_env: dict, capsys: pytest.CaptureFixture) -> None:
    assert main(["ask", "what is the weather on mars"]) == 1
    assert capsys.readouterr().out.startswith("No answer in the corpus.")
    assert main(["ask", "--json", "what is the weather on mars"]) == 1
    assert json.loads(capsys.readouterr().out)["abstained"] is True


def test_ask_batch_json_answers_every_line_in_order(cli_env: dict) -> None:
    questions = ["Who is Louis Bono?", "", "what is the weather on mars", "who is pashinian", "\x00\x1b[31m"]
    result = run(cli_env, "ask", "--json", "-", stdin="\n".join(questions) + "\n")
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [obj["question"] for obj in objects] == [*questions[:4], "\x00"]  # the escape sequence removed whole
    assert [obj["abstained"] for obj in objects] == [False, True, True, False, True]


# --- user errors: one line on stderr, exit 2 ----------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["frobnicate"], ["invalid choice: 'frobnicate'"]),
        (["ask", "--frob", "x"], ["unrecognized arguments: --frob"]),
        (["ask", "--top-k", "0", "x"], ["positive whole number"]),
        (["ask"], ["required: QUESTION"]),
        (["ask", "--corpus", "no/such/folder", "x"], ["corpus folder no/such/folder does not exist"]),
        (["ask", "--config", "no/such.toml", "x"], ["config file no/such.toml does not exist"]),
        (["show", "seeds/003_b5d4c7ccf50ad595.txt"], ["is not a citation"]),
        (["verify", "no/such.json"], ["cannot read no/such.json"]),
    ],
)
def test_user_errors_print_one_line_and_exit_2(
    argv: list[str], fragments: list[str], cli_env: dict, capsys: pytest.CaptureFixture
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_line_error(captured.err, *fragments)


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ("[answer]\ntop_k = 'three'\n", "'top_k' in"),
        ("[answer\n", "is not valid TOML"),
        ("[answer]\nfavourite = 1\n", "unknown key 'favourite'"),
    ],
)
def test_bad_config_file_is_one_line_exit_2_in_a_real_process(
    config: str, fragment: str, cli_env: dict, tmp_path: Path
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(config)
    result = run(cli_env, "ask", "--config", str(path), "who is pashinian")
    assert result.returncode == 2 and result.stdout == ""
    assert_one_line_error(result.stderr, fragment)


def test_bad_environment_setting_is_one_line_exit_2(cli_env: dict) -> None:
    result = run({**cli_env, "QABOT_TOP_K": "lots"}, "ask", "who is pashinian")
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "QABOT_TOP_K must be a positive integer")


def test_debug_shows_the_traceback(cli_env: dict) -> None:
    result = run(cli_env, "ask", "--debug", "--corpus", "no/such/folder", "x")
    assert result.returncode != 0 and "Traceback" in result.stderr and "CorpusError" in result.stderr


# --- show ---------------------------------------------------------------------------------------


def test_show_line_and_span_citations(cli_env: dict, capsys: pytest.CaptureFixture) -> None:
    lines = (SEEDS / "003_b5d4c7ccf50ad595.txt").read_text("utf-8").split("\n")
    assert main(["show", "seeds/003_b5d4c7ccf50ad595.txt:31", "--context", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == [f"  30 | {lines[29]}", f"> 31 | »{lines[30]}«", f"  32 | {lines[31]}"]

    assert main(["ask", "--json", "who is pashinian"]) == 0
    passage = json.loads(capsys.readouterr().out)["passages"][0]
    assert main(["show", f"{passage['source']}:{passage['start']}-{passage['end']}"]) == 0
    assert f"»{passage['text']}«" in capsys.readouterr().out


def test_show_bad_citations_exit_2(cli_env: dict, capsys: pytest.CaptureFixture) -> None:
    for citation, fragment in [
        ("seeds/003_b5d4c7ccf50ad595.txt:99", "line 99 is not in the file"),
        ("seeds/003_b5d4c7ccf50ad595.txt:3000-90000", "run past the end of the file"),
        ("seeds/nope.txt:1", "no such file"),
    ]:
        assert main(["show", citation]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert_one_line_error(captured.err, fragment)


def test_show_refuses_outside_paths_without_printing_them(corpus_copy: Path, tmp_path: Path, cli_env: dict) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(f"{SECRET}\n")
    (corpus_copy / "link.txt").symlink_to(secret)
    env = {**cli_env, "QABOT_CACHE_DIR": str(tmp_path / "cache")}
    for citation in ["../secret.txt:1", f"{secret}:1", "corpus/../secret.txt:0-5", "link.txt:1", "/etc/passwd:1"]:
        result = run(env, "show", "--corpus", str(corpus_copy), citation, cwd=tmp_path)
        assert result.returncode == 2 and result.stdout == ""
        assert_one_line_error(result.stderr, "is outside the corpus folder")
        assert SECRET not in result.stderr


# --- verify -------------------------------------------------------------------------------------


def test_verify_good_tampered_and_outside(corpus_copy: Path, tmp_path: Path, cli_env: dict) -> None:
    env = {**cli_env, "QABOT_CACHE_DIR": str(tmp_path / "cache"), "QABOT_CORPUS": str(corpus_copy)}
    asked = run(env, "ask", "--json", "-", stdin="who is pashinian\nWho is Louis Bono?\n", cwd=tmp_path)
    assert asked.returncode == 0
    saved = tmp_path / "saved.jsonl"
    saved.write_text(asked.stdout)

    good = run(env, "verify", str(saved), cwd=tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    answers = [json.loads(line) for line in asked.stdout.splitlines()]
    count = sum(len(a["passages"]) + sum(len(p["also_in"]) for p in a["passages"]) + (a["answer"] is not None)
                for a in answers)  # fmt: skip
    assert good.stdout.count("OK       ") == count and good.stdout.endswith(f"{count} citations checked: {count} OK\n")

    pashinian = json.loads(asked.stdout.splitlines()[0])["passages"][0]
    cited = tmp_path / pashinian["source"]
    original = cited.read_text("utf-8")
    cited.write_text(original.replace(pashinian["text"], pashinian["text"].upper()), encoding="utf-8")
    tampered = run(env, "verify", str(saved), cwd=tmp_path)
    assert tampered.returncode == 1
    changed = f"CHANGED  {pashinian['source']}:{pashinian['start']}-{pashinian['end']}: text at these offsets"
    assert changed in tampered.stdout

    cited.unlink()
    assert "MISSING  " in run(env, "verify", str(saved), cwd=tmp_path).stdout

    secret = tmp_path / "secret.txt"
    secret.write_text(f"{SECRET}\n")
    outside = json.loads(asked.stdout.splitlines()[1])
    outside["passages"][0].update(source="secret.txt", start=0, end=len(SECRET), text=SECRET)
    saved.write_text(json.dumps(outside, indent=2))
    refused = run(env, "verify", str(saved), cwd=tmp_path)
    assert refused.returncode == 2
    assert "REFUSED  secret.txt:0-" in refused.stdout and "OK       " in refused.stdout
    assert_one_line_error(refused.stderr, "1 citation(s) outside the corpus folder")
    assert SECRET not in refused.stdout + refused.stderr


def test_verify_malformed_json_names_the_line(cli_env: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "abstained": true, "reason": "", "passages": []}\n{"question": \n')
    assert main(["verify", str(bad)]) == 2
    assert_one_line_error(capsys.readouterr().err, f"{bad}:3: not valid JSON")


# --- a new user's first hour ----------------------------------------------------------------------------


def test_ask_takes_the_rest_of_the_line_unquoted(cli_env: dict, capsys: pytest.CaptureFixture) -> None:
    assert main(["ask", "Who is Louis Bono?"]) == 0
    quoted = capsys.readouterr().out
    assert main(["ask", "Who", "is", "Louis", "Bono?"]) == 0
    assert capsys.readouterr().out == quoted
    # options still parse, before, after or inside the question
    assert main(["ask", "--top-k", "1", "Who", "is", "Louis", "Bono?"]) == 0
    one = capsys.readouterr().out
    assert "[2] " not in one and one.startswith(quoted.split("\n[2] ")[0])
    assert main(["ask", "Who", "is", "--top-k", "1", "Louis", "Bono?"]) == 0
    assert capsys.readouterr().out == one
    assert main(["ask", "Who", "is", "Louis", "Bono?", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["question"] == "Who is Louis Bono?"


def test_an_unknown_option_inside_a_question_is_one_line(cli_env: dict, capsys: pytest.CaptureFixture) -> None:
    assert main(["ask", "Who", "--frob", "is", "Bono"]) == 2
    assert_one_line_error(capsys.readouterr().err, "unrecognized arguments: --frob is Bono")


def test_printed_passages_are_the_exact_sentences_without_added_quote_marks(
    cli_env: dict, capsys: pytest.CaptureFixture
) -> None:
    question = "What did the embassy say Bono will visit?"
    assert main(["ask", "--json", question]) == 0
    passages = json.loads(capsys.readouterr().out)["passages"]
    assert main(["ask", question]) == 0
    out = capsys.readouterr().out.splitlines()
    for number, passage in enumerate(passages, 1):
        at = out.index(f"[{number}] {passage['text']}")
        assert out[at + 1].startswith(f"    — {passage['source']}:{passage['line']}:{passage['column']}  (")


def test_each_printed_citation_opens_exactly_its_passage_in_show(cli_env: dict, capsys: pytest.CaptureFixture) -> None:
    question = "What did the embassy say Bono will visit?"
    assert main(["ask", "--json", question]) == 0
    passages = json.loads(capsys.readouterr().out)["passages"]
    assert len({(p["source"], p["line"]) for p in passages}) < len(passages), "two passages share a line"
    assert main(["ask", question]) == 0
    cited = [line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("    — ")]
    for passage, citation in zip(passages, cited, strict=True):
        assert main(["show", citation, "--context", "0"]) == 0
        shown = capsys.readouterr().out
        assert f"characters {passage['start']}-{passage['end']} " in shown.splitlines()[0]
        assert f"»{passage['text']}«" in shown


@pytest.mark.parametrize(
    ("citation", "fragment"),
    [
        ("seeds/000_9ad8541396ee1ed9.txt:2", "line 2 is blank; no sentence starts there"),
        ("seeds/000_9ad8541396ee1ed9.txt:0-99999", "characters 0-99999 run past the end of the file"),
        ("seeds/000_9ad8541396ee1ed9.txt:5:999", "column 999 is not on line 5"),
    ],
)
def test_show_says_what_is_wrong_with_a_citation(
    citation: str, fragment: str, cli_env: dict, capsys: pytest.CaptureFixture
) -> None:
    assert main(["show", citation]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_line_error(captured.err, fragment)


def test_an_empty_corpus_folder_is_an_error_not_an_abstention(cli_env: dict, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**cli_env, "QABOT_CACHE_DIR": str(tmp_path / "cache")}
    result = run(env, "ask", "--corpus", str(empty), "Who is Louis Bono?")
    assert result.returncode == 2 and result.stdout == ""
    assert_one_line_error(result.stderr, f"the corpus folder {empty} holds no readable *.txt articles")


def test_index_names_the_skipped_files_on_every_run(cli_env: dict, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text("Good\n\nThe marlowick ferry sails at noon.\n", "utf-8")
    (corpus / "binary.txt").write_bytes(b"abc\x00def\n")
    (corpus / "latin1.txt").write_bytes("café\n".encode("latin-1"))
    env = {**cli_env, "QABOT_CACHE_DIR": str(tmp_path / "cache"), "QABOT_CORPUS": str(corpus)}
    for run_number in (1, 2):
        result = run(env, "index")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith("index ")
        assert lines[0].endswith(" 1 articles, 1 sentences, 4 terms, 2 files skipped:"), "the title is no sentence"
        assert [line.split(":")[0] for line in lines[1:]] == ["  binary.txt", "  latin1.txt"], run_number
        assert "binary" in lines[1] and "not valid UTF-8" in lines[2]


@pytest.mark.parametrize("question", ["", "   ", "?!", "...?", "\x01\x02", "\x1b[31m\x1b[0m", "—"])
def test_a_question_without_words_is_a_user_error(question: str, cli_env: dict) -> None:
    result = run(cli_env, "ask", question)
    assert result.returncode == 2 and result.stdout == ""
    assert_one_line_error(result.stderr, "the question has no words")
    assert "\x1b" not in result.stderr and "\x01" not in result.stderr


def test_an_escape_sequence_in_a_question_is_removed_whole(cli_env: dict) -> None:
    result = run(cli_env, "ask", "--json", "Who is \x1b[31mbono\x1b[0m?")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["question"] == "Who is bono?"
    assert "31mbono" not in result.stdout and any("bono" in p["matched_terms"] for p in answer["passages"])


def test_batch_text_never_echoes_raw_escapes(cli_env: dict) -> None:
    questions = "\x1b[2J\x1b]0;owned\x07Who is \x1b[1mLouis Bono\x1b[0m?\n\x1b[31m\x00\n"
    result = run(cli_env, "ask", "-", stdin=questions)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x00" not in result.stdout and "\x07" not in result.stdout
    assert "[2J" not in result.stdout and "owned" not in result.stdout and "[31m" not in result.stdout
    assert result.stdout.startswith("Q: Who is Louis Bono?\n") and "\nQ:  \nNo answer in the corpus." in result.stdout


def test_index_of_an_empty_folder_is_a_user_error(cli_env: dict, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**cli_env, "QABOT_CACHE_DIR": str(tmp_path / "cache")}
    result = run(env, "index", "--corpus", str(empty))
    assert result.returncode == 2
    assert_one_line_error(result.stderr, f"the corpus folder {empty} holds no readable articles")
    (empty / "notes.txt").write_text("Notes\n\nThe ferry sails at noon.\n", "utf-8")
    assert run(env, "index", "--corpus", str(empty)).returncode == 0


def test_eval_runs_the_projects_own_sample_set(cli_env: dict, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", "eval/sample.jsonl"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("questions: 18 (13 answerable, 5 unanswerable)\n") and "R@1:" in out and "MRR@10:" in out
    assert "ECE" in out


def test_the_sample_set_quotes_are_in_the_seeds() -> None:
    rows = [json.loads(line) for line in (PROJECT / "eval" / "sample.jsonl").read_text("utf-8").splitlines()]
    assert {row["answerable"] for row in rows} == {True, False}
    for row in rows:
        assert row["answerable"] == bool(row["answers"]), row["id"]
        for gold in row["answers"]:
            assert gold["quote"] in (SEEDS / gold["source"]).read_text("utf-8"), row["id"]


def test_readme_example_output_is_what_ask_prints(cli_env: dict) -> None:
    readme = (PROJECT / "README.md").read_text("utf-8").splitlines()
    at = next(i for i, line in enumerate(readme) if line.startswith("$ qabot ask "))
    command = shlex.split(readme[at].removeprefix("$ "))
    expected = readme[at + 1 : at + 4]  # the confidence line, the first passage and its citation
    assert expected[2].startswith("    — ")
    result = run(cli_env, *command[1:])
    assert result.returncode == 0, result.stderr
    printed = result.stdout.splitlines()
    assert printed[:3] == expected


# --- the Discord bot from the command line --------------------------------------------------------------


def token_for(application_id: int) -> str:
    """A token-shaped value: base64 of the id, then two made-up parts (never a real token)."""
    return base64.b64encode(str(application_id).encode()).decode().rstrip("=") + ".GhIjKl.not-a-real-secret-part"


def test_invite_url_carries_the_scopes_and_the_computed_permissions(cli_env: dict) -> None:
    application_id = 1_234_567_890_123_456_789
    token = token_for(application_id)
    result = run({**cli_env, "DISCORD_TOKEN": token}, "bot", "--invite-url")
    assert result.returncode == 0, result.stderr
    assert token not in result.stdout + result.stderr
    url = urlsplit(result.stdout.strip())
    query = parse_qs(url.query)
    assert (url.scheme, url.netloc, url.path) == ("https", "discord.com", "/oauth2/authorize")
    assert query["client_id"] == [str(application_id)]
    assert query["scope"] == ["bot applications.commands"]
    assert query["permissions"] == [str(bot_permissions().value)]
    granted = discord.Permissions(int(query["permissions"][0]))
    assert granted.view_channel and granted.send_messages and granted.send_messages_in_threads
    assert granted.embed_links and granted.read_message_history
    assert not (granted.administrator or granted.mention_everyone or granted.manage_messages)


def test_invite_url_takes_an_application_id_without_a_token(cli_env: dict, capsys: pytest.CaptureFixture) -> None:
    os.environ.pop("DISCORD_TOKEN", None)
    assert main(["bot", "--invite-url", "--application-id", "42"]) == 0
    assert parse_qs(urlsplit(capsys.readouterr().out.strip()).query)["client_id"] == ["42"]
    assert main(["bot", "--invite-url"]) == 2
    assert_one_line_error(capsys.readouterr().err, "pass --application-id ID")


@pytest.mark.parametrize(
    "token",
    ["not-a-token", "a.b", "@@@@.GhIjKl.secretpart", "bm90LWRpZ2l0cw.GhIjKl.secretpart", f'"{token_for(42)}"',
     f"'{token_for(42)}'"],
)
def test_invite_url_with_a_malformed_token_is_one_line(token: str, cli_env: dict) -> None:
    result = run({**cli_env, "DISCORD_TOKEN": token}, "bot", "--invite-url")
    assert result.returncode == 2 and result.stdout == ""
    assert_one_line_error(result.stderr, "DISCORD_TOKEN does not look like a Discord bot token")
    assert token not in result.stderr


@pytest.mark.parametrize("token", [f'"{token_for(42)}"', "bm90LWRpZ2l0cw.GhIjKl.secretpart"])
def test_bot_check_rejects_the_tokens_invite_url_rejects(token: str, cli_env: dict) -> None:
    invite = run({**cli_env, "DISCORD_TOKEN": token}, "bot", "--invite-url")
    check = run({**cli_env, "DISCORD_TOKEN": token}, "bot", "--check")
    assert invite.returncode == check.returncode == 2 and token not in invite.stderr + check.stderr
    problem = invite.stderr.removeprefix("qabot: error: ").removesuffix("; or pass --application-id ID\n")
    assert check.stderr == f"qabot bot: missing or wrong: {problem}\n"


def test_bot_py_takes_every_option_qabot_bot_takes(cli_env: dict, tmp_path: Path) -> None:
    env = {**cli_env, "DISCORD_TOKEN": token_for(42)}
    result = subprocess.run([sys.executable, "bot.py", "--corpus", "seeds", "--check"], capture_output=True,
                            text=True, env=env, cwd=PROJECT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "settings look fine (corpus seeds," in result.stdout
    missing = subprocess.run([sys.executable, "bot.py", "--corpus", str(tmp_path / "nope"), "--check"],
                             capture_output=True, text=True, env=env, cwd=PROJECT, timeout=60)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_readme_gives_the_permissions_integer_the_code_computes() -> None:
    readme = (PROJECT / "README.md").read_text("utf-8")
    assert f"permissions={bot_permissions().value}" in readme


def test_a_path_under_an_unknown_users_home_is_a_clear_error(cli_env: dict) -> None:
    shown = run(cli_env, "show", "~no-such-user-qabot/a.txt:1")
    assert shown.returncode == 2 and "no such user's home folder" in shown.stderr and "Traceback" not in shown.stderr
    corpus = run(cli_env, "ask", "--corpus", "~no-such-user-qabot/news", "peace")
    assert corpus.returncode == 2 and "user that does not exist" in corpus.stderr and "Traceback" not in corpus.stderr
