"""Fit qabot's answer-phrase model, report fitted and article-grouped cross-validated figures, write the JSON.

    python tools/fit_phrase.py     # fits on ../shared/eval, writes qabot/data/phrase.json

(A few minutes; on a busy machine OMP_NUM_THREADS=1 makes the optimiser's products faster.)

Data: the answerable questions of squad-multi and squad-dev, whose gold `quote`s are SQuAD's annotated
answer phrases. The span ranker (a softmax over a sentence's candidates, L2, L-BFGS) is fitted on each
question's gold sentence: the sentence of the gold paragraph that holds a quote, as qabot segments it,
so that it does not depend on the sentence ranker. The "show it" model is logistic regression over how
sure the softmax is and the answer's confidence, fitted on cross-validated predictions for qabot's
actual first passage, labelled by SQuAD's exact match; the show threshold is the probability above
which SHOWN_SHARE of those answers lie. Folds hold out whole articles (squad-dev's Rhine is one), and
every setting (the L2 strengths, the threshold) is chosen inside them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from qabot.analyze import term_of
from qabot.answer import Answerer, clean_question
from qabot.answer_type import QUESTION_FORMS, question_form
from qabot.calibration import expected_calibration_error, reliability_bins
from qabot.config import load_settings, replace
from qabot.eval_match import exact_match, f1_score, fold_for_match
from qabot.frontend import answerer_for
from qabot.phrase import PhraseModel, index_idf, model_to_json, show_features, softmax
from qabot.phrase_signals import PHRASE_FEATURES, candidate_spans, phrase_features, question_terms, tokenize
from qabot.segment import compile_boilerplate, sentence_spans

PROJECT = Path(__file__).resolve().parent.parent
SHARED = PROJECT.parent / "shared" / "eval"
SETS = (("squad-multi", SHARED / "squad-multi"), ("squad-dev", SHARED / "squad-dev"))
DEFAULT_ARTICLE = "Rhine"  # squad-dev's questions carry no article key: they are all Rhine's
SPAN_L2 = (0.0003, 0.001, 0.003)
SHOW_L2 = 0.01
SHOWN_SHARE = 0.41  # of answered questions; a little above the 40% aimed at, so held-out folds keep it
N_FORMS, N_FEATURES = len(QUESTION_FORMS), len(PHRASE_FEATURES)


@dataclass(frozen=True, slots=True)
class Sentence:
    """One question's candidate spans in one sentence, their signals and how each scores against the golds."""

    article: str
    question: str
    form: int  # index into QUESTION_FORMS
    text: str
    starts: np.ndarray  # character offsets of each candidate in text
    ends: np.ndarray
    features: np.ndarray
    em: np.ndarray  # bool per candidate
    f1: np.ndarray
    golds: tuple[str, ...]
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class Batch:
    """Sentences stacked for the optimiser: rows grouped by sentence."""

    features: np.ndarray
    positive: np.ndarray
    group_starts: np.ndarray
    group_of_row: np.ndarray
    form_rows: tuple[np.ndarray, ...]  # the rows of each question form
    form_features: tuple[np.ndarray, ...]  # and their features, copied once rather than at every step


