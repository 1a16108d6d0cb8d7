"""The SQuAD v1.1 / v2.0 JSON format: reading its articles and questions, writing them as corpus files."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_NAME_CHARS = 60


class SquadFormatError(ValueError):
    """The JSON is not in the SQuAD format; the message says where (data[i].paragraphs[j]...) and what."""


@dataclass(frozen=True, slots=True)
class SquadQuestion:
    id: str
    question: str
    answers: tuple[str, ...]  # the distinct annotated answer texts, sorted
    impossible: bool  # SQuAD 2.0's is_impossible: the paragraph does not answer it


@dataclass(frozen=True, slots=True)
class SquadParagraph:
    context: str  # surrounding whitespace removed: exactly the text written to the corpus file
    questions: tuple[SquadQuestion, ...]


@dataclass(frozen=True, slots=True)
class SquadArticle:
    title: str
    paragraphs: tuple[SquadParagraph, ...]


def is_squad(data: object) -> bool:
    """Whether parsed JSON has SQuAD's shape at the top: an object with a "data" list."""
    return isinstance(data, dict) and isinstance(data.get("data"), list)


def parse_squad(data: object) -> tuple[SquadArticle, ...]:
    """The articles of parsed SQuAD JSON; SquadFormatError names the first element that is wrong."""
    if not is_squad(data):
        raise SquadFormatError('not SQuAD JSON: expected an object with a "data" list')
    return tuple(_article(raw, f"data[{number}]") for number, raw in enumerate(data["data"]))


_KIND_NAMES = {str: "string", list: "list"}


def _field(raw: object, key: str, kind: type, where: str) -> Any:
    """raw[key] when raw is an object and the value has the expected JSON kind."""
    if not isinstance(raw, dict):
        raise SquadFormatError(f"{where} is not a JSON object")
    value = raw.get(key)
    if not isinstance(value, kind):
        raise SquadFormatError(f'{where} has no "{key}" {_KIND_NAMES[kind]}')
    return value


def _article(raw: object, where: str) -> SquadArticle:
    title = _field(raw, "title", str, where)
    paragraphs = _field(raw, "paragraphs", list, where)
    return SquadArticle(title, tuple(_paragraph(p, f"{where}.paragraphs[{n}]") for n, p in enumerate(paragraphs)))


def _paragraph(raw: object, where: str) -> SquadParagraph:
    context = _field(raw, "context", str, where).strip()
    if not context:
        raise SquadFormatError(f"{where} has an empty context")
    qas = _field(raw, "qas", list, where)
    return SquadParagraph(context, tuple(_question(q, f"{where}.qas[{n}]") for n, q in enumerate(qas)))


def _question(raw: object, where: str) -> SquadQuestion:
    question_id = _field(raw, "id", str, where)
    question = _field(raw, "question", str, where).strip()
    if not question:
        raise SquadFormatError(f"{where} has an empty question")
    impossible = raw.get("is_impossible", False)  # absent in v1.1, where every question is answerable
    if not isinstance(impossible, bool):
        raise SquadFormatError(f'{where} has an "is_impossible" that is not true or false')
    texts = sorted(
        {
            text
            for number, answer in enumerate(raw.get("answers") or [])
            if (text := _field(answer, "text", str, f"{where}.answers[{number}]")).strip()
        }
    )
    if not impossible and not texts:
        raise SquadFormatError(f"{where} is answerable but has no answer text")
    return SquadQuestion(question_id, question, () if impossible else tuple(texts), impossible)


def display_title(title: str) -> str:
    """The title as a reader writes it: SQuAD titles are Wikipedia page names (Sky_(United_Kingdom))."""
    return " ".join(title.replace("_", " ").split())


def article_text(article: SquadArticle) -> str:
    """The corpus file of an article: its title, a blank line, then its paragraphs separated by blank lines."""
    return "\n\n".join([display_title(article.title) or "Untitled", *(p.context for p in article.paragraphs)]) + "\n"


def safe_file_names(titles: Iterable[str]) -> list[str]:
    """A distinct, portable `.txt` file name per title: lower-case ASCII letters, digits and underscores."""
    names: list[str] = []
    taken: set[str] = set()
    for title in titles:
        folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
        stem = re.sub(r"[^a-z0-9]+", "_", folded).strip("_")[:MAX_NAME_CHARS].strip("_") or "article"
        name, copy = f"{stem}.txt", 1
        while name in taken:
            copy += 1
            name = f"{stem}_{copy}.txt"
        taken.add(name)
        names.append(name)
    return names


def write_corpus(articles: Sequence[SquadArticle], folder: Path) -> list[str]:
    """Write one file per article into folder (see article_text); returns the file names, in article order."""
    names = safe_file_names(article.title for article in articles)
    for name, article in zip(names, articles, strict=True):
        (folder / name).write_text(article_text(article), encoding="utf-8", newline="\n")
    return names
