"""Tindeq Progressor BLE API: a sans-I/O codec for both ends of the link.

Wire facts (shared/reference/device-protocols.md §1.1; Tindeq's API page
https://tindeq.com/progressor_api/ and the vendor's sample client
``blims/Tindeq-Progressor-API:progressor_client.py``):

* One custom GATT service with a *data point* (notify) and a *control point* (write)
  characteristic, plus the Nordic DFU service. Devices advertise a local name starting
  ``Progressor``.
* All values are little-endian. Both directions use TLV: tag, length, value.
* Host → device: one write is one command; the tag is the opcode (decimal 100-111).
* Device → host: one notification is one TLV frame. Tag 0 is a command response (its meaning
  depends on the request it answers, so the host has to remember what it asked), tag 1 a batch
  of weight samples (float32 kg + uint32 µs each), 2/3 RFD peaks, 4 a low-power warning.

The host decoder never raises on what the device sends: short, truncated and ragged frames,
non-finite weights, unknown tags and malformed responses are counted and skipped.
"""

from __future__ import annotations

import math
import struct
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from protocols.units import KGF_N

__all__ = [
    "ADVERTISED_NAME_PREFIX",
    "ANSWERED_OPCODES",
    "CONTROL_POINT_UUID",
    "DATA_POINT_UUID",
    "DEFAULT_ATT_PAYLOAD",
    "DFU_SERVICE_UUID",
    "KGF_N",
    "SAMPLE_SIZE",
    "SERVICE_UUID",
    "US_WRAP",
    "Command",
    "CommandDecoder",
    "CommandDrop",
    "CommandResponse",
    "Event",
    "LowPowerWarning",
    "NotificationDecoder",
    "NotificationDrop",
    "Opcode",
    "PendingCommands",
    "ResponseTag",
    "RfdPeak",
    "UnknownCommand",
    "WeightSample",
    "WeightSamples",
    "encode_command",
    "encode_low_power",
    "encode_response",
    "encode_weight",
    "encode_weights",
    "max_samples",
    "unwrap_us",
]

# --------------------------------------------------------------------------- constants

# UUIDs: progressor_client.py [P]; the DFU service from hangtime-grip-connect
# progressor.model.ts (Nordic Secure DFU, buttonless) [P]. device-protocols.md §1.1.
SERVICE_UUID = "7e4e1701-1ea6-40c9-9dcc-13d34ffead57"
DATA_POINT_UUID = "7e4e1702-1ea6-40c9-9dcc-13d34ffead57"  # notify; enable notifications first
CONTROL_POINT_UUID = "7e4e1703-1ea6-40c9-9dcc-13d34ffead57"  # write
DFU_SERVICE_UUID = "0000fe59-0000-1000-8000-00805f9b34fb"
# Clients filter on this local-name prefix (progressor_client.py TARGET_NAME; hangtime). §1.1.
ADVERTISED_NAME_PREFIX = "Progressor"

# One weight sample on the wire: float32 LE kg, then uint32 LE µs (§1.1, "Weight payload").
_SAMPLE = struct.Struct("<fI")
SAMPLE_SIZE = _SAMPLE.size  # 8
_HEADER = 2  # tag byte + length byte

# A notification's value under the default ATT_MTU of 23 is 20 bytes (MTU minus the 3-byte
# notification header). The Progressor's negotiated MTU is not documented, so the device side
# batches for the default unless told otherwise: (20 - 2) // 8 = 2 samples per notification.
DEFAULT_ATT_PAYLOAD = 20
_MAX_LENGTH = 0xFF  # the TLV length is one byte

# The device clock is a uint32 µs counter: it wraps every 2**32 µs, about 71.6 minutes.
US_WRAP = 1 << 32


class Opcode(IntEnum):
    """Control-point opcodes (progressor_client.py constants, cross-checked against PyTindeq and
    hangtime; device-protocols.md §1.1). 100-111 are documented by Tindeq."""

    TARE_SCALE = 100
    START_WEIGHT_MEAS = 101
    STOP_WEIGHT_MEAS = 102
    START_PEAK_RFD_MEAS = 103
    START_PEAK_RFD_MEAS_SERIES = 104
    ADD_CALIBRATION_POINT = 105
    SAVE_CALIBRATION = 106
    GET_APP_VERSION = 107
    GET_ERROR_INFORMATION = 108
    CLR_ERROR_INFORMATION = 109
    ENTER_SLEEP = 110
    GET_BATTERY_VOLTAGE = 111
    # UNDOCUMENTED: not in Tindeq's API; from hangtime's "firmware analysis and device testing"
    # (packages/docs/src/devices/progressor.md) [S]. Response: u64 LE, trailing zeros omitted.
    GET_PROGRESSOR_ID = 0x70


