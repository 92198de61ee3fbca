"""The configuration file: where it is, reading it, and redacting secrets for sharing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import platformdirs
import pytest

from devicectl.config import REDACTED, config_path, load_config, redact
from devicectl.errors import DevicectlError


@pytest.mark.parametrize(
    "key",
    ["password", "MQTT_PASSWORD", "passwd", "client_secret", "Token", "api_key", "KeyFile",
     "credentials", "user_credential"],
)  # fmt: skip
def test_keys_naming_a_secret_are_redacted_whatever_their_value(key: str) -> None:
    for value in ("hunter2", 1234, ["a", "b"], {"user": "u", "pass": "p"}, None):
        assert redact({key: value}) == {key: REDACTED}


def test_other_values_are_kept_as_they_are() -> None:
    config: dict[str, Any] = {"room": "2", "rate_hz": 50, "ratio": 0.5, "debug": True, "none": None}
    assert redact(config) == config


def test_nested_tables_and_lists_are_walked() -> None:
    config = {
        "mqtt": {"broker": {"host": "h", "password": "hunter2"}, "topics": ["a", "b"]},
        "devices": [{"address": "mark10@sim", "token": "hunter2"}, ["x", {"secret": "s"}]],
    }
    assert redact(config) == {
        "mqtt": {"broker": {"host": "h", "password": REDACTED}, "topics": ["a", "b"]},
        "devices": [{"address": "mark10@sim", "token": REDACTED}, ["x", {"secret": REDACTED}]],
    }
    assert config["mqtt"]["broker"]["password"] == "hunter2"  # type: ignore[index]  # a copy


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mqtts://u:hunter2@host", f"mqtts://{REDACTED}@host"),
        ("mqtt://u:p:w@host:1883/room", f"mqtt://{REDACTED}@host:1883/room"),
        ("use mqtt://u:x@a and mqtt://v:y@b", f"use mqtt://{REDACTED}@a and mqtt://{REDACTED}@b"),
        ("mqtt://:pw@host", f"mqtt://{REDACTED}@host"),
        # Nothing to hide: no password, or no userinfo at all.
        ("mqtt://user@host", "mqtt://user@host"),
        ("mqtt://host:1883/topic", "mqtt://host:1883/topic"),
        ("mark10@serial:///dev/ttyUSB0", "mark10@serial:///dev/ttyUSB0"),
        ("someone@example.org", "someone@example.org"),
    ],
)
def test_a_urls_password_is_redacted_wherever_it_appears(text: str, expected: str) -> None:
    assert redact({"url": text, "list": [text], "t": {"u": text}}) == {
        "url": expected,
        "list": [expected],
        "t": {"u": expected},
    }


def test_config_path_default_and_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DEVICECTL_CONFIG", raising=False)
    assert config_path() == platformdirs.user_config_path("devicectl") / "config.toml"
    monkeypatch.setenv("DEVICECTL_CONFIG", str(tmp_path / "elsewhere.toml"))
    assert config_path() == tmp_path / "elsewhere.toml"


def test_load_config_reads_toml_and_a_missing_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    assert load_config(path) == {}
    path.write_text('[mqtt]\nhost = "broker"\nport = 8883\n')
    assert load_config(path) == {"mqtt": {"host": "broker", "port": 8883}}


def test_a_malformed_file_names_the_file_and_the_toml_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[mqtt]\nhost = "broker\n')
    with pytest.raises(DevicectlError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert "line 2" in message
    assert "\n" not in message


def test_an_unreadable_config_is_a_devicectl_error(tmp_path: Path) -> None:
    with pytest.raises(DevicectlError, match="cannot read the configuration"):
        load_config(tmp_path)  # a directory
    binary = tmp_path / "config.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DevicectlError, match=str(binary)):
        load_config(binary)
