"""Export one recorded session as JSON (one document) or CSV (one file per table, with headers).

Column names match the JSON keys, so a script can switch formats without renaming anything. JSON
columns (an event's ``data``, a device's ``calibration``) are objects (or null) in JSON and compact
JSON text (or an empty cell) in CSV.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from devicectl.errors import RecordsError
from devicectl.records import DEVICE_FIELDS, HOLD_FIELDS, DeviceRecord, Records

SAMPLE_COLUMNS = ("t_s", "device", "force_n")
HOLD_COLUMNS = (*HOLD_FIELDS, "wall_s")
EVENT_COLUMNS = ("t_s", "kind", "severity", "message", "data")
DEVICE_COLUMNS = DEVICE_FIELDS


def export_json(records: Records, session_id: int) -> dict[str, Any]:
    """The whole session as JSON-ready data: session, samples, holds, events, phases."""
    summary = records.session(session_id)
    session = dataclasses.asdict(summary)
    session["devices"] = [_device_json(d) for d in summary.devices]  # a list, as JSON reads back
    session["plan_text"] = records.plan_text(session_id)
    samples = [
        dict(zip(SAMPLE_COLUMNS, row, strict=True)) for row in records.sample_rows(session_id)
    ]
    return {
        "session": session,
        "samples": samples,
        "holds": records.holds(session_id),
        "events": records.events(session_id),
        "phases": records.phases(session_id),
    }


def _device_json(device: DeviceRecord) -> dict[str, Any]:
    return dataclasses.asdict(device) | {"calibration": device.calibration_data}


def export_csv(records: Records, session_id: int, out_dir: Path) -> list[Path]:
    """Writes session-<ID>-samples.csv, -holds.csv, -events.csv and -devices.csv in ``out_dir``."""
    summary = records.session(session_id)  # a missing session fails before any file is created
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecordsError(f"cannot create export directory {out_dir}: {exc}") from exc
    holds = ([h[c] for c in HOLD_COLUMNS] for h in records.holds(session_id))
    events = (
        [e["t_s"], e["kind"], e["severity"], e["message"], _json_cell(e["data"])]
        for e in records.events(session_id)
    )
    devices = ([getattr(d, c) for c in DEVICE_COLUMNS] for d in summary.devices)
    tables: list[tuple[str, Sequence[str], Iterable[Sequence[Any]]]] = [
        ("samples", SAMPLE_COLUMNS, records.sample_rows(session_id)),
        ("holds", HOLD_COLUMNS, holds),
        ("events", EVENT_COLUMNS, events),
        ("devices", DEVICE_COLUMNS, devices),
    ]
    return [
        _write_csv(out_dir / f"session-{session_id}-{name}.csv", header, rows)
        for name, header, rows in tables
    ]


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    try:
        # newline="" lets the csv module write its own line endings (RFC 4180), as its docs require.
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows([_cell(v) for v in row] for row in rows)
    except OSError as exc:
        raise RecordsError(f"cannot write {path}: {exc}") from exc
    return path


def _cell(value: Any) -> Any:
    # Lower-case booleans, as in the JSON export; None stays an empty cell (csv's default).
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _json_cell(data: Any) -> str:
    return "" if data is None else json.dumps(data, separators=(",", ":"))
