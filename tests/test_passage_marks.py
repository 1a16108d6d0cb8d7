"""Rendered passages carry exactly the quote marks of their sentence, in text and in Discord embeds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from qabot.cite import column_of, line_of
from qabot.discord_render import answer_embed
from qabot.model import Answer, Location, Passage
from qabot.render import passage_lines, printable
from qabot.segment import compile_boilerplate, sentence_spans
from tests.conftest import SEEDS, settings_for

QUOTE_MARKS = "\"'“”‘’«»„‚‹›「」"


def seed_passages() -> list[Passage]:
    """Every sentence of the seeds (as the index splits them) as a passage."""
    settings = settings_for(SEEDS, Path("unused"))
    boilerplate = compile_boilerplate(settings.boilerplate_patterns)
    passages = []
    for path in sorted(SEEDS.glob("*.txt")):
        text = path.read_text("utf-8")
        for start, end, _ in sentence_spans(text, boilerplate):
            location = Location(path.name, path, start, end, line_of(text, start), line_of(text, end - 1), "0" * 64,
                                column_of(text, start))
            passages.append(Passage(text[start:end], location, 1.0, (), "", "", (), "Title", None))
    return passages


PASSAGES = seed_passages()


def marks(text: str) -> Counter[str]:
    return Counter(ch for ch in text if ch in QUOTE_MARKS)


def test_the_seeds_have_sentences_with_unbalanced_marks_of_their_own():
    # Punkt splits inside quotations ("“Bono plans … process." | "He will visit …,” said the embassy."),
    # so a renderer that wrapped or balanced quotes would show marks the file does not have.
    unbalanced = [p for p in PASSAGES if marks(p.text)["“"] != marks(p.text)["”"]]
    assert len(PASSAGES) > 70 and len(unbalanced) >= 2


def cited(passage: Passage) -> str:
    return f"{passage.location.source}:{passage.location.line}:{passage.location.column}"


@pytest.mark.parametrize("passage", PASSAGES, ids=cited)
def test_text_and_embed_show_the_sentence_with_its_own_quote_marks(passage: Passage):
    shown = passage_lines(1, passage)[0]
    assert shown == f"[1] {printable(passage.text)}"
    assert marks(shown) == marks(passage.text)

    answer = Answer("q", (passage,), False, "")
    quoted = answer_embed(answer).description.split("\n")[0]
    assert quoted.startswith("> ") and not quoted.endswith("…")
    assert marks(quoted) == marks(passage.text)
