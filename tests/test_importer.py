"""`qabot add`: saved pages and news dumps become .md articles that ask, show and verify then use end to end."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qabot.cli import main
from qabot.errors import ImportRefused
from qabot.frontend import answerer_for
from qabot.imported import Article
from qabot.importer import markdown_of, write_article
from qabot.markdown import read_front_matter
from tests.conftest import PROJECT, settings_for

NEWS_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Tram service suspended after overhead wire fault | Harbour City News</title>
<link rel="canonical" href="https://news.example.com/city/2024/03/14/tram-wire-fault">
<meta property="article:published_time" content="2024-03-14T09:30:00+01:00">
<meta name="author" content="Ann Lee">
</head><body>
<div id="cookie-banner">We use cookies to improve your experience. Accept all cookies or manage preferences.</div>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/city">City</a></li><li><a href="/sport">Sport</a></li>
<li><a href="/weather">Weather</a></li></ul></nav></header>
<div class="ad-slot">Advertisement: Subscribe to Harbour City News Premium for only 1 euro a week</div>
<main><article>
<h1>Tram service suspended after overhead wire fault</h1>
<p>The tram service between the central station and the harbour was suspended on Monday after an overhead wire
snapped near the Eastgate depot.</p>
<p>Engineers from the transport authority worked through the night to replace forty metres of cable, and services
resumed at six o'clock on Tuesday morning.</p>
<p>A spokesperson for the authority said the cause of the fault, possibly a lightning strike, was still being
investigated.</p>
<p>Replacement buses ran every ten minutes while the line was closed, carrying about 12,000 passengers.</p>
</article>
<aside class="related"><h2>Related stories</h2><ul>
<li><a href="/city/bus-fares">Bus fares to rise by five percent in April</a></li>
<li><a href="/city/bridge">New harbour bridge opens to cyclists</a></li>
</ul></aside></main>
<footer><p>© 2024 Harbour City News. All rights reserved.</p><a href="/privacy">Privacy policy</a></footer>
</body></html>
"""
BLOG_POST = """<html><head><meta charset="utf-8"><title>Why I switched to a folding bicycle – Mira's notes</title>
<link rel="canonical" href="https://mira.example.org/2023/11/folding-bike/">
</head><body>
<div class="site-header"><a href="/">Mira's notes</a> <a href="/about">About</a> <a href="/archive">Archive</a></div>
<div class="post">
<h1 class="entry-title">Why I switched to a folding bicycle</h1>
<div class="entry-meta">Posted on <time class="published" datetime="2023-11-02">November 2, 2023</time>
by <span class="author">Mira Okafor</span></div>
<div class="entry-content">
<p>For three years I rode a heavy city bike to the office, and for three years I fought for a place on the crowded
train platform with it.</p>
<p>Last spring I bought a folding bicycle that weighs eleven kilograms and folds in about twenty seconds, so it now
travels under my desk instead of in the corridor.</p>
<p>The small wheels feel twitchy at first, but after two weeks I no longer noticed them.</p>
</div>
</div>
<div class="sidebar"><h3>Popular posts</h3><ul><li><a href="/a">My favourite rain jackets</a></li>
<li><a href="/b">Ten tips for winter cycling</a></li></ul></div>
</body></html>
"""
NO_ARTICLE = """<html><head><meta charset="utf-8"><title>Harbour City News – Latest</title></head><body>
<nav><a href="/">Home</a> | <a href="/city">City</a> | <a href="/sport">Sport</a></nav>
<ul class="headlines"><li><a href="/a">Tram service suspended</a></li><li><a href="/b">Bus fares to rise</a></li></ul>
<footer>© 2024 Harbour City News</footer>
</body></html>
"""
BOILERPLATE = ("cookies", "Advertisement", "Subscribe", "Related stories", "Bus fares", "All rights reserved",
               "Privacy policy", "Popular posts", "rain jackets", "Home")  # fmt: skip


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A corpus folder in tmp_path, named by QABOT_CORPUS, with its cache in tmp_path; returns the corpus."""
    for key in list(os.environ):
        if key.startswith("QABOT_"):
            monkeypatch.delenv(key)
    corpus = tmp_path / "corpus"
    monkeypatch.setenv("QABOT_CORPUS", str(corpus))
    monkeypatch.setenv("QABOT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    return corpus


def cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ask_show_verify(capsys: pytest.CaptureFixture, tmp_path: Path, question: str, expected: str) -> dict:
    """ask --json, then show its first citation and verify the saved answer; the answer as JSON."""
    code, out, _ = cli(capsys, "ask", "--json", question)
    assert code == 0, out
    answer = json.loads(out)
    first = answer["passages"][0]
    assert expected in first["text"]
    code, shown, _ = cli(capsys, "show", f"{first['source']}:{first['start']}-{first['end']}")
    assert code == 0 and first["text"].split("\n")[0] in shown
    saved = tmp_path / "answer.json"
    saved.write_text(out, encoding="utf-8")
    code, report, _ = cli(capsys, "verify", str(saved))
    assert code == 0 and "CHANGED" not in report and "OK" in report, report
    return answer


def passages_of(corpus: Path, tmp_path: Path, question: str) -> list:
    return list(answerer_for(settings_for(corpus, tmp_path / "cache")).ask(question, 10).passages)


def test_news_page_is_imported_without_boilerplate_then_asked_shown_and_verified(env, tmp_path, capsys):
    page = tmp_path / "tram.html"
    page.write_text(NEWS_PAGE, encoding="utf-8")
    code, out, _ = cli(capsys, "add", str(page))
    name = "2024-03-14-tram-service-suspended-after-overhead-wire-fault.md"
    assert code == 0 and f"added {name}" in out
    text = (env / name).read_text(encoding="utf-8")
    front = read_front_matter(text)
    assert front.title == "Tram service suspended after overhead wire fault"
    assert (front.date, front.author) == ("2024-03-14", "Ann Lee")
    assert front.url == "https://news.example.com/city/2024/03/14/tram-wire-fault"
    for phrase in BOILERPLATE:
        assert phrase not in text, phrase
    answer = ask_show_verify(capsys, tmp_path, "Why was the tram service suspended?", "overhead wire")
    assert answer["passages"][0]["line"] > 6, "the front matter is never a passage"
    passages = passages_of(env, tmp_path, "Why was the tram service suspended?")
    assert passages[0].url == front.url
    assert all(p.text != front.title for p in passages), "the title is never a passage"


def test_blog_post_is_imported_with_its_date_and_author(env, tmp_path, capsys):
    page = tmp_path / "bike.htm"
    page.write_text(BLOG_POST, encoding="utf-8")
    assert cli(capsys, "add", str(page))[0] == 0
    [written] = env.glob("*.md")
    assert written.name == "2023-11-02-why-i-switched-to-a-folding-bicycle.md"
    front = read_front_matter(written.read_text(encoding="utf-8"))
    assert (front.author, front.url) == ("Mira Okafor", "https://mira.example.org/2023/11/folding-bike/")
    for phrase in BOILERPLATE:
        assert phrase not in written.read_text(encoding="utf-8"), phrase
    ask_show_verify(capsys, tmp_path, "How much does the folding bicycle weigh?", "eleven kilograms")


def test_page_without_an_article_is_skipped_with_its_reason(env, tmp_path, capsys):
    page = tmp_path / "front-page.html"
    page.write_text(NO_ARTICLE, encoding="utf-8")
    code, out, _ = cli(capsys, "add", str(page))
    assert code == 0
    assert f"{page}: 0 added, 1 skipped" in out and "skipped no article text found" in out
    assert not list(env.glob("*.md"))


def test_adding_the_same_page_twice_adds_nothing_and_says_so(env, tmp_path, capsys):
    page = tmp_path / "tram.html"
    page.write_text(NEWS_PAGE, encoding="utf-8")
    cli(capsys, "add", str(page))
    before = {p.name: p.read_bytes() for p in env.iterdir()}
    code, out, _ = cli(capsys, "add", str(page), "--to", str(env))
    assert code == 0 and "0 added, 1 already there" in out
    assert {p.name: p.read_bytes() for p in env.iterdir()} == before


def test_a_different_article_with_the_same_name_gets_a_hash_suffix(tmp_path):
    first = Article("The first text of the day.", "Morning briefing", "2024-01-02")
    second = Article("A different text, same title and day.", "Morning briefing", "2024-01-02")
    name, new = write_article(first, tmp_path)
    assert (name, new) == ("2024-01-02-morning-briefing.md", True)
    other, new = write_article(second, tmp_path)
    assert new and other.startswith("2024-01-02-morning-briefing-") and other != name
    assert (tmp_path / name).read_text(encoding="utf-8") == markdown_of(first)
    assert write_article(second, tmp_path) == (other, False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, other]), "no temporary file is left"


def test_front_matter_survives_quotes_colons_and_line_separators(tmp_path):
    title = 'He said: "no" — #1\u2028again\x85 \\ end'
    name, _ = write_article(Article("Body text of the article.", title, None, "https://x.example/a?b=1#c"), tmp_path)
    front = read_front_matter((tmp_path / name).read_text(encoding="utf-8"))
    assert front.title == 'He said: "no" — #1 again \\ end'
    assert front.url == "https://x.example/a?b=1#c"


JSONL_DUMP = [
    json.dumps({"title": "Harbour bridge opens to traffic", "published_at": "2024-05-01T07:00:00Z",
                "link": "https://news.example.com/bridge", "body": "The new harbour bridge opened to traffic on "
                "Wednesday.\nThe bridge cost 40 million euros and took three years to build.", "author": "Bo Chen"}),
    '{"title": "Broken record", "text": "never closed',
    json.dumps({"title": "No text here", "summary": "A summary is not the text."}),
    json.dumps({"title": "Empty", "content": "   "}),
    json.dumps(["a", "list"]),
    json.dumps({"headline": "Library extends opening hours", "pubDate": "Tue, 07 May 2024 10:00:00 GMT",
                "content": "The city library will open until nine in the evening from June."}),
]  # fmt: skip


def test_jsonl_dump_adds_good_records_and_names_every_bad_one(env, tmp_path, capsys):
    dump = tmp_path / "news.jsonl"
    dump.write_bytes(("\n".join(JSONL_DUMP) + "\n").encode() + b'{"title": "Latin", "text": "caf\xe9 ouvert"}\n')
    code, out, _ = cli(capsys, "add", str(dump))
    assert code == 0
    assert f"{dump}: 2 added, 5 skipped" in out
    assert "skipped line 2: bad JSON" in out
    assert "skipped line 3: no text field (looked for text, body, content" in out
    assert "skipped line 4: empty text" in out
    assert "skipped line 5: a JSON list, not an object" in out
    assert "skipped line 7: not UTF-8" in out
    names = sorted(p.name for p in env.glob("*.md"))
    assert names == ["2024-05-01-harbour-bridge-opens-to-traffic.md", "2024-05-07-library-extends-opening-hours.md"]
    answer = ask_show_verify(capsys, tmp_path, "How much did the harbour bridge cost?", "40 million euros")
    assert answer["passages"][0]["source"].endswith(names[0])
    [bridge] = [p for p in passages_of(env, tmp_path, "harbour bridge cost") if "40 million" in p.text]
    assert bridge.url == "https://news.example.com/bridge" and bridge.date == "2024-05-01"


def test_gzipped_jsonl_and_field_mapping(env, tmp_path, capsys):
    dump = tmp_path / "export.jsonl.gz"
    with gzip.open(dump, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"headline": "Ferry timetable changes", "article_body": "Ferries will leave every "
                                 "twenty minutes from Monday.", "when": "2024-06-03"}) + "\n")  # fmt: skip
    code, out, _ = cli(capsys, "add", str(dump), "--field", "text=article_body", "--field", "date=when")
    assert code == 0 and "1 added" in out
    assert [p.name for p in env.glob("*.md")] == ["2024-06-03-ferry-timetable-changes.md"]
    code, _, err = cli(capsys, "add", str(dump), "--field", "body=article_body")
    assert code == 2 and "'body' is not a field; use one of title, date, url, text, author" in err


def test_csv_dump_adds_good_rows_and_names_every_bad_one(env, tmp_path, capsys):
    dump = tmp_path / "news.csv"
    dump.write_bytes(
        b"title,date,url,text\n"
        b'"Market hall reopens","2024-02-10","https://news.example.com/market","The market hall reopened on '
        b'Saturday.\nIts renovation lasted two years."\n'
        b'"Empty row",2024-02-11,,\n'
        b'"Too many",2024-02-12,,text,extra\n'
        b'"Bad bytes",2024-02-13,,"caf\xe9"\n'
        b'"Pool closes","2024-02-14",,"The swimming pool closes for repairs in March."\n'
    )
    code, out, _ = cli(capsys, "add", str(dump))
    assert code == 0 and f"{dump}: 2 added, 3 skipped" in out
    assert "skipped row 4: no text field" in out
    assert "skipped row 5: 5 columns, the header has 4" in out
    assert "skipped row 6: not UTF-8" in out
    ask_show_verify(capsys, tmp_path, "How long did the market hall renovation last?", "two years")


def test_web_addresses_are_refused_and_nothing_is_written(env, tmp_path, capsys):
    page = tmp_path / "tram.html"
    page.write_text(NEWS_PAGE, encoding="utf-8")
    code, out, err = cli(capsys, "add", str(page), "https://news.example.com/tram")
    assert code == 2 and out == ""
    assert err.startswith("qabot: error: https://news.example.com/tram is a web address; qabot add never fetches")
    assert not env.exists()


def test_without_the_import_extra_a_page_says_what_to_install(env, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "trafilatura", None)  # find_spec then reports it missing
    page = tmp_path / "tram.html"
    page.write_text(NEWS_PAGE, encoding="utf-8")
    code, _, err = cli(capsys, "add", str(page))
    assert code == 2 and "saved web pages need trafilatura: pip install 'qabot[import]'" in err


def test_unknown_and_missing_sources_are_named(env, tmp_path, capsys):
    (tmp_path / "notes.docx").write_bytes(b"PK\x03\x04")
    code, out, _ = cli(capsys, "add", str(tmp_path / "notes.docx"), str(tmp_path / "gone.jsonl"))
    assert code == 0
    assert "notes.docx: 0 added, 1 skipped\n  skipped not a saved web page (.html, .htm) or news dump" in out
    assert "gone.jsonl: 0 added, 1 skipped\n  skipped no such file" in out
    with pytest.raises(ImportRefused):
        main(["add", "ftp://example.com/dump.jsonl", "--debug"])


# --- hostile inputs: each skipped with its reason, in bounded memory, and nothing else lost -------------


# Runs `qabot add`, then reports the process's peak RSS: VmHWM counts only this program's memory, where
# getrusage would also count what the parent (pytest) held when it forked.
MEASURED_ADD = (
    "import sys\nfrom qabot.cli import main\ncode = main(sys.argv[1:])\n"
    "status = open('/proc/self/status').read()\n"
    "print('peak kB', status.split('VmHWM:')[1].split()[0], file=sys.stderr)\nsys.exit(code)"
)


def run_add(tmp_path: Path, *sources: Path) -> tuple[str, int]:
    """qabot add in a child process; its output and its peak RSS in MB."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_")}
    command = [sys.executable, "-c", MEASURED_ADD, "add", *map(str, sources), "--to", str(tmp_path / "corpus")]
    done = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout, int(done.stderr.split("peak kB")[-1]) // 1024


