"""The signals a candidate sentence is ranked on, and those a question's confidence is judged on.

Everything is an array over the candidates (rows) computed from the index's postings, so a
question costs a few posting-list lookups and reads only the candidates' own text. Scores are
normalised by the question's own weight, so the same weights serve a corpus of five articles
and one of a million sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from qabot.analyze import term_spans
from qabot.answer_type import ANAPHORA, cue_bits, has_answer_type
from qabot.arrays import distinct, distinct_with_inverse, run_starts
from qabot.searchable import SearchableIndex

# Names of the columns candidate_features returns, in order (the ranker's weights follow them).
CANDIDATE_FEATURES = (
    "bm25",  # the sentence's BM25, over the question's own IDF mass
    "bm25_share",  # the sentence's BM25 over the best candidate's
    "coverage",  # share of the question's IDF mass the sentence holds (frame words discounted)
    "coverage_share",  # coverage over the best candidate's
    "neighbour",  # the better neighbour's BM25, over the question's IDF mass
    "window_coverage",  # share of the question's IDF mass in the sentence or either neighbour
    "paragraph_coverage",  # share of the question's IDF mass found anywhere in the sentence's paragraph
    "paragraph_bm25",  # saturated count of question terms over the paragraph's sentences
    "paragraph_share",  # paragraph_bm25 over the best candidate's
    "answer_type",  # holds what the question asks for: a date for "when", a number for "how many" ...
    "typed_share",  # answer_type times bm25_share: a typed answer among the best matches
    "typed_paragraph",  # answer_type times paragraph_share: a typed answer in the best paragraph
    "anaphora",  # opens with a pronoun, times the previous sentence's BM25 ("They met ..." continues it)
    "novelty",  # share of the sentence's terms that are not the question's: what it adds
    "in_order",  # share of the question's adjacent term pairs that stand adjacent in the sentence
    "proximity",  # question terms found, over the span of sentence terms that holds them all
    "log_length",  # log(1 + terms in the sentence)
    "match_position",  # where the question's words begin in the sentence, 0 at its start, 1 at its end
)
# Names of the question-level signals the confidence model reads.
QUESTION_FEATURES = (
    "top_score",  # the ranker's score of the first passage
    "margin",  # its lead over the second candidate
    "top_coverage",  # the first passage's coverage
    "top_paragraph_coverage",  # its paragraph's coverage
    "missing_share",  # share of the question's IDF mass that no indexed term stands for, in names and rare words
    "missing_common_share",  # the same share in lower-case words common in a large language ("regarding")
    "missing_names",  # capitalised question words the corpus does not have, spelled any way we know
    "variant_names",  # capitalised question words the corpus has only written otherwise (Victoria as victory)
    "variant_name_edits",  # how far their closest corpus spellings are: edits per letter plus length lost, summed
    "variant_names_unnamed",  # those of them the corpus never writes as a name (Paris as "party")
    "pairs_together",  # the best candidate's share of the question's adjacent term pairs that stand adjacent
    "article_coverage",  # the best article's share of the question's IDF mass, over its candidate sentences
    "top_window_coverage",  # the first passage's coverage with its neighbours
    "best_coverage",  # the highest coverage of any candidate
)
# The candidate signals question_features reads.
_READ_BY_QUESTION = ("coverage", "paragraph_coverage", "in_order", "window_coverage")
FRAME_SHARE = 0.25  # a question-frame word ("many", "called") counts a quarter in coverage
MAX_PARAGRAPH = 24  # sentences on each side of a candidate that its paragraph may span


@dataclass(frozen=True, slots=True)
class SpelledAs:
    """How the corpus spells a capitalised question word it lacks but has in another form."""

    variant_only: bool = False  # the word is found only through another form (spelling, derivation, compound)
    edits: int = 0  # edits to its closest spelling variant (0: none is a spelling variant)
    length_ratio: float = 1.0  # the shorter of the word and that variant over the longer
    as_name: bool = False  # the corpus writes that variant with a capital past a sentence's first word


@dataclass(frozen=True, slots=True)
class QueryTerm:
    """One distinct analyzed word of the question, with the vocabulary terms that stand for it."""

    word: str  # as typed, folded
    count: int  # times it occurs in the question
    ids: tuple[tuple[int, float], ...]  # (term id, weight): the term itself at 1, variants lower
    mass: float  # its IDF (the share of the question it carries)
    own_id: int | None = None  # the term itself, when the corpus has it
    frame: bool = False  # a question-frame word ("many", "called")
    capitalised: bool = False  # typed with a capital, not as the question's first word
    apart: tuple[tuple[int, float], ...] = ()  # the word as the corpus writes it apart (cease-fire): all or none
    spelled: SpelledAs = SpelledAs()  # for a capitalised word the corpus lacks: its other forms there
    common: bool = False  # typed in lower case and common (Zipf >= 4) in English or another large language

    @property
    def found(self) -> bool:
        """Whether some corpus term, or the word written apart, stands for it."""
        return bool(self.ids or self.apart)

    def searched(self) -> list[tuple[int, float]]:
        """Each corpus term searched for the word with its BM25 weight, times the word's count: its
        ids, then the parts of the word written apart, which share its weight."""
        return [(term_id, weight * self.count) for term_id, weight in self.ids] + [
            (part, weight * self.count / len(self.apart)) for part, weight in self.apart
        ]


@dataclass(frozen=True, slots=True)
class Candidates:
    """Candidate sentences of one question and their signals (row i describes sents[i])."""

    sents: np.ndarray  # int64 sentence ids
    features: np.ndarray  # float64 [len(sents), len(CANDIDATE_FEATURES)]
    matched: np.ndarray  # float64 [question terms, len(sents)]: 1 where a term is there, a variant's weight, or 0
    docs: np.ndarray  # int64 article of each sentence


def coverage_mass(terms: Sequence[QueryTerm]) -> np.ndarray:
    """Each term's weight in coverage: its IDF mass, a quarter for question-frame words."""
    return np.array([term.mass * (FRAME_SHARE if term.frame else 1.0) for term in terms])


