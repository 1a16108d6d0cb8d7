"""The answer phrase: candidates, question forms, the shipped model, exact offsets on real answers."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from qabot.answer import Answerer, clean_question
from qabot.answer_type import QUESTION_FORMS, question_form, question_word
from qabot.cite import column_of, line_of
from qabot.errors import ConfigError
from qabot.eval_match import exact_match, f1_score, squad_normalise
from qabot.eval_report import render_report
from qabot.eval_set import EvalItem, Gold
from qabot.evaluate import ItemResult, score_results
from qabot.frontend import answerer_for
from qabot.model import Answer, AnswerPhrase
from qabot.phrase import best_phrase, model_to_json, parse_phrase_model, phrase_in_passage, shipped_phrase_model
from qabot.phrase_signals import MAX_SPAN, PHRASE_FEATURES, candidate_spans, phrase_features, question_terms, tokenize
from tests.conftest import DEV_SET, SHARED, answerer_over, needs_shared, settings_for

SQUAD_DEV = SHARED / "eval" / "squad-dev"
SENTENCE = (
    "The biggest city on the river Rhine is Cologne, Germany with a population of more than 1,050,000 people; "
    'it was called "Colonia" (in Latin) in 50 AD.'
)


def candidates(sentence: str) -> list[str]:
    tokens = tokenize(sentence)
    starts, ends = candidate_spans(tokens)
    return [sentence[tokens.starts[a] : tokens.ends[b - 1]] for a, b in zip(starts, ends, strict=True)]


def test_tokens_keep_exact_offsets_numbers_and_possessives_apart():
    sentence = "Chopin's 1,050,000 fans in the U.S. (1990s) paid $5."
    tokens = tokenize(sentence)
    assert all(sentence[a:b] == text for a, b, text in zip(tokens.starts, tokens.ends, tokens.texts, strict=True))
    assert tokens.texts[:3] == ["Chopin", "'s", "1,050,000"]
    assert "U.S." in tokens.texts and "1990s" in tokens.texts and "$" in tokens.texts


def test_candidates_are_names_numbers_and_content_runs_within_brackets_and_clauses():
    found = candidates(SENTENCE)
    for wanted in ("Cologne", "Cologne, Germany", "1,050,000", "more than 1,050,000 people", "Colonia", "Latin",
                   "50 AD", "river Rhine"):  # fmt: skip
        assert wanted in found
    assert "city on the river" in found  # a stopword inside is fine
    assert not any(text.split()[0].lower() in ("the", "of", "a", "in") for text in found)
    assert not any(text.endswith((",", ".", " of", " the")) for text in found)
    assert not any(";" in text or "(" in text or '"' in text for text in found)  # never across a clause or bracket
    assert all(len(tokenize(text).texts) <= MAX_SPAN for text in found)


def test_features_are_one_row_per_candidate_and_see_the_question():
    question = "What is the largest city the Rhine runs through?"
    tokens = tokenize(SENTENCE)
    spans = candidate_spans(tokens)
    features = phrase_features(question_form(question), question_terms(question), tokens, spans)
    assert features.shape == (len(spans[0]), len(PHRASE_FEATURES))
    texts = candidates(SENTENCE)
    overlap = features[:, PHRASE_FEATURES.index("question_overlap")]
    head = features[:, PHRASE_FEATURES.index("head_in_span")]
    assert overlap[texts.index("Rhine")] == 1.0 and overlap[texts.index("Cologne")] == 0.0
    assert head[texts.index("biggest city")] == 1.0 and head[texts.index("Cologne")] == 0.0
    year = features[:, PHRASE_FEATURES.index("year")]
    assert year[texts.index("1,050,000")] == 0.0


def test_the_words_around_a_span_and_in_it_are_read_from_the_right_tokens():
    sentence = 'Talks in (Geneva) ended in 2021, after "Rome" cost $ 10 million and 5 % of 3 km of road.'
    question = "Where did the talks end?"
    tokens = tokenize(sentence)
    features = phrase_features(question_form(question), question_terms(question), tokens, candidate_spans(tokens))
    texts = candidates(sentence)

    def signals(span: str) -> set[str]:
        row = features[texts.index(span)]
        return {name for name, value in zip(PHRASE_FEATURES, row, strict=True) if value and name in WORD_SIGNALS}

    assert signals("Geneva") == {"after_open", "before_close", "bracketed", "capitalised", "all_capitalised"}
    assert signals("2021") == {"after_in", "before_comma", "year", "number"}
    # a straight quote mark both opens and closes
    assert signals("Rome") == {"quoted", "after_open", "before_close", "capitalised", "all_capitalised"}
    assert signals("$ 10 million") == {"money", "number", "before_and"}
    assert signals("5 %") == {"percent", "number", "before_of"}
    assert signals("3 km") == {"unit", "number", "after_of", "before_of"}
    assert signals("road") == {"after_of", "before_end", "lowercase"}


WORD_SIGNALS = frozenset(PHRASE_FEATURES[PHRASE_FEATURES.index("capitalised") :]) - {"len_1", "len_2", "len_3",
                                                                                      "len_4_5", "len_6_up"}


@pytest.mark.parametrize(
    ("question", "form", "head"),
    [
        ("When did the Rhine freeze?", "when", None),
        ("In what year was Chopin born?", "when", "year"),
        ("How many people live in Warsaw?", "how_many", None),
        ("What river is larger than the Rhine?", "what_noun", "river"),
        ("Which country borders France?", "where", "country"),
        ("Who is Louis Bono?", "definition", None),
        ("Who wrote the treaty?", "who", None),
        ("What did Blinken say?", "what_do", None),
        ("What is the largest city on the Rhine?", "what_is", "city"),
        ("Why did the talks fail?", "why", None),
        ("The Rhine flows through which country?", "where", "country"),
    ],
)
def test_question_forms(question, form, head):
    assert question_form(question).form == form and question_form(question).head == head
    assert form in QUESTION_FORMS


def test_question_word_is_the_first_wh_word_anywhere():
    assert question_word("The Rhine flows through which country?") == "which"
    assert question_word("HOW many?") == "how" and question_word("Name a city.") == "other"


def test_shipped_model_parses_and_a_broken_one_says_how_to_mend_it():
    model = shipped_phrase_model()
    assert 0.0 < model.threshold < 1.0
    text = model_to_json(model, {"note": "round trip"})
    assert parse_phrase_model(text, "x.json").threshold == model.threshold
    data = json.loads(text)
    data["weights"].pop("idf")
    with pytest.raises(ConfigError, match=r"re-fit with `python tools/fit_phrase\.py`"):
        parse_phrase_model(json.dumps(data), "x.json")
    with pytest.raises(ConfigError, match="not usable"):
        parse_phrase_model("{", "x.json")


def test_squad_normalisation_and_scores():
    assert squad_normalise("The  North Sea!") == "north sea"
    assert exact_match("North Sea", ["the North Sea in the Netherlands", "North Sea"])
    assert f1_score("Cologne, Germany", ["Cologne"]) == pytest.approx(2 / 3)
    assert f1_score("Bonn", ["Cologne"]) == 0.0


def assert_exact(phrase: AnswerPhrase, answer: Answer) -> None:
    """The phrase sits inside the first passage, and its file's text at its offsets is its text."""
    passage = answer.passages[0]
    file_text = passage.location.file.read_text(encoding="utf-8")
    assert file_text[phrase.start : phrase.end] == phrase.text
    assert passage.location.start <= phrase.start < phrase.end <= passage.location.end
    assert (phrase.line, phrase.column) == (line_of(file_text, phrase.start), column_of(file_text, phrase.start))
    assert 0.0 <= phrase.probability <= 1.0


