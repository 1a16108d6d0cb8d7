"""Helpers shared by the sharded-index tests: a generated corpus, `qabot` processes, reference answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from qabot.frontend import answerer_for
from qabot.render import render_json
from tests.conftest import DEV_SET, MAKE_CORPUS, PROJECT, settings_for


@dataclass(frozen=True)
class Generated:
    """A make_corpus corpus, questions made from its sentences, and the single index's JSON answers."""

    corpus: Path
    questions: tuple[str, ...]
    reference: tuple[str, ...]


def generate(base: Path, sentences: int, n_questions: int) -> Generated:
    if not MAKE_CORPUS.is_file():
        pytest.skip(f"{MAKE_CORPUS} is absent (it is in ../shared, beside the repository)")
    corpus, questions_file = base / "corpus", base / "questions.txt"
    subprocess.run([sys.executable, str(MAKE_CORPUS), "--out", str(corpus), "--sentences", str(sentences),
                    "--n-queries", str(n_questions), "--answerable-queries", str(questions_file)],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    questions = tuple(line for line in questions_file.read_text("utf-8").splitlines() if line.strip())
    single = answerer_for(settings_for(corpus, base / "single-cache"))
    return Generated(corpus, questions, tuple(render_json(single.ask(q)) for q in questions))


def dev_questions() -> list[str]:
    return [json.loads(line)["question"] for line in DEV_SET.read_text("utf-8").splitlines() if line.strip()]


def qabot_env(corpus: Path, cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_")}
    env.update(QABOT_CORPUS=str(corpus), QABOT_CACHE_DIR=str(cache), NO_COLOR="1", **extra)
    return env


def run_qabot(env: dict[str, str], *args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qabot.cli", *args], input=stdin, capture_output=True, text=True,
                          encoding="utf-8", env=env, cwd=PROJECT, timeout=timeout)  # fmt: skip


def batch_json(env: dict[str, str], questions: list[str] | tuple[str, ...], *args: str) -> list[str]:
    """The JSON lines of one `qabot ask --json -` process over questions (exit 0 asserted)."""
    result = run_qabot(env, "ask", "--json", *args, "-", stdin="".join(f"{q}\n" for q in questions))
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()
