"""Faults: damaged or outdated caches are detected and rebuilt; a killed `qabot index` never leaves a broken index."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from qabot.answer import Answerer, AnswerParams
from qabot.config import Settings
from qabot.frontend import answerer_for
from qabot.generations import CacheInvalid
from qabot.store import ARRAYS, DOC_ARRAYS, VOCAB_ARRAYS, IndexParams, corpus_cache_dir, load_index, open_index
from tests.conftest import MAKE_CORPUS, PROJECT, settings_for

QUESTIONS = (
    "Who is Louis Bono?",
    "Where did the US host the peace talks?",
    "What did Blinken say about the agreement being within reach?",
    "When did Pashinyan speak about the border?",
)


def index_params(settings: Settings) -> IndexParams:
    return IndexParams(settings.k1, settings.b, settings.boilerplate_patterns, settings.max_file_bytes)


def answers(answerer: Answerer, questions=QUESTIONS) -> list:
    return [answerer.ask(question) for question in questions]


def answers_of_index(index, settings: Settings, questions=QUESTIONS) -> list:
    params = AnswerParams.from_settings(settings)
    return answers(Answerer(index, params), questions)


def generation(folder: Path) -> Path:
    return folder / (folder / "CURRENT").read_text(encoding="ascii").split()[0]


@pytest.fixture
def built(corpus_copy: Path, tmp_path: Path):
    """A seeds copy with a stored index: (settings, cache folder of the corpus, reference answers)."""
    settings = settings_for(corpus_copy, tmp_path / "cache")
    reference = answers(answerer_for(settings))
    return settings, corpus_cache_dir(settings.index_dir, corpus_copy), reference


def text_pack(folder: Path) -> Path:
    (pack,) = (folder / "texts").glob("*.npy")
    return pack


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def edit_meta(folder: Path, **changes) -> None:
    """Change meta.json and re-sign it in CURRENT, as a bug (not bit rot) would leave it."""
    meta_path = generation(folder) / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta.update(changes)
    meta_bytes = json.dumps(meta).encode("utf-8")
    meta_path.write_bytes(meta_bytes)
    (folder / "CURRENT").write_text(f"{generation(folder).name} {hashlib.sha256(meta_bytes).hexdigest()}\n")


def crc32_of(path: Path) -> str:
    return f"crc32:{zlib.crc32(path.read_bytes()):08x}"


def resave_array(folder: Path, name: str, array: np.ndarray, allow_pickle: bool = False) -> None:
    """Replace one array with a valid checksum, as a bug (not bit rot) would leave it."""
    path = generation(folder) / f"{name}.npy"
    np.save(path, array, allow_pickle=allow_pickle)
    arrays = json.loads((generation(folder) / "meta.json").read_text(encoding="utf-8"))["arrays"]
    edit_meta(folder, arrays={**arrays, name: [crc32_of(path), path.stat().st_size, path.stat().st_ctime_ns]})


CORRUPTIONS = {
    "npy byte flipped in the data": lambda f: flip_byte(generation(f) / "post_tf.npy", -3),
    "npy byte flipped in the header": lambda f: flip_byte(generation(f) / "sent_start.npy", 20),
    "npy truncated": lambda f: os.truncate(generation(f) / "tok_ids.npy", 100),
    "npy emptied": lambda f: os.truncate(generation(f) / "sent_end.npy", 0),
    "text pack byte flipped": lambda f: flip_byte(text_pack(f), -10),
    "text pack truncated": lambda f: os.truncate(text_pack(f), 200),
    "text pack deleted": lambda f: text_pack(f).unlink(),
    "text pack name is a path": lambda f: edit_meta(f, packs=[["../../../etc/passwd", "crc32:00000000"]]),
    "document text outside its pack": lambda f: resave_array(f, "doc_text_end", np.full(5, 10**9)),
    "npy deleted": lambda f: (generation(f) / "df.npy").unlink(),
    "meta.json truncated": lambda f: os.truncate(generation(f) / "meta.json", 50),
    "meta.json garbage": lambda f: (generation(f) / "meta.json").write_bytes(b"\xff\xfe\x00garbage"),
    "meta.json is a list": lambda f: (generation(f) / "meta.json").write_text("[1, 2, 3]"),
    "older format version": lambda f: edit_meta(f, version=0),
    "older analyzer": lambda f: edit_meta(f, analyzer="nfkc-casefold-porter-punkt0"),
    "meta missing its skipped files": lambda f: edit_meta(f, skipped=None),
    "array record damaged": lambda f: edit_meta(f, arrays={"df": "crc32:00000000"}),
    "array of the wrong length": lambda f: resave_array(f, "sent_start", np.zeros(3, dtype=np.int64)),
    "CURRENT garbage": lambda f: (f / "CURRENT").write_bytes(b"\x89\xff\x00gen-zzz"),
    "CURRENT path traversal": lambda f: (f / "CURRENT").write_text("gen-../../../../etc"),
    "CURRENT names a missing generation": lambda f: (f / "CURRENT").write_text("gen-" + "0" * 32),
    "CURRENT empty": lambda f: (f / "CURRENT").write_bytes(b""),
    "generation folder deleted": lambda f: __import__("shutil").rmtree(generation(f)),
}


# Faults that pass every checksum (a bug, not bit rot) and must be caught by the check they name.
CAUGHT_BY = {
    "older format version": "another version",
    "older analyzer": "another version",
    "meta missing its skipped files": "arrays unreadable",
    "array record damaged": "records",
    "array of the wrong length": "array sizes do not agree",
    "text pack name is a path": "text pack entry is damaged",
    "document text outside its pack": "outside its pack",
    "array holding pickled objects": "arrays unreadable",
}


class Payload:
    """Unpickling it would create the file `marker`."""

    marker = Path()

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def pickled_array(folder: Path) -> None:
    resave_array(folder, "df", np.array([Payload()], dtype=object), allow_pickle=True)


CORRUPTIONS["array holding pickled objects"] = pickled_array


@pytest.mark.parametrize("fault", sorted(CORRUPTIONS))
def test_damaged_cache_is_rebuilt_with_one_warning_and_same_answers(built, fault: str, tmp_path) -> None:
    settings, folder, reference = built
    Payload.marker = tmp_path / "pwned"
    CORRUPTIONS[fault](folder)
    with pytest.raises(CacheInvalid, match=CAUGHT_BY.get(fault)):
        load_index(folder, settings.corpus.resolve(), index_params(settings))
    assert not Payload.marker.exists(), "loading the cache unpickled an object"
    warnings: list[str] = []
    assert answers(answerer_for(settings, warn=warnings.append)) == reference
    assert len(warnings) == 1, warnings
    assert "\n" not in warnings[0] and "rebuilding" in warnings[0] and str(folder) in warnings[0]
    again: list[str] = []
    _, report = open_index(settings.corpus, settings.index_dir, index_params(settings), again.append)
    assert (report.action, again) == ("loaded", [])


def test_missing_current_pointer_rebuilds_silently(built) -> None:
    settings, folder, reference = built
    (folder / "CURRENT").unlink()
    warnings: list[str] = []
    assert answers(answerer_for(settings, warn=warnings.append)) == reference
    assert warnings == []  # nothing was damaged: an index that was never completed is just built
    assert load_index(folder, settings.corpus.resolve(), index_params(settings))


def test_any_flipped_or_truncated_array_or_text_pack_byte_is_detected(built) -> None:
    settings, folder, _ = built
    rng = random.Random(20240601)
    root, params = settings.corpus.resolve(), index_params(settings)
    faults = 0
    stored = (*ARRAYS, *DOC_ARRAYS, *VOCAB_ARRAYS)
    for path in [generation(folder) / f"{name}.npy" for name in stored] + [text_pack(folder)]:
        original = path.read_bytes()
        for offset in [0, len(original) - 1, *rng.sample(range(len(original)), min(8, len(original)))]:
            flip_byte(path, offset)
            with pytest.raises(CacheInvalid):
                load_index(folder, root, params)
            path.write_bytes(original)
            faults += 1
        for length in sorted(rng.sample(range(len(original)), min(3, len(original)))):
            path.write_bytes(original[:length])
            with pytest.raises(CacheInvalid):
                load_index(folder, root, params)
            path.write_bytes(original)
            faults += 1
    assert faults >= (len(stored) + 1) * 5
    load_index(folder, root, params)  # restored: loads again


def test_any_flipped_meta_byte_is_detected_or_harmless(built) -> None:
    """meta.json holds the vocabulary, the file list and titles: a bit flip there must not go unnoticed."""
    settings, folder, _ = built
    root, params = settings.corpus.resolve(), index_params(settings)
    reference, _ = load_index(folder, root, params)
    path = generation(folder) / "meta.json"
    original = path.read_bytes()
    undetected = []
    for offset in random.Random(7).sample(range(len(original)), 60):
        flip_byte(path, offset)
        try:
            index, _ = load_index(folder, root, params)
        except CacheInvalid:
            pass
        else:
            if (index.docs, index.vocab, index.skipped) != (reference.docs, reference.vocab, reference.skipped):
                undetected.append((offset, original[max(0, offset - 15) : offset + 15]))
        path.write_bytes(original)
    assert not undetected, f"{len(undetected)} of 60 flips changed the index silently, e.g. {undetected[:3]}"


def test_a_corrupted_vocabulary_term_does_not_change_answers_silently(built) -> None:
    settings, folder, reference = built
    path = generation(folder) / "vocab_text.npy"
    data = path.read_bytes()
    assert data.count(b'"bono"') == 1
    path.write_bytes(data.replace(b'"bono"', b'"bonp"'))  # one bit of one byte, the file's size unchanged
    warnings: list[str] = []
    assert answers(answerer_for(settings, warn=warnings.append)) == reference
    assert len(warnings) == 1 and "checksum mismatch in vocab_text.npy" in warnings[0], warnings


# --- killing `qabot index` mid-write -------------------------------------------------------------

# Runs `qabot index` and SIGKILLs itself right after the N-th call of one generations.py step, so every
# point of save_index is hit deterministically (a random timer rarely lands in a 20 ms write).
KILL_AT = """
import os, signal, sys
import qabot.generations as generations
step, count = sys.argv[1], int(sys.argv[2])
seen = 0
def deadly(real):
    def call(*args, **kwargs):
        global seen
        result = real(*args, **kwargs)
        seen += 1
        if seen == count:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return call
