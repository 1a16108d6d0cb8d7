"""`qabot add`: saved web pages and news dumps become Markdown articles (front matter + text) in the corpus.

Nothing is fetched. Each article is one `.md` file named from its date and a slug of its title,
written atomically; a file never replaces a different article (a clash gets a content-hash
suffix), and adding the same article again adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from qabot.errors import ImportRefused
from qabot.imported import Article, Skip

PAGE_SUFFIXES = (".html", ".htm")
DUMP_SUFFIXES = (".jsonl", ".jsonl.gz", ".csv")
SLUG_CHARS = 60
LISTED_ADDS = 10  # added files are named one by one up to this many per source
_WEB_ADDRESS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# Characters that break a line in YAML or are not printable there; none belongs in a title.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
_BODY_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class SourceReport:
    """What one source gave: files added, articles already there (by file name) and records skipped."""

    source: str
    added: tuple[str, ...]
    already: tuple[str, ...]
    skipped: tuple[Skip, ...]

    def lines(self) -> list[str]:
        """The report as printed: a summary line, then the added files (a few) and every skip (controls blanked)."""
        from qabot.cite import printable

        counts = [f"{len(self.added)} added"]
        if self.already:
            counts.append(f"{len(self.already)} already there")
        if self.skipped:
            counts.append(f"{len(self.skipped)} skipped")
        out = [f"{self.source}: {', '.join(counts)}"]
        if len(self.added) <= LISTED_ADDS:
            out += [f"  added {name}" for name in self.added]
        if len(self.already) <= LISTED_ADDS:
            out += [f"  already there: {name}" for name in self.already]
        out += [f"  skipped {skip.where + ': ' if skip.where else ''}{skip.reason}" for skip in self.skipped]
        return [printable(line) for line in out]


def check_sources(sources: Sequence[str]) -> None:
    """ImportRefused for a web address, or for saved pages when the import extra is not installed."""
    for source in sources:
        if _WEB_ADDRESS.match(source):
            raise ImportRefused(
                f"{source} is a web address; qabot add never fetches from the network: save the page in your "
                "browser (Save Page As…, HTML) and run 'qabot add page.html'"
            )
    if any(source.lower().endswith(PAGE_SUFFIXES) for source in sources):
        from qabot.pages import extractor_missing

        missing = extractor_missing()
        if missing:
            raise ImportRefused(missing)


def add_sources(sources: Sequence[str], to: Path, fields: Mapping[str, str]) -> list[SourceReport]:
    """Import every source into the folder `to` (created if needed); one report per source, in order.

    fields maps an article field (title, date, url, text, author) to a dump's own column name.
    """
    check_sources(sources)
    to.mkdir(parents=True, exist_ok=True)
    return [_add_source(source, to, fields) for source in sources]


def _add_source(source: str, to: Path, fields: Mapping[str, str]) -> SourceReport:
    added: list[str] = []
    already: list[str] = []
    skipped: list[Skip] = []
    for item in read_source(Path(source), fields):
        if isinstance(item, Skip):
            skipped.append(item)
            continue
        name, new = write_article(item, to)
        (added if new else already).append(name)
    return SourceReport(source, tuple(added), tuple(already), tuple(skipped))


def read_source(path: Path, fields: Mapping[str, str]) -> Iterable[Article | Skip]:
    """The articles of one saved page or dump, and a Skip for each record (or the whole file) left out."""
    name = path.name.lower()
    if not path.exists():
        return [Skip("", "no such file")]
    if not path.is_file():
        return [Skip("", "not a file (give saved pages and dumps one by one)")]
    if name.endswith(PAGE_SUFFIXES):
        from qabot.pages import read_page

        return [read_page(path)]
    if name.endswith(DUMP_SUFFIXES):
        from qabot.dumps import read_dump

        return read_dump(path, fields)
    return [Skip("", "not a saved web page (.html, .htm) or news dump (.jsonl, .jsonl.gz, .csv)")]


def write_article(article: Article, folder: Path) -> tuple[str, bool]:
    """Write article as a .md file in folder; (file name, whether it was new). Atomic, never overwrites."""
    content = markdown_of(article).encode("utf-8")
    digest = hashlib.sha256(content).hexdigest()
    stem = file_stem(article)
    for name in (f"{stem}.md", f"{stem}-{digest[:10]}.md", f"{stem}-{digest}.md"):
        target = folder / name
        try:
            if target.read_bytes() == content:
                return name, False
            continue  # a different article holds this name
        except FileNotFoundError:
            pass
        if _create(target, content):
            return name, True
        if target.read_bytes() == content:  # written meanwhile by another import of the same article
            return name, False
    raise ImportRefused(f"cannot find a free file name for {stem}.md in {folder}")


def _create(target: Path, content: bytes) -> bool:
    """Write content to target through a hidden temporary file; False when target appeared meanwhile."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")  # hidden: the corpus never lists it
    try:
        tmp.write_bytes(content)
        try:
            os.link(tmp, target)  # fails if target exists: a different article is never replaced
        except FileExistsError:
            return False
        except OSError:  # no hard links on this file system
            if target.exists():
                return False
            os.replace(tmp, target)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def markdown_of(article: Article) -> str:
    """The file's text: YAML front matter with the known fields, a blank line, then the paragraphs."""
    front = [f"{key}: {_yaml_string(value)}" for key, value in (
        ("title", article.title), ("date", article.date), ("url", article.url), ("author", article.author)
    ) if value]  # fmt: skip
    return "---\n" + "".join(line + "\n" for line in front) + "---\n\n" + body_of(article.text) + "\n"


def _yaml_string(value: str) -> str:
    """value as a YAML double-quoted scalar (a JSON string is one, once line separators are escaped)."""
    return json.dumps(" ".join(_UNPRINTABLE.sub(" ", value).split()), ensure_ascii=False)


def body_of(text: str) -> str:
    """The article's paragraphs, one per line of text, separated by blank lines; markup-like lines escaped.

    A paragraph that would open a code fence gets a backslash so its words stay words.
    """
    text = _BODY_CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    paragraphs = []
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        if line.startswith(("```", "~~~")):
            line = "\\" + line
        paragraphs.append(line)
    return "\n\n".join(paragraphs)


def file_stem(article: Article) -> str:
    """date-slug-of-the-title (the first words of the text when there is no title), at most SLUG_CHARS of slug."""
    words = article.title or " ".join(article.text.split()[:10])
    # Accents folded (Café -> cafe); letters of other scripts kept, so a Greek or Chinese title names its file.
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", words.lower()) if not unicodedata.combining(ch))
    slug = re.sub(r"[\W_]+", "-", folded).strip("-")
    if len(slug) > SLUG_CHARS:
        slug = slug[:SLUG_CHARS].rsplit("-", 1)[0]
    slug = slug or "article"
    return f"{article.date}-{slug}" if article.date else slug
