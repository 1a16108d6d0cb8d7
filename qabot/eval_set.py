"""Eval sets: their items and gold answers, read from JSON lines (docs/eval-sets.md) or a SQuAD file."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from qabot.config import Settings, replace
from qabot.errors import QabotError
from qabot.squad import SquadArticle, SquadFormatError, display_title, is_squad, parse_squad, write_corpus


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

    @property
    def quotes(self) -> list[str]:
        """The gold answers' quotes, for SQuAD's EM and F1."""
        return [gold.quote for gold in self.answers]


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


class EvalFileError(QabotError):
    """The eval file is missing or malformed."""


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
