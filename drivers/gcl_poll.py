"""The parts of polling a GCL2 gauge that need no I/O: pacing against deadlines, and judging
the link's health from what each poll got back."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from drivers.errors import DeviceError, DeviceFault, DeviceTimeout
from drivers.force import LinkStats
from protocols.mark10 import ErrorReply

__all__ = ["BAUD_HINT", "Pacer", "PollHealth"]

BAUD_HINT = (
    "check the baud rate (the gauge's Serial/USB setting; 115200 is usual over USB) and the cable"
)


class Pacer:
    """Poll times on a fixed grid ``start + k / rate_hz``, so the rate does not drift.

    A poll that overruns its slot skips the slots it missed rather than bursting to catch up.
    """

    def __init__(self, rate_hz: float, start: float) -> None:
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be a positive number, not {rate_hz!r}")
        self.period_s = 1.0 / rate_hz
        self._next = start

    def delay_after(self, now: float) -> float:
        """Seconds from ``now`` to the next slot (0 if it is already due), advancing the grid."""
        self._next += self.period_s
        if self._next < now:
            behind = math.ceil((now - self._next) / self.period_s)
            self._next += behind * self.period_s
        return max(0.0, self._next - now)


@dataclass
class _Counts:
    requests: int = 0
    readings: int = 0
    missed: int = 0
    garbage: int = 0
    errors: int = 0
    dropped: int = 0


class PollHealth:
    """Counts what polls got back and says when the link has gone bad.

    Bad means no valid reading for ``limit_s``. If every reply in that time was a device error,
    the device is at fault (:class:`DeviceFault`); otherwise it is not answering sensibly
    (:class:`DeviceTimeout`: silent, or garbage as at a wrong baud rate).
    """

    def __init__(self, device: str, limit_s: float, start: float) -> None:
        if not (math.isfinite(limit_s) and limit_s > 0):
            raise ValueError(f"no_reply_limit_s must be a positive number, not {limit_s!r}")
        self._device = device
        self._limit_s = limit_s
        self._counts = _Counts()
        self._last_reading_t = start
        self._last_error: ErrorReply | None = None
        self._only_errors = True  # since the last reading

    @property
    def stats(self) -> LinkStats:
        return LinkStats(**asdict(self._counts))

    def request(self) -> None:
        self._counts.requests += 1

    def reading(self, t: float) -> None:
        self._counts.readings += 1
        self._last_reading_t = t
        self._last_error, self._only_errors = None, True

    def missed(self) -> None:
        self._counts.missed += 1
        self._only_errors = False

    def garbage(self) -> None:
        self._counts.garbage += 1
        self._only_errors = False

    def error(self, reply: ErrorReply) -> None:
        self._counts.errors += 1
        self._last_error = reply

    def dropped(self) -> None:
        self._counts.dropped += 1

    def failure(self, now: float) -> DeviceError | None:
        """The error to raise if no valid reading came for the limit, else None."""
        if now - self._last_reading_t < self._limit_s:
            return None
        error = self._last_error
        if error is not None and self._only_errors:
            message = (
                f"every reply for {self._limit_s:g} s was an error: *{error.code} {error.text}"
            )
            return DeviceFault(self._device, message, code=f"*{error.code}")
        message = f"no valid replies within {self._limit_s:g} s"
        return DeviceTimeout(self._device, message, hint=BAUD_HINT)
