"""qabot's scale benchmark: qabot against rank-bm25, bm25s, tantivy and a scipy baseline, side by side.

    python bench/bench_retrieval.py --sizes 10000 100000 1000000 [--queries 500] [--work bench/work]

For each size it generates (once; cached) a corpus and queries with
../shared/bench/make_corpus.py, then runs every phase in a fresh process (so
peak RSS is per phase): qabot build on an empty cache, load + queries, refresh
after appending a sentence to one file; each other engine's build from qabot's
own terms, load and queries; an agreement check of top-10 lists. Prints one
table and writes it, with the machine description, to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from report import machine_description, markdown_table, qabot_digest, text_table, write_section

HERE = Path(__file__).resolve().parent
MAKE_CORPUS = HERE.parent.parent / "shared" / "bench" / "make_corpus.py"
PHASE = HERE / "phase.py"
WARMUP = 20
ENGINES = ("bm25s", "tantivy", "scipy column-sum", "rank-bm25")
SINGLE_THREAD = {
    var: "1" for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                         "RAYON_NUM_THREADS")
}  # fmt: skip
PHASE_TIMEOUT = 3600


class PhaseFailed(Exception):
    """A phase exited with an error; its size's row shows what finished."""


def run_phase(phase: str, *options: object) -> dict:
    """Run bench/phase.py PHASE in a fresh single-threaded process and return its RESULT."""
    command = [sys.executable, str(PHASE), phase, *map(str, options)]
    env = {**os.environ, **SINGLE_THREAD}
    try:
        done = subprocess.run(
            command, env=env, stdout=subprocess.PIPE, text=True, timeout=PHASE_TIMEOUT, cwd=HERE.parent
        )
    except subprocess.TimeoutExpired:
        raise PhaseFailed(f"{phase} timed out after {PHASE_TIMEOUT} s") from None
    result = None
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
        else:
            print(line)
    if done.returncode or result is None:
        raise PhaseFailed(f"{phase} failed (exit {done.returncode})")
    return result


def ensure_corpus(work: Path, size: int, n_queries: int) -> tuple[Path, Path]:
    """The corpus folder and queries file for size, generated once (make_corpus is deterministic)."""
    corpus, queries = work / f"corpus-{size}", work / f"queries-{size}-{n_queries}.txt"
    marker = work / f"corpus-{size}.done"
    if marker.exists() and queries.exists():
        _remove_probe(corpus)
        return corpus, queries
    shutil.rmtree(corpus, ignore_errors=True)
    print(f"[{size}] generating corpus with {MAKE_CORPUS.name} ...", flush=True)
    subprocess.run(
        [sys.executable, str(MAKE_CORPUS), "--out", str(corpus), "--sentences", str(size),
         "--queries", str(queries), "--n-queries", str(n_queries)],
        check=True,
    )  # fmt: skip
    marker.write_text("ok\n", encoding="utf-8")
    return corpus, queries


def _remove_probe(corpus: Path) -> None:
    """Undo a refresh probe left behind by a killed run, so the corpus is make_corpus's again."""
    from phase import PROBE

    article = min(corpus.rglob("*.txt"))
    text = article.read_text(encoding="utf-8")
    if text.endswith(PROBE):
        article.write_text(text[: -len(PROBE)], encoding="utf-8")
        print(f"removed a leftover refresh probe from {article}", flush=True)


