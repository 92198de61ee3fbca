"""The user's configuration file, and a redacted view of it for sharing (``devicectl diagnose``).

The file is TOML at ``<user config dir>/devicectl/config.toml`` (``platformdirs``), or wherever
the ``DEVICECTL_CONFIG`` environment variable points. A missing file is an empty configuration;
a malformed one is an error naming the file and the TOML problem.

:func:`redact` hides secrets before anything leaves the machine: values under keys that name a
secret (password, token, key, ...), at any depth and inside lists, and the ``user:password@`` of
URLs wherever a string holds one.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs

from devicectl.errors import DevicectlError

__all__ = ["CONFIG_ENV", "REDACTED", "config_path", "load_config", "redact", "redact_value"]

# Overrides the config file's location (tests, several installations side by side).
CONFIG_ENV = "DEVICECTL_CONFIG"
# What a hidden value reads as: plainly redacted, not an empty or plausible-looking value.
REDACTED = "<redacted>"

# A key naming any of these holds a secret (api_key, mqtt_password, auth_token, credentials...).
_SECRET_KEY = re.compile(r"password|passwd|secret|token|key|credential", re.IGNORECASE)
# The userinfo part "user:password@" right after a URL's "scheme://"; a password may hold ':'.
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s:]*:[^/@\s]*@")


def config_path() -> Path:
    """Where the configuration is read from: ``$DEVICECTL_CONFIG``, else the user config dir."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override)
    return platformdirs.user_config_path("devicectl") / "config.toml"


def load_config(path: Path) -> dict[str, Any]:
    """The configuration in ``path``; {} when there is no such file.

    Raises DevicectlError (naming the file) for a file that cannot be read or is not valid TOML.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise DevicectlError(f"cannot read the configuration {path}: {exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DevicectlError(f"the configuration {path} is not valid TOML: {exc}") from exc


def redact(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``mapping`` with every secret replaced by ``"<redacted>"``.

    A key containing password, passwd, secret, token, key or credential (any case) has its whole
    value hidden, whatever it is (a nested table too). Other values are walked: tables and lists
    at any depth, and strings have a URL's ``user:password@`` hidden.
    """
    return {
        key: REDACTED if _SECRET_KEY.search(str(key)) else redact_value(value)
        for key, value in mapping.items()
    }


def redact_value(value: Any) -> Any:
    """``value`` with the secrets inside it hidden (see :func:`redact`)."""
    if isinstance(value, Mapping):
        return redact(value)
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    if isinstance(value, str):
        return _URL_USERINFO.sub(f"{REDACTED}@", value)
    return value
