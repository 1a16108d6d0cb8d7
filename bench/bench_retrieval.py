"""qabot's scale benchmark: qabot against rank-bm25, bm25s, tantivy and a scipy baseline, side by side.

    python bench/bench_retrieval.py --sizes 100000 1000000 [--queries 500] [--work bench/work]
                                    [--baseline SRC]

For each size it generates (once; cached) a corpus, answerable questions and
mostly unanswerable queries with ../shared/bench/make_corpus.py, then runs every
phase in a fresh process (so peak RSS is per phase): qabot build on an empty
cache, load + questions (answered and abstained apart, top-3 and top-10), whole
fresh `qabot ask` processes, refresh after appending a sentence to one file; each
other engine's build from qabot's own terms, load and queries; an agreement check
of top-10 lists. `--baseline SRC` also measures an older qabot (its package
folder under SRC, put first on PYTHONPATH) in the same run. Prints the tables and
writes them, with the machine description, to bench/RESULTS.md.
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
DEV_SET = HERE.parent.parent / "shared" / "eval" / "dev.jsonl"
SEEDS = HERE.parent / "seeds"
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


def run_phase(phase: str, *options: object, source: Path | None = None) -> dict:
    """Run bench/phase.py PHASE in a fresh single-threaded process and return its RESULT; with
    `source`, the qabot package under that folder is imported instead of this one."""
    command = [sys.executable, str(PHASE), phase, *map(str, options)]
    env = {**os.environ, **SINGLE_THREAD}
    if source is not None:
        env["PYTHONPATH"] = str(source)
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


def ensure_corpus(work: Path, size: int, n_queries: int) -> tuple[Path, Path, Path]:
    """The corpus folder, queries file and answerable questions file for size, generated once
    (make_corpus is deterministic)."""
    corpus, queries = work / f"corpus-{size}", work / f"queries-{size}-{n_queries}.txt"
    answerable = work / f"answerable-{size}-{n_queries}.txt"
    marker = work / f"corpus-{size}.done"
    if marker.exists() and queries.exists() and answerable.exists():
        _remove_probe(corpus)
        return corpus, queries, answerable
    shutil.rmtree(corpus, ignore_errors=True)
    print(f"[{size}] generating corpus with {MAKE_CORPUS.name} ...", flush=True)
    subprocess.run(
        [sys.executable, str(MAKE_CORPUS), "--out", str(corpus), "--sentences", str(size),
         "--queries", str(queries), "--n-queries", str(n_queries), "--answerable-queries", str(answerable)],
        check=True,
    )  # fmt: skip
    marker.write_text("ok\n", encoding="utf-8")
    return corpus, queries, answerable


def seeds_questions(work: Path) -> tuple[Path, Path]:
    """The dev set's answerable and unanswerable questions, one a line, for fresh processes on the seeds."""
    rows = [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    paths = work / "seeds-answerable.txt", work / "seeds-unanswerable.txt"
    for path, wanted in zip(paths, (True, False), strict=True):
        path.write_text("".join(f"{row['question']}\n" for row in rows if row["answerable"] is wanted), "utf-8")
    return paths


def _remove_probe(corpus: Path) -> None:
    """Undo a refresh probe left behind by a killed run, so the corpus is make_corpus's again."""
    from phase import PROBE

    article = min(corpus.rglob("*.txt"))
    text = article.read_text(encoding="utf-8")
    if text.endswith(PROBE):
        article.write_text(text[: -len(PROBE)], encoding="utf-8")
        print(f"removed a leftover refresh probe from {article}", flush=True)


def bench_size(
    work: Path, size: int, n_queries: int, engines: list[str], profile: bool, k1: float, b: float,
    baseline: Path | None,
) -> dict:
    """Every phase for one corpus size; returns what finished (and the first error, if any)."""
    corpus, queries, answerable = ensure_corpus(work, size, n_queries)
    cache, tokens, out = work / f"qabot-cache-{size}", work / f"tokens-{size}", work / f"results-{size}"
    before_cache, before_out = work / f"qabot-before-cache-{size}", out / "before"
    for folder in (cache, tokens, out, before_cache):
        shutil.rmtree(folder, ignore_errors=True)
    before_out.mkdir(parents=True)
    result: dict = {"size": size, "engines": {}, "load_average": os.getloadavg()[0]}

    def step(label: str, phase: str, *options: object, source: Path | None = None) -> dict:
        started = time.perf_counter()
        value = run_phase(phase, *options, source=source)
        print(f"[{size}] {label}: {_brief(value)} ({time.perf_counter() - started:.0f} s wall)", flush=True)
        if phase != "qabot-build" and any("rebuilding" in warning for warning in value.get("warnings", ())):
            result.setdefault("invalid", []).append(f"{label} rebuilt the index (qabot's code or format changed?)")
        return value

    try:
        common = ("--corpus", corpus, "--cache", cache)
        asked = ("--queries", queries, "--answerable", answerable)
        result["build"] = step("qabot build", "qabot-build", *common, "--tokens", tokens)
        result["query"] = step("qabot load+ask", "qabot-query", *common, *asked, "--out", out)
        result["fresh"] = step("qabot fresh ask", "qabot-fresh", *common, *asked)
        result["refresh"] = step("qabot refresh", "qabot-refresh", *common)
        if baseline:
            older = ("--corpus", corpus, "--cache", before_cache)
            result["before"] = {
                "build": step("qabot before: build", "qabot-build", *older, "--tokens", before_out / "tokens",
                              source=baseline),
                "query": step("qabot before: load+ask", "qabot-query", *older, *asked, "--out", before_out,
                              source=baseline),
                "fresh": step("qabot before: fresh ask", "qabot-fresh", *older, *asked, source=baseline),
            }  # fmt: skip
            shutil.rmtree(before_cache, ignore_errors=True)
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
            step("qabot profile", "qabot-profile", *common, *asked, "--out", out)
    except (PhaseFailed, subprocess.CalledProcessError) as exc:
        print(f"[{size}] stopped: {exc}", flush=True)
        result["error"] = str(exc)
    return result


def bench_seeds(work: Path, baseline: Path | None) -> dict:
    """Fresh `qabot ask` processes on the seeds corpus (dev questions, each also misspelled)."""
    answerable, unanswerable = seeds_questions(work)
    result: dict = {}
    for label, source in (("now", None), ("before", baseline)):
        if label == "before" and source is None:
            continue
        cache = work / f"seeds-cache-{label}"
        shutil.rmtree(cache, ignore_errors=True)
        options = ("--corpus", SEEDS, "--cache", cache, "--queries", unanswerable, "--answerable", answerable)
        try:
            result[label] = run_phase("qabot-fresh", *options, source=source)
        except PhaseFailed as exc:
            result[label] = {"error": str(exc)}
        print(f"[seeds] fresh ask ({label}): {_brief(result[label])}", flush=True)
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
          "answered top-3 p50 / p95 ms", "answered top-10 p50 / p95 ms", "abstained top-10 p50 / p95 ms",
          "answered top-3 p50 / qabot ask", "top-10 agree"]  # fmt: skip