class ResponseTag(IntEnum):
    """Byte 0 of a data-point notification (sample client RES_* constants, §1.1)."""

    COMMAND_RESPONSE = 0
    WEIGHT_MEASUREMENT = 1
    RFD_PEAK = 2
    RFD_PEAK_SERIES = 3
    LOW_POWER_WARNING = 4


# Opcodes whose command response we know how to read (§1.1 opcode table). Only these are put
# in the pending queue: expecting an answer the device never sends would shift every later
# response onto the wrong request.
ANSWERED_OPCODES = frozenset(
    {
        Opcode.GET_APP_VERSION,
        Opcode.GET_ERROR_INFORMATION,
        Opcode.GET_BATTERY_VOLTAGE,
        Opcode.GET_PROGRESSOR_ID,
    }
)

# --------------------------------------------------------------------------- host → device


def encode_command(opcode: Opcode, payload: bytes = b"") -> bytes:
    """The bytes a host writes to the control point for one command.

    §1.1 documents TLV framing in both directions, yet the vendor's sample client writes the
    bare opcode (one byte) and PyTindeq writes (opcode, 0x00). We send the one-byte form for a
    command without payload: it is what Tindeq's own client sends, so it is the form the
    firmware is known to accept [P], while the two-byte form rests on a third-party client [S].
    A command with a payload is sent as TLV (opcode, length, payload); no documented opcode
    takes one.
    """
    opcode = Opcode(opcode)
    if not payload:
        return bytes([opcode])
    if len(payload) > _MAX_LENGTH:
        raise ValueError(f"a command payload holds at most {_MAX_LENGTH} bytes: {len(payload)}")
    return bytes([opcode, len(payload)]) + bytes(payload)


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class WeightSample:
    """One sample: weight in kg (kilogram-force, signed: negative after a tare under tension)
    and the raw device timestamp (uint32 µs, wrapping; see :func:`unwrap_us`)."""

    kg: float
    device_us: int

    @property
    def newtons(self) -> float:
        return self.kg * KGF_N


@dataclass(frozen=True)
class WeightSamples:
    """A batch of samples from one notification, oldest first; never empty."""

    samples: tuple[WeightSample, ...]


@dataclass(frozen=True)
class CommandResponse:
    """A tag-0 frame. ``opcode`` is the request it answers (the oldest outstanding one), or
    None when nothing was outstanding. The decoder checks the payload of a matched response,
    so the helper for its opcode does not raise."""

    opcode: Opcode | None
    payload: bytes

    def text(self) -> str:
        """GET_APP_VERSION / GET_ERROR_INFORMATION: UTF-8 text (trailing NULs removed)."""
        try:
            return self.payload.decode("utf-8").rstrip("\x00")
        except UnicodeDecodeError:
            raise ValueError(f"response is not UTF-8 text: {self.payload!r}") from None

    def battery_mv(self) -> int:
        """GET_BATTERY_VOLTAGE: uint32 LE millivolts."""
        if len(self.payload) != 4:
            raise ValueError(f"battery response must be 4 bytes: {self.payload!r}")
        return int.from_bytes(self.payload, "little")

    def progressor_id(self) -> int:
        """GET_PROGRESSOR_ID (undocumented): u64 LE; trailing zero bytes may be omitted."""
        if len(self.payload) > 8:
            raise ValueError(f"progressor id is at most 8 bytes: {self.payload!r}")
        return int.from_bytes(self.payload, "little")


@dataclass(frozen=True)
class RfdPeak:
    """A tag-2 (RFD peak) or tag-3 (RFD peak series) frame, kept raw: its layout is in the API
    page's images only, not in the text or the sample client."""

    series: bool
    payload: bytes


@dataclass(frozen=True)
class LowPowerWarning:
    """Tag 4: the device's battery is low."""


Event = WeightSamples | CommandResponse | RfdPeak | LowPowerWarning


class NotificationDrop(StrEnum):
    """Why the host decoder skipped something."""

    SHORT = "short"  # fewer than 2 bytes: no tag and length
    TRUNCATED = "truncated"  # the length byte claims more than the notification holds
    UNKNOWN_TAG = "unknown tag"
    EMPTY_WEIGHT = "empty weight"  # a weight frame with no samples
    RAGGED_WEIGHT = "ragged weight"  # a weight payload that is not a multiple of 8 bytes
    NON_FINITE = "non-finite weight"  # counted per sample; the batch's other samples are kept
    BAD_RESPONSE = "bad response"  # a response whose payload does not fit its request


# --------------------------------------------------------------------------- host side


