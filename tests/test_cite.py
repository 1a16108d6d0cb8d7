"""Citations: every form resolves to the exact file text and shows it; outside paths are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qabot.answer import Answerer
from qabot.cite import Citation, MissingFile, OutsideCorpus, parse_citation
from qabot.cite_show import BOLD, RESET, show_citation
from qabot.errors import CitationError, CorpusError
from qabot.render import citation, span_citation
from tests.conftest import PROJECT, SAMPLE_SET, SEEDS

SEED_003 = "003_b5d4c7ccf50ad595.txt"
SECRET = "TOP-SECRET-OUTSIDE-THE-CORPUS"


def write_outside_secret(folder: Path) -> Path:
    """A file beside the corpus folder whose text no refusal may print."""
    path = folder / "secret.txt"
    path.write_text(f"{SECRET}\nline two {SECRET}\n", encoding="utf-8")
    return path


@pytest.fixture
def outside_file(tmp_path: Path) -> Path:
    return write_outside_secret(tmp_path)


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    root = tmp_path / "small"
    root.mkdir()
    (root / "wrapped.txt").write_text("Headline here\n\nA sentence that is\nwrapped over two lines.\nLast line.\n")
    return root


def marked(text: str) -> str:
    return f"»{text}«"


def test_parse_citation_accepts_all_three_forms() -> None:
    assert parse_citation("seeds/003_x.txt:19") == Citation("seeds/003_x.txt", line=19)
    assert parse_citation("seeds/003_x.txt:19:42") == Citation("seeds/003_x.txt", line=19, column=42)
    assert parse_citation("C:/corpus/a.txt:7:2") == Citation("C:/corpus/a.txt", line=7, column=2)
    span = parse_citation("seeds/003_x.txt:1234-1456")
    assert (span.path, span.start, span.end, span.line) == ("seeds/003_x.txt", 1234, 1456, None)
    assert parse_citation("C:/corpus/a.txt:7").path == "C:/corpus/a.txt"  # only the last colon splits


@pytest.mark.parametrize("bad", ["", "seeds/003_x.txt", "seeds/003_x.txt:", ":19", "a.txt:-3", "a.txt:1-", "a.txt:x"])
def test_parse_citation_rejects_malformed(bad: str) -> None:
    with pytest.raises(CitationError, match=r"PATH:LINE:COL .*PATH:LINE .*PATH:START-END"):
        parse_citation(bad)


def test_line_citation_shows_the_line_exactly_with_numbered_context() -> None:
    lines = (SEEDS / SEED_003).read_text("utf-8").split("\n")
    shown = show_citation(SEEDS, f"seeds/{SEED_003}:31", 2, cwd=PROJECT).splitlines()
    assert shown[0].startswith(f"seeds/{SEED_003}: line 31, column 1, characters ")
    assert shown[1:] == [
        f"  29 | {lines[28]}",
        f"  30 | {lines[29]}",
        f"> 31 | {marked(lines[30])}",
        f"  32 | {lines[31]}",
        f"  33 | {lines[32]}",
    ]


def test_span_citations_of_real_answers_show_the_passage_text(answerer: Answerer) -> None:
    answer = answerer.ask("Who is Louis Bono?")
    assert answer.passages
    for passage in answer.passages:
        shown = show_citation(SEEDS, span_citation(passage.location, PROJECT), 1, cwd=PROJECT)
        assert marked(passage.text) in shown
        assert f"> {passage.location.line} | " in shown
        # the line form printed by `ask` points at the line holding the passage's start
        assert passage.text[:40] in show_citation(SEEDS, citation(passage.location, PROJECT), 0, cwd=PROJECT)


def test_color_uses_bold_instead_of_markers() -> None:
    shown = show_citation(SEEDS, f"{SEED_003}:3412-3587", 0, color=True)
    text = (SEEDS / SEED_003).read_text("utf-8")[3412:3587]
    assert f"{BOLD}{text}{RESET}" in shown
    assert "»" not in shown


def test_path_may_be_relative_to_cwd_to_the_root_or_absolute(tmp_path: Path) -> None:
    forms = [f"seeds/{SEED_003}:5", f"{SEED_003}:5", f"{SEEDS / SEED_003}:5"]
    outputs = {show_citation(SEEDS, form, 1, cwd=PROJECT) for form in forms}
    assert len(outputs) == 1
    # from another folder, the root-relative form still works
    assert show_citation(SEEDS, f"{SEED_003}:5", 1, cwd=tmp_path) == outputs.pop().replace(
        f"seeds/{SEED_003}", str(SEEDS / SEED_003)
    )


def test_span_across_lines_flags_every_line(small_corpus: Path) -> None:
    text = (small_corpus / "wrapped.txt").read_text()
    start = text.index("A sentence")
    end = text.index("lines.") + len("lines.")
    shown = show_citation(small_corpus, f"wrapped.txt:{start}-{end}", 1, cwd=small_corpus).splitlines()
    assert shown[0] == f"wrapped.txt: lines 3-4 from column 1, characters {start}-{end} — Headline here"
    assert shown[1:] == ["  2 | ", "> 3 | »A sentence that is", "> 4 | wrapped over two lines.«", "  5 | Last line."]


@pytest.mark.parametrize(
    ("cited", "message"),
    [
        ("seeds/003_b5d4c7ccf50ad595.txt:0", "line 0 is not in the file, which has 33 lines"),
        ("seeds/003_b5d4c7ccf50ad595.txt:34", "line 34 is not in the file"),
        ("seeds/003_b5d4c7ccf50ad595.txt:10-10", r"START \(10\) must be below END \(10\)"),
        ("seeds/003_b5d4c7ccf50ad595.txt:20-10", r"START \(20\) must be below END \(10\)"),
        ("seeds/003_b5d4c7ccf50ad595.txt:3600-99999", "run past the end of the file, which has 3651 characters"),
        ("seeds/003_b5d4c7ccf50ad595.txt:0-99999", "run past the end of the file, which has 3651 characters"),
        ("seeds/003_b5d4c7ccf50ad595.txt:1:0", "column 0 is not on line 1, which has 60 characters"),
        ("seeds/003_b5d4c7ccf50ad595.txt:1:61", "column 61 is not on line 1, which has 60 characters"),
        ("seeds/000_9ad8541396ee1ed9.txt:2", "line 2 is blank; no sentence starts there"),
        ("seeds/000_9ad8541396ee1ed9.txt:2:1", "line 2 is blank; no sentence starts there"),
    ],
)
def test_out_of_range_citations_say_what_is_wrong(cited: str, message: str) -> None:
    with pytest.raises(CitationError, match=message):
        show_citation(SEEDS, cited, 2, cwd=PROJECT)


def test_missing_file_is_reported() -> None:
    with pytest.raises(MissingFile, match="no such file"):
        show_citation(SEEDS, "seeds/999_gone.txt:1", 2, cwd=PROJECT)


def test_paths_outside_the_root_are_refused_without_reading(
    corpus_copy: Path, outside_file: Path, tmp_path: Path
) -> None:
    (corpus_copy / "link.txt").symlink_to(outside_file)
    (corpus_copy / "sub").mkdir()
    attempts = [
        "../secret.txt:1",  # root-relative ..
        "corpus/../secret.txt:1",  # cwd-relative ..
        f"{outside_file}:1",  # absolute
        f"{outside_file}:0-5",
        "link.txt:1",  # symbolic link out of the corpus
        "sub/../../secret.txt:1",
        "../does-not-exist.txt:1",  # refused even when nothing is there
    ]
    for attempt in attempts:
        with pytest.raises(OutsideCorpus, match="outside the corpus folder") as caught:
            show_citation(corpus_copy, attempt, 2, cwd=tmp_path)
        assert SECRET not in str(caught.value)


def test_links_that_stay_inside_the_root_are_followed(corpus_copy: Path) -> None:
    (corpus_copy / "alias.txt").symlink_to(corpus_copy / SEED_003)
    assert "> 31 | »While talks" in show_citation(corpus_copy, "alias.txt:31", 0, cwd=corpus_copy)


def test_binary_and_non_utf8_files_are_refused_cleanly(small_corpus: Path) -> None:
    (small_corpus / "binary.txt").write_bytes(b"abc\x00def\n")
    (small_corpus / "latin1.txt").write_bytes("café\n".encode("latin-1"))
    with pytest.raises(CitationError, match="binary"):
        show_citation(small_corpus, "binary.txt:1", 0)
    with pytest.raises(CitationError, match="not valid UTF-8"):
        show_citation(small_corpus, "latin1.txt:1", 0)


def test_control_characters_are_escaped_and_crlf_hidden(small_corpus: Path) -> None:
    (small_corpus / "hostile.txt").write_bytes(b"Ti\x1btle\r\nRed \x1b[31malert\x1b[0m here\r\nEnd\r\n")
    shown = show_citation(small_corpus, "hostile.txt:2", 1)
    assert "\x1b" not in shown and "\r" not in shown
    assert "> 2 | »Red \\x1b[31malert\\x1b[0m here«" in shown
    assert "  1 | Ti\\x1btle" in shown and "— Ti\\x1btle" in shown


def test_missing_corpus_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        show_citation(tmp_path / "nope", "a.txt:1", 0)


def seed_questions() -> list[str]:
    """A question per seed sentence (its words), plus the project's sample eval questions."""
    from qabot.segment import sentence_spans

    sentences = [
        text[start:end]
        for path in sorted(SEEDS.glob("*.txt"))
        for text in [path.read_text("utf-8")]
        for start, end, _ in sentence_spans(text)
    ]
    samples = [json.loads(line)["question"] for line in SAMPLE_SET.read_text("utf-8").splitlines()]
    return sentences + samples