FRESH_HEADER = ["corpus", "qabot", "processes", "median s", "slowest s", "slowest with a misspelled word s",
                "CPU median s", "CPU slowest s"]  # fmt: skip
CPU_HEADER = ["sentences", "engine", "answered top-3 CPU p50 / p95 ms", "answered top-10 CPU p50 / p95 ms",
              "abstained top-10 CPU p50 / p95 ms"]  # fmt: skip


def _timing(value: dict, timer: str, query_set: str, k: int, subset: str) -> dict | None:
    """p50/p95 of one timer (ask or search) on one query set, depth and subset (answered/abstained)."""
    found = value.get(f"{query_set}-{k}", {}).get(timer, {}).get(subset)
    return found if found and found.get("n") else None


def _pair(timing: dict | None, clock: str = "") -> str:
    return f"{_num(timing[clock + 'p50_ms'])} / {_num(timing[clock + 'p95_ms'])}" if timing else ""


PHRASE_ROW = "qabot answer phrase alone (part of ask; answered top-3 only)"


def _phrase_timing(query: dict) -> dict:
    """The phrase's timing where _timing finds it: the answered top-3 questions."""
    return {"answerable-3": {"phrase": {"answered": query["phrase"]}}}


def cpu_rows(result: dict) -> list[list[str]]:
    """CPU time of the same timed questions as rows_for (what a query costs on a shared machine)."""
    build = result.get("build", {})
    label = f"{build['sentences']:,}" if "sentences" in build else f"{result['size']:,}"
    before = result.get("before", {}).get("query", {})
    timed_rows = [("qabot ask (whole path)", result.get("query", {}), "ask"),
                  ("qabot index.search", result.get("query", {}), "search"),
                  ("qabot before: ask (whole path)", before, "ask"), ("qabot before: index.search", before, "search")]
    if result.get("query", {}).get("phrase"):
        timed_rows.insert(2, (PHRASE_ROW, _phrase_timing(result["query"]), "phrase"))
    timed_rows += [(name, engine.get("query", engine.get("build", {})), "search")
                   for name, engine in result.get("engines", {}).items() if "error" not in engine]  # fmt: skip
    return [
        [label, name, _pair(_timing(q, timer, "answerable", 3, "answered"), "cpu_"),
         _pair(_timing(q, timer, "answerable", 10, "answered"), "cpu_"),
         _pair(_timing(q, timer, "mixed", 10, "abstained"), "cpu_")]
        for name, q, timer in timed_rows if q
    ]  # fmt: skip


