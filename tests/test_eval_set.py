"""Reading eval sets: JSON lines, SQuAD files, outside questions, and clear errors naming where."""

from __future__ import annotations

import json

import pytest

from qabot.eval_set import EvalFileError, EvalItem, load_eval, open_eval_set
from tests.conftest import SAMPLE_SET


@pytest.mark.parametrize(
    "content",
    ["", "not json\n", '{"id": 1}\n',
     '{"id": 1, "question": "q", "answerable": true, "answers": [{"source": "a", "quote": "b", "paragraph": 3}]}\n'],
)  # fmt: skip
def test_malformed_eval_files_are_reported(tmp_path, content):
    path = tmp_path / "e.jsonl"
    path.write_text(content)
    with pytest.raises(EvalFileError, match=r"e\.jsonl"):
        load_eval(path)


def test_a_jsonl_set_is_asked_of_the_configured_corpus_with_outside_questions_added(tmp_path):
    outside = tmp_path / "outside.jsonl"
    outside.write_text(
        json.dumps({"id": "o1", "question": "Who won?", "answerable": True, "answers": [{"source": "x", "quote": "y"}]})
        + "\n"
        + json.dumps({"id": "o2", "question": "Who lost?", "answerable": False, "answers": []})
        + "\n"
    )
    with open_eval_set(SAMPLE_SET, outside) as eval_set:
        assert eval_set.corpus is None and eval_set.cache_dir is None
        items = eval_set.items
    assert items[:-1] == tuple(load_eval(SAMPLE_SET))
    assert items[-1] == EvalItem("o1", "Who won?", False, "out-of-corpus", ()), "only answerable outside questions"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("set.json", '{"data": [', "not valid JSON"),
        ("set.json", "[1, 2]", "neither JSON lines of eval items nor SQuAD JSON"),
        ("set.json", '{"version": "v2.0", "data": []}', "holds no questions"),
        ("set.json", '{"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": [{"id": "1"}]}]}]}',
         'data[0].paragraphs[0].qas[0] has no "question" string'),
        ("set.json", '{"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": '
         '[{"id": "1", "question": "q", "answers": []}]}]}]}', "is answerable but has no answer text"),
    ],
)  # fmt: skip
def test_malformed_squad_files_are_reported_with_where(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(EvalFileError, match=r"set\.json") as raised, open_eval_set(path):
        pass
    assert message in str(raised.value)


def test_json_lines_in_a_file_named_json_are_read_as_json_lines(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text(SAMPLE_SET.read_text(encoding="utf-8"), encoding="utf-8")
    with open_eval_set(path) as eval_set:
        assert eval_set.items == tuple(load_eval(SAMPLE_SET)) and eval_set.corpus is None
