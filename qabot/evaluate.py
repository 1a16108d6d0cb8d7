"""Scoring an eval set (schema in DESIGN.md): R@1, R@3, MRR@10, abstention accuracy."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from qabot.errors import QabotError
from qabot.model import Answer, Passage

MAX_HIT_CHARS = 600
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'"})


@dataclass(frozen=True, slots=True)
class EvalItem:
    id: str
    question: str
    answerable: bool
    kind: str
    answers: tuple[tuple[str, str], ...]  # (file name, quote)


@dataclass(frozen=True, slots=True)
class ItemResult:
    item: EvalItem
    answer: Answer
    rank: int | None  # 1-based rank of the first hit, None when no hit in the passages


@dataclass(frozen=True, slots=True)
class EvalReport:
    results: tuple[ItemResult, ...]
    recall_at_1: float
    recall_at_3: float
    mrr_at_10: float
    abstention_accuracy: float  # share of unanswerable questions that abstained
    false_abstention_rate: float  # share of answerable questions that abstained
    answerable: int
    unanswerable: int


class EvalFileError(QabotError):
    """The eval file is missing or malformed."""


def fold_for_match(text: str) -> str:
    """Whitespace collapsed and curly quotes straightened, for the hit rule."""
    return " ".join(text.translate(_QUOTES).split())


def load_eval(path: Path) -> list[EvalItem]:
    """Eval items from a JSON-lines file; EvalFileError names the line that is wrong."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")  # not splitlines: U+2028 is valid in JSON
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalFileError(f"cannot read eval file {path}: {exc}") from None
    items = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            items.append(
                EvalItem(
                    str(raw["id"]),
                    str(raw["question"]),
                    bool(raw["answerable"]),
                    str(raw.get("kind", "")),
                    tuple((str(a["source"]), str(a["quote"])) for a in raw.get("answers", [])),
                )
            )
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise EvalFileError(f"{path}:{number}: not an eval item ({exc.__class__.__name__}: {exc})") from None
    if not items:
        raise EvalFileError(f"{path} holds no eval items")
    return items


def is_hit(passage: Passage, answers: Iterable[tuple[str, str]]) -> bool:
    """A passage hits when its file name is a gold source and its text contains that gold quote."""
    if len(passage.text) > MAX_HIT_CHARS:
        return False
    name = PurePosixPath(passage.location.source).name
    text = fold_for_match(passage.text)
    return any(name == source and fold_for_match(quote) in text for source, quote in answers)


def first_hit_rank(answer: Answer, item: EvalItem, depth: int) -> int | None:
    for rank, passage in enumerate(answer.passages[:depth], 1):
        if is_hit(passage, item.answers):
            return rank
    return None


def evaluate(items: list[EvalItem], ask: Callable[[str, int], Answer], depth: int = 10) -> EvalReport:
    """Ask every question (top `depth` passages) and score the answers."""
    results = []
    for item in items:
        answer = ask(item.question, depth)
        results.append(ItemResult(item, answer, first_hit_rank(answer, item, depth) if item.answerable else None))
    answerable = [r for r in results if r.item.answerable]
    unanswerable = [r for r in results if not r.item.answerable]

    def share(selected: list[ItemResult], test: Callable[[ItemResult], bool]) -> float:
        return sum(1 for r in selected if test(r)) / len(selected) if selected else 0.0

    return EvalReport(
        results=tuple(results),
        recall_at_1=share(answerable, lambda r: r.rank == 1),
        recall_at_3=share(answerable, lambda r: r.rank is not None and r.rank <= 3),
        mrr_at_10=sum(1 / r.rank for r in answerable if r.rank) / len(answerable) if answerable else 0.0,
        abstention_accuracy=share(unanswerable, lambda r: r.answer.abstained),
        false_abstention_rate=share(answerable, lambda r: r.answer.abstained),
        answerable=len(answerable),
        unanswerable=len(unanswerable),
    )


def render_report(report: EvalReport) -> str:
    """The figures, then one line per miss."""
    lines = [
        f"questions: {report.answerable} answerable, {report.unanswerable} unanswerable",
        f"R@1:    {report.recall_at_1:.3f}",
        f"R@3:    {report.recall_at_3:.3f}",
        f"MRR@10: {report.mrr_at_10:.3f}",
        f"abstention accuracy:   {report.abstention_accuracy:.3f}",
        f"false abstention rate: {report.false_abstention_rate:.3f}",
    ]
    for result in report.results:
        item, answer = result.item, result.answer
        if item.answerable and result.rank != 1:
            got = "abstained" if answer.abstained else (
                f"rank {result.rank}" if result.rank else "not in top 10"
            )
            top = answer.passages[0] if answer.passages else None
            where = f"; top: {top.location.source}:{top.location.line}" if top else ""
            lines.append(f"miss {item.id} ({got}{where}): {item.question}")
        elif not item.answerable and not answer.abstained:
            lines.append(f"miss {item.id} (answered, should abstain): {item.question}")
    return "\n".join(lines)
