"""What a reader of saved pages or news dumps gives `qabot add`: articles to write and records skipped, and
the small checks both readers share."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Article:
    """One article to write: its text (paragraphs split by blank lines) and what the front matter says."""

    text: str
    title: str | None = None
    date: str | None = None  # YYYY-MM-DD
    url: str | None = None
    author: str | None = None


@dataclass(frozen=True, slots=True)
class Skip:
    """A record (or a whole source, when `where` is empty) left out, and why."""

    where: str
    reason: str


def has_text(article_text: str) -> bool:
    """Whether the text holds a word (letters or digits), not only whitespace and punctuation."""
    return any(ch.isalnum() for ch in article_text)


def iso_date(value: object) -> str | None:
    """YYYY-MM-DD from an ISO date or datetime, an RFC 822 date (RSS pubDate) or a Unix time; None otherwise."""
    import datetime
    from email.utils import parsedate_to_datetime

    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, int | float):
            seconds = value / 1000 if value > 1e11 else value  # JavaScript writes milliseconds
            return datetime.datetime.fromtimestamp(seconds, datetime.UTC).date().isoformat()
        text = str(value).strip()
        try:
            return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
        except ValueError:
            return parsedate_to_datetime(text).date().isoformat()
    except (ValueError, TypeError, OverflowError, OSError, IndexError):
        return None


def web_address(value: object) -> str | None:
    """value when it is an http(s) address, else None."""
    text = value.strip() if isinstance(value, str) else ""
    return text if re.fullmatch(r"https?://[^\s\x00-\x1f\x7f]+", text, re.IGNORECASE) else None
