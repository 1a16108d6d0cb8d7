"""Every answer qabot gives to a set of questions, as JSON lines, to check that speed work changes none.

    python bench/answers_snapshot.py --corpus seeds --questions ../shared/eval/dev.jsonl --out before.jsonl
    PYTHONPATH=bench/work/baseline-src python bench/answers_snapshot.py ...   # the same for older code
    python bench/answers_snapshot.py ... --shards 3                          # over a sharded index

Questions come from a .jsonl file ("question" keys) or a text file (one a line); each is also
asked with one letter of its longest word doubled, so spelling variants are exercised. Each
answer is written at top-3 and top-10: passages (source, offsets, score, matched terms, where
else the passage appears), the abstention reason and the variants searched.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def questions_of(path: Path) -> list[str]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if path.suffix == ".jsonl":
        return [json.loads(line)["question"] for line in lines]
    return lines


def misspelled(question: str) -> str:
    """The question with the middle letter of its longest word doubled."""
    words = question.split()
    longest = max(range(len(words)), key=lambda i: len(words[i]))
    word = words[longest]
    middle = len(word) // 2
    words[longest] = word[:middle] + word[middle] + word[middle:]
    return " ".join(words)


def snapshot(answerer, question: str, top_k: int) -> dict:
    answer = answerer.ask(question, top_k)
    return {
        "question": question,
        "top_k": top_k,
        "abstained": answer.abstained,
        "reason": answer.reason,
        "expansions": [list(pair) for pair in answer.expansions],
        "passages": [
            {
                "source": p.location.source, "start": p.location.start, "end": p.location.end, "score": p.score,
                "matched": list(p.matched_terms),
                "also_in": [[loc.source, loc.start, loc.end] for loc in p.also_in],
            }
            for p in answer.passages
        ],
    }  # fmt: skip


def opened(settings):
    """The answerer the settings describe, through the measured code's opener (a baseline older than
    frontend.answerer_for has Answerer.from_settings)."""
    try:
        from qabot.frontend import answerer_for
    except ImportError:
        from qabot.answer import Answerer

        return Answerer.from_settings(settings)
    return answerer_for(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, help="index cache folder (default: a temporary one)")
    parser.add_argument("--shards", type=int, default=0, help="over a sharded index of this many shards, in process")
    parser.add_argument("--cluster", default="", help="over the sharded index served on this Dask scheduler")
    args = parser.parse_args()
    from qabot.config import load_settings

    with tempfile.TemporaryDirectory() as scratch:
        cache = args.cache or Path(scratch)
        env = {"QABOT_CORPUS": str(args.corpus), "QABOT_CACHE_DIR": str(cache), "QABOT_SHARDS": str(args.shards)}
        if args.cluster:
            env["QABOT_CLUSTER"] = args.cluster
        answerer = opened(load_settings(env=env))
        asked = [q for question in questions_of(args.questions) for q in (question, misspelled(question))]
        with args.out.open("w", encoding="utf-8") as out:
            for question in asked:
                for top_k in (3, 10):
                    out.write(json.dumps(snapshot(answerer, question, top_k), ensure_ascii=False) + "\n")
    print(f"{len(asked) * 2} answers written to {args.out}")


if __name__ == "__main__":
    main()
