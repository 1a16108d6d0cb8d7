"""Fit qabot's ranker and confidence model, report fitted and cross-validated figures, write the JSON.

    pip install -e '.[dev]'        # scipy for the optimiser
    python tools/fit_models.py     # fits on ../shared/eval, writes qabot/data/models.json

Data: every question of each eval set (DESIGN.md's schema), asked of its corpus. The ranker is
a linear model over CANDIDATE_FEATURES, fitted listwise (a softmax over each question's
candidates, maximising the probability of the hitting ones, L2-regularised). The confidence
model is logistic regression over QUESTION_FEATURES, labelled by whether the first passage hits
(never, for an unanswerable question), each question's signals taken under a ranker fitted without
it (inner folds). The abstention threshold is the confidence under which TARGET_FALSE_ABSTENTION of
the training set's answerable questions fall, on those same cross-fitted signals.

Every setting (the two L2 strengths) is chosen by k-fold cross-validation; folds keep a
paragraph's questions together and are stratified by kind. The figures reported beside the
fitted ones come from asking each held-out fold with models fitted on the other folds, through
the real Answerer; the same fold models are also asked at fixed min_confidence settings
(TRADEOFF_THRESHOLDS), the trade-off a user moves along by setting min_confidence.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, logsumexp

from qabot.answer import Answerer, AnswerParams, Ranking, clean_question
from qabot.config import load_settings
from qabot.config import replace as replace_settings
from qabot.evaluate import EvalItem, EvalReport, ItemResult, ask_item, is_hit, open_eval_set, score_results
from qabot.features import CANDIDATE_FEATURES, QUESTION_FEATURES, question_features
from qabot.learned import LinearModel, Models, logistic, models_to_json
from qabot.squad import display_title
from qabot.store import IndexParams, open_index

PROJECT = Path(__file__).resolve().parent.parent
SHARED = PROJECT.parent / "shared"
DEV_SET = SHARED / "eval" / "dev.jsonl"  # asked of the seeds
# squad-dev/questions.jsonl is the Rhine article's questions with Sky's as out-of-corpus: the same
# items are read here from the SQuAD file, so that Sky can also be held out the other way round.
SQUAD_FILE = SHARED / "eval" / "squad-dev" / "squad2-dev-rhine-sky.json"
FITTED_ARTICLE = "Rhine"
HELD_OUT_ARTICLE = "Sky (United Kingdom)"
FOLDS = 5
TARGET_FALSE_ABSTENTION = 0.03  # on the training folds; the bar is 5% on held-out ones
RANKER_L2 = (0.1, 1.0)
CONFIDENCE_L2 = (0.1, 1.0)
# The confidence can only rise with these signals and fall with the missing words', whatever the
# training questions' correlations say: monotone weights are what carries to other corpora.
RISING = ("top_score", "margin", "top_coverage", "top_paragraph_coverage")
FALLING = ("missing_share", "missing_names")
DEPTH = 10
# The cross-validated figures are also reported over these other draws of the folds (the first is 0).
OTHER_FOLD_SEEDS = (1, 2)
# Fixed thresholds the cross-validated trade-off is also reported at (a user's min_confidence).
TRADEOFF_THRESHOLDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)


@dataclass(frozen=True, slots=True)
class Example:
    """One eval question asked of its corpus: its ranking's candidates and which of them hit."""

    item: EvalItem
    set_name: str
    answerer: Answerer
    ranking: Ranking
    hits: np.ndarray  # bool per candidate row
    group: str  # questions of one group (a gold paragraph) share a fold


def bm25_models() -> Models:
    """Models that rank by BM25 alone and never abstain: what candidates are collected with."""
    ranker_weights = np.array([name == "bm25" for name in CANDIDATE_FEATURES], dtype=np.float64)
    ones, zeros = np.ones(len(QUESTION_FEATURES)), np.zeros(len(QUESTION_FEATURES))
    ranker = LinearModel(CANDIDATE_FEATURES, np.zeros(len(CANDIDATE_FEATURES)), np.ones(len(CANDIDATE_FEATURES)),
                         ranker_weights)  # fmt: skip
    return Models(ranker, LinearModel(QUESTION_FEATURES, zeros, ones, zeros), 0.0)


