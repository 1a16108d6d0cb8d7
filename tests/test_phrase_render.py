"""The answer phrase as users see it: the CLI's first line, JSON's "answer", the Discord embed, `qabot verify`."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from qabot.cite_verify import verify_saved_output
from qabot.cli import main
from qabot.discord_render import answer_embed
from qabot.model import Answer
from qabot.phrase import phrase_in_passage
from qabot.render import BOLD, RESET, UNDERLINE, answer_json, render_text
from tests.conftest import PROJECT, SEEDS

PHRASE = "senior advisor for Caucasus negotiations"


@pytest.fixture(scope="module")
def bono(answerer) -> Answer:
    """The seeds' answer to "Who is Louis Bono?" with the phrase a reader looks for marked in its first passage
    (set here, so the rendering is tested whatever the fitted model shows)."""
    answer = answerer.ask("Who is Louis Bono?")
    passage = next(p for p in answer.passages if PHRASE in p.text)
    at = passage.text.index(PHRASE)
    answer = replace(answer, passages=(passage, *(p for p in answer.passages if p is not passage)))
    return replace(answer, phrase=phrase_in_passage(passage, at, at + len(PHRASE), 0.72))


def test_text_opens_with_the_answer_phrase_and_its_probability(bono, monkeypatch):
    monkeypatch.chdir(PROJECT)
    lines = render_text(bono).splitlines()
    assert lines[0] == f"Answer: {PHRASE} (72%)"
    assert lines[2].startswith("[1] ") and PHRASE in lines[2]  # the passage itself is as the file has it
    assert "\x1b[" not in "\n".join(lines)


def test_color_makes_the_phrase_bold_and_underlines_it_in_its_passage(bono):
    lines = render_text(bono, color=True).splitlines()
    assert lines[0] == f"Answer: {BOLD}{PHRASE}{RESET} (72%)"
    assert UNDERLINE in lines[2] and lines[2].index(UNDERLINE) < lines[2].index("Caucasus")
    assert UNDERLINE not in "\n".join(lines[3:])  # only the first passage holds the phrase


def test_no_phrase_no_answer_line(bono):
    assert not render_text(replace(bono, phrase=None)).startswith("Answer:")
    assert answer_json(replace(bono, phrase=None))["answer"] is None


def test_json_answer_has_text_offsets_line_column_and_probability(bono, monkeypatch):
    monkeypatch.chdir(PROJECT)
    data = answer_json(bono)
    phrase = data["answer"]
    assert list(phrase) == ["text", "start", "end", "line", "column", "probability"]
    assert phrase["text"] == PHRASE and phrase["probability"] == 0.72
    file_text = Path(data["passages"][0]["source"]).read_text(encoding="utf-8")
    assert file_text[phrase["start"] : phrase["end"]] == PHRASE
    assert file_text.split("\n")[phrase["line"] - 1][phrase["column"] - 1 :].startswith(PHRASE)


def test_discord_embed_opens_with_the_phrase_in_bold(bono):
    embed = answer_embed(bono)
    assert embed.description.startswith(f"**{PHRASE}** (72%)\n\n> ")
    assert len(embed) <= 6000


def test_verify_checks_the_phrase_offsets(bono, corpus_copy: Path, tmp_path: Path):
    saved = tmp_path / "answer.json"
    data = answer_json(bono, SEEDS)  # sources relative to the corpus root, read in its copy
    saved.write_text(json.dumps(data), encoding="utf-8")
    result = verify_saved_output(corpus_copy, saved, cwd=corpus_copy)
    assert result.all_ok
    first = result.report.splitlines()[0]
    span = f":{data['answer']['start']}-{data['answer']['end']}"
    assert first.startswith("OK       answer ") and first.endswith(span)
    data["answer"]["start"] += 1  # the phrase no longer names its text
    saved.write_text(json.dumps(data), encoding="utf-8")
    result = verify_saved_output(corpus_copy, saved, cwd=corpus_copy)
    assert not result.all_ok and result.counts["CHANGED"] == 1
    assert "CHANGED  answer " in result.report and "text at these offsets differs" in result.report


def test_verify_refuses_a_malformed_phrase(bono, corpus_copy: Path, tmp_path: Path, capsys):
    saved = tmp_path / "answer.json"
    data = answer_json(bono, SEEDS)
    data["answer"] = {"text": PHRASE, "start": "12"}
    saved.write_text(json.dumps(data), encoding="utf-8")
    code = main(["verify", "--corpus", str(corpus_copy), str(saved)])
    assert code == 2 and "not an answer from 'qabot ask --json'" in capsys.readouterr().err


def test_ask_json_always_has_the_answer_field_and_its_offsets_hold(seeds_settings, capsys, monkeypatch):
    for key in [key for key in os.environ if key.startswith("QABOT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("QABOT_CACHE_DIR", str(seeds_settings.index_dir))
    monkeypatch.chdir(PROJECT)
    for question in ("Where did the US host the peace talks?", "Who is Louis Bono?", "When did the talks start?"):
        assert main(["ask", "--json", question]) == 0
        data = json.loads(capsys.readouterr().out)
        assert "answer" in data
        if data["answer"] is not None:
            source = Path(data["passages"][0]["source"]).read_text(encoding="utf-8")
            assert source[data["answer"]["start"] : data["answer"]["end"]] == data["answer"]["text"]
        assert main(["ask", question]) == 0
        first = capsys.readouterr().out.splitlines()[0]
        assert first.startswith("Answer: ") == (data["answer"] is not None)
