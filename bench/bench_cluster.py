"""The sharded index on a Dask LocalCluster (2 workers on 127.0.0.1) against the single index.

    python bench/bench_cluster.py --sizes 1000000 5000000 [--phases build latency identical]

Per size: a make_corpus corpus (reused from WORK/corpus-SIZE once done), then
- build: `qabot index` in a fresh process (the single index; peak RSS of it and of its fork
  pool), and the sharded build on a fresh 2-worker LocalCluster (wall time, peak RSS per worker);
- latency (first size only; per --latency-shards): each answerable question (`--answerable-queries`) asked of the
  single index, the shards in-process and the shards on the cluster in turn; p50/p95 over the
  questions the single index answers (the first 20 only warm up); every answer's JSON compared.
- identical: the JSON of 500 answerable questions at --identical-size (100,000), single index
  against the cluster with 1, 3 and 7 shards.
Writes its sections of bench/RESULTS-cluster.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from distributed import LocalCluster
from report import machine_description, markdown_table, text_table, write_section

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from qabot.cluster import DaskRunner  # noqa: E402
from qabot.config import Settings, load_settings, replace  # noqa: E402
from qabot.frontend import answerer_for  # noqa: E402
from qabot.render import render_json  # noqa: E402
from qabot.shards import open_shards  # noqa: E402
from qabot.store import IndexParams  # noqa: E402

RESULTS = HERE / "RESULTS-cluster.md"
MAKE_CORPUS = ROOT.parent / "shared" / "bench" / "make_corpus.py"
WARM_UP = 20
WORKERS = 2


def corpus(work: Path, size: int) -> tuple[Path, list[str]]:
    """The make_corpus corpus of `size` sentences and its answerable questions (generated once)."""
    folder, questions = work / f"corpus-{size}", work / f"answerable-{size}.txt"
    if not (work / f"corpus-{size}.done").exists():
        subprocess.run([sys.executable, str(MAKE_CORPUS), "--out", str(folder), "--sentences", str(size),
                        "--n-queries", "500", "--answerable-queries", str(questions)], check=True)  # fmt: skip
        (work / f"corpus-{size}.done").touch()
    return folder, [line for line in questions.read_text("utf-8").splitlines() if line.strip()]


def settings(folder: Path, cache: Path, **changes: object) -> Settings:
    return replace(load_settings(ROOT / "config" / "qabot.toml", env={}), corpus=folder, cache_dir=cache, **changes)


def single_build(folder: Path, cache: Path) -> dict:
    """`qabot index` in a fresh process: wall time, its peak RSS and its fork pool's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_")}
    env.update(QABOT_CORPUS=str(folder), QABOT_CACHE_DIR=str(cache))
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "qabot.cli", "index"], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    print(process.stdout.read().decode().strip(), flush=True)
    assert os.waitstatus_to_exitcode(status) == 0
    return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024}


