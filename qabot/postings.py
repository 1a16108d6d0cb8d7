"""Building and refreshing an Index: documents segmented and analyzed into Chunks, laid out by path
with one sorted vocabulary, their posting lists made (build) or merged into the old ones (refresh).

A refresh equals a build over the same documents (same order, vocabulary, ids and postings), but
copies what it keeps as arrays, re-reads nothing and never sorts all postings again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, pairwise
from pathlib import Path

import numpy as np

from qabot.analyze import analyze
from qabot.answer_type import sentence_cues
from qabot.corpus import Document, Skipped
from qabot.index import DocInfo, Index
from qabot.segment import line_starts, paragraph_breaks, sentence_spans
from qabot.text_packs import TextLayout, compacted, text_layout
from qabot.variants import BigramTable, bigram_table, renumbered_table


@dataclass(frozen=True, slots=True)
class Chunk:
    """Documents' sentences and terms as flat arrays: what building and refreshing assemble.

    `tok_ids` index into this chunk's own `vocab`; offsets are characters into each document.
    """

    docs: tuple[DocInfo, ...]
    text: np.ndarray  # uint8: the documents' UTF-8 text, one after another
    text_lengths: np.ndarray  # int64, bytes per document
    sent_counts: np.ndarray  # int64, indexed sentences per document
    starts: np.ndarray  # int64 per sentence
    ends: np.ndarray
    lines: np.ndarray  # int32 per sentence, 1-based
    end_lines: np.ndarray
    columns: np.ndarray  # int32 per sentence, 1-based: characters from its line's start to its own
    para_before: np.ndarray  # int32 per sentence: sentences of its paragraph before it
    para_after: np.ndarray  # int32 per sentence: sentences of its paragraph after it
    cues: np.ndarray  # uint8 per sentence: answer_type.sentence_cues
    lengths: np.ndarray  # int64, terms per sentence
    tok_ids: np.ndarray  # int32 per term occurrence
    vocab: tuple[str, ...]


def _joined(pieces: Sequence[np.ndarray], dtype: type) -> np.ndarray:
    """The pieces one after another as one array of dtype (empty when there are none)."""
    return np.concatenate([np.empty(0, dtype=dtype), *pieces]).astype(dtype, copy=False)


def analyze_documents(docs: Sequence[Document], boilerplate: re.Pattern[str] | None) -> Chunk:
    """Segment and analyze documents into one Chunk; boilerplate sentences are left out."""
    terms_in_order: list[str] = []
    texts, starts, ends, lines, end_lines, lengths, counts = [], [], [], [], [], [], []
    before, after, cues, columns = [], [], [], []
    for doc in docs:
        spans = [(start, end) for start, end, flagged in sentence_spans(doc.text, boilerplate, doc.head)
                 if not flagged]
        first = np.fromiter((start for start, _ in spans), dtype=np.int64, count=len(spans))
        last = np.fromiter((end for _, end in spans), dtype=np.int64, count=len(spans))
        newlines = np.array(line_starts(doc.text), dtype=np.int64)
        for start, end in spans:
            sentence = doc.text[start:end]
            terms = analyze(sentence)
            cues.append(sentence_cues(sentence))
            columns.append(start - doc.text.rfind("\n", 0, start))
            lengths.append(len(terms))
            terms_in_order.extend(terms)
        texts.append(doc.text.encode("utf-8"))
        starts.append(first)
        ends.append(last)
        lines.append(np.searchsorted(newlines, first, side="right"))
        end_lines.append(np.searchsorted(newlines, np.maximum(last - 1, first), side="right"))
        paragraph = np.searchsorted(np.array(paragraph_breaks(doc.text), dtype=np.int64), first)
        position = np.arange(len(spans))
        before.append(position - np.searchsorted(paragraph, paragraph, side="left"))
        after.append(np.searchsorted(paragraph, paragraph, side="right") - 1 - position)
        counts.append(len(spans))
    # Terms are numbered in order of first use, by C-level passes rather than a lookup per token in Python.
    local = {term: i for i, term in enumerate(dict.fromkeys(terms_in_order))}
    tok_ids = np.fromiter(map(local.__getitem__, terms_in_order), dtype=np.int32, count=len(terms_in_order))

    return Chunk(
        docs=tuple(DocInfo(d.path, d.sha256, d.title, d.date, d.size, d.mtime_ns, d.ctime_ns, d.url) for d in docs),
        text=np.frombuffer(b"".join(texts), dtype=np.uint8),
        text_lengths=np.array([len(text) for text in texts], dtype=np.int64),
        sent_counts=np.array(counts, dtype=np.int64),
        starts=_joined(starts, np.int64),
        ends=_joined(ends, np.int64),
        lines=_joined(lines, np.int32),
        end_lines=_joined(end_lines, np.int32),
        columns=np.array(columns, dtype=np.int32),
        para_before=_joined(before, np.int32),
        para_after=_joined(after, np.int32),
        cues=np.array(cues, dtype=np.uint8),
        lengths=np.array(lengths, dtype=np.int64),
        tok_ids=tok_ids,
        vocab=tuple(local),
    )


def build_index(root: Path, chunks: Sequence[Chunk], skipped: Sequence[Skipped], k1: float, b: float) -> Index:
    """An Index of the chunks' documents, ordered by path, with a sorted vocabulary."""
    layout = _assemble(chunks)
    postings = _postings(layout.arrays["tok_ids"], layout.lengths, len(layout.vocab))
    return Index(root=root, docs=layout.docs, skipped=tuple(skipped), k1=k1, b=b, vocab=layout.vocab,
                 **text_layout(_texts(chunks), layout.doc_runs).fields(), **layout.arrays, **postings,
                 **_derived(bigram_table(layout.vocab), postings))  # fmt: skip