def check_every_answer(answerer: Answerer, questions: list[str]) -> int:
    """Offsets of the shown phrase and of the best one, shown or not, of every answer; how many were shown."""
    shown = 0
    for question in questions:
        answer = answerer.ask(question)
        if answer.abstained:
            assert answer.phrase is None
            continue
        best = best_phrase(clean_question(question), answer.passages[0], answer.confidence, answerer.index)
        assert best is not None
        assert_exact(best, answer)
        if answer.phrase is not None:
            shown += 1
            assert answer.phrase == best
            assert_exact(answer.phrase, answer)
        else:
            assert best.probability < shipped_phrase_model().threshold
    return shown


@needs_shared(DEV_SET)
def test_phrase_offsets_are_exact_for_every_dev_question_on_the_seeds(answerer):
    questions = [json.loads(line)["question"] for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line]
    check_every_answer(answerer, questions)


@needs_shared(SQUAD_DEV / "questions.jsonl")
def test_phrase_offsets_are_exact_on_a_squad_sample(tmp_path: Path):
    answerer = answerer_for(settings_for(SQUAD_DEV / "corpus", tmp_path / "cache"))
    lines = (SQUAD_DEV / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in random.Random(23).sample(lines, 80)]
    assert check_every_answer(answerer, questions) > 0  # Wikipedia questions often get a phrase


