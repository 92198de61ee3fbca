"""The base the line-based dialect simulators (Imada, Shimpo, Wagner) share.

The clock that starts at the first byte, the fault switches (``DialectFaults``: the same switches
and validation as ``Mark10Faults``), garbled lines, and streamed output through ``due``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from .force_model import ForceModel
from .mark10 import Mark10Faults

__all__ = ["MAX_BACKLOG", "DialectFaults", "DialectState", "LineDevice"]

# The same switches, validated the same way, as the Mark-10 simulator's: one truth for what a
# fault means. ``stuck_value_n`` works here too.
DialectFaults = Mark10Faults

# A streaming device called late (a stalled loop, a fake clock jumped by an hour) sends at most
# this many backlogged lines at once and skips the rest, counting them in ``samples_skipped``.
MAX_BACKLOG = 1000

_EPSILON_S = 1e-9


@dataclass
class DialectState:
    """What a test may inspect; the device updates it as it runs."""

    zero_offset_n: float = 0.0
    started_at: float | None = None  # clock() at the first byte received
    requests_seen: int = 0
    requests_dropped: int = 0
    replies_sent: int = 0  # reply lines, garbled ones included
    garbage_sent: int = 0
    last_force_n: float = 0.0  # the model's raw force at the last reading or tare
    commands: list[str] = field(default_factory=list)  # every request's text, in order
    streaming: bool = False
    stream_rate_hz: float = 10.0
    samples_skipped: int = 0  # streamed samples dropped by the MAX_BACKLOG cap


class LineDevice:
    """The shared state machine of a line-oriented serial gauge; subclasses add the dialect.

    A subclass implements ``_decode`` (bytes → commands as ``(text, command)``), ``_execute``
    (a command → reply lines) and, if it streams, ``_stream_line`` (a sample time → a line).
    """

    def __init__(
        self,
        model: ForceModel,
        *,
        clock: Callable[[], float],
        faults: DialectFaults | None = None,
        seed: int = 0,
        epoch: float | None = None,
    ) -> None:
        self._model = model
        self._clock = clock
        # The clock value the force model counts from; None: the first byte. A device that
        # replaces another (a gauge plugged back) is given the first one's, so the simulated
        # therapist carries on where it was (as simulators.mark10 does).
        self._epoch = epoch
        self._faults = faults or DialectFaults()
        self._random = random.Random(seed)  # only for the bytes of garbled lines
        self._grid_start: float | None = None  # clock() of stream sample 0
        self._index = 0  # the next stream sample to send
        self.state = DialectState()

    @property
    def faults(self) -> DialectFaults:
        return self._faults

    # ------------------------------------------------------------------ ByteDevice

    def receive(self, data: bytes) -> bytes:
        """Bytes in from the host; the reply bytes to send back (maybe empty)."""
        if data and self.state.started_at is None:
            self.state.started_at = self._clock()
        out = bytearray()
        for text, command in self._decode(data):
            self.state.requests_seen += 1
            self.state.commands.append(text)
            if _is_every(self._faults.no_reply_every, self.state.requests_seen):
                self.state.requests_dropped += 1  # lost: not acted on, not answered
                continue
            for line in self._execute(command):
                out += self._reply_line(line)
        return bytes(out)

    def should_disconnect(self) -> bool:
        """True once the disconnect fault's time has passed since the first byte."""
        after = self._faults.disconnect_after_s
        started = self.state.started_at
        return after is not None and started is not None and self._clock() - started >= after

    # ------------------------------------------------------------------ streamed output

    def due(self, now: float | None = None) -> bytes:
        """The streamed lines due by ``now`` (default: the injected clock), or ``b""``.

        A server calls this periodically (and may after each ``receive``); samples fall on a
        fixed grid of 1/rate from the start of streaming, each taken at its own time, so how
        often ``due`` is called changes only the batching, not the data.
        """
        if not self.state.streaming or self._grid_start is None:
            return b""
        now = self._clock() if now is None else now
        period = 1.0 / self.state.stream_rate_hz
        # Sample k is at grid_start + k * period, computed (not accumulated) so that float error
        # never drifts the grid; _EPSILON_S absorbs the rounding of clock arithmetic.
        last = math.floor(
            (now - self._grid_start) / period + _EPSILON_S * self.state.stream_rate_hz
        )
        if last - self._index + 1 > MAX_BACKLOG:
            skipped = last - self._index + 1 - MAX_BACKLOG
            self.state.samples_skipped += skipped
            self._index += skipped
        out = bytearray()
        while self._index <= last:
            line = self._stream_line(self._grid_start + self._index * period)
            if line:
                out += self._reply_line(line)
            self._index += 1
        return bytes(out)

    def _start_stream(self) -> None:
        if not self.state.streaming:
            self.state.streaming = True
            self._restart_grid()

    def _stop_stream(self) -> None:
        self.state.streaming = False
        self._grid_start = None

    def _set_rate(self, rate_hz: float) -> None:
        self.state.stream_rate_hz = rate_hz
        if self.state.streaming:
            self._restart_grid()  # the new rate's grid starts now

    def _restart_grid(self) -> None:
        self._grid_start = self._clock()
        self._index = 0

    # ------------------------------------------------------------------ forces

    def force_n(self, at: float | None = None) -> float:
        """The model's raw force at clock time ``at`` (default now), before zeroing and faults."""
        started = self.state.started_at if self._epoch is None else self._epoch
        now = self._clock() if at is None else at
        elapsed = 0.0 if started is None else now - started
        return self._model.force_at(elapsed)

    def _reading_n(self, at: float | None = None) -> float:
        """The force a reading reports: the model minus the tare, or the stuck value."""
        stuck = self._faults.stuck_value_n
        if stuck is not None:
            return stuck  # a stuck sensor's output is frozen, so taring does not move it
        self.state.last_force_n = self.force_n(at)
        return self.state.last_force_n - self.state.zero_offset_n

    def _tare(self) -> None:
        self.state.last_force_n = self.force_n()
        self.state.zero_offset_n = self.state.last_force_n

    # ------------------------------------------------------------------ lines and faults

    def _reply_line(self, line: bytes) -> bytes:
        if not line:
            return b""
        self.state.replies_sent += 1
        if _is_every(self._faults.garbage_every, self.state.replies_sent):
            self.state.garbage_sent += 1
            # High-bit bytes never form a valid ASCII line, so a host must count them.
            length = self._random.randint(3, 12)
            noise = bytes(self._random.randint(0x80, 0xFF) for _ in range(length))
            return noise + self._terminator()
        return line

    # ------------------------------------------------------------------ the dialect

    def _decode(self, data: bytes) -> list[tuple[str, object]]:
        raise NotImplementedError

    def _execute(self, command: object) -> list[bytes]:
        raise NotImplementedError

    def _stream_line(self, at: float) -> bytes:
        raise NotImplementedError

    def _terminator(self) -> bytes:
        return b"\r\n"


def _is_every(every: int | None, count: int) -> bool:
    return every is not None and count % every == 0
