"""Reading sessions back: listings, one session's summary, and its recorded tables."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from devicectl.errors import RecordsError
from devicectl.records.db import guard
from devicectl.records.jsonio import loads
from devicectl.records.schema import DEVICE_FIELDS, HOLD_BOOLS, HOLD_DEFAULTS, HOLD_FIELDS

_SUMMARY_SQL = (
    "SELECT id, plan_name, plan_source, status, started_at, ended_at, n_holds, n_samples, summary"
    " FROM sessions"
)


@dataclass(frozen=True)
class DeviceRecord:
    """A device a session used."""

    role: str  # "tbar", "gun", "chair"
    address: str  # as given, e.g. "mark10@sim"
    model: str
    serial: str = ""
    firmware: str = ""
    simulated: bool = False
    # The calibration applied to its readings: compact JSON (see docs/records.md), "" for none.
    calibration: str = ""

    @property
    def calibration_data(self) -> dict[str, Any] | None:
        """:attr:`calibration` as a JSON object, or None for none."""
        data: dict[str, Any] | None = loads(self.calibration) if self.calibration else None
        return data


@dataclass(frozen=True)
class SessionSummary:
    id: int
    plan_name: str
    plan_source: str
    status: str  # one of STATUSES
    started_at: str  # ISO 8601, UTC
    ended_at: str | None  # None while running (or interrupted before any data was written)
    devices: tuple[DeviceRecord, ...]
    holds: int
    samples: int
    duration_s: float | None  # ended_at - started_at; for an interrupted session, to its last data
    summary: dict[str, Any] | None  # the JSON the runner stored at finish (dose totals)


class RecordsReader:
    """The read side of :class:`~devicectl.records.Records`, which opens the connection."""

    _conn: sqlite3.Connection
    path: Path

    def sessions(self) -> list[SessionSummary]:
        """Every session, newest first."""
        with guard(self.path, "cannot list sessions"):
            rows = self._conn.execute(_SUMMARY_SQL + " ORDER BY started_at DESC, id DESC")
            summaries = rows.fetchall()
            devices = self._devices(None)
        return [_summary(row, devices.get(row[0], ())) for row in summaries]

    def session(self, session_id: int) -> SessionSummary:
        with guard(self.path, f"cannot read session {session_id}"):
            row = self._conn.execute(_SUMMARY_SQL + " WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                raise RecordsError(f"no session {session_id} in {self.path}")
            return _summary(row, self._devices(session_id).get(session_id, ()))

    def _devices(self, session_id: int | None) -> dict[int, tuple[DeviceRecord, ...]]:
        sql = f"SELECT session_id, {', '.join(DEVICE_FIELDS)} FROM devices"
        args: tuple[int, ...] = ()
        if session_id is not None:
            sql, args = sql + " WHERE session_id = ?", (session_id,)
        grouped: dict[int, list[DeviceRecord]] = {}
        for sid, *rest in self._conn.execute(sql + " ORDER BY session_id, position", args):
            role, address, model, serial, firmware, simulated, calibration = rest
            device = DeviceRecord(
                role, address, model, serial, firmware, bool(simulated), calibration
            )
            grouped.setdefault(sid, []).append(device)
        return {sid: tuple(devices) for sid, devices in grouped.items()}

    def plan_text(self, session_id: int) -> str:
        """The plan file's text as the session ran it."""
        return str(self._rows(session_id, "SELECT plan_text FROM sessions WHERE id = ?")[0][0])

    def samples(self, session_id: int, *, device: str | None = None) -> list[tuple[float, float]]:
        """(t_s, force_n) in the order recorded; every device's unless ``device`` is given."""
        if device is None:
            sql = "SELECT t_s, force_n FROM samples WHERE session_id = ? ORDER BY rowid"
            return [(t, f) for t, f in self._rows(session_id, sql)]
        sql = "SELECT t_s, force_n FROM samples WHERE session_id = ? AND device = ? ORDER BY rowid"
        return [(t, f) for t, f in self._rows(session_id, sql, device)]

    def sample_rows(self, session_id: int) -> Iterator[tuple[float, str, float]]:
        """(t_s, device, force_n) in the order recorded, streamed (exports of long sessions)."""
        self.session(session_id)  # fail now, not on the first next()
        return self._stream_samples(session_id)

    def _stream_samples(self, session_id: int) -> Iterator[tuple[float, str, float]]:
        sql = "SELECT t_s, device, force_n FROM samples WHERE session_id = ? ORDER BY rowid"
        with guard(self.path, f"cannot read session {session_id}"):
            yield from self._conn.execute(sql, (session_id,))

    def holds(self, session_id: int) -> list[dict[str, Any]]:
        """Each hold's dose: HoldDose's fields, plus wall_s."""
        sql = f"SELECT {', '.join(HOLD_FIELDS)} FROM holds WHERE session_id = ? ORDER BY rowid"
        holds = []
        for row in self._rows(session_id, sql):
            hold = dict(zip(HOLD_FIELDS, row, strict=True))
            hold.update({k: v for k, v in HOLD_DEFAULTS.items() if hold[k] is None})
            hold.update({name: bool(hold[name]) for name in HOLD_BOOLS})
            hold["wall_s"] = hold["ended_s"] - hold["started_s"]
            holds.append(hold)
        return holds

    def events(self, session_id: int) -> list[dict[str, Any]]:
        sql = (
            "SELECT t_s, kind, severity, message, data FROM events WHERE session_id = ?"
            " ORDER BY rowid"
        )
        return [
            {"t_s": t, "kind": kind, "severity": sev, "message": msg, "data": loads(data)}
            for t, kind, sev, msg, data in self._rows(session_id, sql)
        ]

    def phases(self, session_id: int) -> list[dict[str, Any]]:
        sql = "SELECT t_s, step_index, rep, phase FROM phases WHERE session_id = ? ORDER BY rowid"
        return [
            {"t_s": t, "step_index": step, "rep": rep, "phase": phase}
            for t, step, rep, phase in self._rows(session_id, sql)
        ]

    def _rows(self, session_id: int, sql: str, *args: object) -> list[Any]:
        self.session(session_id)  # a missing session is an error, not an empty list
        with guard(self.path, f"cannot read session {session_id}"):
            return self._conn.execute(sql, (session_id, *args)).fetchall()


def _summary(row: tuple[Any, ...], devices: tuple[DeviceRecord, ...]) -> SessionSummary:
    sid, plan_name, plan_source, status, started_at, ended_at, n_holds, n_samples, summary = row
    duration = None
    if ended_at is not None:
        delta = datetime.fromisoformat(ended_at) - datetime.fromisoformat(started_at)
        duration = delta.total_seconds()
    return SessionSummary(
        sid, plan_name, plan_source, status, started_at, ended_at, devices, n_holds, n_samples,
        duration, loads(summary),
    )  # fmt: skip