def test_a_phrase_across_a_line_break_keeps_line_and_column(tmp_path: Path):
    files = {"oxygen.txt": "Oxygen\n\nThe gas was first isolated by Carl Scheele in\nthe year 1773 in Uppsala.\n"}
    answerer = answerer_over(tmp_path, files, min_confidence=0.0)  # two sentences: no abstention model for them
    answer = answerer.ask("When was the gas first isolated?")
    passage = answer.passages[0]
    assert "\n" in passage.text
    at = passage.text.index("1773")
    phrase = phrase_in_passage(passage, at, at + 4, 0.9)
    assert_exact(phrase, answer)
    assert (phrase.line, phrase.column) == (4, 10)


def test_eval_scores_the_phrase_readers_skill_shown_and_all_answerable(answerer):
    answer = answerer.ask("Who is Louis Bono?")
    passage = next(p for p in answer.passages if "senior advisor for Caucasus negotiations" in p.text)
    at = passage.text.index("senior advisor")
    right = phrase_in_passage(passage, at, at + len("senior advisor for Caucasus negotiations"), 0.8)
    wrong = phrase_in_passage(passage, 0, 4, 0.2)
    answer = replace(answer, passages=(passage,), phrase=None)
    gold = (Gold(passage.location.source, "senior advisor for Caucasus negotiations"),)
    item = EvalItem("1", "Who is Louis Bono?", True, "factoid", gold)
    results = [
        ItemResult(item, replace(answer, phrase=right), 1, right),
        ItemResult(replace(item, id="2", question="When did he go?"), answer, 1, wrong),  # not shown
        ItemResult(replace(item, id="3"), Answer("q", (), True, "no"), None, None),  # abstained
        ItemResult(EvalItem("4", "q", False, "adversarial", ()), replace(answer, phrase=wrong), None, wrong),
    ]
    report = score_results(results).phrase
    assert report is not None
    assert (report.readers_skill.questions, report.readers_skill.em) == (2, 0.5)
    assert (report.shown.questions, report.shown.em, report.shown.f1) == (1, 1.0, 1.0)
    assert report.answered == 2
    assert report.all_answerable.questions == 3 and report.all_answerable.em == pytest.approx(1 / 3)
    assert report.ece == pytest.approx(0.2)  # 0.8 right, 0.2 wrong: each bin off by 0.2
    assert [(w.word, w.answered, w.shown) for w in report.by_word] == [("who", 1, 1), ("when", 1, 0)]
    printed = render_report(score_results(results))
    assert "reader's skill:  0.500 / 0.500 (best phrase, shown or not, on 2 questions" in printed
    assert "shown:           1.000 / 1.000 (1 of 2 answered answerable questions, 50.0%)" in printed
