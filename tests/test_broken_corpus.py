"""Broken corpora: indexing finishes, every good file is searchable, every bad one is reported once with its reason."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

import qabot.store
from qabot.answer import Answerer
from qabot.frontend import answerer_for
from qabot.segment import MAX_SENTENCE_CHARS
from tests.conftest import PROJECT, settings_for

FILLER = (
    "The council met on Monday to discuss the budget. Officials said the talks went well. "
    "Residents asked for more buses on the northern line. A spokesman declined to comment further.\n"
)
# path -> (distinctive word, body); each word occurs in no other file
GOOD = {
    "a_plain.txt": ("zorblaxian", "Plain article\n\nThe zorblaxian delegation arrived late. " + FILLER),
    "nested/deeper/b_nested.txt": ("quintaflume", "Nested article\n\nA quintaflume pipeline was opened. " + FILLER),
    "ünïcødé 記事 ✓.txt": ("glimmerhorn", "Odd name\n\nThe glimmerhorn festival drew crowds. " + FILLER),
    "e_bom.txt": ("brontavian", "\ufeffBOM article\n\nThe brontavian senate voted. " + FILLER),
    "folder.txt/inner.txt": ("vexillarium", "Inside a folder named like a file\n\nThe vexillarium reopened. " + FILLER),
}
NO_PUNCT_WORD = "snorvelt"
# path -> fragment of the reason qabot must give
BAD = {
    "empty.txt": "empty file",
    "blank.txt": "empty file",
    "binary.txt": "binary file",
    "latin1.txt": "not valid UTF-8",
    "huge.txt": "byte limit",
    "vanishing.txt": "disappeared",
    "loop_a.txt": "looping symbolic link",
    "loop_b.txt": "looping symbolic link",
    "dangling.txt": "broken or looping symbolic link",
    "outside.txt": "pointing outside the corpus folder",
    "outside_dir": "symbolic link to a folder",
    "self_dir": "symbolic link to a folder",
    "notes.docx": "not a supported format (.txt, .md); import web pages and dumps with qabot add",
}
SECRET_WORD = "exfiltratium"
LATIN1_WORD = "crèmebrulix"


def unpunctuated_text(words: int = 5000) -> str:
    pool = "river stone market harbour winter lantern meadow signal copper orchard".split()
    body = [pool[(i * 7) % len(pool)] + str(i % 13) for i in range(words)]
    body[4000] = NO_PUNCT_WORD
    return " ".join(body)


def make_broken_corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(f"Secret\n\nThe {SECRET_WORD} plans are hidden. " + FILLER, "utf-8")
    for rel, (_, body) in GOOD.items():
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        (corpus / rel).write_text(body, encoding="utf-8")
    (corpus / "d_nopunct.txt").write_text(unpunctuated_text(), encoding="utf-8")
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "blank.txt").write_bytes(b" \n\t\r\n  \n")
    (corpus / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)
    (corpus / "latin1.txt").write_bytes(f"Latin-1\n\nThe {LATIN1_WORD} was served. ".encode("latin-1"))
    with open(corpus / "huge.txt", "wb") as handle:  # 50 MB, sparse: instant to make, over the 10 MB limit
        handle.truncate(50_000_000)
    (corpus / "vanishing.txt").write_text("Vanishing\n\nThis file will be gone when it is read. " + FILLER, "utf-8")
    os.symlink("loop_b.txt", corpus / "loop_a.txt")
    os.symlink("loop_a.txt", corpus / "loop_b.txt")
    os.symlink("does_not_exist.txt", corpus / "dangling.txt")
    os.symlink(outside / "secret.txt", corpus / "outside.txt")
    os.symlink(outside, corpus / "outside_dir", target_is_directory=True)
    os.symlink(".", corpus / "self_dir", target_is_directory=True)
    (corpus / "notes.docx").write_text(f"The {SECRET_WORD} notes.", "utf-8")  # named, never read
    # Hidden: passed over without a word.
    (corpus / ".hidden.txt").write_text(f"Hidden\n\nThe {SECRET_WORD} draft. " + FILLER, "utf-8")
    (corpus / ".git").mkdir()
    (corpus / ".git" / "HEAD.txt").write_text(f"The {SECRET_WORD} ref. " + FILLER, "utf-8")
    return corpus


def delete_after_listing(monkeypatch: pytest.MonkeyPatch, victim: Path) -> None:
    """The file is listed, then removed before the store reads it (a race with another program)."""
    real = qabot.store.list_articles

    def listing_then_delete(root: Path):
        result = real(root)
        victim.unlink()
        return result

    monkeypatch.setattr(qabot.store, "list_articles", listing_then_delete)


def assert_exact(passage) -> None:
    assert Path(passage.location.file).read_text(encoding="utf-8")[passage.location.start : passage.location.end] == (
        passage.text
    )


def test_broken_corpus_indexes_the_good_files_and_reports_each_bad_one_once(tmp_path, monkeypatch):
    corpus = make_broken_corpus(tmp_path)
    delete_after_listing(monkeypatch, corpus / "vanishing.txt")
    warnings: list[str] = []
    answerer = answerer_for(settings_for(corpus, tmp_path / "cache"), warn=warnings.append)

    indexed = {doc.path for doc in answerer.index.docs}
    assert indexed == {*GOOD, "d_nopunct.txt"}
    for path, reason in BAD.items():
        mentions = [w for w in warnings if f"skipped {path}:" in w]
        assert len(mentions) == 1, (path, warnings)
        assert reason in mentions[0]
    assert len(warnings) == len(BAD), warnings
    assert {skip.path for skip in answerer.index.skipped} == set(BAD)

    for path, (word, _) in GOOD.items():
        answer = answerer.ask(f"What about the {word}?")
        assert not answer.abstained, (path, answer.reason)
        assert answer.passages[0].location.source == path
        assert word in answer.passages[0].text
        for passage in answer.passages:
            assert_exact(passage)
    for word in (SECRET_WORD, LATIN1_WORD):
        answer = answerer.ask(word)
        assert answer.abstained and not answer.passages


def test_a_file_without_sentence_punctuation_is_searchable_in_bounded_passages(tmp_path):
    corpus = make_broken_corpus(tmp_path)
    answerer = answerer_for(settings_for(corpus, tmp_path / "cache"))
    answer = answerer.ask(NO_PUNCT_WORD)
    assert not answer.abstained
    passage = answer.passages[0]
    assert passage.location.source == "d_nopunct.txt"
    assert NO_PUNCT_WORD in passage.text
    assert len(passage.text) <= MAX_SENTENCE_CHARS
    assert_exact(passage)
    for context in (passage.context_before, passage.context_after):
        assert 0 < len(context) <= MAX_SENTENCE_CHARS


def clean_env(corpus: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_")}
    env.update(QABOT_CORPUS=str(corpus), QABOT_CACHE_DIR=str(cache))
    return env


def run_qabot(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qabot.cli", *args], cwd=PROJECT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )


def test_cli_index_prints_one_skip_line_per_bad_file_and_exits_0(tmp_path):
    corpus = make_broken_corpus(tmp_path)
    (corpus / "vanishing.txt").unlink()  # a separate process cannot be raced reliably; covered above
    result = run_qabot(["index"], clean_env(corpus, tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    for path, reason in BAD.items():
        if path == "vanishing.txt":
            continue
        mentions = [line for line in lines if f"skipped {path}:" in line]
        assert len(mentions) == 1 and reason in mentions[0], (path, result.stderr)
        assert mentions[0].startswith("qabot: ")
    assert f"{len(GOOD) + 1} articles" in result.stdout
    assert f"{len(BAD) - 1} files skipped" in result.stdout

    again = run_qabot(["ask", "--json", "glimmerhorn festival"], clean_env(corpus, tmp_path / "cache"))
    assert again.returncode == 0, again.stderr
    assert "ünïcødé 記事 ✓.txt" in again.stdout


def test_bad_files_added_after_the_first_build_are_reported_once(tmp_path):
    corpus = make_broken_corpus(tmp_path)
    settings = settings_for(corpus, tmp_path / "cache")
    answerer_for(settings)
    (corpus / "new_binary.txt").write_bytes(b"abc\x00def")
    os.symlink("new_loop_b.txt", corpus / "new_loop_a.txt")
    os.symlink("new_loop_a.txt", corpus / "new_loop_b.txt")
    os.symlink(tmp_path / "outside" / "secret.txt", corpus / "new_outside.txt")

    warnings: list[str] = []
    answerer = answerer_for(settings, warn=warnings.append)
    for path in ("new_binary.txt", "new_loop_a.txt", "new_loop_b.txt", "new_outside.txt"):
        assert sum(f"skipped {path}:" in w for w in warnings) == 1, (path, warnings)
        assert path in {skip.path for skip in answerer.index.skipped}

    quiet: list[str] = []
    answerer_for(settings, warn=quiet.append)
    assert quiet == []  # nothing changed since: nothing reported again


def test_a_repaired_file_becomes_searchable_and_a_vanished_one_is_forgotten(tmp_path, monkeypatch):
    corpus = make_broken_corpus(tmp_path)
    settings = settings_for(corpus, tmp_path / "cache")
    with monkeypatch.context() as patch:
        delete_after_listing(patch, corpus / "vanishing.txt")
        answerer_for(settings)
    (corpus / "latin1.txt").write_text(f"Latin-1 fixed\n\nThe {LATIN1_WORD} was served. " + FILLER, "utf-8")
    answerer = answerer_for(settings)
    answer = answerer.ask(LATIN1_WORD)
    assert not answer.abstained and answer.passages[0].location.source == "latin1.txt"
    skipped = {skip.path for skip in answerer.index.skipped}
    assert "latin1.txt" not in skipped
    assert "vanishing.txt" not in skipped  # no longer in the folder: nothing left to report


def line_ending_corpus(tmp_path: Path) -> Answerer:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "crlf.txt").write_bytes(
        b"Windows file\r\n\r\nThe wexholm bridge opened on Monday.\r\nIts architect praised the plinthor design.\r\n"
    )
    (corpus / "cr.txt").write_bytes(b"Old Mac file\r\rThe dravinsk treaty was signed.\rIt ended the gorfian war.\r")
    (corpus / "lf.txt").write_text("Unix file\n\n" + FILLER, "utf-8")
    return answerer_for(settings_for(corpus, tmp_path / "cache"))


def test_crlf_citations_are_exact_as_python_reads_the_file(tmp_path):
    """Windows (CRLF) files: the invariant as DESIGN.md states it (read_text, universal newlines)."""
    answerer = line_ending_corpus(tmp_path)
    for word in ("wexholm", "plinthor"):
        answer = answerer.ask(word)
        assert not answer.abstained, word
        assert word in answer.passages[0].text
        assert_exact(answer.passages[0])


def test_cr_line_breaks_end_sentences_like_lf(tmp_path):
    """Old Mac (CR-only) files: the title line is not glued to the first sentence."""
    answer = line_ending_corpus(tmp_path).ask("dravinsk treaty")
    assert not answer.abstained
    assert answer.passages[0].text.endswith("The dravinsk treaty was signed.")
    assert "Old Mac file" not in answer.passages[0].text


def test_decomposed_unicode_article_is_found_by_a_precomposed_question(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = "Visit\n\nPresident Erdoğan met the mayor of Zürich on Friday. " + FILLER
    (corpus / "nfd.txt").write_text(unicodedata.normalize("NFD", text), encoding="utf-8")
    (corpus / "other.txt").write_text("Other\n\n" + FILLER, encoding="utf-8")
    answer = answerer_for(settings_for(corpus, tmp_path / "cache")).ask("Who is Erdoğan?")
    assert not answer.abstained, answer.reason
    assert answer.passages[0].location.source == "nfd.txt"
    assert_exact(answer.passages[0])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_in_the_corpus_does_not_hang_indexing(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text("Good\n\nThe marlowick ferry sails at noon. " + FILLER, "utf-8")
    os.mkfifo(corpus / "pipe.txt")  # open() on it blocks until someone writes
    try:
        result = run_qabot(["index"], clean_env(corpus, tmp_path / "cache"), timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("qabot index hung on a named pipe called pipe.txt")
    assert result.returncode == 0, result.stderr
    assert sum("skipped pipe.txt:" in line for line in result.stderr.splitlines()) == 1, result.stderr
    assert "1 articles" in result.stdout
