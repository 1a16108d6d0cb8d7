"""Settings: read once at the edge from config/qabot.toml, QABOT_* variables and flags."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qabot.errors import ConfigError

DEFAULT_CONFIG = Path("config/qabot.toml")
DEFAULT_BOILERPLATE = (
    "top of page",
    "bottom of page",
    "ad for subscribing to .*",
    "legal warning:.*",
    "advertisement",
    "skip to (main )?content",
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every tunable of qabot; defaults match config/qabot.toml."""

    corpus: Path = Path("seeds")
    max_file_bytes: int = 10_000_000
    boilerplate_patterns: tuple[str, ...] = DEFAULT_BOILERPLATE
    cache_dir: Path | None = None
    k1: float = 1.2
    b: float = 0.75
    top_k: int = 3
    min_confidence: float | None = None  # None: the threshold fitted with the shipped model
    variant_weight: float = 0.7
    history_file: Path | None = None
    token_env: str = "DISCORD_TOKEN"
    command_prefix: str = "!"
    max_question_chars: int = 500
    allowed_channels: tuple[int, ...] = ()
    cooldown_rate: int = 5
    cooldown_seconds: float = 30.0
    reload_poll_seconds: float = 0.0
    owner_ids: tuple[int, ...] = ()
    cluster: str | None = None
    shards: int = 0
    source: str = field(default="built-in defaults", compare=False)

    @property
    def index_dir(self) -> Path:
        """The persisted index folder: cache_dir, or .qabot beside the corpus folder."""
        if self.cache_dir is not None:
            return self.cache_dir
        return self.corpus.resolve().parent / ".qabot"


# key -> (expected kind, description used in error messages)
_KINDS: dict[str, tuple[str, str]] = {
    "corpus": ("path", "a folder path"),
    "max_file_bytes": ("posint", "a positive integer"),
    "boilerplate_patterns": ("regexes", "a list of regular expressions"),
    "cache_dir": ("optpath", "a folder path (or empty)"),
    "k1": ("nonneg", "a non-negative number"),
    "b": ("unit", "a number from 0 to 1"),
    "top_k": ("posint", "a positive integer"),
    "min_confidence": ("optunit", "a number from 0 to 1 (or empty for the fitted threshold)"),
    "variant_weight": ("unit", "a number from 0 to 1"),
    "history_file": ("optpath", "a file path (or empty)"),
    "token_env": ("envname", "an environment variable name"),
    "command_prefix": ("text", "a non-empty string"),
    "max_question_chars": ("posint", "a positive integer"),
    "allowed_channels": ("ids", "a list of channel ids"),
    "cooldown_rate": ("posint", "a positive integer"),
    "cooldown_seconds": ("nonneg", "a non-negative number"),
    "reload_poll_seconds": ("nonneg", "a non-negative number"),
    "owner_ids": ("ids", "a list of user ids"),
    "cluster": ("optaddress", "a Dask scheduler address such as tcp://127.0.0.1:8786 (or empty)"),
    "shards": ("count", "a whole number from 0 (one unsharded index) up"),
}
_SECTIONS = ("corpus", "index", "answer", "repl", "discord", "cluster")


def load_settings(
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from a TOML file (default config/qabot.toml if present), then QABOT_* env, then overrides.

    Raises ConfigError naming the key, where it came from and the expected type.
    """
    env = os.environ if env is None else env
    explicit = config_path is not None or "QABOT_CONFIG" in env
    path = Path(config_path or env.get("QABOT_CONFIG") or DEFAULT_CONFIG).expanduser()
    values: dict[str, Any] = {}
    source = "built-in defaults"
    if path.is_file():
        values.update(_read_toml(path))
        source = str(path)
    elif explicit:
        raise ConfigError(f"config file {path} does not exist; pass an existing file to --config")
    for key in _KINDS:
        raw = env.get(f"QABOT_{key.upper()}")
        if raw is not None:
            values[key] = _coerce(key, _parse_env(key, raw), f"environment variable QABOT_{key.upper()}")
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = _coerce(key, value, f"option --{key.replace('_', '-')}")
    return Settings(**values, source=source)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for section, table in data.items():
        if section not in _SECTIONS or not isinstance(table, dict):
            raise ConfigError(
                f"unknown section [{section}] in {path}; expected one of: {', '.join(_SECTIONS)}"
            )
        for key, value in table.items():
            if key not in _KINDS:
                raise ConfigError(f"unknown key '{key}' in [{section}] of {path}")
            values[key] = _coerce(key, value, f"'{key}' in {path}")
    return values


def _parse_env(key: str, raw: str) -> Any:
    kind = _KINDS[key][0]
    if kind in ("regexes", "ids"):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _coerce(key: str, value: Any, where: str) -> Any:
    if key not in _KINDS:
        raise ConfigError(f"unknown setting '{key}' ({where})")
    kind, expected = _KINDS[key]
    bad = ConfigError(f"{where} must be {expected}, got {value!r}")
    if kind in ("path", "optpath"):
        if isinstance(value, Path) or (value is None and kind == "optpath"):
            return value
        if not isinstance(value, str) or "\x00" in value:
            raise bad
        if not value.strip():
            if kind == "path":
                raise bad
            return None
        try:
            return Path(value).expanduser()
        except RuntimeError:  # "~name/..." where no user has that name
            raise ConfigError(f"{where}: {value!r} starts with the home folder of a user that does not exist") from None
    if kind == "optaddress":
        if value is None:
            return None
        if not isinstance(value, str) or any(ch.isspace() or not ch.isprintable() for ch in value.strip()):
            raise bad
        return value.strip() or None
    if kind == "optunit" and (value is None or (isinstance(value, str) and not value.strip())):
        return None
    if kind in ("posint", "nonneg", "unit", "optunit", "count"):
        number = _number(value, integer=kind in ("posint", "count"))
        if number is None:
            raise bad
        if (kind == "posint" and number < 1) or number < 0 or (kind in ("unit", "optunit") and number > 1):
            raise bad
        return number
    if kind == "regexes":
        if not isinstance(value, list | tuple) or not all(isinstance(p, str) for p in value):
            raise bad
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"{where}: pattern {pattern!r} is not a valid regular expression ({exc})") from None
        return tuple(value)
    if kind == "ids":
        if not isinstance(value, list | tuple):
            raise bad
        ids = [_number(v, integer=True) for v in value]
        if any(i is None or i < 0 for i in ids):
            raise bad
        return tuple(ids)
    if kind == "envname":
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise bad
        return value
    if not isinstance(value, str) or not value.strip():
        raise bad
    return value


def _number(value: Any, *, integer: bool) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            return None
    if integer:
        return value if isinstance(value, int) else None
    return float(value) if isinstance(value, int | float) else None


def replace(settings: Settings, **changes: Any) -> Settings:
    """A copy of settings with some fields changed (validated like overrides)."""
    checked = {key: _coerce(key, value, f"setting '{key}'") for key, value in changes.items()}
    return dataclasses.replace(settings, **checked)
