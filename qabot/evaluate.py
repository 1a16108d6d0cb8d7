"""Scoring an eval set (JSON lines as docs/eval-sets.md describes, or SQuAD JSON): recall, MRR, abstention,
calibration."""

from __future__ import annotations

import json
import re
import string
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from qabot.answer_type import question_word
from qabot.config import Settings, replace
from qabot.errors import QabotError
from qabot.model import Answer, AnswerPhrase, Passage
from qabot.squad import SquadArticle, SquadFormatError, display_title, is_squad, parse_squad, write_corpus

MAX_HIT_CHARS = 600
UNCALIBRATED_KINDS = frozenset({"adversarial"})  # left out of ECE and label precision: users rarely ask them
CALIBRATION_BINS = 10
_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'"})


@dataclass(frozen=True, slots=True)
class Gold:
    """One gold answer: the file it is in, a quote the answering passage holds, optionally its paragraph."""

    source: str  # file name, without folders
    quote: str
    paragraph: str | None = None  # when given, a hitting passage lies inside this paragraph


@dataclass(frozen=True, slots=True)
class EvalItem:
    id: str
    question: str
    answerable: bool
    kind: str
    answers: tuple[Gold, ...]
    article: str | None = None  # the article the question was written on, for grouping; qabot never reads it


@dataclass(frozen=True, slots=True)
class EvalSet:
    """Eval items and where to ask them: a SQuAD file brings a temporary corpus and index cache (else None)."""

    items: tuple[EvalItem, ...]
    corpus: Path | None = None
    cache_dir: Path | None = None

    def settings_for(self, settings: Settings) -> Settings:
        """settings, with corpus and cache moved to this set's own when it has them."""
        if self.corpus is None:
            return settings
        return replace(settings, corpus=self.corpus, cache_dir=self.cache_dir)


@dataclass(frozen=True, slots=True)
class ItemResult:
    item: EvalItem
    answer: Answer
    rank: int | None  # 1-based rank of the first hit, None when no hit in the passages
    top_phrase: AnswerPhrase | None = None  # the first passage's best phrase, shown or not (else the shown one)


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
    """How well the answer phrase reads: see render_report for what each figure means."""

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
class ReliabilityBin:
    """Shown answers whose confidence lies in [low, high) (the last bin includes 1.0)."""

    low: float
    high: float
    count: int
    mean_confidence: float
    accuracy: float  # share whose first passage hits


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


class EvalFileError(QabotError):
    """The eval file is missing or malformed."""


def fold_for_match(text: str) -> str:
    """Whitespace collapsed and curly quotes straightened, for the hit rule."""
    return " ".join(text.translate(_QUOTES).split())


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


# --- reading eval sets ----------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalFileError(f"cannot read eval file {path}: {exc}") from None


def _gold(raw: object) -> Gold:
    if not isinstance(raw, dict):
        raise TypeError('each of "answers" must be an object with "source" and "quote"')
    paragraph = raw.get("paragraph")
    if paragraph is not None and not isinstance(paragraph, str):
        raise TypeError('"paragraph" must be a string')
    return Gold(str(raw["source"]), str(raw["quote"]), paragraph)


def parse_jsonl(text: str, path: Path) -> list[EvalItem]:
    """Eval items from JSON-lines text; EvalFileError names the line that is wrong."""
    items = []
    for number, line in enumerate(text.split("\n"), 1):  # not splitlines: U+2028 is valid in JSON
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
                    tuple(_gold(answer) for answer in raw.get("answers", [])),
                    None if raw.get("article") is None else str(raw["article"]),
                )
            )
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise EvalFileError(f"{path}:{number}: not an eval item ({exc.__class__.__name__}: {exc})") from None
    if not items:
        raise EvalFileError(f"{path} holds no eval items")
    return items


def load_eval(path: Path) -> list[EvalItem]:
    """Eval items from a JSON-lines file; EvalFileError names the line that is wrong."""
    return parse_jsonl(_read_text(path), path)


