"""Near-duplicate grouping: the array Jaccard equals set arithmetic; wire copies are folded into one passage."""

from __future__ import annotations

import itertools

import numpy as np

from qabot.answer import _jaccard
from qabot.frontend import answerer_for
from tests.conftest import settings_for


def set_jaccard(a: set[int], b: set[int]) -> float:
    return 0.0 if not a or not b else len(a & b) / len(a | b)


def test_array_jaccard_equals_set_arithmetic_for_every_pair(answerer):
    index = answerer.index
    rng = np.random.default_rng(7)
    for trial in range(60):
        sents = rng.choice(index.n_sentences, 25, replace=False)
        if trial % 2:
            sents = np.concatenate([sents, sents[:4]])  # the same sentence twice: similarity 1
        similarity = _jaccard([index.sentence_terms(int(s)) for s in sents])
        sets = [set(index.sentence_terms(int(s)).tolist()) for s in sents]
        for i, j in itertools.product(range(len(sents)), repeat=2):
            assert similarity[i, j] == set_jaccard(sets[i], sets[j]), (sents[i], sents[j])


def test_a_wire_copy_in_another_file_is_listed_with_its_passage(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    wire = "The okapi reserve in Epulu reopened on Monday after rangers repaired the fences."
    (corpus / "a.txt").write_text(f"Okapi news\n\n{wire} Visitors queued.\n", encoding="utf-8")
    (corpus / "b.txt").write_text(f"Reserve\n\nIn brief: {wire}\n", encoding="utf-8")
    (corpus / "c.txt").write_text("Other\n\nThe okapi reserve is in Ituri. Rangers patrol it.\n", encoding="utf-8")
    answerer = answerer_for(settings_for(corpus, tmp_path / "cache"))
    answer = answerer.ask("When did the okapi reserve in Epulu reopen?", 3)
    lead = answer.passages[0]
    assert [copy.source for copy in lead.also_in] == [{"a.txt": "b.txt", "b.txt": "a.txt"}[lead.location.source]]
    copy = lead.also_in[0]
    assert copy.file.read_text(encoding="utf-8")[copy.start : copy.end].endswith(wire)
    shown = [(p.location.source, p.location.start) for p in answer.passages]
    assert (copy.source, copy.start) not in shown, "a copy is not shown as a passage of its own"
