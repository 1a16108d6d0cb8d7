"""Sentence splitting on the real seeds corpus: exact offsets, lines, the required cases."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qabot.config import DEFAULT_BOILERPLATE
from qabot.corpus import parse_document
from qabot.segment import MAX_SENTENCE_CHARS, compile_boilerplate, segment_document
from tests.conftest import PROJECT, SEEDS

BOILERPLATE = compile_boilerplate(DEFAULT_BOILERPLATE)


def sentences_of(name: str):
    doc = parse_document(name, (SEEDS / name).read_bytes(), boilerplate=BOILERPLATE)
    return doc, segment_document(doc, 0, BOILERPLATE)


def texts_on_line(name: str, line: int) -> list[str]:
    doc, sentences = sentences_of(name)
    return [doc.text[s.start : s.end] for s in sentences if s.line == line]


@pytest.mark.parametrize("path", sorted(SEEDS.glob("*.txt")), ids=lambda p: p.name)
def test_offsets_and_lines_are_exact_for_every_seed_sentence(path):
    doc, sentences = sentences_of(path.name)
    assert sentences, "every seed article has sentences"
    previous_end = 0
    for sentence in sentences:
        text = doc.text[sentence.start : sentence.end]
        assert text == text.strip() and text, "sentence is stripped and non-empty"
        assert sentence.start >= previous_end, "sentences are in order and do not overlap"
        assert sentence.line == 1 + doc.text.count("\n", 0, sentence.start)
        assert sentence.end_line == 1 + doc.text.count("\n", 0, sentence.end - 1)
        previous_end = sentence.end


def test_002_line_5_with_us_abbreviation_is_one_sentence():
    [sentence] = texts_on_line("002_87992cb26fa4a259.txt", 5)
    assert sentence.startswith("The discussions between the parties")
    assert sentence.endswith("the U.S. Co-Chair of the OSCE Minsk Group told VOA.")


def test_002_lines_8_to_9_wrapped_sentence_is_one_sentence_spanning_two_lines():
    doc, sentences = sentences_of("002_87992cb26fa4a259.txt")
    [wrapped] = [s for s in sentences if s.line == 8 and s.end_line == 9]
    text = doc.text[wrapped.start : wrapped.end]
    assert text.startswith("He also stressed that the U.S. continues to insist\nthat free flow")
    assert text.endswith("since December 12.")


def test_headlines_without_final_period_stand_alone():
    assert texts_on_line("003_b5d4c7ccf50ad595.txt", 1) == [
        "US gears up for more peace talks between Azerbaijan, Armenia"
    ]
    assert texts_on_line("004_d9f82656579fc0ba.txt", 5) == ["Armenian FM and US Secretary of State"]
    assert texts_on_line("004_d9f82656579fc0ba.txt", 3) == [], "the title (before a blank line) is metadata"


def test_000_line_21_splits_in_two_and_initials_do_not_split():
    first, second = texts_on_line("000_9ad8541396ee1ed9.txt", 21)
    assert first.endswith("Agreement on Peace and Establishment of Interstate Relations.")
    assert second.startswith("They reached an agreement on additional articles")
    [shultz] = texts_on_line("000_9ad8541396ee1ed9.txt", 17)
    assert "George P. Shultz National Foreign Affairs Training Center" in shultz
    [dc] = texts_on_line("004_d9f82656579fc0ba.txt", 7)
    assert "took place in Washington D.C., addressing" in dc


def test_curly_quote_before_abbreviation_does_not_split():
    [sentence] = texts_on_line("002_87992cb26fa4a259.txt", 11)
    assert "adding that “U.S. seeks for the parties" in sentence


def test_date_header_and_title_are_metadata_not_sentences():
    doc, sentences = sentences_of("000_9ad8541396ee1ed9.txt")
    assert doc.date == "2023-08-03"
    assert doc.title.startswith("Senior Advisor plans to meet")
    assert doc.text[sentences[0].start : sentences[0].end].startswith("Senior Advisor of the US State Department")
    assert all(s.line > 1 for s in sentences)


def test_boilerplate_lines_are_marked_and_kept_apart():
    doc, sentences = sentences_of("004_d9f82656579fc0ba.txt")
    flagged = [doc.text[s.start : s.end] for s in sentences if s.boilerplate]
    assert flagged == ["top of page", "Ad for subscribing to The Armenian Report", "bottom of page"]
    doc, sentences = sentences_of("001_0d1f7e7e4da08d96.txt")
    assert all(s.boilerplate for s in sentences if s.line == 7)
    assert not any(s.boilerplate for s in sentences if s.line != 7)


def test_unpunctuated_text_is_cut_into_bounded_pieces_losing_nothing():
    words = " ".join(f"word{i}" for i in range(3000))
    doc = parse_document("flat.txt", words.encode())
    sentences = segment_document(doc)
    assert all(s.end - s.start <= MAX_SENTENCE_CHARS for s in sentences)
    assert " ".join(doc.text[s.start : s.end] for s in sentences) == words


def test_blank_lines_end_paragraphs_and_lowercase_lines_continue():
    doc = parse_document("p.txt", b"First line without period\nsecond line continues it.\n\nNew paragraph here")
    texts = [doc.text[s.start : s.end] for s in segment_document(doc)]
    assert texts == ["First line without period\nsecond line continues it.", "New paragraph here"]


LOAD_PUNKT_THEN_SCIPY = """
import sys
from qabot.segment import punkt_tokenizer
spans = list(punkt_tokenizer().span_tokenize("Mr. Bono met the U.S. envoy. Talks went on."))
print(len(spans), "scipy" in sys.modules, sys.modules.get("scipy", "absent") is None)
import scipy.stats
print(scipy.stats.norm.cdf(0.0))
"""


def test_punkt_loads_without_scipy_and_scipy_still_imports_afterwards():
    pytest.importorskip("scipy")
    result = subprocess.run([sys.executable, "-c", LOAD_PUNKT_THEN_SCIPY], cwd=PROJECT, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "False", "False", "0.5"]


def test_remembered_break_decisions_split_as_punkt_decides_afresh(monkeypatch):
    """Punkt's break decision per context is remembered: every seed splits as when each is decided anew,
    and a second pass over the same text (decided from memory only) splits the same way again."""
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    from qabot.segment import punkt_tokenizer, sentence_spans

    docs = [parse_document(p.name, p.read_bytes(), boilerplate=BOILERPLATE) for p in sorted(SEEDS.glob("*.txt"))]
    tokenizer = punkt_tokenizer()
    tokenizer._sentbreaks.cache_clear()
    remembered = [sentence_spans(doc.text, BOILERPLATE, doc.head) for doc in docs]
    assert tokenizer._sentbreaks.cache_info().hits > 0, "contexts repeat across the seeds"
    assert [sentence_spans(doc.text, BOILERPLATE, doc.head) for doc in docs] == remembered
    afresh = PunktSentenceTokenizer.text_contains_sentbreak
    monkeypatch.setattr(type(tokenizer), "text_contains_sentbreak", lambda self, text: afresh(self, text))
    assert [sentence_spans(doc.text, BOILERPLATE, doc.head) for doc in docs] == remembered
