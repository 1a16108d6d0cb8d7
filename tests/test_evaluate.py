"""The eval set scorer: the hit rule, the figures, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from qabot.evaluate import EvalFileError, evaluate, fold_for_match, is_hit, load_eval
from qabot.model import Answer, Location, Passage
from tests.conftest import DEV_SET, SAMPLE_SET, needs_shared


def passage(text: str, source: str = "seeds/a.txt") -> Passage:
    location = Location(source, Path("/x") / source, 0, len(text), 1, 1, "0" * 64)
    return Passage(text, location, 1.0, (), "", "", (), "t", None)


def test_hit_rule_folds_quotes_and_whitespace_and_checks_file_name():
    gold = [("a.txt", "the “peace”  deal")]
    assert is_hit(passage('He said the "peace" deal\nholds.'), gold)
    assert not is_hit(passage("He said the peace deal holds."), gold)
    assert not is_hit(passage('the "peace" deal', "seeds/b.txt"), gold)
    assert not is_hit(passage('the "peace" deal ' + "x" * 600), gold), "passages over 600 chars never hit"
    assert fold_for_match("a\u2019b  c") == "a'b c"


def test_figures_on_a_scripted_answerer():
    items = load_eval(SAMPLE_SET)[:2] + [i for i in load_eval(SAMPLE_SET) if not i.answerable][:2]
    first_source, first_quote = items[0].answers[0]

    def ask(question: str, k: int) -> Answer:
        if question == items[0].question:
            return Answer(question, (passage("x"), passage(first_quote, f"seeds/{first_source}")), False, "")
        if question == items[2].question:
            return Answer(question, (), True, "no")
        return Answer(question, (passage("unrelated"),), False, "")

    report = evaluate(items, ask)
    assert (report.answerable, report.unanswerable) == (2, 2)
    assert report.recall_at_1 == 0.0 and report.recall_at_3 == 0.5 and report.mrr_at_10 == 0.25
    assert report.abstention_accuracy == 0.5 and report.false_abstention_rate == 0.0


@needs_shared(DEV_SET)
def test_dev_set_meets_the_quality_bars(answerer):
    report = evaluate(load_eval(DEV_SET), answerer.ask, 10)
    assert report.recall_at_1 >= 0.92 and report.recall_at_3 >= 0.96 and report.mrr_at_10 >= 0.94
    assert report.abstention_accuracy >= 0.8 and report.false_abstention_rate <= 0.04


@pytest.mark.parametrize("content", ["", "not json\n", '{"id": 1}\n'])
def test_malformed_eval_files_are_reported(tmp_path, content):
    path = tmp_path / "e.jsonl"
    path.write_text(content)
    with pytest.raises(EvalFileError):
        load_eval(path)
