"""A simulated Imada gauge (DS2 / ZT / HTG2), sans-I/O: bytes from the host in, reply bytes out.

It uses the device side of ``protocols.imada``. What it answers (device-protocols.md §2.2):

==============  ====================================================================
``D``           the model's force now: ``<number><3 status chars>`` CR
anything else   nothing (how a real gauge answers an unknown command is unverified)
==============  ====================================================================

Unverified choices, all settable: the three status characters (default ``"???"``, placeholders
on purpose: the gauge's letters are undocumented), the unit the number is printed in (``unit``,
default newtons; the gauge's unit is set on its keypad), the number of decimals, and the sign
convention (compression positive, tension negative, as the force model and Mark-10 use).
There is no zero, unit or continuous command, because none is documented.
"""

from __future__ import annotations

from collections.abc import Callable

from protocols.imada import ImadaUnit, Request, RequestDecoder, UnknownCommand, encode_reading

from .force_model import ForceModel
from .line_device import DialectFaults, LineDevice

__all__ = ["ImadaDevice"]


class ImadaDevice(LineDevice):
    """The Imada state machine; serve it with ``simulators.serve``."""

    def __init__(
        self,
        model: ForceModel,
        *,
        clock: Callable[[], float],
        faults: DialectFaults | None = None,
        status: str = "???",
        unit: ImadaUnit = ImadaUnit.N,
        decimals: int = 2,
        seed: int = 0,
        epoch: float | None = None,
    ) -> None:
        super().__init__(model, clock=clock, faults=faults, seed=seed, epoch=epoch)
        encode_reading(0.0, status, decimals)  # fail here on a bad status, not mid-session
        self._status = status
        self.unit = unit  # the unit the gauge is set to; its status letter stays ``status``
        self._decimals = decimals
        self._decoder = RequestDecoder()

    def _decode(self, data: bytes) -> list[tuple[str, object]]:
        return [(_text(c), c) for c in self._decoder.feed(data)]

    def _execute(self, command: object) -> list[bytes]:
        if command is Request.READ_DISPLAYED:
            value = self._reading_n() / self.unit.newtons
            return [encode_reading(value, self._status, self._decimals)]
        return []  # unverified: the reply to an unknown command is undocumented

    def _terminator(self) -> bytes:
        return b"\r"  # the gauge ends its lines with CR (§2.2)


def _text(command: Request | UnknownCommand) -> str:
    return command.text if isinstance(command, UnknownCommand) else command.value
