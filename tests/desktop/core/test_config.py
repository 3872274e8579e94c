"""Client settings: a JSON file (owner-only) overridden by the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desktop.core.config import (
    DEFAULT_SERVER_URL,
    ClientSettings,
    ConfigError,
    default_config_path,
    load_settings,
    save_settings,
)


def test_defaults_without_a_file(tmp_path: Path):
    settings = load_settings(tmp_path / "missing.json", environ={})
    assert settings.server_url == DEFAULT_SERVER_URL
    assert settings.token is None and settings.parallel_parts == 4


def test_the_environment_overrides_the_file(tmp_path: Path):
    path = tmp_path / "client.json"
    path.write_text(json.dumps({"server_url": "http://file:1", "token": "t1", "parallel_parts": 8}))
    env = {"SUBTONE_URL": "https://env.example/", "SUBTONE_TOKEN": "t2"}

    settings = load_settings(path, environ=env)

    assert settings.server_url == "https://env.example"
    assert settings.token == "t2" and settings.parallel_parts == 8
    assert "t2" not in repr(settings)


def test_the_config_path_can_come_from_the_environment(tmp_path: Path):
    assert default_config_path({"SUBTONE_CLIENT_CONFIG": str(tmp_path / "c.json")}) == (
        tmp_path / "c.json"
    )
    assert default_config_path({}).name == "client.json"


@pytest.mark.parametrize(
    "content",
    ["{not json", "[1]", '{"parallel_parts": 0}', '{"server_url": "ftp://x"}', '{"x": 1}'],
)
def test_a_bad_file_is_a_clear_error(tmp_path: Path, content: str):
    path = tmp_path / "client.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert caught.value.code == "invalid_config"
    assert str(path) in caught.value.message


def test_saved_settings_are_owner_only_and_load_back(tmp_path: Path):
    path = tmp_path / "conf" / "client.json"
    settings = ClientSettings(server_url="http://h:1", token="secret", parallel_parts=2)

    save_settings(settings, path)

    assert (path.stat().st_mode & 0o777) == 0o600
    assert load_settings(path, environ={}) == settings
    assert list(path.parent.iterdir()) == [path]


def test_the_part_size_is_a_setting_within_s3s_limits(tmp_path: Path):
    path = tmp_path / "client.json"
    assert load_settings(path, environ={}).part_size_bytes is None
    path.write_text(json.dumps({"part_size_bytes": 8 * 1024 * 1024}))
    assert load_settings(path, environ={}).part_size_bytes == 8 * 1024 * 1024
    for bad in (1024, 6 * 1024**3):
        path.write_text(json.dumps({"part_size_bytes": bad}))
        with pytest.raises(ConfigError, match="part_size_bytes"):
            load_settings(path, environ={})
