"""The analyzer: folding, acronyms, stopwords, irregular verbs, stemming."""

from __future__ import annotations

import subprocess
import sys

from qabot.analyze import analyze, fold, term_spans


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
