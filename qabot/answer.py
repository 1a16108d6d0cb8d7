"""The extractive answerer: retrieval, spelling variants, near-duplicate grouping, context, abstention."""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qabot.analyze import analyze, fold, surface_words, term_spans
from qabot.answer_type import expected_type, has_answer_type
from qabot.index import Index, idf_of_unknown
from qabot.model import Answer, Location, Passage
from qabot.variants import VariantFinder

if TYPE_CHECKING:
    from qabot.config import Settings
    from qabot.store import Progress

RARE_DF = 2  # a term in at most this many sentences also searches its spelling variants
MAX_QUERY_TERMS = 64
CANDIDATES = 50  # sentences re-ranked and grouped per question
RERANKED = 20  # of those, the leading ones whose text is read for cues
DUPLICATE_JACCARD = 0.8  # token-set overlap that makes two sentences the same wire copy
MIN_MASS = 0.01
NEIGHBOUR_COVERAGE = 0.5  # a question word found next door, not in the sentence, counts half
# A sentence opening with a pronoun continues the previous one ("They met with ..."),
# so it borrows more of that sentence's score than other neighbours do.
ANAPHORA_WEIGHT = 0.7
_ANAPHORIC = re.compile(r"[\W_]*(?:he|she|they|it|this|these|those|his|her|their|its)\b", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


@dataclass(frozen=True, slots=True)
class AnswerParams:
    """Tunables of the answerer (defaults tuned on the dev set; see config/qabot.toml)."""

    top_k: int = 3
    min_coverage: float = 0.6
    variant_weight: float = 0.7
    context_weight: float = 0.3
    type_bonus: float = 0.5


@dataclass(frozen=True, slots=True)
class QueryTerm:
    """One distinct analyzed word of the question, with the vocabulary terms that stand for it."""

    word: str  # as typed, folded
    count: int  # times it occurs in the question
    ids: tuple[tuple[int, float], ...]  # (term id, weight): the term itself at 1, variants lower
    mass: float  # its share of the question's IDF mass
    own_id: int | None = None  # the term itself, when the corpus has it


def clean_question(question: str) -> str:
    """The question without control, zero-width or bidi-override characters, whitespace collapsed."""
    return " ".join(_CONTROL.sub(" ", unicodedata.normalize("NFC", question)).split())


class Answerer:
    """Answers questions from one Index; pure given the index, safe to call from several threads."""

    def __init__(self, index: Index, params: AnswerParams | None = None) -> None:
        self.index = index
        self.params = params or AnswerParams()
        self._variants: VariantFinder | None = None
        self._variants_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, warn: Callable[[str], None] = lambda message: None, progress: Progress | None = None
    ) -> Answerer:
        """Open (load, refresh or build) the index the settings describe and wrap it."""
        from qabot.store import IndexParams, open_index

        params = IndexParams(settings.k1, settings.b, settings.boilerplate_patterns, settings.max_file_bytes)
        index, _ = open_index(settings.corpus, settings.index_dir, params, warn, progress)
        return cls(
            index,
            AnswerParams(
                settings.top_k, settings.min_coverage, settings.variant_weight, settings.context_weight,
                settings.type_bonus,
            ),
        )

    @property
    def root(self) -> Path:
        return self.index.root

    def corpus_changed(self) -> bool:
        """Whether a file was added, changed or removed since the index was made (lists the folder)."""
        from qabot.store import corpus_changed

        return corpus_changed(self.index, self.root)

    def ask(self, question: str, top_k: int | None = None) -> Answer:
        """The best passages for question (at most top_k), or an abstention saying why."""
        top_k = self.params.top_k if top_k is None else max(1, int(top_k))
        searched = self.index.n_sentences
        cleaned = clean_question(question)
        if not cleaned:
            return Answer(question, (), True, "The question is empty.", (), searched)
        if not self.index.n_sentences:
            return Answer(question, (), True, "The corpus has no sentences to search.", (), searched)
        terms, expansions = self._query_terms(cleaned)
        if not terms:
            reason = "The question has only common words; ask about a name, place or topic."
            return Answer(question, (), True, reason, (), searched)
        known = [term for term in terms if term.ids]
        if not known:
            words = ", ".join(term.word for term in terms[:8])
            return Answer(question, (), True, f"No article mentions any of: {words}.", expansions, searched)
        ranked, coverage, scores = self._rank(terms, expected_type(cleaned))
        best = max((coverage[sent] for sent in ranked[:top_k]), default=0.0)
        if best < self.params.min_coverage:
            missing = ", ".join(term.word for term in terms if not term.ids)
            reason = (
                "The articles do not answer this: no sentence matches enough of the question"
                f" (the best covers {best:.0%} of it{f'; not found anywhere: {missing}' if missing else ''})."
            )
            return Answer(question, (), True, reason, expansions, searched)
        passages = self._passages(ranked, scores, top_k, terms)
        expansions = self._as_spelled(expansions, passages)
        variants_of: dict[str, list[str]] = {}
        for word, variant in expansions:
            variants_of.setdefault(word, []).append(variant)
        reason = "; ".join(f"{', '.join(variants)} (for {word})" for word, variants in variants_of.items())
        reason = f"also searched: {reason}" if reason else ""
        return Answer(question, tuple(passages), False, reason, expansions, searched)

    @staticmethod
    def _as_spelled(
        expansions: tuple[tuple[str, str], ...], passages: list[Passage]
    ) -> tuple[tuple[str, str], ...]:
        """Variants as the passages spell them ("luis", not the stem "lui"), each spelling once
        ("sees" and "saw" for the term "see"); the term itself where no passage has it."""
        spellings: dict[str, list[str]] = {}
        for passage in passages:
            for shown in passage.matched_terms:
                for term in analyze(shown):
                    forms = spellings.setdefault(term, [])
                    if shown not in forms:
                        forms.append(shown)
        return tuple((word, form) for word, variant in expansions for form in spellings.get(variant, [variant]))

    def _query_terms(self, question: str) -> tuple[list[QueryTerm], tuple[tuple[str, str], ...]]:
        index = self.index
        counts: dict[str, list] = {}
        for word, term in surface_words(question):
            if term in counts:
                counts[term][1] += 1
            elif len(counts) < MAX_QUERY_TERMS:
                counts[term] = [word, 1]
        unknown_idf = idf_of_unknown(index.n_sentences)
        terms, expansions = [], []
        for term, (word, count) in counts.items():
            term_id = index.term_ids.get(term)
            ids: list[tuple[int, float]] = []
            if term_id is not None:
                ids.append((term_id, 1.0))
            if term_id is None or index.df[term_id] <= RARE_DF:
                for variant_id, _ in self._variant_finder().find(term):
                    ids.append((variant_id, self.params.variant_weight))
                    expansions.append((word, index.vocab[variant_id]))
            # rank-bm25's IDF can be zero or negative in a tiny corpus; a word still carries some mass.
            mass = max(float(index.idf[term_id]), MIN_MASS) if term_id is not None else unknown_idf
            terms.append(QueryTerm(word, count, tuple(ids), mass, term_id))
        return terms, tuple(expansions)

    def _variant_finder(self) -> VariantFinder:
        with self._variants_lock:
            if self._variants is None:
                self._variants = VariantFinder(self.index.vocab, self.index.bigrams)
            return self._variants

    def _rank(
        self, terms: list[QueryTerm], answer_type: str | None
    ) -> tuple[list[int], dict[int, float], dict[int, float]]:
        """Candidate sentences best first, the share of question IDF mass each covers, their scores.

        A sentence's score is its BM25 plus part of its neighbours' (more of the previous
        sentence's when it opens with a pronoun: "They met with..."), raised when it holds
        the kind of thing the question asks for. Coverage counts a neighbour's words at half.
        Everything but the text cues is computed on arrays over the candidates.
        """
        index, params = self.index, self.params
        rows = [(i, term_id, weight) for i, term in enumerate(terms) for term_id, weight in term.ids]
        weighted: dict[int, float] = {}
        for i, term_id, weight in rows:
            weighted[term_id] = weighted.get(term_id, 0.0) + weight * terms[i].count
        sents, _ = index.search(list(weighted.items()), CANDIDATES)
        n = len(sents)
        before, after = index.neighbour_arrays(sents)
        positions = np.concatenate([sents, before, after])
        # bm25 weight of each (query row, position), and whether the row's term is there
        present, contribution = index.term_weights([term_id for _, term_id, _ in rows], positions)
        present[:, n:] &= np.concatenate([before, after])[None, :] >= 0
        row_weight = np.array([weight * terms[i].count for i, _, weight in rows])
        bm25 = row_weight @ contribution
        bm25[n:][np.concatenate([before, after]) < 0] = 0.0
        # per query term: 1 if present, variant weight if only a variant is, else 0
        match = np.zeros((len(terms), len(positions)))
        for r, (i, _, weight) in enumerate(rows):
            np.maximum(match[i], present[r] * weight, out=match[i])
        mass = np.array([term.mass for term in terms])
        near = NEIGHBOUR_COVERAGE * np.maximum(match[:, n : 2 * n], match[:, 2 * n :])
        coverage = mass @ np.maximum(match[:, :n], near) / (mass.sum() or 1.0)
        own, before_score, after_score = bm25[:n], bm25[n : 2 * n], bm25[2 * n :]
        combined = own + params.context_weight * np.maximum(before_score, after_score)
        if coverage.max(initial=0.0) >= params.min_coverage:
            self._apply_text_cues(sents, combined, own, before_score, after_score, answer_type, weighted)
        order = np.lexsort((sents, -combined))
        ranked = sents[order].tolist()
        return ranked, dict(zip(ranked, coverage[order].tolist(), strict=True)), dict(
            zip(ranked, combined[order].tolist(), strict=True)
        )

    def _apply_text_cues(
        self,
        sents: np.ndarray,
        combined: np.ndarray,
        own: np.ndarray,
        before_score: np.ndarray,
        after_score: np.ndarray,
        answer_type: str | None,
        weighted: dict[int, float],
    ) -> None:
        """Adjust the leading candidates' scores in place for pronoun openings and answer types.

        Only the leading candidates' text is read; skipped when no candidate could be answered.
        """
        index, params = self.index, self.params
        query_vocab = {index.vocab[term_id] for term_id in weighted} if answer_type == "definition" else set()
        for c in np.argsort(-combined, kind="stable")[:RERANKED].tolist():
            text = index.sentence_text(int(sents[c]))
            if _ANAPHORIC.match(text):
                combined[c] = own[c] + max(ANAPHORA_WEIGHT * before_score[c], params.context_weight * after_score[c])
            if answer_type:
                focus = [(a, b) for a, b, term in term_spans(text) if term in query_vocab] if query_vocab else []
                if has_answer_type(text, answer_type, focus):
                    combined[c] *= 1 + params.type_bonus

    def _passages(
        self, ranked: list[int], scores: dict[int, float], top_k: int, terms: list[QueryTerm]
    ) -> list[Passage]:
        """The leading top_k sentences that are not wire copies of a better one; each copy of a
        passage (another file, near-identical terms) is listed with it."""
        index = self.index
        copies = (_jaccard(index, np.array(ranked, dtype=np.int64)) >= DUPLICATE_JACCARD).tolist()
        docs = index.sent_doc[ranked].tolist()
        groups: list[tuple[int, list[int]]] = []  # (position of the lead sentence, its copies)
        for at, sent in enumerate(ranked):
            for lead, duplicates in groups:
                if docs[lead] != docs[at] and copies[at][lead]:
                    duplicates.append(sent)
                    break
            else:
                if len(groups) < top_k:
                    groups.append((at, []))
        return [
            self._passage(ranked[lead], scores[ranked[lead]], set(index.sentence_terms(ranked[lead]).tolist()),
                          duplicates, terms)
            for lead, duplicates in groups
        ]  # fmt: skip

    def _passage(
        self, sent: int, score: float, tokens: set[int], duplicates: list[int], terms: list[QueryTerm]
    ) -> Passage:
        index = self.index
        before, after = index.neighbours(sent)
        doc = index.docs[int(index.sent_doc[sent])]
        text = index.sentence_text(sent)
        spelled: dict[str, str] = {}  # index term -> the word as this sentence spells it
        for start, end, term in term_spans(text):
            spelled.setdefault(term, fold(text[start:end]).replace(".", ""))
        matched: list[str] = []
        for term in terms:
            for term_id, _ in term.ids:
                if term_id in tokens:
                    word = term.word if term_id == term.own_id else spelled.get(index.vocab[term_id], term.word)
                    if word not in matched:
                        matched.append(word)
        return Passage(
            text=text,
            location=self._location(sent),
            score=round(score, 6),
            matched_terms=tuple(matched),
            context_before=index.sentence_text(before) if before is not None else "",
            context_after=index.sentence_text(after) if after is not None else "",
            also_in=tuple(self._location(dup) for dup in duplicates),
            title=doc.title,
            date=doc.date,
        )

    def _location(self, sent: int) -> Location:
        index = self.index
        doc = index.docs[int(index.sent_doc[sent])]
        return Location(
            source=doc.path,
            file=index.root / doc.path,
            start=int(index.sent_start[sent]),
            end=int(index.sent_end[sent]),
            line=int(index.sent_line[sent]),
            end_line=int(index.sent_end_line[sent]),
            sha256=doc.sha256,
        )


