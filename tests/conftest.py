"""Shared fixtures: the real seeds corpus, settings pointing caches into tmp folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qabot.answer import Answerer
from qabot.config import Settings, load_settings, replace
from qabot.frontend import answerer_for

PROJECT = Path(__file__).resolve().parent.parent
SEEDS = PROJECT / "seeds"
SAMPLE_SET = PROJECT / "eval" / "sample.jsonl"  # the project's own eval set, on the seeds
# The team's shared material sits beside the clone on its machines only; tests that read it skip elsewhere.
SHARED = PROJECT.parent / "shared"
DEV_SET = SHARED / "eval" / "dev.jsonl"
MAKE_CORPUS = SHARED / "bench" / "make_corpus.py"


def answerer_over(folder: Path, files: dict[str, str], **changes) -> Answerer:
    """An answerer over folder/corpus after writing files (name -> text) into it; its cache in folder/cache;
    settings changed as given."""
    corpus = folder / "corpus"
    corpus.mkdir(exist_ok=True)
    for name, text in files.items():
        (corpus / name).write_text(text, encoding="utf-8")
    return answerer_for(settings_for(corpus, folder / "cache", **changes))


def needs_shared(path: Path) -> pytest.MarkDecorator:
    """Skip a test, with the reason, when the shared file it reads is not beside this clone."""
    return pytest.mark.skipif(not path.is_file(), reason=f"{path} is absent (the team's ../shared material)")


def settings_for(corpus: Path, cache: Path, **changes) -> Settings:
    """Project settings (config/qabot.toml) with corpus and cache moved; QABOT_* env ignored."""
    base = load_settings(PROJECT / "config" / "qabot.toml", env={})
    return replace(base, corpus=corpus, cache_dir=cache, **changes)


@pytest.fixture(scope="session")
def seeds_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return settings_for(SEEDS, tmp_path_factory.mktemp("seeds-cache"))


@pytest.fixture(scope="session")
def answerer(seeds_settings: Settings) -> Answerer:
    """The answerer over the real seeds corpus (built once per session)."""
    return answerer_for(seeds_settings)


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A writable copy of the seeds corpus in tmp_path/corpus."""
    target = tmp_path / "corpus"
    shutil.copytree(SEEDS, target)
    return target