def _squad_articles(data: object, path: Path) -> tuple[SquadArticle, ...]:
    try:
        articles = parse_squad(data)
    except SquadFormatError as exc:
        raise EvalFileError(f"{path}: {exc}") from None
    if not any(paragraph.questions for article in articles for paragraph in article.paragraphs):
        raise EvalFileError(f"{path}: the SQuAD file holds no questions")
    return articles


def squad_items(articles: Sequence[SquadArticle], file_names: Sequence[str]) -> list[EvalItem]:
    """Answerable questions (gold: every annotated answer in its paragraph) and impossible ones ("adversarial")."""
    items = []
    for article, name in zip(articles, file_names, strict=True):
        for paragraph in article.paragraphs:
            for question in paragraph.questions:
                golds = tuple(Gold(name, text, paragraph.context) for text in question.answers)
                kind = "adversarial" if question.impossible else "answerable"
                items.append(EvalItem(question.id, question.question, not question.impossible, kind, golds))
    return items


def _read_eval_file(path: Path) -> tuple[list[EvalItem], tuple[SquadArticle, ...] | None]:
    """JSON-lines items, or a SQuAD file's articles (items are made once the corpus file names are known)."""
    text = _read_text(path)
    try:
        data = json.loads(text)
    except RecursionError:
        raise EvalFileError(f"{path}: JSON nested too deeply") from None
    except ValueError as exc:
        if path.suffix.lower() == ".json" and getattr(exc, "msg", "") != "Extra data":  # not JSON lines either
            raise EvalFileError(f"{path}: not valid JSON ({exc})") from None
        return parse_jsonl(text, path), None
    if is_squad(data):
        return [], _squad_articles(data, path)
    if isinstance(data, dict) and "question" in data:  # a JSON-lines file of one item
        return parse_jsonl(text, path), None
    raise EvalFileError(f'{path}: neither JSON lines of eval items nor SQuAD JSON (an object with a "data" list)')


def _out_of_corpus(path: Path, corpus_titles: set[str]) -> list[EvalItem]:
    """The answerable questions of another eval file, as questions the corpus cannot answer."""
    items, articles = _read_eval_file(path)
    if articles is not None:
        shared = sorted({display_title(a.title) for a in articles} & corpus_titles)
        if shared:
            raise EvalFileError(f"{path}: --outside articles are also in the eval file: {', '.join(shared)}")
        items = squad_items(articles, [""] * len(articles))
    outside = [EvalItem(item.id, item.question, False, "out-of-corpus", ()) for item in items if item.answerable]
    if not outside:
        raise EvalFileError(f"{path}: the --outside file holds no answerable questions")
    return outside


@contextmanager
def open_eval_set(path: Path, outside: Path | None = None) -> Iterator[EvalSet]:
    """The items of a JSON-lines or SQuAD file (plus outside's answerable ones as "out-of-corpus").

    A SQuAD file's articles are written to a temporary corpus, one file per article, with a temporary index
    cache beside it; both are removed on exit. A JSON-lines set is asked of the configured corpus.
    """
    items, articles = _read_eval_file(path)
    titles = {display_title(article.title) for article in articles or ()}
    extra = _out_of_corpus(outside, titles) if outside is not None else []
    if articles is None:
        yield EvalSet(tuple(items + extra))
        return
    with tempfile.TemporaryDirectory(prefix="qabot-eval-", ignore_cleanup_errors=True) as temporary:
        corpus, cache = Path(temporary) / "corpus", Path(temporary) / "cache"
        corpus.mkdir()
        names = write_corpus(articles, corpus)
        yield EvalSet(tuple(squad_items(articles, names) + extra), corpus, cache)


# --- scoring ----------------------------------------------------------------------------------------


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


