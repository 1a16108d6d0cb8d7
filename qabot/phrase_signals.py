"""The answer phrase's candidates and their signals: which spans of a sentence could answer, and what
each looks like.

Every span of the sentence that could be an answer (a name, a number with its unit, a run of
content words: at most MAX_SPAN tokens, not starting or ending on a stopword or punctuation) is a
candidate; PHRASE_FEATURES names what phrase_features measures of each. phrase.py weighs them.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import numpy as np

from qabot.analyze import stopwords, term_of
from qabot.answer_type import QuestionForm

MAX_SPAN = 10  # tokens in a candidate
_PAD = 12  # the widest window around a span that phrase_features counts question words in
# Signals of a candidate span, in order; each has a weight, plus one per question form.
PHRASE_FEATURES = (
    "question_overlap",  # share of the span's words that are the question's: the answer is what it does not say
    "all_question_words",  # every content word of the span is in the question
    "head_in_span",  # the span holds the noun of "what/which X" (X)
    "head_beside",  # X stands within two tokens of the span ("the river Danube", "Cologne city")
    "near_distance",  # log(1 + tokens from the span to the nearest question word outside it)
    "far_distance",  # log(1 + tokens to the farthest)
    "matched_left",  # share of the sentence's question words left of the span
    "matched_right",  # share right of it
    "left_matched",  # a question word just before the span (a stopword between them allowed): "born in [1745]"
    "right_matched",  # a question word just after it
    "within_3",  # share of the question words within 3 tokens of the span
    "within_6",
    "within_12",
    "no_match",  # the sentence holds no question word
    "position",  # where the span starts, 0 at the sentence's start, 1 at its end
    "length",  # tokens / MAX_SPAN
    "clean_left",  # starts the sentence or follows punctuation or a stopword: a constituent's edge
    "clean_right",  # ends the sentence or comes before punctuation or a stopword
    "cuts_name",  # starts or ends inside a run of capitalised words
    "cuts_number",  # starts or ends inside a number
    "idf",  # mean IDF of the span's words, over the corpus's largest: a rare word names something
    # shape of the span
    "capitalised",  # its first word has a capital
    "all_capitalised",  # every content word has one: a name
    "number",  # holds a number (digits or a number word)
    "year",  # a year (1745, 1990s)
    "month",  # a month's name
    "money",  # a currency sign or word
    "percent",  # % or percent
    "unit",  # a unit of measure (km, tonnes, acres)
    "duration",  # a unit of time (days, years)
    "era",  # century, decade, BC, AD, ago
    "person_suffix",  # ends in -er, -or, -ist, -ian: a role or a trade
    "abstract_suffix",  # ends in -tion, -ment, -ity, -ism, -ness, -ance, -ence
    "lowercase",  # no capital and no digit
    "bracketed",  # the whole of a bracket's contents
    "quoted",  # the whole of a quotation
    "len_1",  # one token
    "len_2",
    "len_3",
    "len_4_5",
    "len_6_up",
    "has_comma",
    "has_and",  # holds "and" or "or": a list
    # the token before it
    "after_start",  # it opens the sentence
    "after_in",  # in, on, at, near, within
    "after_of",
    "after_by",
    "after_from",  # from, to, into, through
    "after_as",  # as, called, named, known
    "after_be",  # is, was, are, were, became
    "after_article",  # the, a, an
    "after_comma",
    "after_open",  # an opening bracket or quote
    "after_time",  # since, until, during, before, after, between
    "after_number",
    "after_name",  # a capitalised word
    # the token after it
    "before_end",  # it ends the sentence
    "before_comma",
    "before_of",
    "before_in",  # in, on, at
    "before_and",  # and, or
    "before_close",  # a closing bracket or quote
    "before_be",  # is, was, are, were
    "before_possessive",  # 's
    "before_who",  # who, which, that, where
    "before_number",
    "before_name",
)
_W = r"(?:[^\W_]|[\u0300-\u036f])"  # a letter or digit, or a combining accent
_TOKEN = re.compile(
    rf"(?:[^\W\d_]\.){{2,}}|\d+(?:[.,:]\d+)*(?:st|nd|rd|th|s)?(?!{_W})|['’]s\b|{_W}+(?:-{_W}+|['’](?!s\b){_W}+)*|\S"
)
_BREAKS = frozenset(';:()[]{}"“”«»—|')  # a candidate never spans these
_OPENERS, _CLOSERS = frozenset("([{\"“«'‘"), frozenset(")]}\"”»'’")
_QUOTES = frozenset("\"“”«»'‘’")
_HEDGES = frozenset("about around over under nearly almost approximately some roughly more less than up to".split())
_CURRENCY = frozenset("$£€¥")
_NUMBER_WORDS = frozenset("one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty "
                          "fifty hundred hundreds thousand thousands million millions billion billions trillion dozen "
                          "dozens half third quarter".split())  # fmt: skip
_MONTHS = frozenset("january february march april may june july august september october november december".split())
_MONEY = frozenset("dollars dollar pounds pound euros euro cents usd gbp eur yen".split())
_PERCENT = frozenset(("%", "percent", "per", "percentage"))
_UNITS = frozenset("km kilometres kilometers kilometre kilometer mi miles mile m metres meters metre meter cm mm ft "
                   "feet foot inches inch yards yard acres acre hectares hectare ha kg kilograms kilogram tonnes "
                   "tonne tons ton lb lbs pounds square sq cubic mph kmh km/h degrees °c °f mw kw gw watts volts "
                   "litres liters gallons".split())  # fmt: skip
_DURATIONS = frozenset("seconds second minutes minute hours hour days day weeks week months month years year".split())
_ERAS = frozenset("century centuries decade decades bc bce ad ce ago millennium era".split())
_PERSON_SUFFIX = re.compile(r"(?:er|or|ist|ian|ant|ee)s?$")
_ABSTRACT_SUFFIX = re.compile(r"(?:tion|sion|ment|ity|ism|ness|ance|ence|ship)s?$")
_YEAR = re.compile(r"(?:1[0-9]|20)\d\ds?|\d{2,3}0s")
_BEFORE = {  # feature -> words of the token before the span
    "after_in": {"in", "on", "at", "near", "within", "inside"},
    "after_of": {"of"},
    "after_by": {"by"},
    "after_from": {"from", "to", "into", "through", "towards", "toward"},
    "after_as": {"as", "called", "named", "known", "titled", "nicknamed"},
    "after_be": {"is", "was", "are", "were", "be", "been", "became", "becomes"},
    "after_article": {"the", "a", "an"},
    "after_comma": {","},
    "after_time": {"since", "until", "during", "before", "after", "between", "till"},
}
_AFTER = {  # feature -> words of the token after the span
    "before_comma": {","},
    "before_of": {"of"},
    "before_in": {"in", "on", "at"},
    "before_and": {"and", "or"},
    "before_be": {"is", "was", "are", "were"},
    "before_possessive": {"'s", "’s"},
    "before_who": {"who", "which", "that", "where", "whose"},
}


@dataclass(frozen=True, slots=True)
class Tokens:
    """A sentence's tokens: text and character offsets (sentence[starts[i]:ends[i]] == texts[i])."""

    texts: list[str]
    starts: np.ndarray
    ends: np.ndarray