def bench_size(work: Path, size: int, n_queries: int, engines: list[str], profile: bool, k1: float, b: float) -> dict:
    """Every phase for one corpus size; returns what finished (and the first error, if any)."""
    corpus, queries = ensure_corpus(work, size, n_queries)
    cache, tokens, out = work / f"qabot-cache-{size}", work / f"tokens-{size}", work / f"results-{size}"
    for folder in (cache, tokens, out):
        shutil.rmtree(folder, ignore_errors=True)
    out.mkdir(parents=True)
    result: dict = {"size": size, "engines": {}, "load_average": os.getloadavg()[0]}

    def step(label: str, phase: str, *options: object) -> dict:
        started = time.perf_counter()
        value = run_phase(phase, *options)
        print(f"[{size}] {label}: {_brief(value)} ({time.perf_counter() - started:.0f} s wall)", flush=True)
        if phase != "qabot-build" and any("rebuilding" in warning for warning in value.get("warnings", ())):
            result.setdefault("invalid", []).append(f"{label} rebuilt the index (qabot's code or format changed?)")
        return value

    try:
        common = ("--corpus", corpus, "--cache", cache)
        result["build"] = step("qabot build", "qabot-build", *common, "--tokens", tokens)
        result["query"] = step("qabot load+ask", "qabot-query", *common, "--queries", queries, "--out", out)
        result["refresh"] = step("qabot refresh", "qabot-refresh", *common)
        sentences = result["build"]["sentences"]
        for name in engines:
            folder = work / f"engine-{size}" / name.replace(" ", "-")
            shutil.rmtree(folder, ignore_errors=True)
            options = ("--engine", name, "--tokens", tokens, "--folder", folder, "--out", out, "--k1", k1, "--b", b)
            if name == "rank-bm25":  # a Python loop over every sentence per term: time only a few queries
                limit = max(5, min(n_queries - WARMUP, int(5e6 // sentences)))
                options += ("--warmup", 2, "--limit", limit)
            try:
                engine = {"build": step(f"{name} build", "engine-build", *options)}
                if name != "rank-bm25":
                    engine["query"] = step(f"{name} load+search", "engine-query", *options)
            except PhaseFailed as exc:
                print(f"[{size}] {exc}", flush=True)
                engine = {"error": str(exc)}
            result["engines"][name] = engine
        result["check"] = step("agreement", "check", *common, "--out", out, "--engines", *engines)["agreement"]
        if profile:  # last: cProfile's overhead must not touch the timed phases
            step("qabot profile", "qabot-profile", *common, "--queries", queries, "--out", out)
    except (PhaseFailed, subprocess.CalledProcessError) as exc:
        print(f"[{size}] stopped: {exc}", flush=True)
        result["error"] = str(exc)
    return result


def _brief(value: dict) -> str:
    parts = []
    for key, item in value.items():
        if isinstance(item, float):
            parts.append(f"{key}={item:.3g}")
        elif isinstance(item, dict) and "p50_ms" in item:
            parts.append(f"{key} p50={item['p50_ms']:.3g} ms p95={item['p95_ms']:.3g} ms (n={item['n']})")
        elif not isinstance(item, dict | list):
            parts.append(f"{key}={item}")
    return ", ".join(parts)


HEADER = ["sentences", "engine", "build s", "build RSS MB", "load s", "query RSS MB", "disk MB",
          "timed queries", "p50 ms", "p95 ms", "p50 / qabot ask", "top-10 agree"]  # fmt: skip


def rows_for(result: dict) -> list[list[str]]:
    """Table rows of one size: qabot ask, qabot index.search, then each engine."""
    build, query = result.get("build", {}), result.get("query", {})
    label = f"{build['sentences']:,}" if "sentences" in build else f"{result['size']:,}"
    ask = query.get("ask", {}).get("p50_ms")
    check = result.get("check", {})

    def row(name: str, b: dict, q: dict, timing: dict | None, agree: str = "") -> list[str]:
        ratio = f"{timing['p50_ms'] / ask:.2f}x" if timing and ask else ""
        return [
            label, name, _num(b.get("build_s")), _num(b.get("peak_rss_mb"), 0), _num(q.get("load_s")),
            _num(q.get("peak_rss_mb"), 0), _num(b.get("disk_mb"), 0), str(timing["n"]) if timing else "",
            _num(timing and timing["p50_ms"]), _num(timing and timing["p95_ms"]), ratio, agree,
        ]  # fmt: skip

    rows = []
    if query:
        refresh = result.get("refresh", {})
        rows.append(row("qabot ask (whole path)", build, query, query["ask"]))
        if refresh:
            rows.append(row("qabot refresh (one file)", {"build_s": refresh["refresh_s"],
                                                         "peak_rss_mb": refresh["tree_peak_rss_mb"]}, {}, None))
        rows.append(row("qabot index.search", {}, {}, query["search"], "reference"))
    elif build:
        rows.append(row("qabot ask (whole path)", build, {}, None))
    for name, engine in result.get("engines", {}).items():
        if "error" in engine:
            rows.append([label, name, *[""] * (len(HEADER) - 3), engine["error"]])
            continue
        b = engine["build"]
        q = engine.get("query", {"peak_rss_mb": None, "load_s": None})
        timing = q.get("search") or b.get("search")
        agreement = check.get(name)
        agree = f"{agreement['exact']}/{agreement['queries']} (overlap {agreement['overlap']:.0%})" if agreement else ""
        if name == "rank-bm25":
            name += " (build+query in one process)"
        rows.append(row(name, b, q, timing, agree))
    return rows


def targets_for(result: dict) -> list[list[str]]:
    """The issue's targets, checked against numbers measured in this same run."""
    build, query, refresh = result.get("build", {}), result.get("query", {}), result.get("refresh", {})
    engines = result.get("engines", {})
    ask = query.get("ask", {}).get("p50_ms")

    def engine_p50(name: str) -> float | None:
        return engines.get(name, {}).get("query", {}).get("search", {}).get("p50_ms")

    bm25s, tantivy = engine_p50("bm25s"), engine_p50("tantivy")
    peaks = [v.get("tree_peak_rss_mb", v.get("peak_rss_mb")) for v in (build, query, refresh) if v]
    checks = [
        ("ask p50 <= bm25s p50 / 5", ask, bm25s and bm25s / 5, "ms"),
        ("ask p50 <= 3 x tantivy p50", ask, tantivy and 3 * tantivy, "ms"),
        ("index load < 2 s", query.get("load_s"), 2.0, "s"),
        ("peak RSS (build, query, refresh) < 2 GB", max(peaks) if peaks else None, 2048.0, "MB"),
        ("full build < 90 s", build.get("build_s"), 90.0, "s"),
        ("refresh after changing one file < 3 s", refresh.get("refresh_s"), 3.0, "s"),
    ]
    rows = []
    for name, measured, limit, unit in checks:
        verdict = "" if measured is None or limit is None else ("PASS" if measured <= limit else "MISS")
        rows.append([f"{result['size']:,}", name, f"{_num(measured)} {unit}", f"{_num(limit)} {unit}", verdict])
    return rows


def _num(value: float | None, digits: int | None = None) -> str:
    if value is None:
        return ""
    if digits is not None:
        return f"{value:.{digits}f}"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def notes(results: list[dict]) -> list[str]:
    lines = []
    for result in results:
        build, query, refresh = result.get("build", {}), result.get("query", {}), result.get("refresh", {})
        if build:
            lines.append(
                f"- {result['size']:,}: {build['articles']:,} articles, {build['sentences']:,} sentences, "
                f"{build['terms']:,} terms."
                + (f" qabot answered {query['answered']}/{query['asked']} timed questions (the rest abstained)."
                   if query else "")
                + (f" Refresh after appending a sentence to one file: {refresh['refresh_s']:.2f} s "
                   f"({refresh['sentences_added']} sentence added, found by ask: {refresh['new_sentence_found']}); "
                   f"restoring the file: {refresh['restore_s']:.2f} s; after a new mtime on every article "
                   f"(same bytes): {refresh['touch_all_s']:.2f} s (same sentences: {refresh['touch_all_same']})."
                   if refresh else "")
            )  # fmt: skip
        lines.append(f"- {result['size']:,}: 1-minute load average at the start: {result['load_average']:.2f}.")
        for problem in result.get("invalid", []):
            lines.append(f"- {result['size']:,}: INVALID: {problem}; re-run.")
        if "error" in result:
            lines.append(f"- {result['size']:,}: stopped early: {result['error']}")
    return lines


METHOD = """\
Method. Each row's phases ran in fresh single-threaded processes (OMP/OPENBLAS/MKL/RAYON_NUM_THREADS=1,
bm25s n_threads=0, tantivy writer num_threads=1, one searcher). *build s*: qabot's first
`Answerer.from_settings` on an empty cache (read, segment, analyze, index, save); for the others, indexing
qabot's own terms (already in memory) and saving. *build RSS*: ru_maxrss of the build process; for qabot, the
peak summed VmRSS of the process and any worker processes it starts (sampled every 0.1 s; shared pages
count per process, so an upper bound). *qabot refresh* row: reopening after appending a sentence to one
article (build s column) and the peak RSS of that process (open, refresh, restore). *load s*:
`Answerer.from_settings` on the warm cache / the engine's load from disk (page cache warm). *query RSS*:
ru_maxrss of the load+query process. Latency: `time.perf_counter` per query, the first 20 of the 500
make_corpus queries only warm up; p50/p95 over the rest (rank-bm25: 2 warm-up, a few queries at large
sizes). *qabot ask* is the whole `Answerer.ask(question, 10)` path on the raw question (analysis,
retrieval, spelling variants, near-duplicate grouping, context, passages); every other row, including
*qabot index.search*, starts from the question's analyzed terms (`qabot.analyze.analyze`, identical
tokens for every engine) and returns top-10 sentence ids. *top-10 agree*: on the first 100 timed queries,
an engine agrees when, rank by rank, its sentence has the same qabot BM25 score as qabot's (ties may come
in any order); overlap is the share of its top-10 scoring at least qabot's 10th best (set agreement
modulo ties at the cut-off). tantivy uses Lucene's IDF and
quantised lengths and bm25s Robertson clips negative IDF to 0, so their orderings can differ slightly."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=500, help="make_corpus queries per size (first 20 warm up)")
    parser.add_argument("--work", type=Path, default=HERE / "work", help="generated corpora and indexes")
    parser.add_argument("--engines", nargs="*", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile a qabot build and its asks (WORK/results-SIZE/profile-*.txt)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()
    if args.queries <= WARMUP:
        parser.error(f"--queries must be more than the {WARMUP} warm-up queries")
    from qabot.config import load_settings

    settings = load_settings(env={})
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    machine, digest = machine_description(), qabot_digest()
    started = time.perf_counter()
    results = [
        bench_size(args.work, size, args.queries, args.engines, args.profile, settings.k1, settings.b)
        for size in args.sizes
    ]
    if qabot_digest() != digest:  # the lead edits qabot/ often; a mixed run must not pass as one version
        results[-1].setdefault("invalid", []).append(
            f"qabot/ source changed during this run (digest {digest} at start, {qabot_digest()} at the end), "
            "so sizes may have measured different code"
        )
    rows = [row for result in results for row in rows_for(result)]
    targets = [row for result in results for row in targets_for(result)]
    target_header = ["sentences (make_corpus)", "target", "measured", "limit", "verdict"]
    print()
    print(text_table(HEADER, rows))
    print()
    print(text_table(target_header, targets))
    print("\n".join(notes(results)))
    print(f"total wall time {time.perf_counter() - started:.0f} s")
    if args.no_write:
        return
    command = "python bench/bench_retrieval.py --sizes " + " ".join(map(str, args.sizes))
    write_section("retrieval", "\n".join([
        "## Retrieval at scale (bench_retrieval.py)", "",
        f"`{command} --queries {args.queries}`, total wall time {time.perf_counter() - started:.0f} s.", "",
        *machine, "", markdown_table(HEADER, rows), "",
        "Targets from the issue, measured in the same run:", "", markdown_table(target_header, targets), "",
        *notes(results), "", METHOD,
    ]))  # fmt: skip
    print("wrote bench/RESULTS.md")


if __name__ == "__main__":
    main()
