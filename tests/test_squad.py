"""The SQuAD format: parsing, safe file names, and the corpus layout (checked against the shared Rhine file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qabot.eval_set import load_eval, open_eval_set
from qabot.squad import SquadFormatError, article_text, parse_squad, safe_file_names, write_corpus
from tests.conftest import PROJECT

SQUAD_DEV = PROJECT.parent / "shared" / "eval" / "squad-dev"
needs_squad_dev = pytest.mark.skipif(
    not (SQUAD_DEV / "squad2-dev-rhine-sky.json").is_file(), reason="../shared/eval/squad-dev is not present"
)

V11 = {
    "version": "1.1",
    "data": [
        {
            "title": "Tiny_(river)",
            "paragraphs": [
                {
                    "context": "  The Glimmerbrook is 42 km long.\n",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "How long is the Glimmerbrook? ",
                            "answers": [
                                {"text": "42 km", "answer_start": 21},
                                {"text": "42 km", "answer_start": 21},
                                {"text": "42", "answer_start": 21},
                                {"text": " ", "answer_start": 0},
                            ],
                        },
                    ],
                },
            ],
        }
    ],
}


def test_v11_questions_are_answerable_with_distinct_sorted_answers_and_a_stripped_context():
    (article,) = parse_squad(V11)
    (paragraph,) = article.paragraphs
    (question,) = paragraph.questions
    assert paragraph.context == "The Glimmerbrook is 42 km long."
    assert question.question == "How long is the Glimmerbrook?"
    assert question.answers == ("42", "42 km") and not question.impossible


def test_v2_impossible_questions_keep_no_answers():
    data = json.loads(json.dumps(V11))
    data["data"][0]["paragraphs"][0]["qas"].append(
        {"id": "q2", "question": "Who named it?", "answers": [], "is_impossible": True,
         "plausible_answers": [{"text": "Glimmerbrook", "answer_start": 4}]}
    )  # fmt: skip
    questions = parse_squad(data)[0].paragraphs[0].questions
    assert [(q.id, q.impossible, q.answers) for q in questions] == [("q1", False, ("42", "42 km")), ("q2", True, ())]


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"data": [{"title": 3, "paragraphs": []}]}, 'data[0] has no "title" string'),
        ({"data": [{"title": "T", "paragraphs": [{"context": " ", "qas": []}]}]}, "data[0].paragraphs[0] has an empty"),
        ({"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": [
            {"id": "1", "question": "q", "answers": [], "is_impossible": "no"}]}]}]}, '"is_impossible" that is not'),
        ({"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": [
            {"id": "1", "question": "q", "answers": [7]}]}]}]}, "qas[0].answers[0] is not a JSON object"),
        ({"version": "v2.0"}, 'expected an object with a "data" list'),
    ],
)  # fmt: skip
def test_malformed_squad_names_the_element(data, where):
    with pytest.raises(SquadFormatError) as raised:
        parse_squad(data)
    assert where in str(raised.value)


def test_file_names_are_safe_and_distinct():
    titles = ["Rhine", "Sky_(United_Kingdom)", "../../etc/passwd", "Beyoncé", "北京", "Rhine", "rhine", "a" * 200]
    names = safe_file_names(titles)
    assert names[:5] == ["rhine.txt", "sky_united_kingdom.txt", "etc_passwd.txt", "beyonce.txt", "article.txt"]
    assert names[5:7] == ["rhine_2.txt", "rhine_3.txt"]
    assert names[7] == "a" * 60 + ".txt"
    assert len(set(names)) == len(names)
    assert all("/" not in name and "\\" not in name and not name.startswith(".") for name in names)


def test_corpus_file_is_title_blank_line_paragraphs(tmp_path: Path):
    data = json.loads(json.dumps(V11))
    data["data"][0]["paragraphs"].append({"context": "It has no bridges.", "qas": []})
    articles = parse_squad(data)
    assert write_corpus(articles, tmp_path) == ["tiny_river.txt"]
    assert (tmp_path / "tiny_river.txt").read_bytes() == b"Tiny (river)\n\nThe Glimmerbrook is 42 km long.\n\n" \
        b"It has no bridges.\n"  # fmt: skip
    assert article_text(articles[0]) == (tmp_path / "tiny_river.txt").read_text(encoding="utf-8")


@needs_squad_dev
def test_the_rhine_corpus_file_and_questions_match_the_shared_ones(tmp_path: Path):
    """Rhine alone, Sky as --outside: exactly squad-dev's corpus/rhine.txt and questions.jsonl."""
    data = json.loads((SQUAD_DEV / "squad2-dev-rhine-sky.json").read_text(encoding="utf-8"))
    titles = ("Rhine", "Sky_(United_Kingdom)")
    rhine, sky = ([article for article in data["data"] if article["title"] == title] for title in titles)
    (tmp_path / "rhine.json").write_text(json.dumps({"version": "v2.0", "data": rhine}), encoding="utf-8")
    (tmp_path / "sky.json").write_text(json.dumps({"version": "v2.0", "data": sky}), encoding="utf-8")
    with open_eval_set(tmp_path / "rhine.json", tmp_path / "sky.json") as eval_set:
        corpus = eval_set.corpus
        assert [p.name for p in corpus.iterdir()] == ["rhine.txt"]
        assert (corpus / "rhine.txt").read_bytes() == (SQUAD_DEV / "corpus" / "rhine.txt").read_bytes()
        items = eval_set.items
    assert not corpus.exists(), "the temporary corpus is removed afterwards"
    assert list(items) == load_eval(SQUAD_DEV / "questions.jsonl")
