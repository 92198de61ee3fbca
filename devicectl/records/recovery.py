"""Crash recovery: mark "running" sessions whose writer is gone as interrupted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from devicectl.records.db import transaction
from devicectl.records.locks import SessionLock, lock_path
from devicectl.records.schema import iso_after

_INTERRUPTED_MESSAGE = (
    "found still running when the records were next opened (the process crashed or was killed); "
    "marked interrupted, data up to the last batch kept"
)


def recover(conn: sqlite3.Connection, db_path: Path) -> list[int]:
    """Marks every running session without a live writer interrupted; returns their ids."""
    running = conn.execute("SELECT id FROM sessions WHERE status = 'running'").fetchall()
    recovered = []
    for (session_id,) in running:
        lock = SessionLock(lock_path(db_path, session_id))
        if not lock.try_acquire():
            continue  # its writer is alive (this or another process): leave it running
        try:
            if _mark_interrupted(conn, session_id):
                recovered.append(session_id)
        finally:
            lock.release()
    return recovered


def _mark_interrupted(conn: sqlite3.Connection, session_id: int) -> bool:
    with transaction(conn) as c:
        # Read again under the lock: the writer may have finished between our query and now.
        row = c.execute(
            "SELECT started_at, last_t_s FROM sessions WHERE id = ? AND status = 'running'",
            (session_id,),
        ).fetchone()
        if row is None:
            return False
        started_at, last_t_s = row
        ended_at = None if last_t_s is None else iso_after(started_at, last_t_s)
        c.execute(
            "UPDATE sessions SET status = 'interrupted', ended_at = ? WHERE id = ?",
            (ended_at, session_id),
        )
        c.execute(
            "INSERT INTO events VALUES (?, ?, 'session.interrupted', 'warning', ?, NULL)",
            (session_id, last_t_s or 0.0, _INTERRUPTED_MESSAGE),
        )
    return True
