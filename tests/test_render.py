"""Renderings: text with citations, ANSI emphasis on terminals only, JSON per docs/json.md."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest

from qabot.model import Answer
from qabot.render import (
    answer_json,
    citation,
    confidence_label,
    emphasise,
    render_text,
    span_citation,
    terminal_width,
    use_color,
)
from tests.conftest import PROJECT


def test_text_rendering_numbers_passages_with_citations(answerer, monkeypatch):
    monkeypatch.chdir(PROJECT)
    answer = answerer.ask("Who is Louis Bono?")
    text = render_text(answer)
    first = answer.passages[0]
    head = f"{confidence_label(answer)}:\n[1] {first.text}\n    — {citation(first.location)}  ("
    phrase = f"Answer: {answer.phrase.text} ({answer.phrase.probability:.0%})\n" if answer.phrase else ""
    assert text.startswith(phrase + head)
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
    assert list(data) == ["question", "abstained", "reason", "confidence", "label", "passages", "answer"]
    assert 0.0 <= data["confidence"] <= 1.0
    first = data["passages"][0]
    assert list(first) == [
        "text", "source", "start", "end", "line", "column", "end_line", "score", "matched_terms",
        "context_before", "context_after", "also_in", "sha256", "url",
    ]  # fmt: skip
    assert first["url"] is None  # the seeds are plain .txt files: no web address
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


# --- links back to the article, and text that fits the terminal ---------------------------------------------

ARTICLE_URL = "https://example.org/news/2024/03/14/tram-service-suspended-after-overhead-wire-fault-in-the-city-centre"


def with_url(answer: Answer, url: str | None = ARTICLE_URL) -> Answer:
    """The answer as an article with a web address gives it: every passage carries the url."""
    return dataclasses.replace(answer, passages=tuple(dataclasses.replace(p, url=url) for p in answer.passages))


def test_the_article_url_is_printed_whole_under_the_citation_and_carried_in_json(answerer, monkeypatch):
    monkeypatch.chdir(PROJECT)
    answer = with_url(answerer.ask("Who is Louis Bono?"))
    lines = render_text(answer).splitlines()
    first = answer.passages[0]
    at = lines.index(f"[1] {first.text}")
    assert lines[at + 1].startswith(f"    — {citation(first.location)}  (")
    assert lines[at + 2] == f"      {ARTICLE_URL}"
    data = answer_json(answer)
    assert [p["url"] for p in data["passages"]] == [ARTICLE_URL] * len(answer.passages)
    assert "\n      https://" not in render_text(answerer.ask("Who is Louis Bono?"))  # no url, no line


@pytest.mark.parametrize("width", [40, 60, 80])
def test_text_wraps_at_spaces_to_the_width_and_keeps_citations_and_urls_whole(answerer, monkeypatch, width):
    monkeypatch.chdir(PROJECT)
    answer = with_url(answerer.ask("Who is Louis Bono?"))
    lines = render_text(answer, width=width).splitlines()
    whole = {f"    — {citation(p.location)}" for p in answer.passages} | {f"      {ARTICLE_URL}"}
    for line in lines:
        assert len(line) <= width or line in whole or len(line.split()) == 1 + line.startswith("["), line
    assert whole <= set(lines)  # each citation and url on a line of its own, never cut
    for number, passage in enumerate(answer.passages, 1):  # every word of the passage whole, in order
        start = lines.index(next(line for line in lines if line.startswith(f"[{number}] ")))
        end = lines.index(f"    — {citation(passage.location)}", start)
        shown = " ".join(line.strip() for line in lines[start:end]).removeprefix(f"[{number}] ")
        assert shown.split() == passage.text.split()


def test_text_is_not_wrapped_without_a_width_and_colour_survives_wrapping(answerer, monkeypatch):
    monkeypatch.chdir(PROJECT)
    answer = answerer.ask("Who is Louis Bono?")
    assert render_text(answer, width=None) == render_text(answer)
    assert max(map(len, render_text(answer).splitlines())) > 200  # piped output stays one line a passage
    coloured = render_text(answer, color=True, width=50)
    assert "\x1b[1mBono\x1b[0m" in coloured
    plain = coloured
    for code in ("\x1b[1m", "\x1b[0m", "\x1b[4m", "\x1b[22m"):  # bold, reset, the phrase's underline and its end
        plain = plain.replace(code, "")
    assert render_text(answer, width=50) == plain


def test_terminal_width_only_for_terminals(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("COLUMNS", "57")
    assert terminal_width(Tty()) == 57 and terminal_width(io.StringIO()) is None
    monkeypatch.setenv("COLUMNS", "3")
    assert terminal_width(Tty()) == 20  # no terminal is worth a word a line


def test_saved_text_with_article_urls_still_verifies(answerer, monkeypatch, tmp_path):
    from qabot.cite_verify import verify_saved_output

    monkeypatch.chdir(PROJECT)
    saved = tmp_path / "answer.txt"
    saved.write_text(render_text(with_url(answerer.ask("Who is Louis Bono?"))) + "\n", "utf-8")
    result = verify_saved_output(answerer.root, saved, cwd=PROJECT)
    assert result.all_ok and result.report.endswith("3 citations checked: 3 OK")
