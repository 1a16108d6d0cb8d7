"""The answer phrase: the words of the first passage that answer the question, without a neural model.

Each candidate span of the sentence (phrase_signals.py: a name, a number with its unit, a run of
content words) is described by the signals PHRASE_FEATURES names, each weighed once for every
question and once more for the question's form (answer_type.question_form: a year for "when", a
name after "in" for "where", a word beside the question's for "who"). A softmax over the sentence's
candidates picks one, and a logistic model over how sure that softmax is, and how sure the answerer
is of the sentence, gives the probability that the phrase is SQuAD's answer. Weights are
package data (qabot/data/phrase.json), fitted by `python tools/fit_phrase.py`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from qabot.answer_type import QUESTION_FORMS, QuestionForm, question_form
from qabot.errors import ConfigError
from qabot.model import AnswerPhrase, Passage
from qabot.phrase_signals import MAX_SPAN, PHRASE_FEATURES, candidate_spans, phrase_features, question_terms, tokenize
from qabot.scoring import idf_of_unknown
from qabot.searchable import SearchableIndex

FORMAT = 1
# Signals of the top candidate that its "show it" probability is read from (plus the question form).
SHOW_FEATURES = (
    "top_probability",  # the softmax's probability of the top candidate
    "runner_up_probability",  # of the second
    "top_length",  # its length in tokens / MAX_SPAN
    "log_candidates",  # log of the number of candidates
    "confidence_logit",  # logit of the answer's confidence that the sentence answers
)
SHOW_NAMES = SHOW_FEATURES + tuple(f"form_{form}" for form in QUESTION_FORMS)  # the show model's weights

@dataclass(frozen=True, slots=True)
class PhraseModel:
    """The fitted weights: the span ranker's (shared, and per question form), the logistic "show it"
    model's, and the probability a phrase needs to be shown."""

    weights: np.ndarray  # [len(PHRASE_FEATURES)]
    crossed: np.ndarray  # [len(QUESTION_FORMS), len(PHRASE_FEATURES)]: added for questions of that form
    show_weights: np.ndarray  # [len(SHOW_NAMES)]
    show_bias: float
    threshold: float


@dataclass(frozen=True, slots=True)
class PhraseGuess:
    """The best candidate of a sentence: sentence[start:end], and how sure the model is of it."""

    start: int
    end: int
    probability: float  # that it is the answer (calibrated on SQuAD's answers)


def span_scores(model: PhraseModel, form: QuestionForm, features: np.ndarray) -> np.ndarray:
    """The model's score of each candidate: the weights every question shares plus its form's own."""
    return features @ (model.weights + model.crossed[QUESTION_FORMS.index(form.form)])


def softmax(scores: np.ndarray) -> np.ndarray:
    """exp(scores) normalised to sum to 1, without overflow."""
    exp = np.exp(scores - scores.max())
    return exp / exp.sum()


def show_features(form: QuestionForm, probabilities: np.ndarray, top_length: int, confidence: float) -> np.ndarray:
    """The SHOW_FEATURES of a sentence's best candidate, then one column per question form (1 for its own)."""
    ordered = np.sort(probabilities)[::-1]
    clipped = min(max(confidence, 1e-4), 1 - 1e-4)
    values = [ordered[0], ordered[1] if len(ordered) > 1 else 0.0, top_length / MAX_SPAN,
              math.log(len(ordered)), math.log(clipped / (1 - clipped))]  # fmt: skip
    forms = [float(form.form == name) for name in QUESTION_FORMS]
    return np.array(values + forms)


def show_probability(model: PhraseModel, features: np.ndarray) -> float:
    """The logistic model's probability that the phrase is the answer."""
    x = float(features @ model.show_weights + model.show_bias)
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def read_phrase(
    question: str, sentence: str, confidence: float, model: PhraseModel, idf: Callable[[str], float] | None = None
) -> PhraseGuess | None:
    """The sentence's most likely answer phrase (None when it has no candidate), with its probability of
    being the answer given the confidence that the sentence answers the question."""
    tokens = tokenize(sentence)
    spans = candidate_spans(tokens)
    if not len(spans[0]):
        return None
    form = question_form(question)
    features = phrase_features(form, question_terms(question), tokens, spans, idf)
    probabilities = softmax(span_scores(model, form, features))
    best = int(np.argmax(probabilities))
    first, stop = int(spans[0][best]), int(spans[1][best])
    shown = show_features(form, probabilities, stop - first, confidence)
    start, end = int(tokens.starts[first]), int(tokens.ends[stop - 1])
    return PhraseGuess(start, end, show_probability(model, shown))