def refresh_index(
    old: Index,
    changed: Sequence[Chunk],
    keep: Iterable[str],
    skipped: Sequence[Skipped],
    renewed: Mapping[str, DocInfo] | None = None,
) -> Index:
    """A new Index of old's documents in `keep` (arrays reused, nothing re-read) plus `changed` ones;
    `renewed` gives new DocInfo (a new mtime, same bytes) for some kept documents.

    The result equals build_index over the same documents: same order, vocabulary, ids and postings.
    Old postings are remapped and the changed documents' postings merged in, without a full sort.
    """
    keep = set(keep) - {doc.path for chunk in changed for doc in chunk.docs}
    renewed = renewed or {}
    stored = Chunk(
        docs=tuple(renewed.get(doc.path, doc) for doc in old.docs),
        text=np.empty(0, dtype=np.uint8),  # kept documents keep their text where it is
        text_lengths=old.doc_text_end - old.doc_text_start,
        sent_counts=np.diff(old.doc_sent_ptr),
        starts=old.sent_start,
        ends=old.sent_end,
        lines=old.sent_line,
        end_lines=old.sent_end_line,
        columns=old.sent_column,
        para_before=old.sent_para_before,
        para_after=old.sent_para_after,
        cues=old.sent_cues,
        lengths=np.diff(old.tok_ptr),
        tok_ids=old.tok_ids,
        vocab=old.vocab,
    )
    chunks = [stored, *changed]
    layout = _assemble(chunks, wanted=lambda doc: doc.path in keep)
    postings = _merged_postings(old, layout)
    kept_text = TextLayout(old.text_packs, old.doc_pack, old.doc_text_start, old.doc_text_end)
    text = compacted(text_layout(_texts(chunks), layout.doc_runs, kept_text))
    return Index(root=old.root, docs=layout.docs, skipped=tuple(skipped), k1=old.k1, b=old.b, vocab=layout.vocab,
                 **text.fields(), **layout.arrays, **postings,
                 **_derived(renumbered_table(old.bigrams, layout.first_term_map, layout.vocab), postings))  # fmt: skip


