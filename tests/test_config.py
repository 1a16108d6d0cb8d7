"""Settings: the shipped file, env overrides, and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from qabot.config import Settings, load_settings
from qabot.errors import ConfigError
from tests.conftest import PROJECT

SHIPPED = PROJECT / "config" / "qabot.toml"


def test_shipped_config_matches_the_dataclass_defaults():
    loaded = load_settings(SHIPPED, env={})
    assert loaded == Settings()
    assert loaded.source == str(SHIPPED)


def test_environment_overrides_file_and_flags_override_environment(tmp_path):
    env = {"QABOT_TOP_K": "5", "QABOT_CORPUS": str(tmp_path), "QABOT_ALLOWED_CHANNELS": "1, 2"}
    settings = load_settings(SHIPPED, env=env)
    assert (settings.top_k, settings.corpus, settings.allowed_channels) == (5, tmp_path, (1, 2))
    flagged = load_settings(SHIPPED, env=env, overrides={"corpus": "elsewhere"})
    assert flagged.corpus == Path("elsewhere")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[answer]\ntop_k = 'three'\n", "'top_k' in .* must be a positive integer"),
        ("[answer]\ntop_kk = 3\n", "unknown key 'top_kk' in \\[answer\\]"),
        ("[nonsense]\nx = 1\n", "unknown section \\[nonsense\\]"),
        ("[index]\nb = 1.5\n", "'b' in .* must be a number from 0 to 1"),
        ("[corpus]\nboilerplate_patterns = ['(unclosed']\n", "not a valid regular expression"),
        ("[discord]\ntoken_env = 'has space'\n", "environment variable name"),
        ("[answer\n", "not valid TOML"),
    ],
)
def test_bad_config_names_key_file_and_expected_type(tmp_path, toml, message):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message) as error:
        load_settings(path, env={})
    if "unknown section" not in message and "TOML" not in message:
        assert str(path) in str(error.value)


def test_bad_environment_value_names_the_variable():
    with pytest.raises(ConfigError, match="QABOT_TOP_K must be a positive integer"):
        load_settings(SHIPPED, env={"QABOT_TOP_K": "0"})


def test_explicit_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", env={})


def test_index_dir_defaults_beside_the_corpus(tmp_path):
    settings = Settings(corpus=tmp_path / "news")
    assert settings.index_dir == tmp_path / ".qabot"
    assert Settings(corpus=tmp_path, cache_dir=tmp_path / "c").index_dir == tmp_path / "c"
