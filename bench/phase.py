"""One benchmark phase, run by bench_retrieval.py in a fresh process so peak RSS is per phase.

    python bench/phase.py PHASE [options]

Prints its measurements as one line `RESULT {json}` on stdout. Peak RSS is
resource.getrusage(RUSAGE_SELF).ru_maxrss of this process (interpreter and
imports included).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # single thread, set before numpy/scipy load their pools

import numpy as np  # noqa: E402

WARMUP = 20  # the first WARMUP queries only warm up; every engine is timed on the same queries after them
SAMPLE = 100  # top-k lists kept for the agreement check
TOP_K = 10
DEPTHS = (3, 10)  # top-k depths timed
# Query sets: make_corpus --answerable-queries (words of a real sentence) and --queries (mid-frequency
# words, mostly unanswerable). Every engine is timed on both at both depths.
QUERY_SETS = ("answerable", "mixed")
FRESH_QUESTIONS = 3  # fresh `qabot ask` processes per query set, each also with a misspelled word


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def disk_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def timed(make: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    value = make()
    return value, time.perf_counter() - started


def measure(search: Callable, queries: list, warmup: int, limit: int | None) -> tuple[list[tuple[float, float]], list]:
    """(wall, CPU) seconds of search over queries[WARMUP:][:limit] after warming up on queries[:warmup].

    CPU time (the process's, every thread) is what a query costs when the machine is shared."""
    for query in queries[:warmup]:
        search(query)
    times, results = [], []
    for query in queries[WARMUP:][:limit]:
        wall, cpu = time.perf_counter(), time.process_time()
        result = search(query)
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
        results.append(result)
    return times, results


def stats(times: list[tuple[float, float]]) -> dict:
    """p50 and p95 of wall time, and of CPU time (cpu_p50_ms, cpu_p95_ms), in milliseconds."""
    if not times:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "cpu_p50_ms": None, "cpu_p95_ms": None}
    wall, cpu = (np.array(column) * 1e3 for column in zip(*times, strict=True))
    return {"n": len(wall), "p50_ms": float(np.percentile(wall, 50)), "p95_ms": float(np.percentile(wall, 95)),
            "cpu_p50_ms": float(np.percentile(cpu, 50)), "cpu_p95_ms": float(np.percentile(cpu, 95))}  # fmt: skip


def split_stats(times: list[tuple[float, float]], answered: list[bool]) -> dict:
    """Stats over all timed queries and over those qabot answered / abstained on (at the same depth)."""
    return {
        "all": stats(times),
        "answered": stats([t for t, a in zip(times, answered, strict=True) if a]),
        "abstained": stats([t for t, a in zip(times, answered, strict=True) if not a]),
    }


def top_lists(results: list) -> list[list[int]]:
    return [np.asarray(ids, dtype=np.int64).tolist() for ids in results[:SAMPLE]]


class TreeRSS:
    """Peak of the summed VmRSS of this process and its descendants (qabot may index in worker
    processes, which ru_maxrss of this process does not count), sampled every 0.1 s in a thread.
    Shared pages of forked workers count once per process, so this is an upper bound."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak_kb / 1024, peak_rss_mb())

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak_kb = max(self.peak_kb, sum(_vm_rss_kb(pid) for pid in _process_tree(os.getpid())))


def _process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, ()))
    return tree


def _vm_rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def report(**values: object) -> None:
    print("RESULT " + json.dumps({**values, "peak_rss_mb": peak_rss_mb(), "warnings": WARNINGS}), flush=True)


# qabot phases -----------------------------------------------------------------------------------


WARNINGS: list[str] = []  # what qabot warned about; a "rebuilding" one during a load invalidates its time


def measured_config() -> Path:
    """config/qabot.toml beside the qabot package being measured: a baseline's settings are its own."""
    import qabot

    return Path(qabot.__file__).resolve().parent.parent / "config" / "qabot.toml"


