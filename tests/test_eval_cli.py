"""End to end: `qabot eval` on JSON lines and on SQuAD JSON files (a temporary corpus), with one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from qabot.cli import main
from qabot.eval_set import open_eval_set
from qabot.evaluate import evaluate
from qabot.frontend import answerer_for
from tests.conftest import DEV_SET, PROJECT, settings_for
from tests.test_squad import SQUAD_DEV, needs_squad_dev

ARTICLES = [
    {
        "title": "Glimmerbrook",
        "paragraphs": [
            {
                "context": "The Glimmerbrook is a small river in the county of Vellmoor. "
                "The Glimmerbrook is 42 kilometres long and flows into Lake Ostra.",
                "qas": [
                    {"id": "g1", "question": "How long is the Glimmerbrook?", "is_impossible": False,
                     "answers": [{"text": "42 kilometres", "answer_start": 82}]},
                    {"id": "g2", "question": "How long is the small Glimmerbrook river of the county of Vellmoor?",
                     "is_impossible": True, "answers": [],
                     "plausible_answers": [{"text": "Vellmoor", "answer_start": 51}]},
                ],
            },
        ],
    },
    {
        "title": "Anna_Pell_(surveyor)",
        "paragraphs": [
            {"context": "Anna Pell was a surveyor who founded the town of Pellsford.", "qas": []},
            {
                "context": "Anna Pell first mapped the Glimmerbrook in 1821. She sold the maps to the Vellmoor guild.",
                "qas": [
                    {"id": "p1", "question": "When did Anna Pell first map the Glimmerbrook?",
                     "is_impossible": False, "answers": [{"text": "1821", "answer_start": 42}]},
                ],
            },
        ],
    },
]  # fmt: skip
OUTSIDE = [
    {
        "title": "Quenton_Harbour_Bridge",
        "paragraphs": [
            {
                "context": "The Quenton Harbour Bridge was designed by Oskar Thrane.",
                "qas": [
                    {"id": "o1", "question": "Who designed the Quenton Harbour Bridge?",
                     "answers": [{"text": "Oskar Thrane", "answer_start": 43}]},
                ],
            }
        ],
    }
]  # fmt: skip


@pytest.fixture
def squad_files(tmp_path: Path) -> tuple[Path, Path]:
    """A SQuAD v2.0 eval file and a v1.1 file about another article, both real files in tmp_path."""
    squad = tmp_path / "tiny-squad.json"
    squad.write_text(json.dumps({"version": "v2.0", "data": ARTICLES}), encoding="utf-8")
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"version": "1.1", "data": OUTSIDE}), encoding="utf-8")
    return squad, outside


@pytest.fixture
def eval_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Project root as working folder, QABOT_* ignored, temporary folders made in (and checked from) tmp_path/tmp."""
    for key in list(os.environ):
        if key.startswith("QABOT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("QABOT_CACHE_DIR", str(tmp_path / "seeds-cache"))
    monkeypatch.chdir(PROJECT)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    return temporary


def figure(out: str, label: str) -> str:
    (line,) = [line for line in out.splitlines() if line.startswith(label)]
    return line[len(label) :].strip()


def test_eval_of_a_squad_file_with_outside_questions(squad_files, eval_env, capsys):
    squad, outside = squad_files
    assert main(["eval", str(squad), "--outside", str(outside)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("questions: 4 (2 answerable, 2 unanswerable)\n")
    assert figure(out, "R@1:") == "1.000" and figure(out, "R@3:") == "1.000" and figure(out, "MRR@10:") == "1.000"
    assert figure(out, "false abstention rate:") == "0.000 (0 of 2 answerable)"
    kinds = out.split("abstention by kind:\n")[1].split("\nECE")[0].split("\n")
    assert [line.split()[0] for line in kinds] == ["adversarial", "answerable", "out-of-corpus"]
    assert kinds[1].split()[1:] == ["0.000", "(0", "of", "2)"]
    assert kinds[2].split()[1:] == ["1.000", "(1", "of", "1)"], "a question about another article is refused"
    assert "ECE: " in out and "  confidence      count  mean conf.  accuracy" in out
    assert "miss " not in out, "misses are listed only with --misses"
    assert list(eval_env.iterdir()) == [], "the temporary corpus and index cache are removed"


def test_misses_lists_a_shown_adversarial_answer(squad_files, eval_env, capsys):
    squad, _ = squad_files
    assert main(["eval", str(squad), "--misses"]) == 0
    out = capsys.readouterr().out
    misses = [line for line in out.splitlines() if line.startswith("miss ")]
    # g2 repeats the article's words, so a lexical answerer shows an answer; whichever it does, the list follows
    shown = figure(out, "  adversarial") == "0.000 (0 of 1)"
    assert [line.split()[1] for line in misses] == (["g2"] if shown else [])
    for line in misses:
        assert line.startswith("miss g2 (answered, should abstain: adversarial; top: glimmerbrook.txt:")
        assert out.index("ECE: ") < out.index(line), "the figures come first"


def test_squad_eval_answers_from_the_article_files(squad_files, tmp_path):
    squad, _ = squad_files
    with open_eval_set(squad) as eval_set:
        settings = eval_set.settings_for(settings_for(PROJECT / "seeds", tmp_path / "unused"))
        assert settings.corpus == eval_set.corpus and settings.index_dir == eval_set.cache_dir
        report = evaluate(eval_set.items, answerer_for(settings).ask, 10)
        sources = {r.item.id: r.answer.passages[0].location.source for r in report.results if r.rank == 1}
        first = report.results[0].answer.passages[0]
        text = (eval_set.corpus / first.location.source).read_text(encoding="utf-8")
        assert text[first.location.start : first.location.end] == first.text, "citations stay exact"
    assert sources == {"g1": "glimmerbrook.txt", "p1": "anna_pell_surveyor.txt"}


def test_a_jsonl_eval_still_uses_the_corpus(eval_env, capsys):
    if not DEV_SET.is_file():
        pytest.skip("../shared/eval/dev.jsonl is not present")
    assert main(["eval", str(DEV_SET), "--corpus", "seeds"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("questions: 30 (25 answerable, 5 unanswerable)\n")
    assert float(figure(out, "R@1:")) >= 0.88
    assert "labels (shown answers" in out and "  Likely answer " in out, "each label's share and precision"


def test_corpus_flag_with_a_squad_file_is_reported_as_unused(squad_files, eval_env, capsys):
    squad, _ = squad_files
    assert main(["eval", str(squad), "--corpus", "seeds"]) == 0
    assert "--corpus is not used" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"version": "v2.0", "data": [{"title": "T", "paragraphs": [{"context": "c", "qas": []}]}]}',
         "holds no questions"),
        ('{"version": "v2.0", "data": [{"title": "T", "paragraphs": [{"qas": []}]}]}',
         'data[0].paragraphs[0] has no "context" string'),
        ('{"version": "v2.0", "data": [', "not valid JSON"),
    ],
)  # fmt: skip
def test_bad_squad_files_get_one_line_errors(tmp_path, eval_env, content, fragment):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "qabot.cli", "eval", str(path)],
        capture_output=True, text=True, encoding="utf-8", env=dict(os.environ), cwd=PROJECT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("qabot: error: ") and "Traceback" not in done.stderr
    assert str(path) in done.stderr and fragment in done.stderr


