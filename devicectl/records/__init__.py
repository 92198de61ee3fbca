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

Modules: :mod:`.schema` (tables, version, hold columns), :mod:`.db` (connection, transactions),
:mod:`.locks` (the per-session OS lock), :mod:`.recovery` (crashed sessions), :mod:`.writer`
(batching), :mod:`.reads` (listing and reading back), :mod:`.store` (:class:`Records`),
:mod:`.jsonio` (JSON columns).
"""

from devicectl.records.db import BUSY_TIMEOUT_S
from devicectl.records.reads import DeviceRecord, SessionSummary
from devicectl.records.schema import (
    DEVICE_FIELDS,
    FINAL_STATUSES,
    HOLD_FIELDS,
    SCHEMA_VERSION,
    STATUSES,
)
from devicectl.records.store import Records, default_db_path
from devicectl.records.writer import SessionWriter

__all__ = [
    "BUSY_TIMEOUT_S",
    "DEVICE_FIELDS",
    "FINAL_STATUSES",
    "HOLD_FIELDS",
    "SCHEMA_VERSION",
    "STATUSES",
    "DeviceRecord",
    "Records",
    "SessionSummary",
    "SessionWriter",
    "default_db_path",
]
