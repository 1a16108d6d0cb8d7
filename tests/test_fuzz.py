"""Property-based fuzzing (hypothesis): hostile Unicode never escapes as an exception, citations stay exact.

Inputs mix random text (surrogate-free), control characters, bidi overrides,
zero-width joiners, 100 KB strings, punctuation only, stopwords only and real
words of the seeds corpus (so that answers with passages are exercised too).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qabot.analyze import analyze, fold, stopwords, surface_words, term_spans
from qabot.answer import Answerer, clean_question
from qabot.cite import Citation, parse_citation
from qabot.cite_show import show_citation
from qabot.errors import CitationError
from qabot.eval_set import EvalFileError, Gold, load_eval
from qabot.frontend import answerer_for
from qabot.model import Answer, Location, Passage
from qabot.render import BOLD, NORMAL, RESET, UNDERLINE, answer_json, render_json, render_text
from qabot.segment import compile_boilerplate, sentence_spans
from tests.conftest import PROJECT, SEEDS, settings_for

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the project
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

# Characters that have broken text handling elsewhere: C0/C1 controls, ESC, DEL, NEL, NBSP, soft
# hyphen, zero-width space/joiners, LRM/RLM, bidi embeddings and overrides, line/paragraph
# separators, isolates, BOM, replacement char, emoji, combining acute, dotted/dotless i, ß, ligature.
SPECIALS = (
    "\x00\x01\x07\x08\t\n\x0b\x0c\r\x1b\x7f\x85\x9b\xa0\xad\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2028\u2029\u2066\u2067\u2068\u2069\ufeff\ufffd"
    "\U0001f600\u0301\u0130\u0131\u00df\ufb01"
)
PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~“”‘’«»—–…¿¡·•"
ANY_CHAR = st.characters(exclude_categories=("Cs",))
SEED_WORDS = sorted({w for f in sorted(SEEDS.glob("*.txt")) for w in re.findall(r"\w+", f.read_text("utf-8"))})
STOPWORDS = sorted(stopwords())


def hundred_kb(unit: str) -> str:
    return (unit * (100_000 // len(unit) + 1))[:100_000]


def texts() -> st.SearchStrategy[str]:
    """Hostile strings of every kind listed in the module docstring."""
    word = st.sampled_from(SEED_WORDS)
    piece = st.one_of(
        word,
        word.map(str.upper),
        st.text(ANY_CHAR, max_size=12),
        st.text(st.sampled_from(SPECIALS), min_size=1, max_size=4),
        st.sampled_from(STOPWORDS),
    )
    glue = st.sampled_from([" ", "", "\u200d", "\u202e", "\x1b[31m", "\n", "\u2028", "\ufeff", "?", "\x00"])
    mixed = st.lists(st.tuples(piece, glue), max_size=12).map(lambda parts: "".join(p + g for p, g in parts))
    return st.one_of(
        mixed,
        mixed,
        st.text(ANY_CHAR, max_size=200),
        st.text(st.sampled_from(SPECIALS), max_size=50),
        st.text(st.sampled_from(PUNCTUATION), min_size=1, max_size=80),
        st.lists(st.sampled_from(STOPWORDS), min_size=1, max_size=20).map(" ".join),
        st.text(ANY_CHAR, min_size=1, max_size=40).map(hundred_kb),
        mixed.filter(bool).map(hundred_kb),
    )


# --- analyzer -------------------------------------------------------------------------------------


@FUZZ
@given(texts())
def test_analyzer_terms_agree_with_their_spans(text: str) -> None:
    terms = analyze(text)
    spans = list(term_spans(text))
    assert [term for _, _, term in spans] == terms
    assert [term for _, term in surface_words(text)] == terms
    previous_end = 0
    for start, end, term in spans:
        assert previous_end <= start < end <= len(text)
        previous_end = end
        assert term and not any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in term)


@FUZZ
@given(texts())
def test_fold_is_idempotent_and_drops_marks(text: str) -> None:
    folded = fold(text)
    assert fold(folded) == folded
    assert not any(unicodedata.combining(ch) for ch in folded)


@FUZZ
@given(st.text(ANY_CHAR, max_size=200))
def test_analyzer_ignores_the_normalization_form(text: str) -> None:
    """The same words typed precomposed (NFC) or decomposed (NFD, as macOS writes) give the same terms."""
    assert analyze(unicodedata.normalize("NFD", text)) == analyze(unicodedata.normalize("NFC", text))


def test_analyzer_finds_decomposed_names() -> None:
    # The indexed text is tokenized as stored; an article saved in NFD must still match 'Erdoğan'.
    assert analyze(unicodedata.normalize("NFD", "Erdoğan met Pashinyan in Zürich")) == analyze(
        "Erdoğan met Pashinyan in Zürich"
    )


@FUZZ
@given(st.lists(st.sampled_from(STOPWORDS), min_size=1, max_size=30).map(" ".join))
def test_only_stopwords_have_no_terms(text: str) -> None:
    assert analyze(text.lower()) == []


# --- answerer -------------------------------------------------------------------------------------


@cache
def file_text(file: Path) -> str:
    return file.read_text(encoding="utf-8")


@cache
def indexed_spans(file: Path, patterns: tuple[str, ...]) -> list[tuple[int, int]]:
    """The file's searchable sentences, from the segmenter itself (the oracle for contexts)."""
    text = file_text(file)
    return [(s, e) for s, e, flagged in sentence_spans(text, compile_boilerplate(patterns)) if not flagged]


