"""The ranker's and confidence model's signals, on the real seeds corpus and on small real corpora."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qabot.analyze import derivations, frame_terms, term_of
from qabot.answer import Answerer, clean_question
from qabot.answer_type import ANAPHORA, cue_bits, expected_type, has_answer_type, sentence_cues
from qabot.features import CANDIDATE_FEATURES, QUESTION_FEATURES, Sequences, _word_signals, question_features
from qabot.segment import paragraph_breaks
from tests.conftest import answerer_over


def column(answerer: Answerer, question: str, name: str) -> dict[str, float]:
    """The named feature of each candidate, by candidate sentence text."""
    ranking = answerer.rank(clean_question(question))
    values = ranking.candidates.features[:, CANDIDATE_FEATURES.index(name)]
    sents = ranking.candidates.sents.tolist()
    return {answerer.index.sentence_text(s): float(v) for s, v in zip(sents, values, strict=True)}


def test_paragraph_breaks_are_the_blank_lines():
    text = "One. Two.\nThree.\n\nFour.\n  \nFive.\n\n\n"
    assert paragraph_breaks(text) == [text.index("\n\nFour"), text.index("\n  \n"), text.index("\n\n\n")]


def test_frame_words_and_derivations_ship_with_the_package():
    assert {term_of("many"), term_of("called"), term_of("kind")} <= frame_terms()
    assert term_of("agreement") in derivations()[term_of("agree")]
    assert term_of("agree") in derivations()[term_of("agreement")], "the relation is symmetric"


@pytest.mark.parametrize(
    ("question", "kind", "sentence", "holds"),
    [
        ("How long is the Rhine?", "length", "It runs for about 1,230 km (760 mi).", True),
        ("How long did the war last?", "length", "The war lasted six years.", True),
        ("How far is it?", "measure", "The lake lies 40 km away.", True),
        ("When did Europe warm?", "time", "By 9000 BP, Europe was fully forested.", True),
        ("When did it happen?", "time", "It happened during the last Ice Age.", False),
        ("What country does the Rhine empty into?", "place", "It empties into the sea in the Netherlands.", True),
    ],
)
def test_answer_types_read_the_sentence(question, kind, sentence, holds):
    assert expected_type(question) == kind
    assert has_answer_type(sentence, kind) is holds


def test_the_index_stores_each_sentences_cues(answerer):
    index = answerer.index
    every = np.arange(index.n_sentences)
    stored = index.cues(every).tolist()
    assert stored == [sentence_cues(index.sentence_text(sent)) for sent in every.tolist()]
    assert any(bits & ANAPHORA for bits in stored) and any(bits & cue_bits("time") for bits in stored)


@pytest.mark.parametrize(
    ("sentence", "kinds"),
    [
        ("They met on Monday in Washington.", {"time", "place", "anaphora"}),
        ("_he said it took three years.", {"duration", "length", "number", "anaphora"}),
        ("Hello_there, the river is 1,230 km long.", {"measure", "number", "length"}),
        ("THE PRESIDENT spoke at The Hague.", {"person", "place"}),
        ("The Prime Minister spoke.", {"person"}),
        ("Nothing here.", set()),
    ],
)
def test_sentence_cues_are_the_answer_types_a_sentence_holds(sentence, kinds):
    bits = sentence_cues(sentence)
    kinds_held = {kind for kind in ("time", "place", "person", "number", "duration", "measure", "length")
                  if bits & cue_bits(kind)} | ({"anaphora"} if bits & ANAPHORA else set())  # fmt: skip
    assert kinds_held == kinds


def test_features_are_one_row_per_candidate_and_finite(answerer):
    ranking = answerer.rank("Who deployed peacekeepers along the Lachin corridor?")
    assert ranking.candidates.features.shape == (len(ranking.candidates.sents), len(CANDIDATE_FEATURES))
    assert np.isfinite(ranking.candidates.features).all()
    question = question_features(ranking.terms, ranking.candidates, ranking.scores, ranking.order)
    assert question.shape == (len(QUESTION_FEATURES),) and 0.0 <= ranking.confidence <= 1.0
    assert sorted(ranking.order.tolist()) == list(range(len(ranking.candidates.sents)))


def test_a_missing_common_word_is_counted_apart_from_missing_names_and_rare_words(answerer):
    def missing(question: str) -> tuple[float, float]:
        ranking = answerer.rank(question)
        row = question_features(ranking.terms, ranking.candidates, ranking.scores, ranking.order)
        return row[QUESTION_FEATURES.index("missing_share")], row[QUESTION_FEATURES.index("missing_common_share")]

    assert missing("What did the US insist on for the Lachin corridor?") == (0.0, 0.0)
    rare, common = missing("What did the US insist on regarding the Lachin corridor?")
    assert rare == 0.0 and common > 0.0, "'regarding' is a word of the language the seeds lack"
    rare, common = missing("What did the US insist on for the Lachin corridor near Qwertzville?")
    assert rare > 0.0 and common == 0.0, "a name the corpus lacks is no common word"


def test_a_frame_word_missing_from_the_sentence_costs_little_coverage(answerer):
    with_frame = column(answerer, "How many officials resigned?", "coverage")
    without = column(answerer, "Which officials resigned?", "coverage")
    [sentence] = [text for text in with_frame if text.startswith("Six high-ranking officials")]
    assert without[sentence] == pytest.approx(1.0)
    assert with_frame[sentence] > 0.8, "'many' is a frame word: the answer need not repeat it"


def test_a_derivation_finds_the_noun_for_the_verb(tmp_path):
    answerer = answerer_over(tmp_path, {
        "a.txt": "Title\n\nThe two sides signed an agreement on water rights.\n",
        "b.txt": "Other\n\nThe sides met in Vienna to talk about rights.\n",
    })  # fmt: skip
    coverage = column(answerer, "What did the sides agree on?", "coverage")
    [signed] = [text for text in coverage if "agreement" in text]
    [met] = [text for text in coverage if "Vienna" in text]
    assert coverage[signed] > coverage[met], "agree counts as found in 'agreement'"


def test_a_word_written_apart_counts_only_where_all_its_parts_are(tmp_path):
    answerer = answerer_over(tmp_path, {
        "a.txt": "Truce\n\nThe cease-fire held for three days.\n",
        "b.txt": "Port\n\nA fire held the port for three days.\n",
    })  # fmt: skip
    coverage = column(answerer, "How long did the ceasefire hold?", "coverage")
    truce, port = coverage["The cease-fire held for three days."], coverage["A fire held the port for three days."]
    # armistice: an unknown word of the same weight that nothing in the corpus stands for
    unknown = column(answerer, "How long did the armistice hold?", "coverage")["A fire held the port for three days."]
    assert truce > port, "both parts: the word is there"
    assert port == pytest.approx(unknown), "fire alone is no part of ceasefire: only hold counts"


def test_paragraph_signals_see_the_whole_paragraph(tmp_path):
    text = "Title\n\nThe Obersee is the upper lake. Boats cross it daily.\n\nThe Untersee is smaller.\n"
    answerer = answerer_over(tmp_path, {"a.txt": text})
    paragraph = column(answerer, "Do boats cross the Obersee lake?", "paragraph_coverage")
    own = column(answerer, "Do boats cross the Obersee lake?", "coverage")
    boats = "Boats cross it daily."
    assert paragraph[boats] == pytest.approx(1.0) and own[boats] < 1.0


def paragraphs_by_sentence(index) -> dict[str, list[str]]:
    """Each sentence's text -> the texts of its paragraph, as paragraph_bounds gives it."""
    texts = [index.sentence_text(s) for s in range(index.n_sentences)]
    first, stop = index.paragraph_bounds(np.arange(index.n_sentences))
    return {texts[s]: texts[first[s] : stop[s]] for s in range(index.n_sentences)}


