"""Fit qabot's ranker and confidence model, report fitted and cross-validated figures, write the JSON.

    pip install -e '.[dev]'        # scipy for the optimiser
    python tools/fit_models.py     # fits on ../shared/eval, writes qabot/data/models.json

Data: every question of each eval set (DESIGN.md's schema), asked of its corpus. The ranker is
a linear model over CANDIDATE_FEATURES, fitted listwise (a softmax over each question's
candidates, maximising the probability of the hitting ones, L2-regularised). The confidence
model is logistic regression over QUESTION_FEATURES, labelled by whether the first passage hits
(never, for an unanswerable question). The abstention threshold is the confidence under which
TARGET_FALSE_ABSTENTION of the training set's answerable questions fall.

Every setting (the two L2 strengths) is chosen by k-fold cross-validation; folds keep a
paragraph's questions together and are stratified by kind. The figures reported beside the
fitted ones come from asking each held-out fold with models fitted on the other folds, through
the real Answerer.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, logsumexp

from qabot.answer import Answerer, Ranking, clean_question
from qabot.config import load_settings
from qabot.config import replace as replace_settings
from qabot.evaluate import EvalItem, first_hit_rank, is_hit, load_eval
from qabot.features import CANDIDATE_FEATURES, QUESTION_FEATURES, question_features
from qabot.learned import LinearModel, Models, logistic, models_to_json
from qabot.model import Passage

PROJECT = Path(__file__).resolve().parent.parent
SHARED = PROJECT.parent / "shared"
DEFAULT_SETS = (
    (SHARED / "eval" / "dev.jsonl", PROJECT / "seeds"),
    (SHARED / "eval" / "squad-dev" / "questions.jsonl", SHARED / "eval" / "squad-dev" / "corpus"),
)
FOLDS = 5
TARGET_FALSE_ABSTENTION = 0.03  # on the training folds; the bar is 5% on held-out ones
RANKER_L2 = (0.01, 0.1, 1.0, 10.0)
CONFIDENCE_L2 = (0.01, 0.1, 1.0, 10.0)
DEPTH = 10


@dataclass(frozen=True, slots=True)
class Example:
    """One eval question asked of its corpus: its ranking's candidates and which of them hit."""

    item: EvalItem
    set_name: str
    answerer: Answerer
    ranking: Ranking
    hits: np.ndarray  # bool per candidate row
    group: str  # questions of one group (a gold paragraph) share a fold


def candidate_passage(answerer: Answerer, sent: int) -> Passage:
    """The passage the answerer would show for sentence `sent` (for the hit rule)."""
    return answerer._passage(sent, 0.0, set(), [], [])


def collect(sets: Sequence[tuple[Path, Path]], cache: Path) -> list[Example]:
    """Every question of every set, ranked by the shipped models (candidates do not depend on them)."""
    base = load_settings(PROJECT / "config" / "qabot.toml", env={})
    examples = []
    for eval_path, corpus in sets:
        settings = replace_settings(base, corpus=corpus, cache_dir=cache / hashlib.sha1(bytes(corpus)).hexdigest())
        answerer = Answerer.from_settings(settings)
        for item in load_eval(eval_path):
            ranking = answerer.rank(clean_question(item.question))
            hits = np.array(
                [item.answerable and is_hit(candidate_passage(answerer, int(sent)), item.answers)
                 for sent in ranking.candidates.sents], dtype=bool)  # fmt: skip
            paragraphs = sorted({answer[2] for answer in item.answers if len(answer) > 2 and answer[2]})
            group = f"{eval_path.name}:{paragraphs[0][:200] if paragraphs else item.id}"
            examples.append(Example(item, eval_path.stem, answerer, ranking, hits, group))
    return examples