def rows_for(result: dict) -> list[list[str]]:
    """Table rows of one size: qabot ask, qabot index.search (now and before), then each engine.

    *answered*: the answerable questions qabot (now) answered at that depth; *abstained*: the mostly
    unanswerable queries it abstained on. Every row is timed on exactly those questions.
    """
    build, query = result.get("build", {}), result.get("query", {})
    label = f"{build['sentences']:,}" if "sentences" in build else f"{result['size']:,}"
    ask = _timing(query, "ask", "answerable", 3, "answered")
    check = result.get("check", {})

    def row(name: str, b: dict, q: dict, timer: str, agree: str = "") -> list[str]:
        top3 = _timing(q, timer, "answerable", 3, "answered")
        ratio = f"{top3['p50_ms'] / ask['p50_ms']:.2f}x" if top3 and ask else ""
        return [
            label, name, _num(b.get("build_s")), _num(b.get("peak_rss_mb"), 0), _num(q.get("load_s")),
            _num(q.get("peak_rss_mb"), 0), _num(b.get("disk_mb"), 0), _pair(top3),
            _pair(_timing(q, timer, "answerable", 10, "answered")),
            _pair(_timing(q, timer, "mixed", 10, "abstained")), ratio, agree,
        ]  # fmt: skip

    rows = []
    if query:
        refresh = result.get("refresh", {})
        rows.append(row("qabot ask (whole path)", build, query, "ask"))
        if refresh:
            rows.append(row("qabot refresh (one file)", {"build_s": refresh["refresh_s"],
                                                         "peak_rss_mb": refresh["tree_peak_rss_mb"]}, {}, "ask"))
        rows.append(row("qabot index.search", {}, query, "search", "reference"))
        if query.get("phrase"):
            rows.append(row(PHRASE_ROW, {}, _phrase_timing(query), "phrase"))
    elif build:
        rows.append(row("qabot ask (whole path)", build, {}, "ask"))
    before = result.get("before", {})
    if before.get("query"):
        rows.append(row("qabot before: ask (whole path)", before["build"], before["query"], "ask"))
        rows.append(row("qabot before: index.search", {}, before["query"], "search"))
    for name, engine in result.get("engines", {}).items():
        if "error" in engine:
            rows.append([label, name, *[""] * (len(HEADER) - 3), engine["error"]])
            continue
        b = engine["build"]
        q = engine.get("query", {"peak_rss_mb": None, "load_s": None, **b})
        agreement = check.get(name)
        agree = f"{agreement['exact']}/{agreement['queries']} (overlap {agreement['overlap']:.0%})" if agreement else ""
        if name == "rank-bm25":
            name += " (build+query in one process, few queries)"
        rows.append(row(name, b, q, "search", agree))
    return rows


