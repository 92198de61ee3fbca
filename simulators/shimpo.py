"""A simulated Shimpo FGV-X gauge, sans-I/O: bytes from the host in, reply bytes out, plus a stream.

It uses the device side of ``protocols.shimpo``. Every documented command is echoed as its
acknowledgement (device-protocols.md §2.3), then acted on:

==============  ====================================================================
``AA``          tare: the offset becomes the current force
``AB``          stop output (ends continuous output)
``AC`` / ``AD`` peak / average mode (recorded in ``mode``; readings stay real-time [G])
``AE``          peak reset (nothing else to do here)
``AF``/``AG``/``AH``  units kg / N / lb
``BA``          the echo, then one data line
``BB``          the echo, then continuous data lines from ``due(now)`` until ``AB`` [G]
anything else   nothing (the error symbol is undocumented)
==============  ====================================================================

Unverified, all [G]: the data line's layout (``NA<number> <unit>``), the CR LF line ending, that
``BA``'s data follows its echo, what ``BB`` does past its name (the manual text is truncated),
the stream rate (``rate_hz``), and the sign (compression positive as the force model gives it).
"""

from __future__ import annotations

from collections.abc import Callable

from protocols.shimpo import (
    Command,
    RequestDecoder,
    ShimpoUnit,
    UnknownCommand,
    encode_echo,
    encode_reading,
)

from .force_model import ForceModel
from .line_device import DialectFaults, LineDevice

__all__ = ["ShimpoDevice"]

_UNITS: dict[Command, ShimpoUnit] = {
    Command.UNITS_KG: ShimpoUnit.KGF,
    Command.UNITS_N: ShimpoUnit.N,
    Command.UNITS_LB: ShimpoUnit.LBF,
}


class ShimpoDevice(LineDevice):
    """The Shimpo state machine; serve it with ``simulators.serve`` and call ``due``."""

    def __init__(
        self,
        model: ForceModel,
        *,
        clock: Callable[[], float],
        faults: DialectFaults | None = None,
        unit: ShimpoUnit = ShimpoUnit.N,
        decimals: int = 2,
        rate_hz: float = 10.0,
        seed: int = 0,
        epoch: float | None = None,
    ) -> None:
        super().__init__(model, clock=clock, faults=faults, seed=seed, epoch=epoch)
        if not 0 < rate_hz <= 1000:
            raise ValueError(f"rate_hz must be in (0, 1000] samples/s, not {rate_hz!r}")
        self.unit = unit
        self.mode = "real-time"  # [G] the mode at power-on is undocumented
        self._decimals = decimals
        self._decoder = RequestDecoder()
        self.state.stream_rate_hz = rate_hz

    def _decode(self, data: bytes) -> list[tuple[str, object]]:
        return [(_text(c), c) for c in self._decoder.feed(data)]

    def _execute(self, command: object) -> list[bytes]:
        if not isinstance(command, Command):
            return []
        lines = [encode_echo(command)]
        if command is Command.TARE:
            self._tare()
        elif command is Command.STOP_OUTPUT:
            self._stop_stream()
        elif command in (Command.PEAK_MODE, Command.AVERAGE_MODE):
            self.mode = "peak" if command is Command.PEAK_MODE else "average"
        elif command in _UNITS:
            self.unit = _UNITS[command]
        elif command is Command.SINGLE_OUTPUT:
            lines.append(self._stream_line(None))
        elif command is Command.CONTINUOUS_OUTPUT:
            self._start_stream()
        return lines

    def _stream_line(self, at: float | None) -> bytes:
        force_n = self._reading_n(at)
        return encode_reading(force_n / self.unit.newtons, self.unit, decimals=self._decimals)


def _text(command: Command | UnknownCommand) -> str:
    return command.text if isinstance(command, UnknownCommand) else command.value
