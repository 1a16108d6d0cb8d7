"""Quality anchors: off-the-shelf BM25 on the eval questions behind qabot's quality figures, over qabot's sentences.

    python bench/quality_anchors.py [--no-write]

Each eval set is asked of its own corpus (../shared/eval: news dev.jsonl over seeds/, squad-dev and
squad-multi over their corpus folders). The corpus is indexed by qabot (index cache in a temporary
folder), so every anchor ranks exactly qabot's sentences; each anchor scores every sentence for each
question and answers with the top 10, never abstaining. Passages are `Answerer.passage_of`, scored by
`qabot.evaluate` (with `qabot.eval_match`'s hit rule: R@1, R@3, MRR@10, refusals) exactly as `qabot eval` scores qabot.
Prints a table and replaces its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # measure the qabot beside this script: the one the results' digest names
sys.path.insert(1, str(ROOT / "tools"))

from fit_models import bm25_models  # noqa: E402
from report import machine_description, markdown_table, text_table, write_section  # noqa: E402

from qabot.analyze import analyze, stopwords  # noqa: E402
from qabot.answer import Answerer  # noqa: E402
from qabot.config import load_settings, replace  # noqa: E402
from qabot.eval_set import load_eval  # noqa: E402
from qabot.evaluate import EvalReport, evaluate  # noqa: E402
from qabot.index import Index  # noqa: E402
from qabot.model import Answer, Passage  # noqa: E402
from qabot.store import IndexParams, open_index  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
DEPTH = 10
WORD = re.compile(r"\w+")
IN_CORPUS_UNANSWERABLE = frozenset({"adversarial"})  # SQuAD's lookalikes: the corpus holds their topic
HEADER = ["set", "anchor", "sentences", "answerable", "R@1", "R@3", "MRR@10", "false abst.", "out-of-corpus refused",
          "s"]  # fmt: skip

Tokenize = Callable[[str], list[str]]
Scores = Callable[[list[str]], np.ndarray]  # a question's tokens -> one score per sentence


@dataclass(frozen=True, slots=True)
class EvalSource:
    """An eval set and the corpus it is asked of."""

    name: str
    questions: Path
    corpus: Path


@dataclass(frozen=True, slots=True)
class Anchor:
    """A BM25 engine and the tokens it sees (sentences and questions alike)."""

    name: str
    tokenize: Tokenize
    build: Callable[[list[list[str]]], Scores]


SOURCES = (
    EvalSource("news", EVAL / "dev.jsonl", ROOT / "seeds"),
    EvalSource("squad-dev", EVAL / "squad-dev" / "questions.jsonl", EVAL / "squad-dev" / "corpus"),
    EvalSource("squad-multi", EVAL / "squad-multi" / "questions.jsonl", EVAL / "squad-multi" / "corpus"),
)


@cache
def porter_stem() -> Callable[[str], str]:
    """nltk's PorterStemmer().stem, remembered per word (nltk imported here: it is slow to import)."""
    from nltk.stem import PorterStemmer

    return cache(PorterStemmer().stem)


def porter_words(text: str) -> list[str]:
    """Regex words (`\\w+`) lower-cased, NLTK's English stopwords dropped, Porter-stemmed (nltk's PorterStemmer)."""
    dropped, stem = stopwords(), porter_stem()
    return [stem(word) for word in WORD.findall(text.lower()) if word not in dropped]


def rank_bm25_okapi(sentences: list[list[str]]) -> Scores:
    """rank_bm25.BM25Okapi with its defaults (k1 1.5, b 0.75, negative IDF floored at 0.25 of the mean IDF)."""
    from rank_bm25 import BM25Okapi

    return BM25Okapi(sentences).get_scores


def bm25s_robertson(sentences: list[list[str]]) -> Scores:
    """bm25s's Robertson BM25 (k1 1.5, b 0.75, negative IDF clipped to 0), numpy backend."""
    import bm25s

    retriever = bm25s.BM25(method="robertson")
    retriever.index(sentences, show_progress=False)
    return retriever.get_scores


ANCHORS = (
    Anchor("rank-bm25 BM25Okapi, regex words, stopwords, Porter stems", porter_words, rank_bm25_okapi),
    Anchor("bm25s Robertson, regex words, stopwords, Porter stems", porter_words, bm25s_robertson),
    Anchor("rank-bm25 BM25Okapi, qabot's analyzer terms", analyze, rank_bm25_okapi),
)


def top_sentences(scores: np.ndarray, depth: int) -> np.ndarray:
    """The `depth` best-scored sentences, best first; ties go to the earlier sentence in corpus order."""
    return np.argsort(-scores, kind="stable")[:depth]