def opened(settings, warn):
    """The answerer the settings describe, through the measured code's opener (a baseline older than
    frontend.answerer_for has Answerer.from_settings)."""
    try:
        from qabot.frontend import answerer_for
    except ImportError:
        from qabot.answer import Answerer

        return Answerer.from_settings(settings, warn=warn)
    return answerer_for(settings, warn=warn)


def open_answerer(corpus: Path, cache: Path):
    from qabot.config import load_settings, replace

    def warn(message: str) -> None:
        WARNINGS.append(message)
        print(f"qabot: {message}", file=sys.stderr)

    settings = replace(load_settings(measured_config(), env={}), corpus=corpus, cache_dir=cache)
    return opened(settings, warn)


def qabot_build(args: argparse.Namespace) -> None:
    """Build on an empty cache; then export the sentences' terms for the other engines (not timed)."""
    from engines import Tokens

    tree = TreeRSS()
    answerer, seconds = timed(lambda: open_answerer(args.corpus, args.cache))
    peak = tree.stop()
    index = answerer.index
    Tokens(list(index.vocab), np.asarray(index.tok_ptr), np.asarray(index.tok_ids)).save(args.tokens)
    print("RESULT " + json.dumps({
        "build_s": seconds, "peak_rss_mb": peak, "disk_mb": disk_mb(args.cache),
        "sentences": index.n_sentences, "terms": len(index.vocab), "articles": len(index.docs), "warnings": WARNINGS,
    }), flush=True)  # fmt: skip


def qabot_query(args: argparse.Namespace) -> None:
    """Load (warm cache); time the whole Answerer.ask path and bare index.search on both query sets at
    each depth, answered and abstained questions apart; save analyzed queries and which were answered."""
    from qabot.analyze import analyze

    answerer, load_s = timed(lambda: open_answerer(args.corpus, args.cache))
    index = answerer.index
    values: dict = {"load_s": load_s}
    for name, path in zip(QUERY_SETS, (args.answerable, args.queries), strict=True):
        queries = path.read_text(encoding="utf-8").splitlines()
        terms = [analyze(query) for query in queries]
        (args.out / f"terms-{name}.json").write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")
        for k in DEPTHS:

            def bare(query_terms: list[str], k: int = k) -> np.ndarray:
                counts = Counter(index.term_ids[t] for t in query_terms if t in index.term_ids)
                return index.search([(term_id, float(n)) for term_id, n in counts.items()], k)[0]

            ask_times, answers = measure(lambda q, k=k: answerer.ask(q, k), queries, WARMUP, None)
            answered = [not answer.abstained for answer in answers]
            (args.out / f"answered-{name}-{k}.json").write_text(json.dumps(answered), encoding="utf-8")
            search_times, hits = measure(bare, terms, WARMUP, None)
            (args.out / f"qabot-{name}-{k}.json").write_text(json.dumps(top_lists(hits)), encoding="utf-8")
            values[f"{name}-{k}"] = {"ask": split_stats(ask_times, answered), "search": split_stats(search_times,
                                                                                                   answered)}
            values[f"{name}-{k}"]["answered"] = sum(answered)
            if name == "answerable" and k == DEPTHS[0]:
                values["phrase"] = phrase_stats(answerer, queries, answers)
    report(**values)


def phrase_stats(answerer, queries: list[str], answers: list) -> dict | None:
    """Time of the answer phrase alone (answer_phrase over the first passage, as Answerer.ask calls it)
    on the timed questions the answerer answered; None for code that has no phrase."""
    try:
        from qabot.answer import clean_question
        from qabot.phrase import answer_phrase
    except ImportError:
        return None
    asked = [(clean_question(query), answer) for query, answer in zip(queries[WARMUP:], answers, strict=True)
             if not answer.abstained]  # fmt: skip
    times, _ = measure(lambda pair: answer_phrase(pair[0], pair[1].passages[0], pair[1].confidence, answerer.index),
                       asked, min(WARMUP, len(asked)), None)  # fmt: skip
    return stats(times)


