"""Score bounds over blocks of posting lists, which let top-k search skip postings that cannot matter.

A term's postings are cut into blocks of BLOCK postings. A block keeps the largest term frequency
and the shortest sentence among its postings: BM25's saturation grows with tf and shrinks with
length, so the weight of those two bounds every posting of the block, whatever IDF and average
length the index has now (bounds survive a refresh that changes both). This is block-max
indexing as in Ding and Suel, "Faster top-k document retrieval using block-max indexes" (2011).
"""

from __future__ import annotations

import numpy as np

BLOCK = 128  # postings per block


def block_counts(df: np.ndarray) -> np.ndarray:
    """Blocks per term: ceil(df / BLOCK)."""
    return (df + BLOCK - 1) // BLOCK


def block_pointers(df: np.ndarray) -> np.ndarray:
    """int64[V + 1]: term t's blocks are blk[ptr[t]:ptr[t + 1]]."""
    ptr = np.zeros(len(df) + 1, dtype=np.int64)
    np.cumsum(block_counts(df), out=ptr[1:])
    return ptr


def block_starts(post_ptr: np.ndarray, blk_ptr: np.ndarray) -> np.ndarray:
    """The posting where each block begins: term t's j-th block begins at post_ptr[t] + j * BLOCK."""
    counts = np.diff(blk_ptr)
    return np.repeat(post_ptr[:-1] - blk_ptr[:-1] * BLOCK, counts) + np.arange(int(blk_ptr[-1])) * BLOCK


def block_bounds(post_ptr: np.ndarray, post_tf: np.ndarray, post_len: np.ndarray) -> dict[str, np.ndarray]:
    """Per block: the largest tf (blk_tf) and the shortest sentence length (blk_len), both uint16."""
    blk_ptr = block_pointers(np.diff(post_ptr))
    if not blk_ptr[-1]:
        return {"blk_tf": np.empty(0, dtype=np.uint16), "blk_len": np.empty(0, dtype=np.uint16)}
    starts = block_starts(post_ptr, blk_ptr)
    return {
        "blk_tf": np.maximum.reduceat(post_tf, starts).astype(np.uint16),
        "blk_len": np.minimum.reduceat(post_len, starts).astype(np.uint16),
    }


def positions_of_blocks(lo: int, hi: int, blocks: np.ndarray) -> np.ndarray:
    """Posting positions covered by the given blocks (ascending, local to the term) of the list lo:hi."""
    starts = lo + blocks * BLOCK
    sizes = np.minimum(starts + BLOCK, hi) - starts
    offsets = np.repeat(starts - np.cumsum(sizes) + sizes, sizes)
    return offsets + np.arange(int(sizes.sum()))