def check_location(location: Location, root: Path) -> str:
    """The cited text, after asserting the location is exact, inside the corpus and current."""
    file = Path(location.file)
    assert file.resolve().is_relative_to(root.resolve())
    assert file.relative_to(root).as_posix() == location.source
    assert hashlib.sha256(file.read_bytes()).hexdigest() == location.sha256
    text = file_text(file)
    assert 0 <= location.start < location.end <= len(text)
    assert location.line == text.count("\n", 0, location.start) + 1
    assert location.line <= location.end_line == text.count("\n", 0, location.end - 1) + 1
    return text[location.start : location.end]


def check_answer(answer: Answer, question: str, top_k: int, answerer: Answerer, patterns: tuple[str, ...]) -> None:
    assert isinstance(answer, Answer)
    assert answer.question == question
    if answer.abstained:
        assert answer.passages == ()
        assert answer.reason.strip()
        return
    assert 1 <= len(answer.passages) <= top_k
    # Words as typed, and spelling variants as the passages spell them ("also searched").
    allowed = {word for word, _ in surface_words(clean_question(question))} | {v for _, v in answer.expansions}
    scores = [p.score for p in answer.passages]
    assert scores == sorted(scores, reverse=True)
    for passage in answer.passages:
        location = passage.location
        assert check_location(location, answerer.root) == passage.text  # the citation invariant
        spans = indexed_spans(Path(location.file), patterns)
        at = spans.index((location.start, location.end))
        text = file_text(Path(location.file))
        before = text[slice(*spans[at - 1])] if at > 0 else ""
        after = text[slice(*spans[at + 1])] if at + 1 < len(spans) else ""
        assert (passage.context_before, passage.context_after) == (before, after)
        assert passage.matched_terms and set(passage.matched_terms) <= allowed
        for other in passage.also_in:
            assert check_location(other, answerer.root).strip()
            assert other.source != location.source


@FUZZ
@given(question=texts(), top_k=st.one_of(st.none(), st.integers(-3, 12)))
def test_ask_never_raises_and_every_passage_is_exact(answerer, seeds_settings, question: str, top_k) -> None:
    answer = answerer.ask(question, top_k)
    wanted = seeds_settings.top_k if top_k is None else max(1, top_k)
    check_answer(answer, question, wanted, answerer, seeds_settings.boilerplate_patterns)
    for color in (False, True):
        shown = render_text(answer, color=color)
        for code in (BOLD, RESET, UNDERLINE, NORMAL):  # our own emphasis: bold matches, the phrase underlined
            shown = shown.replace(code, "")
        assert all(ch == "\n" or ch.isprintable() for ch in shown), repr(shown)
    line = render_json(answer)
    assert "\n" not in line and "\r" not in line
    assert json.loads(line) == answer_json(answer)
    assert json.loads(line)["question"] == question


