"""The SQLite connection: opening, pragmas, explicit transactions, and error translation."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devicectl.errors import RecordsError

# Writers only ever wait for each other's short batches; never stall the event loop longer.
BUSY_TIMEOUT_S = 2.0


def connect(path: Path) -> sqlite3.Connection:
    # Autocommit mode: every transaction is an explicit BEGIN IMMEDIATE ... COMMIT (transaction()).
    return sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)


def configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA journal_mode = WAL")  # readers (listing, export) never block the writer
    # NORMAL is durable against application crashes in WAL mode (only power loss can drop the
    # newest batches) and spares the event loop an fsync per batch.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    # IMMEDIATE takes the write lock up front: a deferred transaction that later needs to write
    # can fail with SQLITE_BUSY at once, without waiting for the busy timeout.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (busy) leaves the transaction open; some errors end it themselves.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def guard(path: Path, action: str) -> Iterator[None]:
    """Turns SQLite and OS errors into a RecordsError saying what failed, and where."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise RecordsError(f"{action} in {path}: {exc}") from exc