def test_every_ask_citation_on_the_seeds_shows_exactly_its_passage(answerer: Answerer) -> None:
    checked = 0
    for question in seed_questions():
        for passage in answerer.ask(question, 5).passages:
            location = passage.location
            for cited in (citation(location, PROJECT), f"{location.source}:{location.line}:{location.column}"):
                shown = show_citation(SEEDS, cited, 0, cwd=PROJECT)
                header, *body = shown.splitlines()
                assert f"column {location.column}, characters {location.start}-{location.end} " in header, cited
                if location.line == location.end_line:
                    assert body == [f"> {location.line} | " + _marked_line(location, passage.text)], cited
                checked += 1
    assert checked > 400


def _marked_line(location, text: str) -> str:
    line = Path(location.file).read_text("utf-8").split("\n")[location.line - 1]
    before = line[: location.column - 1]
    return before + marked(text) + line[len(before) + len(text) :]


def test_a_line_holding_two_sentences_says_so_and_each_column_shows_one() -> None:
    seed = "seeds/000_9ad8541396ee1ed9.txt"
    line = (SEEDS / Path(seed).name).read_text("utf-8").split("\n")[4]
    second = line.index("He will visit")
    both = show_citation(SEEDS, f"{seed}:5", 0, cwd=PROJECT)
    assert both.splitlines()[1] == f"> 5 | {marked(line)}"
    assert both.splitlines()[-1] == f"(line 5 holds 2 sentences; cite one with its column: 5:1, 5:{second + 1})"
    first_only = show_citation(SEEDS, f"{seed}:5:1", 0, cwd=PROJECT)
    assert first_only.splitlines()[1:] == [f"> 5 | {marked(line[: second - 1])} {line[second:]}"]
    second_only = show_citation(SEEDS, f"{seed}:5:{second + 1}", 0, cwd=PROJECT)
    assert second_only.splitlines()[1:] == [f"> 5 | {line[:second]}{marked(line[second:])}"]
    inside = show_citation(SEEDS, f"{seed}:5:{second + 5}", 0, cwd=PROJECT)
    assert inside.splitlines()[1:] == [
        f"> 5 | {line[:second]}{marked(line[second:])}",
        f"(column {second + 5} is inside the sentence cited as 5:{second + 1})",
    ]


def test_a_line_a_sentence_wraps_onto_shows_that_sentence_and_says_where_it_starts() -> None:
    seed = "seeds/002_87992cb26fa4a259.txt"
    lines = (SEEDS / Path(seed).name).read_text("utf-8").split("\n")
    start = lines[7].index("He also stressed")
    shown = show_citation(SEEDS, f"{seed}:9", 0, cwd=PROJECT).splitlines()
    assert shown[1:] == [
        f"> 8 | {lines[7][:start]}»{lines[7][start:]}",
        f"> 9 | {lines[8]}«",
        f"(no sentence starts on line 9; this one, cited as 8:{start + 1}, continues onto it)",
    ]
