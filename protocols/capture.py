"""The capture format ``devicectl/1``: a device conversation as JSON lines, sans-I/O.

A capture is UTF-8 text, one JSON object per line. The first line is the header::

    {"capture": "devicectl/1", "device": "mark10@serial:///dev/ttyUSB0", "model": "Mark-10",
     "transport": "serial", "started_at": "2025-01-31T09:12:00.123+00:00"}

Every later line is a record, in the order it happened. ``t`` is seconds since the capture
began, on a monotonic clock (so it never goes backwards). A data record has ``dir``
(``host>dev`` or ``dev>host``) and ``data`` (the bytes, as lower-case hex); serial captures add
``text``, the same bytes rendered printable (see :func:`render_text`), for people to read, and
BLE captures add ``char``, the characteristic's UUID. An event record has ``event`` (``open``,
``close``, ``disconnect``, ``error``, or any other word) and may have ``detail``. Any line may
carry ``note``, free text that tools ignore (golden files cite their sources there)::

    {"t": 0.012, "dir": "host>dev", "data": "3f430d", "text": "?C\\r"}
    {"t": 0.015, "dir": "dev>host", "data": "342e3238204e0d0a", "text": "4.28 N\\r\\n"}
    {"t": 0.031, "dir": "host>dev", "char": "7e4e1703-1ea6-40c9-9dcc-13d34ffead57", "data": "6b"}
    {"t": 9.500, "event": "disconnect", "detail": "the link was closed by the other end"}

``data`` is what counts; a ``text`` that disagrees with it is an error (it catches a hand-edited
golden file whose two spellings drifted apart). Unknown keys are errors too, for the same reason.
A writer flushes each line, so a crash leaves every whole line: a last line cut short without
its newline is dropped and reported in :attr:`Capture.truncated`, not treated as an error.

This module only formats and parses text; files are read and written by its callers
(``drivers.capture`` records, ``simulators.replay`` plays back).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, cast

__all__ = [
    "DEVICE_TO_HOST",
    "EVENT_CLOSE",
    "EVENT_DISCONNECT",
    "EVENT_ERROR",
    "EVENT_OPEN",
    "FORMAT",
    "HOST_TO_DEVICE",
    "Capture",
    "CaptureError",
    "CaptureFormatError",
    "CaptureHeader",
    "CaptureRecord",
    "CaptureTransport",
    "Direction",
    "format_header",
    "format_record",
    "normalize_uuid",
    "parse_capture",
    "render_text",
]

# The format's name and major version; a reader refuses any other (a new field means a new one).
FORMAT: Final = "devicectl/1"

Direction = Literal["host>dev", "dev>host"]
CaptureTransport = Literal["serial", "ble"]

HOST_TO_DEVICE: Final = "host>dev"
DEVICE_TO_HOST: Final = "dev>host"
_DIRECTIONS: Final = (HOST_TO_DEVICE, DEVICE_TO_HOST)
_TRANSPORTS: Final = ("serial", "ble")

EVENT_OPEN: Final = "open"  # the host opened the link (serial) or connected (BLE)
EVENT_CLOSE: Final = "close"  # the host closed the link itself
EVENT_DISCONNECT: Final = "disconnect"  # the link was lost: the device side or the cable
EVENT_ERROR: Final = "error"  # an I/O call failed; ``detail`` says how

# t is written to the microsecond: finer than any serial or BLE timing, and short to read.
_T_DECIMALS = 6

# The Bluetooth Base UUID (Core spec Vol 3 Part B §2.5.1): a 16- or 32-bit UUID is shorthand.
_BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"

_HEADER_KEYS = frozenset({"capture", "device", "model", "transport", "started_at", "note"})
_DATA_KEYS = frozenset({"t", "dir", "data", "text", "char", "note"})
_EVENT_KEYS = frozenset({"t", "event", "detail", "note"})
_ESCAPES: Final = {0x5C: "\\\\", 0x0D: "\\r", 0x0A: "\\n", 0x09: "\\t"}


class CaptureError(Exception):
    """A capture cannot be read or written (the message names the file)."""


class CaptureFormatError(CaptureError):
    """A capture's text is not ``devicectl/1``; ``line`` is 1-based."""

    def __init__(self, source: str, line: int, message: str) -> None:
        self.source = source
        self.line = line
        self.message = message
        super().__init__(f"{source}: line {line}: {message}")


@dataclass(frozen=True)
class CaptureHeader:
    """The first line: what was captured, over what, and when (``started_at``: ISO 8601, UTC)."""

    device: str
    model: str
    transport: CaptureTransport
    started_at: str
    note: str = ""


@dataclass(frozen=True)
class CaptureRecord:
    """One line after the header: data (``direction`` set) or an event (``event`` set)."""

    t: float
    direction: Direction | None = None
    data: bytes = b""
    char: str | None = None
    event: str | None = None
    detail: str = ""
    note: str = ""

    @property
    def is_data(self) -> bool:
        return self.direction is not None


@dataclass(frozen=True)
class Capture:
    """A whole capture. ``truncated``: the last line was cut short (a crash) and left out."""

    header: CaptureHeader
    records: tuple[CaptureRecord, ...]
    truncated: bool = False


# --------------------------------------------------------------------------- rendering


def render_text(data: bytes) -> str:
    """The bytes as a person reads them: printable Latin-1 as is; ``\\r \\n \\t \\\\``; ``\\xNN``
    for any other byte. Every byte has one spelling, so the rendering is exact, not lossy."""
    out: list[str] = []
    for byte in data:
        char = chr(byte)
        if byte in _ESCAPES:
            out.append(_ESCAPES[byte])
        elif char.isprintable():
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in "0123456789abcdefABCDEF" for c in text)