def qabot_fresh(args: argparse.Namespace) -> None:
    """Wall time of whole `qabot ask "..."` processes on a built index, page cache warm: the first few
    questions of each set, each also with its longest word misspelled (so spelling variants run).
    The measured package's bytecode is compiled first, as an installed package's is."""
    import compileall
    import subprocess

    import qabot

    compileall.compile_dir(Path(qabot.__file__).parent, quiet=1)
    command = [str(Path(sys.executable).parent / "qabot"), "ask"]
    env = {**os.environ, "QABOT_CORPUS": str(args.corpus), "QABOT_CACHE_DIR": str(args.cache),
           "QABOT_CONFIG": str(measured_config())}  # fmt: skip
    questions = []
    for path in (args.answerable, args.queries):
        lines = path.read_text(encoding="utf-8").splitlines()[:FRESH_QUESTIONS]
        questions += [question for line in lines for question in (line, misspelled(line))]
    subprocess.run([*command, questions[0]], env=env, capture_output=True, check=True)  # warm the page cache
    runs = []
    for at, question in enumerate(questions):
        before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        done = subprocess.run([*command, question], env=env, capture_output=True, text=True)
        seconds, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode not in (0, 1):
            raise SystemExit(f"qabot ask failed ({done.returncode}): {done.stderr.strip()}")
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        runs.append({"question": question, "seconds": seconds, "cpu_seconds": cpu, "misspelled": at % 2 == 1})
    walls, cpus = [run["seconds"] for run in runs], [run["cpu_seconds"] for run in runs]
    report(fresh=runs, fresh_median_s=float(np.median(walls)), fresh_max_s=max(walls),
           fresh_cpu_median_s=float(np.median(cpus)), fresh_cpu_max_s=max(cpus))  # fmt: skip


def misspelled(question: str) -> str:
    """The question with the middle letter of its longest word doubled."""
    words = question.split()
    longest = max(range(len(words)), key=lambda i: len(words[i].strip("?")))
    word = words[longest]
    middle = len(word.strip("?")) // 2
    words[longest] = word[:middle] + word[middle] + word[middle:]
    return " ".join(words)


PROBE = "\nThe benchmark appended this sentence about qabotrefreshprobe.\n"