class PendingCommands:
    """The requests still waiting for a command response, oldest first.

    The device answers in order and a response carries no opcode (§1.1), so a response belongs
    to the oldest outstanding request. A driver that gives up on a request (timeout) should
    :meth:`clear` the queue, since a late answer could otherwise be matched to the next one.
    """

    def __init__(self) -> None:
        self._queue: deque[Opcode] = deque()

    def expect(self, opcode: Opcode) -> None:
        """Record a request that was just sent and will be answered."""
        opcode = Opcode(opcode)
        if opcode not in ANSWERED_OPCODES:
            raise ValueError(f"{opcode.name} has no documented command response")
        self._queue.append(opcode)

    def match(self) -> Opcode | None:
        """The request a response answers, or None when nothing is outstanding."""
        return self._queue.popleft() if self._queue else None

    def clear(self) -> None:
        self._queue.clear()

    def __len__(self) -> int:
        return len(self._queue)


def _response_ok(opcode: Opcode, payload: bytes) -> bool:
    if opcode in (Opcode.GET_APP_VERSION, Opcode.GET_ERROR_INFORMATION):
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True
    if opcode is Opcode.GET_BATTERY_VOLTAGE:
        return len(payload) == 4
    if opcode is Opcode.GET_PROGRESSOR_ID:
        return len(payload) <= 8
    return True


class NotificationDecoder:
    """Host side: one data-point notification in, typed events out.

    A BLE notification is a whole message (never a fragment of a stream), and each one carries
    one TLV frame, as all three known clients read it. Bytes past the frame's declared length
    are ignored and counted in ``trailing_bytes`` (the frame is kept). Anything that cannot be
    trusted is skipped and counted in ``dropped`` (and per reason in ``drops``): a whole
    notification, or a single non-finite sample of a batch. A response with no request
    outstanding is reported with ``opcode=None`` and counted in ``unmatched``.
    """

    def __init__(self) -> None:
        self.pending = PendingCommands()
        self.drops: Counter[NotificationDrop] = Counter()
        self.dropped = 0
        self.unmatched = 0
        self.trailing_bytes = 0

    def expect(self, opcode: Opcode) -> None:
        """Call after writing a command in :data:`ANSWERED_OPCODES`."""
        self.pending.expect(opcode)

    def feed(self, data: bytes) -> list[Event]:
        event = self._decode(bytes(data))
        return [] if event is None else [event]

    def _drop(self, reason: NotificationDrop, count: int = 1) -> None:
        self.drops[reason] += count
        self.dropped += count

    def _decode(self, data: bytes) -> Event | None:
        if len(data) < _HEADER:
            self._drop(NotificationDrop.SHORT)
            return None
        tag, length = data[0], data[1]
        if length > len(data) - _HEADER:
            self._drop(NotificationDrop.TRUNCATED)
            return None
        payload = data[_HEADER : _HEADER + length]
        self.trailing_bytes += len(data) - _HEADER - length
        if tag == ResponseTag.WEIGHT_MEASUREMENT:
            return self._weights(payload)
        if tag == ResponseTag.COMMAND_RESPONSE:
            return self._response(payload)
        if tag in (ResponseTag.RFD_PEAK, ResponseTag.RFD_PEAK_SERIES):
            return RfdPeak(series=tag == ResponseTag.RFD_PEAK_SERIES, payload=payload)
        if tag == ResponseTag.LOW_POWER_WARNING:
            return LowPowerWarning()
        self._drop(NotificationDrop.UNKNOWN_TAG)
        return None

    def _weights(self, payload: bytes) -> WeightSamples | None:
        if not payload:
            self._drop(NotificationDrop.EMPTY_WEIGHT)
            return None
        if len(payload) % SAMPLE_SIZE:
            self._drop(NotificationDrop.RAGGED_WEIGHT)
            return None
        samples = tuple(WeightSample(kg, us) for kg, us in _SAMPLE.iter_unpack(payload))
        finite = tuple(s for s in samples if math.isfinite(s.kg))
        if len(finite) < len(samples):
            self._drop(NotificationDrop.NON_FINITE, len(samples) - len(finite))
        return WeightSamples(finite) if finite else None

    def _response(self, payload: bytes) -> CommandResponse | None:
        opcode = self.pending.match()
        if opcode is None:
            self.unmatched += 1
        elif not _response_ok(opcode, payload):
            self._drop(NotificationDrop.BAD_RESPONSE)
            return None
        return CommandResponse(opcode, payload)


# --------------------------------------------------------------------------- device side


def max_samples(att_payload: int = DEFAULT_ATT_PAYLOAD) -> int:
    """How many samples fit one notification of ``att_payload`` bytes (ATT_MTU - 3)."""
    return max(0, min(att_payload, _HEADER + _MAX_LENGTH) - _HEADER) // SAMPLE_SIZE


