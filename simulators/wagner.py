"""A simulated Wagner FDIX / Force Ten gauge, sans-I/O: bytes in, reply bytes out, plus a stream.

It uses the device side of ``protocols.wagner``. What it does (device-protocols.md §2.4):

=================  ================================================================
``C.5`` … ``C100``  set the stream rate (does not start it); no reply
``CA`` / ``CX``     stream all points / only points above 2 % of ``capacity_n``; no reply
``CB`` / ``CE``     begin / end continuous output; no reply
``F``               one record now (the UNC polling fallback), streaming or not
anything else       nothing
=================  ================================================================

Because ``receive`` only answers requests, streamed records come from ``due(now)``: after ``CB``
a server must call it periodically (see ``LineDevice.due`` and docs/protocols/serial-dialects.md).

Unverified choices, all settable: no command is acknowledged (none is documented); the rate
before any ``C`` command (``rate_hz``, default 10/s); ``CA`` is the default filter; ``F`` answers
one record; a force beyond ``capacity_n`` prints ``HELP``; peak mode (``peak=True``) only appends
``Peak`` and does not hold the peak; ``power_cycle()`` forgets ``CB`` as the UNC notes report.
"""

from __future__ import annotations

from collections.abc import Callable

from protocols.units import LBF_N
from protocols.wagner import (
    RATES_HZ,
    Request,
    RequestDecoder,
    SetRate,
    UnknownCommand,
    WagnerUnit,
    encode_overload,
    encode_reading,
)

from .force_model import ForceModel
from .line_device import DialectFaults, LineDevice

__all__ = ["WagnerDevice"]

_THRESHOLD_SHARE = 0.02  # CX: "only points above 2 % of full scale"


class WagnerDevice(LineDevice):
    """The Wagner state machine; serve it with ``simulators.serve`` and call ``due``."""

    def __init__(
        self,
        model: ForceModel,
        *,
        clock: Callable[[], float],
        faults: DialectFaults | None = None,
        unit: WagnerUnit = WagnerUnit.LBF,
        capacity_n: float = 100 * LBF_N,  # a 100 lbF gauge
        decimals: int = 2,
        rate_hz: float = 10.0,
        peak: bool = False,
        seed: int = 0,
        epoch: float | None = None,
    ) -> None:
        super().__init__(model, clock=clock, faults=faults, seed=seed, epoch=epoch)
        if rate_hz not in RATES_HZ:
            raise ValueError(f"rate_hz must be one of {sorted(RATES_HZ)}, not {rate_hz!r}")
        if not capacity_n > 0:
            raise ValueError(f"capacity_n must be > 0 N, not {capacity_n!r}")
        encode_reading(capacity_n / unit.newtons, unit, decimals=decimals)  # fits 5 digits?
        self.unit = unit
        self.capacity_n = capacity_n
        self.peak = peak
        self.above_threshold_only = False
        self._decimals = decimals
        self._decoder = RequestDecoder()
        self.state.stream_rate_hz = rate_hz

    def power_cycle(self) -> None:
        """The gauge restarts: streaming stops and must be begun again (UNC notes, [S])."""
        self._stop_stream()

    def _decode(self, data: bytes) -> list[tuple[str, object]]:
        return [(_text(c), c) for c in self._decoder.feed(data)]

    def _execute(self, command: object) -> list[bytes]:
        if isinstance(command, SetRate):
            self._set_rate(command.rate_hz)
        elif command is Request.ALL_POINTS:
            self.above_threshold_only = False
        elif command is Request.ABOVE_2_PERCENT:
            self.above_threshold_only = True
        elif command is Request.BEGIN:
            self._start_stream()
        elif command is Request.END:
            self._stop_stream()
        elif command is Request.POLL:
            return [self._record(None)]
        return []

    def _stream_line(self, at: float) -> bytes:
        force_n = self._reading_n(at)
        if self.above_threshold_only and abs(force_n) <= _THRESHOLD_SHARE * self.capacity_n:
            return b""
        return self._encode(force_n)

    def _record(self, at: float | None) -> bytes:
        return self._encode(self._reading_n(at))

    def _encode(self, force_n: float) -> bytes:
        if abs(force_n) > self.capacity_n:
            return encode_overload(force_n < 0, self.unit, peak=self.peak)
        return encode_reading(
            force_n / self.unit.newtons, self.unit, decimals=self._decimals, peak=self.peak
        )


def _text(command: Request | SetRate | UnknownCommand) -> str:
    if isinstance(command, SetRate):
        return command.command
    if isinstance(command, UnknownCommand):
        return command.text
    return command.value
