"""BM25Okapi scoring over term-major posting lists: the formulas, and exact top-k search.

Scores are rank-bm25's BM25Okapi (Robertson et al., with ATIRE's epsilon floor on negative IDF).
Postings hold term frequencies and sentence lengths; IDF and the length normaliser are derived
from the statistics a Bm25Postings is given (its own index's, or the whole corpus's for a shard),
so a query costs the sum of its posting lists (a weight is a table lookup) and a refresh never
rewrites weights that a change in corpus size or average sentence length would alter.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import numpy as np

from qabot.arrays import distinct, run_starts

EPSILON = 0.25  # rank-bm25's default floor for negative IDF, as a share of the mean IDF
# Top-k search: below this many postings a query is scored exhaustively (bounds would cost more than they save).
EXHAUSTIVE_POSTINGS = 30_000
BOUND_SLACK = 1e-9  # relative margin, so float rounding never lets a bound fall below a real score
MOSTLY = 0.5  # a list that must be scanned holding more than this share of a query's postings: score exhaustively
SCANNED_SHARE = 0.1  # pruning that would scan more than this share of a query's postings gives way to exhaustive
LOOKUP_COST = 4  # a binary search per sentence costs about as much as this many postings scattered and read
TABLED_TF = 32  # saturations are looked up for term frequencies up to this; higher ones (rare) are computed
DENSE_SHARE = 0.25  # a query with postings above this share of the sentences is summed over all sentences
FLOOR_SAMPLE = 4096  # sentences whose full scores give the exhaustive scorer a first floor
HOT_POSTINGS = 100_000  # a posting list at least this long keeps its weights once computed (per scale)
HOT_KEPT = 8_000_000  # at most this many kept weights (64 MB); past it the kept lists are dropped


def idf_okapi(df: np.ndarray, n_docs: int, epsilon: float = EPSILON) -> np.ndarray:
    """BM25Okapi IDF as in rank-bm25: log((N - df + .5) / (df + .5)); negatives floored to eps * mean."""
    idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
    if len(idf):
        idf[idf < 0] = epsilon * (idf.sum() / len(idf))
    return idf


def length_norm(doc_len: np.ndarray, avgdl: float, k1: float, b: float) -> np.ndarray:
    """BM25's length normaliser per sentence: k1 (1 - b + b |d| / avgdl)."""
    return k1 * (1 - b + b * doc_len / avgdl)


def tf_okapi(tf: np.ndarray, norm: np.ndarray, k1: float) -> np.ndarray:
    """BM25 term-frequency saturation: tf (k1 + 1) / (tf + norm), as rank-bm25's get_scores computes it.

    Reuses norm's memory for the denominator.
    """
    norm += tf
    weight = tf * (k1 + 1)
    weight /= norm
    return weight


def idf_of_unknown(n_sentences: int) -> float:
    """IDF a term would have if no sentence contained it (BM25Okapi, df = 0)."""
    return math.log(n_sentences + 0.5) - math.log(0.5)


