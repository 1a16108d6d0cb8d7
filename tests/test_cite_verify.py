"""`qabot verify`: saved answers (JSON or text, in every citation form) re-checked; stale ones are caught,
outside paths refused unread."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from qabot.answer import Answerer
from qabot.cite_verify import verify_saved_output
from qabot.errors import CitationError
from qabot.frontend import answerer_for
from qabot.render import answer_json, citation, render_text
from tests.conftest import PROJECT, SEEDS, settings_for
from tests.test_cite import SECRET, SEED_003, write_outside_secret


@pytest.fixture
def outside_file(tmp_path: Path) -> Path:
    return write_outside_secret(tmp_path)


def save_answers(corpus: Path, cache: Path, questions: list[str], target: Path, cwd: Path, pretty=False) -> None:
    answerer = answerer_for(settings_for(corpus, cache))
    objects = [answer_json(answerer.ask(question), cwd) for question in questions]
    if pretty:
        target.write_text(json.dumps(objects[0], indent=2, ensure_ascii=False), encoding="utf-8")
    else:
        target.write_text("".join(json.dumps(obj) + "\n" for obj in objects), encoding="utf-8")


QUESTIONS = ["who is pashinian", "Who is Louis Bono?", "what is the weather on mars"]


def cited(saved: Path) -> int:
    """Citations in saved JSON output: each passage, each wire copy, each answer phrase."""
    text = saved.read_text(encoding="utf-8")
    lines = text.splitlines()
    objects = [json.loads(text)] if text.lstrip().startswith("{\n") else [json.loads(line) for line in lines]
    return sum(
        len(obj["passages"]) + sum(len(p["also_in"]) for p in obj["passages"]) + (obj.get("answer") is not None)
        for obj in objects
    )


def test_verify_fresh_output_is_all_ok(corpus_copy: Path, tmp_path: Path) -> None:
    saved = tmp_path / "answers.jsonl"
    save_answers(corpus_copy, tmp_path / "cache", QUESTIONS, saved, tmp_path)
    result = verify_saved_output(corpus_copy, saved, cwd=tmp_path)
    lines = result.report.splitlines()
    count = cited(saved)
    assert count >= 6 and result.all_ok and result.counts["OK"] == count
    assert all(line.startswith("OK       ") and "corpus/" in line for line in lines[:-1])
    assert lines[-1] == f"{count} citations checked: {count} OK"


def test_verify_reads_pretty_json_and_falls_back_to_root_relative_sources(corpus_copy: Path, tmp_path: Path) -> None:
    saved = tmp_path / "answer.json"
    # sources written relative to the corpus root, verified from a different folder
    save_answers(corpus_copy, tmp_path / "cache", QUESTIONS[:1], saved, corpus_copy, pretty=True)
    assert saved.read_text().count("\n") > 10
    result = verify_saved_output(corpus_copy, saved, cwd=PROJECT)
    assert result.all_ok and result.counts["OK"] == cited(saved) >= 3


def test_verify_detects_changed_text_sha_and_missing_files(corpus_copy: Path, tmp_path: Path) -> None:
    saved = tmp_path / "answers.jsonl"
    save_answers(corpus_copy, tmp_path / "cache", QUESTIONS[:2], saved, tmp_path)
    first = json.loads(saved.read_text().splitlines()[0])["passages"][0]
    tampered = corpus_copy / Path(first["source"]).name
    text = tampered.read_text("utf-8")
    tampered.write_text(text[: first["start"]] + "X" + text[first["start"] + 1 :], encoding="utf-8")
    (corpus_copy / "000_9ad8541396ee1ed9.txt").unlink()  # cited by the Bono answer
    result = verify_saved_output(corpus_copy, saved, cwd=tmp_path)
    lines = result.report.splitlines()
    assert not result.all_ok
    changed = (
        f"CHANGED  {first['source']}:{first['start']}-{first['end']}: "
        "text at these offsets differs; file sha256 differs"
    )
    assert changed in lines
    assert any(line.startswith("MISSING  corpus/000_9ad8541396ee1ed9.txt:") for line in lines)
    assert result.counts["CHANGED"] >= 3  # every passage of the tampered file: its sha changed
    assert lines[-1].startswith(f"{cited(saved)} citations checked: ")


def test_verify_flags_a_change_elsewhere_in_the_file_by_its_sha(corpus_copy: Path, tmp_path: Path) -> None:
    saved = tmp_path / "answers.jsonl"
    save_answers(corpus_copy, tmp_path / "cache", QUESTIONS[:1], saved, tmp_path)
    source = json.loads(saved.read_text())["passages"][0]["source"]
    with open(tmp_path / source, "a", encoding="utf-8") as handle:
        handle.write("\nAn appended line.\n")
    result = verify_saved_output(corpus_copy, saved, cwd=tmp_path)
    in_that_file = sum(f" {source}:" in line for line in result.report.splitlines()[:-1])
    assert result.counts["CHANGED"] == in_that_file >= 1
    assert all(line.endswith(": file sha256 differs") for line in result.report.splitlines()[:-1] if "CHANGED" in line)


def test_verify_refuses_outside_sources_without_printing_them(
    corpus_copy: Path, tmp_path: Path, outside_file: Path
) -> None:
    saved = tmp_path / "answers.jsonl"
    save_answers(corpus_copy, tmp_path / "cache", QUESTIONS[:1], saved, tmp_path)
    answer = json.loads(saved.read_text())
    answer["passages"][0].update(source="corpus/../secret.txt", start=0, end=len(SECRET), text=SECRET)
    answer["passages"][1].update(source=str(outside_file))
    saved.write_text(json.dumps(answer))
    result = verify_saved_output(corpus_copy, saved, cwd=tmp_path)
    phrase = answer.get("answer") is not None  # it is checked in the first passage's file: refused with it
    assert result.refused == 2 + phrase and result.counts["OK"] == cited(saved) - 2 - phrase and not result.all_ok
    assert result.report.count("REFUSED  ") == 2 + phrase
    assert SECRET not in result.report


def test_verify_checks_also_in_entries(tmp_path: Path) -> None:
    corpus = tmp_path / "wire"
    corpus.mkdir()
    sentence = "The zebra council met in Nairobi on Tuesday to discuss stripes."
    (corpus / "a.txt").write_text(f"Title one\n\n{sentence}\n")
    (corpus / "b.txt").write_text(f"Title two\n\nSomething else first.\n{sentence}\n")
    saved = tmp_path / "answer.json"
    save_answers(corpus, tmp_path / "cache", ["zebra council nairobi"], saved, tmp_path)
    saved_answer = json.loads(saved.read_text())
    also = saved_answer["passages"][0]["also_in"]
    assert len(also) == 1  # the wire copy
    assert verify_saved_output(corpus, saved, cwd=tmp_path).all_ok
    copy = corpus / Path(also[0]["source"]).name
    copy.write_text(copy.read_text()[:20])  # truncated: the span is gone
    result = verify_saved_output(corpus, saved, cwd=tmp_path)
    phrases = saved_answer["answer"] is not None  # an answer phrase is checked in the passage's file, a.txt
    assert result.counts == {"OK": 1 + phrases, "CHANGED": 1, "MISSING": 0, "REFUSED": 0}
    assert "CHANGED  also in wire/" in result.report and "past the end of the file" in result.report
    copy.unlink()
    assert "MISSING  also in wire/" in verify_saved_output(corpus, saved, cwd=tmp_path).report


def test_verify_an_all_abstained_file_has_nothing_to_check(tmp_path: Path) -> None:
    saved = tmp_path / "none.json"
    saved.write_text(json.dumps({"question": "q", "abstained": True, "reason": "r", "passages": []}))
    result = verify_saved_output(SEEDS, saved)
    assert result.all_ok and "no citations to check" in result.report


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"passages": []}\n{"passages": [\n', r"bad\.jsonl:3: not valid JSON"),
        ('{"passages": []}\n[1, 2]\n', r"bad\.jsonl:2: not an answer from 'qabot ask --json'"),
        ('{"passages": [{"source": "a.txt", "start": "0", "end": 5, "text": "x"}]}', r"bad\.jsonl:1: not an answer"),
        ("  \n", r"bad\.jsonl is empty"),
    ],
)
def test_verify_rejects_files_that_are_not_saved_answers(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    with pytest.raises(CitationError, match=message):
        verify_saved_output(SEEDS, bad)


def test_verify_unreadable_input_is_a_citation_error(tmp_path: Path) -> None:
    with pytest.raises(CitationError, match="cannot read"):
        verify_saved_output(SEEDS, tmp_path / "nope.json")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(CitationError, match="cannot read"):
        verify_saved_output(SEEDS, tmp_path / "binary.json")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_verify_unreadable_cited_file_is_missing(corpus_copy: Path, tmp_path: Path) -> None:
    saved = tmp_path / "answers.jsonl"
    save_answers(corpus_copy, tmp_path / "cache", QUESTIONS[:1], saved, tmp_path)
    cited = tmp_path / json.loads(saved.read_text())["passages"][0]["source"]
    cited.chmod(0)
    try:
        result = verify_saved_output(corpus_copy, saved, cwd=tmp_path)
    finally:
        cited.chmod(0o644)
    assert result.counts["MISSING"] == 3 and "cannot read" in result.report


def test_verify_report_never_carries_escape_sequences(tmp_path: Path) -> None:
    saved = tmp_path / "hostile.json"
    passage = {"text": "x", "source": "\x1b[2Jgone.txt", "start": 0, "end": 1, "also_in": []}
    saved.write_text(json.dumps({"passages": [passage]}))
    result = verify_saved_output(SEEDS, saved)
    assert result.counts["MISSING"] == 1
    assert "\x1b" not in result.report and "\\x1b[2Jgone.txt" in result.report


def test_verify_checks_the_column_of_saved_output(corpus_copy: Path, tmp_path: Path) -> None:
    answerer = answerer_for(settings_for(corpus_copy, tmp_path / "cache"))
    data = answer_json(answerer.ask("He will visit both Azerbaijan and Armenia"), cwd=tmp_path)
    assert (data["passages"][0]["line"], data["passages"][0]["column"]) == (5, 92)
    saved = tmp_path / "a.json"
    saved.write_text(json.dumps(data), encoding="utf-8")
    assert verify_saved_output(corpus_copy, saved, tmp_path).all_ok
    data["passages"][0]["column"] = 1
    saved.write_text(json.dumps(data), encoding="utf-8")
    result = verify_saved_output(corpus_copy, saved, tmp_path)
    assert not result.all_ok and "the span now starts at column 92, not 1" in result.report


def saved_text_output(answerer: Answerer, questions: list[str], cwd: Path) -> str:
    return "\n".join(render_text(answerer.ask(question), cwd=cwd) for question in questions) + "\n"


def test_verify_reads_saved_text_output_in_all_three_citation_forms(corpus_copy: Path, tmp_path: Path) -> None:
    answerer = answerer_for(settings_for(corpus_copy, tmp_path / "cache"))
    answer = answerer.ask("What did the embassy say Bono will visit?")
    text = saved_text_output(answerer, ["What did the embassy say Bono will visit?", "who is pashinian"], tmp_path)
    saved = tmp_path / "saved.txt"
    saved.write_text(text, encoding="utf-8")
    result = verify_saved_output(corpus_copy, saved, tmp_path)
    assert result.all_ok and result.counts["OK"] == text.count("\n    — ") >= 4, result.report

    first = answer.passages[0].location
    assert (first.line, first.column) == (5, 92)  # line 5 holds two sentences: the line form names either
    line_form = text.replace(citation(first, tmp_path), f"corpus/{first.source}:{first.line}", 1)
    span_form = text.replace(citation(first, tmp_path), f"corpus/{first.source}:{first.start}-{first.end}", 1)
    for variant in (line_form, span_form):
        saved.write_text(variant, encoding="utf-8")
        assert verify_saved_output(corpus_copy, saved, tmp_path).all_ok

    moved = text.replace(citation(first, tmp_path), f"corpus/{first.source}:{first.line}:1", 1)
    saved.write_text(moved, encoding="utf-8")
    result = verify_saved_output(corpus_copy, saved, tmp_path)
    assert f"CHANGED  corpus/{first.source}:5:1: the text there differs from the passage shown" in result.report

    saved.write_text(text, encoding="utf-8")
    cited = corpus_copy / first.source
    cited.write_text("New first line\n" + cited.read_text("utf-8"), encoding="utf-8")
    result = verify_saved_output(corpus_copy, saved, tmp_path)
    assert not result.all_ok and f"CHANGED  corpus/{first.source}:5:92" in result.report
    cited.unlink()
    assert f"MISSING  corpus/{first.source}:5:92" in verify_saved_output(corpus_copy, saved, tmp_path).report


def test_verify_text_checks_also_in_lines_and_refuses_outside_paths(
    corpus_copy: Path, outside_file: Path, tmp_path: Path
) -> None:
    yerevan = (SEEDS / SEED_003).read_text("utf-8").index("Yerevan denied")
    saved = tmp_path / "saved.txt"
    saved.write_text(
        f"[1] Yerevan denied the charges and claimed the move violated the cease-fire.\n"
        f"    — corpus/{SEED_003}:25:1  (US gears up)\n"
        f"    also in corpus/{SEED_003}:23:1\n"
        f"    also in corpus/{SEED_003}:25:3\n"
        f"    also in corpus/{SEED_003}:{yerevan + 2}-{yerevan + 20}\n"
        f"[2] {SECRET}\n"
        f"    — {outside_file}:1:1  (secret)\n",
        encoding="utf-8",
    )
    result = verify_saved_output(corpus_copy, saved, tmp_path)
    lines = result.report.splitlines()
    assert lines[0] == f"OK       corpus/{SEED_003}:25:1"
    assert lines[1] == f"OK       also in corpus/{SEED_003}:23:1"
    assert lines[2] == f"CHANGED  also in corpus/{SEED_003}:25:3: column 3 is inside the sentence cited as 25:1"
    assert lines[3] == f"CHANGED  also in corpus/{SEED_003}:{yerevan + 2}-{yerevan + 20}: no sentence starts there now"
    assert lines[4].startswith(f"REFUSED  {outside_file}:1:1: ") and result.refused == 1
    assert SECRET not in result.report.replace(f"[2] {SECRET}", "")


def test_verify_text_without_citations_is_an_error_unless_every_answer_abstained(tmp_path: Path) -> None:
    saved = tmp_path / "saved.txt"
    saved.write_text("hello\nnot an answer\n", encoding="utf-8")
    with pytest.raises(CitationError, match="holds no citations; expected the output of 'qabot ask'"):
        verify_saved_output(SEEDS, saved, tmp_path)
    saved.write_text("No answer in the corpus. No article mentions any of: mars.\n", encoding="utf-8")
    assert verify_saved_output(SEEDS, saved, tmp_path).report.startswith("no citations to check")