def peak_rss_mb() -> float:
    """This process's peak RSS (run on each worker)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cluster_build(folder: Path, cache: Path, shards: int, cluster: LocalCluster) -> dict:
    runner = DaskRunner.connect(cluster.scheduler_address)
    try:
        started = time.perf_counter()
        opened = open_shards(folder, cache, IndexParams.from_settings(settings(folder, cache)), shards, runner, print,
                             lambda note: print(f"  {note}", flush=True))  # fmt: skip
        seconds = time.perf_counter() - started
        peaks = runner.client.run(peak_rss_mb)
    finally:
        runner.close()
    return {"seconds": seconds, "worker_peaks_mb": sorted(peaks.values()), "sentences": opened.manifest.n_sentences,
            "coordinator_peak_mb": peak_rss_mb()}  # fmt: skip


def latency(folder: Path, cache: Path, shards: int, questions: list[str], cluster: LocalCluster) -> dict:
    """Each question asked of the single index, the shards in-process and the cluster in turn, so that
    all three meet the same load on the machine."""
    answerers = {
        "single": answerer_for(settings(folder, cache / "single")),
        "in_process": answerer_for(settings(folder, cache / "sharded-build", shards=shards)),
        "cluster": answerer_for(settings(folder, cache / "sharded-build", shards=shards,
                                         cluster=cluster.scheduler_address)),
    }  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in answerers}
    answers: dict[str, list[str]] = {name: [] for name in answerers}
    try:
        for question in questions:
            for name, answerer in answerers.items():
                started = time.perf_counter()
                answer = answerer.ask(question)
                times[name].append((time.perf_counter() - started) * 1000)
                answers[name].append(render_json(answer))
    finally:
        answerers["cluster"].close()
    answered = [i for i, line in enumerate(answers["single"]) if not json.loads(line)["abstained"] and i >= WARM_UP]

    def percentiles(ms: list[float]) -> tuple[float, float]:
        chosen = np.array(ms)[answered]
        return float(np.percentile(chosen, 50)), float(np.percentile(chosen, 95))

    return {
        "answered": len(answered),
        **{name: percentiles(times[name]) for name in answerers},
        "identical_cluster": sum(a == b for a, b in zip(answers["single"], answers["cluster"], strict=True)),
        "identical_in_process": sum(a == b for a, b in zip(answers["single"], answers["in_process"], strict=True)),
        "questions": len(questions),
    }


def identical(folder: Path, cache: Path, questions: list[str], cluster: LocalCluster) -> list[list[str]]:
    reference = [render_json(answerer_for(settings(folder, cache / "single")).ask(q)) for q in questions]
    rows = []
    for shards in (1, 3, 7):
        fanned = answerer_for(settings(folder, cache / "sharded", shards=shards, cluster=cluster.scheduler_address))
        try:
            same = sum(render_json(fanned.ask(q)) == line for q, line in zip(questions, reference, strict=True))
        finally:
            fanned.close()
        rows.append([f"{fanned.index.n_sentences:,}", str(shards), f"{same}/{len(questions)}"])
        print(f"identical at {shards} shards: {same}/{len(questions)}", flush=True)
    return rows


def new_cluster() -> LocalCluster:
    return LocalCluster(host="127.0.0.1", processes=True, n_workers=WORKERS, threads_per_worker=1,
                        dashboard_address=None)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--phases", nargs="+", choices=("build", "latency", "identical"),
                        default=["build", "latency", "identical"],
                        help="build: every size; latency: the first size; identical: --identical-size")
    parser.add_argument("--shards", type=int, default=8, help="shards of the cluster build (8)")
    parser.add_argument("--latency-shards", type=int, nargs="+", default=[WORKERS, 8],
                        help="shard counts of the latency runs (2 8; a count other than the build's re-shards)")
    parser.add_argument("--identical-size", type=int, default=100_000,
                        help="corpus of the identical phase: 500 answers compared with 1, 3 and 7 shards (100000)")
    parser.add_argument("--work", type=Path, default=HERE / "work" / "cluster")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    heading = ["", f"`{' '.join(['python bench/bench_cluster.py', *sys.argv[1:]])}`", "", *machine_description(), ""]
    sections: dict[str, str] = {}
    if "build" in args.phases:
        builds = []
        for size in args.sizes:
            folder, _ = corpus(args.work, size)
            cache = args.work / f"cache-{size}"
            for stale in ("single", "sharded-build"):  # a build, not a load of an earlier run's index
                shutil.rmtree(cache / stale, ignore_errors=True)
            single = single_build(folder, cache / "single")
            builds.append([f"{size:,}", "single process (qabot index)", "1", f"{single['seconds']:.1f}",
                           f"{single['peak_mb']:.0f}", ""])  # fmt: skip
            with new_cluster() as cluster:
                built = cluster_build(folder, cache / "sharded-build", args.shards, cluster)
            builds.append([f"{built['sentences']:,}", f"LocalCluster, {WORKERS} workers", str(args.shards),
                           f"{built['seconds']:.1f}", " / ".join(f"{mb:.0f}" for mb in built["worker_peaks_mb"]),
                           f"{built['coordinator_peak_mb']:.0f}"])  # fmt: skip
            print(text_table(["sentences", "build", "shards", "s", "peak RSS MB", "coordinator MB"], builds[-2:]),
                  flush=True)
        sections["cluster-build"] = "\n".join([
            "## Sharded build on a Dask LocalCluster (bench_cluster.py)", *heading,
            "Build (wall seconds; peak RSS in MB: of the process, per worker for the cluster):", "",
            markdown_table(["sentences", "build", "shards", "seconds", "peak RSS MB", "coordinator peak MB"], builds),
        ])  # fmt: skip
    if "latency" in args.phases:
        size = args.sizes[0]
        folder, questions = corpus(args.work, size)
        rows = []
        for shards in args.latency_shards:
            with new_cluster() as cluster:
                result = latency(folder, args.work / f"cache-{size}", shards, questions, cluster)
            (s50, s95), (l50, l95), (c50, c95) = result["single"], result["in_process"], result["cluster"]
            rows.append([f"{size:,}", str(shards), str(result["answered"]), f"{s50:.2f} / {s95:.2f}",
                         f"{l50:.2f} / {l95:.2f}", f"{c50:.2f} / {c95:.2f}", f"{c50 - s50:+.2f}",
                         f"{result['identical_cluster']}/{result['questions']}",
                         f"{result['identical_in_process']}/{result['questions']}"])  # fmt: skip
            print(rows[-1], flush=True)
        sections["cluster-latency"] = "\n".join([
            "## Sharded answering on a Dask LocalCluster (bench_cluster.py)", *heading,
            "Latency of `Answerer.ask` (ms, p50 / p95 over the questions the single index answers):", "",
            markdown_table(["sentences", "shards", "answered", "single index", "sharded, in-process",
                            f"sharded, {WORKERS} Dask workers", "fan-out overhead p50", "JSON equal (cluster)",
                            "JSON equal (in-process)"], rows),
        ])  # fmt: skip
    if "identical" in args.phases:
        folder, questions = corpus(args.work, args.identical_size)
        with new_cluster() as cluster:
            same_rows = identical(folder, args.work / f"cache-{args.identical_size}", questions, cluster)
        sections["cluster-identical"] = "\n".join([
            "## Identical answers on a Dask LocalCluster (bench_cluster.py)", *heading,
            "`render_json` of each answerable question, byte for byte, against the single index:", "",
            markdown_table(["sentences", "shards", "equal"], same_rows),
        ])  # fmt: skip
    for name, markdown in sections.items():
        print(markdown, flush=True)
        if not args.no_write:
            write_section(name, markdown, RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
