"""Session records: every session in one SQLite database (WAL), written in small batches.

One :class:`Records` per process opens the database; :meth:`Records.begin` starts a session and
returns its :class:`SessionWriter`, which buffers samples, phase changes, events and holds and
writes them in one transaction per batch of at most ``max_batch_s`` seconds of data, so a crash
loses at most that much.

A session whose process died leaves its row "running". Each writer holds an OS file lock on a small
lock file next to the database for as long as it lives (the OS drops it when the process dies, even
on SIGKILL), so :meth:`Records.open` can tell a crashed session from one that another ``devicectl``
is still running (``devicectl sessions`` in a second terminal must not mark a live session
interrupted).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import IO, Any

import platformdirs

from devicectl.dose import HoldDose
from devicectl.errors import RecordsError

SCHEMA_VERSION = 1  # PRAGMA user_version; bump with a migration step in _create_schema
# Writers only ever wait for each other's short batches; never stall the event loop longer.
BUSY_TIMEOUT_S = 2.0
STATUSES = ("running", "completed", "stopped", "interrupted", "failed")
FINAL_STATUSES = frozenset(STATUSES) - {"running"}

# The holds table has one column per HoldDose field, added on open when missing (an additive change
# needs no schema version), so a new dose field is recorded without touching this module.
_HOLD_FIELDS = fields(HoldDose)
HOLD_FIELDS = tuple(f.name for f in _HOLD_FIELDS)
_HOLD_BOOLS = tuple(f.name for f in _HOLD_FIELDS if f.type in (bool, "bool"))
# Rows written before a field existed read back as its default, so they still rebuild a HoldDose.
_HOLD_DEFAULTS = {f.name: f.default for f in _HOLD_FIELDS if f.default is not MISSING}

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

_INTERRUPTED_MESSAGE = (
    "found still running when the records were next opened (the process crashed or was killed); "
    "marked interrupted, data up to the last batch kept"
)


def default_db_path() -> Path:
    return platformdirs.user_data_path("devicectl") / "sessions.db"


@dataclass(frozen=True)
class DeviceRecord:
    """A device a session used."""

    role: str  # "tbar", "gun", "chair"
    address: str  # as given, e.g. "mark10@sim"
    model: str
    serial: str = ""
    firmware: str = ""
    simulated: bool = False


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


class Records:
    """The session database. Not thread-safe: use it from one thread (the event loop's)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self.recovered: list[int] = []  # sessions open() marked interrupted
        self._writers: list[SessionWriter] = []

    @classmethod
    def open(cls, path: Path | None = None) -> Records:
        path = Path(path) if path is not None else default_db_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: every transaction is an explicit BEGIN IMMEDIATE ... COMMIT below.
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise RecordsError(f"cannot open session records {path}: {exc}") from exc
        records = cls(conn, path)
        try:
            records._configure()
            records.recovered = records._recover()
        except (OSError, sqlite3.Error, RecordsError) as exc:
            conn.close()
            if isinstance(exc, RecordsError):
                raise
            raise RecordsError(f"cannot open session records {path}: {exc}") from exc
        return records

    def __enter__(self) -> Records:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _configure(self) -> None:
        c = self._conn
        c.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        c.execute("PRAGMA journal_mode = WAL")  # readers (listing, export) never block the writer
        # NORMAL is durable against application crashes in WAL mode (only power loss can drop the
        # newest batches) and spares the event loop an fsync per batch.
        c.execute("PRAGMA synchronous = NORMAL")
        c.execute("PRAGMA foreign_keys = ON")
        with self._transaction():
            version = c.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RecordsError(
                    f"{self.path} has records schema {version}; this devicectl reads up to "
                    f"{SCHEMA_VERSION} (upgrade devicectl)"
                )
            if version == 0:
                self._create_schema()
            self._add_hold_columns()

    def _create_schema(self) -> None:
        if self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise RecordsError(f"{self.path} is an SQLite database but not devicectl's records")
        # executescript would COMMIT our open transaction; run the statements one by one instead.
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                self._conn.execute(statement)
        self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _add_hold_columns(self) -> None:
        present = {row[1] for row in self._conn.execute("PRAGMA table_info(holds)")}
        for f in _HOLD_FIELDS:
            if f.name not in present:
                self._conn.execute(f"ALTER TABLE holds ADD COLUMN {f.name} {_sql_type(f.type)}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front: a deferred transaction that later needs to write
        # can fail with SQLITE_BUSY at once, without waiting for the busy timeout.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (busy) leaves the transaction open; some errors end it themselves.
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise RecordsError(f"{action} in {self.path}: {exc}") from exc

    # -- recovery ---------------------------------------------------------------------------------

    def _recover(self) -> list[int]:
        running = self._conn.execute("SELECT id FROM sessions WHERE status = 'running'").fetchall()
        recovered = []
        for (session_id,) in running:
            lock = _SessionLock(_lock_path(self.path, session_id))
            if not lock.try_acquire():
                continue  # its writer is alive (this or another process): leave it running
            try:
                if self._mark_interrupted(session_id):
                    recovered.append(session_id)
            finally:
                lock.release()
        return recovered

    def _mark_interrupted(self, session_id: int) -> bool:
        with self._transaction() as c:
            # Read again under the lock: the writer may have finished between our query and now.
            row = c.execute(
                "SELECT started_at, last_t_s FROM sessions WHERE id = ? AND status = 'running'",
                (session_id,),
            ).fetchone()
            if row is None:
                return False
            started_at, last_t_s = row
            ended_at = None if last_t_s is None else _after(started_at, last_t_s)
            c.execute(
                "UPDATE sessions SET status = 'interrupted', ended_at = ? WHERE id = ?",
                (ended_at, session_id),
            )
            c.execute(
                "INSERT INTO events VALUES (?, ?, 'session.interrupted', 'warning', ?, NULL)",
                (session_id, last_t_s or 0.0, _INTERRUPTED_MESSAGE),
            )
        return True

    # -- writing ----------------------------------------------------------------------------------

    def begin(
        self,
        *,
        plan_name: str,
        plan_source: str,
        plan_text: str,
        devices: Sequence[DeviceRecord],
        started_at: datetime | None = None,
    ) -> SessionWriter:
        started = _iso(started_at or datetime.now(UTC))
        with self._guard("cannot start a session record"):
            session_id, lock = self._insert_session(
                (plan_name, plan_source, plan_text, started), devices
            )
        writer = SessionWriter(self, session_id, lock)
        self._writers.append(writer)
        return writer

    def _insert_session(
        self, session: tuple[str, str, str, str], devices: Sequence[DeviceRecord]
    ) -> tuple[int, _SessionLock]:
        lock: _SessionLock | None = None
        try:
            with self._transaction() as c:
                cur = c.execute(
                    "INSERT INTO sessions (plan_name, plan_source, plan_text, started_at, status)"
                    " VALUES (?, ?, ?, ?, 'running')",
                    session,
                )
                session_id = _rowid(cur)
                c.executemany(
                    "INSERT INTO devices VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (session_id, i, d.role, d.address, d.model, d.serial, d.firmware,
                         d.simulated)
                        for i, d in enumerate(devices)
                    ],
                )  # fmt: skip
                # Lock before COMMIT: once other processes can see the "running" row, they must
                # also see that its writer is alive.
                lock = _SessionLock(_lock_path(self.path, session_id))
                if not lock.try_acquire():
                    raise RecordsError(f"cannot lock {lock.path} for session {session_id}")
                return session_id, lock
        except BaseException:
            if lock is not None:
                # Keep the file: once rolled back, this id may already be another writer's.
                lock.release(remove=False)
            raise

    def _write_batch(self, batch: _Batch, session_id: int) -> None:
        with self._guard(f"cannot write session {session_id}"), self._transaction() as c:
            c.executemany("INSERT INTO samples VALUES (?, ?, ?, ?)", batch.samples)
            c.executemany("INSERT INTO phases VALUES (?, ?, ?, ?, ?)", batch.phases)
            c.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", batch.events)
            c.executemany(_INSERT_HOLD, batch.holds)
            c.execute(
                "UPDATE sessions SET n_samples = n_samples + ?, n_holds = n_holds + ?,"
                " last_t_s = max(coalesce(last_t_s, ?), ?) WHERE id = ?",
                (len(batch.samples), len(batch.holds), batch.max_t, batch.max_t, session_id),
            )

    def _end(self, session_id: int, status: str, ended_at: str, summary: str | None) -> None:
        with self._guard(f"cannot finish session {session_id}"), self._transaction() as c:
            c.execute(
                "UPDATE sessions SET status = ?, ended_at = ?, summary = ? WHERE id = ?",
                (status, ended_at, summary, session_id),
            )

    def _forget(self, writer: SessionWriter) -> None:
        with suppress(ValueError):
            self._writers.remove(writer)

    def close(self) -> None:
        """Closes the database. A writer left unfinished is flushed and stays "running", so the next
        open marks it interrupted: only finish() may claim that a session ended normally."""
        errors: list[RecordsError] = []
        for writer in list(self._writers):
            try:
                writer._abandon()
            except RecordsError as exc:
                errors.append(exc)
        self._conn.close()
        if errors:
            raise errors[0]

    # -- reading ----------------------------------------------------------------------------------

    def sessions(self) -> list[SessionSummary]:
        """Every session, newest first."""
        with self._guard("cannot list sessions"):
            rows = self._conn.execute(_SUMMARY_SQL + " ORDER BY started_at DESC, id DESC")
            summaries = rows.fetchall()
            devices = self._devices(None)
        return [_summary(row, devices.get(row[0], ())) for row in summaries]

    def session(self, session_id: int) -> SessionSummary:
        with self._guard(f"cannot read session {session_id}"):
            row = self._conn.execute(_SUMMARY_SQL + " WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                raise RecordsError(f"no session {session_id} in {self.path}")
            return _summary(row, self._devices(session_id).get(session_id, ()))

    def _devices(self, session_id: int | None) -> dict[int, tuple[DeviceRecord, ...]]:
        sql = "SELECT session_id, role, address, model, serial, firmware, simulated FROM devices"
        args: tuple[int, ...] = ()
        if session_id is not None:
            sql, args = sql + " WHERE session_id = ?", (session_id,)
        grouped: dict[int, list[DeviceRecord]] = {}
        for sid, *rest in self._conn.execute(sql + " ORDER BY session_id, position", args):
            role, address, model, serial, firmware, simulated = rest
            device = DeviceRecord(role, address, model, serial, firmware, bool(simulated))
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
        with self._guard(f"cannot read session {session_id}"):
            yield from self._conn.execute(sql, (session_id,))

    def holds(self, session_id: int) -> list[dict[str, Any]]:
        """Each hold's dose: HoldDose's fields, plus wall_s."""
        sql = f"SELECT {', '.join(HOLD_FIELDS)} FROM holds WHERE session_id = ? ORDER BY rowid"
        holds = []
        for row in self._rows(session_id, sql):
            hold = dict(zip(HOLD_FIELDS, row, strict=True))
            hold.update({k: v for k, v in _HOLD_DEFAULTS.items() if hold[k] is None})
            hold.update({name: bool(hold[name]) for name in _HOLD_BOOLS})
            hold["wall_s"] = hold["ended_s"] - hold["started_s"]
            holds.append(hold)
        return holds

    def events(self, session_id: int) -> list[dict[str, Any]]:
        sql = (
            "SELECT t_s, kind, severity, message, data FROM events WHERE session_id = ?"
            " ORDER BY rowid"
        )
        return [
            {"t_s": t, "kind": kind, "severity": sev, "message": msg, "data": _loads(data)}
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
        with self._guard(f"cannot read session {session_id}"):
            return self._conn.execute(sql, (session_id, *args)).fetchall()


# Named columns: an added column may sit anywhere relative to the dataclass's field order.
_INSERT_HOLD = (
    f"INSERT INTO holds (session_id, {', '.join(HOLD_FIELDS)}) VALUES (?{', ?' * len(HOLD_FIELDS)})"
)
_SUMMARY_SQL = (
    "SELECT id, plan_name, plan_source, status, started_at, ended_at, n_holds, n_samples, summary"
    " FROM sessions"
)


def _summary(row: tuple[Any, ...], devices: tuple[DeviceRecord, ...]) -> SessionSummary:
    sid, plan_name, plan_source, status, started_at, ended_at, n_holds, n_samples, summary = row
    duration = None
    if ended_at is not None:
        delta = datetime.fromisoformat(ended_at) - datetime.fromisoformat(started_at)
        duration = delta.total_seconds()
    return SessionSummary(
        sid, plan_name, plan_source, status, started_at, ended_at, devices, n_holds, n_samples,
        duration, _loads(summary),
    )  # fmt: skip


@dataclass
class _Batch:
    """Rows waiting for the next transaction, and the span of data time they cover."""

    samples: list[tuple[int, float, str, float]] = field(default_factory=list)
    phases: list[tuple[int, float, int, int, str]] = field(default_factory=list)
    events: list[tuple[int, float, str, str, str, str | None]] = field(default_factory=list)
    holds: list[tuple[Any, ...]] = field(default_factory=list)
    min_t: float = 0.0
    max_t: float = 0.0
    size: int = 0

    def span_with(self, t_s: float) -> float:
        return max(self.max_t, t_s) - min(self.min_t, t_s) if self.size else 0.0

    def note(self, t_s: float) -> None:
        self.min_t = min(self.min_t, t_s) if self.size else t_s
        self.max_t = max(self.max_t, t_s) if self.size else t_s
        self.size += 1


class SessionWriter:
    """Buffers one session's data; writes it in batches of at most ``max_batch_s`` of data time."""

    max_batch_s: float = 0.25  # the most data (by its own time stamps) a crash can lose

    def __init__(self, records: Records, session_id: int, lock: _SessionLock) -> None:
        self._records = records
        self.session_id = session_id
        self._lock = lock
        self._batch = _Batch()
        self._finished = False

    def sample(self, t_s: float, force_n: float, device: str = "tbar") -> None:
        """A force sample; ``t_s`` is seconds since the session started."""
        self._before(t_s)
        self._batch.samples.append((self.session_id, t_s, device, force_n))
        self._after(t_s)

    def phase(self, t_s: float, step_index: int, rep: int, phase: str) -> None:
        self._before(t_s)
        self._batch.phases.append((self.session_id, t_s, step_index, rep, str(phase)))
        self._after(t_s)

    def event(
        self,
        t_s: float,
        kind: str,
        message: str = "",
        *,
        severity: str = "info",
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Alerts, cues, actuator commands, client feedback, device failures: anything timed."""
        self._before(t_s)
        row = (self.session_id, t_s, str(kind), str(severity), message, _dumps(data))
        self._batch.events.append(row)
        self._after(t_s)

    def hold(self, dose: HoldDose) -> None:
        """A finished hold's dose, stamped with the time it ended."""
        t_s = dose.ended_s
        self._before(t_s)
        self._batch.holds.append((self.session_id, *(getattr(dose, f) for f in HOLD_FIELDS)))
        self._after(t_s)

    def flush_due(self, t_s: float) -> bool:
        """True when the oldest buffered item is ``max_batch_s`` or more older than ``t_s``."""
        return self._batch.size > 0 and t_s - self._batch.min_t >= self.max_batch_s

    def flush(self) -> None:
        """Writes everything buffered in one transaction; on failure the buffer is kept (retry)."""
        if self._batch.size == 0:
            return
        self._records._write_batch(self._batch, self.session_id)
        self._batch = _Batch()

    def finish(
        self,
        status: str,
        *,
        summary: Mapping[str, Any] | None = None,
        ended_at: datetime | None = None,
    ) -> None:
        """Flushes, then records how the session ended (completed, stopped, interrupted, failed)."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"a session ends {', '.join(sorted(FINAL_STATUSES))}; not {status!r}")
        self._check_open()
        self.flush()
        ended = _iso(ended_at or datetime.now(UTC))
        self._records._end(self.session_id, str(status), ended, _dumps(summary))
        self._close()

    def _before(self, t_s: float) -> None:
        self._check_open()
        # An item that would stretch the batch past max_batch_s (after a quiet spell nobody flushed)
        # goes into the next transaction, so no transaction holds more than max_batch_s of data.
        if self._batch.span_with(t_s) > self.max_batch_s:
            self.flush()

    def _after(self, t_s: float) -> None:
        self._batch.note(t_s)
        # Flush without being asked, so a caller that never calls flush() still loses at most
        # max_batch_s of data in a crash.
        if self._batch.max_t - self._batch.min_t >= self.max_batch_s:
            self.flush()

    def _check_open(self) -> None:
        if self._finished:
            raise RecordsError(f"session {self.session_id} is finished (or its records closed)")

    def _abandon(self) -> None:
        """The records are closing under an unfinished writer: keep its data, leave it running."""
        try:
            self.flush()
        finally:
            self._close()

    def _close(self) -> None:
        self._finished = True
        self._lock.release(remove=True)
        self._records._forget(self)


# -- liveness locks -------------------------------------------------------------------------------


def _lock_path(db_path: Path, session_id: int) -> Path:
    return db_path.with_name(f"{db_path.name}-session-{session_id}.lock")


if sys.platform == "win32":
    import msvcrt

    def _try_lock(f: IO[bytes]) -> bool:
        try:
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(f: IO[bytes]) -> bool:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


class _SessionLock:
    """An exclusive OS lock on one file: held while a session's writer lives, gone when it dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def try_acquire(self) -> bool:
        f = self.path.open("a+b")
        if not _try_lock(f):
            f.close()
            return False
        self._file = f
        return True

    def release(self, *, remove: bool = True) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the lock
            self._file = None
        if remove:
            with suppress(OSError):  # another process may hold it open (Windows) or have removed it
                self.path.unlink(missing_ok=True)


# -- values ---------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    # A naive datetime is local time (Python's convention); store UTC so text order is time order.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _after(started_at: str, seconds: float) -> str:
    return _iso(datetime.fromisoformat(started_at) + timedelta(seconds=seconds))


def _sql_type(annotation: object) -> str:
    """The column type for a dataclass field's annotation (a string under postponed evaluation)."""
    name = getattr(annotation, "__name__", str(annotation)).split(" | ")[0]
    return {"bool": "INTEGER", "int": "INTEGER", "float": "REAL", "str": "TEXT"}.get(name, "")


def _rowid(cur: sqlite3.Cursor) -> int:
    if cur.lastrowid is None:  # pragma: no cover - an INSERT always sets it
        raise RecordsError("the database returned no id for a new session")
    return cur.lastrowid


def _jsonable(value: object) -> object:
    """Whatever a caller put in a summary or event: data classes, enums, paths, times."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    # Never fail here: finish() runs on every exit path and must still record the status.
    return str(value)


def _dumps(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(dict(value), default=_jsonable)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