def fresh_rows(results: list[dict], seeds: dict) -> list[list[str]]:
    rows = []
    named = [(f"{r['build']['sentences']:,} sentences" if "sentences" in r.get("build", {}) else str(r["size"]),
              {"now": r.get("fresh"), "before": r.get("before", {}).get("fresh")}) for r in results]  # fmt: skip
    for corpus, runs in [*named, ("seeds (dev questions)", seeds)]:
        for label in ("now", "before"):
            fresh = runs.get(label)
            if not fresh or "fresh" not in fresh:
                continue
            misspelled = [run["seconds"] for run in fresh["fresh"] if run["misspelled"]]
            rows.append([corpus, label, str(len(fresh["fresh"])), _num(fresh["fresh_median_s"]),
                         _num(fresh["fresh_max_s"]), _num(max(misspelled, default=None)),
                         _num(fresh.get("fresh_cpu_median_s")), _num(fresh.get("fresh_cpu_max_s"))])  # fmt: skip
    return rows


def targets_for(result: dict, seeds: dict) -> list[list[str]]:
    """The issue's bars, checked against numbers measured in this same run."""
    build, query, refresh = result.get("build", {}), result.get("query", {}), result.get("refresh", {})
    engines = result.get("engines", {})
    ask = _timing(query, "ask", "answerable", 3, "answered") or {}

    def engine_p50(name: str) -> float | None:
        timing = _timing(engines.get(name, {}).get("query", {}), "search", "answerable", 3, "answered")
        return timing and timing["p50_ms"]

    def engine_cpu_p50(name: str) -> float | None:
        timing = _timing(engines.get(name, {}).get("query", {}), "search", "answerable", 3, "answered")
        return timing and timing["cpu_p50_ms"]

    bm25s, tantivy = engine_p50("bm25s"), engine_p50("tantivy")
    bm25s_cpu, tantivy_cpu = engine_cpu_p50("bm25s"), engine_cpu_p50("tantivy")
    fresh = result.get("fresh", {})
    peaks = [v.get("tree_peak_rss_mb", v.get("peak_rss_mb")) for v in (build, query, refresh) if v]
    fresh_limit = 0.6 if result["size"] >= 1_000_000 else None
    before = _timing(result.get("before", {}).get("query", {}), "ask", "answerable", 3, "answered") or {}
    phrase = query.get("phrase") or {}
    ask_p50 = ask.get("p50_ms")
    checks = [
        ("ask p50, top-3, answered <= bm25s p50 / 5", ask_p50, bm25s and bm25s / 5, "ms"),
        ("ask p50, top-3, answered <= tantivy p50", ask_p50, tantivy, "ms"),
        ("ask p50, top-3, answered <= 1.1 x before's", ask_p50, before.get("p50_ms") and before["p50_ms"] * 1.1, "ms"),
        ("ask p95, top-3, answered <= bm25s p50", ask.get("p95_ms"), bm25s, "ms"),
        ("ask p95, top-3, answered <= 3 x its p50", ask.get("p95_ms"), ask_p50 and ask_p50 * 3, "ms"),
        ("answer phrase alone p50 (answered, top-3) <= 1 ms", phrase.get("p50_ms"), 1.0, "ms"),
        ("CPU: ask p50, top-3, answered <= bm25s p50 / 5", ask.get("cpu_p50_ms"), bm25s_cpu and bm25s_cpu / 5, "ms"),
        ("CPU: ask p50, top-3, answered <= tantivy p50", ask.get("cpu_p50_ms"), tantivy_cpu, "ms"),
        ("CPU: ask p95, top-3, answered <= bm25s p50", ask.get("cpu_p95_ms"), bm25s_cpu, "ms"),
        ("fresh `qabot ask`, slowest <= 0.6 s", fresh.get("fresh_max_s"), fresh_limit, "s"),
        ("CPU: fresh `qabot ask`, slowest <= 0.6 s", fresh.get("fresh_cpu_max_s"), fresh_limit, "s"),
        ("index load < 2 s", query.get("load_s"), 2.0, "s"),
        ("peak RSS (build, query, refresh) < 2 GB", max(peaks) if peaks else None, 2048.0, "MB"),
        ("full build < 90 s", build.get("build_s"), 90.0, "s"),
        ("refresh after changing one file < 3 s", refresh.get("refresh_s"), 3.0, "s"),
    ]
    rows = []
    for name, measured, limit, unit in checks:
        if limit is None and "fresh" in name:
            continue
        verdict = "" if measured is None or limit is None else ("PASS" if measured <= limit else "MISS")
        rows.append([f"{result['size']:,}", name, f"{_num(measured)} {unit}", f"{_num(limit)} {unit}", verdict])
    return rows


