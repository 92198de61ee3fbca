"""Shimpo FGV-X / FGE-X force gauges: a sans-I/O codec for both ends of the serial line.

Wire facts (shared/reference/device-protocols.md §2.3, Shimpo FGV-X user manual p.4) [P]:

* Port: 2400 / 4800 / 9600 / 19200 bps selectable, 8N1.
* Host → gauge: two letters + CR: ``AA`` tare, ``AB`` stop output, ``AC`` peak mode, ``AD``
  average mode, ``AE`` peak reset, ``AF`` units kg (g), ``AG`` units N, ``AH`` units lb (oz),
  ``BA`` single data output request, ``BB`` continuous output (the source text is truncated here).
* The gauge **echoes the command** to acknowledge it. Data replies carry a code such as ``NA``;
  errors return an error symbol.

Unverified, because the source is partial (each marked [G] where used): the layout of a data
reply beyond its code (parsed here as ``<code><number>[ <unit>]``); the error symbol (any other
printable line is an ``OtherReply`` kept verbatim, for the caller to treat as a possible error);
how reply lines end (CR, LF and CR LF are all accepted; the encoders send CR LF); what ``BB``
does exactly (taken to start continuous output that ``AB`` stops); the unit spellings; and the
sign convention (the sign is passed through as printed).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum

from protocols.lines import LineDecoder
from protocols.units import KGF_N, LBF_N

__all__ = [
    "BAUD_RATES",
    "MAX_LINE",
    "Command",
    "Echo",
    "OtherReply",
    "Reading",
    "Reply",
    "ReplyDecoder",
    "RequestDecoder",
    "ShimpoUnit",
    "UnknownCommand",
    "encode_echo",
    "encode_reading",
    "encode_request",
    "parse_unit",
]

BAUD_RATES = (2400, 4800, 9600, 19200)  # selectable on the gauge, 8N1 (§2.3)

MAX_LINE = 64  # the cap on a buffered line, as in protocols.mark10


class Command(StrEnum):
    """Every documented command; each is two letters + CR and is echoed as its acknowledgement."""

    TARE = "AA"
    STOP_OUTPUT = "AB"
    PEAK_MODE = "AC"
    AVERAGE_MODE = "AD"
    PEAK_RESET = "AE"
    UNITS_KG = "AF"  # kg (g on low-capacity models)
    UNITS_N = "AG"
    UNITS_LB = "AH"  # lb (oz on low-capacity models)
    SINGLE_OUTPUT = "BA"
    CONTINUOUS_OUTPUT = "BB"  # [G] beyond its name: the manual's text is truncated


class ShimpoUnit(StrEnum):
    """A force unit as ``encode_reading`` prints it; the gauge's spelling is unverified [G]."""

    KGF = "kg"
    GF = "g"
    N = "N"
    LBF = "lb"
    OZF = "oz"

    @property
    def newtons(self) -> float:
        """How many newtons one of this unit is."""
        return _NEWTONS[self]


_NEWTONS: dict[ShimpoUnit, float] = {
    ShimpoUnit.KGF: KGF_N,
    ShimpoUnit.GF: KGF_N / 1000,
    ShimpoUnit.N: 1.0,
    ShimpoUnit.LBF: LBF_N,
    ShimpoUnit.OZF: LBF_N / 16,
}

_UNIT_BY_FOLDED: dict[str, ShimpoUnit] = {u.value.casefold(): u for u in ShimpoUnit} | {
    "kgf": ShimpoUnit.KGF,
    "gf": ShimpoUnit.GF,
    "lbf": ShimpoUnit.LBF,
    "ozf": ShimpoUnit.OZF,
}


def parse_unit(text: str) -> ShimpoUnit | None:
    """The unit for a printed spelling (``kg``, ``N``, ``lbf`` …), or None. [G]"""
    return _UNIT_BY_FOLDED.get(text.strip().casefold())


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class UnknownCommand:
    """A terminated command the device side does not implement."""

    text: str


def encode_request(command: Command) -> bytes:
    """The bytes a host sends: the two letters and a CR, ``b"BA\\r"``."""
    return command.value.encode("ascii") + b"\r"


