"""Fit qabot's ranker, confidence model, abstention threshold and label cut-offs on many articles.

    pip install -e '.[dev]'        # scipy for the optimiser
    python tools/fit_models.py     # fits on ../shared/eval, writes qabot/data/models.json

Data: every question of the news dev set (asked of seeds/), squad-dev (Rhine, with Sky's questions as
out-of-corpus) and squad-multi (12 articles in the corpus, 3 outside), each asked of its own corpus.
A question's group is the article it was written on: a squad-multi article, Rhine, Sky, a seed file
for news (its first gold's file), and each news question the corpus cannot answer on its own. Every
fold holds out whole groups, so a held-out question's article was never fitted on.

- The ranker is a linear model over CANDIDATE_FEATURES, fitted listwise (a softmax over each answerable
  question's candidates, maximising the probability of the hitting ones, L2-regularised).
- The confidence model is logistic regression over QUESTION_FEATURES, labelled by whether the first
  passage hits, each question's signals taken under a ranker fitted without its article (inner folds).
  SQuAD's adversarial questions (written to look answerable from a paragraph that does not answer
  them) are rare in use, so they weigh ADVERSARIAL_WEIGHTS[i] of an answerable one.
- The abstention threshold is the confidence under which a target share of the training questions'
  answerable ones fall, on those cross-fitted signals.
- "Likely answer" starts at the lowest confidence above which LIKELY_PRECISION of the cross-fitted
  shown answers are right, "Possible match" at the lowest above which POSSIBLE_PRECISION are (adversarial
  questions left out, as of ECE: users rarely ask them).

Every setting (L2 strengths, adversarial weight, threshold target) is chosen by the grouped CV alone.
The figures reported beside the fitted ones come from asking each held-out fold's questions with models
fitted on the other folds, through the real Answerer, over several draws of the folds; each variant kind
(answer.VARIANT_KINDS) is also measured by leaving it out.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from itertools import product
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from qabot.answer import VARIANT_KINDS, Answerer, AnswerParams, Ranking, clean_question
from qabot.calibration import expected_calibration_error, reliability_bins
from qabot.config import load_settings
from qabot.config import replace as replace_settings
from qabot.eval_match import is_hit
from qabot.eval_set import EvalItem, load_eval
from qabot.evaluate import EvalReport, ItemResult, ask_item, score_results
from qabot.features import CANDIDATE_FEATURES, QUESTION_FEATURES, question_features
from qabot.learned import LIKELY, POSSIBLE, WEAK, Labels, LinearModel, Models, logistic, models_to_json
from qabot.store import IndexParams, open_index

PROJECT = Path(__file__).resolve().parent.parent
EVAL = PROJECT.parent / "shared" / "eval"
FOLDS = 5
INNER_FOLDS = 4
RANKER_L2 = (0.3, 1.0, 3.0)
CONFIDENCE_L2 = (0.1, 1.0, 10.0)
ADVERSARIAL_WEIGHTS = (0.05, 0.1, 0.3, 1.0)
THRESHOLD_TARGETS = (0.02, 0.025, 0.03, 0.035, 0.04)  # share of cross-fitted answerable confidences under the threshold
MAX_FALSE_ABSTENTION = 0.04  # a threshold target is kept only if every set's CV false abstention stays under it
LIKELY_PRECISION = 0.92  # the bar is 0.90 on unseen articles: keep a margin for a new corpus
POSSIBLE_PRECISION = 0.5
MIN_LABELLED = 30  # answers a label's precision is first counted over (the very top few are noise)
# The confidence can only rise with these signals and fall with the missing words', whatever the
# training questions' correlations say: monotone weights are what carries to other corpora.
RISING = (
    "top_score",
    "margin",
    "top_coverage",
    "top_paragraph_coverage",
    "pairs_together",
    "article_coverage",
    "top_window_coverage",
    "best_coverage",
)
FALLING = (
    "missing_share",
    "missing_common_share",
    "missing_names",
    "variant_names",
    "variant_name_edits",
    "variant_names_unnamed",
)
DEPTH = 10
FOLD_SEEDS = (0, 1, 2)  # draws of the folds the CV figures are reported over (the first is the headline)
TRADEOFF_THRESHOLDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)  # fixed min_confidence the CV is also reported at
UNCALIBRATED = "adversarial"  # the kind left out of ECE and label precision
EVERYDAY_ZIPFS = (99.0, 5.5, 5.0, 4.5, 4.0)  # cut-offs for everyday words tried (99: no word is everyday)


@dataclass(frozen=True, slots=True)
class EvalSource:
    """An eval set, the corpus it is asked of, and the group (article) of each of its questions."""

    name: str
    questions: Path
    corpus: Path
    group: Callable[[EvalItem], str]


def news_group(item: EvalItem) -> str:
    """A news question's seed file (its first gold's), or the question itself when no article answers it."""
    return f"news:{item.answers[0].source}" if item.answers else f"news:{item.id}"


SOURCES = (
    EvalSource("news", EVAL / "dev.jsonl", PROJECT / "seeds", news_group),
    EvalSource("squad-dev", EVAL / "squad-dev" / "questions.jsonl", EVAL / "squad-dev" / "corpus",
               lambda item: "Sky" if item.kind == "out-of-corpus" else "Rhine"),
    EvalSource("squad-multi", EVAL / "squad-multi" / "questions.jsonl", EVAL / "squad-multi" / "corpus",
               lambda item: str(item.article)),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Example:
    """One eval question asked of its corpus: its ranking's candidates and which of them hit."""

    item: EvalItem
    set_name: str
    ranking: Ranking
    hits: np.ndarray  # bool per candidate row
    group: str
    weight: float = 1.0  # in the confidence fit