def _jaccard(index: Index, sents: np.ndarray) -> np.ndarray:
    """Jaccard similarity of the term sets of every pair of the sentences (0 where either is empty),
    counted with arrays: one small integer product over the terms two or more of them share."""
    lengths = index.tok_ptr[sents + 1] - index.tok_ptr[sents]
    tokens = index.tok_ids[np.repeat(index.tok_ptr[sents] - np.cumsum(lengths) + lengths, lengths)
                           + np.arange(int(lengths.sum()))]  # fmt: skip
    pairs = np.sort(tokens.astype(np.int64) << 32 | np.repeat(np.arange(len(sents), dtype=np.int64), lengths))
    pairs = pairs[np.append(True, pairs[1:] != pairs[:-1])] if len(pairs) else pairs  # (term, sentence) once
    rows, terms = pairs & 0xFFFFFFFF, pairs >> 32
    sizes = np.bincount(rows, minlength=len(sents))
    new_term = np.append(True, terms[1:] != terms[:-1]) if len(terms) else np.empty(0, dtype=bool)
    column = np.cumsum(new_term) - 1
    shared_terms = np.bincount(column) > 1
    held = shared_terms[column]
    incidence = np.zeros((len(sents), int(shared_terms.sum())), dtype=np.int64)
    incidence[rows[held], (np.cumsum(shared_terms) - 1)[column[held]]] = 1
    shared = incidence @ incidence.T  # integer matmul: exact, and no BLAS threads for a tiny product
    np.fill_diagonal(shared, sizes)
    union = sizes[:, None] + sizes[None, :] - shared
    return np.divide(shared, union, out=np.zeros(shared.shape), where=union > 0)
