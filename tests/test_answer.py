"""The answerer on the real seeds corpus: citations, variants, wire copies, abstention."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qabot.answer import Answerer
from qabot.eval_set import load_eval
from qabot.frontend import answerer_for
from tests.conftest import DEV_SET, answerer_over, needs_shared, settings_for

DEV = load_eval(DEV_SET) if DEV_SET.is_file() else []


def assert_exact(passage) -> None:
    text = Path(passage.location.file).read_text(encoding="utf-8")
    assert text[passage.location.start : passage.location.end] == passage.text
    assert passage.location.line == 1 + text.count("\n", 0, passage.location.start)
    assert passage.location.end_line == 1 + text.count("\n", 0, passage.location.end - 1)
    for context in (passage.context_before, passage.context_after):
        assert context == "" or context in text
    for other in passage.also_in:
        other_text = Path(other.file).read_text(encoding="utf-8")
        assert other_text[other.start : other.end].strip() == other_text[other.start : other.end]


@needs_shared(DEV_SET)
@pytest.mark.parametrize("item", DEV, ids=lambda item: item.id)
def test_every_passage_of_every_dev_answer_cites_exact_text(answerer, item):
    answer = answerer.ask(item.question, 10)
    for passage in answer.passages:
        assert_exact(passage)
    assert 0.0 <= answer.confidence <= 1.0
    assert answer.abstained == (not answer.passages)


@pytest.mark.parametrize(
    ("question", "variant", "expected"),
    [
        ("Pashinyan", "pashinian", "Nikol Pashinian"),
        ("Schultz training center", "shultz", "George P. Shultz"),
        ("Anthony Blinken Miller", "antony", "Secretary of State Antony Blinken"),
    ],
)
def test_spelling_variants_are_searched_and_reported(answerer, question, variant, expected):
    answer = answerer.ask(question, 5)
    assert any(found == variant for _, found in answer.expansions)
    assert f"also searched: {variant}" in answer.reason
    assert any(expected in passage.text for passage in answer.passages)


def test_words_written_apart_find_the_word_they_form_written_as_one(tmp_path):
    cloud = "Cloud storage\n\nMicrosoft renamed SkyDrive to OneDrive in 2014.\n\nThe company sells a console.\n"
    # two short sentences are far from the articles the abstention model was fitted on: ask without it
    answerer = answerer_over(tmp_path, {"cloud.txt": cloud}, min_confidence=0.0)
    answer = answerer.ask("What did Microsoft rename Sky Drive to?", 3)
    assert ("drive", "skydrive") in answer.expansions
    assert "also searched: skydrive (for sky, drive)" in answer.reason, "both words are unknown here"
    assert answer.passages[0].text == "Microsoft renamed SkyDrive to OneDrive in 2014."
    assert_exact(answer.passages[0])


def test_a_word_the_corpus_writes_apart_finds_it(tmp_path):
    truce = (
        "Truce news\n\nThe cease-fire held for three days before shelling resumed.\n\n"
        "Crews worked through the night after a fire broke out in the port.\n"
    )
    answerer = answerer_over(tmp_path, {"truce.txt": truce})
    answer = answerer.ask("How long did the ceasefire hold?", 3)
    assert not answer.abstained
    assert answer.passages[0].text == "The cease-fire held for three days before shelling resumed."
    assert {"cease", "fire"} <= set(answer.passages[0].matched_terms)
    assert "also searched: cease fire (for ceasefire)" in answer.reason
    assert_exact(answer.passages[0])
    # fire and work are both in the corpus, but never as neighbours: no "firework" there
    refused = answerer.ask("When did the firework start?", 3)
    assert all(word != "firework" for word, _ in refused.expansions)
    assert refused.abstained and "firework" in refused.reason


def test_capitalised_words_find_their_initials_where_the_corpus_writes_them_in_capitals(tmp_path):
    sanctions = (
        "Sanctions\n\nThe EU imposed sanctions on the regime in March.\n\nThe bridge at St. Gallen opened in 1890.\n"
    )
    answerer = answerer_over(tmp_path, {"eu.txt": sanctions}, min_confidence=0.0)
    answer = answerer.ask("When did the European Union impose sanctions?", 3)
    assert not answer.abstained
    assert answer.passages[0].text == "The EU imposed sanctions on the regime in March."
    assert "also searched: eu (for european, union)" in answer.reason
    assert_exact(answer.passages[0])
    # "St." spells the initials of Sky Travel, but is not written in capitals: no initials
    refused = answerer.ask("When did Sky Travel open?", 3)
    assert refused.expansions == () and refused.confidence < 0.05


def test_context_is_the_neighbouring_sentences(answerer):
    answer = answerer.ask("Yerevan denied the charges", 1)
    [passage] = answer.passages
    assert passage.text.startswith("Yerevan denied the charges")
    assert passage.context_before.startswith("Baku said the border checkpoint was created")
    assert passage.context_after.startswith("Armenia, which relies on Russia")


def test_matched_terms_are_the_question_words_found(answerer):
    [passage] = answerer.ask("Erdoğan G20 Gaza ceasefire", 1).passages
    assert passage.matched_terms == ("erdogan", "g20", "gaza", "ceasefire")


def test_a_variant_is_reported_and_matched_as_the_passage_spells_it(answerer):
    answer = answerer.ask("Who is Louis Bono?", 5)
    assert ("louis", "luis") in answer.expansions, "shown as spelled, not as the stem 'lui'"
    assert "also searched: luis (for louis)" in answer.reason
    [spelled_luis] = [p for p in answer.passages if "Luis Bono" in p.text]
    assert spelled_luis.matched_terms == ("luis", "bono")


@pytest.mark.parametrize(
    "question",
    ["What is the capital of France?", "Who wrote Hamlet?", "zzzz xxxx yyyy", "What did the okapi sanctuary announce?"],
)
def test_out_of_domain_questions_abstain_with_a_reason(answerer, question):
    answer = answerer.ask(question)
    assert answer.abstained and not answer.passages
    assert answer.reason


@pytest.mark.parametrize("question", ["", "   ", "\x00\x07", "what is the", "???"])
def test_empty_or_stopword_only_questions_abstain(answerer, question):
    answer = answerer.ask(question)
    assert answer.abstained and not answer.passages
    assert "question" in answer.reason.lower()


def test_top_k_limits_passages(answerer):
    assert len(answerer.ask("peace talks Armenia Azerbaijan", 1).passages) == 1
    assert len(answerer.ask("peace talks Armenia Azerbaijan", 7).passages) == 7


def test_wire_copy_collapses_into_one_passage_listing_the_other(corpus_copy, tmp_path):
    source = (corpus_copy / "003_b5d4c7ccf50ad595.txt").read_text(encoding="utf-8")
    line = source.splitlines()[24]  # "Yerevan denied the charges ..."
    (corpus_copy / "wire.txt").write_text(f"Wire report\n\nFrom the wire: {line}\n", encoding="utf-8")
    answerer = answerer_for(settings_for(corpus_copy, tmp_path / "cache"))
    answer = answerer.ask("How did Yerevan respond to the charges?", 3)
    sources = [p.location.source for p in answer.passages]
    lead = answer.passages[0]
    assert "Yerevan denied the charges" in lead.text
    assert len(lead.also_in) == 1
    assert {lead.location.source, lead.also_in[0].source} == {"003_b5d4c7ccf50ad595.txt", "wire.txt"}
    assert len(set(sources)) == len(sources) or sources.count(lead.location.source) >= 1
    assert_exact(lead)


def test_answers_are_json_serialisable_and_stable(answerer):
    from qabot.render import answer_json

    first = answer_json(answerer.ask("What checkpoint did Azerbaijan install?"))
    second = answer_json(answerer.ask("What checkpoint did Azerbaijan install?"))
    assert first == second
    assert json.loads(json.dumps(first)) == first


def test_a_one_sentence_corpus_still_finds_its_sentence(tmp_path):
    # rank-bm25's IDF is negative when a term is in every sentence; presence must not hang on its sign. The
    # abstention model never saw a corpus of one sentence, so the sentence is asked for without it.
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.txt").write_text("The zebra crossing opened in Yerevan.", encoding="utf-8")
    answerer = answerer_for(settings_for(tmp_path / "c", tmp_path / "cache", min_confidence=0.0))
    answer = answerer.ask("Where did the zebra crossing open?")
    assert not answer.abstained
    assert answer.passages[0].text == "The zebra crossing opened in Yerevan."
    assert answer.passages[0].matched_terms == ("zebra", "crossing", "open")
    assert answerer.ask("Who wrote Hamlet?").abstained, "no word of it is in the corpus"


def test_a_variant_spelled_two_ways_in_the_passages_is_reported_both_ways(answerer):
    from dataclasses import replace

    # "seeks" is spelled right, so it searches variants only when asked to spell everyday words otherwise
    shown_all = Answerer(answerer.index, replace(answerer.params, min_confidence=0.0, spell_everyday_words=True))
    answer = shown_all.ask("seeks", 10)  # rare "seek"; its variant "see" reads "sees" in one passage, "saw" in another
    spelled = {variant for word, variant in answer.expansions if word == "seeks"}
    shown = {term for p in answer.passages for term in p.matched_terms} - {"seeks"}
    assert len(shown) >= 2 and shown <= spelled
    assert answer.reason == f"also searched: {', '.join(v for _, v in answer.expansions)} (for seeks)"


@pytest.mark.parametrize(
    "question",
    ["Who is Louis Bono?", "What is the capital of France?", "zzzz xxxx yyyy", "", "peace talks", "Who wrote Hamlet?"],
)
def test_every_answer_carries_a_confidence_and_abstains_when_the_abstention_model_says(answerer, question):
    from qabot.answer import clean_question

    answer = answerer.ask(question)
    assert 0.0 <= answer.confidence <= 1.0
    assert answer.abstained == (not answer.passages)
    if answer.abstained:
        assert answer.label == ""
    else:
        ranking = answerer.rank(clean_question(question))
        assert ranking.answerable >= answerer.models.min_answerable
        assert answer.label == answerer.models.labels.of(answer.confidence)


def test_min_confidence_setting_moves_the_threshold(seeds_settings):
    from qabot.config import replace

    question = "When did Mirzoyan and Blinken meet?"
    never = answerer_for(replace(seeds_settings, min_confidence=0.0))
    always = answerer_for(replace(seeds_settings, min_confidence=1.0))
    shown, refused = never.ask(question), always.ask(question)
    assert not shown.abstained and refused.abstained
    assert shown.confidence == refused.confidence, "the threshold decides, the confidence stays"
    assert f"confidence {refused.confidence:.0%}" in refused.reason


def test_a_frame_word_does_not_block_the_answer(answerer):
    answer = answerer.ask("how many officials resigned?")
    assert not answer.abstained and "many" not in answer.reason
    assert answer.passages[0].text.startswith("Six high-ranking officials")


def test_a_when_question_raises_dated_sentences(answerer):
    from dataclasses import replace

    from qabot.answer_type import has_answer_type
    from qabot.features import CANDIDATE_FEATURES

    shown = Answerer(answerer.index, replace(answerer.params, min_confidence=0.0))
    answer = shown.ask("When did Mirzoyan and Blinken meet?", 10)
    assert any(has_answer_type(passage.text, "time") for passage in answer.passages)
    typed = [CANDIDATE_FEATURES.index(name) for name in ("answer_type", "typed_share", "typed_paragraph")]
    assert all(answerer.models.ranker.weights[typed] > 0), "holding the asked-for type raises a sentence"


def test_a_derivation_found_in_a_passage_is_reported_as_spelled_there(answerer):
    answer = answerer.ask("move", 5)
    shown = {term for p in answer.passages for term in p.matched_terms}
    assert "movement" in shown
    assert ("move", "movement") in answer.expansions and "movement (for move)" in answer.reason
    assert all(form in shown for word, form in answer.expansions if word == "move"), "only what a passage holds"


def test_every_seed_sentence_as_a_passage_of_its_own_cites_exact_text(answerer):
    sentences = answerer.index.n_sentences
    for sent in range(sentences):
        passage = answerer.passage_of(sent)
        assert_exact(passage)
        assert passage.matched_terms == () and passage.also_in == ()
    assert sentences > 50


@pytest.mark.parametrize(
    ("confidence", "label"), [(0.99, "Likely answer"), (0.5, "Possible match"), (0.01, "Weak match")]
)
def test_labels_follow_the_fitted_cut_offs(confidence, label):
    from qabot.learned import Labels

    assert Labels(0.8, 0.3).of(confidence) == label


def test_a_capitalised_word_after_opening_punctuation_is_no_name(answerer):
    from qabot.answer import clean_question

    spanish = {term.word: term for term in answerer.rank(clean_question("¿Quién es Louis Bono?")).terms}
    english = {term.word: term for term in answerer.rank(clean_question("Who is Louis Bono?")).terms}
    assert "quien" not in spanish, "an everyday Spanish word the corpus lacks is left out of the question"
    assert spanish["louis"].capitalised and spanish["bono"].capitalised
    assert english["louis"].capitalised


def test_a_name_found_only_by_spelling_carries_how_the_corpus_writes_it(tmp_path):
    text = (
        "The party met in the old hall on Monday.\n\nThe party said the talks would go on.\n\n"
        "On Monday, Pashinian met the delegation in Yerevan.\n"
    )
    answerer = answerer_over(tmp_path, {"a.txt": text})
    terms = {term.word: term for term in answerer.rank("Who is the mayor of Paris and Pashinyan?").terms}
    paris, pashinyan = terms["paris"], terms["pashinyan"]
    assert not paris.found and not paris.spelled.variant_only, "party is never written as a name: not searched"
    assert pashinyan.spelled.variant_only and pashinyan.spelled.as_name and pashinyan.spelled.edits == 1


def test_a_name_is_not_searched_as_a_common_word_nor_an_everyday_word_as_a_misspelling(tmp_path):
    text = (
        "The party met in the old hall on Monday.\n\nFlooding closed the road for several days.\n\n"
        "Severe storms hit the coast on Sunday.\n"
    )
    answerer = answerer_over(tmp_path, {"a.txt": text})
    terms = {term.word: term for term in answerer.rank("Who is the mayor of Paris? Was the floor bad?").terms}
    assert not terms["paris"].found, "Paris is not 'party': the corpus never writes it as a name"
    assert not terms["floor"].found, "floor is spelled right: no 'flooding'"
    assert "bad" not in terms, "no 'several' for bad (no root in common); an everyday word it lacks is left out"
    answer = answerer.ask("Who is the mayor of Paris?")
    assert "party" not in answer.reason and "flood" not in answer.reason


def test_variants_are_shown_as_the_corpus_spells_them_never_as_a_stem(answerer):
    answer = answerer.ask("Who is Louis Bono?", 1)
    shown = [variant for _, variant in answer.expansions]
    assert "luis" in shown and "lui" not in shown
    text = " ".join(answerer.passage_of(sent).text for sent in range(answerer.index.n_sentences)).casefold()
    assert all(variant in text for variant in shown), "every variant shown is a word of the corpus"


@pytest.mark.parametrize(
    "question",
    [
        "¿Quién es Louis Bono?",
        "Hi, I keep running into this a lot lately and it became a big deal at home, so tell me, please:"
        " what does the US insist on regarding the Lachin corridor?",
        "Hi, quick one, I keep hearing about it a lot: who is Louis Bono?",
    ],
)
def test_frame_words_of_other_languages_and_chatty_filler_do_not_sink_a_found_question(answerer, question):
    answer = answerer.ask(question)
    assert not answer.abstained, answer.reason
    assert {"bono", "lachin"} & {term.casefold() for term in answer.passages[0].matched_terms}