def candidate_features(
    index: SearchableIndex,
    terms: Sequence[QueryTerm],
    sents: np.ndarray,
    answer_type: str | None,
) -> Candidates:
    """The CANDIDATE_FEATURES of each candidate sentence for the question's terms."""
    n = len(sents)
    if not n:
        return Candidates(sents, np.zeros((0, len(CANDIDATE_FEATURES))), np.zeros((len(terms), 0)), sents)
    before, after = index.neighbour_arrays(sents)
    members, owner = paragraph_members(sents, *index.paragraph_bounds(sents))
    positions = np.concatenate([sents, before, after, members])  # -1 (no neighbour) holds no term
    searched = [term.searched() for term in terms]  # rows: each term's ids, then its parts
    # paragraphs and neighbours overlap: each distinct sentence is looked up once
    looked_up, spread = distinct_with_inverse(positions)
    present, contribution = index.term_weights([term_id for row in searched for term_id, _ in row], looked_up)
    present, contribution = present.take(spread, axis=1), contribution.take(spread, axis=1)  # C order, as summed
    row_weight = np.array([weight for row in searched for _, weight in row])
    ideal = sum(term.count * term.mass for term in terms) or 1.0
    bm25 = (row_weight @ contribution) / ideal
    own, before_score, after_score = bm25[:n], bm25[n : 2 * n], bm25[2 * n : 3 * n]
    # per question term and position: 1 where the term is there, a variant's weight where only it
    # is, a word written apart where all its parts are
    match = np.zeros((len(terms), len(positions)))
    first = 0
    for i, term in enumerate(terms):
        for r, (_, weight) in enumerate(term.ids, start=first):
            np.maximum(match[i], present[r] * weight, out=match[i])
        parts = slice(first + len(term.ids), first + len(searched[i]))
        if term.apart:
            np.maximum(match[i], present[parts].all(axis=0) * term.apart[0][1], out=match[i])
        first = parts.stop
    mass = coverage_mass(terms)
    total_mass = mass.sum() or 1.0
    coverage = mass @ match[:, :n] / total_mass
    beside = np.maximum(match[:, n : 2 * n], match[:, 2 * n : 3 * n])
    window_coverage = mass @ np.maximum(match[:, :n], beside) / total_mass
    # paragraph signals: members are grouped by candidate, in order
    group_starts = run_starts(owner)
    member_match = match[:, 3 * n :]
    paragraph_seen = np.maximum.reduceat(member_match, group_starts, axis=1)
    paragraph_count = np.add.reduceat(member_match, group_starts, axis=1)
    idf = np.array([term.mass for term in terms])
    saturation = paragraph_count * (index.k1 + 1) / (paragraph_count + index.k1)
    paragraph_bm25 = idf @ saturation / (idf.sum() or 1.0)
    cues = index.cues(sents)
    question_ids = {term.own_id for term in terms if term.own_id is not None}
    own_ids = [term.own_id for term in terms if term.own_id is not None]
    sequences = Sequences.of([index.sentence_terms(sent) for sent in sents.tolist()])
    at = sequences.holding(question_ids)  # where the question's own terms stand
    word_signals = _word_signals(sequences, at, set(pairwise(own_ids)))
    if answer_type == "definition":  # depends on where the question's words stand: read the texts
        focus_terms = {index.vocab[term_id] for term_id in question_ids}  # strings: no term lookups
        typed = np.array([_defines(index.sentence_text(sent), focus_terms) for sent in sents.tolist()], dtype=float)
    else:
        typed = ((cues & cue_bits(answer_type)) != 0).astype(np.float64)
    columns = {
        "bm25": own,
        "bm25_share": own / (own.max() or 1.0),
        "coverage": coverage,
        "coverage_share": coverage / (coverage.max() or 1.0),
        "neighbour": np.maximum(before_score, after_score),
        "window_coverage": window_coverage,
        "paragraph_coverage": mass @ paragraph_seen / total_mass,
        "paragraph_bm25": paragraph_bm25,
        "paragraph_share": paragraph_bm25 / (paragraph_bm25.max() or 1.0),
        "answer_type": typed,
        "typed_share": typed * own / (own.max() or 1.0),
        "typed_paragraph": typed * paragraph_bm25 / (paragraph_bm25.max() or 1.0),
        "anaphora": ((cues & ANAPHORA) != 0) * before_score,
        "novelty": word_signals[:, 0],
        "in_order": word_signals[:, 1],
        "proximity": word_signals[:, 2],
        "log_length": np.log1p(word_signals[:, 3]),
        # a definition's answer, a role, stands before the name ("Prime Minister X") as often as after it
        "match_position": _match_position(sequences, at if answer_type != "definition" else at[:0]),
    }
    features = np.column_stack([columns[name] for name in CANDIDATE_FEATURES])
    return Candidates(sents, features, match[:, :n], index.sent_doc[sents].astype(np.int64))


