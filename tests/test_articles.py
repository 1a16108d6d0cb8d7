"""A folder of one's own articles end to end: .txt and .md side by side, titles as metadata, every other file named."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import qabot.store
from qabot.cli import main
from qabot.frontend import answerer_for
from tests.conftest import settings_for

ARTICLES = {
    "tram.txt": " date 2024-03-14 Tram service suspended after overhead wire fault\n\n"
    "The tram service was suspended on Monday because an overhead wire snapped near the depot.\n\n"
    "Engineers replaced the wire overnight and trams ran again on Tuesday.\n",
    "bridge.txt": "Harbour bridge opens to cyclists\n2024-05-01\n\n"
    "The harbour bridge opened to cyclists on Wednesday after two years of work.\n",
    "library.md": "---\ntitle: City library extends its opening hours\ndate: 2024-06-02\n"
    "url: https://news.example.com/library-hours\nauthor: Bo Chen\n---\n\n"
    "# City library extends its opening hours\n\n"
    "<!-- saved from the web -->\n"
    "The **city library** will stay open until nine in the evening from June,\n"
    "the council said on Friday.\n\n"
    "| day | hours |\n|---|---|\n| Monday | 9-21 |\n\n"
    "- Reading rooms get forty new seats.\n",
    "notes/ferry.markdown": "# Ferry timetable changes\n\n"
    "Ferries to the island will leave every twenty minutes from Monday, the operator announced.\n",
}
TITLES = {
    "Tram service suspended after overhead wire fault", "Harbour bridge opens to cyclists",
    "City library extends its opening hours", "Ferry timetable changes",
}  # fmt: skip
QUESTIONS = {
    "Why was the tram service suspended?": "an overhead wire snapped",
    "When did the harbour bridge open to cyclists?": "on Wednesday",
    "Until when will the city library stay open?": "until nine in the evening",
    "How often will ferries leave for the island?": "every twenty minutes",
}


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The articles above plus files that are not articles, in tmp_path/corpus; env points qabot at it."""
    root = tmp_path / "corpus"
    for name, text in ARTICLES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    (root / "notes.docx").write_bytes(b"PK\x03\x04 not an article")
    (root / "photos").mkdir()
    (root / "photos" / "depot.jpg").write_bytes(b"\xff\xd8\xff")
    (root / ".hidden.txt").write_text("Hidden article.\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "broken.md").write_text("---\ndate: last week\n---\nThe text.\n", encoding="utf-8")
    for key in list(os.environ):
        if key.startswith("QABOT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("QABOT_CORPUS", str(root))
    monkeypatch.setenv("QABOT_CACHE_DIR", str(root / "index-cache"))  # inside the corpus, not hidden
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    return root


def test_index_names_every_file_it_skips_and_why(corpus, capsys):
    assert main(["index"]) == 0
    out, err = capsys.readouterr()
    assert "4 articles" in out and "3 files skipped:" in out
    assert "  notes.docx: not a supported format (.txt, .md); import web pages and dumps with qabot add" in out
    assert "  photos/depot.jpg: not a supported format (.txt, .md)" in out
    assert "  broken.md: date 'last week' is not an ISO date" in out
    assert "skipped notes.docx: not a supported format" in err, "named as a warning when first met"
    assert main(["index", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["articles"] == 4 and stats["action"] == "loaded"
    assert [s["path"] for s in stats["skipped"]] == ["broken.md", "notes.docx", "photos/depot.jpg"]
    assert all(s["reason"] for s in stats["skipped"])
    listed = json.dumps(stats)
    for unlisted in (".hidden.txt", ".git", "index-cache", "CURRENT", ".npy"):
        assert unlisted not in listed, unlisted


def test_titles_are_shown_with_passages_but_never_answer(corpus, tmp_path):
    answerer = answerer_for(settings_for(corpus, tmp_path / "cache"))
    for question, expected in QUESTIONS.items():
        answer = answerer.ask(question, 5)
        assert not answer.abstained, question
        first = answer.passages[0]
        assert expected in first.text, (question, first.text)
        assert first.title in TITLES
        assert all(p.text not in TITLES for p in answer.passages), question
    [library] = [p for p in answerer.ask("city library opening hours", 5).passages if "nine" in p.text]
    assert (library.date, library.url) == ("2024-06-02", "https://news.example.com/library-hours")
    assert library.text == (
        "The **city library** will stay open until nine in the evening from June,\nthe council said on Friday."
    )
    tram = answerer.ask("Why was the tram service suspended?", 3).passages[0]
    assert (tram.title, tram.date, tram.url) == ("Tram service suspended after overhead wire fault", "2024-03-14", None)


def test_markdown_passages_are_cited_shown_and_verified_exactly(corpus, tmp_path, capsys):
    assert main(["ask", "--json", "Until when will the city library stay open?"]) == 0
    out = capsys.readouterr().out
    answer = json.loads(out)
    for passage in answer["passages"]:
        text = Path(passage["source"]).read_text(encoding="utf-8")
        assert text[passage["start"] : passage["end"]] == passage["text"]
        assert not passage["text"].startswith(("-", "#", "|", "<!--", "---"))
    first = answer["passages"][0]
    assert main(["show", f"{first['source']}:{first['line']}:{first['column']}"]) == 0
    shown = capsys.readouterr().out
    assert "City library extends its opening hours, 2024-06-02" in shown and "»The **city library**" in shown
    (tmp_path / "answer.json").write_text(out, encoding="utf-8")
    assert main(["verify", str(tmp_path / "answer.json")]) == 0
    assert "CHANGED" not in capsys.readouterr().out
    assert main(["ask", "--json", "2024-06-02"]) == 1, "a date in the metadata is no passage"


def test_an_index_of_the_previous_version_is_rebuilt_with_a_note(corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(qabot.store, "VERSION", qabot.store.VERSION - 1)
    assert main(["index"]) == 0
    monkeypatch.undo()
    monkeypatch.setenv("QABOT_CORPUS", str(corpus))
    monkeypatch.setenv("QABOT_CACHE_DIR", str(corpus / "index-cache"))
    capsys.readouterr()
    assert main(["index"]) == 0
    out, err = capsys.readouterr()
    assert "index built" in out
    notes = [line for line in err.splitlines() if "another version of qabot" in line]
    assert len(notes) == 1 and notes[0].endswith("rebuilding it")
    answerer = answerer_for(settings_for(corpus, corpus / "index-cache"))
    [library] = [p for p in answerer.ask("city library opening hours", 5).passages if "nine" in p.text]
    assert library.url == "https://news.example.com/library-hours"
