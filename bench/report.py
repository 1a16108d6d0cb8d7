"""What the benchmarks write: a description of the machine, and their own section of bench/RESULTS.md."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
LIBRARIES = ("qabot", "numpy", "scipy", "PyStemmer", "nltk", "rank-bm25", "bm25s", "tantivy")
HEADER = "# qabot benchmark results\n\nWritten by the scripts in bench/ (see bench/README.md); do not edit by hand.\n"


def machine_description() -> list[str]:
    """Markdown bullet lines: CPU, cores, memory, OS, Python and library versions, commit, date."""
    cpu = _first_match(Path("/proc/cpuinfo"), r"model name\s*:\s*(.+)") or platform.processor() or "unknown"
    mem_kb = _first_match(Path("/proc/meminfo"), r"MemTotal:\s*(\d+) kB")
    memory = f"{int(mem_kb) / 2**20:.1f} GiB" if mem_kb else "unknown"
    versions = ", ".join(f"{name} {_version(name)}" for name in LIBRARIES)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- CPU: {cpu}; {os.cpu_count()} logical cores (nproc); load average at start {load}",
        f"- Memory: {memory}; OS: {platform.platform()}",
        f"- Python {platform.python_version()} ({sys.implementation.name}); {versions}",
        f"- qabot commit: {_commit()}; qabot/ source digest {qabot_digest()}",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}",
    ]


def qabot_digest() -> str:
    """Short sha256 of qabot's source files: names the exact code measured (the lead edits it often)."""
    digest = hashlib.sha256()
    for path in sorted((RESULTS.parent.parent / "qabot").rglob("*")):
        if path.is_file() and path.suffix in (".py", ".txt"):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def write_section(name: str, markdown: str, path: Path = RESULTS) -> None:
    """Replace this benchmark's section of RESULTS.md (between its markers), keeping the others."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{markdown.rstrip()}\n{end}\n"
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    path.write_text(text, encoding="utf-8")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*row) for row in [header, *rows])


def _first_match(path: Path, pattern: str) -> str | None:
    try:
        match = re.search(pattern, path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return match.group(1).strip() if match else None


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=RESULTS.parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"