def _texts(chunks: Sequence[Chunk]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(chunk.text, chunk.text_lengths) for chunk in chunks]


def _derived(table: BigramTable, postings: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What an Index stores beside its postings so that no process recomputes it: term bounds, bigrams."""
    bigrams = {"gram_codes": table.codes, "gram_ptr": table.ptr, "gram_terms": table.terms,
               "term_grams": table.term_grams, "term_length": table.term_length, "term_first": table.term_first}
    return {**_term_bounds(postings["post_ptr"], postings["post_tf"], postings["post_len"]), **bigrams}


def _term_bounds(post_ptr: np.ndarray, post_tf: np.ndarray, post_len: np.ndarray) -> dict[str, np.ndarray]:
    """Per term: the largest tf and the shortest sentence among its postings (every term has one)."""
    if not len(post_tf):
        return {"term_max_tf": np.empty(0, dtype=np.uint16), "term_min_len": np.empty(0, dtype=np.uint16)}
    return {
        "term_max_tf": np.maximum.reduceat(post_tf, post_ptr[:-1]).astype(np.uint16),
        "term_min_len": np.minimum.reduceat(post_len, post_ptr[:-1]).astype(np.uint16),
    }


@dataclass(frozen=True, slots=True)
class _Layout:
    """Everything of an Index but its postings, and where each chunk's sentences and terms went."""

    docs: tuple[DocInfo, ...]
    vocab: tuple[str, ...]
    arrays: dict[str, np.ndarray]
    lengths: np.ndarray  # int64, terms per sentence
    doc_runs: list[tuple[int, int, int]]  # (chunk, first, stop) of documents copied, in order
    first_term_map: np.ndarray  # chunk 0's term id -> new term id, -1 if no longer used
    sentence_runs: list[tuple[int, int, int, int]]  # (chunk, first, stop, new first) of copied sentences


def _pointers(counts: np.ndarray) -> np.ndarray:
    ptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr


def _assemble(chunks: Sequence[Chunk], wanted: Callable[[DocInfo], bool] | None = None) -> _Layout:
    """The chunks' documents (those of the first chunk that `wanted` accepts) laid out by path.

    Documents are copied a run of consecutive ones at a time, straight from their chunk, so time and
    memory grow with the output; terms are renumbered into one sorted vocabulary of the terms used.
    """
    picked = [
        (doc.path, c, i)
        for c, chunk in enumerate(chunks)
        for i, doc in enumerate(chunk.docs)
        if c > 0 or wanted is None or wanted(doc)
    ]
    picked.sort()
    runs: list[list[int]] = []  # [chunk, first doc, stop doc]
    for _, c, i in picked:
        if runs and runs[-1][0] == c and runs[-1][2] == i:
            runs[-1][2] += 1
        else:
            runs.append([c, i, i + 1])

    # Union ids in order of first appearance, found by C-level passes (a build unions millions of terms).
    union = {term: i for i, term in enumerate(dict.fromkeys(chain.from_iterable(chunk.vocab for chunk in chunks)))}
    to_union = [
        np.fromiter(map(union.__getitem__, chunk.vocab), dtype=np.int32, count=len(chunk.vocab)) for chunk in chunks
    ]
    pointers = [(_pointers(chunk.sent_counts), _pointers(chunk.lengths)) for chunk in chunks]
    renamed = [not np.array_equal(ids, np.arange(len(ids))) for ids in to_union]  # the first chunk's ids stay

    def take(field: str, level: str, dtype: type) -> np.ndarray:
        pieces = []
        for c, first, stop in runs:
            sent_ptr, tok_ptr = pointers[c]
            if level == "doc":
                lo, hi = first, stop
            elif level == "sentence":
                lo, hi = sent_ptr[first], sent_ptr[stop]
            else:
                lo, hi = tok_ptr[sent_ptr[first]], tok_ptr[sent_ptr[stop]]
            piece = getattr(chunks[c], field)[lo:hi]
            pieces.append(to_union[c][piece] if field == "tok_ids" and renamed[c] else piece)
        return _joined(pieces, dtype)

    tok_ids = take("tok_ids", "token", np.int32)
    union_terms = list(union)
    used = np.flatnonzero(np.bincount(tok_ids, minlength=len(union_terms)))
    vocab = sorted(union_terms[i] for i in used.tolist())
    renumber = np.full(len(union_terms), -1, dtype=np.int32)
    renumber[[union[term] for term in vocab]] = np.arange(len(vocab), dtype=np.int32)
    tok_ids = renumber[tok_ids]
    sent_counts = take("sent_counts", "doc", np.int64)
    lengths = take("lengths", "sentence", np.int64)
    sentence_runs, placed = [], 0
    for c, first, stop in runs:
        lo, hi = pointers[c][0][first], pointers[c][0][stop]
        sentence_runs.append((c, int(lo), int(hi), placed))
        placed += int(hi - lo)
    arrays = {
        "doc_sent_ptr": _pointers(sent_counts),
        "sent_doc": np.repeat(np.arange(len(sent_counts), dtype=np.int32), sent_counts),
        "sent_start": take("starts", "sentence", np.int64),
        "sent_end": take("ends", "sentence", np.int64),
        "sent_line": take("lines", "sentence", np.int32),
        "sent_end_line": take("end_lines", "sentence", np.int32),
        "sent_column": take("columns", "sentence", np.int32),
        "sent_para_before": take("para_before", "sentence", np.int32),
        "sent_para_after": take("para_after", "sentence", np.int32),
        "sent_cues": take("cues", "sentence", np.uint8),
        "tok_ptr": _pointers(lengths),
        "tok_ids": tok_ids,
    }
    return _Layout(
        docs=tuple(chunks[c].docs[i] for _, c, i in picked),
        vocab=tuple(vocab),
        arrays=arrays,
        lengths=lengths,
        doc_runs=[(c, first, stop) for c, first, stop in runs],
        first_term_map=renumber[to_union[0]] if chunks else np.empty(0, dtype=np.int32),
        sentence_runs=sentence_runs,
    )


def _postings(tok_ids: np.ndarray, lengths: np.ndarray, n_terms: int) -> dict[str, np.ndarray]:
    """Posting lists (term-major, sentences ascending) with term frequencies, fully vectorised.

    Works in place where it can: on a VM, touching fresh memory costs more than the arithmetic.
    """
    n_sent = len(lengths)
    bits = max(n_sent, 1).bit_length()  # (term << bits) | sentence sorts term-major, then by sentence
    pairs = tok_ids.astype(np.int64)
    pairs <<= bits
    pairs |= np.repeat(np.arange(n_sent, dtype=np.int64), lengths)
    pairs.sort()
    first = np.empty(len(pairs), dtype=bool)
    first[:1] = True
    np.not_equal(pairs[1:], pairs[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    post_tf = np.diff(starts, append=len(pairs)).astype(np.uint16)  # a sentence holds at most 1000 characters
    pairs = pairs[starts]
    del starts, first
    post_sent = (pairs & ((1 << bits) - 1)).astype(np.int32)
    pairs >>= bits
    df = np.bincount(pairs, minlength=n_terms).astype(np.int64)
    post_len = lengths.astype(np.uint16)[post_sent]
    return {"df": df, "post_ptr": _pointers(df), "post_sent": post_sent, "post_tf": post_tf, "post_len": post_len}


def _merged_postings(old: Index, layout: _Layout) -> dict[str, np.ndarray]:
    """The postings of a refreshed layout: old's postings of kept sentences, renumbered (both maps
    keep order, so they stay sorted), with the postings of the newly read sentences inserted."""
    sent_map = np.full(old.n_sentences, -1, dtype=np.int32)
    new_sents = []
    for c, lo, hi, placed in layout.sentence_runs:
        if c == 0:
            sent_map[lo:hi] = np.arange(placed, placed + hi - lo, dtype=np.int32)
        else:
            new_sents.append(np.arange(placed, placed + hi - lo, dtype=np.int64))
    renumbered = sent_map[old.post_sent]
    dropped = np.flatnonzero(renumbered < 0)
    dropped_terms = np.searchsorted(old.post_ptr, dropped, side="right") - 1
    kept_per_old_term = old.df - np.bincount(dropped_terms, minlength=len(old.vocab))
    kept_sent = _spliced(renumbered, dropped, np.empty(0, dtype=np.int64), renumbered[:0])
    del renumbered
    kept_df = np.zeros(len(layout.vocab), dtype=np.int64)
    live = kept_per_old_term > 0  # a term with no kept sentence may have left the vocabulary
    kept_df[layout.first_term_map[live]] = kept_per_old_term[live]
    kept_ptr = _pointers(kept_df)

    sents = np.concatenate(new_sents) if new_sents else np.empty(0, dtype=np.int64)
    lengths = layout.lengths[sents]
    first_token = layout.arrays["tok_ptr"][sents] - _pointers(lengths)[:-1]
    tokens = np.repeat(first_token, lengths) + np.arange(int(lengths.sum()))
    fresh = _postings(layout.arrays["tok_ids"][tokens], lengths, len(layout.vocab))
    fresh_sent = sents[fresh["post_sent"]].astype(np.int32)
    # Where each new posting goes among the kept ones: after its term's earlier terms, by sentence.
    insert_at = np.empty(len(fresh_sent), dtype=np.int64)
    for term in np.flatnonzero(fresh["df"]).tolist():
        lo, hi = fresh["post_ptr"][term], fresh["post_ptr"][term + 1]
        kept_lo, kept_hi = kept_ptr[term], kept_ptr[term + 1]
        insert_at[lo:hi] = kept_lo + np.searchsorted(kept_sent[kept_lo:kept_hi], fresh_sent[lo:hi])
    df = kept_df + fresh["df"]
    merged = {
        "post_sent": _spliced(kept_sent, np.empty(0, dtype=np.int64), insert_at, fresh_sent),
        **{name: _spliced(getattr(old, name), dropped, insert_at, fresh[name]) for name in ("post_tf", "post_len")},
    }
    return {"df": df, "post_ptr": _pointers(df), **merged}


SPLICED_PLACES = 10_000  # beyond this many deleted or inserted postings, numpy's delete and insert join the rest


def _spliced(source: np.ndarray, dropped: np.ndarray, insert_at: np.ndarray, values: np.ndarray) -> np.ndarray:
    """np.insert(np.delete(source, dropped), insert_at, values) (dropped ascending), copied once: the
    stretches between the few places a refresh changes are joined, each read straight from source."""
    values = values.astype(source.dtype, copy=False)
    if len(dropped) + len(insert_at) > SPLICED_PLACES:
        return np.insert(np.delete(source, dropped), insert_at, values)
    order = np.argsort(insert_at, kind="stable")  # numpy inserts values at equal places in the given order
    places, values = insert_at[order].tolist(), values[order]
    pieces, kept, at = [], 0, 0  # kept: where the current stretch starts once `dropped` is gone
    bounds = [-1, *dropped.tolist(), len(source)]
    for lo, hi in pairwise(bounds):  # source[lo + 1 : hi] is kept
        start = lo + 1
        while at < len(places) and places[at] < kept + hi - start:
            cut = start + places[at] - kept
            pieces.append(source[start:cut])
            kept, start = places[at], cut
            group = at
            while at < len(places) and places[at] == places[group]:
                at += 1
            pieces.append(values[group:at])
        pieces.append(source[start:hi])
        kept += hi - start
    pieces.append(values[at:])  # placed at the very end
    return _joined(pieces, source.dtype)
