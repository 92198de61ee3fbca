"""Wagner Instruments FDIX (Force One) / FDX (Force Ten): a sans-I/O codec for both ends.

Wire facts (shared/reference/device-protocols.md §2.4):

* Continuous-output addendum for the FDIX, firmware >= 3.3.3 [P]: ``C.5`` ``C1`` ``C2`` ``C5``
  ``C10`` ``C20`` ``C50`` ``C100`` + CR set the rate to 0.5-100 samples/s and do **not** start
  output; ``CA`` sends all points including zeros, ``CX`` only points above 2 % of full scale;
  ``CB`` begins continuous output, ``CE`` ends it.
* UNC algometer notes [S]: ``CB`` was lost when the gauge power-cycled, so since 2008 their
  software sends an ``F`` command whenever data arrives or none has for > 0.1 s: it polls.
  ``F`` is therefore the fallback here (``Request.POLL``).
* FDV / Force Ten data format [P]: ``-XXXXXX YY Peak`` CR LF. The sign is a **space for
  compression** and a **minus for tension**; then 5 digits and a decimal point, or ``HELP`` when
  the gauge is overloaded; then a space and the units; ``Peak`` is appended in peak mode.

Unverified (marked [G] where used): the baud rate (9600 8N1 is only typical, ``GUESSED_BAUD``);
that ``F`` and the ``CA``/``CX``/``CB``/``CE`` commands end with CR like the rate commands; that
``F`` answers one record; whether commands are acknowledged (no acknowledgement is documented);
how the units are spelt (``parse_unit`` accepts the usual abbreviations); and whether ``Peak``
is separated by one space. The FDV record format is assumed to apply to the FDIX stream.

Sign convention of ``Reading.value``: compression positive, tension negative (as documented,
and as ``protocols.mark10``). Overload is a typed ``Overload`` event, never a number.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum

from protocols.lines import LineDecoder
from protocols.units import KGF_N, LBF_N

__all__ = [
    "GUESSED_BAUD",
    "MAX_LINE",
    "RATES_HZ",
    "Overload",
    "Reading",
    "Reply",
    "ReplyDecoder",
    "Request",
    "RequestDecoder",
    "SetRate",
    "UnknownCommand",
    "WagnerUnit",
    "encode_overload",
    "encode_reading",
    "encode_request",
    "parse_unit",
]

GUESSED_BAUD = 9600  # [G] device-protocols.md §2.4: "not found … 9600 8N1 is typical, verify"

# Records are ~18 bytes; the cap keeps unterminated noise from growing memory.
MAX_LINE = 64

# The documented rates, samples/s, and their command spellings (note ``C.5``, not ``C0.5``).
RATES_HZ: dict[float, str] = {
    0.5: "C.5",
    1.0: "C1",
    2.0: "C2",
    5.0: "C5",
    10.0: "C10",
    20.0: "C20",
    50.0: "C50",
    100.0: "C100",
}


class WagnerUnit(StrEnum):
    """A force unit. The values are how ``encode_reading`` spells them: [G], the gauge's own
    spelling is undocumented (the format only says ``YY``)."""

    LBF = "LB"
    OZF = "OZ"
    KGF = "KG"
    GF = "G"
    N = "N"

    @property
    def newtons(self) -> float:
        """How many newtons one of this unit is."""
        return _NEWTONS[self]


_NEWTONS: dict[WagnerUnit, float] = {
    WagnerUnit.LBF: LBF_N,
    WagnerUnit.OZF: LBF_N / 16,
    WagnerUnit.KGF: KGF_N,
    WagnerUnit.GF: KGF_N / 1000,
    WagnerUnit.N: 1.0,
}

# [G] the usual abbreviations, case-folded; anything else stays unrecognised (unit None).
_UNIT_BY_FOLDED: dict[str, WagnerUnit] = {
    "lb": WagnerUnit.LBF,
    "lbf": WagnerUnit.LBF,
    "lbs": WagnerUnit.LBF,
    "oz": WagnerUnit.OZF,
    "ozf": WagnerUnit.OZF,
    "kg": WagnerUnit.KGF,
    "kgf": WagnerUnit.KGF,
    "g": WagnerUnit.GF,
    "gf": WagnerUnit.GF,
    "n": WagnerUnit.N,
}


def parse_unit(text: str) -> WagnerUnit | None:
    """The unit for a printed spelling (``LB``, ``lbf``, ``Kg``, ``N`` …), or None."""
    return _UNIT_BY_FOLDED.get(text.strip().casefold())


# --------------------------------------------------------------------------- requests


class Request(StrEnum):
    """A host → gauge command without arguments."""

    ALL_POINTS = "CA"  # send every point, zeros included
    ABOVE_2_PERCENT = "CX"  # send only points above 2 % of full scale
    BEGIN = "CB"  # begin continuous output (lost on a power cycle, per the UNC notes)
    END = "CE"  # end continuous output
    POLL = "F"  # [S] the UNC software's polling fallback: one record per F


@dataclass(frozen=True)
class SetRate:
    """Set the continuous-output rate (samples/s); it does not start output."""

    rate_hz: float

    def __post_init__(self) -> None:
        if self.rate_hz not in RATES_HZ:
            raise ValueError(f"rate must be one of {sorted(RATES_HZ)} samples/s: {self.rate_hz!r}")

    @property
    def command(self) -> str:
        return RATES_HZ[self.rate_hz]


@dataclass(frozen=True)
class UnknownCommand:
    """A terminated command the device side does not implement."""

    text: str


def encode_request(request: Request | SetRate) -> bytes:
    """The bytes a host sends: the command and a CR (``b"C10\\r"``, ``b"CB\\r"``, ``b"F\\r"``)."""
    text = request.command if isinstance(request, SetRate) else request.value
    return text.encode("ascii") + b"\r"


_REQUEST_BY_TEXT: dict[str, Request | SetRate] = {r.value: r for r in Request} | {
    command: SetRate(rate) for rate, command in RATES_HZ.items()
}


class RequestDecoder:
    """Device side: bytes from the host in, commands out. CR ends a command; LF is ignored.

    Upper-case only: the documents print the commands in capitals and say nothing of case.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buffer = bytearray()
        self._max_line = max_line

    def feed(self, data: bytes) -> list[Request | SetRate | UnknownCommand]:
        commands: list[Request | SetRate | UnknownCommand] = []
        for byte in data:
            if byte == 0x0D:
                text = self._buffer.decode("ascii", errors="replace").strip()
                self._buffer.clear()
                if text:  # a bare CR is line noise, not a command
                    commands.append(_REQUEST_BY_TEXT.get(text, UnknownCommand(text)))
            elif byte != 0x0A and len(self._buffer) < self._max_line:
                self._buffer.append(byte)
        return commands


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Reading:
    """One record. ``value`` is compression positive, tension negative.

    ``unit`` is None when the printed units (kept in ``unit_text``) are not recognised.
    """

    value: float
    unit: WagnerUnit | None
    unit_text: str
    peak: bool = False
    raw: str = field(default="", compare=False, repr=False)

    @property
    def tension(self) -> bool:
        return self.value < 0

    def newtons(self, default_unit: WagnerUnit) -> float:
        """The force in newtons; ``default_unit`` (the unit the gauge is set to) applies only
        when the printed unit was not recognised."""
        return self.value * (self.unit or default_unit).newtons


