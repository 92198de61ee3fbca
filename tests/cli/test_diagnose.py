"""``devicectl diagnose``: every section, valid JSON, no secrets, device errors from the records,
and the bundle written atomically or a one-line error."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devicectl.diagnose import (
    LIBRARIES,
    RECENT_SESSIONS,
    SCHEMA,
    build_bundle,
    device_errors,
    to_json,
    write_bundle,
)
from devicectl.errors import DevicectlError
from devicectl.inventory_cli import add_parsers
from devicectl.records import DeviceRecord, Records
from drivers.models import load_models
from tests.cli.helpers import devicectl
from tests.cli.test_inventory import FakePort, allow_all

SECTIONS = {
    "schema", "created_at", "devicectl", "libraries", "os", "python", "bluetooth",
    "serial_ports", "models", "device_errors", "config", "environment",
}  # fmt: skip
CONFIG = """\
password = "hunter2"
url = "mqtts://u:hunter2@host:8883/clinic"
room = "treatment 2"

[mqtt]
API_Key = "hunter2"
brokers = ["mqtt://host-a", "mqtt://v:hunter2@host-b"]

[[devices]]
address = "mark10@serial:///dev/ttyUSB0"
credentials = { user = "u", pass = "hunter2" }
"""
T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
SIM_TBAR = DeviceRecord("tbar", "mark10@sim", "Mark-10 Series 5", simulated=True)


def add_session(records: Records, started_at: datetime, events: list[tuple[str, str]]) -> int:
    """A finished session with the given (kind, severity) events, one second apart."""
    writer = records.begin(
        plan_name="demo", plan_source="builtin:demo", plan_text="", devices=[SIM_TBAR],
        started_at=started_at,
    )  # fmt: skip
    for i, (kind, severity) in enumerate(events, start=1):
        writer.event(float(i), kind, f"{kind} happened", severity=severity)
    writer.finish("failed", ended_at=started_at + timedelta(minutes=1))
    return writer.session_id


async def bundle_for(tmp_path: Path, **kwargs: object) -> dict[str, object]:
    vid, pid = load_models()["mark10"].usb_vid_pid[0].split(":")
    port = FakePort("/dev/ttyUSB0", vid=int(vid, 16), pid=int(pid, 16))
    defaults: dict[str, object] = {
        "db": tmp_path / "none.db",
        "config_file": tmp_path / "config.toml",
        "environ": {},
        "comports": lambda: [port],
        "access": allow_all,
        "ble_timeout_s": 0.1,
    }
    return await build_bundle(**{**defaults, **kwargs})  # type: ignore[arg-type]


async def test_the_bundle_has_every_section_and_is_json(tmp_path: Path) -> None:
    bundle = await bundle_for(tmp_path)
    assert set(bundle) == SECTIONS
    assert bundle["schema"] == SCHEMA == "devicectl-diagnose/1"
    again = json.loads(to_json(bundle))
    assert again["schema"] == SCHEMA
    assert set(again["libraries"]) == set(LIBRARIES)
    assert all(isinstance(v, str) and v for v in again["libraries"].values())
    assert {"available", "reason", "hint"} <= set(again["bluetooth"])
    [port] = again["serial_ports"]
    assert port["vid_pid"] == load_models()["mark10"].usb_vid_pid[0].upper()
    assert [m["address"] for m in port["models"]] == ["mark10@serial:///dev/ttyUSB0"]
    assert {"readable", "writable", "group", "permission_hint"} <= set(port)
    assert set(again["models"]) == set(load_models())
    assert again["device_errors"] == {
        "db": str(tmp_path / "none.db"), "present": False, "sessions_checked": 0,
        "errors": [], "error": None,
    }  # fmt: skip
    assert not (tmp_path / "none.db").exists()  # diagnosing creates no database


async def test_no_secret_from_the_config_or_environment_reaches_the_bundle(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG)
    environ = {
        "DEVICECTL_MQTT_PASSWORD": "hunter2",
        "DEVICECTL_BROKER": "mqtts://u:hunter2@broker",
        "DEVICECTL_ROOM": "2",
        "HOME": "/root",
    }
    bundle = await bundle_for(tmp_path, environ=environ)
    text = to_json(bundle)
    assert "hunter2" not in text
    config = json.loads(text)["config"]
    assert config["present"]
    assert config["error"] is None
    values = config["values"]
    assert values["room"] == "treatment 2"
    assert values["password"] == "<redacted>"
    assert values["url"] == "mqtts://<redacted>@host:8883/clinic"
    assert values["mqtt"]["brokers"][0] == "mqtt://host-a"
    assert values["devices"][0]["address"] == "mark10@serial:///dev/ttyUSB0"
    assert bundle["environment"] == {
        "DEVICECTL_BROKER": "mqtts://<redacted>@broker",
        "DEVICECTL_MQTT_PASSWORD": "<redacted>",
        "DEVICECTL_ROOM": "2",
    }


async def test_a_malformed_config_is_reported_in_the_bundle(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('password = "hunter2\n')
    bundle = await bundle_for(tmp_path)
    config = json.loads(to_json(bundle))["config"]
    assert str(tmp_path / "config.toml") in config["error"]
    assert config["values"] == {}
    assert "hunter2" not in to_json(bundle)


def test_device_errors_come_from_the_recent_sessions(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    with Records.open(db) as records:
        # The oldest session's failure is beyond the RECENT_SESSIONS newest: not reported.
        add_session(records, T0, [("device_failure", "alarm")])
        for n in range(1, RECENT_SESSIONS):
            add_session(records, T0 + timedelta(hours=n), [("cue.release", "info")])
        newest = add_session(
            records,
            T0 + timedelta(days=2),
            [
                ("device_failure", "alarm"),
                ("alert.ceiling", "alarm"),
                ("alert.stale_data", "warning"),
                ("link.reconnected", "info"),
                ("phase", "info"),
            ],
        )
    section = device_errors(db)
    assert section["present"]
    assert section["error"] is None
    assert section["sessions_checked"] == RECENT_SESSIONS
    errors = section["errors"]
    assert [e["kind"] for e in errors] == ["device_failure", "alert.ceiling", "link.reconnected"]
    assert {e["session_id"] for e in errors} == {newest}
    assert errors[0]["time"] == (T0 + timedelta(days=2, seconds=1)).isoformat(
        timespec="milliseconds"
    )
    assert errors[0]["message"] == "device_failure happened"
    assert all(e["simulated"] for e in errors)  # a simulated device's errors say so


def test_an_empty_or_foreign_database_is_not_fatal(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    assert device_errors(empty)["present"] is False
    assert empty.stat().st_size == 0  # left as found
    foreign = tmp_path / "notes.db"
    foreign.write_text("not a database at all, just some text " * 50)
    section = device_errors(foreign)
    assert section["present"] is True
    assert section["errors"] == []
    assert str(foreign) in section["error"]


def test_write_bundle_is_atomic_and_pretty(tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    out.write_text("an older bundle")
    write_bundle({"schema": SCHEMA, "n": [1, 2]}, out)
    assert json.loads(out.read_text()) == {"schema": SCHEMA, "n": [1, 2]}
    assert out.read_text().startswith('{\n  "schema"')
    assert [p.name for p in tmp_path.iterdir()] == ["bundle.json"]  # no temporary file left


def test_an_unwritable_out_path_is_a_one_line_devicectl_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = blocker / "bundle.json"  # its "directory" is a file: unwritable even for root
    with pytest.raises(DevicectlError) as caught:
        write_bundle({"schema": SCHEMA}, target)
    message = str(caught.value)
    assert "\n" not in message
    assert str(target) in message
    assert "Not a directory" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_diagnose_command_writes_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVICECTL_CONFIG", str(tmp_path / "config.toml"))
    parser = argparse.ArgumentParser(prog="devicectl")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "bundle.json"
    args = parser.parse_args(["diagnose", "--out", str(out), "--db", str(tmp_path / "s.db")])
    assert args.handler(args) == 0
    bundle = json.loads(out.read_text())
    assert bundle["schema"] == SCHEMA
    assert bundle["config"]["path"] == str(tmp_path / "config.toml")
    assert bundle["environment"]["DEVICECTL_CONFIG"] == str(tmp_path / "config.toml")


# -- as a user runs it --------------------------------------------------------------------------


async def test_diagnose_in_a_subprocess_prints_json_without_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.toml").write_text(CONFIG)
    monkeypatch.setenv("DEVICECTL_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("DEVICECTL_MQTT_TOKEN", "hunter2")
    done = await devicectl("diagnose", "--db", str(tmp_path / "s.db"))
    assert done.code == 0, done.stderr
    assert "hunter2" not in done.stdout
    bundle = json.loads(done.stdout)
    assert set(bundle) == SECTIONS
    assert bundle["config"]["values"]["room"] == "treatment 2"


async def test_diagnose_to_an_unwritable_path_exits_2_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = await devicectl(
        "diagnose", "--out", str(blocker / "b.json"), "--db", str(tmp_path / "s.db")
    )
    assert done.code == 2
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("devicectl: error: cannot write the diagnose bundle")
    assert str(blocker / "b.json") in line
