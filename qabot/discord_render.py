"""Pure renderings of an Answer for Discord: one embed (or a plain abstention line) within Discord's limits.

Every string from the corpus or the question is markdown-escaped and has each "@" followed by a
zero-width space, so nothing we render can format itself or mention anyone; the only markdown in the
output is our own (quotes, bold matched words, code-span citations, titles linked to their article's web
page, whose address is percent-encoded by qabot.links). Lengths are measured the way Discord measures them
(UTF-16 code units), so the limits hold by construction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import discord

from qabot.links import passage_link, web_url
from qabot.model import Answer, Location, Passage
from qabot.render import confidence_label, matched_spans, printable

MESSAGE_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FIELD_COUNT_LIMIT = 25
FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000

ELLIPSIS = "…"
ZWSP = "\u200b"
FOOTER_BUDGET = 512  # the footer is a status line; the rest of the 6000 goes to the passages
META_BUDGET = 300  # one citation or "also in" line, so a long title cannot starve the quote
LINK_BUDGET = 600  # more room for a citation line whose title links to the article: an address longer is not linked
LINK_TEXT = "the article"  # what a link to an article without a title reads
ALSO_IN_SHOWN = 5
SOURCES_SHOWN = 10
# Characters that format text anywhere, and those that do at the start of a line (lists, headers, quotes).
_MARKDOWN = re.compile(r"[\\*_~|`\[\]<>#]")
_LIST_BULLET = re.compile(r"^(\s*)([-+])", re.MULTILINE)
_LIST_NUMBER = re.compile(r"^(\s*\d+)\.", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Reply:
    """What to send for one answer: an embed with passages, or plain content when the answer abstains."""

    content: str | None
    embed: discord.Embed | None


def units(text: str) -> int:
    """Length as Discord counts it (UTF-16 code units); never less than len(text)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def truncate(text: str, limit: int) -> str:
    """text unchanged if it fits in limit units; else cut at a word boundary, ending with an ellipsis."""
    if len(text) <= limit and units(text) <= limit:  # units() >= len(): skip counting huge texts
        return text
    if limit < 1:
        return ""
    cut = _prefix_within(text[:limit], limit - 1)
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space > len(cut) // 2:  # a word boundary not too far back; else cut mid-word
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def neutralise_mentions(text: str) -> str:
    """Every "@" followed by a zero-width space: no @everyone, @here, <@id> or <@&id> survives."""
    return text.replace("@", "@" + ZWSP)


def flatten(text: str) -> str:
    """The start of text that could ever be shown, each control character or line break made one space.

    Offsets are kept (one character for one); text beyond EMBED_TOTAL_LIMIT is dropped, which still
    leaves it too long for any field, so truncation and its ellipsis happen as they would.
    """
    return printable(text[: EMBED_TOTAL_LIMIT + 1])


def one_line(text: str) -> str:
    """flatten(text) with runs of whitespace collapsed to one space."""
    return " ".join(flatten(text).split())


def escape(text: str) -> str:
    """Corpus or user text made inert: every markdown character escaped, every mention neutralised.

    discord.utils.escape_markdown is not enough: it leaves the inside of `[..](..)` unescaped.
    """
    text = _MARKDOWN.sub(r"\\\g<0>", text)
    text = _LIST_BULLET.sub(r"\1\\\2", text)
    text = _LIST_NUMBER.sub(r"\1\\.", text)
    return neutralise_mentions(text)