def seeds_target(seeds: dict) -> list[list[str]]:
    rows = []
    for name, key in (("fresh `qabot ask`, slowest <= 0.3 s", "fresh_max_s"),
                      ("CPU: fresh `qabot ask`, slowest <= 0.3 s", "fresh_cpu_max_s")):  # fmt: skip
        slowest = seeds.get("now", {}).get(key)
        verdict = "" if slowest is None else ("PASS" if slowest <= 0.3 else "MISS")
        rows.append(["seeds", name, f"{_num(slowest)} s", "0.3 s", verdict])
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
            answered = ", ".join(
                f"{query[f'{name}-{k}']['answered']}/{query[f'{name}-{k}']['ask']['all']['n']} {name} at top-{k}"
                for name in ("answerable", "mixed") for k in (3, 10) if f"{name}-{k}" in query
            )  # fmt: skip
            lines.append(
                f"- {result['size']:,}: {build['articles']:,} articles, {build['sentences']:,} sentences, "
                f"{build['terms']:,} terms." + (f" qabot answered {answered} (timed questions)." if query else "")
                + (f" Refresh after appending a sentence to one file: {refresh['refresh_s']:.2f} s "
                   f"({refresh['sentences_added']} sentence added, found by ask: {refresh['new_sentence_found']}); "
                   f"restoring the file: {refresh['restore_s']:.2f} s; after a new mtime on every article "
                   f"(same bytes): {refresh['touch_all_s']:.2f} s (same sentences: {refresh['touch_all_same']})."
                   if refresh else "")
            )  # fmt: skip
        for run in result.get("fresh", {}).get("fresh", []):
            lines.append(f"- {result['size']:,}: fresh `qabot ask {run['question']!r}`: {run['seconds']:.2f} s")
        lines.append(f"- {result['size']:,}: 1-minute load average at the start: {result['load_average']:.2f}.")
        for problem in result.get("invalid", []):
            lines.append(f"- {result['size']:,}: INVALID: {problem}; re-run.")
        if "error" in result:
            lines.append(f"- {result['size']:,}: stopped early: {result['error']}")
    return lines


