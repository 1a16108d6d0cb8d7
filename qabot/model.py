"""Values that cross layers: sentences, passages and answers (frozen, slotted)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence of a document: `doc.text[start:end]` is its text; lines are 1-based."""

    doc_id: int
    start: int
    end: int
    line: int
    end_line: int
    boilerplate: bool = False


@dataclass(frozen=True, slots=True)
class Location:
    """Where a span sits: a file relative to the corpus root, character offsets and lines."""

    source: str  # relative to the corpus root, forward slashes
    file: Path  # absolute path of the same file
    start: int
    end: int
    line: int
    end_line: int
    sha256: str
    column: int = 1  # 1-based, in characters from the start of `line`: PATH:LINE:COL


@dataclass(frozen=True, slots=True)
class Passage:
    """One answering sentence: `text` is exactly the file's text[start:end]."""

    text: str
    location: Location
    score: float
    matched_terms: tuple[str, ...]
    context_before: str
    context_after: str
    also_in: tuple[Location, ...]
    title: str
    date: str | None
    url: str | None = None  # the article's original web address (front matter url or source)


@dataclass(frozen=True, slots=True)
class AnswerPhrase:
    """The words of the first passage that answer: the file's text[start:end] is `text` (line and column 1-based)."""

    text: str
    start: int
    end: int
    line: int
    column: int
    probability: float  # calibrated probability that these are the answer's words


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to one question: passages best first, or an abstention with its reason."""

    question: str
    passages: tuple[Passage, ...]
    abstained: bool
    reason: str
    expansions: tuple[tuple[str, str], ...] = ()  # (typed term, variant also searched)
    sentences_searched: int = 0
    confidence: float = 0.0  # calibrated probability that the first passage answers the question
    missing_shards: tuple[str, ...] = ()  # shards of a sharded index not searched: the answer is partial
    label: str = ""  # the confidence in words ("Likely answer", ...), with a measured precision; "" when abstained
    phrase: AnswerPhrase | None = None  # the words that answer, inside the first passage, when likely right
