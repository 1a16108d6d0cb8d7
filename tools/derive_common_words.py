"""Derive qabot/data/common_words.txt: the everyday words of English and five other languages, with how
common each is, from wordfreq's tables (Speer, 2022, wordfreq v3; data CC BY-SA 4.0).

    pip install wordfreq          # development only: its data ships in its wheel; qabot never imports it
    python tools/derive_common_words.py

A question word the corpus lacks is evidence that the corpus lacks the answer, unless it is an everyday
word ("keep", "lot", Spanish "quién"): such a word frames a question rather than naming its topic. The
table lists each word with its Zipf frequency (log10 of occurrences per billion words), the highest over
the languages; qabot decides from what frequency a word counts as everyday (answer.COMMON_ZIPF).
"""

from __future__ import annotations

import sys
from pathlib import Path

from wordfreq import top_n_list, zipf_frequency

OUT = Path(__file__).resolve().parent.parent / "qabot" / "data" / "common_words.txt"
ENGLISH_WORDS = 12000  # English's most frequent words considered
OTHER_WORDS = 600  # each other language's most frequent words (its question words, articles, verbs "to be")
OTHER_LANGUAGES = ("es", "fr", "de", "it", "pt")
MIN_ZIPF = 4.0  # rarer words are kept out: a missing rare word says the corpus lacks the topic


def main() -> int:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
