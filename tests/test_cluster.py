"""The sharded index on a real Dask LocalCluster (loopback only): identical answers, a worker killed
mid-batch, a shard that cannot be served, an unreachable scheduler, and the README's walkthrough."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qabot.frontend import answerer_for
from qabot.render import render_json, render_text
from qabot.sharded import ShardedAnswerer
from qabot.shards import layout_folder, shard_folder, shard_of
from tests.conftest import DEV_SET, PROJECT, SEEDS, settings_for
from tests.sharding import Generated, batch_json, dev_questions, generate, qabot_env, run_qabot

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[distributed.LocalCluster]:
    with distributed.LocalCluster(host="127.0.0.1", processes=True, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as local:  # fmt: skip
        yield local


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return generate(tmp_path_factory.mktemp("generated"), sentences=3000, n_questions=500)


def worker_pids(answerer: ShardedAnswerer) -> dict[str, int]:
    return answerer.index.pool.client.run(os.getpid)


@pytest.mark.skipif(not DEV_SET.exists(), reason="../shared/eval/dev.jsonl is absent")
def test_qabot_ask_json_on_the_cluster_equals_the_single_index_with_1_3_7_shards(cluster, tmp_path: Path) -> None:
    questions = dev_questions()
    env = qabot_env(SEEDS, tmp_path / "cache")
    single = batch_json(env, questions)
    for shards in ("1", "3", "7"):
        assert batch_json(env, questions, "--cluster", cluster.scheduler_address, "--shards", shards) == single


def test_shards_live_on_both_workers_and_answer_as_the_single_index(cluster, generated: Generated, tmp_path) -> None:
    settings = settings_for(generated.corpus, tmp_path / "cache", shards=3, cluster=cluster.scheduler_address)
    sharded = answerer_for(settings)
    try:
        assert {actor._address for actor in sharded.index.pool.actors} == set(worker_pids(sharded))
        assert tuple(render_json(sharded.ask(q)) for q in generated.questions) == generated.reference
    finally:
        sharded.close()


def test_a_worker_killed_mid_batch_loses_no_question(cluster, generated: Generated, tmp_path: Path) -> None:
    settings = settings_for(generated.corpus, tmp_path / "cache", shards=3, cluster=cluster.scheduler_address)
    sharded = answerer_for(settings)
    try:
        victim = worker_pids(sharded)[sharded.index.pool.actors[0]._address]
        answers = []
        for number, question in enumerate(generated.questions):
            if number == 150:
                os.kill(victim, signal.SIGKILL)
            answers.append(render_json(sharded.ask(question)))
        assert len(answers) == 500
        assert tuple(answers) == generated.reference
        assert victim not in worker_pids(sharded).values()  # the nanny started a new worker
    finally:
        sharded.close()


def test_a_shard_that_cannot_be_served_is_named_and_the_answer_is_marked_incomplete(cluster, tmp_path: Path) -> None:
    settings = settings_for(SEEDS, tmp_path / "cache", shards=3, cluster=cluster.scheduler_address)
    sharded = answerer_for(settings)
    try:
        lost = 1
        shutil.rmtree(shard_folder(layout_folder(settings.index_dir, SEEDS), lost))
        pool = sharded.index.pool
        os.kill(worker_pids(sharded)[pool.actors[pool.group_of[lost]]._address], signal.SIGKILL)
        started = time.monotonic()
        answer = sharded.ask("Where did the US host the peace talks?")
        assert time.monotonic() - started < 60
        assert answer.reason.startswith("incomplete answer: shard-0001 (of 3 shards) could not be served")
        record = json.loads(render_json(answer))
        assert "incomplete answer: shard-0001" in record["reason"] and record["missing_shards"] == ["shard-0001"]
        assert "incomplete answer: shard-0001" in render_text(answer)
        assert answer.passages and all(shard_of(p.location.source, 3) != lost for p in answer.passages)
    finally:
        sharded.close()


def test_an_unreachable_scheduler_is_exit_2_and_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = run_qabot(qabot_env(SEEDS, tmp_path / "cache"), "ask", "--cluster", f"tcp://127.0.0.1:{port}", "Who?")
    assert time.monotonic() - started < 60
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"qabot: error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}")


def test_the_readme_walkthrough_gives_a_sharded_answer_in_three_commands(tmp_path: Path) -> None:
    readme = (PROJECT / "README.md").read_text("utf-8")
    assert "python -m qabot.cluster --workers 2" in readme and "--cluster tcp://127.0.0.1:8786 --shards 3" in readme
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "qabot.cluster", "--workers", "2", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=PROJECT)  # fmt: skip
    try:
        assert server.stdout.readline().startswith(f"Dask scheduler at tcp://127.0.0.1:{port} with 2 workers")
        env = qabot_env(SEEDS, tmp_path / "cache")
        question = "Where did the US host the peace talks?"
        sharded = run_qabot(env, "ask", "--cluster", f"tcp://127.0.0.1:{port}", "--shards", "3", question)
        single = run_qabot(env, "ask", question)
        assert sharded.returncode == 0 and sharded.stdout == single.stdout and "\n[1] " in sharded.stdout
    finally:
        server.send_signal(signal.SIGINT)
        try:
            assert server.wait(timeout=30) == 0
        finally:
            if server.poll() is None:
                server.kill()
                server.wait(timeout=10)
