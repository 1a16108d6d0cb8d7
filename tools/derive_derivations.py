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
                if target is not None and target != source:
                    related.setdefault(source, set()).add(target)
                    related.setdefault(target, set()).add(source)
    return related


def main() -> None:
    print("# Derivationally related index terms, from WordNet 3.0 (Princeton University); tools/derive_derivations.py")
    for term, others in sorted(derivations().items()):
        sys.stdout.write(f"{term} {' '.join(sorted(others))}\n")


if __name__ == "__main__":
    main()
