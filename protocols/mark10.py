"""Mark-10 Gauge Control Language 2 (GCL2): a sans-I/O codec for both ends of the serial line.

Wire facts (shared/reference/device-protocols.md §2.1, Mark-10 Series 4 manual §9.1.3-9.1.4 and
Series 5 manual §9.8):

* Host → gauge: ASCII command terminated by CR; an LF after it is ignored.
* Gauge → host: ``<value> <unit>`` CR LF, e.g. ``-18.78 lbF`` (tension) or ``4.285 N``
  (compression); the unit is present only when enabled in the gauge's data-format menu.
* Errors: ``*10`` illegal command, ``*11`` not applicable, ``*12`` invalid specifier,
  ``*22`` value too large.

Sign convention: compression positive, tension negative (as the gauge prints it with default
polarity). The host decoder never raises on line noise; it counts and skips garbage instead.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum

from protocols.lines import LineDecoder
from protocols.units import KGF_N, LBF_N

__all__ = [
    "ERROR_TEXTS",
    "MAX_LINE",
    "ErrorReply",
    "Mark10Unit",
    "Reading",
    "Reply",
    "ReplyDecoder",
    "Request",
    "RequestDecoder",
    "SetUnit",
    "TextReply",
    "UnknownCommand",
    "encode_error",
    "encode_reading",
    "encode_request",
    "encode_text",
    "parse_unit",
]


# The longest line either side buffers. Real replies are ~12 bytes; the cap keeps a stream of
# unterminated noise (wrong baud, a floating line) from growing memory.
MAX_LINE = 64


class Mark10Unit(StrEnum):
    """A force unit, spelt as the gauge prints it in replies."""

    LBF = "lbF"
    OZF = "ozF"
    KGF = "kgF"
    GF = "gF"
    N = "N"
    MN = "mN"
    KN = "kN"

    @property
    def newtons(self) -> float:
        """How many newtons one of this unit is."""
        return _NEWTONS[self]

    @property
    def command(self) -> str:
        """The GCL2 command that selects this unit."""
        return _COMMANDS[self]


_NEWTONS: dict[Mark10Unit, float] = {
    Mark10Unit.LBF: LBF_N,
    Mark10Unit.OZF: LBF_N / 16,
    Mark10Unit.KGF: KGF_N,
    Mark10Unit.GF: KGF_N / 1000,
    Mark10Unit.N: 1.0,
    Mark10Unit.MN: 1e-3,
    Mark10Unit.KN: 1e3,
}

# Unit commands from the Omega DFG55 GCL2 list (device-protocols.md §2.1).
_COMMANDS: dict[Mark10Unit, str] = {
    Mark10Unit.LBF: "LB",
    Mark10Unit.OZF: "OZ",
    Mark10Unit.KGF: "KG",
    Mark10Unit.GF: "G",
    Mark10Unit.N: "N",
    Mark10Unit.MN: "MN",
    Mark10Unit.KN: "KN",
}

# Reply spellings and command spellings never collide once case is folded, so one table
# serves both ("MN" the command and "mN" the reply are the same unit).
_UNIT_BY_FOLDED: dict[str, Mark10Unit] = {u.value.casefold(): u for u in Mark10Unit} | {
    c.casefold(): u for u, c in _COMMANDS.items()
}


def parse_unit(text: str) -> Mark10Unit:
    """The unit for a reply spelling ("lbF", "LBF", "lbf") or a command spelling ("LB")."""
    try:
        return _UNIT_BY_FOLDED[text.strip().casefold()]
    except KeyError:
        raise ValueError(f"not a Mark-10 unit: {text!r}") from None


# --------------------------------------------------------------------------- requests


class Request(StrEnum):
    """A host → gauge command without arguments."""

    READ_DISPLAYED = "?"
    READ_CURRENT = "?C"
    ZERO = "Z"
    MODEL = "RM"
    FIRMWARE = "RV"
    SERIAL = "RS"


@dataclass(frozen=True)
class SetUnit:
    """Select the gauge's unit (it then replies in that unit)."""

    unit: Mark10Unit


@dataclass(frozen=True)
class UnknownCommand:
    """A terminated command the device side does not implement (it answers ``*10``)."""

    text: str


def encode_request(request: Request | SetUnit) -> bytes:
    """The bytes a host sends: the command and a CR."""
    text = request.unit.command if isinstance(request, SetUnit) else request.value
    return text.encode("ascii") + b"\r"


_REQUEST_BY_TEXT: dict[str, Request | SetUnit] = {r.value: r for r in Request} | {
    u.command: SetUnit(u) for u in Mark10Unit
}


