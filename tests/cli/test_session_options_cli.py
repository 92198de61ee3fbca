"""``devicectl run`` options that reach the device: reconnection, calibration, capture/replay."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime
from pathlib import Path

from devicectl.records import Records
from drivers.calibration import CalibrationStore, two_point
from tests.cli.helpers import FAST_PLAN, devicectl, spawn


def _plan(tmp_path: Path) -> Path:
    plan_file = tmp_path / "fast.toml"
    plan_file.write_text(FAST_PLAN)
    return plan_file


def _events(db: Path) -> list[str]:
    store = Records.open(db)
    try:
        [session] = store.sessions()
        return [e["kind"] for e in store.events(session.id)]
    finally:
        store.close()


async def test_an_unplugged_gauge_that_comes_back_resumes_the_session(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    # The simulated gauge is pulled out 3 s into the session (mid-way through the first hold)
    # and comes back on the same path half a second later.
    address = "mark10@sim?disconnect_after_s=3&replug_after_s=0.5"
    done = await devicectl(
        "run", str(_plan(tmp_path)), "--tbar", address, "--db", str(db), "--json"
    )
    assert done.code == 0, done.stderr
    lines = done.json_lines()
    assert lines[-1]["status"] == "completed"
    assert lines[-1]["dose"]["total"]["holds_done"] == 3
    kinds = _events(db)
    assert "link.reconnecting" in kinds
    assert kinds.index("link.restored") > kinds.index("link.reconnecting")
    assert "link.lost" not in kinds


async def test_a_gauge_that_stays_away_ends_the_session_as_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    address = "mark10@sim?disconnect_after_s=3"  # never comes back
    done = await devicectl(
        "run", str(_plan(tmp_path)), "--tbar", address, "--db", str(db), "--reconnect-for", "1.5"
    )
    assert done.code == 1
    assert "gave up reconnecting after 1.5 s" in done.stderr
    assert "Traceback" not in done.stderr
    assert "reconnecting" in done.stdout
    store = Records.open(db)
    try:
        [session] = store.sessions()
        assert session.status == "interrupted"
    finally:
        store.close()
    assert "link.lost" in _events(db)


async def test_reconnect_for_must_be_a_sensible_number_of_seconds(tmp_path: Path) -> None:
    for bad in ("-1", "soon", "3600"):
        done = await devicectl("run", "demo", "--tbar", "mark10@sim", "--reconnect-for", bad)
        assert done.code == 2
        assert "--reconnect-for" in done.stderr


async def test_a_stored_calibration_is_applied_and_recorded(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    calibrations = tmp_path / "calibrations.json"
    # The simulated Mark-10 identifies itself as model M5-100, serial SIM-0001.
    calibration = two_point(
        [0.0] * 20,
        [10.0] * 20,
        11.0,  # the gauge read 10 N under 11 N: it reads low, scale 1.1
        device_id="Mark-10 M5-100#SIM-0001",
        model="Mark-10 M5-100",
        now=datetime(2026, 11, 1, tzinfo=UTC),
    )
    CalibrationStore(calibrations).put(calibration)
    done = await devicectl(
        "run", str(_plan(tmp_path)), "--tbar", "mark10@sim", "--db", str(db),
        "--calibrations", str(calibrations), "--json",
    )  # fmt: skip
    assert done.code == 0, done.stderr
    assert any(f"calibration {calibration.id}" in m.get("text", "") for m in done.json_lines())
    # The simulated therapist presses to about 30 N (mid-band); calibrated, the peak is 10 % up.
    peak = done.json_lines()[-1]["dose"]["total"]["peak_n"]
    assert peak > 32.0
    history = await devicectl("history", "--db", str(db), "--json")
    [listed] = json.loads(history.stdout)
    [device] = listed["devices"]
    assert device["calibration"]["id"] == calibration.id
    assert device["calibration"]["scale"] == calibration.scale


async def test_a_corrupt_calibrations_file_is_bad_input(tmp_path: Path) -> None:
    calibrations = tmp_path / "calibrations.json"
    calibrations.write_text("{not json")
    done = await devicectl(
        "run", "demo", "--tbar", "mark10@sim", "--calibrations", str(calibrations),
        "--db", str(tmp_path / "s.db"),
    )  # fmt: skip
    assert done.code == 2
    assert str(calibrations) in done.stderr
    assert "Traceback" not in done.stderr


# One short hold: this test runs two sessions back to back.
ONE_HOLD_PLAN = """
name = "one hold"
units = "N"
[[steps]]
type = "hold"
site = "calf L"
target = [20, 40]
hold_s = 1.5
rest_s = 1
repeat = 1
ceiling = 80
"""


async def test_a_captured_conversation_replays_as_a_simulator(tmp_path: Path) -> None:
    plan_file = tmp_path / "one.toml"
    plan_file.write_text(ONE_HOLD_PLAN)
    plan = str(plan_file)
    capture = tmp_path / "gauge.jsonl"
    first = await devicectl(
        "run", plan, "--tbar", "mark10@sim", "--capture", str(capture),
        "--db", str(tmp_path / "a.db"), "--json",
    )  # fmt: skip
    assert first.code == 0, first.stderr
    lines = capture.read_text().splitlines()
    assert json.loads(lines[0])["capture"] == "devicectl/1"
    directions = {json.loads(line).get("dir") for line in lines[1:]}
    assert {"host>dev", "dev>host"} <= directions

    sim = await spawn("sim", "replay", str(capture), "--tcp", "0")
    try:
        assert sim.stdout is not None
        banner = (await asyncio.wait_for(sim.stdout.readline(), 20)).decode()
        assert banner.startswith("SIMULATED replay of")
        where = banner.split(" on ")[-1].strip()
        again = await devicectl(
            "run", plan, "--tbar", f"mark10@{where}", "--db", str(tmp_path / "b.db"), "--json"
        )
    finally:
        sim.send_signal(signal.SIGINT)
        await asyncio.wait_for(sim.wait(), 10)
    assert again.code == 0, again.stderr
    assert again.json_lines()[-1]["status"] == "completed"
    assert again.json_lines()[-1]["dose"]["total"]["holds_done"] == 1


async def test_a_capture_that_cannot_be_written_is_bad_input(tmp_path: Path) -> None:
    done = await devicectl(
        "run", "demo", "--tbar", "mark10@sim", "--capture", str(tmp_path / "no" / "dir.jsonl"),
        "--db", str(tmp_path / "s.db"),
    )  # fmt: skip
    assert done.code == 2
    assert "--capture" in done.stderr


async def test_replaying_a_malformed_capture_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"capture": "devicectl/1"}\nnot json\n')
    done = await devicectl("sim", "replay", str(bad))
    assert done.code == 2
    assert "line" in done.stderr
