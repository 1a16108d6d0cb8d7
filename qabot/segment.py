"""Sentences with exact offsets, offline: NLTK Punkt with built-in parameters, no download."""

from __future__ import annotations

import re
import sys
from bisect import bisect_right
from collections.abc import Iterable
from functools import cache, lru_cache
from types import ModuleType
from typing import TYPE_CHECKING

from qabot.corpus import Document, Head, read_head
from qabot.markdown import body_stretches
from qabot.model import Sentence

if TYPE_CHECKING:
    from nltk.tokenize.punkt import PunktSentenceTokenizer

# Lower-cased, without the final period, as Punkt stores them.
ABBREVIATIONS = frozenset(
    (
        "u.s u.k u.n e.u u.s.a d.c a.m p.m e.g i.e etc vs al approx est dept govt gov sen rep "
        "mr mrs ms dr prof st mt ft jr sr gen col lt sgt capt maj adm cmdr rev hon pres "
        "jan feb mar apr jun jul aug sep sept oct nov dec inc ltd co corp bros no nos fig a.s ave blvd rd "
        # single letters: middle initials, as in George P. Shultz
        "a b c d e f g h i j k l m n o p q r s t u v w x y z"
    ).split()
)

# A sentence longer than this is cut at a space, so one unpunctuated file cannot
# become a single enormous passage.
MAX_SENTENCE_CHARS = 1000
_LINE_BREAK = re.compile(r"\n")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")
_REMEMBERED_CONTEXTS = 1 << 16  # Punkt break decisions kept (a few MB)


@cache
def punkt_tokenizer() -> PunktSentenceTokenizer:
    """Punkt (Kiss & Strunk 2006) with news abbreviations; needs no punkt_tab download."""
    punkt = _import_punkt()

    class NewsLanguageVars(punkt.PunktLanguageVars):
        # Curly quotes open words too, so “U.S. is still seen as the abbreviation U.S.
        _re_word_start = r"[^\(\"\`{\[:;&\#\*@\)}\]\-,“‘«]"

    class RememberingTokenizer(punkt.PunktSentenceTokenizer):
        # Whether a candidate break ends a sentence depends on its context alone (the words around the
        # period, given fixed parameters), and contexts repeat ("said. The"): the decisions are remembered.
        def __init__(self, params: punkt.PunktParameters, lang_vars: punkt.PunktLanguageVars) -> None:
            super().__init__(params, lang_vars=lang_vars)
            self._sentbreaks = lru_cache(maxsize=_REMEMBERED_CONTEXTS)(super().text_contains_sentbreak)

        def text_contains_sentbreak(self, text: str) -> bool:
            return self._sentbreaks(text)

    params = punkt.PunktParameters()
    params.abbrev_types = set(ABBREVIATIONS)
    return RememberingTokenizer(params, NewsLanguageVars())


def _import_punkt() -> ModuleType:
    """nltk.tokenize.punkt, imported with SciPy hidden when nothing has imported it yet.

    NLTK's package __init__ imports scipy.stats (half a second) for collocation statistics, and
    falls back without them when SciPy is missing; Punkt never uses them. Hiding SciPy for the
    length of the import keeps a refresh from paying for it; afterwards SciPy imports as usual.
    """
    hide = "scipy" not in sys.modules
    if hide:
        sys.modules["scipy"] = None  # type: ignore[assignment]  # makes `import scipy...` fail fast
    try:
        from nltk.tokenize import punkt
    finally:
        if hide:
            sys.modules.pop("scipy", None)
    return punkt


