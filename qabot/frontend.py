"""What the command line and the REPL share: warnings on stderr, a progress bar, opening the answerer."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from qabot.config import Settings
from qabot.errors import CorpusError

if TYPE_CHECKING:
    from qabot.answer import Answerer


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


def open_answerer(settings: Settings) -> Answerer:
    """The answerer over settings.corpus; CorpusError when the folder holds no readable article.

    An empty corpus is a setup mistake, not a question the articles fail to answer.
    """
    from qabot.answer import Answerer

    answerer = Answerer.from_settings(settings, warn=warn, progress=progress_bar())
    if not answerer.index.docs:
        skipped = len(answerer.index.skipped)
        detail = f" ({skipped} file{'s' if skipped != 1 else ''} skipped: 'qabot index' names them)" if skipped else ""
        raise CorpusError(
            f"the corpus folder {settings.corpus} holds no readable *.txt articles{detail}; "
            "add articles or pass --corpus DIR"
        )
    return answerer