@dataclass(frozen=True)
class Overload:
    """``HELP`` in place of the number: the gauge is overloaded in this direction."""

    tension: bool  # the sign character was a minus
    unit: WagnerUnit | None
    unit_text: str
    peak: bool = False


Reply = Reading | Overload

# Sign (space or minus), the value (digits with one point, or HELP; padding spaces after the
# sign are tolerated [G]), one or more spaces, the units, an optional "Peak".
_RECORD = re.compile(r"([ -]) *(HELP|\d+\.\d*|\.\d+|\d+) +(\S+)( +Peak)? *")


def _parse_record(line: bytes) -> Reply | None:
    if any(b < 0x20 or b > 0x7E for b in line):
        return None
    text = line.decode("ascii")
    match = _RECORD.fullmatch(text)
    if match is None:
        return None
    sign, number, unit_text, peak = match.groups()
    tension, is_peak, unit = sign == "-", peak is not None, parse_unit(unit_text)
    if number == "HELP":
        return Overload(tension, unit, unit_text, is_peak)
    magnitude = float(number)
    return Reading(-magnitude if tension else magnitude, unit, unit_text, is_peak, text)


class ReplyDecoder(LineDecoder[Reply]):
    """Host side: bytes from the gauge in, records out, for any chunking of the stream.

    Records end with CR LF; a lone CR or LF also ends one and empty lines are ignored. A line
    that is not a record (no leading space or minus, control or non-ASCII bytes, a malformed
    number, over ``max_line`` bytes) is skipped and counted in ``garbage``; every record, and
    every overload, counts in ``lines``. ``feed`` never raises.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        super().__init__(max_line)

    def parse(self, line: bytes) -> Reply | None:
        return _parse_record(line)


# --------------------------------------------------------------------------- device-side encoders

_DIGITS = 5  # "5 digits plus a decimal point"


def _suffix(unit: WagnerUnit, peak: bool) -> str:
    return f" {unit.value}" + (" Peak" if peak else "")


def encode_reading(
    value: float, unit: WagnerUnit, *, decimals: int = 2, peak: bool = False
) -> bytes:
    """A record: ``b"-012.34 LB\\r\\n"`` (tension) or ``b" 012.34 LB Peak\\r\\n"`` (compression).

    The value is printed as 5 digits and a point, zero-padded (the padding is [G]); a value
    that does not fit in 5 digits raises ValueError (the real gauge would show ``HELP``).
    """
    if not math.isfinite(value):
        raise ValueError(f"a gauge never prints a non-finite value: {value!r}")
    if not 0 <= decimals <= _DIGITS:
        raise ValueError(f"decimals must be 0-{_DIGITS}, not {decimals}")
    magnitude = f"{abs(value):0{_DIGITS + 1}.{decimals}f}"
    if decimals == 0:
        magnitude = f"{round(abs(value)):0{_DIGITS}d}."
    if len(magnitude) != _DIGITS + 1:
        raise ValueError(f"{value!r} does not fit in {_DIGITS} digits with {decimals} decimals")
    sign = "-" if value < 0 and float(magnitude) != 0 else " "  # no "-000.00"
    return (sign + magnitude + _suffix(unit, peak)).encode("ascii") + b"\r\n"


def encode_overload(tension: bool, unit: WagnerUnit, *, peak: bool = False) -> bytes:
    """An overload record: ``b"-HELP LB\\r\\n"`` (tension) or ``b" HELP LB\\r\\n"``."""
    return (("-" if tension else " ") + "HELP" + _suffix(unit, peak)).encode("ascii") + b"\r\n"