def safe_text(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Untrusted text as one inert line of at most limit units (for notices that quote the user)."""
    return _fit(one_line(text), limit, escape)


def answer_reply(answer: Answer, articles: int | None = None) -> Reply:
    """The reply to one answer: an embed when it has passages, a short plain line when it abstains."""
    if answer.abstained or not answer.passages:
        return Reply(abstention_text(answer, articles), None)
    return Reply(None, answer_embed(answer))


def abstention_text(answer: Answer, articles: int | None = None) -> str:
    """One plain message saying the corpus has no answer, why, and what was searched (<= 2000)."""
    scope = f"{answer.sentences_searched:,} sentences"
    if articles is not None:
        scope += f" in {articles:,} articles"
    tail = f" (Searched {scope}.)"
    head = "The articles have no answer to that. "
    return head + _fit(one_line(answer.reason), MESSAGE_LIMIT - units(head + tail), escape) + tail


def answer_embed(answer: Answer) -> discord.Embed:
    """Question as title, each passage quoted with matched words in bold and its citation; Sources; footer."""
    embed = discord.Embed(title=_title(answer.question), colour=discord.Colour.blurple())
    footer = _fit(_footer_text(answer), FOOTER_BUDGET, neutralise_mentions)
    sources = _sources_line([p.location for p in answer.passages])
    fixed = units(embed.title or "") + units(footer) + units("Sources") + units(sources)
    budget = min(DESCRIPTION_LIMIT, EMBED_TOTAL_LIMIT - fixed)
    head = _phrase_head(answer, budget // 4)
    budget -= units(head)
    embed.description = head + _blocks([_passage_block_parts(p, _variants(answer)) for p in answer.passages], budget)
    embed.add_field(name="Sources", value=sources, inline=False)
    embed.set_footer(text=footer)
    return embed


def _phrase_head(answer: Answer, limit: int) -> str:
    """`**phrase** (72%)` and a blank line, opening the embed; "" when the answer has no phrase."""
    if answer.phrase is None:
        return ""
    tail = f" ({answer.phrase.probability:.0%})\n\n"
    return _fit(one_line(answer.phrase.text), limit - units(tail), lambda text: f"**{escape(text)}**") + tail


def context_embed(answer: Answer) -> discord.Embed:
    """Each passage between its neighbouring sentences (what the "Show context" button reveals)."""
    embed = discord.Embed(title=_title("Context: " + answer.question), colour=discord.Colour.light_grey())
    budget = min(DESCRIPTION_LIMIT, EMBED_TOTAL_LIMIT - units(embed.title or ""))
    blocks = [_context_block_parts(p, _variants(answer)) for p in answer.passages]
    embed.description = _blocks(blocks, budget) or "No passages."
    return embed


@dataclass(frozen=True, slots=True)
class _Part:
    """One line of a block: renders itself within a given number of units, never cutting our own markup."""

    render: Callable[[int], str]
    cap: int | None = None  # fixed room; None: elastic (quotes, context), shares what the others leave
    size: int = 0  # raw length, so short elastic parts are served first


def _text_part(raw: str, fmt: Callable[[str], str], cap: int | None = None) -> _Part:
    return _Part(lambda limit: _fit(raw, limit, fmt), cap, len(raw))


def _blocks(blocks: list[list[_Part]], budget: int) -> str:
    if not blocks:
        return ""
    separator = "\n\n"
    share = (budget - units(separator) * (len(blocks) - 1)) // len(blocks)
    return separator.join(_block(parts, share) for parts in blocks)


def _block(parts: list[_Part], budget: int) -> str:
    if budget <= 0:
        return ""
    lines: dict[int, str] = {}
    room = budget - (len(parts) - 1)  # newlines
    for i, part in enumerate(parts):
        if part.cap is not None:
            lines[i] = part.render(max(0, min(part.cap, room // 3)))
            room -= units(lines[i])
    # Elastic parts share what is left, shortest first, so a short neighbour leaves its unused room to the rest.
    elastic = sorted((i for i, part in enumerate(parts) if part.cap is None), key=lambda i: parts[i].size)
    for count, i in enumerate(elastic):
        lines[i] = parts[i].render(max(0, room // (len(elastic) - count)))
        room -= units(lines[i])
    return "\n".join(lines[i] for i in range(len(parts)) if lines[i])


def _passage_block_parts(passage: Passage, variants: tuple[str, ...]) -> list[_Part]:
    terms = passage.matched_terms + variants
    link = max(map(units, _link_targets(passage)), default=0)
    parts = [
        _text_part(flatten(passage.text), lambda text: "> " + _emphasised(text, terms)),
        _Part(lambda limit: _meta_line(passage, limit), META_BUDGET + min(link, LINK_BUDGET)),
    ]
    if passage.also_in:
        parts.append(_Part(lambda limit: _also_in_line(passage.also_in, limit), META_BUDGET))
    return parts


def _context_block_parts(passage: Passage, variants: tuple[str, ...]) -> list[_Part]:
    parts = [_Part(lambda limit: _code_span(discord_citation(passage.location), limit), META_BUDGET)]
    if passage.context_before.strip():
        parts.append(_text_part(flatten(passage.context_before), escape))
    terms = passage.matched_terms + variants
    parts.append(_text_part(flatten(passage.text), lambda text: "> " + _emphasised(text, terms)))
    if passage.context_after.strip():
        parts.append(_text_part(flatten(passage.context_after), escape))
    return parts


def _variants(answer: Answer) -> tuple[str, ...]:
    """Spelling variants the answerer also searched (Luis for Louis): they are matches too."""
    return tuple(variant for _, variant in answer.expansions)


def discord_citation(location: Location) -> str:
    """`path-relative-to-corpus-root:line:column`, as shown in Discord (e.g. 003_b5d4c7ccf50ad595.txt:19:1)."""
    return f"{location.source}:{location.line}:{location.column}"


def _emphasised(text: str, matched_terms: tuple[str, ...]) -> str:
    """text escaped, with our own bold around each matched word (adjacent words share one pair)."""
    spans: list[list[int]] = []
    for start, end in matched_spans(text, matched_terms):
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    pieces, last = [], 0
    for start, end in spans:
        pieces += [escape(text[last:start]), "**", escape(text[start:end]), "**"]
        last = end
    pieces.append(escape(text[last:]))
    return "".join(pieces)


def _meta_line(passage: Passage, limit: int) -> str:
    """`— `citation` · title, date`, within limit (the title is cut first, then the citation). When the article
    has a web address, the title links to it, with a text fragment that highlights the passage where the
    browser supports it; without room for that, to the bare address; without room for either, no link."""
    line = "— " + _code_span(discord_citation(passage.location), limit - 2)
    room = limit - units(line) - 3
    title, date = one_line(passage.title), one_line(passage.date or "")
    for target in _link_targets(passage):
        if linked := _linked_title(title, date, target, room):
            return f"{line} · {linked}"
    rest = _fit(", ".join(part for part in (title, date) if part), room, escape)
    return f"{line} · {rest}" if rest else line


def _link_targets(passage: Passage) -> list[str]:
    """Where the passage's title may link, best first: its article's page with the passage's text fragment, then
    the page alone; none when the article has no http(s) address."""
    address = web_url(passage.url)
    if address is None:
        return []
    return list(dict.fromkeys([passage_link(passage.url, passage.text) or address, address]))


def _linked_title(title: str, date: str, target: str, limit: int) -> str:
    """`[title](target), date` within limit, the title cut to fit; "" when even a word of it does not fit."""
    tail = f"]({target})" + (f", {escape(date)}" if date else "")
    text = _fit(title or LINK_TEXT, limit - 1 - units(tail), escape)
    return f"[{text}{tail}" if text and text != ELLIPSIS else ""


def _also_in_line(locations: tuple[Location, ...], limit: int) -> str:
    return _listing("also in ", ", ", [discord_citation(loc) for loc in locations], ALSO_IN_SHOWN, limit)


def _sources_line(locations: list[Location]) -> str:
    files = list(dict.fromkeys(loc.source for loc in locations))
    return _listing("", " · ", files, SOURCES_SHOWN, FIELD_VALUE_LIMIT) or "none"


def _listing(head: str, separator: str, names: list[str], shown: int, limit: int) -> str:
    """head + code spans of names (at most shown, each cut to 100 units) + "and N more", within limit."""
    spans = [_code_span(name, 100) for name in names[:shown]]
    while spans:
        more = len(names) - len(spans)
        line = head + separator.join(spans) + (f" and {more} more" if more else "")
        if units(line) <= limit:
            return line
        spans.pop()
    return ""


def _footer_text(answer: Answer) -> str:
    footer = f"{confidence_label(answer)} · Searched {answer.sentences_searched:,} sentences"
    reason = one_line(answer.reason)
    return f"{footer} · {reason}" if reason else footer


def _title(question: str) -> str:
    return _fit(one_line(question), TITLE_LIMIT, escape) or "Answer"


def _code_span(text: str, limit: int) -> str:
    """text as inline code within limit units: no backtick to close it early, no mention, or "" if no room."""
    span = _fit(flatten(text), limit, lambda cut: "`" + neutralise_mentions(cut.replace("`", "ˋ")) + "`")
    return "" if span == "``" else span


def _fit(raw: str, limit: int, fmt: Callable[[str], str]) -> str:
    """fmt of the longest word-boundary truncation of raw whose formatted form fits in limit units."""
    if limit <= 0:
        return ""
    budget = limit
    while budget > 0:
        out = fmt(truncate(raw, budget))
        size = units(out)
        if size <= limit:
            return out
        # Escaping grows text; shrink the raw budget in proportion and try again.
        budget = min(budget - 1, budget * limit // size)
    out = fmt("")
    return out if units(out) <= limit else ""


def _prefix_within(text: str, limit: int) -> str:
    n = min(len(text), limit)
    while n > 0:
        over = units(text[:n]) - limit
        if over <= 0:
            break
        n -= over
    return text[: max(n, 0)]
