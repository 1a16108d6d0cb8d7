"""Links back to an article's web page: a safe http(s) address, and a text fragment that highlights the passage.

Text fragments follow the WICG draft (https://wicg.github.io/scroll-to-text-fragment/): `#:~:text=start[,end]`,
each part percent-encoded, with `-`, `&` and `,` encoded too because the directive's syntax uses them.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

FRAGMENT_WORDS = 4  # words from each end of a long passage that locate it (textStart,textEnd)
WHOLE_PASSAGE_WORDS = 10  # a passage of at most this many words is matched whole
FRAGMENT_DIRECTIVE = ":~:"
# Kept as they are in a path, query or fragment: they mean something there. Everything else is percent-encoded,
# so nothing in the address can end a Markdown link early, break out of markup or mention anyone.
_URL_SAFE = "/:?!$&*+,;=%~"
_HOST = re.compile(r"[A-Za-z0-9.-]+(?::\d{1,5})?")
_MARKDOWN_LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)\n]*\)")  # [text](target) and ![alt](image) read as their text
# Markdown emphasis and code marks at the edge of a word, which a web page shows as styling (snake_case stays).
_EMPHASIS = re.compile(r"(?<!\w)[*_`]+|[*_`]+(?!\w)")


def web_url(url: str | None) -> str | None:
    """url as an absolute http(s) address fit for a link, percent-encoded where a character could end the link;
    None when it is not one (no scheme, another scheme, credentials, no host)."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https"):
        return None
    host = _ascii_host(parts.netloc)
    if host is None:
        return None
    address = f"{parts.scheme.lower()}://{host}{quote(parts.path, safe=_URL_SAFE)}"
    if parts.query:
        address += "?" + quote(parts.query, safe=_URL_SAFE)
    if parts.fragment:
        address += "#" + quote(parts.fragment, safe=_URL_SAFE)
    return address


def text_fragment(passage_text: str) -> str | None:
    """The `text=` directive that finds passage_text on its page: the whole passage when short, else its first
    and last FRAGMENT_WORDS words as textStart,textEnd. Markdown link targets and emphasis marks are left out,
    as the page shows only their text. None for a passage without words."""
    words = _EMPHASIS.sub("", _MARKDOWN_LINK.sub(r"\1", passage_text)).split()
    if not words:
        return None
    if len(words) <= WHOLE_PASSAGE_WORDS:
        return "text=" + encode_fragment_text(" ".join(words))
    start, end = " ".join(words[:FRAGMENT_WORDS]), " ".join(words[-FRAGMENT_WORDS:])
    return f"text={encode_fragment_text(start)},{encode_fragment_text(end)}"


def encode_fragment_text(text: str) -> str:
    """One textStart/textEnd value: UTF-8 percent-encoded, `-` included (quote() keeps it; the directive uses it)."""
    return quote(text, safe="").replace("-", "%2D")


def passage_link(url: str | None, passage_text: str) -> str | None:
    """The article's address with a text fragment for the passage (after any fragment it already has);
    the address alone when the passage has no words; None when url is not an http(s) address."""
    address = web_url(url)
    if address is None:
        return None
    directive = text_fragment(passage_text)
    if directive is None:
        return address
    address = address.split(FRAGMENT_DIRECTIVE, 1)[0]  # a directive already there would hide ours
    if "#" not in address:
        address += "#"
    return f"{address}{FRAGMENT_DIRECTIVE}{directive}"


def _ascii_host(netloc: str) -> str | None:
    """host[:port] in ASCII (an international name as IDNA), lower case; None with credentials, spaces or no host."""
    if "@" in netloc or any(ch.isspace() for ch in netloc):
        return None
    host, colon, port = netloc.partition(":")
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:  # an empty or over-long label
        return None
    candidate = f"{host}{colon}{port}"
    return candidate if host and _HOST.fullmatch(candidate) else None