def test_hostile_imports_are_skipped_with_reasons_in_bounded_memory(tmp_path):
    bomb = tmp_path / "bomb.jsonl.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as handle:
        handle.write(json.dumps({"title": "Before the bomb", "text": "A record read before the bomb."}).encode())
        handle.write(b"\n")
        for _ in range(200):  # 200 MB of spaces from a few hundred KB
            handle.write(b" " * (1 << 20))
        handle.write(b"\n")
    assert bomb.stat().st_size * 300 < 200 << 20
    huge = tmp_path / "huge.jsonl"
    with open(huge, "wb") as handle:
        handle.write(b'{"title": "Huge", "text": "')
        for _ in range(50):  # one 50 MB line
            handle.write(b"word " * (1 << 18))
        handle.write(b'"}\n')
        handle.write(json.dumps({"title": "After the huge one", "text": "A record after the huge line."}).encode())
    deep = tmp_path / "deep.html"
    deep.write_text("<html><body>" + "<div>" * 100_000 + "<p>Deep text.</p>" + "</div>" * 100_000 + "</body></html>")
    latin = tmp_path / "latin.html"
    latin.write_bytes(("<html><body><article><p>" + "Le café était fermé à cause d'une grève. " * 5
                       + "</p></article></body></html>").encode("latin-1"))  # fmt: skip
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"title": "Still imported", "text": "The last source is still imported."}) + "\n")
    out, peak_mb = run_add(tmp_path, bomb, huge, deep, latin, good)
    assert huge.stat().st_size > 50_000_000
    assert peak_mb < 500, f"{peak_mb} MB"
    assert f"{bomb}: 1 added, 1 skipped" in out and "(a compression bomb?); the rest of the file is skipped" in out
    assert f"{huge}: 1 added, 1 skipped" in out and "skipped line 1: record is over the 8,000,000-byte limit" in out
    assert f"{deep}: 0 added, 1 skipped" in out and "no article text found" in out
    assert f"{latin}: 0 added, 1 skipped" in out and "not UTF-8 (bad byte at offset" in out
    assert "declares no charset" in out
    assert f"{good}: 1 added" in out
    names = sorted(p.name for p in (tmp_path / "corpus").iterdir())
    assert names == ["after-the-huge-one.md", "before-the-bomb.md", "still-imported.md"]


def test_a_page_that_declares_its_charset_is_read_in_it(env, tmp_path, capsys):
    page = tmp_path / "latin.html"
    body = "Le café de la gare était fermé mardi à cause d'une grève des employés municipaux de la ville. " * 2
    page.write_bytes(f'<html><head><meta charset="iso-8859-1"><title>Grève</title></head><body><article><p>{body}'
                     "</p></article></body></html>".encode("latin-1"))  # fmt: skip
    code, out, _ = cli(capsys, "add", str(page))
    assert code == 0 and "1 added" in out
    [written] = env.glob("*.md")
    assert "Le café de la gare était fermé" in written.read_text(encoding="utf-8")


def test_file_names_fold_accents_and_keep_other_scripts(tmp_path):
    assert write_article(Article("Text.", "Café à Zürich: “news”!", "2024-01-01"), tmp_path)[0] == (
        "2024-01-01-cafe-a-zurich-news.md"
    )
    assert write_article(Article("Κείμενο.", "Νέα γέφυρα", None), tmp_path)[0] == "νεα-γεφυρα.md"
    assert write_article(Article("Text without a title, named from its words.", None), tmp_path)[0] == (
        "text-without-a-title-named-from-its-words.md"
    )
