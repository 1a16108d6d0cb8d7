"""Expected answer types (TREC-style QA): what a question asks for, and whether a sentence has one.

A "when" question is better answered by a sentence that holds a date, a "where"
question by one naming a place, "how many" by one with a number, "who" by one
naming a person with a role. These are cheap surface cues: the index stores each
sentence's as bits (sentence_cues), so a question reads them instead of texts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_DAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_TIME = re.compile(
    rf"\b(?:(?:{_MONTHS})\.?\s+\d{{1,2}}\b|\d{{1,2}}\s+(?:{_MONTHS})\b|(?:in|since|until|by|from|of)\s+(?:1[5-9]|20)\d\d\b"
    rf"|\b(?:1[89]|20)\d\d\b|\b(?:{_DAYS})\b|\b(?:yesterday|today|tomorrow)\b|\b(?:last|next)\s+(?:week|month|year|night)\b"
    r"|\b\d{4}-\d{2}-\d{2}\b|\b\d[\d,.]*\s*(?:BP|BCE?|AD|CE)\b|\b\d[\d,.]*\s+(?:years?|centuries|decades)\s+ago\b"
    r"|\b\d{1,2}(?:st|nd|rd|th)\s+century\b|\b\d{3,4}s\b|\b(?:in|since|until|by|from|during|around|after|before)\s+\d{3,4}\b)",
    re.IGNORECASE,
)
_PLACE = re.compile(r"\b(?:in|at|from|near|to|inside|outside)\s+(?:the\s+)?[A-Z][\w’'-]+")
_NUMBER = re.compile(r"\b\d[\d,.]*\b|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|dozens?|hundreds?|"
                     r"thousands?|millions?|billions?)\b", re.IGNORECASE)
_MEASURE = re.compile(
    r"\b\d[\d,.]*\s*(?:km|kilomet(?:re|er)s?|mi|miles?|m|met(?:re|er)s?|cm|mm|ft|feet|foot|inch(?:es)?|yards?|"
    r"acres?|hectares?|ha|kg|kilograms?|tonnes?|tons?|lb|pounds?|m2|km2|m3|m3/s|sq|square|cubic|percent|%)(?!\w)",
    re.IGNORECASE,
)
_DURATION = re.compile(
    r"\b(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|several|many|few|nearly\s+\w+)\s+"
    r"(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?|centuries)\b|\bdecades?long\b",
    re.IGNORECASE,
)
_ROLE = re.compile(
    r"\b(?:president|prime minister|minister|secretary|advis[oe]r|spokes(?:man|woman|person)|chief|director|"
    r"ambassador|envoy|senator|governor|mayor|chair(?:man|woman)?|co-chair|ceo|head|leader|official|"
    r"diplomat|king|queen|general|commander|judge|professor|chancellor|representative|negotiator)\b",
    re.IGNORECASE,
)

_QUESTION_TYPES = (
    (re.compile(r"^\s*who\s+(?:is|was|are|were)\s+[^\s?]+(?:\s+[^\s?]+)?\s*\??\s*$", re.IGNORECASE), "definition"),
    (re.compile(r"^\s*how\s+long\b", re.IGNORECASE), "length"),
    (re.compile(r"^\s*how\s+old\b", re.IGNORECASE), "duration"),
    (re.compile(r"^\s*how\s+(?:far|wide|high|deep|tall|big|large|fast|heavy)\b", re.IGNORECASE), "measure"),
    (re.compile(r"^\s*how\s+(?:many|much)\b", re.IGNORECASE), "number"),
    (re.compile(r"^\s*(?:when|what\s+(?:date|year|day|month|time))\b", re.IGNORECASE), "time"),
    (re.compile(r"^\s*(?:where|(?:in\s+)?(?:what|which)\s+(?:city|country|place|town|state|region|nation|continent|"
                r"province|county|capital|island|river|lake|sea|ocean|mountains?))\b", re.IGNORECASE), "place"),
    (re.compile(r"^\s*(?:who|whom|whose)\b", re.IGNORECASE), "person"),
)
_PRONOUNS = frozenset(("he", "she", "they", "it", "this", "these", "those", "his", "her", "their", "its"))
_FIRST_WORD = re.compile(r"[\W_]*(\w+)")
_WORD = re.compile(r"[^\W_]+")
_DIGIT = re.compile(r"\d")
# Words without one of which (or a digit, where digits_suffice) a cue's pattern cannot match: a set
# lookup rules most patterns out, so indexing a sentence costs a few searches, not six.
_NUMBER_WORDS = frozenset("one two three four five six seven eight nine ten dozen dozens hundred hundreds thousand "
                          "thousands million millions billion billions".split())  # fmt: skip
_UNIT_WORDS = frozenset("second seconds minute minutes hour hours day days week weeks month months year years decade "
                        "decades centuries decadelong decadeslong".split())  # fmt: skip
_TIME_WORDS = frozenset((*_DAYS.split("|"), "yesterday", "today", "tomorrow", "last", "next"))
_PLACE_WORDS = frozenset("in at from near to inside outside".split())
_ROLE_WORDS = frozenset("president minister secretary adviser advisor spokesman spokeswoman spokesperson chief "
                        "director ambassador envoy senator governor mayor chair chairman chairwoman ceo head leader "
                        "official diplomat king queen general commander judge professor chancellor representative "
                        "negotiator".split())  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Cue:
    """A sentence pattern of one answer type, with what a sentence needs for it to be worth running."""

    pattern: re.Pattern[str]
    words: frozenset[str]  # one of these, or
    digits_suffice: bool  # a digit, must be in the sentence for the pattern to match

    def holds(self, sentence: str, words: set[str], digit: bool) -> bool:
        """Whether the pattern matches the sentence (words: its lowercased words; digit: it has one)."""
        return ((digit and self.digits_suffice) or not self.words.isdisjoint(words)) and bool(
            self.pattern.search(sentence)
        )


# One bit per cue a sentence may hold, in this order; ANAPHORA marks a sentence opening with a pronoun.
_CUES = {
    "duration": _Cue(_DURATION, _UNIT_WORDS, False),
    "measure": _Cue(_MEASURE, frozenset(), True),
    "number": _Cue(_NUMBER, _NUMBER_WORDS, True),
    "time": _Cue(_TIME, _TIME_WORDS, True),
    "place": _Cue(_PLACE, _PLACE_WORDS, False),
    "person": _Cue(_ROLE, _ROLE_WORDS, False),
}
_CUE_BITS = {kind: 1 << bit for bit, kind in enumerate(_CUES)}
_CUE_BITS["length"] = _CUE_BITS["duration"] | _CUE_BITS["measure"]
ANAPHORA = 1 << len(_CUES)


def expected_type(question: str) -> str | None:
    """'definition', 'time', 'place', 'person', 'number', 'duration', 'length' or 'measure' from the
    wh-word; else None."""
    for pattern, kind in _QUESTION_TYPES:
        if pattern.search(question):
            return kind
    return None


_APPOSITIVE = re.compile(r"\s*,\s+(?:the|a|an|[a-z]+\s+)?", re.IGNORECASE)
_WINDOW = 40  # characters around the named entity where its role or apposition must be


def sentence_cues(sentence: str) -> int:
    """The sentence's cue bits: the answer types it holds, and ANAPHORA if it opens with a pronoun."""
    words = set(_WORD.findall(sentence.lower()))
    digit = _DIGIT.search(sentence) is not None
    bits = sum(1 << bit for bit, cue in enumerate(_CUES.values()) if cue.holds(sentence, words, digit))
    first = _FIRST_WORD.match(sentence)
    return bits | (ANAPHORA if first and first.group(1).lower() in _PRONOUNS else 0)