def tokenize(sentence: str) -> Tokens:
    """Words, numbers (1,050,000; 1990s), dotted initials, a possessive 's, and single punctuation marks."""
    matches = list(_TOKEN.finditer(sentence))
    return Tokens(
        [match.group() for match in matches],
        np.array([match.start() for match in matches], dtype=np.int64),
        np.array([match.end() for match in matches], dtype=np.int64),
    )


def _is_word(token: str) -> bool:
    return token[0].isalnum()


def candidate_spans(tokens: Tokens) -> tuple[np.ndarray, np.ndarray]:
    """Token ranges [start, end) of the candidates: at most MAX_SPAN tokens, not across a bracket, quote,
    colon, semicolon or dash, starting and ending on a content word (or a currency sign or hedge before
    a number, a % after one)."""
    texts = tokens.texts
    lower = [text.lower() for text in texts]
    stop = stopwords()
    content = [_is_word(text) and low not in stop for text, low in zip(texts, lower, strict=True)]
    number = [text[0].isdigit() for text in texts] + [False, False]
    hedge = [low in _HEDGES or low in _CURRENCY for low in lower] + [False]
    # "more than 1,000": a hedge may open a candidate when a number, or a hedge and a number, follow
    can_start = [ok or (hedge[i] and (number[i + 1] or (hedge[i + 1] and number[i + 2])))
                 for i, ok in enumerate(content)]  # fmt: skip
    can_end = [ok or low == "%" for ok, low in zip(content, lower, strict=True)]
    starts, ends = [], []
    for i in range(len(texts)):
        if not can_start[i]:
            continue
        for j in range(i, min(len(texts), i + MAX_SPAN)):
            if texts[j] in _BREAKS:
                break
            if can_end[j]:
                starts.append(i)
                ends.append(j + 1)
    return np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)