def test_paragraph_bounds_are_the_sentences_between_blank_lines(tmp_path):
    files = {"a.txt": "Title\n\nOne here. Two here.\nThree here.\n\nFour here.\n", "b.txt": "Other\n\nFive here.\n"}
    index = answerer_over(tmp_path, files).index
    paragraphs = paragraphs_by_sentence(index)
    assert paragraphs["Two here."] == ["One here.", "Two here.", "Three here."]
    assert paragraphs["Four here."] == ["Four here."]
    assert paragraphs["Five here."] == ["Five here."], "a paragraph never crosses into the next file"


def test_paragraph_bounds_stay_right_after_a_refresh(tmp_path):
    answerer_over(tmp_path, {
        "a.txt": "Title\n\nOne here. Two here.\n\nThree here.\n", "c.txt": "Last\n\nSix here.\nSeven here.\n",
    })  # fmt: skip
    index = answerer_over(tmp_path, {
        "b.txt": "Other\n\nFour here. Five here.\n", "a.txt": "Title\n\nOne here.\n\nTwo here. Three here.\n",
    }).index  # fmt: skip
    paragraphs = paragraphs_by_sentence(index)
    assert paragraphs["Two here."] == ["Two here.", "Three here."] and paragraphs["One here."] == ["One here."]
    assert paragraphs["Five here."] == ["Four here.", "Five here."], "a new file's paragraphs"
    assert paragraphs["Seven here."] == ["Six here.", "Seven here."], "a kept file's paragraphs, moved along"