def _pack_sample(sample: WeightSample) -> bytes:
    if not math.isfinite(sample.kg):
        raise ValueError(f"a weight must be finite: {sample.kg!r}")
    if not 0 <= sample.device_us < US_WRAP:
        raise ValueError(f"device_us must be a uint32: {sample.device_us}")
    try:
        return _SAMPLE.pack(sample.kg, sample.device_us)
    except OverflowError:
        raise ValueError(f"weight out of float32 range: {sample.kg!r}") from None


def encode_weight(samples: Sequence[WeightSample], att_payload: int = DEFAULT_ATT_PAYLOAD) -> bytes:
    """One weight notification: tag 1, length 8·n, then n samples (1 ≤ n ≤ max_samples)."""
    limit = max_samples(att_payload)
    if not 1 <= len(samples) <= limit:
        raise ValueError(f"a notification of {att_payload} bytes carries 1..{limit} samples")
    body = b"".join(_pack_sample(s) for s in samples)
    return bytes([ResponseTag.WEIGHT_MEASUREMENT, len(body)]) + body


def encode_weights(
    samples: Iterable[WeightSample], att_payload: int = DEFAULT_ATT_PAYLOAD
) -> list[bytes]:
    """Samples batched into as few notifications as ``att_payload`` allows, in order."""
    items = list(samples)
    step = max_samples(att_payload)
    if step < 1:
        raise ValueError(f"no sample fits a notification of {att_payload} bytes")
    return [encode_weight(items[i : i + step], att_payload) for i in range(0, len(items), step)]


def encode_response(payload: bytes = b"") -> bytes:
    """A command response (tag 0). Build the payload as the request defines it, e.g.
    ``(3850).to_bytes(4, "little")`` for GET_BATTERY_VOLTAGE."""
    if len(payload) > _MAX_LENGTH:
        raise ValueError(f"a response payload holds at most {_MAX_LENGTH} bytes: {len(payload)}")
    return bytes([ResponseTag.COMMAND_RESPONSE, len(payload)]) + bytes(payload)


def encode_low_power() -> bytes:
    """The low-power warning (tag 4, no payload)."""
    return bytes([ResponseTag.LOW_POWER_WARNING, 0])


@dataclass(frozen=True)
class Command:
    """A control-point write with a known opcode."""

    opcode: Opcode
    payload: bytes = b""


@dataclass(frozen=True)
class UnknownCommand:
    """A write whose first byte is no known opcode, kept whole (e.g. the undocumented REBOOT
    ``75 00 01``, which is not TLV-shaped)."""

    data: bytes


class CommandDrop(StrEnum):
    EMPTY = "empty"  # a zero-length write
    BAD_LENGTH = "bad length"  # a known opcode whose length byte disagrees with the write


class CommandDecoder:
    """Device side: one control-point write in, at most one command out.

    Accepts the one-byte form (opcode) the vendor's sample writes and the TLV form (opcode,
    length, payload) of which PyTindeq's (opcode, 0x00) is the empty case (§1.1).
    """

    def __init__(self) -> None:
        self.drops: Counter[CommandDrop] = Counter()
        self.dropped = 0

    def feed(self, write: bytes) -> list[Command | UnknownCommand]:
        data = bytes(write)
        if not data:
            return self._drop(CommandDrop.EMPTY)
        try:
            opcode = Opcode(data[0])
        except ValueError:
            return [UnknownCommand(data)]
        if len(data) == 1:
            return [Command(opcode)]
        if data[1] != len(data) - _HEADER:
            return self._drop(CommandDrop.BAD_LENGTH)
        return [Command(opcode, data[_HEADER:])]

    def _drop(self, reason: CommandDrop) -> list[Command | UnknownCommand]:
        self.drops[reason] += 1
        self.dropped += 1
        return []


# --------------------------------------------------------------------------- device clock

_HALF_WRAP = US_WRAP // 2


def unwrap_us(previous_unwrapped: int | None, raw_u32: int) -> int:
    """Extend the device's wrapping uint32 µs counter to an unbounded integer.

    The result is the value congruent to ``raw_u32`` (mod 2**32) nearest to
    ``previous_unwrapped``: a forward step crosses the wrap, and a small backward step (a sample
    out of order) stays a small backward step rather than a jump of 71 minutes. Steps of half
    a wrap (2**31 µs, about 35.8 minutes) or more cannot be told apart from the other
    direction. ``None`` starts the count at ``raw_u32``.
    """
    if not 0 <= raw_u32 < US_WRAP:
        raise ValueError(f"not a uint32: {raw_u32}")
    if previous_unwrapped is None:
        return raw_u32
    delta = (raw_u32 - previous_unwrapped) % US_WRAP
    if delta >= _HALF_WRAP:
        delta -= US_WRAP
    return previous_unwrapped + delta
