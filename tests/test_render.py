"""Renderings: text with citations, ANSI emphasis on terminals only, JSON per DESIGN.md."""

from __future__ import annotations

import io
import json
from pathlib import Path

from qabot.render import answer_json, citation, confidence_label, emphasise, render_text, span_citation, use_color
from tests.conftest import PROJECT


def test_text_rendering_numbers_passages_with_citations(answerer, monkeypatch):
    monkeypatch.chdir(PROJECT)
    answer = answerer.ask("Who is Louis Bono?")
    text = render_text(answer)
    first = answer.passages[0]
    head = f"{confidence_label(answer.confidence)}:\n[1] {first.text}\n    — {citation(first.location)}  ("
    assert text.startswith(head)
    assert "[3]" in text
    assert "\x1b[" not in text


def test_color_emphasises_matched_words_only_on_terminals():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert use_color(Tty(), {}) and not use_color(Tty(), {"NO_COLOR": "1"}) and not use_color(io.StringIO(), {})
    assert emphasise("Talks on the talk", ("talks",), "<", ">") == "<Talks> on the <talk>"


def test_json_follows_the_design_schema(answerer, monkeypatch):
    monkeypatch.chdir(PROJECT)
    data = answer_json(answerer.ask("Where did EU foreign ministers meet?"))
    assert list(data) == ["question", "abstained", "reason", "confidence", "passages", "answer"]
    assert 0.0 <= data["confidence"] <= 1.0
    first = data["passages"][0]
    assert list(first) == [
        "text", "source", "start", "end", "line", "column", "end_line", "score", "matched_terms",
        "context_before", "context_after", "also_in", "sha256",
    ]  # fmt: skip
    assert first["source"] == "seeds/001_0d1f7e7e4da08d96.txt"
    file_text = Path(first["source"]).read_text(encoding="utf-8")
    assert file_text[first["start"] : first["end"]] == first["text"]
    json.dumps(data)


def test_sources_outside_the_current_folder_are_absolute(answerer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = answer_json(answerer.ask("Where did EU foreign ministers meet?"))
    assert Path(data["passages"][0]["source"]).is_absolute()


def test_citation_forms(answerer, monkeypatch):
    monkeypatch.chdir(PROJECT)
    location = answerer.ask("Yerevan denied the charges", 1).passages[0].location
    assert citation(location) == "seeds/003_b5d4c7ccf50ad595.txt:25:1"
    assert span_citation(location) == f"seeds/003_b5d4c7ccf50ad595.txt:{location.start}-{location.end}"
