"""Session records: schema and WAL, round trips, batching, crash recovery, listing, bad files."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import platformdirs
import pytest

from devicectl import records as records_module
from devicectl.dose import HoldDose
from devicectl.errors import RecordsError
from devicectl.export import export_csv, export_json
from devicectl.records import (
    DEVICE_FIELDS,
    HOLD_FIELDS,
    DeviceRecord,
    Records,
    SessionWriter,
    default_db_path,
)
from devicectl.records import store as records_store
from devicectl.timing.types import Phase, SessionState, Severity

REPO = Path(__file__).resolve().parents[2]
TBAR = DeviceRecord("tbar", "mark10@sim", "Mark-10 Series 5", serial="S123", simulated=True)
T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def make_dose(**changes: object) -> HoldDose:
    dose = HoldDose(
        step_index=1, site="upper trapezius", rep=2, started_s=10.0, ended_s=45.5,
        planned_in_band_s=30.0, in_band_s=30.0, contact_s=34.0, integral_ns=1360.0,
        peak_n=52.5, mean_n=40.0, over_ceiling_s=0.0, ramp_rate_n_s=12.5, completed=True,
        over_held=False,
    )  # fmt: skip
    return dataclasses.replace(dose, **changes)  # type: ignore[arg-type]


def begin(records: Records, started_at: datetime = T0, name: str = "trigger") -> SessionWriter:
    return records.begin(
        plan_name=name,
        plan_source=f"builtin:{name}",
        plan_text=f'name = "{name}"\n',
        devices=[TBAR],
        started_at=started_at,
    )


def visible(db: Path, table: str, session_id: int) -> int:
    """Rows another process would see: a separate connection reads only committed data."""
    with sqlite3.connect(db) as other:
        sql = f"SELECT count(*) FROM {table} WHERE session_id = ?"
        count: int = other.execute(sql, (session_id,)).fetchone()[0]
    other.close()
    return count


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "sessions.db"


@pytest.fixture
def records(db: Path) -> Iterator[Records]:
    r = Records.open(db)
    yield r
    r.close()


# -- schema -----------------------------------------------------------------------------------


def test_open_creates_parent_dirs_schema_and_wal(records: Records, db: Path) -> None:
    assert db.is_file()
    other = sqlite3.connect(db)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("PRAGMA user_version").fetchone()[0] == records_module.SCHEMA_VERSION
        rows = other.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    finally:
        other.close()
    assert {name for (name,) in rows} == {
        "sessions", "devices", "phases", "events", "holds", "samples",
    }  # fmt: skip
    assert records.recovered == []


def test_reopening_keeps_data(db: Path) -> None:
    with Records.open(db) as first:
        begin(first).finish("completed")
    with Records.open(db) as second:
        assert [s.status for s in second.sessions()] == ["completed"]


def test_default_path_is_the_user_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_db_path() == platformdirs.user_data_path("devicectl") / "sessions.db"
    monkeypatch.setattr(records_store, "default_db_path", lambda: tmp_path / "d" / "s.db")
    with Records.open() as r:
        assert r.path == tmp_path / "d" / "s.db"
    assert (tmp_path / "d" / "s.db").is_file()


def test_hold_columns_follow_holddose_and_missing_ones_are_added(db: Path) -> None:
    assert tuple(f.name for f in dataclasses.fields(HoldDose)) == HOLD_FIELDS
    with Records.open(db) as r:
        w = begin(r)
        w.hold(make_dose())
        w.finish("completed")
    newest = HOLD_FIELDS[-1]
    other = sqlite3.connect(db)
    other.execute(f"ALTER TABLE holds DROP COLUMN {newest}")  # a file from before that field
    other.close()

    with Records.open(db) as r:
        [hold] = r.holds(w.session_id)  # the old row reads back with the field's default
        w2 = begin(r)
        w2.hold(make_dose())  # and new rows have the column again
        w2.finish("completed")
        [hold2] = r.holds(w2.session_id)
    field = {f.name: f for f in dataclasses.fields(HoldDose)}[newest]
    expected = None if field.default is dataclasses.MISSING else field.default
    assert hold[newest] == expected
    assert hold2[newest] == getattr(make_dose(), newest)


CALIBRATION = '{"id":"0123456789ab","device_id":"Mark-10 Series 5#S123","scale":1.02}'


def device_columns(db: Path) -> list[str]:
    other = sqlite3.connect(db)
    try:
        return [row[1] for row in other.execute("PRAGMA table_info(devices)")]
    finally:
        other.close()


def test_device_columns_follow_devicerecord() -> None:
    assert tuple(f.name for f in dataclasses.fields(DeviceRecord)) == DEVICE_FIELDS


def test_the_calibration_a_session_used_round_trips(records: Records) -> None:
    calibrated = dataclasses.replace(TBAR, calibration=CALIBRATION)
    w = records.begin(
        plan_name="p", plan_source="s", plan_text="", devices=[calibrated, TBAR], started_at=T0
    )
    w.finish("completed")
    assert records.session(w.session_id).devices == (calibrated, TBAR)
    [listed] = records.sessions()
    assert [d.calibration for d in listed.devices] == [CALIBRATION, ""]
    assert listed.devices[0].calibration_data == json.loads(CALIBRATION)
    assert listed.devices[1].calibration_data is None


def test_an_old_database_without_the_calibration_column_gets_it(db: Path) -> None:
    with Records.open(db) as r:
        old = begin(r)
        old.finish("completed")
    other = sqlite3.connect(db)
    other.execute("ALTER TABLE devices DROP COLUMN calibration")  # a file from before the column
    other.close()
    assert "calibration" not in device_columns(db)

    with Records.open(db) as r:
        assert device_columns(db)[-1] == "calibration"
        assert r.session(old.session_id).devices == (TBAR,)  # old rows read back as ""
        calibrated = dataclasses.replace(TBAR, calibration=CALIBRATION)
        new = r.begin(plan_name="p", plan_source="s", plan_text="", devices=[calibrated])
        new.finish("completed")
        assert r.session(new.session_id).devices == (calibrated,)
    with sqlite3.connect(db) as other:
        assert other.execute("PRAGMA user_version").fetchone()[0] == records_module.SCHEMA_VERSION
    other.close()


def test_both_exports_carry_the_calibration(records: Records, tmp_path: Path) -> None:
    calibrated = dataclasses.replace(TBAR, calibration=CALIBRATION)
    w = records.begin(plan_name="p", plan_source="s", plan_text="", devices=[calibrated, TBAR])
    w.finish("completed")

    devices = export_json(records, w.session_id)["session"]["devices"]
    assert [d["calibration"] for d in devices] == [json.loads(CALIBRATION), None]
    assert set(devices[0]) == set(DEVICE_FIELDS)

    paths = export_csv(records, w.session_id, tmp_path)
    assert paths[-1].name == f"session-{w.session_id}-devices.csv"
    with paths[-1].open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(DEVICE_FIELDS)
    assert [r["calibration"] for r in rows] == [CALIBRATION, ""]
    assert [r["simulated"] for r in rows] == ["true", "true"]


# -- writing and reading back ---------------------------------------------------------------


def test_round_trip(records: Records) -> None:
    gun = DeviceRecord("gun", "opg@ble:AA:BB", "open percussive", firmware="1.2")
    w = records.begin(
        plan_name="trigger",
        plan_source="plans/trigger.toml",
        plan_text="[plan]\n",
        devices=[TBAR, gun],
        started_at=T0,
    )
    w.phase(0.0, 0, 1, Phase.ARMED)
    w.sample(0.01, 1.5)
    w.sample(0.02, 3.25)
    w.sample(0.02, 7.0, device="gun")
    w.event(0.03, "alert.ceiling", "over 60 N", severity=Severity.ALARM, data={"step": 1})
    w.event(0.04, "feedback", data={"score": 6})
    w.hold(make_dose(ended_s=0.05, started_s=0.0))
    summary = {"total": {"in_band_s": 30.0}, "state": SessionState.COMPLETED}
    w.finish(SessionState.COMPLETED, summary=summary, ended_at=T0 + timedelta(seconds=95))

    s = records.session(w.session_id)
    assert (s.plan_name, s.plan_source, s.status) == ("trigger", "plans/trigger.toml", "completed")
    assert s.started_at == "2025-03-01T09:30:00.000+00:00"
    assert s.ended_at == "2025-03-01T09:31:35.000+00:00"
    assert s.duration_s == pytest.approx(95.0)
    assert s.devices == (TBAR, gun)
    assert (s.holds, s.samples) == (1, 3)
    assert s.summary == {"total": {"in_band_s": 30.0}, "state": "completed"}
    assert records.plan_text(w.session_id) == "[plan]\n"
    assert records.samples(w.session_id) == [(0.01, 1.5), (0.02, 3.25), (0.02, 7.0)]
    assert records.samples(w.session_id, device="gun") == [(0.02, 7.0)]
    assert records.phases(w.session_id) == [
        {"t_s": 0.0, "step_index": 0, "rep": 1, "phase": "ARMED"}
    ]
    assert records.events(w.session_id) == [
        {"t_s": 0.03, "kind": "alert.ceiling", "severity": "alarm", "message": "over 60 N",
         "data": {"step": 1}},
        {"t_s": 0.04, "kind": "feedback", "severity": "info", "message": "", "data": {"score": 6}},
    ]  # fmt: skip


def test_hold_round_trips_every_dose_field(records: Records) -> None:
    dose = make_dose(ramp_rate_n_s=None, completed=False, over_held=True)
    w = begin(records)
    w.hold(dose)
    w.finish("stopped")
    [hold] = records.holds(w.session_id)
    assert hold["wall_s"] == pytest.approx(dose.wall_s)
    assert HoldDose(**{name: hold[name] for name in HOLD_FIELDS}) == dose
    assert hold["completed"] is False
    assert hold["over_held"] is True


def test_started_at_is_stored_as_utc(records: Records) -> None:
    plus_two = datetime(2025, 3, 1, 11, 30, tzinfo=timezone(timedelta(hours=2)))
    w = begin(records, started_at=plus_two)
    assert records.session(w.session_id).started_at == "2025-03-01T09:30:00.000+00:00"
    w.finish("completed")
    w2 = records.begin(plan_name="p", plan_source="s", plan_text="", devices=[])
    started = datetime.fromisoformat(records.session(w2.session_id).started_at)
    assert started.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - started) < timedelta(minutes=1)
    w2.finish("completed")


def test_a_running_session_has_no_end_yet(records: Records) -> None:
    w = begin(records)
    s = records.session(w.session_id)
    assert (s.status, s.ended_at, s.duration_s, s.summary) == ("running", None, None, None)
    w.finish("completed")


def test_finish_rejects_unknown_status_and_later_writes(records: Records) -> None:
    w = begin(records)
    with pytest.raises(ValueError, match="running"):
        w.finish("running")
    w.finish("failed")
    with pytest.raises(RecordsError, match="finished"):
        w.sample(1.0, 2.0)
    with pytest.raises(RecordsError, match="finished"):
        w.finish("completed")
    assert records.session(w.session_id).status == "failed"


def test_summary_with_non_json_values_is_still_stored(records: Records) -> None:
    w = begin(records)
    w.finish("completed", summary={"dose": make_dose(), "path": Path("/x"), "sites": {"a"}})
    stored = records.session(w.session_id).summary
    assert stored is not None
    assert stored["dose"]["integral_ns"] == 1360.0
    assert stored["path"] == "/x"
    assert stored["sites"] == ["a"]


# -- batching -----------------------------------------------------------------------------


def test_data_within_the_batch_span_stays_buffered(records: Records, db: Path) -> None:
    w = begin(records)
    for i in range(25):  # t = 0.00 .. 0.24 s: less than max_batch_s of data
        w.sample(i / 100, float(i))
    w.event(0.1, "feedback", data={"score": 3})
    assert visible(db, "samples", w.session_id) == 0
    assert visible(db, "events", w.session_id) == 0

    w.sample(0.25, 25.0)  # the buffer now spans 0.25 s: written without being asked

    assert visible(db, "samples", w.session_id) == 26
    assert visible(db, "events", w.session_id) == 1
    w.finish("completed")


def test_no_transaction_holds_more_than_the_batch_span(records: Records, db: Path) -> None:
    w = begin(records)
    w.sample(0.0, 1.0)
    w.sample(5.0, 2.0)  # after a quiet spell: the old item goes alone, the new one waits
    assert visible(db, "samples", w.session_id) == 1
    assert records.session(w.session_id).samples == 1
    w.finish("completed")
    assert records.samples(w.session_id) == [(0.0, 1.0), (5.0, 2.0)]


def test_holds_phases_and_events_count_towards_the_span(records: Records, db: Path) -> None:
    w = begin(records)
    w.phase(10.0, 0, 1, "HOLD")
    w.event(10.1, "cue.release")
    assert visible(db, "phases", w.session_id) == 0
    w.hold(make_dose(ended_s=10.25))
    assert visible(db, "phases", w.session_id) == 1
    assert visible(db, "holds", w.session_id) == 1
    assert records.session(w.session_id).holds == 1
    w.finish("completed")


def test_flush_due_and_explicit_flush(records: Records, db: Path) -> None:
    w = begin(records)
    assert not w.flush_due(100.0)  # nothing buffered: no empty transactions
    w.sample(1.0, 5.0)
    assert not w.flush_due(1.2)
    assert w.flush_due(1.25)
    w.flush()
    assert visible(db, "samples", w.session_id) == 1
    assert not w.flush_due(5.0)
    w.flush()  # nothing buffered: a no-op
    w.finish("completed")
    assert records.session(w.session_id).samples == 1


def test_max_batch_s_can_be_set_per_writer(records: Records, db: Path) -> None:
    w = begin(records)
    w.max_batch_s = 0.0  # every item is its own transaction
    w.sample(0.0, 1.0)
    assert visible(db, "samples", w.session_id) == 1
    w.finish("completed")


# -- crashes ------------------------------------------------------------------------------


def test_a_live_session_is_not_marked_interrupted_by_another_open(
    records: Records, db: Path
) -> None:
    w = begin(records)
    w.sample(0.0, 1.0)
    w.flush()
    with Records.open(db) as second:  # e.g. `devicectl sessions` in another terminal
        assert second.recovered == []
        assert second.session(w.session_id).status == "running"
    w.finish("completed")
    assert records.session(w.session_id).status == "completed"


def test_an_unfinished_writer_is_marked_interrupted_at_the_next_open(db: Path) -> None:
    first = Records.open(db)
    w = begin(first)
    w.phase(0.0, 0, 1, "RAMP")
    w.sample(0.5, 12.0)
    w.flush()
    w.sample(0.6, 13.0)
    first.close()  # an exit path that never called finish(): data kept, session still running

    with Records.open(db) as second:
        assert second.recovered == [w.session_id]
        s = second.session(w.session_id)
        assert s.status == "interrupted"
        assert s.duration_s == pytest.approx(0.6)  # up to its last data
        assert second.samples(w.session_id) == [(0.5, 12.0), (0.6, 13.0)]
        [event] = [e for e in second.events(w.session_id) if e["kind"] == "session.interrupted"]
        assert event["severity"] == "warning"
        assert "interrupted" in event["message"]

    with Records.open(db) as third:  # recovered once only
        assert third.recovered == []
        assert len(third.events(w.session_id)) == 1


_CRASHING_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from devicectl.records import DeviceRecord, Records

    records = Records.open(Path(sys.argv[1]))
    w = records.begin(plan_name="crash", plan_source="test", plan_text="",
                      devices=[DeviceRecord("tbar", "mark10@sim", "Mark-10", simulated=True)])
    for i in range(10):
        w.sample(i / 100, float(i))
    w.event(0.05, "feedback", data={"score": 4})
    w.flush()
    w.sample(0.1, 99.0)  # buffered only: lost in the crash
    print("flushed", w.session_id, flush=True)
    sys.stdin.read()  # blocks until killed
    """
)


