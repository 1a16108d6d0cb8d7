"""The documentation: every relative link in README.md and docs/*.md resolves to a file of the repository,
and neither the README nor the help text sends a reader outside it."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from qabot.cli import build_parser
from tests.conftest import PROJECT

DOCUMENTS = [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]
_FENCED = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1", re.DOTALL | re.MULTILINE)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?", re.MULTILINE)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def relative_links(markdown: str) -> list[str]:
    """Targets of the inline and reference links of markdown, code left out, web and mail addresses and
    same-page anchors too."""
    prose = _CODE_SPAN.sub("", _FENCED.sub("", markdown))
    targets = _INLINE_LINK.findall(prose) + _REFERENCE.findall(prose)
    return [target for target in targets if not _SCHEME.match(target) and not target.startswith("#")]


def dangling_links(document: Path, repository: Path = PROJECT) -> list[str]:
    """The relative links of document that do not name a file inside repository."""
    dangling = []
    for target in relative_links(document.read_text("utf-8")):
        path = (document.parent / unquote(target.split("#")[0].split("?")[0])).resolve()
        if not (path.is_relative_to(repository) and path.is_file()):
            dangling.append(target)
    return dangling


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(PROJECT)))
def test_every_relative_link_resolves_to_a_file_of_the_repository(document: Path) -> None:
    assert dangling_links(document) == []


def test_a_dangling_link_is_caught_and_code_is_not_a_link(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "here.md").write_text("# Here\n", "utf-8")
    page = tmp_path / "docs" / "README.md"
    page.write_text(
        "See [here](here.md#top), [gone](gone.md), ![img](pic.png), [out](../../outside.md), "
        "[web](https://example.org/x.md), [mail](mailto:a@example.org), [anchor](#usage), "
        "`[code](not-a-link.md)` and [ref].\n\n```\n[fenced](also-not.md)\n```\n\n[ref]: <missing.md>\n",
        "utf-8",
    )
    assert relative_links(page.read_text("utf-8")) == ["here.md#top", "gone.md", "pic.png", "../../outside.md",
                                                       "missing.md"]
    assert dangling_links(page, tmp_path) == ["gone.md", "pic.png", "../../outside.md", "missing.md"]


def test_the_readme_leads_to_the_docs_and_the_docs_index_lists_every_page() -> None:
    assert "docs/README.md" in relative_links((PROJECT / "README.md").read_text("utf-8"))
    listed = relative_links((PROJECT / "docs" / "README.md").read_text("utf-8"))
    for page in ("corpus.md", "add.md", "json.md", "eval-sets.md", "architecture.md"):
        assert page in listed
    assert {path.name for path in (PROJECT / "docs").glob("*.md")} <= {*listed, "README.md"}


def test_neither_the_readme_nor_the_help_points_outside_the_repository() -> None:
    parser = build_parser()
    helps = [parser.format_help()]
    helps += [sub.format_help() for action in parser._subparsers._group_actions for sub in action.choices.values()]
    for text in [(PROJECT / "README.md").read_text("utf-8"), *helps]:
        assert "DESIGN.md" not in text
    evaluate = next(h for h in helps if h.startswith("usage: qabot eval"))
    assert "docs/eval-sets.md" in " ".join(evaluate.split()) and (PROJECT / "docs" / "eval-sets.md").is_file()


def test_the_module_map_has_a_row_for_every_module() -> None:
    """docs/architecture.md's module map names every module of the package, and no module that is gone."""
    mapped = set(re.findall(r"^\| [^|]+ \| \[`([\w.]+\.py)`\]\(\.\./qabot/", (PROJECT / "docs" / "architecture.md")
                            .read_text(encoding="utf-8"), re.MULTILINE))  # fmt: skip
    modules = {path.name for path in (PROJECT / "qabot").glob("*.py")} - {"__init__.py"}
    assert mapped == modules, (sorted(modules - mapped), sorted(mapped - modules))
