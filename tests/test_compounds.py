"""Words the question writes one way and the corpus another: joined, as initials, apart."""

from __future__ import annotations

from qabot.analyze import term_spans
from qabot.compounds import initials, joined_words, split_words


def joined(question: str, term_ids: dict[str, int]) -> dict[str, list[int]]:
    return joined_words(question, list(term_spans(question)), term_ids)


def spelled_by_initials(question: str, term_ids: dict[str, int]) -> dict[str, list[int]]:
    return initials(question, list(term_spans(question)), term_ids)


def test_neighbours_split_by_one_space_or_hyphen_are_joined() -> None:
    term_ids = {"skydriv": 0, "ceasefir": 1, "newsroom": 2}
    for question, expected in [
        ("Sky Drive?", {"sky": [0], "drive": [0]}),
        ("the cease-fire deal", {"ceas": [1], "fire": [1]}),
        ("news, room", {}),  # a comma parts them
        ("news of the room", {}),  # not neighbours in the text
        ("Sky  Drive", {}),  # two spaces: not a word written apart
    ]:
        assert joined(question, term_ids) == expected, question


def test_a_run_of_capitalised_words_is_looked_up_by_its_initials() -> None:
    term_ids = {"eu": 0, "wwii": 1, "fm": 2, "osc": 3}
    for question, expected in [
        ("What did the European Union say?", {"european": [0], "union": [0]}),
        ("When did World War II end?", {"world": [1], "war": [1], "ii": [1]}),  # a word in capitals whole
        ("Who is the Armenian Foreign Minister?", {"foreign": [2], "minist": [2]}),  # any part of a run
        ("Who leads the Organization for Security and Co-operation in Europe?", {}),  # stopwords part the run
        ("What did the European union say?", {}),  # union is not capitalised
        ("What did the European, Union say?", {}),  # not split by one space
    ]:
        assert spelled_by_initials(question, term_ids) == expected, question
    # the initials are analyzed as the corpus's words are: OSCE is the term "osc"
    assert spelled_by_initials("Who chairs the Office Security Cooperation Europe?", term_ids) == {
        word: [3] for word in ("offic", "secur", "cooper", "europ")
    }


def test_split_words_tries_the_most_even_split_first() -> None:
    term_ids = {"ceas": 0, "fire": 1, "work": 2, "e": 3, "mail": 4, "f": 5}
    assert split_words("ceasefire", term_ids) == [(0, 1)]
    assert split_words("firework", term_ids) == [(1, 2)]
    assert split_words("email", term_ids) == [(3, 4)]
    assert split_words("fires", term_ids) == [], "no part may be missing from the corpus"
    # the most even split first (seah + orse before sea + horse); equally even, the shorter first part
    assert split_words("seahorse", {"sea": 0, "hors": 1, "seah": 2, "ors": 3}) == [(2, 3), (0, 1)]
    assert split_words("newspaper", {"news": 0, "paper": 1, "newsp": 2, "aper": 3}) == [(0, 1), (2, 3)]