def reliability_bins(pairs: Iterable[tuple[float, bool]], bins: int = CALIBRATION_BINS) -> tuple[ReliabilityBin, ...]:
    """(confidence, correct) pairs grouped into `bins` equal-width bins over [0, 1]; the non-empty ones.

    The reliability diagram of DeGroot and Fienberg (1983), as used by Guo et al. (2017), "On Calibration of
    Modern Neural Networks". Confidence 1.0 falls in the last bin; values outside [0, 1] in the nearest one.
    """
    counts, confidence_sums, correct_sums = [0] * bins, [0.0] * bins, [0] * bins
    for confidence, correct in pairs:
        index = min(max(int(confidence * bins), 0), bins - 1)
        counts[index] += 1
        confidence_sums[index] += confidence
        correct_sums[index] += correct
    return tuple(
        ReliabilityBin(i / bins, (i + 1) / bins, counts[i], confidence_sums[i] / counts[i], correct_sums[i] / counts[i])
        for i in range(bins)
        if counts[i]
    )


def expected_calibration_error(bins: Sequence[ReliabilityBin]) -> float | None:
    """ECE: the count-weighted mean |mean confidence - accuracy| of the bins (Naeini et al., 2015); None if empty."""
    total = sum(b.count for b in bins)
    if not total:
        return None
    return sum(b.count * abs(b.mean_confidence - b.accuracy) for b in bins) / total


def calibrated(results: Iterable[ItemResult]) -> list[ItemResult]:
    """The shown answers calibration is measured on: every kind but UNCALIBRATED_KINDS (questions written to
    look answerable from a paragraph that does not answer them, which users rarely ask)."""
    return [r for r in results if not r.answer.abstained and r.item.kind not in UNCALIBRATED_KINDS]


def calibration_pairs(results: Iterable[ItemResult]) -> list[tuple[float, bool]]:
    """(confidence, first passage hits) for every calibrated answer; a shown unanswerable question is a miss."""
    return [(r.answer.confidence, r.item.answerable and r.rank == 1) for r in calibrated(results)]


def label_figures(results: Iterable[ItemResult]) -> tuple[LabelFigures, ...]:
    """Each label's share of the calibrated answers and its precision, in the order labels first appear
    from the most confident answer down."""
    shown = sorted(calibrated(results), key=lambda r: -r.answer.confidence)
    by_label: dict[str, list[bool]] = {}
    for r in shown:
        by_label.setdefault(r.answer.label, []).append(r.item.answerable and r.rank == 1)
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
    golds = [[gold.quote for gold in item.answers] for _, item in pairs]
    em = sum(exact_match(p.text, g) for (p, _), g in zip(pairs, golds, strict=True) if p is not None)
    f1 = sum(f1_score(p.text, g) for (p, _), g in zip(pairs, golds, strict=True) if p is not None)
    total = len(pairs) if questions is None else questions
    return PhraseScores(total, em / total if total else 0.0, f1 / total if total else 0.0)


