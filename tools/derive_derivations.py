"""Derive qabot/data/derivations.txt from WordNet 3.0 (development time only; users need nothing).

Each line is an index term and the terms of its derivationally related forms
(agree -> agreement, agreeable), as qabot's analyzer stems them. Needs NLTK with the
WordNet corpus readable (for example Debian's wordnet-base copied to
<nltk_data>/corpora/wordnet with a `lexnames` file added).

    python tools/derive_derivations.py > qabot/data/derivations.txt
"""

from __future__ import annotations

import sys

from nltk.corpus import wordnet

from qabot.analyze import term_of


def _term(lemma_name: str) -> str | None:
    """The index term of a one-word, alphabetic WordNet lemma; None for anything else."""
    if not lemma_name.isalpha() or not lemma_name.islower():
        return None
    return term_of(lemma_name)


ROOT_LETTERS = 3  # related terms share at least this many letters in a row (agree, agreement; not bad, severe)


def share_a_root(a: str, b: str) -> bool:
    """Whether two terms share ROOT_LETTERS letters in a row, as a word and its derivation keep their root.
    WordNet also links words through a sense ("bad" to "severity"), whose stem is that of unrelated words
    ("several"): no root in common."""
    return any(a[i : i + ROOT_LETTERS] in b for i in range(len(a) - ROOT_LETTERS + 1))


def derivations() -> dict[str, set[str]]:
    """Index term -> the index terms WordNet relates to it by derivation (symmetric, no self-links)."""
    related: dict[str, set[str]] = {}
    for lemma in wordnet.all_lemma_names():
        for wn_lemma in wordnet.lemmas(lemma):
            source = _term(wn_lemma.name())
            if source is None:
                continue
            for form in wn_lemma.derivationally_related_forms():
                target = _term(form.name())
                if target is not None and target != source and share_a_root(source, target):
                    related.setdefault(source, set()).add(target)
                    related.setdefault(target, set()).add(source)
    return related


def main() -> None:
    print("# Derivationally related index terms, from WordNet 3.0 (Princeton University); tools/derive_derivations.py")
    for term, others in sorted(derivations().items()):
        sys.stdout.write(f"{term} {' '.join(sorted(others))}\n")


if __name__ == "__main__":
    main()