def question_features(
    terms: Sequence[QueryTerm], candidates: Candidates, scores: np.ndarray, order: np.ndarray
) -> np.ndarray:
    """The QUESTION_FEATURES of a question whose candidates the ranker scored (order: best first)."""
    mass = coverage_mass(terms)
    found = np.array([max((weight for _, weight in term.ids + term.apart), default=0.0) for term in terms])
    common = np.array([term.common for term in terms], dtype=bool)
    renamed = [term for term in terms if term.capitalised and term.found and term.spelled.variant_only]
    columns = dict.fromkeys(QUESTION_FEATURES, 0.0)
    columns.update(
        missing_share=float((mass * ~common) @ (1.0 - found) / (mass.sum() or 1.0)),
        missing_common_share=float((mass * common) @ (1.0 - found) / (mass.sum() or 1.0)),
        missing_names=sum(1 for term in terms if term.capitalised and not term.found),
        variant_names=len(renamed),
        variant_name_edits=sum(t.spelled.edits / max(len(t.word), 1) + 1.0 - t.spelled.length_ratio for t in renamed),
        variant_names_unnamed=sum(1 for term in renamed if not term.spelled.as_name),
    )
    if len(order):
        top = order[0]
        column = {name: candidates.features[:, CANDIDATE_FEATURES.index(name)] for name in _READ_BY_QUESTION}
        articles, article_of = distinct_with_inverse(candidates.docs)
        held = np.zeros((len(terms), len(articles)))  # per term and article: how well the article's candidates hold it
        np.maximum.at(held.T, article_of, candidates.matched.T)
        paired = sum(1 for term in terms if term.own_id is not None) > 1
        columns.update(
            top_score=scores[top],
            margin=scores[top] - scores[order[1]] if len(order) > 1 else 1.0,
            top_coverage=column["coverage"][top],
            top_paragraph_coverage=column["paragraph_coverage"][top],
            pairs_together=float(column["in_order"].max()) if paired else 1.0,
            article_coverage=float((mass @ held).max() / (mass.sum() or 1.0)),
            top_window_coverage=column["window_coverage"][top],
            best_coverage=column["coverage"].max(),
        )
    return np.array([columns[name] for name in QUESTION_FEATURES], dtype=np.float64)


