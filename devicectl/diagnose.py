"""``devicectl diagnose``: one JSON bundle a maintainer can act on, with no secrets in it.

The bundle (``"schema": "devicectl-diagnose/1"``) holds: devicectl's and its key libraries'
versions, the OS and Python, whether Bluetooth is available (from a short scan) and why not, the
serial ports with their VID:PID, candidate models and permissions, recent device errors from the
session records, and the configuration file and ``DEVICECTL_*`` environment with secrets
redacted (:func:`devicectl.config.redact`).

Every section is gathered even when another fails: a broken records database or configuration
file is reported inside the bundle, since that is what a maintainer needs to see.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from devicectl.config import config_path, load_config, redact
from devicectl.errors import DevicectlError, RecordsError
from devicectl.inventory import (
    AccessCheck,
    ble_result_dict,
    list_serial_ports,
    port_dict,
    scan_ble,
)
from devicectl.records import Records, default_db_path
from devicectl.records.schema import iso_after
from drivers.models import ModelEntry, load_models

__all__ = [
    "BLE_CHECK_TIMEOUT_S",
    "LIBRARIES",
    "RECENT_SESSIONS",
    "SCHEMA",
    "build_bundle",
    "device_errors",
    "to_json",
    "write_bundle",
]

# Names the bundle's format, so tools reading bundles can tell versions apart.
SCHEMA = "devicectl-diagnose/1"
# Enough to learn whether Bluetooth works (no adapter fails at once) without a long wait.
BLE_CHECK_TIMEOUT_S = 2.0
# Device errors are read from this many of the newest sessions: recent enough to matter.
RECENT_SESSIONS = 20
# The distributions whose versions explain most device problems (serial, BLE, MQTT, TUI, dirs).
LIBRARIES = ("pyserial", "pyserial-asyncio-fast", "bleak", "aiomqtt", "textual", "platformdirs")
# Environment variables with this prefix configure devicectl, so the bundle shows them.
_ENV_PREFIX = "DEVICECTL_"


async def build_bundle(
    *,
    db: Path | None = None,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    comports: Callable[[], Iterable[Any]] | None = None,
    access: AccessCheck = os.access,
    scanner_backend: type[Any] | None = None,
    ble_timeout_s: float = BLE_CHECK_TIMEOUT_S,
    models: Sequence[ModelEntry] | None = None,
) -> dict[str, Any]:
    """The diagnose bundle, as JSON-ready data.

    Args:
        db: the session records (default: the user's data dir).
        config_file: the configuration (default: :func:`devicectl.config.config_path`).
        environ: the environment to report ``DEVICECTL_*`` variables from (default os.environ).
        comports, access: as :func:`devicectl.inventory.list_serial_ports` takes them.
        scanner_backend: a bleak scanner backend for the Bluetooth check (tests only).
        ble_timeout_s: how long the Bluetooth check listens.
        models: the model table (default: the shipped one).
    """
    table = list(load_models().values()) if models is None else list(models)
    ports = (
        list_serial_ports(access=access)
        if comports is None
        else list_serial_ports(comports, access=access)
    )
    bluetooth = await scan_ble(ble_timeout_s, scanner_backend)
    return {
        "schema": SCHEMA,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "devicectl": {"version": _version("devicectl")},
        "libraries": {name: _version(name) for name in LIBRARIES},
        "os": _os_section(),
        "python": _python_section(),
        "bluetooth": ble_result_dict(bluetooth, table),
        "serial_ports": [port_dict(p, table) for p in ports],
        "models": [m.key for m in table],
        "device_errors": device_errors(db if db is not None else default_db_path()),
        "config": _config_section(config_file if config_file is not None else config_path()),
        "environment": _environment(os.environ if environ is None else environ),
    }


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _os_section() -> dict[str, str]:
    return {
        "platform": platform.platform(),
        "system": platform.system(),
        "release": platform.release(),
        "version": platform.version(),
        "machine": platform.machine(),
    }


def _python_section() -> dict[str, str]:
    return {
        "version": sys.version,
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
    }


def device_errors(db: Path) -> dict[str, Any]:
    """Device failures, alarms and link events of the newest :data:`RECENT_SESSIONS` sessions.

    A missing or empty database is not an error (nothing was recorded yet); one that cannot be
    read is reported in ``"error"``.
    """
    section: dict[str, Any] = {"db": str(db), "present": False, "sessions_checked": 0}
    section |= {"errors": [], "error": None}
    if not db.is_file() or db.stat().st_size == 0:
        return section
    section["present"] = True
    try:
        with Records.open(db) as records:
            sessions = records.sessions()[:RECENT_SESSIONS]
            for s in sessions:
                simulated = any(d.simulated for d in s.devices)
                for event in records.events(s.id):
                    if _is_device_error(event):
                        section["errors"].append(_error_entry(s.id, s.started_at, simulated, event))
    except RecordsError as exc:
        section["error"] = str(exc)
        return section
    section["sessions_checked"] = len(sessions)
    return section


def _is_device_error(event: Mapping[str, Any]) -> bool:
    kind = str(event["kind"])
    alarm = kind.startswith("alert.") and event["severity"] == "alarm"
    return kind == "device_failure" or alarm or kind.startswith("link.")


def _error_entry(
    session_id: int, started_at: str, simulated: bool, event: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "time": iso_after(started_at, float(event["t_s"])),
        "t_s": event["t_s"],
        "kind": event["kind"],
        "severity": event["severity"],
        "message": event["message"],
        "simulated": simulated,  # a simulated device's failures are labelled as such
    }


def _config_section(path: Path) -> dict[str, Any]:
    section: dict[str, Any] = {"path": str(path), "present": path.is_file(), "error": None}
    try:
        section["values"] = redact(load_config(path))
    except DevicectlError as exc:
        section["values"] = {}
        section["error"] = str(exc)  # TOML errors give line and column, never the text
    return section


def _environment(environ: Mapping[str, str]) -> dict[str, Any]:
    return redact({k: v for k, v in sorted(environ.items()) if k.startswith(_ENV_PREFIX)})


def to_json(bundle: Mapping[str, Any]) -> str:
    """The bundle as pretty JSON (TOML dates and times written as ISO text)."""
    return json.dumps(bundle, indent=2, default=str) + "\n"


def write_bundle(bundle: Mapping[str, Any], path: Path) -> None:
    """Write the bundle to ``path`` atomically: a temporary file beside it, then a rename, so
    a reader never sees half a bundle. Raises DevicectlError with the OS's reason."""
    text = to_json(bundle)
    temporary: Path | None = None
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        temporary = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        reason = exc.strerror or str(exc)
        raise DevicectlError(f"cannot write the diagnose bundle to {path}: {reason}") from exc