if step == "os.rename":
    generations.os.rename = deadly(os.rename)
elif step == "os.replace":
    generations.os.replace = deadly(os.replace)
else:
    setattr(generations, step, deadly(getattr(generations, step)))
from qabot.cli import main
sys.exit(main(["index"]))
"""
# (step, call count, does CURRENT name the new generation when the process dies?)
KILL_POINTS = [
    ("write_array", 1, False),  # the changed text's new pack written, not yet renamed
    ("os.rename", 1, False),  # the pack in place, no generation uses it yet
    ("fsync_dir", 1, False),  # the texts folder synced
    ("write_array", 2, False),
    ("write_array", 9, False),
    ("write_array", len(ARRAYS) + 1, False),
    ("write_synced", 1, False),  # meta.json written, folder not yet synced
    ("fsync_dir", 2, False),  # new folder synced, not yet renamed
    ("os.rename", 2, False),  # generation in place, pointer not yet written
    ("write_synced", 2, False),  # pointer written to its temp file, not yet swapped in
    ("os.replace", 1, True),  # CURRENT swapped, directory not yet synced
    ("fsync_dir", 3, True),  # everything done but old generations and packs not yet removed
]


def qabot_env(corpus: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_")}
    env.update(QABOT_CORPUS=str(corpus), QABOT_CACHE_DIR=str(cache))
    return env


@pytest.mark.parametrize(("step", "count", "switched"), KILL_POINTS)
def test_refresh_killed_at_each_write_step_leaves_old_or_new_index(corpus_copy, tmp_path, step, count, switched):
    settings = settings_for(corpus_copy, tmp_path / "cache")
    old = answerer_for(settings)
    old_answers = answers(old)
    folder = corpus_cache_dir(settings.index_dir, corpus_copy)
    first = sorted(corpus_copy.glob("*.txt"))[0]
    first.write_text(first.read_text(encoding="utf-8").replace("Bono", "Bonaventura"), encoding="utf-8")

    result = subprocess.run([sys.executable, "-c", KILL_AT, step, str(count)], cwd=PROJECT,
                            env=qabot_env(corpus_copy, settings.index_dir), capture_output=True, timeout=60)
    assert result.returncode == -signal.SIGKILL, result.stderr

    index, _ = load_index(folder, corpus_copy.resolve(), index_params(settings))  # never CacheInvalid
    if switched:
        fresh = answerer_for(settings_for(corpus_copy, tmp_path / "fresh-cache"))
        assert index.docs == fresh.index.docs
        assert answers_of_index(index, settings) == answers(fresh)
    else:
        assert index.docs == old.index.docs  # the old generation, complete and untouched
        assert answers_of_index(index, settings) == old_answers
    warnings: list[str] = []
    after = answerer_for(settings, warn=warnings.append)
    assert warnings == []
    assert any("Bonaventura" in p.text for p in after.ask("Who is Louis Bonaventura?").passages)


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory: pytest.TempPathFactory):
    """A synthetic corpus (6,000 sentences) whose indexing takes about a second, and its fresh answers."""
    base = tmp_path_factory.mktemp("big")
    corpus = base / "corpus"
    if not MAKE_CORPUS.is_file():
        pytest.skip(f"{MAKE_CORPUS} is absent (the team's ../shared material)")
    subprocess.run([sys.executable, str(MAKE_CORPUS), "--out", str(corpus),
                    "--sentences", "6000"], check=True, capture_output=True, timeout=120)
    articles = sorted(corpus.rglob("*.txt"))
    # Words of each article's first sentence (line 3: under the title and a blank line; titles are no passages).
    questions = tuple(" ".join(article.read_text("utf-8").splitlines()[2].split()[:12]) + "?"
                      for article in articles[::100][:6])
    settings = settings_for(corpus, base / "reference-cache")
    reference = answers(answerer_for(settings), questions)
    assert any(not answer.abstained for answer in reference)
    return corpus, questions, reference


def test_qabot_index_killed_at_random_moments_never_leaves_a_broken_index(big_corpus, tmp_path):
    corpus, questions, reference = big_corpus
    rng = random.Random(1234)
    outcomes, mid_write = [], 0
    for attempt in range(5):
        cache = tmp_path / f"cache-{attempt}"
        settings = settings_for(corpus, cache)
        folder = corpus_cache_dir(cache, corpus)
        process = subprocess.Popen([sys.executable, "-m", "qabot.cli", "index"], cwd=PROJECT,
                                   env=qabot_env(corpus, cache), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if attempt < 2:  # somewhere while reading and analysing
                time.sleep(rng.uniform(0.2, 0.8))
            else:  # once writing has begun, a random instant into it
                while process.poll() is None and not any(folder.glob("tmp-*")):
                    time.sleep(0.0005)
                time.sleep(rng.uniform(0, 0.015))
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(timeout=60)
        had_current = (folder / "CURRENT").exists()
        mid_write += any(folder.glob("tmp-*"))  # a generation was being written when it died
        warnings: list[str] = []
        index, report = open_index(corpus, cache, index_params(settings), warnings.append)
        assert warnings == []
        assert report.action == ("loaded" if had_current else "built")
        assert answers_of_index(index, settings, questions) == reference
        outcomes.append(report.action)
    assert "built" in outcomes  # at least one kill did land before the index was complete
    assert mid_write >= 1, outcomes


def test_two_processes_indexing_at_once_leave_a_complete_index(corpus_copy, tmp_path) -> None:
    """Builds, refreshes and refreshes over an aged cache (so clean-up runs), each by two racing processes."""
    cache = tmp_path / "cache"
    settings = settings_for(corpus_copy, cache)
    first = sorted(corpus_copy.glob("*.txt"))[0]
    for round_ in range(4):
        if round_ >= 1:
            first.write_text(first.read_text(encoding="utf-8") + f"\n\nRound {round_} brought okapi{round_}.\n",
                             encoding="utf-8")
        if round_ >= 2:  # every file in the cache looks old, so each writer's clean-up may delete
            past = time.time() - 120
            for path in cache.rglob("*"):
                os.utime(path, (past, past))
        racers = [subprocess.Popen([sys.executable, "-m", "qabot.cli", "index"], cwd=PROJECT,
                                   env=qabot_env(corpus_copy, cache), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE) for _ in range(2)]  # fmt: skip
        for racer in racers:
            _, err = racer.communicate(timeout=120)
            assert racer.returncode == 0, err
        warnings: list[str] = []
        index, report = open_index(corpus_copy, cache, index_params(settings), warnings.append)
        assert (report.action, warnings) == ("loaded", []), round_
        fresh = answerer_for(settings_for(corpus_copy, tmp_path / f"fresh-{round_}"))
        assert index.docs == fresh.index.docs
        assert answers_of_index(index, settings) == answers(fresh)
        if round_ >= 1:
            assert f"okapi{round_}" in index.vocab


def test_damage_that_moves_no_ctime_is_left_to_qabot_index_which_checks_every_checksum(built) -> None:
    """Bit rot moves no ctime: an ask maps the array unread (as documented); `qabot index` reads and checks it."""
    settings, folder, reference = built
    path = generation(folder) / "post_tf.npy"
    flip_byte(path, -3)
    meta = json.loads((generation(folder) / "meta.json").read_text(encoding="utf-8"))
    checksum = meta["arrays"]["post_tf"][0]  # the CRC of the bytes as written; the ctime as the disk now says
    edit_meta(folder, arrays={**meta["arrays"], "post_tf": [checksum, path.stat().st_size, path.stat().st_ctime_ns]})
    root, params = settings.corpus.resolve(), index_params(settings)
    load_index(folder, root, params)  # not read, so not caught
    with pytest.raises(CacheInvalid, match=r"checksum mismatch in post_tf\.npy"):
        load_index(folder, root, params, verify=True)
    result = subprocess.run([sys.executable, "-m", "qabot.cli", "index"], cwd=PROJECT,
                            env=qabot_env(settings.corpus, settings.index_dir), capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0 and "post_tf.npy" in result.stderr and "rebuilding" in result.stderr, result
    load_index(folder, root, params, verify=True)  # rebuilt: every checksum holds
    assert answers(answerer_for(settings)) == reference
