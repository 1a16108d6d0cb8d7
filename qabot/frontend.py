"""What the front ends share: opening the answerer (one place for a single index, local shards or a Dask
cluster), asking whether its corpus changed, reading a typed question, and for the command line and the REPL
warnings on stderr and a progress bar."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from qabot.config import Settings
from qabot.errors import CorpusError, QuestionError

if TYPE_CHECKING:
    from qabot.answer import Answerer
    from qabot.store import Progress, Warn

# Terminal escape sequences (ECMA-48): CSI; the string controls OSC, DCS, SOS, PM and APC up to their terminator;
# and the short escapes. Removed whole: "\x1b[31mbono" asks about "bono", where dropping the ESC alone leaves "31mbono".
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]"
)


def warn(message: str) -> None:
    """One `qabot: …` line on stderr."""
    print(f"qabot: {message}", file=sys.stderr)


def progress_bar(stream: TextIO = sys.stderr) -> Callable[[int, int], None] | None:
    """A tqdm bar on a terminal (None elsewhere, or without tqdm: same results, no bar)."""
    if not stream.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="file", file=stream, leave=False, desc="indexing")
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def answerer_for(settings: Settings, warn: Warn = lambda message: None, progress: Progress | None = None) -> Answerer:
    """The answerer over the index the settings describe, loaded, refreshed or built first: a single
    index, or a sharded one served in this process or on the settings' Dask cluster."""
    if settings.cluster or settings.shards:
        from qabot.sharded import open_sharded_answerer

        return open_sharded_answerer(settings, warn)
    from qabot.answer import Answerer, AnswerParams
    from qabot.store import IndexParams, open_index

    index, _ = open_index(settings.corpus, settings.index_dir, IndexParams.from_settings(settings), warn, progress)
    return Answerer(index, AnswerParams.from_settings(settings))


def corpus_changed(answerer: Answerer) -> bool:
    """Whether a file was added, changed or removed since the answerer's index was made; cheap: the
    folder is listed, nothing is read."""
    from qabot.index import Index

    index = answerer.index
    if isinstance(index, Index):
        from qabot.store import corpus_changed as index_changed

        return index_changed(index, index.root)
    from qabot.sharded import ShardedIndex
    from qabot.shards import shards_changed

    assert isinstance(index, ShardedIndex)
    return shards_changed(index.manifest, index.root)


def without_escapes(text: str) -> str:
    """text with every terminal escape sequence removed whole (colour codes, cursor moves, titles, ...)."""
    return _ESCAPE_SEQUENCE.sub("", text)


def typed_question(text: str) -> str:
    """A question as typed, escape sequences removed; QuestionError when no letter or digit is left to search."""
    question = without_escapes(text)
    if not any(ch.isalnum() for ch in question):
        raise QuestionError(
            "the question has no words (it is empty, or only punctuation or control characters); "
            "ask in words, e.g. Who is Louis Bono?"
        )
    return question


def open_answerer(settings: Settings) -> Answerer:
    """The answerer over settings.corpus; CorpusError when the folder holds no readable article.

    An empty corpus is a setup mistake, not a question the articles fail to answer.
    """
    answerer = answerer_for(settings, warn=warn, progress=progress_bar())
    if not answerer.index.docs:
        skipped = len(answerer.index.skipped)
        detail = f" ({skipped} file{'s' if skipped != 1 else ''} skipped: 'qabot index' names them)" if skipped else ""
        raise CorpusError(
            f"the corpus folder {settings.corpus} holds no readable *.txt articles{detail}; "
            "add articles or pass --corpus DIR"
        )
    return answerer
