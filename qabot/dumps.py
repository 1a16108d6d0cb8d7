"""News dumps for `qabot add`: JSON Lines (plain or gzipped) and CSV, one article per record.

Records are read one at a time in bounded memory: an oversized record, a gzip that expands far
beyond its size, bad JSON or bytes that are not UTF-8 skip that record (or the rest of the file,
when it cannot be read on), never the records before it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from qabot.errors import ImportRefused
from qabot.imported import Article, Skip, has_text, iso_date, web_address

# The usual names of each field in news APIs' and scrapers' exports, in order of preference.
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "title": ("title", "headline"),
    "date": ("date", "published", "published_at", "pubDate", "publishedAt", "datePublished"),
    "url": ("url", "link"),
    "text": ("text", "body", "content"),
    "author": ("author", "authors", "byline"),
}
MAX_RECORD_BYTES = 8_000_000  # a record (one JSON line, one CSV row) larger than this is skipped
MAX_EXPANSION = 100  # a .gz may decompress to this many times its size (text compresses 3-10 times) ...
MIN_EXPANSION_BYTES = 64_000_000  # ... or to this much, whichever is more
BLOCK = 1 << 20


def field_mapping(pairs: list[str]) -> dict[str, str]:
    """{'text': 'article_body'} from ['text=article_body']; ImportRefused for an unknown field or a bad pair."""
    mapping = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not column:
            raise ImportRefused(f"--field {pair!r}: expected FIELD=NAME, for example --field text=article_body")
        if field not in FIELD_NAMES:
            raise ImportRefused(f"--field {pair!r}: {field!r} is not a field; use one of {', '.join(FIELD_NAMES)}")
        mapping[field] = column
    return mapping


def read_dump(path: Path, fields: Mapping[str, str]) -> Iterator[Article | Skip]:
    """The articles of a .jsonl, .jsonl.gz or .csv dump, with a Skip naming each record left out."""
    try:
        handle = open(path, "rb")  # noqa: SIM115  # closed by the with below; an open error is a Skip
    except OSError as exc:
        yield Skip("", f"cannot be read ({exc.strerror or exc})")
        return
    with handle:
        if path.name.lower().endswith(".csv"):
            yield from _csv_records(handle, fields)
            return
        if path.name.lower().endswith(".gz"):
            limit = max(MAX_EXPANSION * path.stat().st_size, MIN_EXPANSION_BYTES)
            stream: BinaryIO = _Bounded(gzip.GzipFile(fileobj=handle), limit)  # type: ignore[assignment]
        else:
            stream = handle
        yield from _json_lines(stream, fields)


class _ExpandsTooMuch(Exception):
    """A compressed dump decompressed past its limit."""


class _Bounded(io.RawIOBase):
    """A binary stream that raises _ExpandsTooMuch once more than `limit` bytes were read from it."""

    def __init__(self, inner: BinaryIO, limit: int) -> None:
        self.inner, self.limit, self.read_so_far = inner, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(len(buffer))
        self.read_so_far += len(data)
        if self.read_so_far > self.limit:
            raise _ExpandsTooMuch(f"decompresses to over {self.limit:,} bytes (a compression bomb?)")
        buffer[: len(data)] = data
        return len(data)


def _lines(stream: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(line number, the line's bytes) for each line; None for a line over MAX_RECORD_BYTES (read past,
    never held)."""
    reader = io.BufferedReader(stream, BLOCK) if isinstance(stream, io.RawIOBase) else stream
    number = 0
    while True:
        line = reader.readline(MAX_RECORD_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
            while (rest := reader.readline(BLOCK)) and not rest.endswith(b"\n"):
                pass
            yield number, None
            continue
        yield number, line


def _json_lines(stream: BinaryIO, fields: Mapping[str, str]) -> Iterator[Article | Skip]:
    number = 0
    try:
        for number, line in _lines(stream):
            where = f"line {number}"
            if line is None:
                yield Skip(where, f"record is over the {MAX_RECORD_BYTES:,}-byte limit")
                continue
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Skip(where, f"not UTF-8 (bad byte at offset {exc.start})")
                continue
            try:
                record = json.loads(text)
            except (ValueError, RecursionError) as exc:
                yield Skip(where, f"bad JSON ({getattr(exc, 'msg', exc.__class__.__name__)})")
                continue
            if not isinstance(record, dict):
                yield Skip(where, f"a JSON {type(record).__name__}, not an object")
                continue
            yield article_of(record, fields, where)
    except _ExpandsTooMuch as exc:
        yield Skip(f"after line {number}", f"{exc}; the rest of the file is skipped")
    except (OSError, EOFError, zlib.error) as exc:
        yield Skip(f"after line {number}", f"the file cannot be read on ({exc}); the rest of it is skipped")


def _csv_records(handle: BinaryIO, fields: Mapping[str, str]) -> Iterator[Article | Skip]:
    # Bytes that are not UTF-8 become lone surrogates, so one bad row is found and skipped, not the file.
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="surrogateescape", newline="")
    previous = csv.field_size_limit(MAX_RECORD_BYTES)  # csv's limit is global; restored below
    try:
        reader = csv.DictReader(text)
        try:
            for row in reader:
                where = f"row {reader.line_num}"
                if None in row:
                    yield Skip(where, f"{len(row[None]) + len(reader.fieldnames or ())} columns, the header has "
                                      f"{len(reader.fieldnames or ())}")  # fmt: skip
                    continue
                if any(_has_surrogate(value) for value in row.values() if value):
                    yield Skip(where, "not UTF-8")
                    continue
                yield article_of(row, fields, where)
        except csv.Error as exc:
            yield Skip(f"row {reader.line_num}", f"bad CSV ({exc}); the rest of the file is skipped")
    finally:
        csv.field_size_limit(previous)


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def article_of(record: Mapping[str, object], fields: Mapping[str, str], where: str) -> Article | Skip:
    """The Article a dump record describes (its fields found by the usual names, or as mapped), or why not."""
    by_name = {str(key).casefold(): value for key, value in record.items()}

    def value(field: str) -> object:
        names = (fields[field],) if field in fields else FIELD_NAMES[field]
        for name in names:
            found = record.get(name, by_name.get(name.casefold()))
            if found not in (None, ""):
                return found
        return None

    text = value("text")
    if text is None:
        names = (fields["text"],) if "text" in fields else FIELD_NAMES["text"]
        return Skip(where, f"no text field (looked for {', '.join(names)}; map another with --field text=NAME)")
    if not isinstance(text, str) or not has_text(text):
        return Skip(where, "empty text" if isinstance(text, str) else f"text is a {type(text).__name__}, not text")
    return Article(text, _plain(value("title")), iso_date(value("date")), web_address(value("url")),
                   _author(value("author")))  # fmt: skip


def _plain(value: object) -> str | None:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return " ".join(str(value).split()) or None
    return None


def _author(value: object) -> str | None:
    if isinstance(value, list):
        names = [_plain(item.get("name") if isinstance(item, dict) else item) for item in value]
        return ", ".join(name for name in names if name) or None
    if isinstance(value, dict):
        return _plain(value.get("name"))
    return _plain(value)
