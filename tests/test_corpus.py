"""Reading articles: documents, titles and dates, and clear reasons for skipped files."""

from __future__ import annotations

import os

import pytest

from qabot.config import DEFAULT_BOILERPLATE
from qabot.corpus import (
    Document,
    FileEntry,
    Listing,
    Skipped,
    check_root,
    list_articles,
    parse_document,
    read_document,
)
from qabot.errors import CorpusError
from qabot.segment import compile_boilerplate
from tests.conftest import SEEDS


def test_seeds_are_read_with_titles_dates_and_hashes():
    entries, skipped = list_articles(SEEDS)
    assert [e.path for e in entries] == sorted(p.name for p in SEEDS.glob("*.txt"))
    assert skipped == []
    docs = [read_document(SEEDS.resolve(), e, 10**7) for e in entries]
    assert all(isinstance(d, Document) for d in docs)
    first = docs[0]
    assert first.date == "2023-08-03"
    assert first.title.startswith("Senior Advisor plans to meet")
    assert docs[3].title == "US gears up for more peace talks between Azerbaijan, Armenia"
    assert docs[4].title == "top of page" and docs[4].date is None, "without boilerplate patterns"
    boilerplate = compile_boilerplate(DEFAULT_BOILERPLATE)
    titled = read_document(SEEDS.resolve(), entries[4], 10**7, boilerplate)
    assert titled.title == "Armenian FM and US Secretary of State Discuss Regional Stability and Azerbaijan Relations"
    assert first.text == (SEEDS / first.path).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "empty"), (b"  \n\n", "empty"), (b"abc\x00def", "binary"), (b"caf\xe9 au lait", "not valid UTF-8")],
)
def test_unusable_bytes_give_a_reason(data, reason):
    result = parse_document("bad.txt", data)
    assert isinstance(result, Skipped) and reason in result.reason and result.path == "bad.txt"


def test_listing_recurses_skips_hidden_and_refuses_links_out(tmp_path):
    root = tmp_path / "corpus"
    (root / "a" / "b").mkdir(parents=True)
    (root / ".qabot").mkdir()
    (root / "a" / "b" / "deep.txt").write_text("Deep article.\n")
    (root / ".qabot" / "hidden.txt").write_text("Hidden.\n")
    (root / "notes.docx").write_bytes(b"PK\x03\x04")
    outside = tmp_path / "outside.txt"
    outside.write_text("Secret.\n")
    os.symlink(outside, root / "link-out.txt")
    os.symlink(root / "loop1.txt", root / "loop2.txt")
    os.symlink(root / "loop2.txt", root / "loop1.txt")
    os.symlink(tmp_path, root / "dirlink")
    entries, skipped = list_articles(root)
    assert [e.path for e in entries] == ["a/b/deep.txt"]
    reasons = {s.path: s.reason for s in skipped}
    assert "outside the corpus" in reasons["link-out.txt"]
    assert "looping" in reasons["loop1.txt"] and "looping" in reasons["loop2.txt"]
    assert "not followed" in reasons["dirlink"]
    assert reasons["notes.docx"].startswith("not a supported format (.txt, .md)")
    assert not any(path.startswith(".qabot") for path in reasons)


def test_oversized_and_vanished_files_are_skipped_not_raised(tmp_path):
    (tmp_path / "big.txt").write_text("x" * 2000)
    (tmp_path / "gone.txt").write_text("Soon gone.")
    entries, _ = list_articles(tmp_path)
    by_path = {e.path: e for e in entries}
    big = read_document(tmp_path, by_path["big.txt"], max_bytes=1000)
    assert isinstance(big, Skipped) and "over the 1,000-byte limit" in big.reason
    (tmp_path / "gone.txt").unlink()
    gone = read_document(tmp_path, by_path["gone.txt"], max_bytes=1000)
    assert isinstance(gone, Skipped) and "disappeared" in gone.reason


def test_missing_corpus_folder_is_a_corpus_error(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        check_root(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(CorpusError, match="not a folder"):
        check_root(tmp_path / "file.txt")


def test_listing_is_sorted_by_path_even_where_a_name_sorts_before_the_slash(tmp_path):
    for rel in ("a/x.txt", "a-b.txt", "a b/y.md", "a.txt", "b/c/d.txt", "b/c.txt", "b.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("An article.\n", encoding="utf-8")
    entries, skipped = list_articles(tmp_path)
    paths = [entry.path for entry in entries]
    assert paths == sorted(paths) == ["a b/y.md", "a-b.txt", "a.txt", "a/x.txt", "b.txt", "b/c.txt", "b/c/d.txt"]
    assert skipped == []
    status = (tmp_path / "b/c.txt").stat()
    expected = FileEntry("b/c.txt", status.st_size, status.st_mtime_ns, status.st_ctime_ns)
    assert entries[5] == expected == list(entries)[5]
    assert Listing.of(list(entries)) == entries and len(entries) == 7