METHOD = """\
Method. Each row's phases ran in fresh single-threaded processes (OMP/OPENBLAS/MKL/NUMBA/RAYON_NUM_THREADS=1,
bm25s n_threads=0, tantivy writer num_threads=1, one searcher). Questions: make_corpus `--answerable-queries`
(3-6 content words of a real sentence) and `--queries` (mid-frequency words, mostly unanswerable), 500 each;
the first 20 of each only warm up. *answered top-k*: the answerable questions that qabot (now) answered at
top-k; *abstained top-10*: the `--queries` questions it abstained on at top-10; every row is timed on exactly
those questions (p50 / p95 of `time.perf_counter` per query; the CPU table: of `time.process_time`). *qabot
ask* is the whole `Answerer.ask(question, k)` path on the raw question (analysis, retrieval, spelling
variants, ranking, near-duplicate grouping, context, passages); every other row, including *qabot
index.search*, starts from the question's analyzed terms (`qabot.analyze.analyze`, identical tokens for every
engine) and returns the top-k sentence ids. *qabot before*: the same phases run on the older code given by
`--baseline` (its own index, same corpus, same machine, same run). *build s*: qabot's first
`frontend.answerer_for` on an empty cache (read, segment, analyze, index, save); for the others, indexing
qabot's own terms (already in memory) and saving. *build RSS*: for qabot, the peak summed VmRSS of the process
and its workers (sampled every 0.1 s; an upper bound); for the others ru_maxrss. *qabot refresh* row:
reopening after appending a sentence to one article, and the peak RSS of that process. *load s*:
`frontend.answerer_for` on the warm cache / the engine's load. *query RSS*: ru_maxrss of the load+query
process. *Fresh processes*: wall time of whole `qabot ask "question"` processes (interpreter start, imports,
index load, answer, output) on a built index with the page cache warm (one untimed run first), and their CPU
time (user + system, from the parent's RUSAGE_CHILDREN): the first 3 questions of each set, each also with the
middle letter of its longest word doubled, so spelling variants are searched. *top-10 agree*: on the first 100
timed answerable questions, an engine agrees when, rank by rank, its sentence has the same qabot BM25 score as
qabot's (ties may come in any order); overlap is the share of its top-10 scoring at least qabot's 10th best.
tantivy uses Lucene's IDF and quantised lengths and bm25s Robertson clips negative IDF to 0, so their
orderings can differ slightly. The machine is shared (see the load average): compare rows of one run, not
across runs."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=500, help="make_corpus queries per size (first 20 warm up)")
    parser.add_argument("--work", type=Path, default=HERE / "work", help="generated corpora and indexes")
    parser.add_argument("--engines", nargs="*", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--baseline", type=Path, help="folder holding an older qabot package to measure too")
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
    baseline = args.baseline.resolve() if args.baseline else None
    machine, digest = machine_description(), qabot_digest()
    started = time.perf_counter()
    results = [
        bench_size(args.work, size, args.queries, args.engines, args.profile, settings.k1, settings.b, baseline)
        for size in args.sizes
    ]
    seeds = bench_seeds(args.work, baseline)
    if qabot_digest() != digest:  # the lead edits qabot/ often; a mixed run must not pass as one version
        results[-1].setdefault("invalid", []).append(
            f"qabot/ source changed during this run (digest {digest} at start, {qabot_digest()} at the end), "
            "so sizes may have measured different code"
        )
    rows = [row for result in results for row in rows_for(result)]
    targets = [row for result in results for row in targets_for(result, seeds)] + seeds_target(seeds)
    target_header = ["sentences (make_corpus)", "target", "measured", "limit", "verdict"]
    fresh = fresh_rows(results, seeds)
    cpu = [row for result in results for row in cpu_rows(result)]
    print()
    print(text_table(HEADER, rows))
    print()
    print(text_table(CPU_HEADER, cpu))
    print()
    print(text_table(FRESH_HEADER, fresh))
    print()
    print(text_table(target_header, targets))
    print("\n".join(notes(results)))
    print(f"total wall time {time.perf_counter() - started:.0f} s")
    if args.no_write:
        return
    command = "python bench/bench_retrieval.py --sizes " + " ".join(map(str, args.sizes))
    if baseline:
        shown = baseline.relative_to(HERE.parent) if baseline.is_relative_to(HERE.parent) else baseline
        command += f" --baseline {shown}"
    write_section("retrieval", "\n".join([
        "## Retrieval at scale (bench_retrieval.py)", "",
        f"`{command} --queries {args.queries}`, total wall time {time.perf_counter() - started:.0f} s.", "",
        *machine, *([f"- qabot before: {_baseline_name(baseline)}"] if baseline else []), "",
        markdown_table(HEADER, rows), "",
        "CPU time of the same questions (the machine is shared; CPU time is what a query costs):", "",
        markdown_table(CPU_HEADER, cpu), "",
        "Fresh `qabot ask` processes on a built index (page cache warm):", "", markdown_table(FRESH_HEADER, fresh), "",
        "Targets from the issue, measured in the same run:", "", markdown_table(target_header, targets), "",
        *notes(results), "", METHOD,
    ]))  # fmt: skip
    print("wrote bench/RESULTS.md")


def _baseline_name(baseline: Path) -> str:
    """What the baseline folder says it is (a BASELINE file beside the package), or its path."""
    marker = baseline / "BASELINE"
    return marker.read_text(encoding="utf-8").strip() if marker.exists() else str(baseline)


if __name__ == "__main__":
    main()
