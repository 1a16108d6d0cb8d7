"""Text packs: the documents' UTF-8 bytes, one after another, in immutable arrays that index
generations share, so a refresh writes only the text that changed; and where each document's text
lies in them, with the compaction that keeps dead bytes and small packs in check.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

COMPACT_LIVE_SHARE = 0.5  # below this share of live bytes, all text is rewritten into one pack
MAX_PACKS = 16  # above this many, every pack but the largest is merged into one


@dataclass(frozen=True, slots=True)
class TextPack:
    """Documents' UTF-8 bytes, one after another; immutable once written, shared by index versions.

    `checksum` is known once the pack is on disk under its `name`.
    """

    name: str
    data: np.ndarray  # uint8
    checksum: str | None = None

    @staticmethod
    def new(data: np.ndarray) -> TextPack:
        return TextPack(uuid.uuid4().hex, data)


@dataclass(frozen=True, slots=True)
class TextLayout:
    """Where each document's text lives: text_packs[doc_pack[d]].data[doc_text_start[d]:doc_text_end[d]]
    (UTF-8 byte offsets)."""

    text_packs: tuple[TextPack, ...]
    doc_pack: np.ndarray  # int32[D]
    doc_text_start: np.ndarray  # int64[D]
    doc_text_end: np.ndarray  # int64[D]

    def fields(self) -> dict:
        """The layout as the Index's fields of the same names."""
        return {"text_packs": self.text_packs, "doc_pack": self.doc_pack, "doc_text_start": self.doc_text_start,
                "doc_text_end": self.doc_text_end}  # fmt: skip


def _offsets(lengths: np.ndarray) -> np.ndarray:
    """Start offsets of consecutive pieces of these lengths, and the end of the last."""
    ptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=ptr[1:])
    return ptr


def _joined(pieces: Sequence[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate([np.empty(0, dtype=dtype), *pieces]).astype(dtype, copy=False)


def text_layout(
    texts: Sequence[tuple[np.ndarray, np.ndarray]],
    doc_runs: Sequence[tuple[int, int, int]],
    old: TextLayout | None = None,
) -> TextLayout:
    """Where each document's text lives, for documents copied in runs (chunk, first, stop) from chunks
    whose text is texts[chunk] = (bytes one after another, bytes per document). When old is given,
    chunk 0 is its documents, which stay in their packs; the rest is copied into one new pack."""
    packs, fresh = list(old.text_packs) if old else [], []
    doc_pack, starts, ends = [], [], []
    written = 0
    for c, first, stop in doc_runs:
        if old is not None and c == 0:
            doc_pack.append(old.doc_pack[first:stop])
            starts.append(old.doc_text_start[first:stop])
            ends.append(old.doc_text_end[first:stop])
            continue
        text, text_lengths = texts[c]
        text_ptr = _offsets(text_lengths)
        fresh.append(text[text_ptr[first] : text_ptr[stop]])
        doc_pack.append(np.full(stop - first, len(packs), dtype=np.int32))
        starts.append(text_ptr[first:stop] - text_ptr[first] + written)
        ends.append(text_ptr[first + 1 : stop + 1] - text_ptr[first] + written)
        written += int(text_ptr[stop] - text_ptr[first])
    if fresh:
        packs.append(TextPack.new(_joined(fresh, np.uint8)))

    return TextLayout(tuple(packs), _joined(doc_pack, np.int32), _joined(starts, np.int64), _joined(ends, np.int64))


def compacted(layout: TextLayout) -> TextLayout:
    """The text layout without packs no document uses, and with dead bytes and small packs merged
    away once they outweigh the live text.

    Mostly dead packs: every document is copied into one new pack. Too many packs: all packs but
    the largest are merged into one. Otherwise only unused packs are dropped.
    """
    text_packs, doc_pack = layout.text_packs, layout.doc_pack
    doc_text_start, doc_text_end = layout.doc_text_start, layout.doc_text_end
    used = np.bincount(doc_pack, minlength=len(text_packs)) > 0
    if not used.all():
        text_packs = tuple(pack for pack, u in zip(text_packs, used, strict=True) if u)
        doc_pack = (np.cumsum(used) - 1)[doc_pack].astype(np.int32)
    sizes = np.array([len(pack.data) for pack in text_packs], dtype=np.int64)
    live = int((doc_text_end - doc_text_start).sum())
    if live >= COMPACT_LIVE_SHARE * sizes.sum() and len(text_packs) <= MAX_PACKS:
        return TextLayout(text_packs, doc_pack, doc_text_start, doc_text_end)
    moved = (
        np.ones(len(text_packs), dtype=bool)
        if live < COMPACT_LIVE_SHARE * sizes.sum()
        else np.arange(len(text_packs)) != np.argmax(sizes)
    )
    kept_packs = [pack for pack, m in zip(text_packs, moved, strict=True) if not m]
    renumber = np.cumsum(~moved) - 1
    copied = np.flatnonzero(moved[doc_pack])
    placed = _offsets(doc_text_end[copied] - doc_text_start[copied])
    pieces = [text_packs[doc_pack[d]].data[doc_text_start[d] : doc_text_end[d]] for d in copied.tolist()]
    starts, ends = doc_text_start.copy(), doc_text_end.copy()
    starts[copied], ends[copied] = placed[:-1], placed[1:]
    doc_pack = np.where(moved[doc_pack], len(kept_packs), renumber[doc_pack]).astype(np.int32)
    return TextLayout((*kept_packs, TextPack.new(_joined(pieces, np.uint8))), doc_pack, starts, ends)
