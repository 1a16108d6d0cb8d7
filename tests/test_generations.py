"""Stored arrays: an untouched array is mapped without being read, a written one is checked in full, and
string columns (JsonColumn, DocTable) give back exactly what was stored."""

from __future__ import annotations

import os

import numpy as np
import pytest

from qabot import generations
from qabot.generations import CacheInvalid, JsonColumn, load_array, write_array
from qabot.index import DocInfo, DocTable


@pytest.fixture
def checksums_computed(monkeypatch) -> list[str]:
    """The names of the files whose CRC-32 the code under test computes."""
    names: list[str] = []
    real = generations.file_checksum

    def counting(path):
        names.append(path.name)
        return real(path)

    monkeypatch.setattr(generations, "file_checksum", counting)
    return names


def test_an_untouched_array_is_mapped_without_reading_it_and_a_rewritten_one_is_checked(tmp_path, checksums_computed):
    path = tmp_path / "a.npy"
    record = write_array(path, np.arange(1000, dtype=np.int64))
    assert np.array_equal(load_array(path, record), np.arange(1000))
    assert checksums_computed == [], "its ctime is the recorded one: nothing wrote to it since its CRC was computed"

    while path.stat().st_ctime_ns == record[2]:  # touched, bytes unchanged (until the clock's next tick)
        os.utime(path)
    assert np.array_equal(load_array(path, record), np.arange(1000)), "its ctime moved: read, checked, loaded"
    assert checksums_computed == ["a.npy"]

    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # one bit, the size unchanged
    path.write_bytes(bytes(data))
    with pytest.raises(CacheInvalid, match=r"checksum mismatch in a\.npy"):
        load_array(path, record)
    with open(path, "r+b") as handle:
        handle.truncate(100)
    with pytest.raises(CacheInvalid, match="has 100 bytes"):
        load_array(path, record)  # a shorter file is refused from its size alone


@pytest.mark.parametrize("record", [None, "crc32:00000000", ["crc32:00000000", 10], ["crc32:0", "10", 5], [1, 2, 3]])
def test_a_damaged_record_is_refused(tmp_path, record):
    path = tmp_path / "a.npy"
    write_array(path, np.zeros(3))
    with pytest.raises(CacheInvalid, match=r"record of a\.npy is damaged"):
        load_array(path, record)


VALUES = ["plain", "", "two\nlines", 'quote " and \\ backslash', "Erdoğan 東京 🙂", "lone \udcff surrogate", None,
          "x" * 300]  # fmt: skip


def test_a_json_column_gives_back_every_value_one_at_a_time_or_all_at_once():
    column = JsonColumn(*JsonColumn.encode(VALUES))
    assert len(column) == len(VALUES)
    assert [column[i] for i in range(len(VALUES))] == VALUES == column.decoded() == list(column)
    assert column[-1] == VALUES[-1] and column[2:4] == VALUES[2:4]
    assert column == VALUES and column == tuple(VALUES) and column != VALUES[:-1]
    with pytest.raises(IndexError):
        column[len(VALUES)]
    empty = JsonColumn(*JsonColumn.encode([]))
    assert len(empty) == 0 and empty.decoded() == [] and empty == ()


def test_a_json_column_whose_arrays_disagree_is_refused():
    text, starts = JsonColumn.encode(["a", "b", "c"])
    for bad_starts in (starts[:-1], starts[::-1].copy(), starts + 1):
        with pytest.raises(CacheInvalid):
            JsonColumn(text, bad_starts)
    broken = text.copy()
    broken[1] = ord("x")  # "a" loses its opening quote: the list no longer parses
    with pytest.raises(CacheInvalid):
        JsonColumn(broken, starts).decoded()


def test_a_doc_table_is_the_documents_it_stored():
    docs = (
        DocInfo("a/one.txt", "0" * 64, "One", "2024-01-02", 10, 1, 2, "https://example.org/one"),
        DocInfo("b\nodd name.md", "f" * 64, "Zwei — zwei", None, 0, -5, -1, None),
    )
    table = DocTable.stored(DocTable.columns(docs))
    for _ in range(2):  # made one by one, then kept once iterated
        assert table[1] == docs[1] and table[-1] == docs[-1] and table[:1] == list(docs[:1])
        assert table == docs and tuple(table) == docs and docs == table
    assert table.paths == ["a/one.txt", "b\nodd name.md"]
    assert list(table.sizes) == [10, 0] and list(table.ctimes_ns) == [2, -1]
    columns = DocTable.columns(docs)
    columns["doc_size"] = columns["doc_size"][:1]
    with pytest.raises(CacheInvalid, match="columns do not agree"):
        DocTable.stored(columns)