def open_corpus_index(corpus: Path, cache: Path) -> Index:
    """qabot's index of corpus with the shipped settings (as tools/fit_models.py opens it), cached under cache."""
    settings = replace(load_settings(ROOT / "config" / "qabot.toml", env={}), corpus=corpus, cache_dir=cache)
    index, _ = open_index(settings.corpus, settings.index_dir, IndexParams.from_settings(settings),
                          lambda message: print(f"warning: {message}", file=sys.stderr))  # fmt: skip
    return index


def anchor_asker(anchor: Anchor, index: Index, passage: Callable[[int], Passage]) -> Callable[[str, int], Answer]:
    """`ask(question, k)` for one anchor over index's sentences: the k best passages, never an abstention."""
    scores = anchor.build([anchor.tokenize(index.sentence_text(sent)) for sent in range(index.n_sentences)])

    def ask(question: str, k: int) -> Answer:
        best = top_sentences(np.asarray(scores(anchor.tokenize(question))), k)
        return Answer(question, tuple(passage(int(sent)) for sent in best), False, "", (), index.n_sentences)

    return ask


def out_of_corpus(report: EvalReport) -> tuple[int, int]:
    """(refused, asked) over the unanswerable questions whose answer the corpus lacks (all but its lookalikes)."""
    lacking = [r for r in report.results if not r.item.answerable and r.item.kind not in IN_CORPUS_UNANSWERABLE]
    return sum(r.answer.abstained for r in lacking), len(lacking)


def measure(source: EvalSource, anchors: Sequence[Anchor]) -> list[list[str]]:
    """One row per anchor: the set's questions asked of its corpus, scored like `qabot eval --top-k 10`."""
    items = load_eval(source.questions)
    rows = []
    with tempfile.TemporaryDirectory(prefix="qabot-anchors-") as folder:
        index = open_corpus_index(source.corpus, Path(folder))
        # the models are fit_models' plain BM25 ones: passage_of never uses them, and the shipped ones may be mid-refit
        passage = cache(Answerer(index, models=bm25_models()).passage_of)  # built once: the top 10s overlap
        for anchor in anchors:
            started = time.perf_counter()
            report = evaluate(items, anchor_asker(anchor, index, passage), DEPTH)
            refused, asked = out_of_corpus(report)
            rows.append([
                source.name, anchor.name, f"{index.n_sentences:,}", f"{report.answerable:,}",
                f"{report.recall_at_1:.3f}", f"{report.recall_at_3:.3f}", f"{report.mrr_at_10:.3f}",
                f"{report.false_abstention_rate:.3f}", f"{refused} of {asked}", f"{time.perf_counter() - started:.0f}",
            ])  # fmt: skip
            print(f"{source.name}: {anchor.name} done", file=sys.stderr)
    return rows


NOTE = """\
R@1, R@3 and MRR@10 are over the answerable questions, with `qabot.eval_match`'s hit rule on each
passage (`Answerer.passage_of` of the ranked sentence): exactly how `qabot eval --top-k 10` scores
qabot. The anchors never refuse, so false abstention and out-of-corpus refused are 0 by
construction: every question gets its 10 best sentences. Out-of-corpus counts the unanswerable
questions whose article the corpus lacks (SQuAD's out-of-corpus kind, news's unanswerable ones);
SQuAD's adversarial questions are left out of it. *s*: wall time of the anchor's tokenizing and
indexing plus every question (the machine is shared).

Every anchor ranks every sentence of qabot's own index of the corpus (same segmentation, shipped
config, index cache in a temporary folder), each with its library's default k1 1.5 and b 0.75
(qabot's index uses k1 1.2); bm25s runs its Robertson variant (`method="robertson"`; its default
is Lucene's IDF). Questions are tokenized as typed, like the sentences. Regex words:
`\\w+` lower-cased, NLTK's English stopwords (qabot/data/stopwords_en.txt) dropped, nltk's
PorterStemmer. qabot's analyzer terms: `qabot.analyze.analyze` (NFKC, casefold, diacritics,
stopwords, Snowball stems). Ties keep corpus order."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()
    machine = machine_description()
    started = time.perf_counter()
    rows = [row for source in SOURCES for row in measure(source, ANCHORS)]
    elapsed = time.perf_counter() - started
    print()
    print(text_table(HEADER, rows))
    print()
    print(NOTE)
    print(f"total wall time {elapsed:.0f} s")
    if args.no_write:
        return
    write_section("quality anchors", "\n".join([
        "## Quality anchors (quality_anchors.py)", "",
        f"`python bench/quality_anchors.py`, total wall time {elapsed:.0f} s.", "",
        *machine, "",
        markdown_table(HEADER, rows), "",
        NOTE,
    ]))  # fmt: skip
    print("wrote bench/RESULTS.md")


if __name__ == "__main__":
    main()
