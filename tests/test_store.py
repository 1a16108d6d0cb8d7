"""Persistence: load equals build, refresh equals rebuild, and the question path stays light."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

from qabot import postings, store
from qabot.index import Index
from qabot.postings import analyze_documents
from qabot.store import ARRAYS, IndexParams, corpus_cache_dir, corpus_changed, open_index
from tests.conftest import PROJECT

PARAMS = IndexParams(1.2, 0.75, ("top of page", "bottom of page"), 10_000_000)


TEXT_PLACEMENT = {"doc_pack", "doc_text_start", "doc_text_end"}  # which pack holds a text may differ


def assert_same_index(a: Index, b: Index) -> None:
    assert a.docs == b.docs
    assert a.vocab == b.vocab
    for name in set(ARRAYS) - TEXT_PLACEMENT:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert [a.doc_text(d) for d in range(len(a.docs))] == [b.doc_text(d) for d in range(len(b.docs))]


def quiet(message: str) -> None:
    raise AssertionError(f"unexpected warning: {message}")


def test_second_open_loads_what_the_first_built(corpus_copy, tmp_path):
    built, first = open_index(corpus_copy, tmp_path / "cache", PARAMS, quiet)
    loaded, second = open_index(corpus_copy, tmp_path / "cache", PARAMS, quiet)
    assert (first.action, second.action) == ("built", "loaded")
    assert_same_index(built, loaded)
    assert isinstance(loaded.post_tf.base, np.memmap), "arrays are views of memory maps, not copies"


def test_refresh_after_add_change_remove_equals_full_rebuild(corpus_copy, tmp_path):
    open_index(corpus_copy, tmp_path / "cache", PARAMS, quiet)
    (corpus_copy / "001_0d1f7e7e4da08d96.txt").unlink()
    changed = corpus_copy / "003_b5d4c7ccf50ad595.txt"
    changed.write_text(changed.read_text(encoding="utf-8") + "\n\nA zebra crossing was painted in Yerevan.\n")
    (corpus_copy / "sub").mkdir()
    (corpus_copy / "sub" / "new.txt").write_text("Quokka diplomacy\n\nThe quokka summit ended.\n")
    refreshed, report = open_index(corpus_copy, tmp_path / "cache", PARAMS, quiet)
    assert (report.action, report.added, report.changed, report.removed) == ("refreshed", 1, 1, 1)
    rebuilt, _ = open_index(corpus_copy, tmp_path / "fresh-cache", PARAMS, quiet)
    assert_same_index(refreshed, rebuilt)
    assert "zebra" in refreshed.vocab and "quokka" in refreshed.vocab
    assert "ilkha" not in refreshed.vocab, "terms only the removed file had are gone"


def test_touching_a_file_without_changing_it_keeps_the_same_index(corpus_copy, tmp_path):
    before, _ = open_index(corpus_copy, tmp_path / "cache", PARAMS, quiet)
    path = corpus_copy / "002_87992cb26fa4a259.txt"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    after, report = open_index(corpus_copy, tmp_path / "cache", PARAMS, quiet)
    assert report.action == "refreshed"
    assert after.vocab == before.vocab and np.array_equal(after.post_tf, before.post_tf)
    _, again = open_index(corpus_copy, tmp_path / "cache", PARAMS, quiet)
    assert again.action == "loaded", "the new mtime was saved"


def test_changed_parameters_rebuild_with_a_warning(corpus_copy, tmp_path):
    open_index(corpus_copy, tmp_path / "cache", PARAMS, quiet)
    warnings: list[str] = []
    index, report = open_index(corpus_copy, tmp_path / "cache", dataclasses.replace(PARAMS, k1=1.5), warnings.append)
    assert report.action == "built" and index.k1 == 1.5
    assert len(warnings) == 1 and "k1" in warnings[0]


def test_cache_folder_is_per_corpus(tmp_path):
    a, b = corpus_cache_dir(tmp_path, Path("/x/news")), corpus_cache_dir(tmp_path, Path("/y/news"))
    assert a != b and a.parent == b.parent == tmp_path and a.name.startswith("news-")


def test_question_path_with_a_built_index_never_imports_nltk_or_discord(tmp_path):
    env = {**os.environ, "QABOT_CACHE_DIR": str(tmp_path / "cache"), "QABOT_CORPUS": str(PROJECT / "seeds")}
    probe = (
        "import sys; from qabot.cli import main; code = main(['ask', 'Who is Louis Bono?']);"
        "print('MODULES', 'nltk' in sys.modules, 'discord' in sys.modules, code)"
    )
    cold = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, cwd=PROJECT)
    assert "MODULES True False 0" in cold.stdout, "building segments with NLTK Punkt"
    warm = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, cwd=PROJECT)
    assert "MODULES False False 0" in warm.stdout
    assert "Louis Bono" in warm.stdout


def test_parallel_build_equals_serial_build(tmp_path, monkeypatch):
    from qabot import store

    corpus = tmp_path / "many"
    for i in range(45):
        (corpus / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        article = f"Title {i}\n\nThe envoy met minister {i}. Talks went on.\n"
        (corpus / f"d{i % 3}" / f"a{i:03d}.txt").write_text(article)
    serial, _ = open_index(corpus, tmp_path / "serial", PARAMS, quiet)
    monkeypatch.setattr(store, "PARALLEL_FILES", 10)
    monkeypatch.setattr(store, "BATCH_FILES", 7)
    parallel, report = open_index(corpus, tmp_path / "parallel", PARAMS, quiet)
    assert report.action == "built"
    assert_same_index(serial, parallel)
    assert len(parallel.docs) == 45


def test_parallel_build_with_another_thread_running_equals_serial_build(tmp_path, monkeypatch):
    """The bot reloads from a worker thread: its workers then come from a fork server, not a fork."""
    import threading

    corpus = tmp_path / "many"
    corpus.mkdir()
    for i in range(30):
        (corpus / f"a{i:03d}.txt").write_text(f"Title {i}\n\nThe U.S. envoy met minister {i}. Talks went on.\n")
    serial, _ = open_index(corpus, tmp_path / "serial", PARAMS, quiet)
    monkeypatch.setattr(store, "PARALLEL_FILES", 10)
    monkeypatch.setattr(store, "BATCH_FILES", 4)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert store._worker_context().get_start_method() == "forkserver"
        parallel, report = open_index(corpus, tmp_path / "parallel", PARAMS, quiet)
    finally:
        stop.set()
        other.join()
    assert report.action == "built"
    assert_same_index(serial, parallel)
    assert len(parallel.docs) == 30


def test_corpus_changed_sees_added_changed_removed_and_skipped_files(corpus_copy, tmp_path):
    def fresh_index():
        return open_index(corpus_copy, tmp_path / "cache", PARAMS, lambda message: None)[0]

    index = fresh_index()
    assert not corpus_changed(index, corpus_copy)
    path = corpus_copy / "002_87992cb26fa4a259.txt"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert corpus_changed(index, corpus_copy)
    index = fresh_index()
    (corpus_copy / "blob.txt").write_bytes(b"\x00\x01binary")
    assert corpus_changed(index, corpus_copy)
    index = fresh_index()
    assert not corpus_changed(index, corpus_copy), "a skipped file is remembered, not re-read"
    path.unlink()
    assert corpus_changed(index, corpus_copy)


def test_files_touched_but_unchanged_are_read_and_hashed_but_not_analyzed_again(corpus_copy, tmp_path, monkeypatch):
    open_index(corpus_copy, tmp_path / "cache", PARAMS, quiet)
    analyzed: list[str] = []

    def recording(docs, boilerplate):
        analyzed.extend(doc.path for doc in docs)
        return analyze_documents(docs, boilerplate)

    monkeypatch.setattr(postings, "analyze_documents", recording)  # store imports it when it analyzes
    for path in corpus_copy.glob("*.txt"):
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    same = corpus_copy / "004_d9f82656579fc0ba.txt"
    same.write_text(same.read_text(encoding="utf-8").replace("Mirzoyan", "Mirzoyam"), encoding="utf-8")
    index, report = open_index(corpus_copy, tmp_path / "cache", PARAMS, quiet)
    assert (report.action, report.changed) == ("refreshed", 1)
    assert analyzed == [same.name], "only the file whose bytes changed (same size) is analyzed"
    assert_same_index(index, open_index(corpus_copy, tmp_path / "fresh", PARAMS, quiet)[0])
    assert open_index(corpus_copy, tmp_path / "cache", PARAMS, quiet)[1].action == "loaded", "new mtimes saved"


def test_a_file_rewritten_in_place_with_its_size_and_mtime_restored_is_still_seen(corpus_copy, tmp_path):
    index, _ = open_index(corpus_copy, tmp_path / "cache", PARAMS, quiet)
    path = corpus_copy / "003_b5d4c7ccf50ad595.txt"
    before = path.stat()
    text = path.read_text(encoding="utf-8")
    word = max(set(text.split()), key=lambda w: (w.isascii() and w.isalpha(), len(w)))
    path.write_text(text.replace(word, "q" * len(word)), encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert after.st_ctime_ns != before.st_ctime_ns, "the write moved the status-change time"

    assert corpus_changed(index, corpus_copy)
    refreshed, report = open_index(corpus_copy, tmp_path / "cache", PARAMS, quiet)
    assert (report.action, report.added, report.changed, report.removed) == ("refreshed", 0, 1, 0)
    assert "q" * len(word) in refreshed.vocab
    rebuilt, _ = open_index(corpus_copy, tmp_path / "fresh-cache", PARAMS, quiet)
    assert_same_index(refreshed, rebuilt)
    assert open_index(corpus_copy, tmp_path / "cache", PARAMS, quiet)[1].action == "loaded"


def test_an_index_stored_without_status_change_times_opens_and_checks_each_file_once(corpus_copy, tmp_path):
    """An index whose files' ctimes are unknown (-1) is not rebuilt: each file's bytes are compared with its
    sha256 once, none is analyzed again, and the times are stored from then on."""
    built, _ = open_index(corpus_copy, tmp_path / "cache", PARAMS, quiet)
    folder = corpus_cache_dir(tmp_path / "cache", corpus_copy)
    generation, _ = (folder / "CURRENT").read_text(encoding="ascii").split()
    column = folder / generation / "doc_ctime_ns.npy"
    np.save(column, np.full(len(built.docs), -1, dtype=np.int64))
    meta = json.loads((folder / generation / "meta.json").read_bytes())
    status = column.stat()
    checksum = f"crc32:{zlib.crc32(column.read_bytes()):08x}"
    meta["arrays"]["doc_ctime_ns"] = [checksum, status.st_size, status.st_ctime_ns]
    meta["skipped"] = [row[:4] for row in meta["skipped"]]
    meta_bytes = json.dumps(meta, ensure_ascii=False).encode("utf-8")
    (folder / generation / "meta.json").write_bytes(meta_bytes)
    (folder / "CURRENT").write_text(f"{generation} {hashlib.sha256(meta_bytes).hexdigest()}\n", encoding="ascii")

    older, _ = store.load_index(folder, corpus_copy.resolve(), PARAMS)
    assert {doc.ctime_ns for doc in older.docs} == {-1}
    reopened, report = open_index(corpus_copy, tmp_path / "cache", PARAMS, quiet)
    assert (report.action, report.added, report.changed, report.removed) == ("refreshed", 0, 0, 0)
    assert_same_index(reopened, built)
    assert open_index(corpus_copy, tmp_path / "cache", PARAMS, quiet)[1].action == "loaded"
