"""Imada force/torque gauges (DS2 / ZT / HTG2): a sans-I/O codec for both ends of the serial line.

Wire facts (shared/reference/device-protocols.md §2.2; two independent open-source drivers,
``sktometometo/imada_forcegauge:scripts/forcegauge.py`` for a DS2-500N and ``stumelius/cranio``
for an HTG2-4):

* Port: 19200 baud, 8N1.
* Host → gauge: ``D`` CR requests the displayed value. It is the only command documented.
* Gauge → host: an ASCII number, then **3 status characters (unit, mode, condition)**, then CR.
  Both drivers take the last 3 characters before the CR as the status and the rest as the number.

Not documented publicly, so NOT implemented (device-protocols.md §2.2 marks them [G]): zero,
unit selection, continuous output, and what each status character's letters mean. Hence:

* ``Reading`` keeps the three status characters raw; nothing here interprets them.
* ``Reading.newtons`` takes the unit from the caller (the unit the gauge is set to), because the
  meaning of the unit character is unverified.
* The sign of a reading is passed through as printed; which direction is negative is unverified.

The host decoder never raises on line noise; it counts and skips garbage instead.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum

from protocols.lines import LineDecoder
from protocols.units import KGF_N, LBF_N

__all__ = [
    "BAUD",
    "MAX_LINE",
    "ImadaUnit",
    "Reading",
    "ReplyDecoder",
    "Request",
    "RequestDecoder",
    "UnknownCommand",
    "encode_reading",
    "encode_request",
]

BAUD = 19200  # 8N1; device-protocols.md §2.2 [P]

# The longest line either side buffers. Real replies are ~10 bytes (the DS2 driver reads 10); the
# cap keeps a stream of unterminated noise (wrong baud, a floating line) from growing memory.
MAX_LINE = 64

_STATUS_LEN = 3


class ImadaUnit(StrEnum):
    """A force unit the caller says the gauge is set to (the gauge's own unit letters are
    undocumented, so they are never mapped to these)."""

    N = "N"
    KGF = "kgf"
    GF = "gf"
    LBF = "lbf"
    OZF = "ozf"

    @property
    def newtons(self) -> float:
        """How many newtons one of this unit is."""
        return _NEWTONS[self]


_NEWTONS: dict[ImadaUnit, float] = {
    ImadaUnit.N: 1.0,
    ImadaUnit.KGF: KGF_N,
    ImadaUnit.GF: KGF_N / 1000,
    ImadaUnit.LBF: LBF_N,
    ImadaUnit.OZF: LBF_N / 16,
}


# --------------------------------------------------------------------------- requests


class Request(StrEnum):
    """A host → gauge command. ``D`` is the only one documented publicly."""

    READ_DISPLAYED = "D"


@dataclass(frozen=True)
class UnknownCommand:
    """A terminated command the device side does not implement."""

    text: str


def encode_request(request: Request = Request.READ_DISPLAYED) -> bytes:
    """The bytes a host sends: ``b"D\\r"``."""
    return request.value.encode("ascii") + b"\r"


class RequestDecoder:
    """Device side: bytes from the host in, commands out.

    CR ends a command; an LF is ignored. Matching is exact (the drivers send upper-case ``D``;
    whether a gauge accepts ``d`` is unverified, so the simulator does not).
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buffer = bytearray()
        self._max_line = max_line

    def feed(self, data: bytes) -> list[Request | UnknownCommand]:
        commands: list[Request | UnknownCommand] = []
        for byte in data:
            if byte == 0x0D:
                text = self._buffer.decode("ascii", errors="replace").strip()
                self._buffer.clear()
                if text:  # a bare CR is harmless line noise, not a command
                    commands.append(_request_for(text))
            elif byte != 0x0A and len(self._buffer) < self._max_line:
                self._buffer.append(byte)
        return commands


def _request_for(text: str) -> Request | UnknownCommand:
    try:
        return Request(text)
    except ValueError:
        return UnknownCommand(text)


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Reading:
    """A displayed value and the three status characters exactly as the gauge sent them.

    ``raw`` keeps the whole line (not compared).
    """

    value: float
    unit_char: str
    mode_char: str
    condition_char: str
    raw: str = field(default="", compare=False, repr=False)

    @property
    def status(self) -> str:
        """The three status characters, unit + mode + condition."""
        return self.unit_char + self.mode_char + self.condition_char

    def newtons(self, unit: ImadaUnit) -> float:
        """The force in newtons, given the unit the gauge is set to (see the module notes)."""
        return self.value * unit.newtons


# A plain decimal; exponents, "nan", "inf" and "1_000" are not.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")


def _parse_reading(line: bytes) -> Reading | None:
    """A Reading, or None when the line is not ``<number><3 status chars>``."""
    if any(b < 0x20 or b > 0x7E for b in line) or len(line) <= _STATUS_LEN:
        return None
    text = line.decode("ascii")
    # As both drivers do: the last 3 characters are the status, the rest is the number. A
    # space between the two is tolerated (the DS2 driver's float() would accept it).
    number, status = text[:-_STATUS_LEN].strip(), text[-_STATUS_LEN:]
    if not _NUMBER.fullmatch(number):
        return None
    value = float(number)
    if not math.isfinite(value):
        return None
    return Reading(value, status[0], status[1], status[2], text)


class ReplyDecoder(LineDecoder[Reading]):
    """Host side: bytes from the gauge in, readings out, for any chunking of the stream.

    The gauge ends a line with CR; an LF also ends a line (so CR LF works) and empty lines are
    ignored. Any line that is not ``<number><3 printable status chars>`` (control or non-ASCII
    bytes, no number, too short, over ``max_line`` bytes) is skipped and counted in ``garbage``;
    every reading counts in ``lines``. ``feed`` never raises.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        super().__init__(max_line)

    def parse(self, line: bytes) -> Reading | None:
        return _parse_reading(line)


# --------------------------------------------------------------------------- device-side encoder


def encode_reading(value: float, status: str, decimals: int = 2) -> bytes:
    """A reply line: the number, the 3 status characters, CR, e.g. ``b"12.50NXY\\r"``.

    The number's width and padding on a real gauge are unverified; this prints it plainly.
    """
    if not math.isfinite(value):
        raise ValueError(f"a gauge never prints a non-finite value: {value!r}")
    if decimals < 0:
        raise ValueError(f"decimals must be >= 0, not {decimals}")
    if len(status) != _STATUS_LEN or not all(0x20 <= ord(c) <= 0x7E for c in status):
        raise ValueError(f"status must be 3 printable ASCII characters: {status!r}")
    number = f"{value:.{decimals}f}"
    if number.startswith("-") and float(number) == 0:
        number = number[1:]  # no "-0.00"
    return (number + status).encode("ascii") + b"\r"
