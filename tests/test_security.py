"""Security: no eval, pickle or shell in qabot; a crafted cache cannot run code; bad paths in config are refused."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qabot.config import load_settings
from qabot.errors import ConfigError
from qabot.frontend import answerer_for
from qabot.store import corpus_cache_dir
from tests.conftest import PROJECT, settings_for

SOURCES = sorted((PROJECT / "qabot").glob("*.py")) + sorted(PROJECT.glob("bot.py"))
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "execfile"}
FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "cloudpickle", "joblib"}
FORBIDDEN_ATTRIBUTES = {("os", "system"), ("os", "popen"), ("os", "execv"), ("os", "execvp"), ("os", "spawnl")}


def call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        base = func.value.id if isinstance(func.value, ast.Name) else "?"
        return f"{base}.{func.attr}"
    return "?"


def parsed_sources() -> list[tuple[Path, ast.Module]]:
    assert len(SOURCES) >= 10, "the scan must see qabot's modules"
    return [(path, ast.parse(path.read_text(encoding="utf-8"), str(path))) for path in SOURCES]


def test_no_eval_exec_pickle_or_shell_in_qabot() -> None:
    findings = []
    for path, tree in parsed_sources():
        for node in ast.walk(tree):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call):
                name = call_name(node)
                if name in FORBIDDEN_CALLS or tuple(name.split(".", 1)) in FORBIDDEN_ATTRIBUTES:
                    findings.append(f"{where} calls {name}")
                for keyword in node.keywords:
                    value = keyword.value
                    if keyword.arg == "shell" and not (isinstance(value, ast.Constant) and not value.value):
                        findings.append(f"{where} passes shell=...")
                    if keyword.arg == "allow_pickle" and not (
                        isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                    ):
                        findings.append(f"{where} passes allow_pickle other than False")
            elif isinstance(node, ast.Import | ast.ImportFrom):
                modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for module in modules:
                    if module.split(".")[0] in FORBIDDEN_MODULES:
                        findings.append(f"{where} imports {module}")
    assert findings == []


def test_every_np_load_refuses_pickles() -> None:
    loads = []
    for path, tree in parsed_sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and call_name(node) in {"np.load", "numpy.load"}:
                flags = {k.arg: k.value for k in node.keywords}
                allow = flags.get("allow_pickle")
                loads.append((path.name, node.lineno, isinstance(allow, ast.Constant) and allow.value is False))
    assert loads, "qabot loads its index with np.load; the scan found none"
    assert all(ok for *_, ok in loads), loads


def test_a_crafted_cache_with_a_pickle_cannot_run_code(corpus_copy, tmp_path) -> None:
    """An object array whose unpickling would create a file, with its record made valid: refused, rebuilt."""
    settings = settings_for(corpus_copy, tmp_path / "cache")
    reference = answerer_for(settings).ask("Who is Louis Bono?")
    folder = corpus_cache_dir(settings.index_dir, corpus_copy)
    generation = folder / (folder / "CURRENT").read_text().split()[0]
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    target = generation / "df.npy"
    np.save(target, np.array([Payload()], dtype=object), allow_pickle=True)
    meta_path = generation / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    status = target.stat()
    meta["arrays"]["df"] = [f"crc32:{zlib.crc32(target.read_bytes()):08x}", status.st_size, status.st_ctime_ns]
    meta_bytes = json.dumps(meta).encode("utf-8")
    meta_path.write_bytes(meta_bytes)
    (folder / "CURRENT").write_text(f"{generation.name} {hashlib.sha256(meta_bytes).hexdigest()}\n")

    warnings: list[str] = []
    answer = answerer_for(settings, warn=warnings.append).ask("Who is Louis Bono?")
    assert not marker.exists(), "loading the cache unpickled an object"
    assert answer == reference
    assert len(warnings) == 1 and "rebuilding" in warnings[0] and "arrays unreadable" in warnings[0], warnings


@settings(max_examples=100, deadline=None, database=None)
@given(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="/\x00"), min_size=1, max_size=80))
def test_the_cache_folder_of_any_corpus_name_stays_inside_the_cache(name: str) -> None:
    cache = Path("/var/cache/qabot-test")
    folder = corpus_cache_dir(cache, Path("/data") / name)
    assert folder.parent == cache
    assert folder.name not in ("", ".", "..") and "/" not in folder.name


# --- config values that point somewhere unexpected -------------------------------------------------


def run_qabot(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_")}
    clean.update(env or {})
    return subprocess.run([sys.executable, "-m", "qabot.cli", *args], cwd=cwd, env=clean,
                          capture_output=True, text=True, timeout=60)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("qabot: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), lines[0]


@pytest.mark.parametrize("key", ["corpus", "cache_dir", "history_file"])
def test_a_path_with_a_nul_byte_is_a_config_error(tmp_path, key) -> None:
    section = {"corpus": "corpus", "cache_dir": "index", "history_file": "repl"}[key]
    config = tmp_path / "qabot.toml"
    config.write_text(f'[{section}]\n{key} = "seeds\\u0000/../../etc"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=key):
        load_settings(config, env={})
    assert_one_line_error(run_qabot(["index", "--config", str(config)], PROJECT), key, str(config))


def test_cache_dir_that_is_a_file_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_text("Title\n\nThe harbour froze early this year. Prices rose.\n", "utf-8")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("I am a file\n", encoding="utf-8")
    result = run_qabot(["index"], tmp_path, {"QABOT_CORPUS": str(tmp_path / "corpus"), "QABOT_CACHE_DIR": str(blocker)})
    assert_one_line_error(result, str(blocker))
    assert blocker.read_text(encoding="utf-8") == "I am a file\n"


@pytest.mark.parametrize("kind", ["missing", "file", "empty"])
def test_a_corpus_that_is_not_a_folder_is_a_clear_error(tmp_path, kind) -> None:
    corpus = {"missing": str(tmp_path / "nowhere"), "file": str(tmp_path / "file.txt"), "empty": " "}[kind]
    (tmp_path / "file.txt").write_text("Just a file. With sentences.\n", encoding="utf-8")
    result = run_qabot(["index"], tmp_path, {"QABOT_CORPUS": corpus, "QABOT_CACHE_DIR": str(tmp_path / "cache")})
    assert_one_line_error(result, "corpus")
    assert not (tmp_path / "cache").exists()


def test_the_default_cache_never_lands_inside_the_corpus(tmp_path) -> None:
    corpus = tmp_path / "articles"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Title\n\nThe harbour froze early this year. Prices rose. Talks failed.\n", "utf-8")
    result = run_qabot(["index", "--corpus", str(corpus)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in corpus.iterdir()) == ["a.txt"]
    assert (tmp_path / ".qabot").is_dir()