class Bm25Postings:
    """Posting lists scored as BM25Okapi with given corpus statistics (IDF per term, average length).

    Postings of term t are post_sent/post_tf/post_len[post_ptr[t]:post_ptr[t + 1]], sentences ascending.
    term_max_tf and term_min_len bound each term's weight (BM25's saturation grows with tf and shrinks
    with length), whatever the statistics are. sentence_terms, when given, is the same index read
    sentence by sentence (tok_ptr, tok_ids: the term ids of sentence s are tok_ids[tok_ptr[s]:tok_ptr[s + 1]]),
    from which the term weights of the few sentences a ranker reads are counted instead of searched for in
    long posting lists.
    Thread-safe: each thread scores in buffers of its own.
    """

    def __init__(
        self,
        post_ptr: np.ndarray,
        post_sent: np.ndarray,
        post_tf: np.ndarray,
        post_len: np.ndarray,
        term_max_tf: np.ndarray,
        term_min_len: np.ndarray,
        n_sentences: int,
        idf: np.ndarray,
        avgdl: float,
        k1: float,
        b: float,
        sentence_terms: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.post_ptr, self.post_sent, self.post_tf, self.post_len = post_ptr, post_sent, post_tf, post_len
        self.sentence_terms = sentence_terms
        self.term_max_tf, self.term_min_len = term_max_tf, term_min_len
        self.n_sentences, self.idf, self.avgdl, self.k1 = n_sentences, idf, avgdl, k1
        longest = int(post_len.max()) if len(post_len) else 0
        most_tf = int(term_max_tf.max()) if len(term_max_tf) else 0
        # By sentence length: BM25's length normaliser, and the saturation by term frequency (row) and
        # length (column), flattened: a posting's weight is one lookup, with the reference's arithmetic.
        self._norm_by_length = length_norm(np.arange(longest + 1), avgdl or 1.0, k1, b)
        self._width = longest + 1
        self._tabled_tf = min(most_tf, TABLED_TF)
        self._all_tabled = most_tf <= TABLED_TF
        self._saturation = np.concatenate([
            tf_okapi(np.full(longest + 1, float(tf)), self._norm_by_length.copy(), k1)
            for tf in range(self._tabled_tf + 1)
        ])  # fmt: skip
        self._buffers = threading.local()
        self.hot_weights: dict[tuple[int, float], np.ndarray] = {}  # list_weights of long lists, by (term, scale)
        self._hot_lock = threading.Lock()

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """The sentences holding `term`, ascending, and its BM25 weight in each."""
        lo, hi = self.post_ptr[term], self.post_ptr[term + 1]
        return self.post_sent[lo:hi], self.weights(self.post_tf[lo:hi], self.post_len[lo:hi], self.idf[term])

    def weights(
        self, tf: np.ndarray, lengths: np.ndarray, scale: float | np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """scale times the BM25 saturation of `tf` occurrences in sentences of `lengths` terms
        (rank-bm25's arithmetic, looked up by frequency and length). Written to `out` when given."""
        rows = tf.astype(np.intp)
        if not self._all_tabled:
            rows = np.minimum(rows, self._tabled_tf)
        rows *= self._width
        rows += lengths
        weights = np.take(self._saturation, rows, out=out)
        if not self._all_tabled and len(tf) and tf.max() > self._tabled_tf:
            beyond = np.flatnonzero(tf > self._tabled_tf)
            norm = self._norm_by_length[lengths[beyond]]
            weights[beyond] = tf_okapi(tf[beyond].astype(np.float64), norm, self.k1)
        weights *= scale
        return weights

    def search(self, weighted_terms: Sequence[tuple[int, float]], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k sentences (ids, scores, best first, ties by id) for a weighted sum of term weights.

        Exactly what scoring every posting gives (`search_exhaustive`), but long queries skip the
        postings that cannot reach the top k (MaxScore over per-term bounds). Thread-safe.
        """
        if not weighted_terms or k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0)
        terms = np.array([term_id for term_id, _ in weighted_terms], dtype=np.int64)
        scales = [self.idf[term_id] * query_weight for term_id, query_weight in weighted_terms]
        postings = int((self.post_ptr[terms + 1] - self.post_ptr[terms]).sum())
        if postings > EXHAUSTIVE_POSTINGS and min(scales) > 0:
            found = self._search_pruned(terms, scales, k, postings)
            if found is not None:
                return found
        return self.search_exhaustive(weighted_terms, k)

    def _listed(self, lo: int, hi: int) -> np.ndarray:
        """The sentence ids of postings [lo, hi) as int64: numpy gathers and scatters with int64 indices about
        twice as fast as with the stored int32, so the copy pays for itself at the first use."""
        return self.post_sent[lo:hi].astype(np.int64)

    def list_weights(self, term: int, scale: float, scratch: np.ndarray) -> np.ndarray:
        """weights() of the term's whole posting list at `scale` (read-only), in scratch; a list of
        HOT_POSTINGS or more is computed once per scale and kept (the most frequent words recur in
        questions, and their lists cost the most)."""
        lo, hi = int(self.post_ptr[term]), int(self.post_ptr[term + 1])
        if hi - lo < HOT_POSTINGS:
            return self.weights(self.post_tf[lo:hi], self.post_len[lo:hi], scale, scratch[: hi - lo])
        key = (term, scale)
        kept = self.hot_weights.get(key)
        if kept is None:
            kept = self.weights(self.post_tf[lo:hi], self.post_len[lo:hi], scale)
            kept.flags.writeable = False
            with self._hot_lock:
                if sum(map(len, self.hot_weights.values())) + len(kept) > HOT_KEPT:
                    self.hot_weights.clear()  # rarely reached: a few dozen words stay in most questions' way
                self.hot_weights[key] = kept
        return kept

    def _search_pruned(
        self, terms: np.ndarray, scales: list[float], k: int, postings: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """search's answer, scanning only the postings that can change it (MaxScore, Turtle and Flood 1995);
        None when the exhaustive scorer would be cheaper.

        Terms are scanned shortest list first; the k-th best partial score so far is a floor the top
        k reach. Once the unscanned terms' bounds sum below it, no unseen sentence can make the top
        k: the seen ones are completed by looking the other terms up, weightiest first, dropping every
        sentence whose partial score plus the bounds still missing falls below the floor. Survivors
        are scored exactly, in the reference's term order. When a list that will surely be scanned holds
        most of the query's postings, pruning cannot pay and the exhaustive scorer answers.
        """
        lo, hi = self.post_ptr[terms].tolist(), self.post_ptr[terms + 1].tolist()
        upper = self.weights(self.term_max_tf[terms], self.term_min_len[terms], np.array(scales))
        order = np.argsort(np.subtract(hi, lo), kind="stable").tolist()  # shortest first: cheap, and rare weighs most
        longest = order[-1]
        if hi[longest] - lo[longest] > MOSTLY * postings and upper[longest] >= upper.sum() - upper[longest]:
            # The floor never exceeds the bounds of the lists before it, so the scan would reach that list.
            return None
        unscanned = [*np.cumsum(upper[order][::-1])[::-1].tolist(), 0.0]  # what terms order[j:] can add at most
        acc, scratch = self._accumulator()
        seen, best, floor, scanned = [], np.empty(0, dtype=np.int32), 0.0, 0
        read = 0  # postings scanned so far
        for i in order:
            if unscanned[scanned] < floor:
                break
            read += hi[i] - lo[i]
            if scanned and read > SCANNED_SHARE * postings:
                acc[np.concatenate(seen)] = 0.0
                return None
            sents = self.post_sent[lo[i] : hi[i]]
            partial = acc[sents]
            seen.append(sents[partial == 0.0])  # every weight is positive: zero means not seen yet
            partial += self.list_weights(int(terms[i]), scales[i], scratch)
            acc[sents] = partial
            scanned += 1
            if scanned < len(order):
                best, floor = self._raised_floor(acc, best, sents, partial, floor, k)
        missing = unscanned[scanned]
        if missing < floor and sum(len(sents) for sents in seen) > DENSE_SHARE * self.n_sentences:
            # Most sentences were seen: one pass over all of them (an unseen one, at zero, cannot reach
            # the floor) beats sorting the seen ones.
            candidates = np.flatnonzero(acc + missing >= floor)
            partial = acc[candidates]
            acc.fill(0.0)
        else:
            seen = np.concatenate(seen)
            candidates = np.sort(seen[acc[seen] + missing >= floor], kind="stable")  # merges sorted runs
            partial = acc[candidates]  # summed in scan order: good enough to prune, not to rank
            acc[seen] = 0.0
        for i in sorted(order[scanned:], key=lambda i: -upper[i]):  # the weightiest first: it prunes the most
            partial += self._gathered(terms[i : i + 1], scales[i : i + 1], candidates)
            missing -= upper[i]
            if len(partial) > k:  # partial scores grew: the floor may rise too
                floor = max(floor, float(np.partition(partial, len(partial) - k)[len(partial) - k]) / (1 + BOUND_SLACK))
            alive = partial + missing >= floor
            candidates, partial = candidates[alive], partial[alive]
        scores = self._gathered(terms, scales, candidates)
        if len(candidates) > k:
            kept = scores >= np.partition(scores, len(scores) - k)[len(scores) - k]  # ties at the cut stay
            candidates, scores = candidates[kept], scores[kept]
        ranked = np.lexsort((candidates, -scores))[:k]
        return candidates[ranked].astype(np.int64), scores[ranked]

    @staticmethod
    def _raised_floor(
        acc: np.ndarray, best: np.ndarray, sents: np.ndarray, partial: np.ndarray, floor: float, k: int
    ) -> tuple[np.ndarray, float]:
        """The best k sentences so far and the k-th best partial score (lowered by the rounding margin),
        after a term raised `sents` to `partial`. Partial scores only grow, so the new best k are among
        the old best k and the sentences this term raised above the old floor."""
        held = np.searchsorted(sents, best)
        pool = np.concatenate([best[sents[np.minimum(held, len(sents) - 1)] != best], sents[partial > floor]])
        if len(pool) < k:
            return pool, floor
        values = acc[pool]
        top = np.argpartition(values, len(pool) - k)[len(pool) - k :]
        return pool[top], float(values[top].min()) / (1 + BOUND_SLACK)

    def _look_up(self, term: int, sents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which of the sorted sentences hold term (a mask) and where their postings are."""
        lo, hi = int(self.post_ptr[term]), int(self.post_ptr[term + 1])
        if hi == lo:
            return np.zeros(len(sents), dtype=bool), np.empty(0, dtype=np.int64)
        listed = self.post_sent[lo:hi]
        at = np.searchsorted(listed, sents)
        np.minimum(at, hi - lo - 1, out=at)
        found = listed[at] == sents
        return found, at[found] + lo

    def _gathered(self, terms: np.ndarray, scales: list[float], sents: np.ndarray) -> np.ndarray:
        """Exact scores of sorted distinct sentences over the given terms, summed term by term in the
        given order, as search_exhaustive sums them (so the floats are identical). A term is looked up by
        binary search or, for many sentences, scattered into the (zero) accumulator and read back."""
        total = np.zeros(len(sents))
        acc, scratch = self._accumulator()
        for term, scale in zip(terms.tolist(), scales, strict=True):
            lo, hi = int(self.post_ptr[term]), int(self.post_ptr[term + 1])
            if len(sents) * LOOKUP_COST < hi - lo:
                found, rows = self._look_up(term, sents)
                total[found] += self.weights(self.post_tf[rows], self.post_len[rows], scale)
                continue
            listed = self._listed(lo, hi)
            acc[listed] = self.list_weights(term, scale, scratch)
            total += acc[sents]  # adding 0.0 where the term is absent leaves the sum as it was
            acc[listed] = 0.0
        return total

    def search_exhaustive(self, weighted_terms: Sequence[tuple[int, float]], k: int) -> tuple[np.ndarray, np.ndarray]:
        """What `search` returns, found by scoring every posting of the query's terms (the reference).

        Thread-safe (one buffer per thread).
        """
        if not weighted_terms or k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0)
        acc, scratch = self._accumulator()
        touched, positive = [], True
        for term_id, query_weight in weighted_terms:
            lo, hi = int(self.post_ptr[term_id]), int(self.post_ptr[term_id + 1])
            sents = self._listed(lo, hi)
            scale = self.idf[term_id] * query_weight
            # add.at skips the gathered copy that `acc[sents] += ...` makes; each sentence appears once
            np.add.at(acc, sents, self.list_weights(int(term_id), scale, scratch))
            touched.append(sents)
            positive = positive and scale > 0
        if positive and sum(len(sents) for sents in touched) > DENSE_SHARE * self.n_sentences:
            return self._dense_top(acc, touched, k)
        candidates = np.concatenate(touched) if len(touched) > 1 else touched[0]
        scores = acc[candidates]
        acc[candidates] = 0.0
        # A sentence appears once per query term it holds, always with its full score, so the best
        # k * len(touched) entries, with every entry tied at the cut, hold the best k distinct sentences.
        wanted = k * len(touched)
        if len(candidates) > wanted:
            top = np.flatnonzero(scores >= np.partition(scores, len(scores) - wanted)[len(scores) - wanted])
            candidates, scores = candidates[top], scores[top]
        if len(touched) > 1:  # each sentence once (its copies hold the same score)
            by_id = np.argsort(candidates, kind="stable")
            first = by_id[run_starts(candidates[by_id])]
            candidates, scores = candidates[first], scores[first]
        order = np.lexsort((candidates, -scores))[:k]
        return candidates[order].astype(np.int64), scores[order]

    @staticmethod
    def _dense_top(acc: np.ndarray, lists: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The top k of the summed scores in acc (which it zeroes) of the sentences in `lists`, when most
        sentences hold a query term: the full scores of the shortest lists' sentences (where the rare
        terms are) set a floor the k-th best reaches, and one pass over all sentences keeps those at or
        above it, cheaper than selecting among every posting."""
        sample, held = [], 0
        for sents in sorted(lists, key=len):
            sample.append(sents[: FLOOR_SAMPLE - held])
            held += len(sample[-1])
            if held >= FLOOR_SAMPLE:
                break
        scores = acc[distinct(np.concatenate(sample))]  # each sentence once: the k-th best of distinct ones
        floor = float(np.partition(scores, len(scores) - k)[len(scores) - k]) if len(scores) >= k else 0.0
        candidates = np.flatnonzero(acc >= floor) if floor > 0 else np.flatnonzero(acc)
        scores = acc[candidates]
        acc.fill(0.0)
        order = np.lexsort((candidates, -scores))[:k]
        return candidates[order].astype(np.int64), scores[order]

    def _accumulator(self) -> tuple[np.ndarray, np.ndarray]:
        """This thread's score per sentence (all zero between searches) and room for one posting list."""
        buffers = getattr(self._buffers, "arrays", None)
        if buffers is None:
            longest = int(np.diff(self.post_ptr).max()) if len(self.post_ptr) > 1 else 0
            buffers = (np.zeros(self.n_sentences), np.empty(longest))
            self._buffers.arrays = buffers
        return buffers

    def _row_map(self) -> np.ndarray:
        """This thread's row per vocabulary term for `held` (all -1 between calls)."""
        rows = getattr(self._buffers, "rows", None)
        if rows is None:
            rows = self._buffers.rows = np.full(len(self.idf), -1, dtype=np.int32)
        return rows

    def held(self, terms: np.ndarray, sents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """How often each term (rows) stands in each sentence (columns; -1 holds nothing), counted in the
        sentences' own terms (so equal to the postings' tf), and each sentence's length in terms."""
        tok_ptr, tok_ids = self.sentence_terms
        real = sents >= 0
        starts = tok_ptr[np.where(real, sents, 0)]
        lengths = np.where(real, tok_ptr[np.where(real, sents + 1, 0)] - starts, 0)
        owner = np.repeat(np.arange(len(sents), dtype=np.int64), lengths)
        shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)  # from place in the run to place in tok_ids
        tokens = tok_ids[np.arange(len(owner), dtype=np.int64) + shift]
        term_list = terms.tolist()
        slot_by_term = {term: slot for slot, term in enumerate(dict.fromkeys(term_list))}
        wanted = np.fromiter(slot_by_term, dtype=np.int64, count=len(slot_by_term))
        row_of = [slot_by_term[term] for term in term_list]
        slot_of = self._row_map()
        slot_of[wanted] = np.arange(len(wanted), dtype=np.int32)
        slot = slot_of[tokens]
        slot_of[wanted] = -1
        hit = slot >= 0
        cells = slot[hit].astype(np.int64) * len(sents) + owner[hit]  # (term, sentence) flattened
        counts = np.bincount(cells, minlength=len(wanted) * len(sents)).reshape(len(wanted), len(sents))
        return counts[row_of], lengths

    def term_weights(self, terms: Sequence[int], sents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per term (rows) and sentence (columns; -1 holds nothing): whether the sentence holds the term,
        and the term's BM25 weight there (0 where absent)."""
        if self.sentence_terms is not None:
            term_ids = np.asarray(terms, dtype=np.int64)
            held, lengths = self.held(term_ids, np.asarray(sents, dtype=np.int64))
            rows, columns = np.nonzero(held)
            weights = np.zeros(held.shape)
            weights[rows, columns] = self.weights(held[rows, columns], lengths[columns], self.idf[term_ids[rows]])
            return held > 0, weights
        present = np.zeros((len(terms), len(sents)), dtype=bool)
        found = np.zeros((len(terms), len(sents)), dtype=np.int64)  # posting index of (term, sentence)
        for row, term in enumerate(terms):
            lo, hi = self.post_ptr[term], self.post_ptr[term + 1]
            if hi > lo:
                at = np.minimum(np.searchsorted(self.post_sent[lo:hi], sents), hi - lo - 1)
                present[row] = self.post_sent[lo:hi][at] == sents
                found[row] = at + lo
        scale = np.repeat(self.idf[np.asarray(terms, dtype=np.int64)], len(sents))
        weights = self.weights(self.post_tf[found.ravel()], self.post_len[found.ravel()], scale)
        return present, np.where(present, weights.reshape(present.shape), 0.0)

