"""The batched writer: one per session, buffering its data into short transactions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from devicectl.dose import HoldDose
from devicectl.errors import RecordsError
from devicectl.records.jsonio import dumps
from devicectl.records.locks import SessionLock
from devicectl.records.schema import FINAL_STATUSES, HOLD_FIELDS, iso

if TYPE_CHECKING:
    from devicectl.records.store import Records


@dataclass
class Batch:
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

    def __init__(self, records: Records, session_id: int, lock: SessionLock) -> None:
        self._records = records
        self.session_id = session_id
        self._lock = lock
        self._batch = Batch()
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
        row = (self.session_id, t_s, str(kind), str(severity), message, dumps(data))
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
        self._batch = Batch()

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
        ended = iso(ended_at or datetime.now(UTC))
        self._records._end(self.session_id, str(status), ended, dumps(summary))
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
