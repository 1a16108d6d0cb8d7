"""The eval set scorer: the hit rule (with paragraph gold), the figures, and calibration over answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qabot.calibration import ReliabilityBin
from qabot.eval_match import fold_for_match, is_hit
from qabot.eval_report import render_report
from qabot.eval_set import EvalItem, Gold, load_eval
from qabot.evaluate import ItemResult, abstention_by_kind, calibration_pairs, evaluate
from qabot.model import Answer, Location, Passage
from tests.conftest import DEV_SET, SAMPLE_SET, SEEDS, needs_shared

BONO_FILE = "000_9ad8541396ee1ed9.txt"


def passage(text: str, source: str = "seeds/a.txt") -> Passage:
    location = Location(source, Path("/x") / source, 0, len(text), 1, 1, "0" * 64)
    return Passage(text, location, 1.0, (), "", "", (), "t", None)


def paragraph_holding(path: Path, marker: str) -> str:
    """The paragraph (blank-line separated) of a real file that holds marker."""
    (found,) = [p for p in path.read_text(encoding="utf-8").split("\n\n") if marker in p]
    return found


# --- the hit rule ---------------------------------------------------------------------------------


def test_hit_rule_folds_quotes_and_whitespace_and_checks_file_name():
    gold = [Gold("a.txt", "the “peace”  deal")]
    assert is_hit(passage('He said the "peace" deal\nholds.'), gold)
    assert not is_hit(passage("He said the peace deal holds."), gold)
    assert not is_hit(passage('the "peace" deal', "seeds/b.txt"), gold)
    assert not is_hit(passage('the "peace" deal ' + "x" * 600), gold), "passages over 600 chars never hit"
    assert fold_for_match("a\u2019b  c") == "a'b c"


def test_hit_rule_with_a_paragraph_requires_the_passage_inside_it():
    paragraph = "The river is long.  It empties into the “North Sea”\nnear Rotterdam. Boats use it."
    gold = [Gold("a.txt", "North Sea", paragraph)]
    assert is_hit(passage('It empties into the "North Sea" near Rotterdam.'), gold), "folding applies to the paragraph"
    assert not is_hit(passage("It empties into the North Sea near Hamburg."), gold), "same quote, other paragraph"
    assert not is_hit(passage("Boats use it."), gold), "inside the paragraph but without the quote"


# --- scoring --------------------------------------------------------------------------------------


def test_figures_on_a_scripted_answerer():
    items = load_eval(SAMPLE_SET)[:2] + [i for i in load_eval(SAMPLE_SET) if not i.answerable][:2]
    first = items[0].answers[0]

    def ask(question: str, k: int) -> Answer:
        if question == items[0].question:
            return Answer(question, (passage("x"), passage(first.quote, f"seeds/{first.source}")), False, "")
        if question == items[2].question:
            return Answer(question, (), True, "no")
        return Answer(question, (passage("unrelated"),), False, "")

    report = evaluate(items, ask)
    assert (report.answerable, report.unanswerable) == (2, 2)
    assert report.recall_at_1 == 0.0 and report.recall_at_3 == 0.5 and report.mrr_at_10 == 0.25
    assert report.abstention_accuracy == 0.5 and report.false_abstention_rate == 0.0


def test_paragraph_gold_from_a_jsonl_file_scores_the_real_answerer(tmp_path, answerer):
    who, where = (
        paragraph_holding(SEEDS / BONO_FILE, "Louis Bono is traveling"),
        paragraph_holding(SEEDS / BONO_FILE, "Bono plans to meet"),
    )
    lines = [
        {"id": "who", "question": "Who is Louis Bono?", "answerable": True, "kind": "factoid",
         "answers": [{"source": BONO_FILE, "quote": "Bono", "paragraph": who}]},
        {"id": "plans", "question": "Who is Louis Bono?", "answerable": True, "kind": "factoid",
         "answers": [{"source": BONO_FILE, "quote": "Bono", "paragraph": where}]},
        {"id": "wrong", "question": "Who is Louis Bono?", "answerable": True, "kind": "factoid",
         "answers": [{"source": BONO_FILE, "quote": "Louis Bono is traveling", "paragraph": where}]},
    ]  # fmt: skip
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n", encoding="utf-8")
    items = load_eval(path)
    assert items[0].answers == (Gold(BONO_FILE, "Bono", who),)

    ranks = {r.item.id: r.rank for r in evaluate(items, answerer.ask, 10).results}
    passages = answerer.ask("Who is Louis Bono?", 10).passages
    assert ranks["who"] is not None and ranks["plans"] is not None and ranks["who"] != ranks["plans"]
    assert passages[ranks["who"] - 1].text in who and passages[ranks["plans"] - 1].text in where
    assert ranks["wrong"] is None, "the quote is not in the gold paragraph, so nothing can hit"


def test_mrr_counts_only_the_top_ten_when_asked_deeper():
    item = EvalItem("q", "Where?", True, "factoid", (Gold("a.txt", "gold"),))
    answer = Answer("Where?", (*(passage("filler") for _ in range(11)), passage("gold")), False, "")
    report = evaluate([item], lambda question, k: answer, depth=12)
    assert report.results[0].rank == 12 and report.mrr_at_10 == 0.0


# --- calibration ----------------------------------------------------------------------------------


def test_calibration_is_over_shown_answers_and_a_shown_unanswerable_is_a_miss():
    answerable = EvalItem("a", "Who?", True, "factoid", (Gold("a.txt", "gold"),))
    unanswerable = EvalItem("u", "Why?", False, "unanswerable", ())
    answers = {
        "Who?": Answer("Who?", (passage("the gold line"),), False, "", confidence=0.85),
        "Why?": Answer("Why?", (passage("the gold line"),), False, "", confidence=0.8),
        "When?": Answer("When?", (), True, "not found", confidence=0.05),
    }
    items = [answerable, unanswerable, EvalItem("w", "When?", False, "out-of-corpus", ())]
    report = evaluate(items, lambda question, k: answers[question])
    assert calibration_pairs(report.results) == [(0.85, True), (0.8, False)]
    assert report.shown == 2
    assert report.reliability == (ReliabilityBin(0.8, 0.9, 2, pytest.approx(0.825), 0.5),)
    assert report.ece == pytest.approx(0.325)
    assert [(k.kind, k.questions, k.abstained) for k in report.abstention_by_kind] == [
        ("factoid", 1, 0), ("out-of-corpus", 1, 1), ("unanswerable", 1, 0),
    ]  # fmt: skip


def test_adversarial_questions_are_left_out_of_calibration_and_labels_are_scored():
    items = [
        EvalItem("a", "Who?", True, "answerable", (Gold("a.txt", "gold"),)),
        EvalItem("b", "What?", True, "answerable", (Gold("a.txt", "gold"),)),
        EvalItem("v", "Why?", False, "adversarial", ()),
        EvalItem("o", "Where?", False, "out-of-corpus", ()),
    ]
    answers = {
        "Who?": Answer("Who?", (passage("the gold line"),), False, "", confidence=0.9, label="Likely answer"),
        "What?": Answer("What?", (passage("a wrong line"),), False, "", confidence=0.5, label="Possible match"),
        "Why?": Answer("Why?", (passage("the gold line"),), False, "", confidence=0.95, label="Likely answer"),
        "Where?": Answer("Where?", (passage("x"),), False, "", confidence=0.45, label="Possible match"),
    }
    report = evaluate(items, lambda question, k: answers[question])
    assert calibration_pairs(report.results) == [(0.9, True), (0.5, False), (0.45, False)], "adversarial left out"
    assert [(f.label, f.count, f.share, f.precision) for f in report.labels] == [
        ("Likely answer", 1, pytest.approx(1 / 3), 1.0), ("Possible match", 2, pytest.approx(2 / 3), 0.0),
    ]  # fmt: skip
    assert "Likely answer" in render_report(report) and "right 100.0%" in render_report(report)


def test_ece_of_the_real_answerer_matches_its_definition(answerer):
    report = evaluate(load_eval(SAMPLE_SET), answerer.ask, 10)
    shown = [r for r in report.results if not r.answer.abstained]
    assert report.shown == len(shown) > 0
    for confidence in {r.answer.confidence for r in shown}:
        assert 0.0 <= confidence <= 1.0
    total = 0.0
    for low in range(10):
        members = [r for r in shown if min(int(r.answer.confidence * 10), 9) == low]
        if members:
            hits = sum(r.item.answerable and r.rank == 1 for r in members) / len(members)
            total += len(members) * abs(sum(r.answer.confidence for r in members) / len(members) - hits)
    assert report.ece == pytest.approx(total / len(shown))
    assert sum(b.count for b in report.reliability) == len(shown)


def test_abstention_by_kind_names_unlabelled_questions_by_answerability():
    answer = Answer("q", (), True, "no")
    results = [
        ItemResult(EvalItem("1", "q", True, "", ()), answer, None),
        ItemResult(EvalItem("2", "q", False, "", ()), answer, None),
    ]
    assert [(k.kind, k.abstained) for k in abstention_by_kind(results)] == [("answerable", 1), ("unanswerable", 1)]


@needs_shared(DEV_SET)
def test_dev_set_meets_the_quality_bars(answerer):
    report = evaluate(load_eval(DEV_SET), answerer.ask, 10)
    assert report.recall_at_1 >= 0.88 and report.recall_at_3 >= 0.92 and report.mrr_at_10 >= 0.90
    assert report.abstention_accuracy >= 0.8 and report.false_abstention_rate <= 0.05
    assert report.ece is not None and report.ece <= 0.15
    likely = [f for f in report.labels if f.label == "Likely answer"]
    assert likely and likely[0].precision >= 0.95