@pytest.mark.system
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_process_leaves_a_session_that_is_recovered(db: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_WRITER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30.0)
        assert ready, "the writer never reported its flush"
        word, session_id = proc.stdout.readline().split()
        assert word == "flushed"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30.0) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30.0)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    with Records.open(db) as after:
        assert after.recovered == [int(session_id)]
        s = after.session(int(session_id))
        assert s.status == "interrupted"
        assert s.devices[0].simulated
        assert after.samples(s.id) == [(i / 100, float(i)) for i in range(10)]
        kinds = [e["kind"] for e in after.events(s.id)]
        assert kinds == ["feedback", "session.interrupted"]


# -- listing ------------------------------------------------------------------------------


def test_sessions_newest_first_with_their_statuses(records: Records) -> None:
    statuses = ["completed", "stopped", "failed", "interrupted"]
    # Created out of order: the listing follows started_at, not insertion.
    for minutes, status in zip([20, 0, 30, 10], statuses, strict=True):
        begin(records, started_at=T0 + timedelta(minutes=minutes)).finish(status)
    live = begin(records, started_at=T0 + timedelta(minutes=40))

    listed = records.sessions()

    assert [s.status for s in listed] == [
        "running",
        "failed",
        "completed",
        "interrupted",
        "stopped",
    ]
    assert listed[0].id == live.session_id
    assert [s.started_at for s in listed] == sorted((s.started_at for s in listed), reverse=True)
    assert all(s.devices == (TBAR,) for s in listed)
    live.finish("completed")