def collect(sets: Sequence[tuple[str, Path, Path | None]], stack: ExitStack) -> list[Example]:
    """Every question of every (name, eval file, outside file) set, asked of its corpus and ranked by
    the shipped models (the candidates and their features do not depend on the models)."""
    base = load_settings(PROJECT / "config" / "qabot.toml", env={})
    examples = []
    for name, path, outside in sets:
        eval_set = stack.enter_context(open_eval_set(path, outside))
        settings = eval_set.settings_for(replace_settings(base, corpus=PROJECT / "seeds"))
        if eval_set.cache_dir is None:
            settings = replace_settings(settings, cache_dir=Path(stack.enter_context(tempfile.TemporaryDirectory())))
        index_params = IndexParams(settings.k1, settings.b, settings.boilerplate_patterns, settings.max_file_bytes)
        index, _ = open_index(settings.corpus, settings.index_dir, index_params, lambda message: None)
        answerer = Answerer(index, AnswerParams(settings.top_k, 0.0, settings.variant_weight), bm25_models())
        for item in eval_set.items:
            ranking = answerer.rank(clean_question(item.question))
            hits = np.array(
                [item.answerable and is_hit(answerer.passage_of(int(sent)), item.answers)
                 for sent in ranking.candidates.sents], dtype=bool)  # fmt: skip
            paragraphs = sorted({gold.paragraph for gold in item.answers if gold.paragraph})
            group = f"{name}:{paragraphs[0][:200] if paragraphs else item.id}"
            examples.append(Example(item, name, answerer, ranking, hits, group))
    return examples