@contextmanager
def appended_sentence(corpus: Path) -> Iterator[Path]:
    """Append a sentence to the corpus's first article; restore the file's bytes and mtime afterwards."""
    article = min(corpus.rglob("*.txt"))
    original, stat = article.read_bytes(), article.stat()
    try:
        with open(article, "a", encoding="utf-8") as handle:
            handle.write(PROBE)
        yield article
    finally:
        article.write_bytes(original)
        os.utime(article, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def qabot_refresh(args: argparse.Namespace) -> None:
    """Append a sentence to one article and reopen (timed); then restore the file and reopen again;
    then give every article a new mtime (same bytes, as a checkout or copy does) and reopen."""
    tree = TreeRSS()
    answerer = open_answerer(args.corpus, args.cache)
    before = answerer.index.n_sentences
    with appended_sentence(args.corpus):
        answerer, refresh_s = timed(lambda: open_answerer(args.corpus, args.cache))
        added = answerer.index.n_sentences - before
        found = not answerer.ask("qabotrefreshprobe", 1).abstained
    _, restore_s = timed(lambda: open_answerer(args.corpus, args.cache))
    now = time.time()
    for path in args.corpus.rglob("*.txt"):
        os.utime(path, (now, now))
    touched, touch_all_s = timed(lambda: open_answerer(args.corpus, args.cache))
    report(
        refresh_s=refresh_s, restore_s=restore_s, sentences_added=added, new_sentence_found=found,
        touch_all_s=touch_all_s, touch_all_same=touched.index.n_sentences == before, tree_peak_rss_mb=tree.stop(),
    )  # fmt: skip


def qabot_profile(args: argparse.Namespace) -> None:
    """cProfile of a build on an empty cache, of Answerer.ask over the timed queries, and of a refresh."""
    import cProfile
    import pstats
    import shutil

    args.out.mkdir(parents=True, exist_ok=True)

    def dump(profiler: cProfile.Profile, name: str) -> None:
        path = args.out / f"profile-{name}.txt"
        with open(path, "w", encoding="utf-8") as handle:
            for key in ("tottime", "cumulative"):
                pstats.Stats(profiler, stream=handle).sort_stats(key).print_stats(30)
        print(f"wrote {path}", file=sys.stderr)

    cache = args.out / "profile-cache"
    shutil.rmtree(cache, ignore_errors=True)
    profiler = cProfile.Profile()
    answerer = profiler.runcall(open_answerer, args.corpus, cache)
    dump(profiler, "build")
    shutil.rmtree(cache, ignore_errors=True)
    queries = args.answerable.read_text(encoding="utf-8").splitlines()
    for query in queries[:WARMUP]:
        answerer.ask(query, TOP_K)
    profiler = cProfile.Profile()
    profiler.enable()
    for query in queries[WARMUP:]:
        answerer.ask(query, TOP_K)
    profiler.disable()
    dump(profiler, "ask")
    stages = stage_times(answerer, queries)
    (args.out / "profile-stages.txt").write_text(stages, encoding="utf-8")
    print(stages, file=sys.stderr)
    with appended_sentence(args.corpus):
        profiler = cProfile.Profile()
        profiler.runcall(open_answerer, args.corpus, args.cache)
        dump(profiler, "refresh")
    open_answerer(args.corpus, args.cache)  # back to the unchanged corpus
    report()


STAGES = ("Answerer._query_terms", "Answerer.rank", "Answerer._passages", "Index.search", "Index.term_weights")


def stage_times(answerer, queries: list[str]) -> str:
    """Wall time of Answerer.ask's stages (methods wrapped with perf_counter, no profiler overhead)."""
    import qabot.answer
    import qabot.index

    spent: Counter[str] = Counter()
    originals = []
    for stage in STAGES:
        owner = qabot.answer.Answerer if stage.startswith("Answerer") else qabot.index.Index
        name = stage.split(".")[1]
        method = getattr(owner, name, None)
        if method is None:
            continue

        def wrapped(*a, _method=method, _stage=stage, **kw):
            started = time.perf_counter()
            try:
                return _method(*a, **kw)
            finally:
                spent[_stage] += time.perf_counter() - started

        originals.append((owner, name, method))
        setattr(owner, name, wrapped)
    try:
        timed_queries = queries[WARMUP:]
        started = time.perf_counter()
        for query in timed_queries:
            answerer.ask(query, TOP_K)
        total = time.perf_counter() - started
    finally:
        for owner, name, method in originals:
            setattr(owner, name, method)
    lines = [f"Answerer.ask stages over {len(timed_queries)} questions (wall time; nested stages overlap):",
             f"  {'ask (whole path)':<28}{total / len(timed_queries) * 1e3:8.3f} ms/question  100%"]
    for stage in STAGES:
        if stage in spent:
            share = spent[stage] / total
            lines.append(f"  {stage:<28}{spent[stage] / len(timed_queries) * 1e3:8.3f} ms/question  {share:4.0%}")
    return "\n".join(lines) + "\n"


# other engines ------------------------------------------------------------------------------------


def engine_build(args: argparse.Namespace) -> None:
    """Build (and save) one engine from the exported tokens; rank-bm25, not persistent, is also queried here."""
    from engines import ENGINES, Tokens

    tokens = Tokens.load(args.tokens)
    engine = ENGINES[args.engine]()
    _, build_s = timed(lambda: engine.build(tokens, args.k1, args.b, args.folder))
    values: dict = {"build_s": build_s}
    if engine.persistent:
        values["disk_mb"] = disk_mb(args.folder)
    else:
        values.update(_query(engine, args))
    report(**values)


def engine_query(args: argparse.Namespace) -> None:
    """Load one saved engine and time its searches on the analyzed queries."""
    from engines import ENGINES

    engine = ENGINES[args.engine]()
    _, load_s = timed(lambda: engine.load(args.folder))
    report(load_s=load_s, **_query(engine, args))


def _query(engine, args: argparse.Namespace) -> dict:
    """Search times on both query sets at each depth, also over the questions qabot answered / abstained on."""
    values = {}
    for name in QUERY_SETS:
        terms = json.loads((args.out / f"terms-{name}.json").read_text(encoding="utf-8"))
        for k in DEPTHS:
            times, hits = measure(lambda t, k=k: engine.search(t, k), terms, args.warmup, args.limit)
            answered = json.loads((args.out / f"answered-{name}-{k}.json").read_text(encoding="utf-8"))
            values[f"{name}-{k}"] = {"search": split_stats(times, answered[: len(times)])}
            (args.out / f"{engine.name}-{name}-{k}.json").write_text(json.dumps(top_lists(hits)), encoding="utf-8")
    return values


def check(args: argparse.Namespace) -> None:
    """Agreement of each engine's top-10 with qabot's index.search, judged by qabot's own BM25 scores.

    A query agrees when, rank by rank, the engine's sentence has the same qabot score as qabot's
    (so ties may come in any order); overlap is the share of the engine's top-10 that scores at
    least qabot's k-th best (the same set modulo ties at the cut-off).
    """
    answerer = open_answerer(args.corpus, args.cache)
    terms = json.loads((args.out / "terms-answerable.json").read_text(encoding="utf-8"))[WARMUP:]
    expected = json.loads((args.out / f"qabot-answerable-{TOP_K}.json").read_text(encoding="utf-8"))
    agreement = {}
    for name in args.engines:
        path = args.out / f"{name}-answerable-{TOP_K}.json"
        if not path.exists():
            continue
        exact, overlap, n = 0, 0.0, 0
        for query_terms, want, got in zip(terms, expected, json.loads(path.read_text("utf-8")), strict=False):
            if not want:
                continue
            scores = answerer.index.score_all(query_terms)
            n += 1
            got = got[: len(want)]
            exact += len(got) == len(want) and bool(np.allclose(scores[got], scores[want], rtol=1e-5, atol=1e-9))
            overlap += np.count_nonzero(scores[got] >= scores[want[-1]] * (1 - 1e-5)) / len(want)
        agreement[name] = {"queries": n, "exact": exact, "overlap": overlap / n if n else 0.0}
    report(agreement=agreement)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=PHASES)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--queries", type=Path, help="make_corpus --queries (mostly unanswerable)")
    parser.add_argument("--answerable", type=Path, help="make_corpus --answerable-queries")
    parser.add_argument("--tokens", type=Path, help="folder of the exported qabot terms")
    parser.add_argument("--out", type=Path, help="folder for analyzed queries, top-k lists and profiles")
    parser.add_argument("--engine")
    parser.add_argument("--engines", nargs="*", default=[])
    parser.add_argument("--folder", type=Path, help="where an engine saves its index")
    parser.add_argument("--warmup", type=int, default=WARMUP)
    parser.add_argument("--limit", type=int, help="at most this many timed queries")
    parser.add_argument("--k1", type=float, default=1.2)
    parser.add_argument("--b", type=float, default=0.75)
    args = parser.parse_args()
    # A terminated phase still runs its finally blocks (the refresh phase must restore the article).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    PHASES[args.phase](args)


PHASES = {
    "qabot-build": qabot_build, "qabot-query": qabot_query, "qabot-fresh": qabot_fresh, "qabot-refresh": qabot_refresh,
    "qabot-profile": qabot_profile, "engine-build": engine_build, "engine-query": engine_query, "check": check,
}  # fmt: skip

if __name__ == "__main__":
    main()