@dataclass(frozen=True, slots=True)
class Setting:
    """What a fit chooses among: L2 strengths, the adversarial questions' weight, the threshold target."""

    ranker_l2: float
    confidence_l2: float
    adversarial_weight: float
    threshold_target: float


def bm25_models(everyday_zipf: float = EVERYDAY_ZIPFS[0]) -> Models:
    """Models that rank by BM25 alone and never abstain: what candidates are collected with (leaving out
    everyday words from everyday_zipf)."""
    ranker_weights = np.array([name == "bm25" for name in CANDIDATE_FEATURES], dtype=np.float64)
    ones, zeros = np.ones(len(QUESTION_FEATURES)), np.zeros(len(QUESTION_FEATURES))
    ranker = LinearModel(CANDIDATE_FEATURES, np.zeros(len(CANDIDATE_FEATURES)), np.ones(len(CANDIDATE_FEATURES)),
                         ranker_weights)  # fmt: skip
    never = LinearModel(QUESTION_FEATURES, zeros, ones, zeros)
    return Models(ranker, never, never, 0.0, Labels(1.0, 1.0), everyday_zipf)


def open_answerers(sources: Sequence[EvalSource], stack: ExitStack) -> dict[str, Answerer]:
    """An answerer (BM25 models) over each source's corpus, its index cached in a temporary folder."""
    base = load_settings(PROJECT / "config" / "qabot.toml", env={})
    answerers = {}
    for source in sources:
        cache = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        settings = replace_settings(base, corpus=source.corpus, cache_dir=cache)
        params = IndexParams(settings.k1, settings.b, settings.boilerplate_patterns, settings.max_file_bytes)
        index, _ = open_index(settings.corpus, settings.index_dir, params, lambda message: None)
        answerers[source.name] = Answerer(index, AnswerParams(settings.top_k, 0.0, settings.variant_weight),
                                          bm25_models())  # fmt: skip
    return answerers


def collect(
    sources: Sequence[EvalSource], answerers: dict[str, Answerer], everyday_zipf: float, **changes: object
) -> list[Example]:
    """Every question of every source ranked by its corpus's answerer, its AnswerParams changed as given, with
    everyday words from everyday_zipf left out (the candidates and their features do not depend on the
    fitted models)."""
    examples = []
    for source in sources:
        answerer = answerers[source.name]
        answerer = Answerer(answerer.index, replace(answerer.params, **changes), bm25_models(everyday_zipf))
        for item in load_eval(source.questions):
            ranking = answerer.rank(clean_question(item.question))
            hits = np.array(
                [item.answerable and is_hit(answerer.passage_of(int(sent)), item.answers)
                 for sent in ranking.candidates.sents], dtype=bool)  # fmt: skip
            examples.append(Example(item, source.name, ranking, hits, source.group(item)))
    return examples


def weighted(examples: Sequence[Example], adversarial_weight: float) -> list[Example]:
    return [replace(e, weight=adversarial_weight if e.item.kind == UNCALIBRATED else 1.0) for e in examples]