def compile_boilerplate(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive regex matching a whole boilerplate line (None when no patterns)."""
    patterns = list(patterns)
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def sentence_spans(
    text: str, boilerplate: re.Pattern[str] | None = None, head: Head | None = None
) -> list[tuple[int, int, bool]]:
    """(start, end, is_boilerplate) for each sentence of text, in order.

    Invariant: text[start:end] is the sentence with surrounding whitespace stripped.
    Blank lines end paragraphs; a line break ends a sentence unless the next line
    starts in lower case. `head` says where the title, date and front matter sit
    (read as a .txt article when None): they are no part of any sentence, except a
    title in an article with nothing else. Markdown markup holds no sentence.
    """
    head = head or read_head(text, False, boilerplate)
    stretches = body_stretches(text, head.body_start, head.title_span) if head.markdown else _text_stretches(text, head)
    tokenizer = punkt_tokenizer()
    spans: list[tuple[int, int, bool]] = []
    for pieces, flagged in _units(text, stretches, boilerplate, head.markdown):
        unit_start = pieces[0][0]
        unit = text[unit_start : pieces[-1][1]]
        for start, end in tokenizer.span_tokenize(unit):
            for piece_start, piece_end in _cap_length(unit, start, end):
                start_at = _in_stretch(pieces, unit_start + piece_start)
                if start_at < unit_start + piece_end:
                    spans.append((start_at, unit_start + piece_end, flagged))
    if head.title_span and not any(not flagged for _, _, flagged in spans):
        spans.append((*head.title_span, False))  # the title is all the article says
        spans.sort()
    return spans


def _text_stretches(text: str, head: Head) -> Iterable[tuple[int, int, bool]]:
    """(start, end, opens_block) of each line's text, stripped; lines of the head are breaks."""
    position = 0
    for line in text.split("\n"):
        line_start, position = position, position + len(line) + 1
        stripped = line.strip()
        if not stripped or head.meta_start <= line_start < head.body_start:
            yield line_start, line_start, True
            continue
        first = line_start + len(line) - len(line.lstrip())
        yield first, first + len(stripped), False


def _units(
    text: str, stretches: Iterable[tuple[int, int, bool]], boilerplate: re.Pattern[str] | None, markdown: bool
) -> Iterable[tuple[list[tuple[int, int]], bool]]:
    """(the stretches of a unit, is_boilerplate) for each run of stretches that may hold sentences.

    A unit is a stretch, joined with the next when that opens no block and starts in lower case
    (in Markdown, whatever its case: a single line break does not end a paragraph there); an empty
    stretch ends a unit; a boilerplate line is always a unit of its own.
    """
    unit: list[tuple[int, int]] = []
    for start, end, opens in stretches:
        stripped = text[start:end]
        flagged = bool(stripped and boilerplate and boilerplate.fullmatch(stripped))
        if unit and (not stripped or flagged or opens or not (markdown or stripped[0].islower())):
            yield unit, False
            unit = []
        if not stripped:
            continue
        if flagged:
            yield [(start, end)], True
            continue
        unit.append((start, end))
    if unit:
        yield unit, False


def _in_stretch(pieces: list[tuple[int, int]], offset: int) -> int:
    """offset, or the start of the next piece when offset falls between pieces (on a `> ` quote marker)."""
    at = bisect_right(pieces, offset, key=lambda piece: piece[1])
    return max(offset, pieces[at][0]) if at < len(pieces) else offset


def _cap_length(unit: str, start: int, end: int) -> Iterable[tuple[int, int]]:
    while end - start > MAX_SENTENCE_CHARS:
        cut = unit.rfind(" ", start + 1, start + MAX_SENTENCE_CHARS)
        if cut <= start:
            cut = start + MAX_SENTENCE_CHARS
        piece_end = cut
        while piece_end > start and unit[piece_end - 1].isspace():
            piece_end -= 1
        yield start, piece_end
        start = cut
        while start < end and unit[start].isspace():
            start += 1
    if end > start:
        yield start, end


def line_starts(text: str) -> list[int]:
    """Offsets where each line begins (line n starts at result[n - 1])."""
    return [0] + [match.end() for match in _LINE_BREAK.finditer(text)]


def paragraph_breaks(text: str) -> list[int]:
    """Where each blank line of text (a paragraph break) begins, in order."""
    return [match.start() for match in _PARAGRAPH_BREAK.finditer(text)]


def segment_document(doc: Document, doc_id: int = 0, boilerplate: re.Pattern[str] | None = None) -> list[Sentence]:
    """Every sentence of doc with exact offsets and 1-based line numbers."""
    starts = line_starts(doc.text)
    return [
        Sentence(doc_id, start, end, bisect_right(starts, start), bisect_right(starts, end - 1), flagged)
        for start, end, flagged in sentence_spans(doc.text, boilerplate, doc.head)
    ]