class RequestDecoder:
    """Device side: bytes from the host in, commands out. CR ends a command; LF is ignored."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buffer = bytearray()
        self._max_line = max_line

    def feed(self, data: bytes) -> list[Command | UnknownCommand]:
        commands: list[Command | UnknownCommand] = []
        for byte in data:
            if byte == 0x0D:
                text = self._buffer.decode("ascii", errors="replace").strip()
                self._buffer.clear()
                if text:  # a bare CR is line noise, not a command
                    commands.append(_command_for(text))
            elif byte != 0x0A and len(self._buffer) < self._max_line:
                self._buffer.append(byte)
        return commands


def _command_for(text: str) -> Command | UnknownCommand:
    try:
        return Command(text)
    except ValueError:
        return UnknownCommand(text)


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Echo:
    """The gauge acknowledged ``command`` by echoing it."""

    command: Command


@dataclass(frozen=True)
class Reading:
    """A data reply: its code (e.g. ``NA``), the number as printed, and the unit if any.

    ``unit`` is None when no unit was printed or it was not recognised (``unit_text`` keeps it).
    """

    code: str
    value: float
    unit: ShimpoUnit | None
    unit_text: str = ""
    raw: str = field(default="", compare=False, repr=False)

    def newtons(self, default_unit: ShimpoUnit) -> float:
        """The force in newtons, using ``default_unit`` (the unit last selected with
        ``AF``/``AG``/``AH``) when the reply's unit is absent or not recognised."""
        return self.value * (self.unit or default_unit).newtons


@dataclass(frozen=True)
class OtherReply:
    """Any other printable line, kept verbatim: possibly the undocumented error symbol."""

    text: str


Reply = Echo | Reading | OtherReply

# [G] "<code><number>[ <unit>]": two capital letters, optional spaces, a plain decimal, and an
# optional unit word.
_DATA = re.compile(r"([A-Z]{2}) *([+-]?(?:\d+\.?\d*|\.\d+))(?: *([A-Za-z]+))?")
_ECHOES: dict[str, Command] = {c.value: c for c in Command}


def _parse_reply(line: bytes) -> Reply | None:
    if any(b < 0x20 or b > 0x7E for b in line):
        return None
    text = line.decode("ascii").strip()
    if not text:
        return None
    if text in _ECHOES:
        return Echo(_ECHOES[text])
    match = _DATA.fullmatch(text)
    if match is None:
        return OtherReply(text)
    code, number, unit_text = match.group(1), match.group(2), match.group(3) or ""
    value = float(number)
    if not math.isfinite(value):
        return None
    return Reading(code, value, parse_unit(unit_text) if unit_text else None, unit_text, text)


class ReplyDecoder(LineDecoder[Reply]):
    """Host side: bytes from the gauge in, replies out, for any chunking of the stream.

    CR, LF and CR LF all end a line; empty lines are ignored. Lines with control or non-ASCII
    bytes, whitespace-only lines and lines over ``max_line`` bytes are skipped and counted in
    ``garbage``; every other line counts in ``lines``. ``feed`` never raises.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        super().__init__(max_line)

    def parse(self, line: bytes) -> Reply | None:
        return _parse_reply(line)


# --------------------------------------------------------------------------- device-side encoders


def encode_echo(command: Command) -> bytes:
    """The acknowledgement: the command echoed, ``b"AA\\r\\n"`` (the line ending is [G])."""
    return command.value.encode("ascii") + b"\r\n"


def encode_reading(
    value: float, unit: ShimpoUnit | None, *, code: str = "NA", decimals: int = 2
) -> bytes:
    """A data reply in the [G] layout ``<code><number> <unit>``, e.g. ``b"NA-12.50 N\\r\\n"``."""
    if not math.isfinite(value):
        raise ValueError(f"a gauge never prints a non-finite value: {value!r}")
    if decimals < 0:
        raise ValueError(f"decimals must be >= 0, not {decimals}")
    if not re.fullmatch(r"[A-Z]{2}", code) or code in _ECHOES:
        raise ValueError(f"a data code is two capital letters and not a command: {code!r}")
    number = f"{value:.{decimals}f}"
    if number.startswith("-") and float(number) == 0:
        number = number[1:]  # no "-0.00"
    text = code + number + ("" if unit is None else f" {unit.value}")
    return text.encode("ascii") + b"\r\n"
