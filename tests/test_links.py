"""qabot.links: safe http(s) addresses and WICG text fragments that find the passage on its page."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest

from qabot.links import FRAGMENT_WORDS, passage_link, text_fragment, web_url

QUOTED = 'The cease-fire "holds, for now" in Arlington & Baku.'
LONG = (
    "From left to right, Tom Sullivan, deputy chief of staff for policy to the Secretary of State, Dereck Hogan, "
    "acting assistant of state, take part in the closing session on May 4, 2023."
)


def directive_values(link: str) -> list[str]:
    """The decoded textStart[,textEnd] of a link's text directive."""
    fragment = urlsplit(link).fragment
    directive = fragment.split(":~:", 1)[1]
    assert directive.startswith("text=")
    return [unquote(value) for value in directive.removeprefix("text=").split(",")]


def test_a_short_passage_is_matched_whole_with_its_syntax_characters_encoded() -> None:
    link = passage_link("https://example.org/news/talks", QUOTED)
    assert link is not None and link.startswith("https://example.org/news/talks#:~:text=")
    encoded = link.split("text=", 1)[1]
    for raw in ("-", ",", "&", '"', " "):  # the directive's own syntax, and what would end a link
        assert raw not in encoded
    assert "cease%2Dfire" in encoded and "holds%2C" in encoded and "%26%20Baku" in encoded and "%22holds" in encoded
    assert directive_values(link) == [QUOTED]


def test_a_long_passage_is_found_by_its_first_and_last_words() -> None:
    start, end = directive_values(passage_link("https://example.org/a", LONG))
    words = LONG.split()
    assert start == " ".join(words[:FRAGMENT_WORDS]) == "From left to right,"
    assert end == " ".join(words[-FRAGMENT_WORDS:]) == "on May 4, 2023."
    assert text_fragment(LONG) == "text=From%20left%20to%20right%2C,on%20May%204%2C%202023."


def test_markdown_markup_is_left_out_as_the_page_shows_only_its_text() -> None:
    marked = "The **ceasefire** held, [Reuters](https://r.example) said in _its_ snake_case `feed`."
    values = directive_values(passage_link("https://example.org/a", marked))
    assert values == ["The ceasefire held, Reuters said in its snake_case feed."]


def test_an_existing_fragment_is_kept_and_a_wordless_passage_gets_the_bare_address() -> None:
    live = "https://example.org/a#live"
    assert passage_link(live, "Talks resumed.") == "https://example.org/a#live:~:text=Talks%20resumed."
    assert passage_link("https://example.org/a#:~:text=old", "New text.") == "https://example.org/a#:~:text=New%20text."
    assert passage_link("https://example.org/a", "— …") == "https://example.org/a#:~:text=%E2%80%94%20%E2%80%A6"
    assert passage_link("https://example.org/a", "   ") == "https://example.org/a"


NOT_LINKS = [
    "javascript:alert(1)", "mailto:desk@example.org", "example.org/news", "ftp://example.org/a",
    "https://user:pw@example.org/", "https:///path-only", "", None, "Reuters",
]  # fmt: skip


@pytest.mark.parametrize("url", NOT_LINKS)
def test_only_http_addresses_with_a_host_are_links(url: str | None) -> None:
    assert web_url(url) is None and passage_link(url, QUOTED) is None


def test_addresses_are_percent_encoded_where_a_character_could_end_a_link() -> None:
    wiki = "https://en.wikipedia.org/wiki/Sky_%28United_Kingdom%29"
    assert web_url("https://En.Wikipedia.org/wiki/Sky_(United_Kingdom)") == wiki
    assert web_url(" https://example.org/a b?q=x y&z=1 ") == "https://example.org/a%20b?q=x%20y&z=1"
    assert web_url("https://medium.com/@desk/story") == "https://medium.com/%40desk/story"
    assert web_url("http://bücher.example:8080/ü") == "http://xn--bcher-kva.example:8080/%C3%BC"
    assert web_url("https://example.org/a<b>[c]`d`") == "https://example.org/a%3Cb%3E%5Bc%5D%60d%60"
