"""Judging answers against gold: the hit rule for passages (docs/eval-sets.md), SQuAD's EM and F1 for phrases."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable
from pathlib import PurePosixPath

from qabot.eval_set import EvalItem, Gold
from qabot.model import Answer, Passage

MAX_HIT_CHARS = 600
_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'"})


def fold_for_match(text: str) -> str:
    """Whitespace collapsed and curly quotes straightened, for the hit rule."""
    return " ".join(text.translate(_QUOTES).split())


def is_hit(passage: Passage, answers: Iterable[Gold]) -> bool:
    """The hit rule (docs/eval-sets.md): at most 600 chars, a gold's file name, holds its quote, inside its paragraph
    if given."""
    if len(passage.text) > MAX_HIT_CHARS:
        return False
    name = PurePosixPath(passage.location.source).name
    text = fold_for_match(passage.text)
    return any(
        name == gold.source
        and fold_for_match(gold.quote) in text
        and (gold.paragraph is None or text in fold_for_match(gold.paragraph))
        for gold in answers
    )


def first_hit_rank(answer: Answer, item: EvalItem, depth: int) -> int | None:
    """1-based rank of the first passage (of the top `depth`) that hits; None when none does."""
    for rank, passage in enumerate(answer.passages[:depth], 1):
        if is_hit(passage, item.answers):
            return rank
    return None


def squad_normalise(text: str) -> str:
    """SQuAD's official answer normalisation (evaluate-v1.1.py): lower case, no punctuation, no articles,
    whitespace collapsed."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Iterable[str]) -> bool:
    """SQuAD's exact match: the normalised prediction equals some normalised gold answer."""
    return any(squad_normalise(prediction) == squad_normalise(gold) for gold in golds)


def f1_score(prediction: str, golds: Iterable[str]) -> float:
    """SQuAD's F1: token overlap of the normalised prediction with the best-matching gold answer."""
    predicted = squad_normalise(prediction).split()
    best = 0.0
    for gold in golds:
        wanted = squad_normalise(gold).split()
        common = sum((Counter(predicted) & Counter(wanted)).values())
        if common:
            precision, recall = common / len(predicted), common / len(wanted)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best