def test_fuzz_strategy_reaches_answers(answerer) -> None:
    """Guard against a vacuous fuzz: the mixed strategy does produce answered questions."""
    answered = 0

    @settings(max_examples=60, deadline=None, database=None, derandomize=True)
    @given(texts())
    def probe(question: str) -> None:
        nonlocal answered
        answered += not answerer.ask(question).abstained

    probe()
    assert answered >= 3


# --- renderers over hostile corpus content -------------------------------------------------------


def hostile_passages() -> st.SearchStrategy[Passage]:
    text = st.text(st.one_of(ANY_CHAR, st.sampled_from(SPECIALS)), min_size=1, max_size=300)
    name = st.text(st.one_of(ANY_CHAR, st.sampled_from(SPECIALS)), min_size=1, max_size=30).filter(
        lambda n: "/" not in n and "\x00" not in n and n not in (".", "..")
    )

    def passage(body: str, file_name: str, title: str, date: str | None, line: int) -> Passage:
        location = Location(file_name, Path("/corpus") / file_name, 0, len(body), line, line, "0" * 64)
        return Passage(body, location, 1.0, tuple(analyze(body)[:3]), body[:5], body[-5:], (location,), title, date)

    return st.builds(passage, text, name, text, st.one_of(st.none(), text), st.integers(1, 10**6))


@FUZZ
@given(st.lists(hostile_passages(), min_size=1, max_size=3), st.text(ANY_CHAR, max_size=100))
def test_render_text_prints_no_control_characters_from_the_corpus(passages, question: str) -> None:
    """A file's text, title or name cannot smuggle terminal escapes or bidi overrides onto the screen."""
    answer = Answer(question, tuple(passages), False, "", (), 1)
    for color in (False, True):
        shown = render_text(answer, color=color, cwd=Path("/corpus")).replace(BOLD, "").replace(RESET, "")
        bad = sorted({ch for ch in shown if ch != "\n" and not ch.isprintable()})
        assert not bad, f"raw control characters {bad!r} in {shown!r}"
    line = render_json(answer, cwd=Path("/corpus"))
    assert "\n" not in line
    assert json.loads(line) == answer_json(answer, cwd=Path("/corpus"))


def test_render_text_hides_escape_sequences_in_a_real_title(tmp_path: Path) -> None:

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "evil.txt").write_text(
        "Breaking \x1b[2J\x1b]0;pwned\x07 news \u202egnp.exe\n\nThe flurbonite mine reopened on Tuesday."
        " Miners cheered at the gate. The harbour froze early this year. Prices rose again.\n",
        encoding="utf-8",
    )
    answer = answerer_for(settings_for(corpus, tmp_path / "cache")).ask("flurbonite mine")
    assert not answer.abstained
    shown = render_text(answer)
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown, repr(shown)


# --- eval loader ----------------------------------------------------------------------------------

ITEM_TEXT = st.text(st.one_of(ANY_CHAR, st.sampled_from(SPECIALS)), max_size=60)
EVAL_ITEMS = st.lists(
    st.fixed_dictionaries(
        {
            "id": ITEM_TEXT,
            "question": ITEM_TEXT,
            "answerable": st.booleans(),
            "kind": ITEM_TEXT,
            "answers": st.lists(st.fixed_dictionaries({"source": ITEM_TEXT, "quote": ITEM_TEXT}), max_size=3),
        }
    ),
    min_size=1,
    max_size=5,
)


