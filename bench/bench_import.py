"""Import benchmark: a JSON Lines news dump of 100,000 articles through `qabot add`, then `qabot index`.

    python bench/bench_import.py [--articles 100000] [--work bench/work] [--no-write]

The articles are make_corpus.py's synthetic news (../shared/bench/make_corpus.py: its vocabulary and
sentence generator, its article and paragraph sizes), each with a title, a date and a URL, written as
one JSON object per line. Measured: `qabot add` of the dump into an empty folder (target: under 2
minutes), the same `qabot add` again (every article already there), then `qabot index` of the
imported folder; wall time and peak RSS of each process. Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from report import machine_description, markdown_table, text_table, write_section  # noqa: E402

TARGET_SECONDS = 120


def load_make_corpus(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_corpus", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_dump(make_corpus: ModuleType, out: Path, n_articles: int, seed: int = 0) -> tuple[int, int]:
    """n_articles JSON lines built as make_corpus.write_corpus builds articles; (articles, sentences)."""
    rng = np.random.default_rng(seed)
    vocab = make_corpus.vocabulary(rng)
    sizes = rng.integers(12, 29, n_articles)
    stream = make_corpus.sentences(rng, vocab, int(sizes.sum()))
    with open(out, "w", encoding="utf-8") as handle:
        for article, size in enumerate(sizes.tolist()):
            body, left = [], size
            while left:
                k = min(int(rng.integers(2, 7)), left)
                body.append(" ".join(next(stream) for _ in range(k)))
                left -= k
            title = " ".join(w.capitalize() for w in vocab[rng.integers(100, 20000, 6)])
            day = np.datetime64("2020-01-01") + int(rng.integers(0, 1500))
            record = {"title": title, "published_at": f"{day}T08:00:00Z",
                      "url": f"https://news.example.org/{article}", "content": "\n".join(body)}  # fmt: skip
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return n_articles, int(sizes.sum())


def timed(command: list[str], env: dict[str, str]) -> dict:
    """Run command; its wall time, peak RSS (this process's largest child so far), exit code and last lines."""
    started = time.perf_counter()
    process = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak_mb, "returncode": process.returncode,
            "tail": (process.stdout.strip().splitlines() or [""])[:2] + process.stderr.strip().splitlines()[-1:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--make-corpus", type=Path, default=ROOT.parent / "shared" / "bench" / "make_corpus.py")
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()
    work = args.work.resolve() / "import"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    machine = machine_description()
    dump, corpus, cache = work / "dump.jsonl", work / "corpus", work / "cache"
    started = time.perf_counter()
    n_articles, n_sentences = write_dump(load_make_corpus(args.make_corpus), dump, args.articles)
    made = time.perf_counter() - started
    env = {**os.environ, "QABOT_CACHE_DIR": str(cache)}
    qabot = [sys.executable, "-m", "qabot.cli"]
    runs = [
        ("qabot add (empty folder)", timed([*qabot, "add", str(dump), "--to", str(corpus)], env)),
        ("qabot add (again: all already there)", timed([*qabot, "add", str(dump), "--to", str(corpus)], env)),
        ("qabot index (build)", timed([*qabot, "index", "--corpus", str(corpus)], env)),
    ]
    files = sum(1 for _ in corpus.glob("*.md"))
    header = ["step", "wall s", "peak RSS MB (so far)", "exit", "output"]
    rows = [[name, f"{r['seconds']:.1f}", f"{r['peak_mb']:.0f}", str(r["returncode"]), " / ".join(r["tail"])]
            for name, r in runs]  # fmt: skip
    verdict = "PASS" if runs[0][1]["seconds"] < TARGET_SECONDS and runs[0][1]["returncode"] == 0 else "FAIL"
    summary = [
        f"- Dump: {n_articles:,} articles, {n_sentences:,} sentences, {dump.stat().st_size / 2**20:.0f} MB "
        f"(made in {made:.0f} s); {files:,} .md files written.",
        f"- Import under {TARGET_SECONDS} s: {verdict} ({runs[0][1]['seconds']:.1f} s).",
        "- Peak RSS is getrusage's largest child so far, so a row never reads lower than the one above it.",
        "- The machine is shared (2 cores, other workers running); figures are wall-clock times under that load.",
    ]
    print(text_table(header, rows))
    print("\n".join(summary))
    if not args.no_write:
        write_section("import", "\n".join([
            "## Importing a news dump (bench_import.py)", "",
            f"`python bench/bench_import.py --articles {args.articles}`: a JSON Lines dump of make_corpus.py's "
            "synthetic news through `qabot add`, twice, then `qabot index` of the imported folder.", "",
            *machine, "", markdown_table(header, rows), "", *summary,
        ]))  # fmt: skip
        print("wrote bench/RESULTS.md")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