def index_idf(index: SearchableIndex) -> Callable[[str], float]:
    """An index term's IDF over that of a term no sentence holds (so 1 for a word the corpus lacks)."""
    rarest = idf_of_unknown(index.n_sentences) or 1.0
    term_ids, idf = index.term_ids, index.idf

    def of(term: str) -> float:
        term_id = term_ids.get(term)
        return 1.0 if term_id is None else max(float(idf[term_id]), 0.0) / rarest

    return of


def best_phrase(question: str, passage: Passage, confidence: float, index: SearchableIndex) -> AnswerPhrase | None:
    """The shipped model's most likely phrase of the passage, however unlikely (None: no candidate)."""
    guess = read_phrase(question, passage.text, confidence, shipped_phrase_model(), index_idf(index))
    return None if guess is None else phrase_in_passage(passage, guess.start, guess.end, guess.probability)


def answer_phrase(question: str, passage: Passage, confidence: float, index: SearchableIndex) -> AnswerPhrase | None:
    """The passage's phrase when its probability reaches the shipped model's threshold, else None."""
    phrase = best_phrase(question, passage, confidence, index)
    return phrase if phrase is not None and phrase.probability >= shipped_phrase_model().threshold else None


def phrase_in_passage(passage: Passage, start: int, end: int, probability: float) -> AnswerPhrase:
    """The AnswerPhrase for passage.text[start:end], placed in its file: file_text[start:end] == text."""
    text = passage.text
    location = passage.location
    newline = text.rfind("\n", 0, start)
    line = location.line + text.count("\n", 0, start)
    column = start - newline if newline >= 0 else location.column + start
    return AnswerPhrase(text[start:end], location.start + start, location.start + end, line, column, probability)


def model_to_json(model: PhraseModel, report: dict[str, Any]) -> str:
    """The JSON text of the model, with the fitting report kept beside it."""
    data = {
        "format": FORMAT,
        "threshold": model.threshold,
        "weights": dict(zip(PHRASE_FEATURES, map(float, model.weights), strict=True)),
        "crossed": {
            form: dict(zip(PHRASE_FEATURES, map(float, row), strict=True))
            for form, row in zip(QUESTION_FORMS, model.crossed, strict=True)
        },
        "show": {
            "bias": model.show_bias,
            "weights": dict(zip(SHOW_NAMES, map(float, model.show_weights), strict=True)),
        },
        "report": report,
    }
    return json.dumps(data, indent=1) + "\n"


def parse_phrase_model(text: str, where: str) -> PhraseModel:
    """The model from model_to_json's text; ConfigError says what is wrong and how to mend it."""
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        if tuple(data["weights"]) != PHRASE_FEATURES:
            raise ValueError(f"features {list(data['weights'])}, expected {list(PHRASE_FEATURES)}")
        crossed = data["crossed"]
        if tuple(crossed) != QUESTION_FORMS or any(tuple(row) != PHRASE_FEATURES for row in crossed.values()):
            raise ValueError(f"crossed weights are not over the forms {list(QUESTION_FORMS)} x the features")
        if tuple(data["show"]["weights"]) != SHOW_NAMES:
            raise ValueError(f"show features {list(data['show']['weights'])}, expected {list(SHOW_NAMES)}")
        model = PhraseModel(
            np.array([float(w) for w in data["weights"].values()]),
            np.array([[float(w) for w in row.values()] for row in data["crossed"].values()]),
            np.array([float(w) for w in data["show"]["weights"].values()]),
            float(data["show"]["bias"]),
            float(data["threshold"]),
        )
        if not all(np.all(np.isfinite(a)) for a in (model.weights, model.crossed, model.show_weights)):
            raise ValueError("a weight is not finite")
        if not 0.0 <= model.threshold <= 1.0:
            raise ValueError(f"threshold {model.threshold} is outside 0..1")
        return model
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"phrase model {where} is not usable ({exc}); re-fit with `python tools/fit_phrase.py`") \
            from None


@cache
def shipped_phrase_model() -> PhraseModel:
    """The phrase model shipped with the package (qabot/data/phrase.json)."""
    resource = files("qabot").joinpath("data/phrase.json")
    return parse_phrase_model(resource.read_text(encoding="utf-8"), str(Path("qabot") / "data" / "phrase.json"))