def standardiser(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = rows.mean(axis=0)
    scale = rows.std(axis=0)
    return mean, np.where(scale > 1e-9, scale, 1.0)


def fit_ranker(examples: Sequence[Example], l2: float) -> LinearModel:
    """Listwise softmax ranker: maximise, per question with a hitting candidate, the hits' probability."""
    ranked = [e for e in examples if e.hits.any()]
    mean, scale = standardiser(np.concatenate([e.ranking.candidates.features for e in ranked]))
    lists = [((e.ranking.candidates.features - mean) / scale, e.hits) for e in ranked]

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

    bounds = [(0.0, None) if name in RISING else (None, 0.0) if name in FALLING else (None, None)
              for name in QUESTION_FEATURES] + [(None, None)]  # fmt: skip
    theta = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B", bounds=bounds).x
    return LinearModel(QUESTION_FEATURES, mean, scale, theta[:-1], float(theta[-1]))


def fit(examples: Sequence[Example], ranker_l2: float, confidence_l2: float) -> Models:
    """Both models and the threshold, fitted on examples. The confidence model learns from question
    signals under rankers that did not see the question (FOLDS inner folds), as a new question's will
    be under the shipped ranker: signals of the ranker's own training questions are overconfident."""
    ranker = fit_ranker(examples, ranker_l2)
    parts = []
    for held_out, train in splits(examples, FOLDS):
        rows, labels, kept = question_rows([examples[i] for i in held_out], fit_ranker(train, ranker_l2))
        parts.append((rows, labels, held_out[kept] if len(kept) else kept))
    rows = np.concatenate([part[0] for part in parts if len(part[0])])
    labels = np.concatenate([part[1] for part in parts if len(part[0])])
    kept = np.concatenate([part[2] for part in parts if len(part[0])])
    confidence = fit_confidence(rows, labels, confidence_l2)
    answerable = np.array([examples[i].item.answerable for i in kept])
    scores = np.array([logistic(z) for z in confidence.score(rows)])
    floor = float(np.quantile(scores[answerable], TARGET_FALSE_ABSTENTION)) if answerable.any() else 0.0
    return Models(ranker, confidence, round(floor, 4))


def ask_all(examples: Sequence[Example], models: Models) -> list[tuple[Example, ItemResult]]:
    """Each example asked for real by an answerer with the given models (and their threshold)."""
    results = []
    for e in examples:
        answerer = Answerer(e.answerer.index, replace(e.answerer.params, min_confidence=None), models)
        results.append((e, ask_item(e.item, answerer.ask, DEPTH)))
    return results


def report_of(results: Sequence[tuple[Example, ItemResult]]) -> EvalReport:
    return score_results([result for _, result in results])


def set_report(results: Sequence[tuple[Example, ItemResult]], set_name: str) -> EvalReport:
    """The report of one eval set's results."""
    return report_of([r for r in results if r[0].set_name == set_name])


def row(report: EvalReport) -> str:
    """One line of a report's figures."""
    kinds = " ".join(f"{k.kind} {k.abstained / k.questions:.3f}" for k in report.abstention_by_kind)
    ece = "-" if report.ece is None else f"{report.ece:.3f}"
    return (f"n={len(report.results):4d}  R@1 {report.recall_at_1:.3f}  R@3 {report.recall_at_3:.3f}  "
            f"MRR@10 {report.mrr_at_10:.3f}  false abst. {report.false_abstention_rate:.3f}  ECE {ece}  "
            f"abstention: {kinds}")  # fmt: skip


def as_dict(report: EvalReport) -> dict[str, object]:
    return {
        "questions": len(report.results), "R@1": round(report.recall_at_1, 4), "R@3": round(report.recall_at_3, 4),
        "MRR@10": round(report.mrr_at_10, 4), "false_abstention": round(report.false_abstention_rate, 4),
        "abstention": {k.kind: round(k.abstained / k.questions, 4) for k in report.abstention_by_kind},
        "ECE": None if report.ece is None else round(report.ece, 4),
    }  # fmt: skip


def spread_row(reports: Sequence[EvalReport]) -> str:
    """The lowest and highest of each headline figure over several reports of the same questions."""

    def spread(values: Sequence[float]) -> str:
        return f"{min(values):.3f}-{max(values):.3f}"

    eces = [r.ece for r in reports if r.ece is not None]
    return (f"R@1 {spread([r.recall_at_1 for r in reports])}  R@3 {spread([r.recall_at_3 for r in reports])}  "
            f"MRR@10 {spread([r.mrr_at_10 for r in reports])}  "
            f"false abst. {spread([r.false_abstention_rate for r in reports])}  "
            f"ECE {spread(eces) if eces else '-'}")  # fmt: skip


def tradeoff_row(report: EvalReport, unanswerable_kinds: set[str]) -> str:
    """R@1, false abstention and the abstention of each unanswerable kind."""
    kinds = " ".join(f"{k.kind} {k.abstained / k.questions:.2f}" for k in report.abstention_by_kind
                     if k.kind in unanswerable_kinds)  # fmt: skip
    return f"R@1 {report.recall_at_1:.3f} false abst. {report.false_abstention_rate:.3f} abstention: {kinds}"


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


def splits(examples: Sequence[Example], k: int, seed: int = 0) -> Iterator[tuple[np.ndarray, list[Example]]]:
    """Each fold's example indices, with the examples of the other folds."""
    for held_out in folds(examples, k, seed):
        out = set(held_out.tolist())
        yield held_out, [e for i, e in enumerate(examples) if i not in out]


def fold_models(
    examples: Sequence[Example], k: int, fitter: Callable[[Sequence[Example]], Models], seed: int = 0
) -> list[tuple[np.ndarray, Models]]:
    """Each fold's example indices, with the models fitted on the other folds."""
    return [(held_out, fitter(train)) for held_out, train in splits(examples, k, seed)]


def ask_folds(
    examples: Sequence[Example], per_fold: Sequence[tuple[np.ndarray, Models]], min_confidence: float | None = None
) -> list[tuple[Example, ItemResult]]:
    """Every example asked with its fold's models, at min_confidence when given (else their own threshold)."""
    results = []
    for held_out, models in per_fold:
        if min_confidence is not None:
            models = replace(models, min_confidence=min_confidence)
        results.extend(ask_all([examples[i] for i in held_out], models))
    return results


def cross_validate(
    examples: Sequence[Example], k: int, fitter: Callable[[Sequence[Example]], Models], seed: int = 0
) -> list[tuple[Example, ItemResult]]:
    """Every example asked with models fitted on the other folds (folds drawn with seed)."""
    return ask_folds(examples, fold_models(examples, k, fitter, seed))


def choose_l2(examples: Sequence[Example], k: int) -> tuple[float, float]:
    """The L2 strengths with the best cross-validated R@1 - false abstention - ECE, ranker first."""
    best, chosen = -np.inf, (RANKER_L2[0], CONFIDENCE_L2[0])
    for ranker_l2 in RANKER_L2:
        for confidence_l2 in CONFIDENCE_L2:
            cv = report_of(cross_validate(examples, k, partial(fit, ranker_l2=ranker_l2, confidence_l2=confidence_l2)))
            score = cv.recall_at_1 - cv.false_abstention_rate - (cv.ece or 0.0)
            print(f"  l2 ranker {ranker_l2:<5} confidence {confidence_l2:<5}  CV {row(cv)}", file=sys.stderr)
            if score > best:
                best, chosen = score, (ranker_l2, confidence_l2)
    return chosen


def article_files(squad_file: Path, folder: Path) -> dict[str, Path]:
    """One SQuAD file in folder per article of squad_file, by title."""
    data = json.loads(squad_file.read_text(encoding="utf-8"))
    files = {}
    for number, article in enumerate(data["data"]):
        path = folder / f"article-{number}.json"
        path.write_text(json.dumps({"version": data.get("version", "v2.0"), "data": [article]}), encoding="utf-8")
        files[display_title(article["title"])] = path
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=PROJECT / "qabot" / "data" / "models.json")
    parser.add_argument("--folds", type=int, default=FOLDS)
    args = parser.parse_args(argv)
    missing = [str(path) for path in (DEV_SET, SQUAD_FILE) if not path.is_file()]
    if missing:
        print(f"fit_models: eval sets not found: {', '.join(missing)} (they live in ../shared/eval)", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        articles = article_files(SQUAD_FILE, Path(stack.enter_context(tempfile.TemporaryDirectory())))
        training = [("dev", DEV_SET, None), ("squad-rhine", articles[FITTED_ARTICLE], articles[HELD_OUT_ARTICLE])]
        examples = collect(training, stack)
        print(f"{len(examples)} questions; choosing L2 strengths by {args.folds}-fold CV", file=sys.stderr)
        ranker_l2, confidence_l2 = choose_l2(examples, args.folds)
        models = fit(examples, ranker_l2, confidence_l2)
        fitter = partial(fit, ranker_l2=ranker_l2, confidence_l2=confidence_l2)
        per_fold = fold_models(examples, args.folds, fitter)
        cv = ask_folds(examples, per_fold)
        other_splits = [cross_validate(examples, args.folds, fitter, seed) for seed in OTHER_FOLD_SEEDS]
        fitted = ask_all(examples, models)
        report: dict[str, object] = {
            "l2": {"ranker": ranker_l2, "confidence": confidence_l2}, "folds": args.folds,
            "target_false_abstention": TARGET_FALSE_ABSTENTION, "sets": {},
        }  # fmt: skip
        set_names = sorted({e.set_name for e in examples})
        for name in set_names:
            fit_report, cv_report = set_report(fitted, name), set_report(cv, name)
            split_reports = [set_report(results, name) for results in other_splits]
            print(
                f"{name:12s} fitted: {row(fit_report)}\n{'':12s} CV:     {row(cv_report)}\n"
                f"{'':12s} CV over {1 + len(split_reports)} fold splits: {spread_row([cv_report, *split_reports])}"
            )
            report["sets"][name] = {
                "fitted": as_dict(fit_report), "cross_validated": as_dict(cv_report),
                "cross_validated_other_splits": {str(seed): as_dict(r)
                                                 for seed, r in zip(OTHER_FOLD_SEEDS, split_reports, strict=True)},
            }  # fmt: skip
        print("cross-validated, at other min_confidence settings:")
        report["min_confidence_tradeoff"] = {}
        unanswerable_kinds = {e.item.kind for e in examples if not e.item.answerable}
        for threshold in TRADEOFF_THRESHOLDS:
            results = ask_folds(examples, per_fold, threshold)
            by_set = {name: set_report(results, name) for name in set_names}
            print(f"  {threshold:<5} " + "  ".join(f"{name}: {tradeoff_row(report_at, unanswerable_kinds)}"
                                                  for name, report_at in by_set.items()))  # fmt: skip
            report["min_confidence_tradeoff"][str(threshold)] = {name: as_dict(r) for name, r in by_set.items()}
        # An article no model saw, with the fitted article's questions as out-of-corpus.
        held_out_set = ("held-out", articles[HELD_OUT_ARTICLE], articles[FITTED_ARTICLE])
        held_out = report_of(ask_all(collect([held_out_set], stack), models))
        print(f"{'held-out':12s} {HELD_OUT_ARTICLE}: {row(held_out)}")
        report["held_out_article"] = {"article": HELD_OUT_ARTICLE, **as_dict(held_out)}
    args.out.write_text(models_to_json(models, report), encoding="utf-8")
    print(f"wrote {args.out} (min_confidence {models.min_confidence})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