def test_empty_database_lists_nothing(records: Records) -> None:
    assert records.sessions() == []


@pytest.mark.parametrize("read", ["session", "samples", "holds", "events", "phases", "plan_text"])
def test_a_missing_session_is_an_error(records: Records, db: Path, read: str) -> None:
    with pytest.raises(RecordsError, match=f"no session 99 in {db}"):
        getattr(records, read)(99)


# -- databases that cannot be used --------------------------------------------------------


def test_parent_that_is_a_file_gives_records_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(RecordsError, match="cannot open session records"):
        Records.open(tmp_path / "file" / "sessions.db")


def test_a_directory_as_the_database_gives_records_error(tmp_path: Path) -> None:
    with pytest.raises(RecordsError, match="cannot open session records"):
        Records.open(tmp_path)


def test_a_corrupt_file_gives_records_error(tmp_path: Path) -> None:
    bad = tmp_path / "sessions.db"
    bad.write_bytes(b"this is not an sqlite database, just some bytes" * 100)
    with pytest.raises(RecordsError, match="not a database"):
        Records.open(bad)


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.close()
    with pytest.raises(RecordsError, match="not devicectl's records"):
        Records.open(other)


def test_a_newer_schema_is_refused(db: Path) -> None:
    Records.open(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(RecordsError, match="upgrade devicectl"):
        Records.open(db)
