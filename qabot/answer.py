"""The extractive answerer: retrieval, spelling variants, near-duplicate grouping, context, abstention."""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qabot.analyze import analyze, derivations, everyday_terms, fold, frame_terms, term_spans
from qabot.answer_type import expected_type
from qabot.arrays import run_starts
from qabot.compounds import initials, joined_words, split_words
from qabot.features import Candidates, QueryTerm, SpelledAs, candidate_features, question_features
from qabot.learned import Models, logistic, shipped_models
from qabot.model import Answer, Location, Passage
from qabot.phrase import answer_phrase
from qabot.scoring import idf_of_unknown
from qabot.searchable import SearchableIndex
from qabot.variants import VariantFinder

if TYPE_CHECKING:
    from qabot.config import Settings

RARE_DF = 2  # a term in at most this many sentences also searches its spelling variants
MAX_QUERY_TERMS = 64
CANDIDATES = 50  # sentences ranked and grouped per question
DUPLICATE_JACCARD = 0.8  # token-set overlap that makes two sentences the same wire copy
MIN_MASS = 0.01
DERIVATION_WEIGHT = 0.8  # weight of a derivationally related term (agreement for agree)
APART_SPLITS = 2  # ways to split an unknown word into two corpus terms that are tried (most even first)
CHECKED_SENTENCES = 10  # sentences read to see how the corpus writes a word: its parts as neighbours, in capitals
# Ways a question word also searches corpus terms written otherwise; tools/fit_models.py measures each one's
# effect on held-out articles.
VARIANT_KINDS = frozenset(
    {
        "spelling",  # within a small edit distance, for a rare or unknown word (Pashinyan finds Pashinian)
        "derivation",  # derivationally related words from WordNet (agree finds agreement)
        "joined",  # with its neighbour, written as one (Sky Drive finds SkyDrive)
        "initials",  # a run of capitalised words as its initials, where the corpus writes them so (EU)
        "apart",  # an unknown word as two corpus terms standing side by side (ceasefire finds cease-fire)
    }
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


@dataclass(frozen=True, slots=True)
class AnswerParams:
    """Tunables of the answerer (see config/qabot.toml); None means the fitted model's threshold."""

    top_k: int = 3
    min_confidence: float | None = None
    variant_weight: float = 0.7
    variant_kinds: frozenset[str] = VARIANT_KINDS  # the kinds of VARIANT_KINDS a question word also searches
    names_spelled_as_names: bool = True  # a capitalised word's spelling variants are those the corpus writes as names
    spell_everyday_words: bool = False  # whether a lower-case everyday word ("floor") also searches spelling variants

    @staticmethod
    def from_settings(settings: Settings) -> AnswerParams:
        return AnswerParams(settings.top_k, settings.min_confidence, settings.variant_weight)


@dataclass(frozen=True, slots=True)
class Ranking:
    """A question's candidates, best first, with the ranker's scores and the answer's confidence."""

    terms: tuple[QueryTerm, ...]
    expansions: tuple[tuple[str, str], ...]  # (word, spelling variant searched)
    derived: tuple[tuple[str, str], ...]  # (word, derivationally related term searched)
    candidates: Candidates
    scores: np.ndarray  # the ranker's score per candidate row
    order: np.ndarray  # candidate rows, best first
    confidence: float  # the chance that the first candidate answers
    answerable: float  # the chance that the corpus answers the question at all


def clean_question(question: str) -> str:
    """The question without control, zero-width or bidi-override characters, whitespace collapsed."""
    return " ".join(_CONTROL.sub(" ", unicodedata.normalize("NFC", question)).split())


class Answerer:
    """Answers questions from an Index or a ShardedIndex; pure given it, safe to call from several threads."""

    def __init__(
        self, index: SearchableIndex, params: AnswerParams | None = None, models: Models | None = None
    ) -> None:
        self.index = index
        self.params = params or AnswerParams()
        self.models = models or shipped_models()
        self._variants: VariantFinder | None = None
        self._variants_lock = threading.Lock()

    @property
    def root(self) -> Path:
        return self.index.root

    def refuses(self, ranking: Ranking) -> bool:
        """Whether the answerer abstains on a ranking: its confidence under the min_confidence setting when
        one is set, else the fitted abstention model's probability under its threshold."""
        if self.params.min_confidence is not None:
            return ranking.confidence < self.params.min_confidence
        return ranking.answerable < self.models.min_answerable

    def ask(self, question: str, top_k: int | None = None) -> Answer:
        """The best passages for question (at most top_k), or an abstention saying why."""
        top_k = self.params.top_k if top_k is None else max(1, int(top_k))
        searched = self.index.n_sentences
        cleaned = clean_question(question)
        if not cleaned:
            return Answer(question, (), True, "The question is empty.", (), searched)
        if not self.index.n_sentences:
            return Answer(question, (), True, "The corpus has no sentences to search.", (), searched)
        ranking = self.rank(cleaned)
        terms, expansions = ranking.terms, ranking.expansions
        if not terms:
            reason = "The question has only common words; ask about a name, place or topic."
            return Answer(question, (), True, reason, (), searched)
        if not any(term.found for term in terms):
            words = ", ".join(term.word for term in terms[:8])
            return Answer(question, (), True, f"No article mentions any of: {words}.", expansions, searched)
        if self.refuses(ranking):
            missing = ", ".join(term.word for term in terms if not term.found)
            judged = (
                f"confidence {ranking.confidence:.0%}"
                if self.params.min_confidence is not None
                else f"chance that they answer it {ranking.answerable:.0%}, confidence {ranking.confidence:.0%}"
            )
            reason = (
                "The articles do not seem to answer this: the best match is a weak one"
                f" ({judged}{f'; not found anywhere: {missing}' if missing else ''})."
            )
            return Answer(question, (), True, reason, expansions, searched, ranking.confidence)
        ranked = ranking.candidates.sents[ranking.order].tolist()
        scores = dict(zip(ranked, ranking.scores[ranking.order].tolist(), strict=True))
        passages = self._passages(ranked, scores, top_k, list(terms))
        expansions = self._as_spelled(expansions, ranking.derived, passages)
        variants_of: dict[str, list[str]] = {}
        for word, variant in expansions:
            variants_of.setdefault(word, []).append(variant)
        words_of: dict[tuple[str, ...], list[str]] = {}  # words searched with the same variants say so once
        for word, variants in variants_of.items():
            words_of.setdefault(tuple(variants), []).append(word)
        reason = "; ".join(f"{', '.join(variants)} (for {', '.join(words)})" for variants, words in words_of.items())
        reason = f"also searched: {reason}" if reason else ""
        label = self.models.labels.of(ranking.confidence)
        phrase = answer_phrase(cleaned, passages[0], ranking.confidence, self.index) if passages else None
        return Answer(question, tuple(passages), False, reason, expansions, searched, ranking.confidence, (), label,
                      phrase)  # fmt: skip

    def rank(self, cleaned_question: str) -> Ranking:
        """The question's candidate sentences ranked by the fitted ranker, and its confidence."""
        terms, expansions, derived = self._query_terms(cleaned_question)
        sents = np.zeros(0, dtype=np.int64)
        if any(term.found for term in terms):
            weighted: dict[int, float] = {}
            for term in terms:
                for term_id, weight in term.searched():
                    weighted[term_id] = weighted.get(term_id, 0.0) + weight
            sents, _ = self.index.search(list(weighted.items()), CANDIDATES)
        candidates = candidate_features(self.index, terms, sents, expected_type(cleaned_question))
        scores = self.models.ranker.score(candidates.features)
        order = np.lexsort((sents, -scores))
        question = question_features(terms, candidates, scores, order)
        confidence = logistic(float(self.models.confidence.score(question[None, :])[0])) if len(sents) else 0.0
        answerable = logistic(float(self.models.abstention.score(question[None, :])[0])) if len(sents) else 0.0
        return Ranking(tuple(terms), expansions, derived, candidates, scores, order, confidence, answerable)

    def _as_spelled(
        self, expansions: tuple[tuple[str, str], ...], derived: tuple[tuple[str, str], ...], passages: list[Passage]
    ) -> tuple[tuple[str, str], ...]:
        """Variants as the passages spell them ("luis", not the stem "lui"), each spelling once
        ("sees" and "saw" for the term "see"), the term itself where no passage has it (a word written
        apart part by part: "cease fire"); then the derivations a passage holds, as spelled there
        ("movement" for "move")."""
        spellings: dict[str, list[str]] = {}
        for passage in passages:
            for shown in passage.matched_terms:
                for term in analyze(shown):
                    forms = spellings.setdefault(term, [])
                    if shown not in forms:
                        forms.append(shown)
        for _, variant in expansions:
            for part in variant.split(" "):
                if part not in spellings and (spelled := self._corpus_spelling(part)):
                    spellings[part] = [spelled]
        searched = [(word, form) for word, variant in expansions for form in _spelled(variant, spellings)]
        found = [(word, form) for word, term in derived for form in spellings.get(term, [])]
        return tuple(searched + found)

    def _query_terms(
        self, question: str
    ) -> tuple[list[QueryTerm], tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
        """The question's distinct terms with the vocabulary ids that stand for each: the term itself,
        its derivationally related terms, and for a rare or unknown term its spelling variants, the
        word it forms with its neighbours ("Sky Drive" finds SkyDrive, "European Union" finds EU) and,
        for an unknown term, the word written apart ("ceasefire" finds cease-fire)."""
        index = self.index
        kinds = self.params.variant_kinds
        spans = list(term_spans(question))
        compounds = joined_words(question, spans, index.term_ids) if "joined" in kinds else {}
        abbreviated = initials(question, spans, index.term_ids) if "initials" in kinds else {}
        in_capitals = cache(self._in_capitals)  # each word of "European Union" asks about eu
        as_name = cache(self._as_name)
        counts: dict[str, list] = {}
        for start, end, term in spans:
            if term in counts:
                counts[term][1] += 1
            elif len(counts) < MAX_QUERY_TERMS:
                # a capital after the question's first word marks a name ("Where is Obersee?"); "¿Quién" is no name
                named = written_as_name(question, start)
                counts[term] = [fold(question[start:end]).replace(".", ""), 1, named, question[start].isupper()]
        unknown_idf = idf_of_unknown(index.n_sentences)
        frame, everyday = frame_terms(), everyday_terms()
        related = derivations() if "derivation" in kinds else {}
        terms, expansions, derived = [], [], []
        for term, (word, count, capitalised, typed_upper) in counts.items():
            term_id = index.term_ids.get(term)
            ids: list[tuple[int, float]] = []
            if term_id is not None:
                ids.append((term_id, 1.0))
            for other in related.get(term, ()):
                other_id = index.term_ids.get(other)
                if other_id is not None and other not in counts:
                    ids.append((other_id, DERIVATION_WEIGHT))
                    derived.append((word, other))
            spelling: list[tuple[int, int]] = []
            if term_id is None or index.df[term_id] <= RARE_DF:
                # an everyday word typed in lower case is spelled right: "floor" is no misspelling of "flood"
                misspelt = typed_upper or self.params.spell_everyday_words or term not in everyday
                spelling = self._variant_finder().find(term) if "spelling" in kinds and misspelt else []
                if capitalised and self.params.names_spelled_as_names:  # Paris is not "party", Victoria not victory
                    spelling = [(found, edits) for found, edits in spelling if as_name(found)]
                variant_ids = [
                    *compounds.get(term, []),
                    *(found for found in abbreviated.get(term, []) if in_capitals(found)),
                    *(found for found, _ in spelling),
                ]
                for variant_id in variant_ids:
                    if all(variant_id != known for known, _ in ids):
                        ids.append((variant_id, self.params.variant_weight))
                        expansions.append((word, index.vocab[variant_id]))
            apart = self._written_apart(word) if term_id is None and "apart" in kinds else ()
            if apart:
                expansions.append((word, " ".join(index.vocab[part] for part, _ in apart)))
            # rank-bm25's IDF can be zero or negative in a tiny corpus; a word still carries some mass.
            mass = max(float(index.idf[term_id]), MIN_MASS) if term_id is not None else unknown_idf
            spelled = (
                self._spelled_as(term, spelling, [*ids, *apart][0][0], as_name)
                if term_id is None and capitalised and (ids or apart)
                else SpelledAs()
            )
            if not (ids or apart or capitalised) and everyday.get(term, 0.0) >= self.models.everyday_zipf:
                continue  # an everyday word the corpus lacks ("keep", "quién") frames the question, names no topic
            common = not capitalised and term in everyday
            terms.append(
                QueryTerm(word, count, tuple(ids), mass, term_id, term in frame, capitalised, apart, spelled, common)
            )
        return terms, tuple(expansions), tuple(derived)

    def _spelled_as(
        self, term: str, spelling: Sequence[tuple[int, int]], found: int, as_name: Callable[[int], bool]
    ) -> SpelledAs:
        """How the corpus writes an unknown name it has in another form (found: the first corpus term searched
        for it): how far its closest spelling variant is, and whether the corpus writes that form as a name
        ("Pashinian" for Pashinyan, "EU" for European Union are; "party" for Paris is not)."""
        if not spelling:
            return SpelledAs(True, as_name=as_name(found))
        variant_id, edits = spelling[0]
        variant = self.index.vocab[variant_id]
        ratio = min(len(term), len(variant)) / max(len(term), len(variant), 1)
        return SpelledAs(True, edits, ratio, as_name(variant_id))

    def _as_name(self, term_id: int) -> bool:
        """Whether the corpus writes the term with a capital past a sentence's first word, in one of the
        sentences that hold it most."""
        return any(written_as_name(text, start) for text, start, _ in self._occurrences(term_id))

    def _written_apart(self, word: str) -> tuple[tuple[int, float], ...]:
        """The two corpus terms of an unknown word that the corpus writes apart ("cease-fire" for
        ceasefire), each at the variant weight; none unless they stand as neighbours in one of the
        sentences that best match both, so "firework" is not fire and work met by chance."""
        for pair in split_words(word, self.index.term_ids)[:APART_SPLITS]:
            if any(pair in set(pairwise(self.index.sentence_terms(sent).tolist())) for sent in self._best(pair)):
                return tuple((part, self.params.variant_weight) for part in pair)
        return ()

    def _corpus_spelling(self, term: str) -> str | None:
        """The term as a sentence that holds it most spells it ("luis", never the stem "lui")."""
        term_id = self.index.term_ids.get(term)
        for text, start, end in self._occurrences(term_id) if term_id is not None else ():
            return fold(text[start:end]).replace(".", "")
        return None

    def _in_capitals(self, term_id: int) -> bool:
        """Whether the corpus writes the term in capitals (EU, WWII) in one of the sentences that hold
        it most, as initials are written ("ca." and "St." are no initials)."""
        return any(text[start:end].isupper() for text, start, end in self._occurrences(term_id))

    def _occurrences(self, term_id: int) -> Iterator[tuple[str, int, int]]:
        """(sentence text, start, end) of each place the term stands, in the sentences that hold it most,
        best first, read lazily (the checks above stop at their first yes)."""
        term = self.index.vocab[term_id]
        for sent in self._best((term_id,)):
            text = self.index.sentence_text(sent)
            yield from ((text, start, end) for start, end, found in term_spans(text) if found == term)

    def _best(self, term_ids: Sequence[int]) -> list[int]:
        """The CHECKED_SENTENCES sentences that best match term_ids (BM25, each at weight 1)."""
        sents, _ = self.index.search([(term_id, 1.0) for term_id in term_ids], CHECKED_SENTENCES)
        return sents.tolist()

    def _variant_finder(self) -> VariantFinder:
        with self._variants_lock:
            if self._variants is None:
                self._variants = VariantFinder(self.index.vocab, self.index.bigrams)
            return self._variants

    def _passages(
        self, ranked: list[int], scores: dict[int, float], top_k: int, terms: list[QueryTerm]
    ) -> list[Passage]:
        """The leading top_k sentences that are not wire copies of a better one; each copy of a
        passage (another file, near-identical terms) is listed with it."""
        index = self.index
        copies = (_jaccard([index.sentence_terms(sent) for sent in ranked]) >= DUPLICATE_JACCARD).tolist()
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

    def passage_of(self, sent: int) -> Passage:
        """Sentence `sent` as a passage shows it, on its own: no score, matched words or copies."""
        return self._passage(sent, 0.0, set(), [], [])

    def _passage(
        self, sent: int, score: float, tokens: set[int], duplicates: list[int], terms: list[QueryTerm]
    ) -> Passage:
        index = self.index
        before, after = index.neighbours(sent)
        doc = index.docs[int(index.sent_doc[sent])]
        text = index.sentence_text(sent)
        spelled: dict[str, str] | None = None  # index term -> the word as this sentence spells it, when needed
        matched: list[str] = []
        for term in terms:
            held = [term_id for term_id, _ in term.ids if term_id in tokens]
            if term.apart and all(part in tokens for part, _ in term.apart):
                held += [part for part, _ in term.apart]
            for term_id in held:
                if term_id == term.own_id:
                    word = term.word
                else:
                    spelled = _spellings(text) if spelled is None else spelled
                    word = spelled.get(index.vocab[term_id], term.word)
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
            url=doc.url,
        )

    def _location(self, sent: int) -> Location:
        index = self.index
        doc_id = int(index.sent_doc[sent])
        doc = index.docs[doc_id]
        start = int(index.sent_start[sent])
        return Location(
            source=doc.path,
            file=index.root / doc.path,
            start=start,
            end=int(index.sent_end[sent]),
            line=int(index.sent_line[sent]),
            end_line=int(index.sent_end_line[sent]),
            sha256=doc.sha256,
            column=int(index.sent_column[sent]),
        )


def written_as_name(text: str, start: int) -> bool:
    """Whether the word at start is capitalised after a text's first word, as a name is ("Where is Obersee?");
    an opening capital after punctuation only ("¿Quién") is not."""
    return text[start].isupper() and any(char.isalnum() for char in text[:start])


def _spellings(text: str) -> dict[str, str]:
    """Each index term of the text, as the text first spells it (folded, without dots)."""
    spelled: dict[str, str] = {}
    for start, end, term in term_spans(text):
        spelled.setdefault(term, fold(text[start:end]).replace(".", ""))
    return spelled


def _spelled(variant: str, spellings: Mapping[str, list[str]]) -> list[str]:
    """The spellings of a searched variant; of a word written apart ("ceas fire"), its parts' first ones."""
    if " " in variant:
        return [" ".join(spellings.get(part, [part])[0] for part in variant.split(" "))]
    return spellings.get(variant, [variant])


def _jaccard(sentence_terms: Sequence[np.ndarray]) -> np.ndarray:
    """Jaccard similarity of the term sets of every pair of sentences (0 where either is empty),
    counted with arrays: one small integer product over the terms two or more of them share."""
    lengths = np.array([len(terms) for terms in sentence_terms], dtype=np.int64)
    tokens = np.concatenate([np.zeros(0, dtype=np.int64), *sentence_terms])
    count = len(sentence_terms)
    pairs = np.sort(tokens.astype(np.int64) << 32 | np.repeat(np.arange(count, dtype=np.int64), lengths))
    pairs = pairs[run_starts(pairs)]  # (term, sentence) once
    rows, terms = pairs & 0xFFFFFFFF, pairs >> 32
    sizes = np.bincount(rows, minlength=count)
    new_term = np.append(True, terms[1:] != terms[:-1]) if len(terms) else np.empty(0, dtype=bool)
    column = np.cumsum(new_term) - 1
    shared_terms = np.bincount(column) > 1
    held = shared_terms[column]
    incidence = np.zeros((count, int(shared_terms.sum())))
    incidence[rows[held], (np.cumsum(shared_terms) - 1)[column[held]]] = 1.0
    shared = incidence @ incidence.T  # counts of shared terms: whole numbers, exact in floating point
    np.fill_diagonal(shared, sizes)
    union = sizes[:, None] + sizes[None, :] - shared
    return np.divide(shared, union, out=np.zeros(shared.shape), where=union > 0)
