"""Saved web pages for `qabot add`: the main text without boilerplate, with title, date, author and
canonical address, extracted by trafilatura (with htmldate for the date), the `import` extra."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from qabot.imported import Article, Skip, has_text, iso_date, web_address

INSTALL = "pip install 'qabot[import]'"
MAX_PAGE_BYTES = 20_000_000  # a saved page larger than this is skipped (pages with inlined images run to a few MB)
# Below this many words what is left is a menu or a list of links, not an article (a short news brief has 40).
MIN_ARTICLE_WORDS = 20
_DECLARED_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE)


def extractor_missing() -> str | None:
    """What to install when trafilatura or htmldate is missing; None when both are there."""
    from importlib.util import find_spec

    missing = [name for name in ("trafilatura", "htmldate") if find_spec(name) is None]
    if not missing:
        return None
    return f"saved web pages need {' and '.join(missing)}: {INSTALL}"


def read_page(path: Path) -> Article | Skip:
    """The article of a saved page, or a Skip saying why there is none."""
    try:
        size = path.stat().st_size
        if size > MAX_PAGE_BYTES:
            return Skip("", f"{size:,} bytes is over the {MAX_PAGE_BYTES:,}-byte limit for a saved page")
        data = path.read_bytes()
    except OSError as exc:
        return Skip("", f"cannot be read ({exc.strerror or exc})")
    html = decode_page(data)
    if isinstance(html, Skip):
        return html
    return extract_article(html)


def decode_page(data: bytes) -> str | Skip:
    """The page's text: UTF-8, or the charset the page declares; Skip when it is neither."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.start
    declared = _DECLARED_CHARSET.search(data[:8192])
    if not declared:
        return Skip("", f"not UTF-8 (bad byte at offset {bad}) and the page declares no charset; "
                        "save it again as UTF-8, or add <meta charset=...>")  # fmt: skip
    charset = declared.group(1).decode("ascii")
    try:
        return data.decode(charset)
    except LookupError:
        return Skip("", f"declares the unknown charset {charset!r}")
    except UnicodeDecodeError as exc:
        return Skip("", f"not valid {charset}, as it declares (bad byte at offset {exc.start})")


def extract_article(html: str) -> Article | Skip:
    """Main text, title, date, author and canonical address of a page, by trafilatura; Skip when it finds none.

    lxml (under trafilatura) caps how deep elements nest, so a hostile page costs bounded time and memory.
    """
    import trafilatura

    try:
        found = trafilatura.bare_extraction(
            html, with_metadata=True, favor_precision=True, include_comments=False, include_tables=False,
            date_extraction_params={"extensive_search": False, "original_date": True},
        )  # fmt: skip
    except (ValueError, RecursionError, MemoryError) as exc:
        return Skip("", f"cannot be read as HTML ({exc.__class__.__name__})")
    text = getattr(found, "text", None) if found is not None else None
    if not text or not has_text(text):
        return Skip("", "no article text found (navigation, lists and boilerplate only)")
    title = " ".join((found.title or "").split()) or None
    lines = text.split("\n")
    if title and lines and " ".join(lines[0].split()) == title:
        text = "\n".join(lines[1:])  # the headline, already the title
        if not has_text(text):
            return Skip("", "no article text found (a headline only)")
    words = len(text.split())
    if words < MIN_ARTICLE_WORDS:
        return Skip("", f"no article text found (only {words} words outside navigation and boilerplate)")
    author = " ".join((found.author or "").split()) or None
    return Article(text, title, iso_date(found.date), web_address(found.url), author)
