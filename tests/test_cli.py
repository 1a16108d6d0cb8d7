"""End to end: the `qabot` command's output, exit codes and one-line errors (in-process and as a real process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qabot.cli import main
from qabot.config import Settings
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


def test_show_help_documents_both_citation_forms(cli_env: dict, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["show", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "PATH:LINE" in out and "PATH:START-END" in out


# --- ask ----------------------------------------------------------------------------------------


def test_ask_text_prints_numbered_cited_passages(cli_env: dict, capsys: pytest.CaptureFixture) -> None:
    assert main(["ask", "Who is Louis Bono?"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[1] “") and "\n[2] “" in out
    assert "— seeds/000_9ad8541396ee1ed9.txt:3  (" in out
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
    assert [obj["question"] for obj in objects] == questions
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
        ("seeds/003_b5d4c7ccf50ad595.txt:3000-90000", "not a span of the file"),
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
    assert good.stdout.count("\nOK       corpus/") == 5 and good.stdout.endswith("6 citations checked: 6 OK\n")

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
