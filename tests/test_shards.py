"""The sharded index in one process: the same answers as the single index, refreshes that touch only
the shards whose files changed, a checksummed manifest, and no dask anywhere."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qabot import sharded as sharded_module
from qabot.config import load_settings, replace
from qabot.frontend import answerer_for, corpus_changed
from qabot.render import render_json
from qabot.searchable import SearchableIndex
from qabot.shard_server import LocalRunner, LocalShards
from qabot.sharded import ShardedAnswerer
from qabot.shards import layout_folder, load_manifest, open_shards, shard_folder, shard_of
from qabot.store import IndexParams
from tests.conftest import DEV_SET, PROJECT, SEEDS, settings_for
from tests.sharding import Generated, batch_json, dev_questions, generate, qabot_env, run_qabot


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return generate(tmp_path_factory.mktemp("generated"), sentences=4000, n_questions=120)


@pytest.mark.skipif(not DEV_SET.exists(), reason="../shared/eval/dev.jsonl is absent")
def test_qabot_ask_json_with_1_3_7_shards_equals_the_single_index_on_every_dev_question(tmp_path: Path) -> None:
    questions = dev_questions()
    env = qabot_env(SEEDS, tmp_path / "cache")
    single = batch_json(env, questions)
    assert len(single) == len(questions) and any(not json.loads(line)["abstained"] for line in single)
    for shards in ("1", "3", "7"):
        assert batch_json(env, questions, "--shards", shards) == single, shards


def test_sharded_answers_equal_the_single_index_on_a_generated_corpus(generated: Generated, tmp_path: Path) -> None:
    answered = [line for line in generated.reference if not json.loads(line)["abstained"]]
    assert len(answered) > len(generated.reference) * 0.9
    for shards in (3, 7):
        settings = settings_for(generated.corpus, tmp_path / "cache", shards=shards)
        sharded = answerer_for(settings)
        assert isinstance(sharded, ShardedAnswerer) and sharded.index.n_shards == shards
        assert tuple(render_json(sharded.ask(q)) for q in generated.questions) == generated.reference


def test_every_file_goes_to_one_shard_and_the_same_one_in_another_process(generated: Generated) -> None:
    paths = sorted(p.relative_to(generated.corpus).as_posix() for p in generated.corpus.rglob("*.txt"))
    here = [shard_of(path, 7) for path in paths]
    assert set(here) == set(range(7))  # a hash, not a run of files per shard
    script = "import sys; from qabot.shards import shard_of; print([shard_of(p, 7) for p in sys.argv[1:]])"
    elsewhere = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True, text=True, check=True,
                               env={**os.environ, "PYTHONHASHSEED": "12345"}, cwd=PROJECT)  # fmt: skip
    assert json.loads(elsewhere.stdout) == here


def test_a_refresh_rebuilds_only_the_shard_whose_file_changed(corpus_copy: Path, tmp_path: Path) -> None:
    settings = settings_for(corpus_copy, tmp_path / "cache", shards=3)
    params, notes = IndexParams.from_settings(settings), []

    def reopen():
        return open_shards(corpus_copy, settings.index_dir, params, 3, LocalRunner(), notes.append, notes.append)

    built = reopen()
    assert built.action == "built" and len(built.updated) == 3
    assert reopen().action == "loaded" and reopen().updated == ()
    changed = sorted(corpus_copy.glob("*.txt"))[2]
    with changed.open("a", encoding="utf-8") as handle:
        handle.write("\nThe harbour master Quillon Vardasz retired on Tuesday.\n")
    refreshed = reopen()
    owner = shard_of(changed.name, 3)
    assert refreshed.action == "refreshed"
    assert [(b.number, b.action) for b in refreshed.updated] == [(owner, "refreshed")]
    assert any(note.startswith(f"shard-{owner:04d} (1/1): refreshed") for note in notes)
    sharded = answerer_for(settings)
    single = answerer_for(replace(settings, shards=0))
    question = "Who is Quillon Vardasz?"
    assert "Quillon Vardasz" in sharded.ask(question).passages[0].text
    assert render_json(sharded.ask(question)) == render_json(single.ask(question))
    assert corpus_changed(sharded) is False
    status = changed.stat()
    changed.write_text(changed.read_text(encoding="utf-8").replace("Quillon", "Quillan"), encoding="utf-8")
    os.utime(changed, ns=(status.st_atime_ns, status.st_mtime_ns))  # same size, same mtime: only the ctime moved
    assert corpus_changed(sharded) is True
    assert [(b.number, b.action) for b in reopen().updated] == [(owner, "refreshed")]
    assert "Quillan Vardasz" in answerer_for(settings).ask("Who is Quillan Vardasz?").passages[0].text
    changed.unlink()
    assert corpus_changed(sharded) is True


def test_a_damaged_manifest_or_shard_is_rebuilt_with_a_warning_and_the_same_answers(tmp_path: Path) -> None:
    settings = settings_for(SEEDS, tmp_path / "cache", shards=3)
    question = "Where did the US host the peace talks?"
    expected = render_json(answerer_for(settings).ask(question))
    assert json.loads(expected)["passages"]
    layout = layout_folder(settings.index_dir, SEEDS)
    manifest = load_manifest(layout, SEEDS.resolve(), IndexParams.from_settings(settings))
    df = layout / manifest.ref.generation / "df.npy"
    df.write_bytes(df.read_bytes()[:-8] + b"\x01" * 8)
    warnings: list[str] = []
    assert render_json(answerer_for(settings, warn=warnings.append).ask(question)) == expected
    assert any("damaged" in w and "df.npy" in w for w in warnings), warnings
    post_tf = next((shard_folder(layout, 1)).glob("gen-*/post_tf.npy"))
    post_tf.write_bytes(post_tf.read_bytes()[:-2] + b"\xff\xff")
    warnings.clear()
    assert render_json(answerer_for(settings, warn=warnings.append).ask(question)) == expected
    assert any("shard-0001" in w and "post_tf" in w and "rebuilding" in w for w in warnings), warnings


def test_qabot_index_with_shards_prints_one_line_and_loads_the_second_time(tmp_path: Path) -> None:
    env = qabot_env(SEEDS, tmp_path / "cache")
    first = run_qabot(env, "index", "--shards", "3")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("sharded index built") and "3 shards, 5 articles" in first.stdout
    assert [line.split(" ")[0] for line in first.stderr.splitlines()] == ["qabot:"] * 3  # progress, one per shard
    again = run_qabot(env, "index", "--shards", "3")
    assert again.stdout.startswith("sharded index loaded") and again.stderr == ""


@pytest.mark.parametrize(("args", "fragment"), [(["--shards", "-1"], "shards"), (["--shards", "x"], "--shards")])
def test_a_bad_shard_count_is_one_line_and_exit_2(tmp_path: Path, args: list[str], fragment: str) -> None:
    result = run_qabot(qabot_env(SEEDS, tmp_path / "cache"), "ask", *args, "Who?")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_the_question_path_never_imports_dask_with_or_without_shards(tmp_path: Path) -> None:
    script = (
        "import sys; from qabot.cli import main; code = main(sys.argv[1:]); "
        "print(code, sorted({m.split('.')[0] for m in sys.modules} & {'dask', 'distributed'}))"
    )
    for extra in ([], ["--shards", "3"]):
        result = subprocess.run([sys.executable, "-c", script, "ask", *extra, "Where did the US host the peace talks?"],
                                capture_output=True, text=True, env=qabot_env(SEEDS, tmp_path / "cache"),
                                cwd=PROJECT, timeout=120)  # fmt: skip
        assert result.stdout.splitlines()[-1] == "0 []", result.stdout + result.stderr


def test_settings_take_the_cluster_from_qabot_cluster(tmp_path: Path) -> None:
    settings = load_settings(None, env={"QABOT_CLUSTER": " tcp://127.0.0.1:8786 ", "QABOT_SHARDS": "7"})
    assert (settings.cluster, settings.shards) == ("tcp://127.0.0.1:8786", 7)
    assert replace(settings, cluster="").cluster is None


def searchable_members() -> set[str]:
    return {name for name in vars(SearchableIndex) if not name.startswith("_")}


@pytest.mark.parametrize("module", ["answer.py", "features.py"])
def test_the_answerer_reads_only_what_the_searchable_protocol_lists(module: str) -> None:
    """A new use of the index in the answerer must be added to SearchableIndex and ShardedIndex first."""
    tree = ast.parse((PROJECT / "qabot" / module).read_text("utf-8"))
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and (
            (isinstance(node.value, ast.Name) and node.value.id == "index")
            or (isinstance(node.value, ast.Attribute) and node.value.attr == "index")
        )
    }
    assert {"sentence_text", "sentence_terms"} <= used
    assert used <= searchable_members(), used - searchable_members()


def test_the_single_and_the_sharded_index_both_offer_the_whole_protocol(answerer, tmp_path: Path) -> None:
    sharded = answerer_for(settings_for(SEEDS, tmp_path / "cache", shards=3))
    for index in (answerer.index, sharded.index):
        assert [name for name in sorted(searchable_members()) if not hasattr(index, name)] == []
    single = answerer.index
    assert sharded.index.doc_text(2) == single.doc_text(2)
    assert list(sharded.index.sent_doc[np.arange(5, 9)]) == list(single.sent_doc[np.arange(5, 9)])
    assert list(sharded.index.sent_start[np.array([3, 40])]) == list(single.sent_start[np.array([3, 40])])
    assert sharded.index.neighbours(40) == single.neighbours(40)
    every = np.arange(single.n_sentences)
    for mine, theirs in zip(sharded.index.paragraph_bounds(every), single.paragraph_bounds(every), strict=True):
        assert mine.tolist() == theirs.tolist()
    assert sharded.index.cues(every).tolist() == single.cues(every).tolist()


@pytest.mark.skipif(not DEV_SET.exists(), reason="../shared/eval/dev.jsonl is absent")
def test_prefetching_shards_answer_the_same_even_when_the_prefetch_falls_short(
    answerer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a cluster a search brings each shard's best candidates along; whatever it did not bring
    is fetched afterwards. Here every shard brings only its best one."""
    monkeypatch.setattr(LocalShards, "prefetch", True)
    monkeypatch.setattr(sharded_module, "PREFETCH_SPARE", 1 - 2 * 17)  # 2 * ceil(50 / 3) + spare = 1
    sharded = answerer_for(settings_for(SEEDS, tmp_path / "cache", shards=3))
    calls: list[str] = []
    call = sharded.index.pool.call

    def counted(method: str, requests: dict) -> tuple:
        calls.append(method)
        return call(method, requests)

    monkeypatch.setattr(sharded.index.pool, "call", counted)
    questions = dev_questions()
    assert [render_json(sharded.ask(q)) for q in questions] == [render_json(answerer.ask(q)) for q in questions]
    assert "search_prefetch" in calls and "details" in calls