def standardiser(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = rows.mean(axis=0)
    scale = rows.std(axis=0)
    return mean, np.where(scale > 1e-9, scale, 1.0)


def fit_ranker(examples: Sequence[Example], l2: float) -> LinearModel:
    """Listwise softmax ranker: maximise, per question with a hitting candidate, the hits' probability."""
    lists = [(e.ranking.candidates.features, e.hits) for e in examples if e.hits.any()]
    mean, scale = standardiser(np.concatenate([features for features, _ in lists]))
    lists = [((features - mean) / scale, hits) for features, hits in lists]

    def loss(weights: np.ndarray) -> tuple[float, np.ndarray]:
        total, gradient = l2 * weights @ weights, 2 * l2 * weights
        for features, hits in lists:
            scores = features @ weights
            everyone = np.exp(scores - logsumexp(scores))
            positive = np.exp(scores[hits] - logsumexp(scores[hits]))
            total += logsumexp(scores) - logsumexp(scores[hits])
            gradient += everyone @ features - positive @ features[hits]
        return total / len(lists), gradient / len(lists)

    result = minimize(loss, np.zeros(len(CANDIDATE_FEATURES)), jac=True, method="L-BFGS-B")
    return LinearModel(CANDIDATE_FEATURES, mean, scale, result.x)


def question_rows(examples: Sequence[Example], ranker: LinearModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per question with candidates: QUESTION_FEATURES under `ranker`, whether its first candidate
    hits, and its index in examples."""
    rows, labels, kept = [], [], []
    for i, e in enumerate(examples):
        candidates = e.ranking.candidates
        if not len(candidates.sents):
            continue
        scores = ranker.score(candidates.features)
        order = np.lexsort((candidates.sents, -scores))
        rows.append(question_features(e.ranking.terms, candidates, scores, order))
        labels.append(bool(e.hits[order[0]]))
        kept.append(i)
    return np.array(rows), np.array(labels), np.array(kept)


def fit_confidence(rows: np.ndarray, labels: np.ndarray, l2: float) -> LinearModel:
    """L2-regularised logistic regression of `labels` on standardised rows."""
    mean, scale = standardiser(rows)
    x = np.column_stack([(rows - mean) / scale, np.ones(len(rows))])
    y = labels.astype(np.float64)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ theta
        p = expit(z)
        penalty = theta.copy()
        penalty[-1] = 0.0  # the bias is not shrunk
        value = np.sum(np.logaddexp(0.0, z) - y * z) / len(y) + l2 * penalty @ penalty / len(y)
        return value, x.T @ (p - y) / len(y) + 2 * l2 * penalty / len(y)

    theta = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B").x
    return LinearModel(QUESTION_FEATURES, mean, scale, theta[:-1], float(theta[-1]))


def fit(examples: Sequence[Example], ranker_l2: float, confidence_l2: float) -> Models:
    """Both models and the threshold, fitted on examples."""
    ranker = fit_ranker(examples, ranker_l2)
    rows, labels, kept = question_rows(examples, ranker)
    confidence = fit_confidence(rows, labels, confidence_l2)
    answerable = np.array([examples[i].item.answerable for i in kept])
    scores = np.array([logistic(z) for z in confidence.score(rows)])
    # Answerable questions without candidates abstain whatever the threshold; count them too.
    floor = float(np.quantile(scores[answerable], TARGET_FALSE_ABSTENTION)) if answerable.any() else 0.0
    return Models(ranker, confidence, round(max(floor, 0.0), 4))


@dataclass(frozen=True, slots=True)
class Figures:
    """What `qabot eval` reports, over a set of questions."""

    questions: int
    recall_at_1: float
    recall_at_3: float
    mrr_at_10: float
    false_abstention: float
    abstention: dict[str, float]  # by kind of unanswerable question
    ece: float

    def row(self) -> str:
        kinds = " ".join(f"{kind} {share:.3f}" for kind, share in sorted(self.abstention.items()))
        return (f"n={self.questions:4d}  R@1 {self.recall_at_1:.3f}  R@3 {self.recall_at_3:.3f}  "
                f"MRR@10 {self.mrr_at_10:.3f}  false abst. {self.false_abstention:.3f}  ECE {self.ece:.3f}  "
                f"abstention: {kinds}")  # fmt: skip


def ask_all(examples: Sequence[Example], models: Models) -> list[tuple[Example, int | None, bool, float]]:
    """(example, rank of the first hit, abstained, confidence) with the given models, asked for real."""
    results = []
    for e in examples:
        answerer = Answerer(e.answerer.index, replace(e.answerer.params, min_confidence=None), models)
        answer = answerer.ask(e.item.question, DEPTH)
        rank = first_hit_rank(answer, e.item, DEPTH) if e.item.answerable else None
        results.append((e, rank, answer.abstained, answer.confidence))
    return results


def figures(results: Sequence[tuple[Example, int | None, bool, float]]) -> Figures:
    answerable = [r for r in results if r[0].item.answerable]
    kinds: dict[str, list[bool]] = {}
    for e, _, abstained, _ in results:
        if not e.item.answerable:
            kinds.setdefault(e.item.kind, []).append(abstained)
    shown = [(confidence, rank == 1) for _, rank, abstained, confidence in results if not abstained]
    n = len(answerable) or 1
    return Figures(
        questions=len(results),
        recall_at_1=sum(1 for r in answerable if r[1] == 1) / n,
        recall_at_3=sum(1 for r in answerable if r[1] is not None and r[1] <= 3) / n,
        mrr_at_10=sum(1 / r[1] for r in answerable if r[1]) / n,
        false_abstention=sum(1 for r in answerable if r[2]) / n,
        abstention={kind: sum(v) / len(v) for kind, v in kinds.items()},
        ece=expected_calibration_error(shown),
    )


def expected_calibration_error(pairs: Sequence[tuple[float, bool]], bins: int = 10) -> float:
    """Count-weighted mean |mean confidence - accuracy| over equal-width confidence bins."""
    if not pairs:
        return 0.0
    confidence = np.array([c for c, _ in pairs])
    correct = np.array([h for _, h in pairs], dtype=np.float64)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        chosen = which == b
        if chosen.any():
            total += chosen.sum() * abs(confidence[chosen].mean() - correct[chosen].mean())
    return total / len(pairs)


def folds(examples: Sequence[Example], k: int, seed: int = 0) -> list[np.ndarray]:
    """k folds of example indices: a group's questions stay together, kinds spread evenly."""
    rng = np.random.default_rng(seed)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, e in enumerate(examples):
        groups.setdefault((e.item.kind, e.group), []).append(i)
    assignment = np.zeros(len(examples), dtype=int)
    by_kind: dict[str, list[list[int]]] = {}
    for (kind, _), members in groups.items():
        by_kind.setdefault(kind, []).append(members)
    for members_of_kind in by_kind.values():
        order = rng.permutation(len(members_of_kind))
        for position, g in enumerate(order):
            assignment[members_of_kind[g]] = position % k
    return [np.flatnonzero(assignment == f) for f in range(k)]


def cross_validate(
    examples: Sequence[Example], k: int, fitter: Callable[[Sequence[Example]], Models]
) -> list[tuple[Example, int | None, bool, float]]:
    """Every example asked with models fitted on the other folds."""
    results = []
    for held_out in folds(examples, k):
        train = [e for i, e in enumerate(examples) if i not in set(held_out.tolist())]
        results.extend(ask_all([examples[i] for i in held_out], fitter(train)))
    return results


def choose_l2(examples: Sequence[Example], k: int) -> tuple[float, float]:
    """The L2 strengths with the best cross-validated (R@1 - false abstention), ranker first."""
    best, chosen = -np.inf, (RANKER_L2[0], CONFIDENCE_L2[0])
    for ranker_l2 in RANKER_L2:
        for confidence_l2 in CONFIDENCE_L2:
            cv = figures(cross_validate(examples, k, lambda train, r=ranker_l2, c=confidence_l2: fit(train, r, c)))
            score = cv.recall_at_1 - cv.false_abstention - cv.ece
            print(f"  l2 ranker {ranker_l2:<5} confidence {confidence_l2:<5}  CV {cv.row()}", file=sys.stderr)
            if score > best:
                best, chosen = score, (ranker_l2, confidence_l2)
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=PROJECT / "qabot" / "data" / "models.json")
    parser.add_argument("--cache", type=Path, default=PROJECT / "bench" / "work" / "fit-cache")
    parser.add_argument("--folds", type=int, default=FOLDS)
    args = parser.parse_args(argv)
    missing = [str(path) for path, _ in DEFAULT_SETS if not path.is_file()]
    if missing:
        print(f"fit_models: eval sets not found: {', '.join(missing)} (they live in ../shared/eval)", file=sys.stderr)
        return 2
    examples = collect(DEFAULT_SETS, args.cache)
    print(f"{len(examples)} questions; choosing L2 strengths by {args.folds}-fold CV", file=sys.stderr)
    ranker_l2, confidence_l2 = choose_l2(examples, args.folds)
    models = fit(examples, ranker_l2, confidence_l2)
    cv = cross_validate(examples, args.folds, lambda train: fit(train, ranker_l2, confidence_l2))
    fitted = ask_all(examples, models)
    report: dict[str, object] = {"l2": {"ranker": ranker_l2, "confidence": confidence_l2}, "folds": args.folds,
                                 "target_false_abstention": TARGET_FALSE_ABSTENTION, "sets": {}}  # fmt: skip
    for name in sorted({e.set_name for e in examples}):
        fit_figures = figures([r for r in fitted if r[0].set_name == name])
        cv_figures = figures([r for r in cv if r[0].set_name == name])
        print(f"{name:10s} fitted: {fit_figures.row()}\n{'':10s} CV:     {cv_figures.row()}")
        report["sets"][name] = {"fitted": fit_figures.__dict__ if False else _as_dict(fit_figures),
                                "cross_validated": _as_dict(cv_figures)}  # fmt: skip
    args.out.write_text(models_to_json(models, report), encoding="utf-8")
    print(f"wrote {args.out} (min_confidence {models.min_confidence})")
    return 0


def _as_dict(f: Figures) -> dict[str, object]:
    return {
        "questions": f.questions, "R@1": round(f.recall_at_1, 4), "R@3": round(f.recall_at_3, 4),
        "MRR@10": round(f.mrr_at_10, 4), "false_abstention": round(f.false_abstention, 4),
        "abstention": {k: round(v, 4) for k, v in f.abstention.items()}, "ECE": round(f.ece, 4),
    }  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