def normalize_uuid(uuid: str) -> str:
    """A characteristic UUID as bleak reports it: 128-bit, lower case (``2a19`` expanded)."""
    text = uuid.strip().lower()
    if _is_hex(text, 4):
        return f"0000{text}{_BASE_UUID_TAIL}"
    if _is_hex(text, 8):
        return f"{text}{_BASE_UUID_TAIL}"
    return text


# --------------------------------------------------------------------------- writing


def format_header(header: CaptureHeader) -> str:
    """The header line (without its newline)."""
    fields: dict[str, Any] = {
        "capture": FORMAT,
        "device": header.device,
        "model": header.model,
        "transport": header.transport,
        "started_at": header.started_at,
    }
    if header.note:
        fields["note"] = header.note
    return json.dumps(fields, ensure_ascii=False)


def format_record(record: CaptureRecord, transport: CaptureTransport) -> str:
    """One record line (without its newline); serial data records get their ``text``."""
    fields: dict[str, Any] = {"t": round(record.t, _T_DECIMALS)}
    if record.direction is not None:
        fields["dir"] = record.direction
        if record.char is not None:
            fields["char"] = normalize_uuid(record.char)
        fields["data"] = record.data.hex()
        if transport == "serial":
            fields["text"] = render_text(record.data)
    else:
        fields["event"] = record.event
        if record.detail:
            fields["detail"] = record.detail
    if record.note:
        fields["note"] = record.note
    return json.dumps(fields, ensure_ascii=False)


# --------------------------------------------------------------------------- reading


def parse_capture(text: str, *, source: str = "<capture>") -> Capture:
    """Parse a whole capture. Raises :class:`CaptureFormatError` naming ``source`` and the line.

    Blank lines are skipped. A last line without its newline that does not parse is taken as
    cut short by a crash: it is dropped and the capture is marked ``truncated``.
    """
    lines = text.split("\n")
    cut_tail = bool(text) and not text.endswith("\n")
    header: CaptureHeader | None = None
    records: list[CaptureRecord] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            fields = _json_object(line)
            if header is None:
                header = _header(fields)
            else:
                records.append(_record(fields, header.transport, records))
        except ValueError as exc:
            if cut_tail and number == len(lines) and header is not None:
                return Capture(header, tuple(records), truncated=True)
            raise CaptureFormatError(source, number, str(exc)) from None
    if header is None:
        raise CaptureFormatError(source, 1, f"empty: a capture starts with a {FORMAT} header")
    return Capture(header, tuple(records))


def _json_object(line: str) -> Mapping[str, object]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return cast(dict[str, object], value)


def _header(fields: Mapping[str, object]) -> CaptureHeader:
    version = fields.get("capture")
    if version != FORMAT:
        raise ValueError(f'not a {FORMAT} header ("capture" is {version!r})')
    _no_unknown(fields, _HEADER_KEYS)
    transport = _string(fields, "transport")
    if transport not in _TRANSPORTS:
        raise ValueError(f'"transport" must be "serial" or "ble", not {transport!r}')
    started_at = _string(fields, "started_at")
    try:
        datetime.fromisoformat(started_at)
    except ValueError:
        raise ValueError(f'"started_at" is not an ISO 8601 time: {started_at!r}') from None
    return CaptureHeader(
        device=_string(fields, "device"),
        model=_string(fields, "model"),
        transport=cast(CaptureTransport, transport),
        started_at=started_at,
        note=_string(fields, "note", ""),
    )


def _record(
    fields: Mapping[str, object], transport: CaptureTransport, before: list[CaptureRecord]
) -> CaptureRecord:
    t = fields.get("t")
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0:
        raise ValueError(f'"t" must be a number of seconds >= 0, not {t!r}')
    if before and t < before[-1].t:
        raise ValueError(f'"t" goes backwards: {t} after {before[-1].t}')
    if ("dir" in fields) == ("event" in fields):
        raise ValueError('a record has either "dir" (data) or "event", not both or neither')
    note = _string(fields, "note", "")
    if "event" in fields:
        _no_unknown(fields, _EVENT_KEYS)
        event = _string(fields, "event")
        if not event:
            raise ValueError('"event" must not be empty')
        return CaptureRecord(float(t), event=event, detail=_string(fields, "detail", ""), note=note)
    _no_unknown(fields, _DATA_KEYS)
    return _data_record(fields, float(t), transport, note)


def _data_record(
    fields: Mapping[str, object], t: float, transport: CaptureTransport, note: str
) -> CaptureRecord:
    direction = fields["dir"]
    if direction not in _DIRECTIONS:
        raise ValueError(f'"dir" must be "host>dev" or "dev>host", not {direction!r}')
    hex_text = _string(fields, "data")
    if len(hex_text) % 2 or not _is_hex(hex_text, len(hex_text)):
        raise ValueError(f'"data" must be an even number of hex digits, not {hex_text!r}')
    data = bytes.fromhex(hex_text)
    if "text" in fields:
        text = _string(fields, "text")
        if render_text(data) != text:
            raise ValueError(f'"text" {text!r} does not match "data" ({render_text(data)!r})')
    char: str | None = None
    if transport == "ble":
        char = normalize_uuid(_string(fields, "char"))
    elif "char" in fields:
        raise ValueError('"char" belongs to BLE captures; this one is serial')
    return CaptureRecord(t, direction, data, char=char, note=note)


def _string(fields: Mapping[str, object], key: str, default: str | None = None) -> str:
    value = fields.get(key, default)
    if not isinstance(value, str):
        missing = key not in fields
        raise ValueError(f'"{key}" is missing' if missing else f'"{key}" must be a string')
    return value


def _no_unknown(fields: Mapping[str, object], allowed: frozenset[str]) -> None:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))}")