def cue_bits(kind: str | None) -> int:
    """The cue bits any of which answers a question of kind (0 for None and "definition")."""
    return _CUE_BITS.get(kind or "", 0)


def has_answer_type(sentence: str, kind: str | None, focus: Sequence[tuple[int, int]] = ()) -> bool:
    """Whether the sentence holds something of the expected kind (always False for None).

    A "definition" ("who is X?") needs a role word just before a focus span (the
    question's words found in the sentence: "Prime Minister Nikol Pashinian") or an
    apposition just after it ("Luis Bono, the State Department's Senior Advisor").
    """
    if kind == "definition":
        for start, end in focus:
            before = sentence[max(0, start - _WINDOW) : start]
            after = sentence[end : end + _WINDOW]
            if _ROLE.search(before) or (_APPOSITIVE.match(after) and _ROLE.search(after)):
                return True
        return False
    return bool(sentence_cues(sentence) & cue_bits(kind))


# The finer question forms the answer phrase is read by (phrase.py crosses each with a span's shape);
# expected_type's coarse kinds are what the sentence ranker reads.
QUESTION_FORMS = (
    "when",  # when, what year/date/day/month/century
    "how_many",  # how many, what number
    "how_much",  # how much (money, amounts)
    "how_long",  # how long: a duration or a length
    "how_old",
    "how_measure",  # how far/high/big ...
    "percent",  # what percentage/share
    "where",  # where, what city/country ...
    "who",  # who, whom, which person
    "whose",
    "definition",  # who is X? (a role)
    "why",
    "how",  # how did/does ...: a manner
    "what_noun",  # what/which X ...: a thing of kind X
    "what_is",  # what is/was/are ...
    "what_do",  # what did/does X do ...
    "what",  # any other what
    "other",  # no question word
)
_WH = re.compile(r"\b(what|which|who|whom|whose|when|where|why|how)\b", re.IGNORECASE)
_FORM_AFTER_WORD = (  # (question word, pattern on the words after it, form)
    ("how", re.compile(r"(?:many|much\s+of\b|large\s+a\s+number)"), "how_many"),
    ("how", re.compile(r"much\b"), "how_much"),
    ("how", re.compile(r"long\b"), "how_long"),
    ("how", re.compile(r"old\b"), "how_old"),
    ("how", re.compile(r"(?:far|wide|high|deep|tall|big|large|fast|heavy|often|hot|cold|short|small)\b"),
     "how_measure"),
    ("what", re.compile(r"(?:(?:is|was|are|were)\s+the\s+)?(?:year|date|day|month|century|decade|time|period|era|"
                        r"season|age)\b"), "when"),
    ("what", re.compile(r"(?:(?:is|was|are|were)\s+the\s+)?(?:number|amount)\b"), "how_many"),
    ("what", re.compile(r"(?:(?:is|was|are|were)\s+the\s+)?(?:percentage|percent|proportion|share|fraction)\b"),
     "percent"),
)
_AUXILIARIES = frozenset("is was are were be been being has have had does do did can could will would should "
                         "may might must".split())  # fmt: skip
