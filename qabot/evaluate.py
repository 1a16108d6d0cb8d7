"""Scoring answers to an eval set: recall, MRR, abstention, calibration, labels and the answer phrase's EM / F1."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from qabot.answer_type import question_word
from qabot.calibration import ReliabilityBin, expected_calibration_error, reliability_bins
from qabot.eval_match import exact_match, f1_score, first_hit_rank
from qabot.eval_set import EvalItem
from qabot.model import Answer, AnswerPhrase

UNCALIBRATED_KINDS = frozenset({"adversarial"})  # left out of ECE and label precision: users rarely ask them


@dataclass(frozen=True, slots=True)
class ItemResult:
    item: EvalItem
    answer: Answer
    rank: int | None  # 1-based rank of the first hit, None when no hit in the passages
    top_phrase: AnswerPhrase | None = None  # the first passage's best phrase, shown or not (else the shown one)

    @property
    def first_passage_hits(self) -> bool:
        """The question is answerable and the first passage answers it (a shown unanswerable one is a miss)."""
        return self.item.answerable and self.rank == 1


@dataclass(frozen=True, slots=True)
class PhraseScores:
    """EM and F1 (SQuAD's official ones, in [0, 1]) of some answer phrases."""

    questions: int
    em: float
    f1: float


@dataclass(frozen=True, slots=True)
class PhraseByWord:
    """The answer phrase on the answered answerable questions of one question word."""

    word: str
    answered: int
    shown: int
    shown_em: float
    top_em: float  # the best phrase, shown or not


@dataclass(frozen=True, slots=True)
class PhraseReport:
    """How well the answer phrase reads: see eval_report.phrase_lines for what each figure means."""

    readers_skill: PhraseScores  # top phrase, shown or not, where the first passage holds a gold answer
    shown: PhraseScores  # shown phrases of answered answerable questions
    answered: int  # answerable questions answered (not abstained)
    all_answerable: PhraseScores  # every answerable question, 0 when no phrase is shown
    ece: float | None  # of the top phrase's probability against its EM, over answered answerable questions
    reliability: tuple[ReliabilityBin, ...]
    by_word: tuple[PhraseByWord, ...]


@dataclass(frozen=True, slots=True)
class KindAbstention:
    """How often the questions of one `kind` were refused."""

    kind: str
    questions: int
    abstained: int


@dataclass(frozen=True, slots=True)
class LabelFigures:
    """How often shown answers got one label, and how often those were right (first passage hits)."""

    label: str
    count: int
    share: float  # of the shown answers calibration is measured on
    precision: float


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
    abstention_by_kind: tuple[KindAbstention, ...]  # sorted by kind
    shown: int  # answers not abstained: the ones calibration is measured on
    ece: float | None  # None when every answer abstained
    reliability: tuple[ReliabilityBin, ...]  # the non-empty bins, lowest first
    labels: tuple[LabelFigures, ...] = ()  # per label, most confident first
    phrase: PhraseReport | None = None  # None when no answerable question was answered


def calibrated(results: Iterable[ItemResult]) -> list[ItemResult]:
    """The shown answers calibration is measured on: every kind but UNCALIBRATED_KINDS (questions written to
    look answerable from a paragraph that does not answer them, which users rarely ask)."""
    return [r for r in results if not r.answer.abstained and r.item.kind not in UNCALIBRATED_KINDS]


def calibration_pairs(results: Iterable[ItemResult]) -> list[tuple[float, bool]]:
    """(confidence, first passage hits) for every calibrated answer; a shown unanswerable question is a miss."""
    return [(r.answer.confidence, r.first_passage_hits) for r in calibrated(results)]


def label_figures(results: Iterable[ItemResult]) -> tuple[LabelFigures, ...]:
    """Each label's share of the calibrated answers and its precision, in the order labels first appear
    from the most confident answer down."""
    shown = sorted(calibrated(results), key=lambda r: -r.answer.confidence)
    by_label: dict[str, list[bool]] = {}
    for r in shown:
        by_label.setdefault(r.answer.label, []).append(r.first_passage_hits)
    return tuple(
        LabelFigures(label, len(right), len(right) / len(shown), sum(right) / len(right))
        for label, right in by_label.items()
    )


def abstention_by_kind(results: Iterable[ItemResult]) -> tuple[KindAbstention, ...]:
    """Questions and abstentions per `kind`, sorted by kind."""
    questions: dict[str, int] = {}
    abstained: dict[str, int] = {}
    for result in results:
        kind = result.item.kind or ("answerable" if result.item.answerable else "unanswerable")
        questions[kind] = questions.get(kind, 0) + 1
        abstained[kind] = abstained.get(kind, 0) + result.answer.abstained
    return tuple(KindAbstention(kind, questions[kind], abstained[kind]) for kind in sorted(questions))


def _share(selected: Sequence[ItemResult], test: Callable[[ItemResult], bool]) -> float:
    return sum(1 for r in selected if test(r)) / len(selected) if selected else 0.0


PhraseReader = Callable[[str, Answer], AnswerPhrase | None]  # (question, answer) -> best phrase, shown or not


def evaluate(
    items: Sequence[EvalItem], ask: Callable[[str, int], Answer], depth: int = 10, read: PhraseReader | None = None
) -> EvalReport:
    """Ask every question (top `depth` passages) and score the answers; read gives the best phrase of an
    answer's first passage even when it is not shown (without it, only shown phrases are known)."""
    return score_results([ask_item(item, ask, depth, read) for item in items])


def ask_item(
    item: EvalItem, ask: Callable[[str, int], Answer], depth: int = 10, read: PhraseReader | None = None
) -> ItemResult:
    """The answer to one eval question (top `depth` passages), the rank of its first hit and its best phrase."""
    answer = ask(item.question, depth)
    rank = first_hit_rank(answer, item, depth) if item.answerable else None
    top = read(item.question, answer) if read is not None and answer.passages else answer.phrase
    return ItemResult(item, answer, rank, top)


def _scores(pairs: Sequence[tuple[AnswerPhrase | None, EvalItem]], questions: int | None = None) -> PhraseScores:
    """EM and F1 of (phrase, item) pairs, a missing phrase scoring 0, averaged over questions (default: pairs)."""
    em = sum(exact_match(p.text, item.quotes) for p, item in pairs if p is not None)
    f1 = sum(f1_score(p.text, item.quotes) for p, item in pairs if p is not None)
    total = len(pairs) if questions is None else questions
    return PhraseScores(total, em / total if total else 0.0, f1 / total if total else 0.0)


def phrase_report(results: Sequence[ItemResult]) -> PhraseReport | None:
    """The answer phrase's figures over the answerable questions; None when none was answered."""
    answerable = [r for r in results if r.item.answerable]
    answered = [r for r in answerable if not r.answer.abstained and r.answer.passages]
    if not answered:
        return None
    shown = [(r.answer.phrase, r.item) for r in answered if r.answer.phrase is not None]
    bins = reliability_bins(
        (r.top_phrase.probability, exact_match(r.top_phrase.text, r.item.quotes)) for r in answered if r.top_phrase
    )
    words: dict[str, list[ItemResult]] = {}
    for r in answered:
        words.setdefault(question_word(r.item.question), []).append(r)
    by_word = []
    for word, group in sorted(words.items(), key=lambda pair: -len(pair[1])):
        on = [(r.answer.phrase, r.item) for r in group if r.answer.phrase is not None]
        by_word.append(PhraseByWord(word, len(group), len(on), _scores(on).em,
                                    _scores([(r.top_phrase, r.item) for r in group]).em))  # fmt: skip
    return PhraseReport(
        readers_skill=_scores([(r.top_phrase, r.item) for r in answered if r.rank == 1]),
        shown=_scores(shown),
        answered=len(answered),
        all_answerable=_scores(shown, len(answerable)),
        ece=expected_calibration_error(bins),
        reliability=bins,
        by_word=tuple(by_word),
    )


def score_results(results: Sequence[ItemResult]) -> EvalReport:
    """The figures of answered eval questions."""
    answerable = [r for r in results if r.item.answerable]
    unanswerable = [r for r in results if not r.item.answerable]
    pairs = calibration_pairs(results)
    bins = reliability_bins(pairs)
    return EvalReport(
        results=tuple(results),
        recall_at_1=_share(answerable, lambda r: r.rank == 1),
        recall_at_3=_share(answerable, lambda r: r.rank is not None and r.rank <= 3),
        mrr_at_10=sum(1 / r.rank for r in answerable if r.rank and r.rank <= 10) / len(answerable)
        if answerable
        else 0.0,
        abstention_accuracy=_share(unanswerable, lambda r: r.answer.abstained),
        false_abstention_rate=_share(answerable, lambda r: r.answer.abstained),
        answerable=len(answerable),
        unanswerable=len(unanswerable),
        abstention_by_kind=abstention_by_kind(results),
        shown=len(pairs),
        ece=expected_calibration_error(bins),
        reliability=bins,
        labels=label_figures(results),
        phrase=phrase_report(results),
    )
