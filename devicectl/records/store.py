"""The session database: :class:`Records` opens it, recovers crashed sessions, starts writers."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

import platformdirs

from devicectl.errors import RecordsError
from devicectl.records.db import configure, connect, guard, transaction
from devicectl.records.locks import SessionLock, lock_path
from devicectl.records.reads import DeviceRecord, RecordsReader
from devicectl.records.recovery import recover
from devicectl.records.schema import INSERT_DEVICE, INSERT_HOLD, ensure_schema, iso
from devicectl.records.writer import Batch, SessionWriter


def default_db_path() -> Path:
    return platformdirs.user_data_path("devicectl") / "sessions.db"


class Records(RecordsReader):
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
            conn = connect(path)
        except (OSError, sqlite3.Error) as exc:
            raise RecordsError(f"cannot open session records {path}: {exc}") from exc
        records = cls(conn, path)
        try:
            configure(conn)
            ensure_schema(conn, path)
            records.recovered = recover(conn, path)
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

    def begin(
        self,
        *,
        plan_name: str,
        plan_source: str,
        plan_text: str,
        devices: Sequence[DeviceRecord],
        started_at: datetime | None = None,
    ) -> SessionWriter:
        started = iso(started_at or datetime.now(UTC))
        with guard(self.path, "cannot start a session record"):
            session_id, lock = self._insert_session(
                (plan_name, plan_source, plan_text, started), devices
            )
        writer = SessionWriter(self, session_id, lock)
        self._writers.append(writer)
        return writer

    def _insert_session(
        self, session: tuple[str, str, str, str], devices: Sequence[DeviceRecord]
    ) -> tuple[int, SessionLock]:
        lock: SessionLock | None = None
        try:
            with transaction(self._conn) as c:
                cur = c.execute(
                    "INSERT INTO sessions (plan_name, plan_source, plan_text, started_at, status)"
                    " VALUES (?, ?, ?, ?, 'running')",
                    session,
                )
                session_id = _rowid(cur)
                c.executemany(
                    INSERT_DEVICE,
                    [
                        (session_id, i, d.role, d.address, d.model, d.serial, d.firmware,
                         d.simulated, d.calibration)
                        for i, d in enumerate(devices)
                    ],
                )  # fmt: skip
                # Lock before COMMIT: once other processes can see the "running" row, they must
                # also see that its writer is alive.
                lock = SessionLock(lock_path(self.path, session_id))
                if not lock.try_acquire():
                    raise RecordsError(f"cannot lock {lock.path} for session {session_id}")
                return session_id, lock
        except BaseException:
            if lock is not None:
                # Keep the file: once rolled back, this id may already be another writer's.
                lock.release(remove=False)
            raise

    def _write_batch(self, batch: Batch, session_id: int) -> None:
        with guard(self.path, f"cannot write session {session_id}"), transaction(self._conn) as c:
            c.executemany("INSERT INTO samples VALUES (?, ?, ?, ?)", batch.samples)
            c.executemany("INSERT INTO phases VALUES (?, ?, ?, ?, ?)", batch.phases)
            c.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", batch.events)
            c.executemany(INSERT_HOLD, batch.holds)
            c.execute(
                "UPDATE sessions SET n_samples = n_samples + ?, n_holds = n_holds + ?,"
                " last_t_s = max(coalesce(last_t_s, ?), ?) WHERE id = ?",
                (len(batch.samples), len(batch.holds), batch.max_t, batch.max_t, session_id),
            )

    def _end(self, session_id: int, status: str, ended_at: str, summary: str | None) -> None:
        with guard(self.path, f"cannot finish session {session_id}"), transaction(self._conn) as c:
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


def _rowid(cur: sqlite3.Cursor) -> int:
    if cur.lastrowid is None:  # pragma: no cover - an INSERT always sets it
        raise RecordsError("the database returned no id for a new session")
    return cur.lastrowid