@FUZZ
@given(EVAL_ITEMS)
def test_eval_loader_reads_back_any_valid_jsonl(tmp_path: Path, items: list[dict]) -> None:
    """JSON lines written by json.dumps (non-ASCII kept, as qabot's own JSON is) load back unchanged."""
    path = tmp_path / "eval.jsonl"
    path.write_text("\n".join(json.dumps(item, ensure_ascii=False) for item in items) + "\n", encoding="utf-8")
    loaded = load_eval(path)
    assert [(i.id, i.question, i.answerable, i.kind, i.answers) for i in loaded] == [
        (d["id"], d["question"], d["answerable"], d["kind"], tuple(Gold(a["source"], a["quote"]) for a in d["answers"]))
        for d in items
    ]


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), ITEM_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(ITEM_TEXT, inner, max_size=4)),
    max_leaves=12,
)
ITEM_LIKE = st.dictionaries(
    st.sampled_from(["id", "question", "answerable", "kind", "answers", "source", "quote"]), JSON_VALUES, max_size=6
)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=400),
        st.lists(st.one_of(JSON_VALUES, ITEM_LIKE), min_size=1, max_size=4).map(
            lambda values: "\n".join(json.dumps(v, ensure_ascii=False) for v in values).encode("utf-8")
        ),
    )
)
def test_eval_loader_rejects_garbage_with_its_own_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "eval.jsonl"
    path.write_bytes(data)
    try:
        items = load_eval(path)
    except EvalFileError as exc:
        assert str(path) in str(exc)
    else:
        assert items and all(isinstance(item.question, str) for item in items)


def test_eval_loader_survives_deeply_nested_json(tmp_path: Path) -> None:
    path = tmp_path / "eval.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    try:
        load_eval(path)
    except EvalFileError as exc:
        assert ":1:" in str(exc)
    else:
        raise AssertionError("a nested list is not an eval item")


# --- citation parser (qabot/cite.py) -------------------------------------------------------------

SEED_CITED = sorted(f"seeds/{f.name}" for f in SEEDS.glob("*.txt"))
CITED_PATHS = st.one_of(
    st.sampled_from(SEED_CITED),
    st.sampled_from(SEED_CITED).map(lambda p: str(PROJECT / p)),
    st.sampled_from(["../seeds/x.txt", "seeds/../../../etc/passwd", "/etc/passwd", "~/.bashrc", "seeds",
                     "seeds/", "", " ", "seeds/\x00.txt", "seeds/000\n.txt", "C:\\x.txt", "seeds/\u202e.txt"]),
    st.text(st.one_of(ANY_CHAR, st.sampled_from(SPECIALS)), max_size=40),
)
NUMBERS = st.one_of(
    st.integers(0, 10**6).map(str), st.integers(0, 10**40).map(str), st.just("9" * 5000),
    st.text("0123456789٣۴", min_size=1, max_size=8), st.just("-1"), st.just(""),
)
CITATIONS = st.one_of(
    st.builds(lambda p, n: f"{p}:{n}", CITED_PATHS, NUMBERS),
    st.builds(lambda p, a, b: f"{p}:{a}-{b}", CITED_PATHS, NUMBERS, NUMBERS),
    st.text(st.one_of(ANY_CHAR, st.sampled_from(SPECIALS + ":-0123456789")), max_size=60),
)


@FUZZ
@given(CITATIONS)
def test_citation_parser_raises_only_citation_errors(text: str) -> None:
    try:
        parsed = parse_citation(text)
    except CitationError as exc:
        assert str(exc)
    else:
        assert parsed.path.strip()
        assert (parsed.line is None) != (parsed.start is None)


@FUZZ
@given(st.sampled_from(SEED_CITED), st.integers(0, 10**9), st.integers(0, 10**9))
def test_citation_parser_reads_back_what_qabot_prints(path: str, a: int, b: int) -> None:
    assert parse_citation(f"{path}:{a}") == Citation(path, line=a)
    assert parse_citation(f"{path}:{a}-{b}") == Citation(path, start=a, end=b)


@FUZZ
@given(CITATIONS, st.integers(0, 5))
def test_show_raises_only_citation_errors_and_never_reads_outside(text: str, context: int) -> None:
    try:
        shown = show_citation(SEEDS, text, context, cwd=PROJECT)
    except CitationError as exc:
        assert str(exc)
    else:
        assert isinstance(shown, str) and "root:x:0:0" not in shown
