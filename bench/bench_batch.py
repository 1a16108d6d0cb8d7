"""Batch mode at volume: `qabot ask --json -` answers 10,000 questions in one process; is memory flat?

    python bench/bench_batch.py [--corpus seeds] [--questions ../shared/eval/dev.jsonl] [--count 10000]

Questions (the "question" of each JSON line, or each plain-text line) are repeated
in order up to --count and fed on stdin; a sampler reads the process's VmRSS from
/proc/PID/status while the answers come back. Reports RSS after 1k, 5k and 10k
answers and checks that every JSON line came back, in order. Writes its section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from report import machine_description, markdown_table, text_table, write_section

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHECKPOINTS = (1_000, 5_000, 10_000)


def load_questions(path: Path, count: int) -> list[str]:
    """count questions: the file's questions repeated in order."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    base = [json.loads(line)["question"] if path.suffix == ".jsonl" else line for line in lines]
    return [base[i % len(base)] for i in range(count)]


def qabot_command() -> list[str]:
    script = Path(sys.executable).with_name("qabot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "qabot.cli"]


def vm_kb(pid: int, field: str) -> int | None:
    """VmRSS / VmHWM of a live process in kB (None once it has gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def run_batch(corpus: Path, questions: list[str], cache: Path, top_k: int) -> dict:
    """Feed questions to one `qabot ask --json -` process; sample its RSS; check every answer's order."""
    env = {**os.environ, "QABOT_CACHE_DIR": str(cache)}
    prepare = subprocess.run(
        [*qabot_command(), "index", "--corpus", str(corpus)], env=env, cwd=ROOT, capture_output=True, text=True
    )
    print(prepare.stdout.strip() or prepare.stderr.strip(), flush=True)
    command = [*qabot_command(), "ask", "--json", "--top-k", str(top_k), "--corpus", str(corpus), "-"]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    samples: list[tuple[float, int, int]] = []  # (seconds, answers so far, VmRSS kB)
    answers = 0
    stop = threading.Event()

    def feed() -> None:
        try:
            for question in questions:
                process.stdin.write(question.encode("utf-8") + b"\n")
            process.stdin.close()
        except BrokenPipeError:
            pass

    def sample() -> None:
        while not stop.is_set():
            rss = vm_kb(process.pid, "VmRSS")
            if rss is not None:
                samples.append((time.perf_counter() - started, answers, rss))
            stop.wait(0.05)

    stderr_lines: list[str] = []

    def drain_stderr() -> None:
        stderr_lines.extend(process.stderr.read().decode("utf-8", errors="replace").splitlines())

    threads = [threading.Thread(target=target, daemon=True) for target in (feed, sample, drain_stderr)]
    for thread in threads:
        thread.start()
    at_checkpoint: dict[int, int | None] = {}
    in_order, answered, peak_kb = True, 0, 0
    for raw in process.stdout:
        answers += 1
        if answers in CHECKPOINTS:
            at_checkpoint[answers] = vm_kb(process.pid, "VmRSS")
        peak_kb = max(peak_kb, vm_kb(process.pid, "VmHWM") or 0) if answers % 500 == 0 else peak_kb
        try:
            answer = json.loads(raw)
        except ValueError:
            in_order = False
            continue
        if answers > len(questions) or answer.get("question") != questions[answers - 1]:
            in_order = False
        answered += not answer.get("abstained", True)
    returncode = process.wait()
    elapsed = time.perf_counter() - started
    stop.set()
    for thread in threads:
        thread.join(timeout=5)
    return {
        "returncode": returncode, "answers": answers, "in_order": in_order and answers == len(questions),
        "answered": answered, "seconds": elapsed, "checkpoints": at_checkpoint, "samples": samples,
        "peak_kb": max([peak_kb, *(rss for _, _, rss in samples)]), "stderr": stderr_lines,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "seeds")
    parser.add_argument("--questions", type=Path, default=ROOT.parent / "shared" / "eval" / "dev.jsonl",
                        help=".jsonl with a 'question' per line, or a text file with one question a line")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--work", type=Path, default=HERE / "work", help="where the index cache goes")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()
    corpus = args.corpus.resolve()
    questions = load_questions(args.questions, args.count)
    machine = machine_description()
    result = run_batch(corpus, questions, args.work.resolve() / "batch-cache", args.top_k)

    first = next((rss for _, n, rss in result["samples"] if n >= 1), None)
    rows = [["first answer", _mb(first)]]
    rows += [[f"{n:,} answers", _mb(result["checkpoints"].get(n))] for n in CHECKPOINTS if n <= args.count]
    rows.append(["peak (VmHWM)", _mb(result["peak_kb"])])
    low, high = result["checkpoints"].get(1_000), result["checkpoints"].get(max(CHECKPOINTS))
    growth = f"{(high - low) / 1024:+.1f} MB from 1,000 to 10,000 answers" if low and high else "n/a"
    summary = [
        f"- {result['answers']:,} JSON lines for {len(questions):,} questions, all in order: "
        f"{'yes' if result['in_order'] else 'NO'}; exit code {result['returncode']}; "
        f"{result['answered']:,} answered, {result['answers'] - result['answered']:,} abstained.",
        f"- {result['seconds']:.1f} s in one process ({result['answers'] / result['seconds']:.0f} answers/s); "
        f"RSS growth {growth}.",
        f"- stderr: {len(result['stderr'])} lines" + (f" (first: {result['stderr'][0]})" if result["stderr"] else ""),
    ]
    print(text_table(["point", "VmRSS MB"], rows))
    print("\n".join(summary))
    if args.no_write:
        return
    shown = _shown(corpus), _shown(args.questions.resolve())
    write_section(f"batch {corpus.name}", "\n".join([
        f"## Batch mode at volume: {corpus.name} (bench_batch.py)", "",
        f"`qabot ask --json --top-k {args.top_k} -` over {args.count:,} questions "
        f"(`{shown[1]}` repeated in order) against `{shown[0]}`, index built beforehand; "
        "VmRSS read from /proc/PID/status as the answers arrived.", "",
        *machine, "", markdown_table(["point", "VmRSS MB"], rows), "", *summary,
    ]))  # fmt: skip
    print("wrote bench/RESULTS.md")


def _mb(kb: int | None) -> str:
    return f"{kb / 1024:.1f}" if kb else "n/a"


def _shown(path: Path) -> str:
    for base in (ROOT, ROOT.parent):
        if path.is_relative_to(base):
            return str(path.relative_to(ROOT)) if base == ROOT else "../" + str(path.relative_to(base))
    return str(path)


if __name__ == "__main__":
    main()