def test_outside_articles_that_are_in_the_eval_file_are_refused(squad_files, eval_env, capsys):
    squad, _ = squad_files
    assert main(["eval", str(squad), "--outside", str(squad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "also in the eval file: Anna Pell (surveyor), Glimmerbrook" in err


@needs_squad_dev
def test_the_public_rhine_and_sky_file_scores_both_articles(eval_env, tmp_path, capsys):
    squad = SQUAD_DEV / "squad2-dev-rhine-sky.json"
    assert main(["eval", str(squad)]) == 0
    out = capsys.readouterr().out
    # Rhine: 290 answerable, 208 impossible; Sky: 108 answerable, 102 impossible.
    assert out.startswith("questions: 708 (398 answerable, 310 unanswerable)\n")
    assert figure(out, "  adversarial").endswith("of 310)") and figure(out, "  answerable").endswith("of 398)")
    assert list(eval_env.iterdir()) == []
    with open_eval_set(squad) as eval_set:
        settings = eval_set.settings_for(settings_for(PROJECT / "seeds", tmp_path / "unused"))
        report = evaluate(eval_set.items, answerer_for(settings).ask, 10)
    hit_files = {r.answer.passages[0].location.source for r in report.results if r.rank == 1}
    assert hit_files == {"rhine.txt", "sky_united_kingdom.txt"}
    assert report.recall_at_3 >= report.recall_at_1 > 0.5
