"""The Tindeq Progressor codec: golden bytes built by hand from the layout in
shared/reference/device-protocols.md §1.1, three ways of feeding, properties."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.progressor import (
    ADVERTISED_NAME_PREFIX,
    ANSWERED_OPCODES,
    CONTROL_POINT_UUID,
    DATA_POINT_UUID,
    DEFAULT_ATT_PAYLOAD,
    DFU_SERVICE_UUID,
    SERVICE_UUID,
    US_WRAP,
    Command,
    CommandDecoder,
    CommandDrop,
    CommandResponse,
    Event,
    LowPowerWarning,
    NotificationDecoder,
    NotificationDrop,
    Opcode,
    PendingCommands,
    ResponseTag,
    RfdPeak,
    UnknownCommand,
    WeightSample,
    WeightSamples,
    encode_command,
    encode_low_power,
    encode_response,
    encode_weight,
    encode_weights,
    max_samples,
    unwrap_us,
)

# Garbage notifications: an unknown tag, and a weight frame whose length byte overruns it.
GARBAGE_BEFORE = b"\xff\x02ab"
GARBAGE_AFTER = b"\x01\x10\x00\x00"


@dataclass(frozen=True)
class Decoded:
    events: list[Event]
    dropped: int
    unmatched: int


def _decode(notifications: Sequence[bytes], expect: Sequence[Opcode]) -> Decoded:
    decoder = NotificationDecoder()
    for opcode in expect:
        decoder.expect(opcode)
    events = [event for n in notifications for event in decoder.feed(n)]
    return Decoded(events, decoder.dropped, decoder.unmatched)


def decode_three_ways(notifications: Sequence[bytes], expect: Sequence[Opcode] = ()) -> Decoded:
    """Decode notification by notification; split into one-byte notifications; and between
    garbage notifications. A notification is a whole BLE message, not part of a stream, so
    one-byte pieces must never be glued back together: each is counted and dropped."""
    whole = _decode(notifications, expect)
    bytewise = _decode([bytes([b]) for n in notifications for b in n], expect)
    assert bytewise == Decoded([], sum(len(n) for n in notifications), 0)
    wrapped = _decode([GARBAGE_BEFORE, *notifications, GARBAGE_AFTER], expect)
    assert wrapped.events == whole.events
    assert wrapped.unmatched == whole.unmatched
    assert wrapped.dropped == whole.dropped + 2
    return whole


def f32(value: float) -> float:
    """``value`` rounded to float32, as it travels on the wire."""
    result: float = struct.unpack("<f", struct.pack("<f", value))[0]
    return result


# --------------------------------------------------------------------------- constants


def test_uuids_and_name_prefix_are_the_documented_ones() -> None:
    # device-protocols.md §1.1 table (progressor_client.py; hangtime progressor.model.ts).
    assert SERVICE_UUID == "7e4e1701-1ea6-40c9-9dcc-13d34ffead57"
    assert DATA_POINT_UUID == "7e4e1702-1ea6-40c9-9dcc-13d34ffead57"
    assert CONTROL_POINT_UUID == "7e4e1703-1ea6-40c9-9dcc-13d34ffead57"
    assert DFU_SERVICE_UUID == "0000fe59-0000-1000-8000-00805f9b34fb"
    assert ADVERTISED_NAME_PREFIX == "Progressor"


def test_response_tags() -> None:
    assert [int(t) for t in ResponseTag] == [0, 1, 2, 3, 4]


# --------------------------------------------------------------------------- commands

# Every opcode's one-byte write, by hand from the §1.1 opcode table (hex and ASCII columns).
GOLDEN_COMMANDS: list[tuple[Opcode, bytes]] = [
    (Opcode.TARE_SCALE, b"\x64"),  # 'd'
    (Opcode.START_WEIGHT_MEAS, b"\x65"),  # 'e'
    (Opcode.STOP_WEIGHT_MEAS, b"\x66"),  # 'f'
    (Opcode.START_PEAK_RFD_MEAS, b"\x67"),  # 'g'
    (Opcode.START_PEAK_RFD_MEAS_SERIES, b"\x68"),  # 'h'
    (Opcode.ADD_CALIBRATION_POINT, b"\x69"),  # 'i'
    (Opcode.SAVE_CALIBRATION, b"\x6a"),  # 'j'
    (Opcode.GET_APP_VERSION, b"\x6b"),  # 'k'
    (Opcode.GET_ERROR_INFORMATION, b"\x6c"),  # 'l'
    (Opcode.CLR_ERROR_INFORMATION, b"\x6d"),  # 'm'
    (Opcode.ENTER_SLEEP, b"\x6e"),  # 'n'
    (Opcode.GET_BATTERY_VOLTAGE, b"\x6f"),  # 'o'
    (Opcode.GET_PROGRESSOR_ID, b"\x70"),  # 'p', undocumented [S]
]


def test_golden_commands_cover_every_opcode() -> None:
    assert {opcode for opcode, _ in GOLDEN_COMMANDS} == set(Opcode)


@pytest.mark.parametrize(("opcode", "wire"), GOLDEN_COMMANDS, ids=repr)
def test_command_golden_bytes(opcode: Opcode, wire: bytes) -> None:
    assert encode_command(opcode) == wire
    decoder = CommandDecoder()
    assert decoder.feed(wire) == [Command(opcode)]  # the sample client's one-byte form
    assert decoder.feed(wire + b"\x00") == [Command(opcode)]  # PyTindeq's (opcode, 0x00)
    assert decoder.dropped == 0


def test_command_with_payload_is_tlv() -> None:
    wire = encode_command(Opcode.ADD_CALIBRATION_POINT, b"\x01\x02")
    assert wire == b"\x69\x02\x01\x02"
    assert CommandDecoder().feed(wire) == [Command(Opcode.ADD_CALIBRATION_POINT, b"\x01\x02")]


def test_encode_command_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="at most 255"):
        encode_command(Opcode.TARE_SCALE, b"x" * 256)
    with pytest.raises(ValueError, match="not a valid Opcode"):
        encode_command(99)  # type: ignore[arg-type]


def test_command_decoder_drops_and_unknowns() -> None:
    decoder = CommandDecoder()
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\x64\x01") == []  # length 1 with no payload byte
    assert decoder.feed(b"\x64\x00\x00") == []  # length 0 with a payload byte
    assert decoder.drops == {CommandDrop.EMPTY: 1, CommandDrop.BAD_LENGTH: 2}
    assert decoder.dropped == 3
    # The undocumented REBOOT write (§1.1) is not TLV-shaped; it is passed on whole.
    assert decoder.feed(b"\x75\x00\x01") == [UnknownCommand(b"\x75\x00\x01")]
    assert decoder.feed(b"\x00") == [UnknownCommand(b"\x00")]
    assert decoder.dropped == 3


# --------------------------------------------------------------------------- weights

# Hand-built from §1.1: tag 1, length 8·n, then per sample float32 LE kg + uint32 LE µs.
ONE_KG_AT_1S = b"\x01\x08" + b"\x00\x00\x80\x3f" + b"\x40\x42\x0f\x00"  # 1.0 kg, 1_000_000 µs
TWO_SAMPLES = (
    b"\x01\x10"
    + b"\x00\x00\x20\xc0"  # -2.5 kg (tension after a tare)
    + b"\x78\x56\x34\x12"  # 0x12345678 µs
    + b"\x00\x00\x4c\x41"  # 12.75 kg
    + b"\xff\xff\xff\xff"  # 2**32 - 1 µs: the last tick before the wrap
)


def test_golden_one_sample() -> None:
    decoded = decode_three_ways([ONE_KG_AT_1S])
    assert decoded == Decoded([WeightSamples((WeightSample(1.0, 1_000_000),))], 0, 0)


def test_golden_two_samples_keep_sign_and_full_u32() -> None:
    decoded = decode_three_ways([TWO_SAMPLES])
    assert decoded.events == [
        WeightSamples((WeightSample(-2.5, 0x12345678), WeightSample(12.75, 0xFFFFFFFF)))
    ]
    assert encode_weight([WeightSample(-2.5, 0x12345678), WeightSample(12.75, 0xFFFFFFFF)]) == (
        TWO_SAMPLES
    )


@pytest.mark.parametrize("count", [1, 2, 3, 7, 30, 31])
def test_weight_notifications_with_n_samples(count: int) -> None:
    samples = tuple(WeightSample(0.25 * i - 3.0, 12_500 * i) for i in range(count))
    wire = b"\x01" + bytes([8 * count]) + b"".join(struct.pack("<fI", *astuple(s)) for s in samples)
    assert encode_weight(samples, att_payload=2 + 8 * count) == wire
    assert decode_three_ways([wire]).events == [WeightSamples(samples)]


def astuple(sample: WeightSample) -> tuple[float, int]:
    return (sample.kg, sample.device_us)


def test_newtons() -> None:
    assert WeightSample(-2.0, 0).newtons == pytest.approx(-19.6133)


# NaN 7fc00000, +inf 7f800000, -inf ff800000 as float32 LE.
NAN = b"\x00\x00\xc0\x7f"
INF = b"\x00\x00\x80\x7f"
NEG_INF = b"\x00\x00\x80\xff"


def test_non_finite_samples_are_dropped_and_counted_one_by_one() -> None:
    wire = (
        b"\x01\x20"
        + b"\x00\x00\x80\x3f\x01\x00\x00\x00"  # 1.0 kg
        + NAN
        + b"\x02\x00\x00\x00"
        + NEG_INF
        + b"\x03\x00\x00\x00"
        + b"\x00\x00\x00\x3f\x04\x00\x00\x00"  # 0.5 kg
    )
    decoded = decode_three_ways([wire])
    assert decoded.events == [WeightSamples((WeightSample(1.0, 1), WeightSample(0.5, 4)))]
    assert decoded.dropped == 2


@pytest.mark.parametrize("value", [NAN, INF, NEG_INF])
def test_a_batch_of_only_non_finite_samples_gives_no_event(value: bytes) -> None:
    decoder = NotificationDecoder()
    assert decoder.feed(b"\x01\x08" + value + b"\x00\x00\x00\x00") == []
    assert decoder.feed(ONE_KG_AT_1S) == [WeightSamples((WeightSample(1.0, 1_000_000),))]
    assert decoder.drops == {NotificationDrop.NON_FINITE: 1}


# --------------------------------------------------------------------------- bad notifications

BAD_NOTIFICATIONS: list[tuple[bytes, NotificationDrop]] = [
    (b"", NotificationDrop.SHORT),
    (b"\x01", NotificationDrop.SHORT),
    (ONE_KG_AT_1S[:-1], NotificationDrop.TRUNCATED),  # length 8, 7 bytes present
    (ONE_KG_AT_1S[:2], NotificationDrop.TRUNCATED),
    (TWO_SAMPLES[:10], NotificationDrop.TRUNCATED),  # one whole sample of two: still cut
    (b"\x00\x05abc", NotificationDrop.TRUNCATED),
    (b"\x04\x01", NotificationDrop.TRUNCATED),
    (b"\x01\x00", NotificationDrop.EMPTY_WEIGHT),
    (b"\x01\x07" + ONE_KG_AT_1S[2:9], NotificationDrop.RAGGED_WEIGHT),
    (b"\x01\x0c" + TWO_SAMPLES[2:14], NotificationDrop.RAGGED_WEIGHT),
    (b"\x05\x00", NotificationDrop.UNKNOWN_TAG),
    (b"\x64\x01\x00", NotificationDrop.UNKNOWN_TAG),
    (b"\xff\x00", NotificationDrop.UNKNOWN_TAG),
]


@pytest.mark.parametrize(("notification", "reason"), BAD_NOTIFICATIONS, ids=repr)
def test_bad_notification_is_counted_and_skipped(
    notification: bytes, reason: NotificationDrop
) -> None:
    decoded = decode_three_ways([notification, ONE_KG_AT_1S])
    assert decoded.events == [WeightSamples((WeightSample(1.0, 1_000_000),))]
    assert decoded.dropped == 1
    decoder = NotificationDecoder()
    decoder.feed(notification)
    assert decoder.drops == {reason: 1}


def test_bytes_past_the_declared_length_are_ignored_and_counted() -> None:
    decoder = NotificationDecoder()
    assert decoder.feed(ONE_KG_AT_1S + b"\x00\x00\x00") == [
        WeightSamples((WeightSample(1.0, 1_000_000),))
    ]
    assert (decoder.trailing_bytes, decoder.dropped) == (3, 0)


def test_rfd_and_low_power_frames() -> None:
    decoded = decode_three_ways([b"\x02\x02\x01\x02", b"\x03\x00", b"\x04\x00"])
    assert decoded.events == [
        RfdPeak(series=False, payload=b"\x01\x02"),
        RfdPeak(series=True, payload=b""),
        LowPowerWarning(),
    ]


# --------------------------------------------------------------------------- command responses

VERSION = b"\x00\x05" + b"1.2.3"  # UTF-8 text
BATTERY = b"\x00\x04" + b"\x0a\x0f\x00\x00"  # 3850 mV, uint32 LE
PROGRESSOR_ID = b"\x00\x03" + b"\x01\x02\x03"  # u64 LE with five trailing zero bytes omitted


def test_responses_match_the_oldest_outstanding_request() -> None:
    expect = [Opcode.GET_APP_VERSION, Opcode.GET_BATTERY_VOLTAGE, Opcode.GET_PROGRESSOR_ID]
    decoded = decode_three_ways([VERSION, ONE_KG_AT_1S, BATTERY, PROGRESSOR_ID, BATTERY], expect)
    version, weights, battery, ident, extra = decoded.events
    assert version == CommandResponse(Opcode.GET_APP_VERSION, b"1.2.3")
    assert isinstance(version, CommandResponse)
    assert version.text() == "1.2.3"
    assert isinstance(weights, WeightSamples)
    assert battery == CommandResponse(Opcode.GET_BATTERY_VOLTAGE, b"\x0a\x0f\x00\x00")
    assert isinstance(battery, CommandResponse)
    assert battery.battery_mv() == 3850
    assert isinstance(ident, CommandResponse)
    assert ident.opcode is Opcode.GET_PROGRESSOR_ID
    assert ident.progressor_id() == 0x030201
    assert extra == CommandResponse(None, b"\x0a\x0f\x00\x00")  # nothing was outstanding
    assert (decoded.unmatched, decoded.dropped) == (1, 0)


def test_a_response_with_nothing_outstanding_is_reported_and_counted() -> None:
    decoded = decode_three_ways([encode_response(b"")])
    assert decoded == Decoded([CommandResponse(None, b"")], 0, 1)


def test_error_information_text_and_nul_padding() -> None:
    decoder = NotificationDecoder()
    decoder.expect(Opcode.GET_ERROR_INFORMATION)
    (response,) = decoder.feed(encode_response("no crash ✓\x00".encode()))
    assert isinstance(response, CommandResponse)
    assert response.text() == "no crash ✓"


@pytest.mark.parametrize(
    ("opcode", "payload"),
    [
        (Opcode.GET_BATTERY_VOLTAGE, b"\x0a\x0f\x00"),
        (Opcode.GET_BATTERY_VOLTAGE, b"\x0a\x0f\x00\x00\x00"),
        (Opcode.GET_APP_VERSION, b"\xff\xfe"),
        (Opcode.GET_PROGRESSOR_ID, b"\x01" * 9),
    ],
)
def test_a_malformed_response_is_dropped_and_answers_its_request(
    opcode: Opcode, payload: bytes
) -> None:
    decoder = NotificationDecoder()
    decoder.expect(opcode)
    decoder.expect(Opcode.GET_BATTERY_VOLTAGE)
    assert decoder.feed(encode_response(payload)) == []
    assert decoder.drops == {NotificationDrop.BAD_RESPONSE: 1}
    (battery,) = decoder.feed(BATTERY)  # the next response still goes to the next request
    assert battery == CommandResponse(Opcode.GET_BATTERY_VOLTAGE, b"\x0a\x0f\x00\x00")


def test_response_helpers_refuse_a_payload_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        CommandResponse(None, b"\x01").battery_mv()
    with pytest.raises(ValueError, match="at most 8"):
        CommandResponse(None, b"\x01" * 9).progressor_id()
    with pytest.raises(ValueError, match="UTF-8"):
        CommandResponse(None, b"\xff").text()
    assert CommandResponse(None, b"").progressor_id() == 0


@pytest.mark.parametrize("opcode", sorted(set(Opcode) - ANSWERED_OPCODES))
def test_expecting_an_answer_to_a_command_without_one_is_refused(opcode: Opcode) -> None:
    with pytest.raises(ValueError, match="no documented command response"):
        NotificationDecoder().expect(opcode)


def test_pending_commands_clear() -> None:
    pending = PendingCommands()
    pending.expect(Opcode.GET_APP_VERSION)
    pending.expect(Opcode.GET_BATTERY_VOLTAGE)
    assert len(pending) == 2
    assert pending.match() is Opcode.GET_APP_VERSION
    pending.clear()
    assert pending.match() is None


# --------------------------------------------------------------------------- device side


def test_encode_response_and_low_power_golden() -> None:
    assert encode_response(b"1.2.3") == VERSION
    assert encode_response((3850).to_bytes(4, "little")) == BATTERY
    assert encode_response() == b"\x00\x00"
    assert encode_low_power() == b"\x04\x00"
    with pytest.raises(ValueError, match="at most 255"):
        encode_response(b"x" * 256)


@pytest.mark.parametrize(
    ("att_payload", "expected"),
    [(DEFAULT_ATT_PAYLOAD, 2), (17, 1), (9, 0), (0, 0), (244, 30), (257, 31), (512, 31)],
)
def test_max_samples(att_payload: int, expected: int) -> None:
    assert max_samples(att_payload) == expected


def test_encode_weights_batches_for_the_default_att_payload() -> None:
    samples = [WeightSample(float(i), i) for i in range(5)]
    notifications = encode_weights(samples)
    assert [len(n) for n in notifications] == [18, 18, 10]
    assert all(len(n) <= DEFAULT_ATT_PAYLOAD for n in notifications)
    decoded = decode_three_ways(notifications)
    assert [s for e in decoded.events if isinstance(e, WeightSamples) for s in e.samples] == (
        samples
    )
    assert encode_weights([]) == []
    with pytest.raises(ValueError, match="no sample fits"):
        encode_weights(samples, att_payload=9)


@pytest.mark.parametrize(
    ("samples", "match"),
    [
        ([], "1..2 samples"),
        ([WeightSample(0.0, 0)] * 3, "1..2 samples"),
        ([WeightSample(math.nan, 0)], "finite"),
        ([WeightSample(math.inf, 0)], "finite"),
        ([WeightSample(1e39, 0)], "float32 range"),
        ([WeightSample(0.0, -1)], "uint32"),
        ([WeightSample(0.0, US_WRAP)], "uint32"),
    ],
)
def test_encode_weight_refuses_what_the_device_cannot_send(
    samples: list[WeightSample], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        encode_weight(samples)


# --------------------------------------------------------------------------- clock unwrap


@pytest.mark.parametrize(
    ("previous", "raw", "expected"),
    [
        (None, 123, 123),
        (1_000, 2_000, 2_000),
        (US_WRAP - 10, 5, US_WRAP + 5),  # across the wrap
        (US_WRAP + 5, US_WRAP - 10, US_WRAP - 10),  # a sample out of order, back across it
        (5 * US_WRAP + 100, 90, 5 * US_WRAP + 90),  # a small step back, several wraps in
        (0, 2**31 - 1, 2**31 - 1),  # the largest step read forward
        (0, 2**31, -(2**31)),  # half a wrap is read as backward
    ],
)
def test_unwrap_us(previous: int | None, raw: int, expected: int) -> None:
    assert unwrap_us(previous, raw) == expected


@pytest.mark.parametrize("raw", [-1, US_WRAP])
def test_unwrap_us_refuses_a_non_uint32(raw: int) -> None:
    with pytest.raises(ValueError, match="uint32"):
        unwrap_us(0, raw)


# --------------------------------------------------------------------------- properties

float32s = st.floats(width=32, allow_nan=False, allow_infinity=False)
finite_kg = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
u32 = st.integers(min_value=0, max_value=US_WRAP - 1)
samples_st = st.builds(WeightSample, kg=float32s | finite_kg, device_us=u32)


@given(samples=st.lists(samples_st, min_size=1, max_size=31))
def test_encode_weight_then_decode_is_identity_within_float32(
    samples: list[WeightSample],
) -> None:
    (event,) = NotificationDecoder().feed(encode_weight(samples, att_payload=257))
    assert isinstance(event, WeightSamples)
    assert [s.device_us for s in event.samples] == [s.device_us for s in samples]
    for got, sent in zip(event.samples, samples, strict=True):
        assert got.kg == f32(sent.kg)
        assert got.kg == pytest.approx(sent.kg, rel=2**-23, abs=1e-38)


@given(
    notifications=st.lists(st.binary(max_size=40), max_size=12),
    expect=st.lists(st.sampled_from(sorted(ANSWERED_OPCODES)), max_size=4),
)
def test_notification_decoder_never_raises_and_accounts_for_each_notification(
    notifications: list[bytes], expect: list[Opcode]
) -> None:
    decoder = NotificationDecoder()
    for opcode in expect:
        decoder.expect(opcode)
    for notification in notifications:
        before = decoder.dropped
        events = decoder.feed(notification)
        assert len(events) <= 1
        assert events or decoder.dropped > before
        for event in events:
            if isinstance(event, WeightSamples):
                assert event.samples
                assert all(math.isfinite(s.kg) for s in event.samples)
    assert decoder.dropped == sum(decoder.drops.values())


@given(requests=st.lists(st.sampled_from(sorted(ANSWERED_OPCODES)), max_size=10))
def test_responses_are_matched_in_request_order(requests: list[Opcode]) -> None:
    payloads = {
        Opcode.GET_APP_VERSION: b"1.0",
        Opcode.GET_ERROR_INFORMATION: b"",
        Opcode.GET_BATTERY_VOLTAGE: b"\x00\x10\x00\x00",
        Opcode.GET_PROGRESSOR_ID: b"\x07",
    }
    decoder = NotificationDecoder()
    for opcode in requests:
        decoder.expect(opcode)
    wires = [encode_response(payloads[op]) for op in requests] + [encode_response()]
    events = [event for wire in wires for event in decoder.feed(wire)]
    opcodes = [e.opcode for e in events if isinstance(e, CommandResponse)]
    assert opcodes == [*requests, None]
    assert decoder.unmatched == 1


@given(opcode=st.sampled_from(list(Opcode)), payload=st.binary(min_size=0, max_size=255))
def test_encode_command_then_command_decoder_is_identity(opcode: Opcode, payload: bytes) -> None:
    assert CommandDecoder().feed(encode_command(opcode, payload)) == [Command(opcode, payload)]


@given(writes=st.lists(st.binary(max_size=20), max_size=20))
def test_command_decoder_never_raises(writes: list[bytes]) -> None:
    decoder = CommandDecoder()
    for write in writes:
        assert len(decoder.feed(write)) <= 1


@given(start=u32, steps=st.lists(st.integers(min_value=0, max_value=2**31 - 1), max_size=50))
def test_unwrap_us_is_monotonic_across_random_wraps(start: int, steps: list[int]) -> None:
    true = start
    unwrapped = unwrap_us(None, start % US_WRAP)
    for step in steps:
        true += step
        following = unwrap_us(unwrapped, true % US_WRAP)
        assert following >= unwrapped
        assert following == true
        unwrapped = following


@given(
    start=st.integers(min_value=0, max_value=10 * US_WRAP),
    jitter=st.lists(st.integers(min_value=-50_000, max_value=50_000), max_size=50),
)
def test_unwrap_us_tolerates_small_out_of_order_steps(start: int, jitter: list[int]) -> None:
    # Samples 12.5 ms apart (80 Hz) arriving up to 50 ms out of place.
    unwrapped = start
    for i, offset in enumerate(jitter):
        true = start + 12_500 * (i + 1) + offset
        unwrapped = unwrap_us(unwrapped, true % US_WRAP)
        assert unwrapped == true