_DO = frozenset(("do", "does", "did"))
# Words between "what"/"which" and the noun that says what kind of thing is asked for.
_HEAD_SKIP = frozenset("the a an kind kinds type types sort sorts form forms name names of one ones group first last "
                       "second third main most least only largest biggest longest highest greatest oldest smallest "
                       "earliest tallest deepest fastest strongest richest closest lowest latest newest youngest best "
                       "worst".split())  # fmt: skip
_PLACE_HEADS = frozenset("city country place town state region nation continent province county capital island "
                         "area location village street neighbourhood neighborhood district".split())
_PERSON_HEADS = frozenset("person man woman people men women".split())


@dataclass(frozen=True, slots=True)
class QuestionForm:
    """What a question asks for, finer than expected_type: one of QUESTION_FORMS, and the noun of
    "what/which X" (the head of the answer: "river" in "What river is larger than the Rhine?"), lowercased."""

    form: str
    head: str | None = None


def question_word(question: str) -> str:
    """The question's first wh-word (what, which, who, whom, whose, when, where, why, how), else "other"."""
    match = _WH.search(question)
    return match.group(1).lower() if match else "other"


def question_form(question: str) -> QuestionForm:
    """The question's form and head noun, from its first question word and the words after it."""
    match = _WH.search(question)
    if match is None:
        return QuestionForm("other")
    word = match.group(1).lower()
    rest = question[match.end() :].lower()
    after = _WORD.findall(rest)
    for wh, pattern, form in _FORM_AFTER_WORD:
        if (wh == word or (wh == "what" and word == "which")) and pattern.match(rest.lstrip()):
            return QuestionForm(form, _head(after) if word in ("what", "which") else None)
    if word in ("who", "whom"):
        return QuestionForm("definition" if expected_type(question) == "definition" else "who")
    if word in ("whose", "when", "where", "why"):
        return QuestionForm(word)
    if word == "how":
        return QuestionForm("how")
    head = _head(after)
    if after and after[0] not in _AUXILIARIES and head is not None:
        form = "where" if head in _PLACE_HEADS else "who" if head in _PERSON_HEADS else "what_noun"
        return QuestionForm(form, head)
    if after and after[0] in _DO:
        return QuestionForm("what_do")
    if after and after[0] in _AUXILIARIES:
        return QuestionForm("what_is", head)
    return QuestionForm("what", head)


def _head(after: Sequence[str]) -> str | None:
    """The noun "what/which" asks about: the first word past auxiliaries and "the kind of", when it is
    not followed by a verb-like auxiliary of its own ("what is the river" → river)."""
    words = list(after)
    while words and words[0] in _AUXILIARIES:
        words.pop(0)
    while words and words[0] in _HEAD_SKIP:
        words.pop(0)
    return words[0] if words and not words[0].isdigit() else None
