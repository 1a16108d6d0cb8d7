"""qabot.discord_render: Discord limits hold by construction, corpus text is inert, our emphasis is kept."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import discord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qabot.discord_render import (  # _meta_line: the citation line's fallbacks, at every width
    DESCRIPTION_LIMIT,
    EMBED_TOTAL_LIMIT,
    FIELD_COUNT_LIMIT,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    FOOTER_LIMIT,
    MESSAGE_LIMIT,
    TITLE_LIMIT,
    ZWSP,
    _meta_line,
    answer_reply,
    context_embed,
    safe_text,
    truncate,
    units,
)
from qabot.model import Answer, Location, Passage

MASS_MENTION = re.compile(r"@(everyone|here)|<@[!&]?\d+>")
MARKDOWN = set("*_~|`\\")


def location(source: str = "003_b5d4c7ccf50ad595.txt", line: int = 19) -> Location:
    return Location(source, Path("/corpus") / source, 0, 10, line, line, "0" * 64)


def passage(text: str, matched: tuple[str, ...] = (), **changes) -> Passage:
    values = dict(
        text=text,
        location=location(),
        score=1.0,
        matched_terms=matched,
        context_before="",
        context_after="",
        also_in=(),
        title="A title",
        date="2023-08-03",
    )
    values.update(changes)
    return Passage(**values)


def answer(*passages: Passage, question: str = "Who is Louis Bono?", reason: str = "") -> Answer:
    return Answer(question, tuple(passages), not passages, reason, (), 81, label="" if not passages else "Weak match")


def assert_within_limits(embed: discord.Embed) -> None:
    assert units(embed.title or "") <= TITLE_LIMIT
    assert units(embed.description or "") <= DESCRIPTION_LIMIT
    assert len(embed.fields) <= FIELD_COUNT_LIMIT
    for field in embed.fields:
        assert units(field.name) <= FIELD_NAME_LIMIT and 0 < units(field.value) <= FIELD_VALUE_LIMIT
    assert units(embed.footer.text or "") <= FOOTER_LIMIT
    total = sum(units(text or "") for text in (embed.title, embed.description, embed.footer.text))
    total += sum(units(f.name) + units(f.value) for f in embed.fields)
    assert total <= EMBED_TOTAL_LIMIT and len(embed) <= EMBED_TOTAL_LIMIT


def shown_text(embed: discord.Embed) -> str:
    return "\n".join(
        [embed.title or "", embed.description or "", embed.footer.text or ""]
        + [f"{f.name}\n{f.value}" for f in embed.fields]
    )


def unescaped_markdown(line: str) -> list[str]:
    """Markdown characters not preceded by a backslash, our `**` bold pairs aside."""
    found, i = [], 0
    while i < len(line):
        if line[i] == "\\" or line.startswith("**", i):
            i += 2
        else:
            if line[i] in MARKDOWN:
                found.append(line[i])
            i += 1
    return found


def quote_lines(embed: discord.Embed) -> list[str]:
    return [line[2:] for line in (embed.description or "").split("\n") if line.startswith("> ")]


# --- deterministic behaviour -------------------------------------------------------------------------


def test_passage_is_quoted_with_citation_bold_matches_and_sources():
    embed = answer_reply(answer(passage("Senior Advisor Louis Bono is traveling.", ("louis", "bono")))).embed
    assert embed.title == "Who is Louis Bono?"
    assert "> Senior Advisor **Louis** **Bono** is traveling." in embed.description
    assert "— `003_b5d4c7ccf50ad595.txt:19:1` · A title, 2023-08-03" in embed.description
    assert embed.fields[0].name == "Sources" and embed.fields[0].value == "`003_b5d4c7ccf50ad595.txt`"
    assert embed.footer.text == "Weak match: check the source (confidence 0%) · Searched 81 sentences"


def test_corpus_markdown_is_escaped_but_our_bold_survives():
    text = "**Bono** said _this_ ~~that~~ `code` ||spoiler|| > [link](http://x.test) # head"
    embed = answer_reply(answer(passage(text, ("bono",)))).embed
    [quote] = quote_lines(embed)
    assert "\\*\\***Bono**\\*\\*" in quote
    assert "\\_this\\_" in quote and "\\~\\~that\\~\\~" in quote and "\\`code\\`" in quote
    assert unescaped_markdown(quote) == []


def test_also_in_sources_are_listed():
    copies = (location("010_copy.txt", 4), location("011_copy.txt", 7))
    embed = answer_reply(answer(passage("Wire copy.", also_in=copies))).embed
    assert "also in `010_copy.txt:4:1`, `011_copy.txt:7:1`" in embed.description


def test_abstention_is_plain_and_says_what_was_searched():
    reply = answer_reply(answer(reason="No article mentions any of: quokka."), articles=5)
    assert reply.embed is None
    assert reply.content == (
        "The articles have no answer to that. No article mentions any of: quokka. "
        "(Searched 81 sentences in 5 articles.)"
    )


def test_huge_passage_is_cut_on_a_word_boundary_with_an_ellipsis():
    words = "word " * 20_000
    embed = answer_reply(answer(passage(words + "end"))).embed
    assert_within_limits(embed)
    [quote] = quote_lines(embed)
    assert quote.endswith("word…") and "wor…" not in quote


def test_many_long_passages_share_the_6000_budget():
    long_text = "Louis Bono travels to the South Caucasus this week. " * 100
    passages = [
        passage(long_text, ("bono",), also_in=tuple(location(f"{i}.txt") for i in range(30)), title="T" * 5000)
        for _ in range(10)
    ]
    embed = answer_reply(answer(*passages, question="Q" * 10_000, reason="r" * 10_000)).embed
    assert_within_limits(embed)
    assert len(quote_lines(embed)) == 10 and all("**Bono**" in q for q in quote_lines(embed))
    assert "and 25 more" in embed.description


def test_context_embed_shows_neighbours_around_the_passage():
    p = passage("Bono plans to meet.", ("bono",), context_before="Before it.", context_after="After it.")
    embed = context_embed(answer(p))
    assert embed.description == "`003_b5d4c7ccf50ad595.txt:19:1`\nBefore it.\n> **Bono** plans to meet.\nAfter it."


def test_truncate_counts_utf16_units():
    assert truncate("short", 10) == "short"
    emoji = "😀" * 10  # 2 units each
    assert units(truncate(emoji, 9)) <= 9 and truncate(emoji, 9).endswith("…")
    assert truncate("one two three", 9) == "one two…"


def test_safe_text_neutralises_mentions_and_markdown():
    assert safe_text("@everyone *hi*") == f"@{ZWSP}everyone \\*hi\\*"
    assert units(safe_text("x" * 100_000)) <= MESSAGE_LIMIT


def test_real_answer_renders_real_citations(answerer):
    result = answerer.ask("Who is Louis Bono?")
    embed = answer_reply(result).embed
    for p in result.passages:
        assert f"`{p.location.source}:{p.location.line}:{p.location.column}`" in embed.description
        assert (answerer.root / p.location.source).read_text("utf-8")[p.location.start : p.location.end] == p.text


# --- fuzz ---------------------------------------------------------------------------------------------

hostile = st.sampled_from(
    [
        "@everyone",
        "@here",
        "<@&123456789012345678>",
        "<@!123456789012345678>",
        "<@123>",
        "**",
        "__",
        "`",
        "```",
        "||",
        "> ",
        "# ",
        "\\",
        "\n",
        "\x00",
        "\x1b[31m",
        "[x](http://evil.test)",
        "😀",
        "\u202e",
        " ",
    ]
)
text = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(hostile, st.text(max_size=20)), max_size=60).map("".join),
    st.tuples(st.text(min_size=1, max_size=20), st.integers(1, 6000)).map(lambda pair: pair[0] * pair[1]),
)
words = st.lists(st.from_regex(r"[A-Za-z]{1,12}", fullmatch=True), max_size=4).map(tuple)
sources = st.text(min_size=1, max_size=80)
urls = st.one_of(st.none(), text, text.map(lambda path: "https://news.example/" + path))


@st.composite
def answers(draw) -> Answer:
    passages = tuple(
        Passage(
            draw(text),
            location(draw(sources), draw(st.integers(1, 10**6))),
            1.0,
            draw(words),
            draw(text),
            draw(text),
            tuple(location(draw(sources)) for _ in range(draw(st.integers(0, 8)))),
            draw(text),
            draw(st.one_of(st.none(), text)),
            draw(urls),
        )
        for _ in range(draw(st.integers(0, 12)))
    )
    expansions = tuple((w, w.lower()) for w in draw(words))
    return Answer(draw(text), passages, not passages, draw(text), expansions, draw(st.integers(0, 10**9)))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers())
def test_any_answer_fits_discord_and_mentions_nobody(generated: Answer):
    reply = answer_reply(generated, articles=3)
    if reply.embed is None:
        assert reply.content and units(reply.content) <= MESSAGE_LIMIT
        assert not MASS_MENTION.search(reply.content)
        return
    assert reply.content is None
    for embed in (reply.embed, context_embed(generated)):
        assert_within_limits(embed)
        assert not MASS_MENTION.search(shown_text(embed))
        assert "@" not in shown_text(embed).replace("@" + ZWSP, "")
    for quote in quote_lines(reply.embed):
        assert unescaped_markdown(quote) == []


# --- the title links to the article's web page, with a text fragment ---------------------------------------

ARTICLE = "https://news.example/2024/03/14/tram-talks-(update)"
TRAM = (
    'The operator said the truce between unions and managers, agreed on Monday, "holds for now" - and '
    "full service resumes on Friday, March 15."
)
LINKED = re.compile(r"· \[(?P<title>(?:\\.|[^\]\\])*)\]\((?P<target>[^)\s]+)\)(?P<after>.*)$", re.MULTILINE)


def fragment_values(target: str) -> list[str]:
    """textStart[,textEnd] of a link's text directive, decoded; the raw values must hold no syntax character."""
    directive = target.split("#:~:text=")[1]
    raw = directive.split(",")
    assert len(raw) <= 2 and not any(ch in value for value in raw for ch in "-&, \"'")
    return [unquote(value) for value in raw]


