"""Whole sessions through the command line, in subprocesses, against the Mark-10 simulator."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from devicectl.opener import plan_segments
from devicectl.planfile import load_plan
from devicectl.records import Records
from protocols.mark10 import Mark10Unit
from simulators.force_model import TherapistModel
from simulators.mark10 import Mark10Device
from simulators.serve import PtyServer, TcpServer
from tests.cli.helpers import FAST_PLAN, devicectl, read_json_until, spawn


def _is_phase(phase: str) -> object:
    return lambda r: r.get("type") == "PhaseChange" and r.get("phase") == phase


async def test_whole_session_over_a_real_pty_is_completed_and_recorded(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    plan_file = tmp_path / "fast.toml"
    plan_file.write_text(FAST_PLAN)
    plan = load_plan(plan_file)
    therapist = TherapistModel(plan_segments(plan))
    server = PtyServer(lambda: Mark10Device(therapist, clock=time.monotonic))
    path = await server.start()
    try:
        done = await devicectl(
            "run", str(plan_file), "--tbar", f"mark10@serial://{path}", "--db", str(db), "--json"
        )
    finally:
        await server.stop()
    assert done.code == 0, done.stderr
    records = done.json_lines()
    summary = records[-1]
    assert summary["type"] == "summary"
    assert summary["status"] == "completed"
    planned_holds = sum(s.repeat for s in plan.hold_steps)
    assert summary["dose"]["total"]["holds_done"] == planned_holds
    phases = [r["phase"] for r in records if r["type"] == "PhaseChange"]
    assert phases.count("HOLD") >= planned_holds
    assert phases.count("REST") == planned_holds - 1  # no rest after the session's last hold
    cues = [r["kind"] for r in records if r["type"] == "Cue"]
    assert cues.count("release") == planned_holds

    store = Records.open(db)
    try:
        [session] = store.sessions()
        assert session.status == "completed"
        assert session.holds == planned_holds
        assert session.samples > 50  # 50 Hz over tens of seconds
        holds = store.holds(session.id)
        assert all(h["completed"] for h in holds)
        assert all(h["in_band_s"] >= h["planned_in_band_s"] for h in holds)
    finally:
        store.close()

    history = await devicectl("history", "--db", str(db), "--json", limit_s=30)
    [listed] = json.loads(history.stdout)
    assert listed["status"] == "completed"
    exported = await devicectl("export", str(session.id), "--format", "json", "--db", str(db))
    doc = json.loads(exported.stdout)
    assert len(doc["samples"]) == session.samples
    assert {"in_band_s", "integral_ns", "peak_n", "mean_n"} <= set(doc["holds"][0])
    out_dir = tmp_path / "csv"
    out_dir.mkdir()
    csvs = await devicectl(
        "export", str(session.id), "--format", "csv", "--out", str(out_dir), "--db", str(db)
    )
    assert csvs.code == 0
    assert sorted(p.name for p in out_dir.iterdir()) == [
        f"session-{session.id}-devices.csv",
        f"session-{session.id}-events.csv",
        f"session-{session.id}-holds.csv",
        f"session-{session.id}-samples.csv",
    ]


async def test_demo_command_runs_on_the_builtin_simulator_with_text_output(tmp_path: Path) -> None:
    done = await devicectl("demo", "--db", str(tmp_path / "d.db"))
    assert done.code == 0, done.stderr
    assert "SIMULATED" in done.stdout
    assert "Dose delivered against planned" in done.stdout
    assert "CUE RELEASE now" in done.stdout
    assert done.stdout.count("\a") >= 2  # bells at release and at the end of rest
    assert "Traceback" not in done.stderr


async def test_sigkill_mid_hold_leaves_an_interrupted_session_with_its_samples(
    tmp_path: Path,
) -> None:
    db = tmp_path / "k.db"
    proc = await spawn("run", "demo", "--tbar", "mark10@sim", "--db", str(db), "--json")
    try:
        seen = await read_json_until(proc, _is_phase("HOLD"), limit_s=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    hold_at = next(r["elapsed_s"] for r in seen if r.get("phase") == "HOLD")

    # Before the next start the session still says "running"; a new start recovers it.
    raw = sqlite3.connect(db)
    assert raw.execute("select status from sessions").fetchone()[0] == "running"
    raw.close()
    done = await devicectl("history", "--db", str(db), "--json", limit_s=30)
    assert done.code == 0
    store = Records.open(db)
    try:
        [session] = store.sessions()
        assert session.status == "interrupted"
        samples = store.samples(session.id)
        # At most one batch (0.25 s of data) is lost; the kill came after the hold began.
        assert samples[-1][0] >= hold_at - 0.3
        # The demo opens with a timed pause (RUNNING, DONE), then the first hold's ARMED, RAMP.
        phases = [p["phase"] for p in store.phases(session.id)]
        assert phases[:4] == ["RUNNING", "DONE", "ARMED", "RAMP"]
        # Recovery closes the record at its last data and says so in the events.
        assert session.ended_at is not None
        assert "session.interrupted" in [e["kind"] for e in store.events(session.id)]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("sig", "reason"),
    [
        (signal.SIGINT, "interrupted (Ctrl-C)"),
        (signal.SIGHUP, "the terminal closed (SIGHUP)"),
    ],
)
async def test_ctrl_c_stops_the_session_cleanly_with_exit_130(
    tmp_path: Path, sig: signal.Signals, reason: str
) -> None:
    db = tmp_path / "c.db"
    proc = await spawn("run", "demo", "--tbar", "mark10@sim", "--db", str(db), "--json")
    try:
        await read_json_until(proc, _is_phase("RAMP"), limit_s=60)
        proc.send_signal(sig)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err
    assert b'"status": "stopped"' in out
    store = Records.open(db)
    try:
        [session] = store.sessions()
        assert session.status == "stopped"
        ended = [e for e in store.events(session.id) if e["kind"] == "session.stopped"]
        assert [e["message"] for e in ended] == [reason]
    finally:
        store.close()


async def test_device_failure_mid_session_exits_1_and_records_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    done = await devicectl(
        "run", "demo", "--tbar", "mark10@sim?disconnect_after_s=3", "--db", str(db), "--json"
    )
    assert done.code == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("devicectl: error:")
    store = Records.open(db)
    try:
        [session] = store.sessions()
        assert session.status == "interrupted"
        kinds = [e["kind"] for e in store.events(session.id)]
        assert "device_failure" in kinds
    finally:
        store.close()


async def test_keys_confirm_pause_resume_and_stop_a_session(tmp_path: Path) -> None:
    plan_file = tmp_path / "untimed.toml"
    plan_file.write_text(FAST_PLAN.replace("duration_s = 1\n", ""))  # an untimed pause
    db = tmp_path / "k.db"
    proc = await spawn(
        "run", str(plan_file), "--tbar", "mark10@sim", "--db", str(db), "--json", keyboard=True
    )
    assert proc.stdin is not None
    try:
        await read_json_until(proc, _is_phase("WAITING"), limit_s=30)
        proc.stdin.write(b"\n")  # Enter: the therapist has finished the warm-up
        await read_json_until(proc, _is_phase("ARMED"), limit_s=10)
        proc.stdin.write(b"p\n")
        await read_json_until(proc, lambda r: r.get("type") == "StateChange", limit_s=10)
        proc.stdin.write(b"r\n")
        seen = await read_json_until(proc, lambda r: r.get("type") == "StateChange", limit_s=10)
        assert seen[-1]["state"] == "running"
        proc.stdin.write(b"s\n")
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130, err.decode()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["status"] == "stopped"
    store = Records.open(db)
    try:
        kinds = [e["kind"] for e in store.events(store.sessions()[0].id)]
    finally:
        store.close()
    for kind in (
        "command.confirm",
        "command.pause",
        "session.paused",
        "command.resume",
        "session.running",
        "command.stop",
        "session.stopped",
    ):
        assert kind in kinds, kind


async def test_a_gauge_without_unit_output_needs_the_unit_in_the_address(tmp_path: Path) -> None:
    plan_file = tmp_path / "fast.toml"
    plan_file.write_text(FAST_PLAN)
    therapist = TherapistModel(plan_segments(load_plan(plan_file)))
    server = TcpServer(
        lambda: Mark10Device(
            therapist, clock=time.monotonic, unit=Mark10Unit.LBF, unit_output=False
        )
    )
    host, port = await server.start()
    try:
        address = f"mark10@socket://{host}:{port}"
        refused = await devicectl("run", str(plan_file), "--tbar", address, "--db",
                                  str(tmp_path / "u.db"))  # fmt: skip
        assert refused.code == 1
        assert "without a unit" in refused.stderr
        assert "?unit=" in refused.stderr
        assert "Traceback" not in refused.stderr
        done = await devicectl("run", str(plan_file), "--tbar", f"{address}?unit=lbF", "--db",
                               str(tmp_path / "u.db"), "--json")  # fmt: skip
    finally:
        await server.stop()
    assert done.code == 0, done.stderr
    summary = done.json_lines()[-1]
    # Pressed mid-band (30 N): read as lbf and converted, not 6.7 "N".
    assert 25 < summary["dose"]["total"]["peak_n"] < 40


async def test_a_developer_serves_the_simulator_by_hand_and_connects_over_tcp(
    tmp_path: Path,
) -> None:
    plan_file = tmp_path / "fast.toml"
    plan_file.write_text(FAST_PLAN)
    sim = await spawn("sim", "mark10", "--tcp", "0", "--plan", str(plan_file))
    try:
        assert sim.stdout is not None
        first = await asyncio.wait_for(sim.stdout.readline(), 20)
        address = first.decode().split(" on ")[-1].strip()
        assert address.startswith("socket://127.0.0.1:")
        done = await devicectl("run", str(plan_file), "--tbar", f"mark10@{address}", "--db",
                               str(tmp_path / "t.db"), "--json")  # fmt: skip
    finally:
        sim.send_signal(signal.SIGINT)
        await asyncio.wait_for(sim.wait(), 10)
    assert sim.returncode == 0
    assert done.code == 0, done.stderr
    assert done.json_lines()[-1]["status"] == "completed"
