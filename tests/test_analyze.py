"""The analyzer: folding, acronyms, stopwords, irregular verbs, stemming."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import unicodedata
from importlib.resources import files

import pytest

from qabot import analyze as analyze_module
from qabot.analyze import TermTable, analyze, derivations, everyday_terms, fold, term_spans
from tests.conftest import PROJECT


def test_diacritics_fold_so_erdogan_matches_erdogan():
    assert analyze("Erdoğan") == analyze("Erdogan") == ["erdogan"]
    assert fold("İlke") == "ilke"
    assert fold("Ajansı") == "ajansi"


def test_nfkc_and_casefold():
    assert analyze("ＴＡＬＫＳ talks Talks") == ["talk", "talk", "talk"]
    assert analyze("Straße") == analyze("strasse")


def test_acronyms_survive_even_when_they_spell_a_stopword():
    assert analyze("the U.S. said") == ["us", "say"]
    assert analyze("US embassy") == analyze("U.S. embassy") == ["us", "embassi"]
    assert analyze("the IT department said it") == ["it", "depart", "say"]
    assert analyze("WHO said") == ["who", "say"]


def test_shouted_question_is_not_read_as_acronyms():
    assert analyze("WHO WROTE HAMLET") == ["write", "hamlet"]


def test_irregular_verbs_meet_their_base_form():
    assert analyze("They met") == analyze("meet") == ["meet"]
    assert analyze("he said") == analyze("say")


def test_curly_apostrophes_and_possessives():
    assert analyze("Azerbaijan’s blockade") == analyze("Azerbaijan's blockade") == ["azerbaijan", "blockad"]
    assert analyze("didn’t") == []


def test_term_spans_point_at_the_words():
    text = "Louis Bono, the U.S. envoy"
    spans = list(term_spans(text))
    assert [text[a:b] for a, b, _ in spans] == ["Louis", "Bono", "U.S.", "envoy"]
    assert [term for _, _, term in spans] == analyze(text)


def test_stopword_only_and_punctuation_only_give_nothing():
    assert analyze("What is the, of and?") == []
    assert analyze("?!…—“”") == []


def test_analyzer_import_does_not_load_nltk():
    code = "import sys, qabot.analyze as a; a.analyze('Talks were held'); print('nltk' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    "word",
    [
        "آ0",  # Arabic alef with madda: decomposed, the madda is a mark outside the Latin ranges
        "हिन्दी",  # Devanagari vowel signs and virama are marks, not letters
        "\U0001109a\U0001109b",  # Kaithi letters whose nukta lies outside the Basic Multilingual Plane
        "Erdoğan",
    ],
)
def test_a_word_is_one_term_whether_typed_precomposed_or_decomposed(word):
    nfc, nfd = unicodedata.normalize("NFC", word), unicodedata.normalize("NFD", word)
    assert len(analyze(nfc)) == 1 and analyze(nfd) == analyze(nfc)
    assert [(start, end) for start, end, _ in term_spans(nfd)] == [(0, len(nfd))]


def test_the_shipped_combining_marks_are_this_pythons_marks():
    text = (PROJECT / "qabot" / "data" / "combining_marks.txt").read_text(encoding="ascii")
    listed = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            first, _, last = line.partition("-")
            listed.update(range(int(first, 16), int(last or first, 16) + 1))
    assert all(unicodedata.category(chr(code)).startswith("M") for code in listed)
    if f"Unicode {unicodedata.unidata_version})" in text:  # the version the list was generated from
        marks = {code for code in range(0x110000) if unicodedata.category(chr(code)).startswith("M")}
        assert listed == marks


def test_the_shipped_everyday_terms_are_the_common_words_as_the_analyzer_stems_them_now():
    """common_terms.txt is derived from common_words.txt with term_of: a change to the analyzer must re-derive it."""
    spec = importlib.util.spec_from_file_location("derive_common_words", PROJECT / "tools" / "derive_common_words.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)  # wordfreq is imported only to derive common_words.txt itself
    words = (PROJECT / "qabot" / "data" / "common_words.txt").read_text(encoding="utf-8")
    derived = tool.everyday_terms(words)
    assert everyday_terms() == derived
    assert derived["quien"] >= 4.0 and "keep" in derived and "the" not in derived  # folded, stemmed; no stopwords


def test_a_term_table_finds_a_terms_line_and_nothing_else():
    table = TermTable("# a comment line\nagre agreeabl agreement\npeac 5.12\nlast x", str.split)
    assert table["agre"] == ["agreeabl", "agreement"] and table["last"] == ["x"] and table["peac"] == ["5.12"]
    for missing in ("agr", "agreeabl", "agre agreeabl", "#", "# a", "", "x"):
        assert missing not in table and table.get(missing) is None
    assert list(table) == ["agre", "peac", "last"] and len(table) == 3
    assert derivations()["agre"] == ("agreeabl", "agreement") and everyday_terms()["agre"] >= 4.0


def test_a_term_table_answers_alike_before_and_after_splitting_its_lines(monkeypatch):
    """A long-lived process splits the table once; every lookup, found or not, answers as the text search did."""
    text = files("qabot").joinpath("data/derivations.txt").read_text(encoding="utf-8")
    probes = [line.split(" ", 1)[0] for line in text.split("\n")[::37]] + ["agr", "zzzz", "#", "a b", "", "x\ny"]
    monkeypatch.setattr(analyze_module, "LOOKUPS_BEFORE_SPLITTING", 10**9)
    searched = TermTable(text, str.split)
    answers = [searched.get(probe) for probe in probes]
    monkeypatch.setattr(analyze_module, "LOOKUPS_BEFORE_SPLITTING", 0)
    split = TermTable(text, str.split)
    assert [split.get(probe) for probe in probes] == answers and sum(a is not None for a in answers) > 100
    assert split._lines is not None and searched._lines is None