def standardiser(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = rows.mean(axis=0)
    scale = rows.std(axis=0)
    return mean, np.where(scale > 1e-9, scale, 1.0)


def segment_logsumexp(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """log(sum(exp(values))) over each segment [starts[i], starts[i] + lengths[i]); -inf values count nothing."""
    peak = np.maximum.reduceat(values, starts)
    return peak + np.log(np.add.reduceat(np.exp(values - np.repeat(peak, lengths)), starts))


def fit_ranker(examples: Sequence[Example], l2: float) -> LinearModel:
    """Listwise softmax ranker: maximise, per question with a hitting candidate, the hits' probability."""
    ranked = [e for e in examples if e.hits.any()]
    rows = np.concatenate([e.ranking.candidates.features for e in ranked])
    hits = np.concatenate([e.hits for e in ranked])
    mean, scale = standardiser(rows)
    x = (rows - mean) / scale
    lengths = np.array([len(e.hits) for e in ranked])
    starts = np.cumsum(lengths) - lengths

    def loss(weights: np.ndarray) -> tuple[float, np.ndarray]:
        scores = x @ weights
        everyone = segment_logsumexp(scores, starts, lengths)
        positive = segment_logsumexp(np.where(hits, scores, -np.inf), starts, lengths)
        p_all = np.exp(scores - np.repeat(everyone, lengths))
        p_hit = np.where(hits, np.exp(scores - np.repeat(positive, lengths)), 0.0)
        value = float(np.sum(everyone - positive)) / len(ranked) + l2 * weights @ weights
        return value, (p_all - p_hit) @ x / len(ranked) + 2 * l2 * weights

    result = minimize(loss, np.zeros(len(CANDIDATE_FEATURES)), jac=True, method="L-BFGS-B")
    return LinearModel(CANDIDATE_FEATURES, mean, scale, result.x)


def first_ranked(example: Example, ranker: LinearModel) -> tuple[np.ndarray, bool]:
    """QUESTION_FEATURES of an example under ranker, and whether its first candidate hits."""
    candidates = example.ranking.candidates
    scores = ranker.score(candidates.features)
    order = np.lexsort((candidates.sents, -scores))
    return question_features(example.ranking.terms, candidates, scores, order), bool(example.hits[order[0]])


def question_rows(examples: Sequence[Example], ranker: LinearModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per example with candidates: its QUESTION_FEATURES under ranker, whether its first candidate hits,
    and its index in examples."""
    kept = [i for i, e in enumerate(examples) if len(e.ranking.candidates.sents)]
    pairs = [first_ranked(examples[i], ranker) for i in kept]
    rows = np.array([row for row, _ in pairs]).reshape(len(kept), len(QUESTION_FEATURES))
    return rows, np.array([hit for _, hit in pairs], dtype=bool), np.array(kept, dtype=np.int64)


def fit_confidence(rows: np.ndarray, labels: np.ndarray, weights: np.ndarray, l2: float) -> LinearModel:
    """Weighted, L2-regularised logistic regression of labels on standardised rows, monotone where named."""
    mean, scale = standardiser(rows)
    x = np.column_stack([(rows - mean) / scale, np.ones(len(rows))])
    y = labels.astype(np.float64)
    total = weights.sum()

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ theta
        penalty = theta.copy()
        penalty[-1] = 0.0  # the bias is not shrunk
        value = weights @ (np.logaddexp(0.0, z) - y * z) / total + l2 * penalty @ penalty / total
        return value, x.T @ (weights * (expit(z) - y)) / total + 2 * l2 * penalty / total

    bounds = [(0.0, None) if name in RISING else (None, 0.0) if name in FALLING else (None, None)
              for name in QUESTION_FEATURES] + [(None, None)]  # fmt: skip
    theta = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B", bounds=bounds).x
    return LinearModel(QUESTION_FEATURES, mean, scale, theta[:-1], float(theta[-1]))


def group_folds(examples: Sequence[Example], k: int, seed: int) -> list[np.ndarray]:
    """k folds of example indices, each holding whole groups: groups in a random order, each to the fold
    with the fewest questions so far."""
    rng = np.random.default_rng(seed)
    members: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        members.setdefault(e.group, []).append(i)
    names = sorted(members)
    sizes = [0] * k
    folds: list[list[int]] = [[] for _ in range(k)]
    for g in rng.permutation(len(names)):
        smallest = int(np.argmin(sizes))
        folds[smallest] += members[names[g]]
        sizes[smallest] += len(members[names[g]])
    return [np.array(sorted(fold), dtype=np.int64) for fold in folds]


def splits(examples: Sequence[Example], k: int, seed: int) -> Iterator[tuple[np.ndarray, list[Example]]]:
    """Each fold's example indices, with the examples of the other folds."""
    for held_out in group_folds(examples, k, seed):
        out = set(held_out.tolist())
        yield held_out, [e for i, e in enumerate(examples) if i not in out]


class Fitter:
    """Fits Models for a Setting; rankers are cached by their training questions and L2."""

    def __init__(self) -> None:
        self._rankers: dict[tuple[int, float], LinearModel] = {}
        self._rows: dict[tuple[int, float], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def ranker(self, examples: Sequence[Example], l2: float) -> LinearModel:
        key = (hash(tuple(id(e.item) for e in examples)), l2)
        if key not in self._rankers:
            self._rankers[key] = fit_ranker(examples, l2)
        return self._rankers[key]

    def cross_fitted(self, examples: Sequence[Example], l2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Question rows, labels and example indices, each under a ranker fitted without its group."""
        key = (hash(tuple(id(e.item) for e in examples)), l2)
        if key not in self._rows:
            parts = []
            for held_out, train in splits(examples, INNER_FOLDS, 0):
                rows, labels, kept = question_rows([examples[i] for i in held_out], self.ranker(train, l2))
                parts.append((rows, labels, held_out[kept]))
            self._rows[key] = tuple(np.concatenate([part[i] for part in parts]) for i in range(3))  # type: ignore[assignment]
        return self._rows[key]

    def fit(self, examples: Sequence[Example], setting: Setting) -> Models:
        """The models, threshold and label cut-offs fitted on examples under setting."""
        examples = weighted(examples, setting.adversarial_weight)
        rows, hits, kept = self.cross_fitted(examples, setting.ranker_l2)
        weights = np.array([examples[i].weight for i in kept])
        confidence = fit_confidence(rows, hits, weights, setting.confidence_l2)
        # the abstention model tells answerable questions from those about what the corpus lacks
        asked = np.array([examples[i].item.kind != UNCALIBRATED for i in kept])
        answerable = np.array([examples[i].item.answerable for i in kept])
        abstention = fit_confidence(rows[asked], answerable[asked], np.ones(int(asked.sum())), setting.confidence_l2)
        chance = expit(abstention.score(rows))
        floor = float(np.quantile(chance[answerable], setting.threshold_target)) if answerable.any() else 0.0
        scores, shown = expit(confidence.score(rows)), asked & (chance >= floor)
        likely = cut_off(scores[shown], hits[shown], LIKELY_PRECISION)
        possible = min(cut_off(scores[shown], hits[shown], POSSIBLE_PRECISION), likely)
        ranker = self.ranker(examples, setting.ranker_l2)
        return Models(ranker, confidence, abstention, round(floor, 4), Labels(likely, possible))


def cut_off(scores: np.ndarray, right: np.ndarray, precision: float) -> float:
    """The lowest confidence c such that at least `precision` of the answers at c or above are right,
    counting at least MIN_LABELLED answers (1.0 when there is none)."""
    order = np.argsort(-scores, kind="stable")
    shares = np.cumsum(right[order]) / np.arange(1, len(order) + 1)
    holding = np.flatnonzero(shares[MIN_LABELLED - 1 :] >= precision)
    if not len(holding):
        return 1.0
    return round(float(scores[order[holding[-1] + MIN_LABELLED - 1]]), 4)


@dataclass(frozen=True, slots=True)
class Simulated:
    """What the answerer would do with one example: its confidence, whether it answers, and if right."""

    example: Example
    confidence: float
    answered: bool
    right: bool
    label: str = ""


def simulate(examples: Sequence[Example], models: Models, threshold: float | None = None) -> list[Simulated]:
    """Each example answered as Answerer.ask would with these models (first passage and abstention only)."""
    out = []
    for e in examples:
        if not len(e.ranking.candidates.sents) or not any(term.found for term in e.ranking.terms):
            out.append(Simulated(e, 0.0, False, False))
            continue
        row, hit = first_ranked(e, models.ranker)
        confidence = logistic(float(models.confidence.score(row[None, :])[0]))
        if threshold is None:
            answered = logistic(float(models.abstention.score(row[None, :])[0])) >= models.min_answerable
        else:
            answered = confidence >= threshold
        label = models.labels.of(confidence) if answered else ""
        out.append(Simulated(e, confidence, answered, answered and hit and e.item.answerable, label))
    return out


def summary(results: Sequence[Simulated]) -> dict[str, float]:
    """R@1, false abstention, refusal per unanswerable kind, ECE and label figures of simulated answers."""
    answerable = [r for r in results if r.example.item.answerable]
    figures = {"questions": len(results), "R@1": _mean([r.right for r in answerable]),
               "false_abstention": _mean([not r.answered for r in answerable])}  # fmt: skip
    for kind in sorted({r.example.item.kind for r in results if not r.example.item.answerable}):
        figures[f"refused {kind}"] = _mean([not r.answered for r in results if r.example.item.kind == kind])
    shown = [r for r in results if r.answered and r.example.item.kind != UNCALIBRATED]
    figures["ECE"] = ece([(r.confidence, r.right) for r in shown])
    likely = [r for r in shown if r.label == LIKELY]
    figures["Likely right"] = _mean([r.right for r in likely])
    figures["right labelled Likely"] = _mean([r.label == LIKELY for r in shown if r.right])
    figures["Likely share"] = _mean([r.label == LIKELY for r in shown])
    return figures


def _mean(values: Sequence[bool]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def ece(pairs: Sequence[tuple[float, bool]]) -> float:
    """evaluate's ECE of (confidence, right) pairs; NaN when there are none."""
    value = expected_calibration_error(reliability_bins(pairs))
    return float("nan") if value is None else value


def cross_validated(
    examples: Sequence[Example], setting: Setting, fitter: Fitter, seed: int = 0, k: int = FOLDS
) -> list[tuple[np.ndarray, Models]]:
    """Each fold's example indices with the models fitted on the other folds."""
    return [(held_out, fitter.fit(train, setting)) for held_out, train in splits(examples, k, seed)]


def simulate_folds(
    examples: Sequence[Example], per_fold: Sequence[tuple[np.ndarray, Models]], threshold: float | None = None
) -> list[Simulated]:
    results: list[Simulated] = []
    for held_out, models in per_fold:
        results += simulate([examples[i] for i in held_out], models, threshold)
    return results


def by_set(results: Sequence[Simulated]) -> dict[str, dict[str, float]]:
    names = sorted({r.example.set_name for r in results})
    return {name: summary([r for r in results if r.example.set_name == name]) for name in names}


def line(figures: dict[str, float]) -> str:
    return "  ".join(f"{name} {value:.3f}" if isinstance(value, float) else f"{name} {value}"
                     for name, value in figures.items())  # fmt: skip


def objective(results: Sequence[Simulated]) -> tuple[bool, float]:
    """How a setting's cross-validated answers are judged: admissible when at most MAX_FALSE_ABSTENTION of
    all answerable questions are refused; then R@1 plus the refusal of questions the corpus cannot answer
    (adversarial ones left out) minus ECE."""
    figures = summary(results)
    asked = [r for r in results if not r.example.item.answerable and r.example.item.kind != UNCALIBRATED]
    score = figures["R@1"] + _mean([not r.answered for r in asked]) - figures["ECE"]
    return figures["false_abstention"] <= MAX_FALSE_ABSTENTION, score


def choose_setting(examples: Sequence[Example], fitter: Fitter) -> Setting:
    """The ranker L2 with the best CV R@1, then the confidence setting with the best CV objective."""
    best_r1, ranker_l2 = -1.0, RANKER_L2[0]
    for l2 in RANKER_L2:
        setting = Setting(l2, CONFIDENCE_L2[0], ADVERSARIAL_WEIGHTS[0], 0.0)
        r1 = summary(simulate_folds(examples, cross_validated(examples, setting, fitter), 0.0))["R@1"]
        print(f"  ranker L2 {l2:<5} CV R@1 {r1:.3f}", file=sys.stderr)
        if r1 > best_r1:
            best_r1, ranker_l2 = r1, l2
    best: tuple[bool, float] = (False, -np.inf)
    chosen = Setting(ranker_l2, CONFIDENCE_L2[0], ADVERSARIAL_WEIGHTS[0], THRESHOLD_TARGETS[0])
    for l2, weight, target in product(CONFIDENCE_L2, ADVERSARIAL_WEIGHTS, THRESHOLD_TARGETS):
        setting = Setting(ranker_l2, l2, weight, target)
        judged = objective(simulate_folds(examples, cross_validated(examples, setting, fitter)))
        print(f"  {setting}: admissible {judged[0]}, objective {judged[1]:.4f}", file=sys.stderr)
        if judged > best:
            best, chosen = judged, setting
    return chosen


def choose_everyday_zipf(answerers: dict[str, Answerer]) -> tuple[float, list[Example], dict[str, object]]:
    """The everyday-word cut-off with the best CV objective under a first setting (from the middle of each
    grid), the examples collected with it, and every cut-off's figures."""
    first = Setting(RANKER_L2[1], CONFIDENCE_L2[1], ADVERSARIAL_WEIGHTS[1], THRESHOLD_TARGETS[2])
    best: tuple[tuple[bool, float], float, list[Example]] | None = None
    tried: dict[str, object] = {}
    for zipf in EVERYDAY_ZIPFS:
        examples = collect(SOURCES, answerers, zipf)
        results = simulate_folds(examples, cross_validated(examples, first, Fitter()))
        judged = objective(results)
        tried[str(zipf)] = {"objective": round(judged[1], 4), "admissible": judged[0],
                            **{name: rounded(f) for name, f in by_set(results).items()}}  # fmt: skip
        print(f"  everyday_zipf {zipf}: admissible {judged[0]}, objective {judged[1]:.4f}", file=sys.stderr)
        if best is None or judged > best[0]:
            best = (judged, zipf, examples)
    assert best is not None
    return best[1], best[2], tried


def labels_by_cv(results: Sequence[Simulated]) -> Labels:
    """Label cut-offs from cross-validated answers: each the lowest confidence above which held-out
    answers (adversarial questions left out) are right LIKELY_PRECISION / POSSIBLE_PRECISION of the time."""
    shown = [r for r in results if r.answered and r.example.item.kind != UNCALIBRATED]
    scores = np.array([r.confidence for r in shown])
    right = np.array([r.right for r in shown])
    likely = cut_off(scores, right, LIKELY_PRECISION)
    return Labels(likely, min(cut_off(scores, right, POSSIBLE_PRECISION), likely))


def ask_for_real(
    examples: Sequence[Example], answerers: dict[str, Answerer], per_fold: Sequence[tuple[np.ndarray, Models]]
) -> list[tuple[Example, ItemResult]]:
    """Each example asked through the real Answerer with its fold's models."""
    results = []
    for held_out, models in per_fold:
        for i in held_out.tolist():
            e = examples[i]
            index = answerers[e.set_name].index
            answerer = Answerer(index, replace(answerers[e.set_name].params, min_confidence=None), models)
            results.append((e, ask_item(e.item, answerer.ask, DEPTH)))
    return results


def real_figures(results: Sequence[tuple[Example, ItemResult]]) -> dict[str, object]:
    """EvalReport figures of real answers, with each label's share and precision."""
    report: EvalReport = score_results([result for _, result in results])
    shown = [r for _, r in results if not r.answer.abstained and r.item.kind != UNCALIBRATED]
    labels = {}
    for label in (LIKELY, POSSIBLE, WEAK):
        with_label = [r for r in shown if r.answer.label == label]
        share = round(len(with_label) / len(shown), 4) if shown else None
        precision = round(_mean([r.rank == 1 for r in with_label]), 4) if with_label else None
        labels[label] = {"share": share, "right": precision}
    right = [r for r in shown if r.rank == 1]
    return {
        "questions": len(results), "R@1": round(report.recall_at_1, 4), "R@3": round(report.recall_at_3, 4),
        "MRR@10": round(report.mrr_at_10, 4), "false_abstention": round(report.false_abstention_rate, 4),
        "abstention": {k.kind: round(k.abstained / k.questions, 4) for k in report.abstention_by_kind},
        "ECE": None if report.ece is None else round(report.ece, 4), "labels": labels,
        "right_labelled_likely": round(_mean([r.answer.label == LIKELY for r in right]), 4) if right else None,
    }  # fmt: skip


def per_set(results: Sequence[tuple[Example, ItemResult]]) -> dict[str, dict[str, object]]:
    names = sorted({e.set_name for e, _ in results})
    return {name: real_figures([r for r in results if r[0].set_name == name]) for name in names}


def rounded(figures: dict[str, float]) -> dict[str, float | None]:
    """Figures to 4 places; None for one that has nothing to count (JSON has no NaN)."""
    return {name: None if np.isnan(value) else round(value, 4) for name, value in figures.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=PROJECT / "qabot" / "data" / "models.json")
    args = parser.parse_args(argv)
    missing = [str(source.questions) for source in SOURCES if not source.questions.is_file()]
    if missing:
        print(f"fit_models: eval sets not found: {', '.join(missing)} (they live in ../shared/eval)", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        answerers = open_answerers(SOURCES, stack)
        everyday_zipf, examples, everyday = choose_everyday_zipf(answerers)
        groups = len({e.group for e in examples})
        print(f"{len(examples)} questions in {groups} articles; choosing settings by {FOLDS}-fold article CV",
              file=sys.stderr)  # fmt: skip
        fitter = Fitter()
        setting = choose_setting(examples, fitter)
        per_fold = {seed: cross_validated(examples, setting, fitter, seed) for seed in FOLD_SEEDS}
        simulated = {seed: simulate_folds(examples, folds) for seed, folds in per_fold.items()}
        labels = labels_by_cv([r for results in simulated.values() for r in results])
        per_fold = {seed: [(held, replace(m, labels=labels)) for held, m in folds] for seed, folds in per_fold.items()}
        models = replace(fitter.fit(examples, setting), labels=labels, everyday_zipf=everyday_zipf)
        per_fold = {seed: [(held, replace(m, everyday_zipf=everyday_zipf)) for held, m in folds]
                    for seed, folds in per_fold.items()}  # fmt: skip
        fitted = ask_for_real(examples, answerers, [(np.arange(len(examples)), models)])
        cv = ask_for_real(examples, answerers, per_fold[FOLD_SEEDS[0]])
        report: dict[str, object] = {
            "setting": {"ranker_l2": setting.ranker_l2, "confidence_l2": setting.confidence_l2,
                        "adversarial_weight": setting.adversarial_weight,
                        "threshold_target": setting.threshold_target},
            "folds": FOLDS, "articles": groups, "fitted": per_set(fitted), "cross_validated": per_set(cv),
            "cross_validated_fold_draws": {str(seed): {name: rounded(f) for name, f in by_set(
                simulate_folds(examples, folds)).items()} for seed, folds in per_fold.items()},
        }  # fmt: skip
        for name in sorted(report["fitted"]):  # type: ignore[call-overload]
            print(f"{name:12s} fitted: {report['fitted'][name]}\n{'':12s} CV:     {report['cross_validated'][name]}")
        report["min_confidence_tradeoff"] = {
            str(threshold): {name: rounded(f) for name, f in by_set(
                simulate_folds(examples, per_fold[FOLD_SEEDS[0]], threshold)).items()}
            for threshold in TRADEOFF_THRESHOLDS
        }  # fmt: skip
        # each kind of variant left out, and other everyday-word cut-offs: what they do to held-out articles
        alternatives: dict[str, dict[str, object]] = {
            **{f"without {kind}": {"variant_kinds": VARIANT_KINDS - {kind}} for kind in sorted(VARIANT_KINDS)},
            "names spelled as any word": {"names_spelled_as_names": False},
            "everyday words spelled otherwise": {"spell_everyday_words": True},
        }
        measured = {}
        for name, changes in alternatives.items():
            other = collect(SOURCES, answerers, everyday_zipf, **changes)
            measured[name] = {set_name: rounded(f) for set_name, f in by_set(
                simulate_folds(other, cross_validated(other, setting, Fitter()))).items()}  # fmt: skip
            print(f"{name}: {measured[name]}")
        report["alternatives"] = measured
        report["everyday_zipf"] = {"chosen": everyday_zipf, "tried": everyday}
        report["shipped"] = report["cross_validated_fold_draws"][str(FOLD_SEEDS[0])]  # type: ignore[index]
    args.out.write_text(models_to_json(models, report), encoding="utf-8")
    print(f"wrote {args.out} (setting {setting}, labels {labels}, min_answerable {models.min_answerable})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