def test_a_title_links_to_its_article_with_a_fragment_of_the_passage_start_and_end():
    p = passage(TRAM, ("truce",), url=ARTICLE, title='Tram talks [live] - "update"', date="2024-03-14")
    embed = answer_reply(answer(p)).embed
    assert_within_limits(embed)
    link = LINKED.search(embed.description)
    assert link is not None, embed.description
    assert link["title"] == 'Tram talks \\[live\\] - "update"'  # escaped as any corpus text
    assert link["after"] == ", 2024-03-14"
    assert link["target"].startswith("https://news.example/2024/03/14/tram-talks-%28update%29#:~:text=")
    assert fragment_values(link["target"]) == ["The operator said the", "on Friday, March 15."]
    assert "`003_b5d4c7ccf50ad595.txt:19:1`" in embed.description  # the file citation stays


def test_a_short_passage_is_its_own_fragment_and_no_url_means_no_link():
    short = 'Talks "resume" - today, in Baku & Yerevan.'
    embed = answer_reply(answer(passage(short, url="https://news.example/a"))).embed
    assert fragment_values(LINKED.search(embed.description)["target"]) == [short]
    for url in (None, "javascript:alert(1)", "Reuters", "https://news.example/" + "x" * 5000):
        embed = answer_reply(answer(passage(TRAM, url=url))).embed
        assert "](" not in embed.description and "— `003_b5d4c7ccf50ad595.txt:19:1` · A title, 2023-08-03" in (
            embed.description
        )


def test_without_room_for_the_fragment_the_title_links_to_the_bare_address_then_to_nothing():
    p = passage(TRAM, url=ARTICLE, title="Tram talks")
    kinds = []
    for limit in range(40, 400):
        line = _meta_line(p, limit)
        assert units(line) <= limit
        link = LINKED.search(line)
        kinds.append("none" if link is None else ("fragment" if "#:~:text=" in link["target"] else "address"))
    assert kinds == sorted(kinds, key=["none", "address", "fragment"].index)  # more room never loses the link
    assert {"none", "address", "fragment"} == set(kinds)