def paragraph_members(sents: np.ndarray, first: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every sentence of each candidate's paragraph [first, stop) (at most MAX_PARAGRAPH on each side),
    and which candidate (row) each belongs to, grouped by candidate."""
    first = np.maximum(first, sents - MAX_PARAGRAPH)
    stop = np.minimum(stop, sents + MAX_PARAGRAPH + 1)
    sizes = stop - first
    owner = np.repeat(np.arange(len(sents), dtype=np.int64), sizes)
    offsets = np.arange(int(sizes.sum()), dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.repeat(first, sizes) + offsets, owner


def _defines(text: str, focus_terms: set[str]) -> bool:
    """Whether the sentence defines one of the question's words (answer type "definition")."""
    focus = [(a, b) for a, b, term in term_spans(text) if term in focus_terms]
    return has_answer_type(text, "definition", focus)


@dataclass(frozen=True, slots=True)
class Sequences:
    """Sentences' terms in order, end to end: tokens[i] belongs to sentence owner[i], which starts at
    starts[owner[i]] and holds lengths[owner[i]] terms."""

    tokens: np.ndarray  # int64
    owner: np.ndarray  # int64
    starts: np.ndarray  # int64
    lengths: np.ndarray  # int64

    @staticmethod
    def of(sequences: Sequence[np.ndarray]) -> Sequences:
        lengths = np.array([len(sequence) for sequence in sequences], dtype=np.int64)
        tokens = np.concatenate([np.zeros(0, dtype=np.int64), *sequences]).astype(np.int64)
        owner = np.repeat(np.arange(len(sequences), dtype=np.int64), lengths)
        return Sequences(tokens, owner, np.cumsum(lengths) - lengths, lengths)

    def holding(self, term_ids: Sequence[int] | set[int]) -> np.ndarray:
        """Positions (ascending) of the tokens that are one of term_ids."""
        wanted = np.sort(np.fromiter(term_ids, dtype=np.int64))
        if not len(wanted) or not len(self.tokens):
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(wanted[np.minimum(np.searchsorted(wanted, self.tokens), len(wanted) - 1)] == self.tokens)


def _word_signals(sequences: Sequences, at: np.ndarray, question_pairs: set[tuple[int, int]]) -> np.ndarray:
    """Per sentence, from its terms in order (`at`: where the question's terms stand): novelty (share not in
    the question), in-order (share of the question's adjacent term pairs standing adjacent here), proximity
    (distinct question terms over the stretch from the first to the last of them) and its length in terms."""
    lengths, owner, tokens = sequences.lengths, sequences.owner, sequences.tokens
    count = len(lengths)
    held = np.bincount(owner[at], minlength=count)
    share_held = np.divide(held, lengths, out=np.ones(count), where=lengths > 0)
    novelty = np.where(lengths > 0, 1.0 - share_held, 0.0)
    in_order = np.zeros(count)
    if question_pairs and len(tokens) > 1:
        wanted = np.sort(np.array([first << 32 | second for first, second in question_pairs], dtype=np.int64))
        starts = at[at < len(tokens) - 1]  # a question pair starts at a question term
        starts = starts[owner[starts] == owner[starts + 1]]
        codes = tokens[starts] << 32 | tokens[starts + 1]  # the adjacent pair of terms there (ids are below 2^32)
        slot = np.minimum(np.searchsorted(wanted, codes), len(wanted) - 1)
        hit = wanted[slot] == codes
        pairs = distinct(owner[starts[hit]] * len(wanted) + slot[hit])  # a pair counts once
        in_order = np.bincount(pairs // len(wanted), minlength=count) / len(question_pairs)
    proximity = np.zeros(count)
    if len(at):
        owners = owner[at]  # ascending, as `at` is
        first = run_starts(owners)
        rows = owners[first]
        last = np.append(first[1:], len(at)) - 1
        kinds = np.bincount(distinct(owners << 32 | tokens[at]) >> 32, minlength=count)[rows]
        several = held[rows] > 1
        stretch = at[last] - at[first] + 1
        proximity[rows[several]] = kinds[several] / stretch[several]
    return np.column_stack([novelty, in_order, proximity, lengths])


def _match_position(sequences: Sequences, at: np.ndarray) -> np.ndarray:
    """Per sentence (its terms in order), the place of its first question term (`at`: where they stand),
    0 at its first term and 1 at its last; 1 where it has none. A sentence that opens with the question's
    words tends to go on to the answer; one that reaches them late, to lead up to them."""
    lengths = sequences.lengths
    place = np.ones(len(lengths))
    owners = sequences.owner[at]  # ascending, as `at` is
    first = run_starts(owners)
    owner = owners[first]
    place[owner] = (at[first] - sequences.starts[owner]) / np.maximum(lengths - 1, 1)[owner]
    return place
