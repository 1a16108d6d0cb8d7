"""Derive qabot/data/common_words.txt: the everyday words of English and five other languages, with how
common each is, from wordfreq's tables (Speer, 2022, wordfreq v3; data CC BY-SA 4.0); and from it
qabot/data/common_terms.txt, the same table by index term, which qabot reads.

    pip install wordfreq          # development only: its data ships in its wheel; qabot never imports it
    python tools/derive_common_words.py
    python tools/derive_common_words.py --terms   # common_terms.txt only, after the analyzer changed

A question word the corpus lacks is evidence that the corpus lacks the answer, unless it is an everyday
word ("keep", "lot", Spanish "quién"): such a word frames a question rather than naming its topic. The
table lists each word with its Zipf frequency (log10 of occurrences per billion words), the highest over
the languages; qabot decides from what frequency a word counts as everyday (answer.COMMON_ZIPF).
"""

from __future__ import annotations

import sys
from pathlib import Path

from qabot.analyze import term_of

DATA = Path(__file__).resolve().parent.parent / "qabot" / "data"
OUT = DATA / "common_words.txt"
TERMS_OUT = DATA / "common_terms.txt"
ENGLISH_WORDS = 12000  # English's most frequent words considered
OTHER_WORDS = 600  # each other language's most frequent words (its question words, articles, verbs "to be")
OTHER_LANGUAGES = ("es", "fr", "de", "it", "pt")
MIN_ZIPF = 4.0  # rarer words are kept out: a missing rare word says the corpus lacks the topic


def everyday_terms(words_table: str) -> dict[str, float]:
    """Index term -> the highest Zipf frequency of the words of common_words.txt (its text) it stands for,
    stemmed once here so that a fresh `qabot ask` does not stem 9,000 words."""
    zipf: dict[str, float] = {}
    for line in words_table.splitlines():
        if line and not line.startswith("#"):
            word, frequency = line.split()
            if term := term_of(word):
                zipf[term] = max(zipf.get(term, 0.0), float(frequency))
    return zipf


def write_terms() -> None:
    zipf = everyday_terms(OUT.read_text(encoding="utf-8"))
    lines = [
        "# Index terms of common_words.txt (qabot's analyzer), each with the highest Zipf frequency of its words.",
        "# Derived by tools/derive_common_words.py; run it with --terms after any change to the analyzer.",
    ]
    lines += [f"{term} {frequency:.2f}" for term, frequency in zipf.items()]
    TERMS_OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {TERMS_OUT}: {len(zipf)} terms")


def main() -> int:
    if sys.argv[1:] == ["--terms"]:
        write_terms()
        return 0
    from wordfreq import top_n_list, zipf_frequency

    zipf: dict[str, float] = {}
    lists = [("en", top_n_list("en", ENGLISH_WORDS))]
    lists += [(lang, top_n_list(lang, OTHER_WORDS)) for lang in OTHER_LANGUAGES]
    for lang, words in lists:
        for word in words:
            if not word.isalpha():
                continue
            frequency = zipf_frequency(word, lang)
            if frequency >= MIN_ZIPF:
                zipf[word] = max(zipf.get(word, 0.0), frequency)
    lines = [
        "# Everyday words of English, Spanish, French, German, Italian and Portuguese, each with its Zipf frequency",
        "# (log10 of occurrences per billion words, the highest over the languages). Derived by",
        "# tools/derive_common_words.py from wordfreq (Speer, 2022; data CC BY-SA 4.0).",
    ]
    lines += [f"{word} {zipf[word]:.2f}" for word in sorted(zipf)]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(zipf)} words")
    write_terms()
    return 0


if __name__ == "__main__":
    sys.exit(main())
