"""Markdown articles and titles: front matter, markup that never becomes a passage, titles kept as metadata."""

from __future__ import annotations

import pytest

from qabot.corpus import Skipped, parse_document
from qabot.markdown import BadFrontMatter, read_front_matter
from qabot.segment import sentence_spans

CLIPPING = """---
title: "Tram service suspended after overhead wire fault"
date: 2024-03-14T09:30:00+01:00
url: https://news.example.com/city/tram-fault
author: [Ann Lee, Bo Chen]
tags: [transport, city]
---

# Tram service suspended after overhead wire fault

<!-- clipped with a web clipper on 2024-03-15 -->
![The depot at night](images/depot.jpg)

The **tram service** between the station and the harbour was suspended on Monday after an
[overhead wire](https://example.com/wire) snapped near the depot.

## What happened next

- Engineers worked through the night.
- services resumed at six in the morning.
1. A replacement bus ran every ten minutes.

> "We apologise to every passenger," said a spokesperson for the transport authority.
> the authority will publish a report in April.

| Line | Status |
|------|:------:|
| 1    | closed |

```python
print("This code is not a sentence.")
```

<div class="share">
Share this article
</div>

---

[wire]: https://example.com/wire
<!--
A comment over
several lines.
-->
The council will review the network's maintenance budget in May.
"""


def sentences(name: str, text: str) -> list[str]:
    doc = parse_document(name, text.encode())
    assert not isinstance(doc, Skipped), doc
    spans = sentence_spans(doc.text, None, doc.head)
    assert all(doc.text[start:end] == doc.text[start:end].strip() for start, end, _ in spans)
    return [doc.text[start:end] for start, end, _ in spans]


def test_front_matter_gives_title_date_url_and_author():
    doc = parse_document("clip.md", CLIPPING.encode())
    assert doc.title == "Tram service suspended after overhead wire fault"
    assert doc.date == "2024-03-14"
    assert doc.url == doc.head.url == "https://news.example.com/city/tram-fault"
    assert doc.head.author == "Ann Lee, Bo Chen"


def test_markup_never_becomes_a_passage_and_passages_are_raw_slices():
    found = sentences("clip.md", CLIPPING)
    assert found == [
        "The **tram service** between the station and the harbour was suspended on Monday after an\n"
        "[overhead wire](https://example.com/wire) snapped near the depot.",
        "What happened next",
        "Engineers worked through the night.",
        "services resumed at six in the morning.",
        "A replacement bus ran every ten minutes.",
        '"We apologise to every passenger," said a spokesperson for the transport authority.',
        "the authority will publish a report in April.",
        "Share this article",
        "The council will review the network's maintenance budget in May.",
    ]
    joined = " ".join(found)
    for junk in ("---", "title:", "```", "print(", "<!--", "clipped", "|", "![", "images/", "[wire]:", "several lines"):
        assert junk not in joined, junk


def test_heading_is_the_title_without_front_matter():
    text = "# Harbour bridge opens\n\nThe new bridge opened to traffic on Wednesday.\n"
    doc = parse_document("bridge.markdown", text.encode())
    assert doc.title == "Harbour bridge opens" and doc.date is None and doc.url is None
    assert sentences("bridge.markdown", text) == ["The new bridge opened to traffic on Wednesday."]


def test_a_heading_other_than_the_title_is_part_of_the_article():
    text = "---\ntitle: Budget 2025\n---\n# Where the money goes\n\nSchools get a third of it.\n"
    assert sentences("b.md", text) == ["Where the money goes", "Schools get a third of it."]


def test_a_title_alone_is_the_only_passage():
    assert sentences("t.md", "# Council meets on Monday\n") == ["Council meets on Monday"]
    assert sentences("t.txt", "Council meets on Monday\n") == ["Council meets on Monday"]


@pytest.mark.parametrize(
    ("front", "reason"),
    [
        ("title: [unclosed\n", "not valid YAML on line 3"),
        ("- a\n- list\n", "a YAML list, not a mapping"),
        ("date: yesterday\n", "date 'yesterday' is not an ISO date"),
        ("url: javascript:alert(1)\n", "url 'javascript:alert(1)' is not a web address"),
        ("title: {a: 1}\n", "title must be text"),
        ("x: !!python/object/apply:os.system ['echo hi']\n", "not valid YAML"),
    ],
)
def test_bad_front_matter_skips_the_file_with_its_reason(front: str, reason: str):
    skipped = parse_document("bad.md", f"---\n{front}---\nBody text here.\n".encode())
    assert isinstance(skipped, Skipped) and reason in skipped.reason, skipped


def test_unclosed_front_matter_is_named():
    with pytest.raises(BadFrontMatter, match="never closed"):
        read_front_matter("---\ntitle: x\nBody without a closing line.\n")


def test_source_is_the_url_only_when_it_is_a_web_address():
    assert read_front_matter("---\nsource: Reuters\n---\n").url is None
    assert read_front_matter("---\nsource: https://reuters.com/a\n---\n").url == "https://reuters.com/a"
    assert read_front_matter("---\ndate: '2024-02-29'\n---\n").date == "2024-02-29"
    assert read_front_matter("No front matter.\n").end == 0


def test_txt_title_line_before_a_blank_line_is_metadata():
    text = "Tram service suspended after overhead wire fault\n\nThe tram stopped on Monday. Engineers fixed it.\n"
    doc = parse_document("tram.txt", text.encode())
    assert doc.title == "Tram service suspended after overhead wire fault"
    assert sentences("tram.txt", text) == ["The tram stopped on Monday.", "Engineers fixed it."]


def test_txt_date_on_the_line_under_the_title_is_the_date_not_a_passage():
    text = "Tram service suspended\n2024-03-14\n\nThe tram stopped on Monday.\n"
    doc = parse_document("tram.txt", text.encode())
    assert (doc.title, doc.date) == ("Tram service suspended", "2024-03-14")
    assert sentences("tram.txt", text) == ["The tram stopped on Monday."]


def test_txt_first_paragraph_of_one_sentence_is_not_taken_for_a_title():
    text = "The council met on Monday and voted for the plan.\n\nIt takes effect in May.\n"
    assert sentences("c.txt", text) == ["The council met on Monday and voted for the plan.", "It takes effect in May."]
    text = "A headline without blank line\nThe first sentence follows at once.\n"
    assert sentences("h.txt", text) == ["A headline without blank line", "The first sentence follows at once."]