def test_match_position_is_where_the_question_words_stand(tmp_path):
    answerer = answerer_over(tmp_path, {
        "a.txt": "Title\n\nThe Obersee ferry carries cars, bikes and walkers across.\n\n"
                 "Cars, bikes and walkers board the Obersee ferry.\n\nNothing else sails here.\n",
    })  # fmt: skip
    position = column(answerer, "What does the Obersee ferry carry?", "match_position")
    opens = position["The Obersee ferry carries cars, bikes and walkers across."]
    closes = position["Cars, bikes and walkers board the Obersee ferry."]
    assert opens < 0.5 < closes, "the first names the ferry before what it carries, the second after"


def test_match_position_says_nothing_for_a_definition(answerer):
    position = column(answerer, "Who is Louis Bono?", "match_position")
    assert len(set(position.values())) == 1, "the role stands before the name as often as after it"


def plain_word_signals(sequence: list[int], question_ids: set[int], pairs: set[tuple[int, int]]) -> list[float]:
    """The word signals of one sentence, written out term by term (the reference)."""
    at = [i for i, term in enumerate(sequence) if term in question_ids]
    novelty = 1.0 - len(at) / len(sequence) if sequence else 0.0
    in_order = len(pairs & set(pairwise(sequence))) / len(pairs) if pairs else 0.0
    proximity = len({sequence[i] for i in at}) / (at[-1] - at[0] + 1) if len(at) > 1 else 0.0
    return [novelty, in_order, proximity, float(len(sequence))]


@settings(max_examples=200, deadline=None)
@given(
    sentences=st.lists(st.lists(st.integers(0, 9), max_size=12), min_size=1, max_size=8),
    question=st.lists(st.integers(0, 12), max_size=5, unique=True),
)
def test_word_signals_of_sentences_end_to_end_are_each_sentence_s(sentences, question):
    pairs = set(pairwise(question))
    arrays = [np.array(sentence, dtype=np.int32) for sentence in sentences]
    sequences = Sequences.of(arrays)
    signals = _word_signals(sequences, sequences.holding(set(question)), pairs)
    expected = np.array([plain_word_signals(sentence, set(question), pairs) for sentence in sentences])
    assert signals.tobytes() == expected.tobytes()
