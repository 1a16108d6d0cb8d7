"""The one analyzer for index and query: NFKC, casefold, diacritics folded, stopwords, Snowball stems."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from importlib.resources import files
from itertools import compress, repeat
from operator import is_
from typing import TypeVar

V = TypeVar("V")


def _combining_mark() -> str:
    """A regex for one combining mark, from the shipped list of code point ranges.

    Marks in the Basic Multilingual Plane make one class that re compiles to a bitmap; the rare
    astral ones, a list it scans, are only tried after a cheap range check.
    """
    text = files("qabot").joinpath("data/combining_marks.txt").read_text(encoding="ascii")
    ranges = [line.split("-") for line in text.splitlines() if line.strip() and not line.startswith("#")]

    def char_class(pairs: list[list[str]]) -> str:
        return "[" + "".join("-".join(re.escape(chr(int(bound, 16))) for bound in pair) for pair in pairs) + "]"

    basic = char_class([pair for pair in ranges if int(pair[0], 16) <= 0xFFFF])
    astral = char_class([pair for pair in ranges if int(pair[0], 16) > 0xFFFF])
    return rf"(?:{basic}|(?=[\U00010000-\U0010ffff]){astral})"


# Words: letters/digits with any combining marks (decomposed "Erdog\u0306an", Devanagari vowel
# signs), inner apostrophes (don't, Azerbaijan's), or dotted acronyms (U.S., D.C.).
_CHAR = rf"[^\W_]{_combining_mark()}*+"
TOKEN = re.compile(rf"(?:{_CHAR}\.){{2,}}|(?:{_CHAR})+(?:['’](?:{_CHAR})+)*")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'"})
# Letters that Unicode does not decompose into base + mark.
_UNDECOMPOSABLE = str.maketrans({"ı": "i", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe"})
_MAX_TOKEN_CHARS = 64


@cache
def stopwords() -> frozenset[str]:
    """NLTK's English stopword list, shipped in qabot/data."""
    text = files("qabot").joinpath("data/stopwords_en.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


@cache
def irregular_verbs() -> dict[str, str]:
    """Irregular verb forms -> base form ("met" -> "meet"), shipped in qabot/data."""
    text = files("qabot").joinpath("data/irregular_verbs.txt").read_text(encoding="utf-8")
    pairs = (line.split() for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return {form: base for form, base in pairs}


@cache
def frame_terms() -> frozenset[str]:
    """Index terms of words that frame a question ("how many", "what is it called"), shipped in qabot/data."""
    text = files("qabot").joinpath("data/frame_words.txt").read_text(encoding="utf-8")
    words = (line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return frozenset(term for word in words if (term := term_of(word)))


# A lookup that misses scans the whole table's text, about a fiftieth of what splitting it into lines costs:
# after this many lookups a long-lived process splits it once (then a lookup is a dictionary's).
LOOKUPS_BEFORE_SPLITTING = 64


class TermTable(Mapping[str, V]):
    """A shipped table of one `term values...` line per term, a term's line found in the text when it is
    looked up: a fresh process looks up its question's few terms instead of parsing 10,000 lines; a
    process that goes on asking splits the lines into a dictionary once."""

    __slots__ = ("_lines", "_lookups", "_parse", "_text")

    def __init__(self, text: str, parse: Callable[[str], V]) -> None:
        self._text, self._parse = "\n" + text, parse
        self._lookups, self._lines = 0, None

    def __getitem__(self, term: str) -> V:
        if not isinstance(term, str) or not term or term[0] == "#" or any(ch in term for ch in " \n"):
            raise KeyError(term)
        if self._lines is None:
            self._lookups += 1
            if self._lookups > LOOKUPS_BEFORE_SPLITTING:
                self._lines = self._split()
        if self._lines is not None:
            return self._parse(self._lines[term])
        at = self._text.find(f"\n{term} ")
        if at < 0:
            raise KeyError(term)
        start = at + len(term) + 2
        end = self._text.find("\n", start)
        return self._parse(self._text[start : end if end >= 0 else None])

    def _split(self) -> dict[str, str]:
        """Each term's values text, the first line of a term winning as find() would have it."""
        lines: dict[str, str] = {}
        for line in self._text.split("\n"):
            term, space, values = line.partition(" ")
            if term and space and not term.startswith("#"):
                lines.setdefault(term, values)
        return lines

    def __iter__(self) -> Iterator[str]:
        return (line.split(" ", 1)[0] for line in self._text.splitlines() if line and not line.startswith("#"))

    def __len__(self) -> int:
        return sum(1 for _ in self)


@cache
def everyday_terms() -> Mapping[str, float]:
    """Index term -> Zipf frequency of the everyday words it stands for, in English and five other languages
    (from wordfreq; shipped in qabot/data, stemmed by tools/derive_common_words.py)."""
    return TermTable(files("qabot").joinpath("data/common_terms.txt").read_text(encoding="utf-8"), float)


@cache
def derivations() -> Mapping[str, tuple[str, ...]]:
    """Index term -> terms of its derivationally related words (agree -> agreement), from WordNet."""
    text = files("qabot").joinpath("data/derivations.txt").read_text(encoding="utf-8")
    return TermTable(text, lambda related: tuple(related.split()))


@cache
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def fold(word: str) -> str:
    """NFKC, casefold and strip diacritics: 'Erdoğan' -> 'erdogan', 'İlke' -> 'ilke'."""
    if word.isascii():
        return word.lower()
    word = unicodedata.normalize("NFKC", word).casefold().translate(_APOSTROPHES).translate(_UNDECOMPOSABLE)
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@cache
def term_of(token: str) -> str | None:
    """The index term of one surface token, or None for a stopword (cached: tokens are Zipfian).

    Dotted tokens (U.S., D.C.) are acronyms. Words are folded, lose a possessive 's,
    irregular verbs become their base form ("met" -> "meet"), and the result is stemmed
    with Snowball English (PyStemmer).
    """
    if len(token) > _MAX_TOKEN_CHARS:
        return None
    if "." in token:
        return fold(token.replace(".", ""))
    word = fold(token)
    if word.endswith("'s"):
        word = word[:-2]
    if word in stopwords():
        return None
    if word.isdigit():
        return word
    word = irregular_verbs().get(word, word)
    return _stemmer().stemWord(word.replace("'", ""))


@cache
def _is_capital_stopword(token: str) -> bool:
    if not token.isupper():
        return False
    word = fold(token)
    return 2 <= len(word) <= 5 and word in stopwords()


def _acronyms_allowed(text: str) -> bool:
    # In a shouted question ("WHO WROTE HAMLET") capitals carry no acronym signal.
    letters = sum(map(str.isalpha, text))
    return not letters or sum(map(str.isupper, text)) < 0.6 * letters


def _terms_with_offsets(text: str) -> Iterator[tuple[re.Match[str], str]]:
    acronyms: bool | None = None
    for match in TOKEN.finditer(text):
        token = match.group()
        term = term_of(token)
        if term is None and _is_capital_stopword(token):
            # A stopword in capitals (US, IT, WHO) is an acronym unless the whole text shouts.
            if acronyms is None:
                acronyms = _acronyms_allowed(text)
            term = fold(token) if acronyms else None
        if term:
            yield match, term


def analyze(text: str) -> list[str]:
    """Index terms of text, in order, stopwords removed."""
    tokens = TOKEN.findall(text)
    terms = list(map(term_of, tokens))
    # map and compress keep the per-token work in C: this runs on every sentence of a build.
    if any(map(_is_capital_stopword, compress(tokens, map(is_, terms, repeat(None))))):
        return [term for _, term in _terms_with_offsets(text)]
    return list(filter(None, terms))


def term_spans(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, term) for each non-stopword token of text; text[start:end] is the token."""
    for match, term in _terms_with_offsets(text):
        yield match.start(), match.end(), term


def surface_words(text: str) -> list[tuple[str, str]]:
    """(folded word as typed, term) for each non-stopword token: what users recognise."""
    return [(fold(match.group()).replace(".", ""), term) for match, term in _terms_with_offsets(text)]