def load_items() -> list[tuple[str, Path, dict]]:
    """(set name, corpus folder, raw item) of every answerable question."""
    items = []
    for name, folder in SETS:
        for line in (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines():
            raw = json.loads(line)
            if raw["answerable"]:
                items.append((name, folder / "corpus", raw))
    return items


def make_sentence(
    article: str, question: str, text: str, confidence: float, golds: Sequence[str], idf: Callable[[str], float]
) -> Sentence:
    """The candidates of one sentence for one question, with their signals and scores."""
    tokens = tokenize(text)
    spans = candidate_spans(tokens)
    form = question_form(question)
    features = phrase_features(form, question_terms(question), tokens, spans, idf)
    starts, ends = tokens.starts[spans[0]], tokens.ends[spans[1] - 1] if len(spans[1]) else spans[1]
    shown = [text[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    return Sentence(article, question, QUESTION_FORMS.index(form.form), text, starts, ends, features,
                    np.array([exact_match(s, golds) for s in shown], dtype=bool),
                    np.array([f1_score(s, golds) for s in shown]), tuple(golds), confidence)  # fmt: skip


def gold_sentence(file_text: str, spans: list[tuple[int, int]], raw: dict) -> str | None:
    """The sentence of a gold paragraph holding a gold quote; of several, the one sharing most question words."""
    question = question_terms(raw["question"])
    best, best_overlap = None, -1
    for gold in raw["answers"]:
        paragraph_at = file_text.find(gold["paragraph"])
        if paragraph_at < 0:
            continue
        low, high = paragraph_at, paragraph_at + len(gold["paragraph"])
        for start, end in spans:
            if low <= start < high and gold["quote"] in file_text[start:end]:
                words = {term_of(w) for w in file_text[start:end].split()}
                overlap = len(words & question)
                if overlap > best_overlap:
                    best, best_overlap = file_text[start:end], overlap
    return best


def first_passage(answerer: Answerer, question: str) -> tuple[str, float] | None:
    """The text and confidence of the answerer's first passage; None when it abstains. Read from its ranking,
    as `ask` does, so that fitting needs no phrase model of its own."""
    ranking = answerer.rank(question)
    found = any(term.found for term in ranking.terms) and len(ranking.order)
    if not found or answerer.refuses(ranking):
        return None
    return answerer.passage_of(int(ranking.candidates.sents[ranking.order[0]])).text, ranking.confidence


def build(cache: Path) -> tuple[list[Sentence], list[Sentence | None], list[str]]:
    """Gold sentences and first passages (None when the answerer abstains) of every answerable question."""
    items = load_items()
    answerers, idfs, texts, spans = {}, {}, {}, {}
    base = load_settings(PROJECT / "config" / "qabot.toml", env={})
    boilerplate = compile_boilerplate(base.boilerplate_patterns)
    for name, folder in SETS:
        answerers[name] = answerer_for(replace(base, corpus=folder / "corpus", cache_dir=cache / name))
        idfs[name] = index_idf(answerers[name].index)
    gold, first, articles = [], [], []
    for name, corpus, raw in items:
        article = raw.get("article", DEFAULT_ARTICLE)
        golds = [gold["quote"] for gold in raw["answers"]]
        source = raw["answers"][0]["source"]
        if (name, source) not in texts:
            texts[name, source] = (corpus / source).read_text(encoding="utf-8")
            spans[name, source] = [(a, b) for a, b, _ in sentence_spans(texts[name, source], boilerplate)]
        question = clean_question(raw["question"])
        sentence = gold_sentence(texts[name, source], spans[name, source], raw)
        if sentence is None:
            continue
        gold.append(make_sentence(article, question, sentence, 1.0, golds, idfs[name]))
        passage = first_passage(answerers[name], question)
        first.append(None if passage is None else make_sentence(article, question, *passage, golds, idfs[name]))
        articles.append(article)
    return gold, first, articles


def stack(sentences: Sequence[Sentence], only_positive: bool = True) -> Batch:
    kept = [s for s in sentences if len(s.em) and (s.em.any() or not only_positive)]
    sizes = np.array([len(s.em) for s in kept])
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    group = np.repeat(np.arange(len(kept)), sizes)
    forms = np.repeat(np.array([s.form for s in kept]), sizes)
    features = np.vstack([s.features for s in kept])
    form_rows = tuple(np.flatnonzero(forms == f) for f in range(N_FORMS))
    return Batch(features, np.concatenate([s.em for s in kept]), starts, group, form_rows,
                 tuple(features[rows] for rows in form_rows))  # fmt: skip


def scores_of(theta: np.ndarray, batch: Batch) -> np.ndarray:
    weights, crossed = theta[:N_FEATURES], theta[N_FEATURES:].reshape(N_FORMS, N_FEATURES)
    scores = batch.features @ weights
    for form, (rows, features) in enumerate(zip(batch.form_rows, batch.form_features, strict=True)):
        scores[rows] += features @ crossed[form]
    return scores


def loss_and_gradient(theta: np.ndarray, batch: Batch, l2: float) -> tuple[float, np.ndarray]:
    """Mean over sentences of -log(probability of the positive candidates), plus l2/2 |theta|^2."""
    scores = scores_of(theta, batch)
    top = np.maximum.reduceat(scores, batch.group_starts)
    exp = np.exp(scores - top[batch.group_of_row])
    total = np.add.reduceat(exp, batch.group_starts)
    positive = np.add.reduceat(exp * batch.positive, batch.group_starts)
    n = len(batch.group_starts)
    loss = float(np.sum(np.log(total) - np.log(positive))) / n + l2 / 2 * float(theta @ theta)
    grad_scores = (exp / total[batch.group_of_row] - exp * batch.positive / positive[batch.group_of_row]) / n
    gradient = np.zeros_like(theta)
    gradient[:N_FEATURES] = batch.features.T @ grad_scores
    crossed = gradient[N_FEATURES:].reshape(N_FORMS, N_FEATURES)
    for form, (rows, features) in enumerate(zip(batch.form_rows, batch.form_features, strict=True)):
        crossed[form] = features.T @ grad_scores[rows]
    return loss, gradient + l2 * theta


def fit_spans(sentences: Sequence[Sentence], l2: float) -> np.ndarray:
    batch = stack(sentences)
    theta = np.zeros(N_FEATURES * (1 + N_FORMS))
    result = minimize(loss_and_gradient, theta, args=(batch, l2), jac=True, method="L-BFGS-B",
                      options={"maxiter": 500})  # fmt: skip
    return result.x


def top_of(theta: np.ndarray, sentence: Sentence) -> tuple[int, np.ndarray]:
    """The best candidate's row and the softmax over the sentence's candidates."""
    weights, crossed = theta[:N_FEATURES], theta[N_FEATURES:].reshape(N_FORMS, N_FEATURES)
    scores = sentence.features @ (weights + crossed[sentence.form])
    probabilities = softmax(scores)
    return int(np.argmax(probabilities)), probabilities


@dataclass(frozen=True, slots=True)
class Read:
    """The top phrase of one sentence: its scores against the golds and its show signals."""

    article: str
    form: str
    em: bool
    f1: float
    show: np.ndarray
    text: str


def read(theta: np.ndarray, sentence: Sentence) -> Read | None:
    if not len(sentence.em):
        return None
    best, probabilities = top_of(theta, sentence)
    form = question_form(sentence.question)
    length = len(tokenize(sentence.text[sentence.starts[best] : sentence.ends[best]]).texts)
    show = show_features(form, probabilities, length, sentence.confidence)
    text = sentence.text[sentence.starts[best] : sentence.ends[best]]
    return Read(sentence.article, form.form, bool(sentence.em[best]), float(sentence.f1[best]), show, text)


def fit_show(reads: Sequence[Read], l2: float = SHOW_L2) -> tuple[np.ndarray, float]:
    x = np.array([r.show for r in reads])
    y = np.array([r.em for r in reads], dtype=float)

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ params[1:] + params[0]
        p = expit(z)
        eps = 1e-12
        loss = -np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)) + l2 / 2 * params[1:] @ params[1:]
        grad = np.concatenate(([np.mean(p - y)], x.T @ (p - y) / len(y) + l2 * params[1:]))
        return float(loss), grad

    result = minimize(objective, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B")
    return result.x[1:], float(result.x[0])


def show_prob(weights: np.ndarray, bias: float, read_: Read) -> float:
    return float(expit(read_.show @ weights + bias))


def threshold_for(probabilities: Sequence[float]) -> float:
    """The probability above which SHOWN_SHARE of the answers lie."""
    return float(np.quantile(np.array(probabilities), 1 - SHOWN_SHARE)) if len(probabilities) else 0.5


def figures(rows: Sequence[tuple[Read | None, float | None, bool]], answerable: int) -> dict:
    """rows: (top phrase of the first passage or None, its show probability, shown) per answered question."""
    answered = [(r, p, shown) for r, p, shown in rows if r is not None]
    shown = [(r, p) for r, p, s in answered if s]
    bins = reliability_bins([(p, r.em) for r, p, _ in answered])
    by_form: dict[str, list] = {}
    for r, _, s in answered:
        by_form.setdefault(r.form, []).append((r, s))
    return {
        "answered": len(answered),
        "shown_share": round(len(shown) / max(len(answered), 1), 4),
        "shown_em": round(float(np.mean([r.em for r, _ in shown])) if shown else 0.0, 4),
        "shown_f1": round(float(np.mean([r.f1 for r, _ in shown])) if shown else 0.0, 4),
        "all_answerable_f1": round(sum(r.f1 for r, _ in shown) / max(answerable, 1), 4),
        "all_answerable_em": round(sum(r.em for r, _ in shown) / max(answerable, 1), 4),
        "top_em_answered": round(float(np.mean([r.em for r, _, _ in answered])), 4),
        "ece": round(expected_calibration_error(bins) or 0.0, 4),
        "by_form": {form: by_form_figures(rows) for form, rows in sorted(by_form.items())},
    }


def by_form_figures(rows: Sequence[tuple[Read, bool]]) -> dict:
    """(top phrase, shown) of one question form's answered questions: how many, shown, and their EM."""
    shown = [r.em for r, s in rows if s]
    return {
        "answered": len(rows),
        "shown": len(shown),
        "top_em": round(float(np.mean([r.em for r, _ in rows])), 3),
        "shown_em": round(float(np.mean(shown)), 3) if shown else None,
    }


def skill(reads: Sequence[Read]) -> dict:
    return {"questions": len(reads), "em": round(float(np.mean([r.em for r in reads])), 4),
            "f1": round(float(np.mean([r.f1 for r in reads])), 4)}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROJECT / "qabot" / "data" / "phrase.json")
    args = parser.parse_args(argv)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="qabot-phrase-") as cache:
        gold, first, articles = build(Path(cache))
    print(f"{len(gold)} questions with a gold sentence, {sum(f is not None for f in first)} answered "
          f"({time.time() - started:.0f} s)", file=sys.stderr)  # fmt: skip
    groups = sorted(set(articles))
    oracle = float(np.mean([s.em.any() for s in gold]))
    candidates = float(np.mean([len(s.em) for s in gold]))
    # span L2 by article-grouped CV on the gold sentences
    fold_thetas: dict[float, dict[str, np.ndarray]] = {}
    cv_gold: dict[float, list[Read]] = {}
    for l2 in SPAN_L2:
        fold_thetas[l2], cv_gold[l2] = {}, []
        for held in groups:
            theta = fit_spans([s for s, a in zip(gold, articles, strict=True) if a != held], l2)
            fold_thetas[l2][held] = theta
            cv_gold[l2] += [r for s, a in zip(gold, articles, strict=True) if a == held if (r := read(theta, s))]
        print(f"span L2 {l2}: CV gold-sentence EM {np.mean([r.em for r in cv_gold[l2]]):.3f} "
              f"({time.time() - started:.0f} s)", file=sys.stderr)  # fmt: skip
    l2 = max(SPAN_L2, key=lambda value: np.mean([r.em for r in cv_gold[value]]))
    # cross-validated reads of the first passages, then the show model and threshold inside the same folds
    cv_first: list[Read | None] = []
    for sentence, article in zip(first, articles, strict=True):
        cv_first.append(read(fold_thetas[l2][article], sentence) if sentence is not None else None)
    answered = [(r, a) for r, a in zip(cv_first, articles, strict=True) if r is not None]
    cv_rows = []
    for held in groups:
        train = [r for r, a in answered if a != held]
        weights, bias = fit_show(train)
        threshold = threshold_for([show_prob(weights, bias, r) for r in train])
        for r, a in answered:
            if a == held:
                p = show_prob(weights, bias, r)
                cv_rows.append((r, p, p >= threshold))
    holds = [s is not None and any(fold_for_match(g) in fold_for_match(s.text) for g in s.golds) for s in first]
    cv_skill = skill([r for r, h in zip(cv_first, holds, strict=True) if r is not None and h])
    # the shipped model: fitted on everything
    theta = fit_spans(gold, l2)
    fit_first = [read(theta, s) if s is not None else None for s in first]
    weights, bias = fit_show([r for r in cv_first if r is not None])
    all_reads = [r for r in cv_first if r is not None]
    threshold = threshold_for([show_prob(weights, bias, r) for r in all_reads])
    fit_rows = [(r, p, p >= threshold) for r in fit_first if r is not None for p in [show_prob(weights, bias, r)]]
    report = {
        "data": "answerable questions of squad-multi and squad-dev with a gold sentence",
        "questions": len(gold),
        "articles": len(groups),
        "candidates_per_sentence": round(candidates, 1),
        "oracle_em": round(oracle, 4),
        "span_l2": l2,
        "cv_gold_sentence_em_by_l2": {str(v): round(float(np.mean([r.em for r in cv_gold[v]])), 4) for v in SPAN_L2},
        "cv_gold_sentence": skill(cv_gold[l2]),
        "fit_gold_sentence": skill([r for s in gold if (r := read(theta, s))]),
        "cv_readers_skill": cv_skill,
        "fit_readers_skill": skill([r for r, h in zip(fit_first, holds, strict=True) if r is not None and h]),
        "cv_first_passage": figures(cv_rows, len(gold)),
        "fit_first_passage": figures(fit_rows, len(gold)),
        "threshold": round(threshold, 4),
        "shown_share_target": SHOWN_SHARE,
    }
    model = PhraseModel(theta[:N_FEATURES], theta[N_FEATURES:].reshape(N_FORMS, N_FEATURES), weights, bias,
                        round(threshold, 4))  # fmt: skip
    args.out.write_text(model_to_json(model, report), encoding="utf-8")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
