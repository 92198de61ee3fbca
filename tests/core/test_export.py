"""Export of a recorded session as JSON and as CSV files that parse back."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devicectl.dose import HoldDose
from devicectl.errors import RecordsError
from devicectl.export import export_csv, export_json
from devicectl.records import HOLD_FIELDS, DeviceRecord, Records

DOSE = HoldDose(
    step_index=0, site="levator scapulae", rep=1, started_s=1.0, ended_s=36.0,
    planned_in_band_s=30.0, in_band_s=30.5, contact_s=34.0, integral_ns=1190.0, peak_n=48.0,
    mean_n=35.0, over_ceiling_s=0.0, ramp_rate_n_s=None, completed=True, over_held=False,
)  # fmt: skip


@pytest.fixture
def records(tmp_path: Path) -> Iterator[Records]:
    r = Records.open(tmp_path / "sessions.db")
    yield r
    r.close()


@pytest.fixture
def session_id(records: Records) -> int:
    w = records.begin(
        plan_name="neck",
        plan_source="builtin:neck",
        plan_text='name = "neck"\n',
        devices=[DeviceRecord("tbar", "mark10@sim", "Mark-10", simulated=True)],
        started_at=datetime(2025, 3, 1, 9, 0, tzinfo=UTC),
    )
    w.phase(0.0, 0, 1, "ARMED")
    w.sample(0.0, 0.5)
    w.sample(0.02, 12.25)
    w.event(0.02, "alert.ceiling", 'over "60 N", now', severity="alarm", data={"step": 1})
    w.event(0.03, "feedback")
    w.hold(DOSE)
    w.finish("completed", summary={"total": {"in_band_s": 30.5}})
    return w.session_id


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_export_json_structure(records: Records, session_id: int) -> None:
    doc = export_json(records, session_id)

    assert set(doc) == {"session", "samples", "holds", "events", "phases"}
    session = doc["session"]
    assert session["id"] == session_id
    assert session["status"] == "completed"
    assert session["plan_text"] == 'name = "neck"\n'
    assert session["summary"] == {"total": {"in_band_s": 30.5}}
    assert session["devices"][0]["simulated"] is True
    assert doc["samples"] == [
        {"t_s": 0.0, "device": "tbar", "force_n": 0.5},
        {"t_s": 0.02, "device": "tbar", "force_n": 12.25},
    ]
    [hold] = doc["holds"]
    assert set(hold) == {*HOLD_FIELDS, "wall_s"}
    assert (hold["in_band_s"], hold["integral_ns"], hold["peak_n"], hold["mean_n"]) == (
        30.5, 1190.0, 48.0, 35.0,
    )  # fmt: skip
    assert [e["kind"] for e in doc["events"]] == ["alert.ceiling", "feedback"]
    assert doc["phases"] == [{"t_s": 0.0, "step_index": 0, "rep": 1, "phase": "ARMED"}]
    assert json.loads(json.dumps(doc)) == doc  # plain JSON all the way down


def test_export_csv_files_parse_back(records: Records, session_id: int, tmp_path: Path) -> None:
    out = tmp_path / "export"

    paths = export_csv(records, session_id, out)

    assert [p.name for p in paths] == [
        f"session-{session_id}-samples.csv",
        f"session-{session_id}-holds.csv",
        f"session-{session_id}-events.csv",
        f"session-{session_id}-devices.csv",
    ]
    samples = read_csv(paths[0])
    assert [(float(r["t_s"]), r["device"], float(r["force_n"])) for r in samples] == [
        (0.0, "tbar", 0.5),
        (0.02, "tbar", 12.25),
    ]
    [hold] = read_csv(paths[1])
    assert list(hold) == [*HOLD_FIELDS, "wall_s"]
    assert float(hold["in_band_s"]) == 30.5
    assert float(hold["integral_ns"]) == 1190.0
    assert float(hold["wall_s"]) == 35.0
    assert (hold["site"], hold["completed"], hold["ramp_rate_n_s"]) == (
        "levator scapulae", "true", "",
    )  # fmt: skip
    alarm, feedback = read_csv(paths[2])
    assert alarm["message"] == 'over "60 N", now'  # quoting survives
    assert json.loads(alarm["data"]) == {"step": 1}
    assert (feedback["severity"], feedback["data"]) == ("info", "")


def test_an_empty_session_exports_headers_only(records: Records, tmp_path: Path) -> None:
    w = records.begin(plan_name="p", plan_source="s", plan_text="", devices=[])
    w.finish("stopped")
    paths = export_csv(records, w.session_id, tmp_path)
    first_lines = [p.read_text(encoding="utf-8").splitlines() for p in paths]
    assert first_lines == [
        ["t_s,device,force_n"],
        [",".join((*HOLD_FIELDS, "wall_s"))],
        ["t_s,kind,severity,message,data"],
        ["role,address,model,serial,firmware,simulated,calibration"],
    ]
    assert export_json(records, w.session_id)["samples"] == []


def test_exporting_a_missing_session_writes_nothing(records: Records, tmp_path: Path) -> None:
    out = tmp_path / "export"
    with pytest.raises(RecordsError, match="no session 7"):
        export_csv(records, 7, out)
    assert not out.exists()
    with pytest.raises(RecordsError, match="no session 7"):
        export_json(records, 7)


def test_an_unwritable_export_directory_is_a_records_error(
    records: Records, session_id: int, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(RecordsError, match="cannot create export directory"):
        export_csv(records, session_id, tmp_path / "file" / "out")