class RequestDecoder:
    """Device side: bytes from the host in, commands out. Commands are case-insensitive."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buffer = bytearray()
        self._max_line = max_line

    def feed(self, data: bytes) -> list[Request | SetUnit | UnknownCommand]:
        commands: list[Request | SetUnit | UnknownCommand] = []
        for byte in data:
            if byte == 0x0D:
                command = self._take()
                if command is not None:
                    commands.append(command)
            elif byte != 0x0A and len(self._buffer) < self._max_line:
                # Past the cap the rest of the command is dropped; it still ends as *10.
                self._buffer.append(byte)
        return commands

    def _take(self) -> Request | SetUnit | UnknownCommand | None:
        text = self._buffer.decode("ascii", errors="replace").strip()
        self._buffer.clear()
        if not text:
            return None  # a bare CR is harmless line noise, not a command
        return _REQUEST_BY_TEXT.get(text.upper(), UnknownCommand(text))


# --------------------------------------------------------------------------- replies

ERROR_TEXTS: dict[int, str] = {
    10: "illegal command",
    11: "not applicable",
    12: "invalid specifier",
    22: "value too large",
}


@dataclass(frozen=True)
class Reading:
    """A force reading as the gauge printed it; ``unit`` is None when unit output is disabled.

    ``raw`` keeps the line as received (not compared) so that a caller who asked for text, such
    as the firmware version ``1.04``, can recover it from what parses as a bare number.
    """

    value: float
    unit: Mark10Unit | None
    raw: str = field(default="", compare=False, repr=False)

    def newtons(self, default_unit: Mark10Unit) -> float:
        """The force in newtons, using ``default_unit`` when the gauge printed none."""
        return self.value * (self.unit or default_unit).newtons


@dataclass(frozen=True)
class ErrorReply:
    """A ``*NN`` error line."""

    code: int

    @property
    def text(self) -> str:
        return ERROR_TEXTS.get(self.code, f"unknown error {self.code}")


@dataclass(frozen=True)
class TextReply:
    """Any other printable line, e.g. the reply to RM / RV / RS."""

    text: str


Reply = Reading | ErrorReply | TextReply

# A plain decimal as the gauge prints it; exponents, "nan", "inf" and "1_000" are not.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_ERROR = re.compile(r"\*(\d{1,3})")


class _Garbage(Exception):
    """A line that must be skipped and counted; never escapes this module."""


def _parse_reply(line: bytes) -> Reply:
    if any(b < 0x20 or b > 0x7E for b in line):
        raise _Garbage
    text = line.decode("ascii")
    stripped = text.strip()
    if not stripped:
        raise _Garbage
    if stripped.startswith("*"):
        return _parse_error(stripped)
    return _parse_reading(stripped, text) or TextReply(stripped)


def _parse_error(text: str) -> ErrorReply:
    match = _ERROR.fullmatch(text)
    if match is None:
        raise _Garbage
    return ErrorReply(int(match.group(1)))


def _parse_reading(stripped: str, raw: str) -> Reading | None:
    """A Reading, None when the line is text, or _Garbage for a non-finite number."""
    parts = stripped.split()
    if len(parts) > 2:
        return None
    if _NON_FINITE.fullmatch(parts[0]):
        raise _Garbage
    if not _NUMBER.fullmatch(parts[0]):
        return None
    value = float(parts[0])
    if not math.isfinite(value):
        raise _Garbage
    if len(parts) == 1:
        return Reading(value, None, raw)
    try:
        return Reading(value, parse_unit(parts[1]), raw)
    except ValueError:
        return None  # "1.04 beta" is text, not a reading in an unknown unit


class ReplyDecoder(LineDecoder[Reply]):
    """Host side: bytes from the gauge in, replies out, for any chunking of the stream.

    Lines end with CR LF; a lone CR or LF also ends a line, so the empty line between them is
    ignored. Lines with control or non-ASCII bytes, over-long lines, malformed ``*`` errors and
    non-finite numbers are skipped and counted in ``garbage``; every other line counts in
    ``lines``.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        super().__init__(max_line)

    def parse(self, line: bytes) -> Reply | None:
        try:
            return _parse_reply(line)
        except _Garbage:
            return None


# --------------------------------------------------------------------------- device-side encoders


def _format_value(value: float, decimals: int) -> str:
    if not math.isfinite(value):
        raise ValueError(f"a gauge never prints a non-finite value: {value!r}")
    if decimals < 0:
        raise ValueError(f"decimals must be >= 0, not {decimals}")
    text = f"{value:.{decimals}f}"
    # Rounding a tiny tension to zero must not print "-0.00": the gauge shows no sign at zero.
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def encode_reading(value: float, unit: Mark10Unit | None, decimals: int = 2) -> bytes:
    """A reading line: ``b"-18.78 lbF\\r\\n"``, or ``b"4.29\\r\\n"`` with unit output disabled."""
    number = _format_value(value, decimals)
    text = number if unit is None else f"{number} {unit.value}"
    return text.encode("ascii") + b"\r\n"


def encode_error(code: int) -> bytes:
    """An error line, ``b"*10\\r\\n"``."""
    if not 0 <= code <= 999:
        raise ValueError(f"error code out of range: {code}")
    return f"*{code}\r\n".encode("ascii")


def encode_text(text: str) -> bytes:
    """A text line such as the reply to RM, ``b"M5-100\\r\\n"``."""
    if not text or not all(0x20 <= ord(c) <= 0x7E for c in text):
        raise ValueError(f"a reply line must be non-empty printable ASCII: {text!r}")
    return text.encode("ascii") + b"\r\n"
