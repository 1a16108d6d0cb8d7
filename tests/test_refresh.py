"""Refresh over many edits: each equals a rebuild, text packs stay few, and unused packs are deleted."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import numpy as np
import pytest

from qabot import postings
from qabot.store import corpus_cache_dir, load_index, open_index, save_index
from qabot.text_packs import MAX_PACKS
from tests.conftest import SEEDS
from tests.test_store import PARAMS, assert_same_index, quiet


def seed_paragraphs() -> list[str]:
    return [p.strip() for f in sorted(SEEDS.glob("*.txt")) for p in f.read_text("utf-8").split("\n\n") if p.strip()]


def write(path: Path, paragraphs: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")


def packs(cache: Path, corpus: Path) -> list[Path]:
    return sorted((corpus_cache_dir(cache, corpus) / "texts").glob("*.npy"))


def age_cache(cache: Path) -> None:
    """Make every cache file two minutes old, so the next save may delete what is no longer used."""
    past = time.time() - 120
    for path in cache.rglob("*"):
        os.utime(path, (past, past))


def test_forty_random_edits_each_refresh_to_the_rebuilt_index(tmp_path):
    rng = random.Random(7)
    paragraphs = seed_paragraphs()
    corpus, cache = tmp_path / "news", tmp_path / "cache"
    for i in range(12):
        write(corpus / f"{i % 3}" / f"article-{i:02d}.txt", rng.sample(paragraphs, 4))
    open_index(corpus, cache, PARAMS, quiet)
    for step in range(40):
        files = sorted(corpus.rglob("*.txt"))
        action = rng.choice(["add", "change", "change", "remove"] if len(files) > 3 else ["add"])
        if action == "add":
            write(corpus / f"{step % 4}" / f"new-{step:02d}.txt", rng.sample(paragraphs, rng.randint(1, 6)))
        elif action == "change":
            target = rng.choice(files)
            kept = target.read_text("utf-8").split("\n\n")[: rng.randint(0, 3)]
            write(target, [*kept, *rng.sample(paragraphs, rng.randint(1, 3)), f"Edit {step} mentions okapi{step}."])
        else:
            rng.choice(files).unlink()
        refreshed, report = open_index(corpus, cache, PARAMS, quiet)
        assert report.action == "refreshed", (step, action)
        rebuilt, _ = open_index(corpus, tmp_path / f"fresh-{step}", PARAMS, quiet)
        assert_same_index(refreshed, rebuilt)
        assert len(refreshed.text_packs) <= MAX_PACKS + 1
        loaded, again = open_index(corpus, cache, PARAMS, quiet)
        assert again.action == "loaded"
        assert_same_index(loaded, rebuilt)


def test_a_refresh_writes_only_the_changed_text_and_collects_unused_packs(corpus_copy, tmp_path):
    cache = tmp_path / "cache"
    open_index(corpus_copy, cache, PARAMS, quiet)
    (first,) = packs(cache, corpus_copy)
    changed = corpus_copy / "003_b5d4c7ccf50ad595.txt"
    write(changed, ["A zebra crossing was painted in Yerevan."])
    open_index(corpus_copy, cache, PARAMS, quiet)
    new = [p for p in packs(cache, corpus_copy) if p != first]
    assert len(new) == 1 and first.exists(), "kept documents stay in the first pack"
    assert np.load(new[0]).tobytes() == changed.read_bytes(), "the new pack holds only the changed file"

    # Once no document lives in the first pack any more, a save later than a minute deletes it.
    age_cache(cache)
    for path in corpus_copy.glob("*.txt"):
        write(path, [f"Rewritten {path.stem}."])
    index, _ = open_index(corpus_copy, cache, PARAMS, quiet)
    assert not first.exists() and not new[0].exists()
    assert [p.stem for p in packs(cache, corpus_copy)] == [pack.name for pack in index.text_packs]
    assert index.doc_text(0) == (corpus_copy / index.docs[0].path).read_text("utf-8")


def test_mostly_dead_text_is_compacted_into_one_pack(corpus_copy, tmp_path):
    cache = tmp_path / "cache"
    open_index(corpus_copy, cache, PARAMS, quiet)
    survivor = sorted(corpus_copy.glob("*.txt"))[0]
    for path in sorted(corpus_copy.glob("*.txt"))[1:]:
        path.unlink()
    index, _ = open_index(corpus_copy, cache, PARAMS, quiet)
    assert len(index.text_packs) == 1
    assert len(index.text_packs[0].data) == survivor.stat().st_size
    assert index.doc_text(0) == survivor.read_text("utf-8")


def test_many_small_additions_merge_the_small_packs_and_keep_the_large_one(corpus_copy, tmp_path):
    cache = tmp_path / "cache"
    built, _ = open_index(corpus_copy, cache, PARAMS, quiet)
    large = built.text_packs[0].name
    counts = []
    for i in range(MAX_PACKS + 4):
        write(corpus_copy / f"brief-{i:02d}.txt", [f"Brief number {i} about the okapi talks."])
        index, _ = open_index(corpus_copy, cache, PARAMS, quiet)
        counts.append(len(index.text_packs))
        assert index.text_packs[0].name == large, "the large pack is never rewritten"
    assert max(counts) == MAX_PACKS and counts[-1] < MAX_PACKS, counts
    assert_same_index(index, open_index(corpus_copy, tmp_path / "fresh", PARAMS, quiet)[0])


def test_saving_rewrites_a_pack_a_concurrent_clean_up_deleted_and_touches_the_others(corpus_copy, tmp_path):
    cache = tmp_path / "cache"
    open_index(corpus_copy, cache, PARAMS, quiet)
    folder = corpus_cache_dir(cache, corpus_copy)
    loaded, _ = load_index(folder, corpus_copy.resolve(), PARAMS)
    (pack,) = packs(cache, corpus_copy)
    pack.unlink()  # another writer compacted the text and collected this pack; our maps still hold it
    save_index(loaded, folder, PARAMS)
    assert pack.exists()
    age_cache(cache)
    save_index(load_index(folder, corpus_copy.resolve(), PARAMS)[0], folder, PARAMS)
    assert time.time() - pack.stat().st_mtime < 60, "a pack the new generation uses looks new to clean-ups"
    reloaded, _ = load_index(folder, corpus_copy.resolve(), PARAMS)
    assert_same_index(reloaded, loaded)


def test_packs_no_document_uses_are_dropped(corpus_copy, tmp_path):
    cache = tmp_path / "cache"
    open_index(corpus_copy, cache, PARAMS, quiet)
    for path in corpus_copy.glob("*.txt"):
        path.unlink()
    empty, _ = open_index(corpus_copy, cache, PARAMS, quiet)
    assert empty.text_packs == () and empty.n_sentences == 0
    write(corpus_copy / "okapi.txt", ["Okapi news", "The okapi met Louis Bono in Baku."])
    index, _ = open_index(corpus_copy, cache, PARAMS, quiet)
    assert [len(pack.data) for pack in index.text_packs] == [(corpus_copy / "okapi.txt").stat().st_size]


@pytest.mark.parametrize("places_limit", [10_000, 0])
def test_postings_spliced_from_stretches_are_numpys_delete_then_insert(monkeypatch, places_limit):
    """A refresh joins the stretches between the postings it drops and inserts (or, past a limit, lets
    numpy delete and insert): the same array either way, wherever the places fall."""
    monkeypatch.setattr(postings, "SPLICED_PLACES", places_limit)
    rng = np.random.default_rng(4)
    for size in (0, 1, 7, 200):
        source = rng.integers(0, 60_000, size).astype(np.uint16)
        for _ in range(40):
            dropped = np.sort(rng.choice(size, rng.integers(0, size + 1), replace=False)) if size else np.empty(0, int)
            kept = size - len(dropped)
            insert_at = rng.integers(0, kept + 1, rng.integers(0, 12))  # repeats, the very start and end allowed
            values = rng.integers(0, 60_000, len(insert_at)).astype(np.int64)
            expected = np.insert(np.delete(source, dropped), insert_at, values)
            got = postings._spliced(source, dropped.astype(np.int64), insert_at, values)
            assert got.dtype == source.dtype and got.tolist() == expected.tolist(), (size, dropped, insert_at)
