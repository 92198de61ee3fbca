"""The records schema: tables, version, statuses, the hold columns, and stored time stamps."""

from __future__ import annotations

import sqlite3
from dataclasses import MISSING, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devicectl.dose import HoldDose
from devicectl.errors import RecordsError
from devicectl.records.db import transaction

SCHEMA_VERSION = 1  # PRAGMA user_version; bump with a migration step in _create_schema
STATUSES = ("running", "completed", "stopped", "interrupted", "failed")
FINAL_STATUSES = frozenset(STATUSES) - {"running"}

# The holds table has one column per HoldDose field, added on open when missing (an additive change
# needs no schema version), so a new dose field is recorded without touching this package.
_HOLD_FIELDS = fields(HoldDose)
HOLD_FIELDS = tuple(f.name for f in _HOLD_FIELDS)
HOLD_BOOLS = tuple(f.name for f in _HOLD_FIELDS if f.type in (bool, "bool"))
# Rows written before a field existed read back as its default, so they still rebuild a HoldDose.
HOLD_DEFAULTS = {f.name: f.default for f in _HOLD_FIELDS if f.default is not MISSING}
# Named columns: an added column may sit anywhere relative to the dataclass's field order.
INSERT_HOLD = (
    f"INSERT INTO holds (session_id, {', '.join(HOLD_FIELDS)}) VALUES (?{', ?' * len(HOLD_FIELDS)})"
)

# Columns added to the devices table after schema 1, with their definitions: added on open when
# missing (an additive change needs no schema version), older rows read back as the default.
_DEVICE_COLUMNS = {
    "calibration": "TEXT NOT NULL DEFAULT ''",  # JSON of the calibration applied, '' for none
}
DEVICE_FIELDS = (
    "role", "address", "model", "serial", "firmware", "simulated", *_DEVICE_COLUMNS,
)  # fmt: skip
# Named columns: an added column sits after the original ones whatever the table's age.
INSERT_DEVICE = (
    f"INSERT INTO devices (session_id, position, {', '.join(DEVICE_FIELDS)})"
    f" VALUES (?, ?{', ?' * len(DEVICE_FIELDS)})"
)

_SCHEMA = """
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    plan_name TEXT NOT NULL,
    plan_source TEXT NOT NULL,
    plan_text TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN
        ('running', 'completed', 'stopped', 'interrupted', 'failed')),
    started_at TEXT NOT NULL,           -- ISO 8601, UTC
    ended_at TEXT,                      -- NULL while running, or when a crash left no data
    summary TEXT,                       -- JSON stored by the runner at finish
    n_samples INTEGER NOT NULL DEFAULT 0,  -- kept by each batch so listing never counts samples
    n_holds INTEGER NOT NULL DEFAULT 0,
    last_t_s REAL                       -- newest data time stamp written (for crashed sessions)
);
CREATE INDEX sessions_by_start ON sessions (started_at);
CREATE TABLE devices (
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    position INTEGER NOT NULL,
    role TEXT NOT NULL,
    address TEXT NOT NULL,
    model TEXT NOT NULL,
    serial TEXT NOT NULL,
    firmware TEXT NOT NULL,
    simulated INTEGER NOT NULL,
    -- later columns: see _DEVICE_COLUMNS
    PRIMARY KEY (session_id, position)
);
CREATE TABLE phases (
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    t_s REAL NOT NULL, step_index INTEGER NOT NULL, rep INTEGER NOT NULL, phase TEXT NOT NULL
);
CREATE INDEX phases_by_session ON phases (session_id);
CREATE TABLE events (
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    t_s REAL NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL, message TEXT NOT NULL,
    data TEXT                           -- JSON object or NULL
);
CREATE INDEX events_by_session ON events (session_id);
CREATE TABLE holds (
    session_id INTEGER NOT NULL REFERENCES sessions (id)
    -- then one column per HoldDose field: see _add_hold_columns
);
CREATE INDEX holds_by_session ON holds (session_id);
CREATE TABLE samples (
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    t_s REAL NOT NULL, device TEXT NOT NULL, force_n REAL NOT NULL
);
CREATE INDEX samples_by_session ON samples (session_id);
"""


def ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Creates the tables in a new database, refuses a newer or foreign one, adds missing
    hold and device columns."""
    with transaction(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RecordsError(
                f"{path} has records schema {version}; this devicectl reads up to "
                f"{SCHEMA_VERSION} (upgrade devicectl)"
            )
        if version == 0:
            _create_schema(conn, path)
        _add_hold_columns(conn)
        _add_device_columns(conn)


def _create_schema(conn: sqlite3.Connection, path: Path) -> None:
    if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        raise RecordsError(f"{path} is an SQLite database but not devicectl's records")
    # executescript would COMMIT our open transaction; run the statements one by one instead.
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _add_hold_columns(conn: sqlite3.Connection) -> None:
    present = {row[1] for row in conn.execute("PRAGMA table_info(holds)")}
    for f in _HOLD_FIELDS:
        if f.name not in present:
            conn.execute(f"ALTER TABLE holds ADD COLUMN {f.name} {_sql_type(f.type)}")


def _add_device_columns(conn: sqlite3.Connection) -> None:
    present = {row[1] for row in conn.execute("PRAGMA table_info(devices)")}
    for name, definition in _DEVICE_COLUMNS.items():
        if name not in present:
            conn.execute(f"ALTER TABLE devices ADD COLUMN {name} {definition}")


def _sql_type(annotation: object) -> str:
    """The column type for a dataclass field's annotation (a string under postponed evaluation)."""
    name = getattr(annotation, "__name__", str(annotation)).split(" | ")[0]
    return {"bool": "INTEGER", "int": "INTEGER", "float": "REAL", "str": "TEXT"}.get(name, "")


def iso(moment: datetime) -> str:
    """The stored form of a time: ISO 8601 in UTC."""
    # A naive datetime is local time (Python's convention); store UTC so text order is time order.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def iso_after(started_at: str, seconds: float) -> str:
    """The stored time ``seconds`` after the stored time ``started_at``."""
    return iso(datetime.fromisoformat(started_at) + timedelta(seconds=seconds))