def phrase_features(
    form: QuestionForm,
    question_terms: frozenset[str],
    tokens: Tokens,
    spans: tuple[np.ndarray, np.ndarray],
    idf: Callable[[str], float] | None = None,
) -> np.ndarray:
    """The PHRASE_FEATURES of each candidate span [start, end) of the sentence (rows follow spans).

    question_terms are the question's index terms (analyze.term_of); idf gives an index term's IDF
    over the corpus's largest (1 for a term the corpus lacks; without it every word counts as rare).
    Every count over a span is a difference of one table of running sums, so the cost is a few array
    operations whatever the number of candidates.
    """
    s, e = spans
    n = len(tokens.texts)
    head = term_of(form.head) if form.head else None
    rows = []
    for text in tokens.texts:
        rows.append(_static_row(text))
        term = term_of(text) if text[0].isalnum() else None
        rows.append(_NOT_A_WORD if term is None else _QUESTION_ROW.pack(
            term in question_terms, term == head, idf(term) if idf else 1.0, 1.0))  # fmt: skip
    rows.append(_NOTHING)  # index n: a padding token that is nothing
    padded = np.frombuffer(b"".join(rows), dtype=np.float64).reshape(n + 1, len(_TOKEN_COLUMNS))
    table = padded[:n]
    running = np.zeros((n + 1, len(_TOKEN_COLUMNS)))
    np.cumsum(table, axis=0, out=running[1:])
    matched_at = _TOKEN_INDEX["matched"]
    head_at = _TOKEN_INDEX["head"]
    # question words up to each token, padded so that windows reaching past either end need no clipping
    running_matched = np.concatenate(
        [np.zeros(_PAD), running[:, matched_at], np.full(_PAD, running[-1, matched_at])]
    )

    def count(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return running[hi] - running[lo]

    def count_matched(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return running_matched[hi + _PAD] - running_matched[lo + _PAD]

    inside = count(s, e)
    col = _TOKEN_INDEX
    matched = table[:, col["matched"]]
    length = e - s
    content_count = inside[:, col["content"]]
    match_count = inside[:, col["matched"]]
    total_matches = int(matched.sum())
    outside = max(total_matches, 1)
    at = np.flatnonzero(matched)
    if len(at):
        left = np.searchsorted(at, s) - 1
        right = np.searchsorted(at, e)
        to_left = np.where(left >= 0, s - at[np.maximum(left, 0)], n)
        to_right = np.where(right < len(at), at[np.minimum(right, len(at) - 1)] - e + 1, n)
        near = np.minimum(to_left, to_right)
        far = np.maximum(np.where(at[0] < s, s - at[0], 0), np.where(at[-1] >= e, at[-1] - e + 1, 0))
    else:
        near = far = np.full(len(s), n)
    # the tokens before, after, first in and last in each span, gathered at once
    m = len(s)
    around = padded[np.concatenate([np.where(s > 0, s - 1, n), e, s, e - 1])]
    prev, after, first, last = around[:m], around[m : 2 * m], around[2 * m : 3 * m], around[3 * m :]
    head_count = running[:, head_at]

    def window(k: int) -> np.ndarray:
        return (count_matched(s - k, s) + count_matched(e, e + k)) / outside

    columns: dict[str, Any] = {
        "question_overlap": match_count / np.maximum(inside[:, col["word"]], 1),
        "all_question_words": (match_count >= content_count) & (content_count > 0),
        "head_in_span": inside[:, head_at] > 0,
        "head_beside": (head_count[s] - head_count[np.maximum(s - 2, 0)] + head_count[np.minimum(e + 2, n)]
                        - head_count[e]) > 0,
        "near_distance": np.log1p(near) / 3,
        "far_distance": np.log1p(far) / 3,
        "matched_left": running[s, matched_at] / outside,
        "matched_right": (total_matches - running[e, matched_at]) / outside,
        "left_matched": (count_matched(s - 1, s) + (prev[:, col["stopword"]] > 0) * count_matched(s - 2, s - 1)) > 0,
        "right_matched": (count_matched(e, e + 1) + (after[:, col["stopword"]] > 0) * count_matched(e + 1, e + 2)) > 0,
        "within_3": window(3),
        "within_6": window(6),
        "within_12": window(12),
        "no_match": np.full(len(s), total_matches == 0),
        "position": s / max(n, 1),
        "length": length / MAX_SPAN,
        "clean_left": (s == 0) | (prev[:, col["word"]] == 0) | (prev[:, col["stopword"]] > 0),
        "clean_right": (e == n) | (after[:, col["word"]] == 0) | (after[:, col["stopword"]] > 0),
        "cuts_name": _cuts(prev, first, last, after, col["capital"]),
        "cuts_number": _cuts(prev, first, last, after, col["numeric"]),
        "idf": inside[:, col["rarity"]] / np.maximum(inside[:, col["rare"]], 1),
        "capitalised": first[:, col["capital"]],
        "all_capitalised": (inside[:, col["capital_content"]] == content_count) & (content_count > 0),
        "number": inside[:, col["numeric"]] > 0,
        "person_suffix": last[:, col["person_suffix"]],
        "abstract_suffix": last[:, col["abstract_suffix"]],
        "lowercase": (inside[:, col["capital"]] == 0) & (inside[:, col["numeric"]] == 0),
        "bracketed": prev[:, col["open_bracket"]] * after[:, col["close_bracket"]],
        "quoted": prev[:, col["quote"]] * after[:, col["quote"]],
        "len_1": length == 1,
        "len_2": length == 2,
        "len_3": length == 3,
        "len_4_5": (length >= 4) & (length <= 5),
        "len_6_up": length >= 6,
        "after_start": s == 0,
        "before_end": (e == n) | (after[:, col["period"]] > 0),
    }
    features = np.zeros((len(s), len(PHRASE_FEATURES)))
    for name, values in columns.items():
        features[:, _FEATURE_INDEX[name]] = values
    # the signals that are a token column as it stands before the span, after it, or anywhere in it
    features[:, _FROM_BEFORE[0]] = prev[:, _FROM_BEFORE[1]]
    features[:, _FROM_AFTER[0]] = after[:, _FROM_AFTER[1]]
    features[:, _FROM_INSIDE[0]] = inside[:, _FROM_INSIDE[1]] > 0
    return features


def _cuts(prev: np.ndarray, first: np.ndarray, last: np.ndarray, after: np.ndarray, column: int) -> np.ndarray:
    """Whether a span starts or ends inside a run of tokens that have the column's property."""
    return (prev[:, column] * first[:, column] + after[:, column] * last[:, column]) > 0


_SPAN_FLAGS = ("year", "month", "money", "percent", "unit", "duration", "era", "has_comma", "has_and")
# What phrase_features needs to know of each token, one column each: first those of the token alone
# (_static_row), then those that depend on the question and the corpus.
_STATIC_COLUMNS = (
    "word", "content", "stopword", "capital", "capital_content", "numeric", *_SPAN_FLAGS, "person_suffix",
    "abstract_suffix", "open_bracket", "close_bracket", "quote", "opener", "closer", "period", *_BEFORE, *_AFTER,
)  # fmt: skip
_TOKEN_COLUMNS = (*_STATIC_COLUMNS, "matched", "head", "rarity", "rare")
_TOKEN_INDEX = {name: i for i, name in enumerate(_TOKEN_COLUMNS)}
_FEATURE_INDEX = {name: i for i, name in enumerate(PHRASE_FEATURES)}
_QUESTION_ROW = struct.Struct("4d")  # a word token's columns after _STATIC_COLUMNS: matched, head, rarity, rare
_NOT_A_WORD = _QUESTION_ROW.pack(0.0, 0.0, 0.0, 0.0)
_NOTHING = bytes(8 * len(_TOKEN_COLUMNS))


def _copied(pairs: dict[str, str]) -> tuple[list[int], list[int]]:
    """(feature columns, token columns) of signals that copy a token column: PHRASE_FEATURES name -> its column."""
    return [PHRASE_FEATURES.index(name) for name in pairs], [_TOKEN_INDEX[column] for column in pairs.values()]


_FROM_BEFORE = _copied({**{name: name for name in _BEFORE}, "after_open": "opener", "after_number": "numeric",
                        "after_name": "capital"})  # fmt: skip
_FROM_AFTER = _copied({**{name: name for name in _AFTER}, "before_close": "closer", "before_number": "numeric",
                       "before_name": "capital"})  # fmt: skip
_FROM_INSIDE = _copied({name: name for name in _SPAN_FLAGS})  # any token of the span has it


# Every word a _STATIC_COLUMNS flag looks for; any other token's row depends only on its shape.
_LISTED = frozenset().union(
    _NUMBER_WORDS, _MONTHS, _MONEY, _CURRENCY, _PERCENT, _UNITS, _DURATIONS, _ERAS, _QUOTES, _OPENERS, _CLOSERS,
    (",", "and", "or", "(", "[", ")", "]", "."), *_BEFORE.values(), *_AFTER.values(),
)


@lru_cache(maxsize=1 << 16)  # tokens are Zipfian: most of a sentence's are cached
def _static_row(text: str) -> bytes:
    """A token's _STATIC_COLUMNS, as the bytes of float64 values (rows join into a table in one copy)."""
    low = text.lower()
    word = text[0].isalnum()
    listed = low if low in _LISTED or low[0].isdigit() else ""
    return _row_of(
        listed, word, word and low in stopwords(), word and text[0].isupper(),
        bool(_PERSON_SUFFIX.search(low)) and low.isalpha(), bool(_ABSTRACT_SUFFIX.search(low)),
    )  # fmt: skip


@cache  # few distinct shapes: every unlisted word of one shape shares its row
def _row_of(listed: str, word: bool, stop: bool, capital: bool, person: bool, abstract: bool) -> bytes:
    """The _STATIC_COLUMNS of a token that is `listed` (a word some flag looks for, or a number; "" for
    any other) with the given shape."""
    content = word and not stop
    flags = {
        "word": word, "content": content, "stopword": stop, "capital": capital, "capital_content": capital and content,
        "numeric": listed[:1].isdigit() or listed in _NUMBER_WORDS,
        "year": bool(_YEAR.fullmatch(listed)), "month": listed in _MONTHS,
        "money": listed in _MONEY or listed in _CURRENCY, "percent": listed in _PERCENT, "unit": listed in _UNITS,
        "duration": listed in _DURATIONS, "era": listed in _ERAS, "has_comma": listed == ",",
        "has_and": listed in ("and", "or"), "person_suffix": person, "abstract_suffix": abstract,
        "open_bracket": listed in ("(", "["), "close_bracket": listed in (")", "]"), "quote": listed in _QUOTES,
        "opener": listed in _OPENERS, "closer": listed in _CLOSERS, "period": listed == ".",
        **{name: listed in words for name, words in _BEFORE.items()},
        **{name: listed in words for name, words in _AFTER.items()},
    }  # fmt: skip
    return np.array([float(flags[name]) for name in _STATIC_COLUMNS]).tobytes()


def question_terms(question: str) -> frozenset[str]:
    """The index terms of the question's words, as phrase_features matches them."""
    return frozenset(term for match in _TOKEN.finditer(question) if (term := term_of(match.group())))