def phrase_report(results: Sequence[ItemResult]) -> PhraseReport | None:
    """The answer phrase's figures over the answerable questions; None when none was answered."""
    answerable = [r for r in results if r.item.answerable]
    answered = [r for r in answerable if not r.answer.abstained and r.answer.passages]
    if not answered:
        return None
    shown = [(r.answer.phrase, r.item) for r in answered if r.answer.phrase is not None]
    golds = {id(r): [gold.quote for gold in r.item.answers] for r in answered}
    bins = reliability_bins(
        (r.top_phrase.probability, exact_match(r.top_phrase.text, golds[id(r)])) for r in answered if r.top_phrase
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


# --- the printed report -----------------------------------------------------------------------------


def _miss_line(result: ItemResult) -> str | None:
    item, answer = result.item, result.answer
    if item.answerable and result.rank != 1:
        got = "abstained" if answer.abstained else (f"rank {result.rank}" if result.rank else "no passage hits")
    elif not item.answerable and not answer.abstained:
        got = f"answered, should abstain: {item.kind or 'unanswerable'}"
    else:
        return None
    top = answer.passages[0] if answer.passages and not answer.abstained else None
    where = f"; top: {top.location.source}:{top.location.line}, confidence {answer.confidence:.2f}" if top else ""
    return f"miss {item.id} ({got}{where}): {item.question}"


def render_report(report: EvalReport, misses: bool = False) -> str:
    """The figures, the abstention per kind and the reliability table; then one line per miss if asked."""
    answerable_abstained = round(report.false_abstention_rate * report.answerable)
    kind_width = max((len(k.kind) for k in report.abstention_by_kind), default=0)
    lines = [
        f"questions: {report.answerable + report.unanswerable} ({report.answerable} answerable, "
        f"{report.unanswerable} unanswerable)",
        f"R@1:    {report.recall_at_1:.3f}",
        f"R@3:    {report.recall_at_3:.3f}",
        f"MRR@10: {report.mrr_at_10:.3f}",
        f"false abstention rate: {report.false_abstention_rate:.3f} "
        f"({answerable_abstained} of {report.answerable} answerable)",
        f"abstention accuracy:   {report.abstention_accuracy:.3f} (unanswerable questions that abstained)",
        "abstention by kind:",
        *(
            f"  {k.kind:<{kind_width}} {k.abstained / k.questions:.3f} ({k.abstained} of {k.questions})"
            for k in report.abstention_by_kind
        ),
    ]
    if report.ece is None:
        lines.append("ECE: n/a (every answer abstained)")
    else:
        lines += [
            f"ECE: {report.ece:.3f} over {report.shown} shown answers ({CALIBRATION_BINS} confidence bins;"
            f" {', '.join(sorted(UNCALIBRATED_KINDS))} questions left out)",
            "  confidence      count  mean conf.  accuracy",
            *(
                f"  [{b.low:.1f}, {b.high:.1f}{']' if b.high == 1 else ')'}  {b.count:>7}  {b.mean_confidence:>10.3f}  "
                f"{b.accuracy:>8.3f}"
                for b in report.reliability
            ),
        ]
    if report.labels:
        width = max(len(f.label) for f in report.labels)
        lines += ["labels (shown answers; right: the first passage answers):"]
        lines += [f"  {f.label:<{width}}  {f.share:>6.1%} of answers ({f.count}), right {f.precision:.1%}"
                  for f in report.labels]  # fmt: skip
    if report.phrase is not None:
        lines += phrase_lines(report.phrase)
    if misses:
        lines += [line for line in map(_miss_line, report.results) if line]
    return "\n".join(lines)


def phrase_lines(report: PhraseReport) -> list[str]:
    """The answer phrase's figures (SQuAD's EM and F1) and its breakdown by question word."""
    skill, shown = report.readers_skill, report.shown
    ece = "n/a" if report.ece is None else f"{report.ece:.3f}"
    return [
        "answer phrase (SQuAD EM / F1):",
        f"  reader's skill:  {skill.em:.3f} / {skill.f1:.3f} (best phrase, shown or not, on {skill.questions}"
        " questions whose first passage holds a gold answer)",
        f"  shown:           {shown.em:.3f} / {shown.f1:.3f} ({shown.questions} of {report.answered} answered"
        f" answerable questions, {shown.questions / report.answered:.1%})",
        f"  all answerable:  {report.all_answerable.em:.3f} / {report.all_answerable.f1:.3f}"
        f" ({report.all_answerable.questions} questions, 0 when no phrase is shown)",
        f"  phrase ECE:      {ece} (best phrase's probability against its EM, answered answerable questions)",
        "  question word   answered   shown  shown EM  best EM",
        *(
            f"  {w.word:<14} {w.answered:>9} {w.shown:>7} {f'{w.shown_em:.3f}' if w.shown else '-':>9} {w.top_em:>8.3f}"
            for w in report.by_word
        ),
    ]
