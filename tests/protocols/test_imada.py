"""The Imada codec: golden lines from the documented format, three ways of feeding, properties.

Source for every golden line: shared/reference/device-protocols.md §2.2 (number, then 3 status
characters unit/mode/condition, then CR; ``D`` CR requests the displayed value).
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.imada import (
    BAUD,
    MAX_LINE,
    ImadaUnit,
    Reading,
    ReplyDecoder,
    Request,
    RequestDecoder,
    UnknownCommand,
    encode_reading,
    encode_request,
)
from tests.protocols.three_ways import Decoded
from tests.protocols.three_ways import decode_three_ways as three_ways


def decode_three_ways(data: bytes) -> Decoded:
    return three_ways(ReplyDecoder, data, terminator=b"\r")


# The status letters below are placeholders: their meanings are not documented (§2.2).
GOLDEN: list[tuple[bytes, Reading]] = [
    (b"12.34NXY\r", Reading(12.34, "N", "X", "Y")),
    (b"-0.56KPO\r", Reading(-0.56, "K", "P", "O")),  # the sign is passed through
    (b"+100.0LTE\r", Reading(100.0, "L", "T", "E")),
    (b"7abc\r", Reading(7.0, "a", "b", "c")),
    (b"  3.5 NXY\r", Reading(3.5, "N", "X", "Y")),  # padding around the number
    (b"1.5012\r", Reading(1.5, "0", "1", "2")),  # status is always the last 3 characters
    (b".5N Y\r", Reading(0.5, "N", " ", "Y")),  # a space is a valid status character
    (b"12.34NXY\r\n", Reading(12.34, "N", "X", "Y")),  # CR LF also works
    (b"12.34NXY\n", Reading(12.34, "N", "X", "Y")),  # and a lone LF
]


@pytest.mark.parametrize(("line", "expected"), GOLDEN, ids=repr)
def test_golden_reply(line: bytes, expected: Reading) -> None:
    decoded = decode_three_ways(line)
    assert decoded == Decoded([expected], 1, 0)


def test_golden_replies_in_one_stream() -> None:
    decoded = decode_three_ways(b"".join(line for line, _ in GOLDEN))
    assert decoded.replies == [reading for _, reading in GOLDEN]


def test_reading_keeps_raw_line_and_status() -> None:
    (reading,) = ReplyDecoder().feed(b"-0.56KPO\r")
    assert reading.raw == "-0.56KPO"
    assert reading.status == "KPO"
    assert (reading.unit_char, reading.mode_char, reading.condition_char) == ("K", "P", "O")


GARBAGE_LINES = [
    b"NXY\r",  # no number
    b"12\r",  # too short for a number and 3 status characters
    b"abcNXY\r",
    b"nanNXY\r",
    b"infNXY\r",
    b"1e5NXY\r",
    b"1.2.3NXY\r",
    b"12.3\x00XY\r",
    b"\x80\x81NXY\r",
    b"12.3\tXY\r",
    b"   \r",
]


@pytest.mark.parametrize("line", GARBAGE_LINES, ids=repr)
def test_garbage_line_is_counted_and_skipped(line: bytes) -> None:
    decoded = decode_three_ways(line + b"1.5NXY\r")
    assert decoded == Decoded([Reading(1.5, "N", "X", "Y")], 1, 1)


def test_over_long_line_is_one_garbage_line_and_the_cap_is_kept() -> None:
    at_cap = b"1" * (MAX_LINE - 3) + b"NXY"
    assert decode_three_ways(at_cap + b"\r").lines == 1
    decoded = decode_three_ways(b"9" * (MAX_LINE + 1) + b"\r2NXY\r")
    assert decoded == Decoded([Reading(2.0, "N", "X", "Y")], 1, 1)


def test_unterminated_noise_does_not_grow_the_buffer() -> None:
    decoder = ReplyDecoder()
    for _ in range(1000):
        assert decoder.feed(b"\xaa" * 1000) == []
    assert len(decoder._buffer) <= MAX_LINE
    assert decoder.feed(b"\r3NXY\r") == [Reading(3.0, "N", "X", "Y")]
    assert (decoder.lines, decoder.garbage) == (1, 1)


@pytest.mark.parametrize(
    ("unit", "newtons"),
    [
        (ImadaUnit.N, 2.0),
        (ImadaUnit.KGF, 2 * 9.80665),
        (ImadaUnit.GF, 2 * 0.00980665),
        (ImadaUnit.LBF, 2 * 4.4482216152605),
        (ImadaUnit.OZF, 2 * 4.4482216152605 / 16),
    ],
)
def test_newtons_uses_the_unit_the_caller_names(unit: ImadaUnit, newtons: float) -> None:
    assert Reading(2.0, "?", "?", "?").newtons(unit) == pytest.approx(newtons, rel=1e-12)


def test_port_settings() -> None:
    assert BAUD == 19200


# --------------------------------------------------------------------------- encoders


def test_encode_request_is_d_cr() -> None:
    assert encode_request() == b"D\r"
    assert encode_request(Request.READ_DISPLAYED) == b"D\r"
    assert [r.value for r in Request] == ["D"]  # nothing undocumented (no zero, no units)


def test_request_decoder() -> None:
    decoder = RequestDecoder()
    assert decoder.feed(b"D\r") == [Request.READ_DISPLAYED]
    assert decoder.feed(b"D\r\n") == [Request.READ_DISPLAYED]  # LF ignored
    assert [c for b in b"D\r" for c in decoder.feed(bytes([b]))] == [Request.READ_DISPLAYED]
    assert decoder.feed(b"\r\rZ\rd\r") == [UnknownCommand("Z"), UnknownCommand("d")]
    for _ in range(10):
        decoder.feed(b"A" * 100)
    assert decoder.feed(b"\r") == [UnknownCommand("A" * MAX_LINE)]


@pytest.mark.parametrize(
    ("value", "status", "decimals", "expected"),
    [
        (12.34, "NXY", 2, b"12.34NXY\r"),
        (-0.56, "KPO", 2, b"-0.56KPO\r"),
        (3.0, "???", 0, b"3???\r"),
        (-0.001, "NXY", 2, b"0.00NXY\r"),  # no "-0.00"
    ],
)
def test_encode_reading(value: float, status: str, decimals: int, expected: bytes) -> None:
    assert encode_reading(value, status, decimals) == expected


@pytest.mark.parametrize(
    ("value", "status", "decimals", "message"),
    [
        (math.nan, "NXY", 2, "non-finite"),
        (math.inf, "NXY", 2, "non-finite"),
        (1.0, "NX", 2, "3 printable"),
        (1.0, "NX\r", 2, "3 printable"),
        (1.0, "NXY", -1, "decimals"),
    ],
)
def test_encode_reading_refuses_bad_input(
    value: float, status: str, decimals: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        encode_reading(value, status, decimals)


# --------------------------------------------------------------------------- properties

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
statuses = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=3, max_size=3
)


@given(value=finite, status=statuses, decimals=st.integers(min_value=0, max_value=4))
def test_encode_then_decode_round_trips(value: float, status: str, decimals: int) -> None:
    (reading,) = ReplyDecoder().feed(encode_reading(value, status, decimals))
    assert reading.status == status
    assert abs(reading.value - value) <= 0.5 * 10**-decimals + 1e-9 * max(1.0, abs(value))


@given(chunks=st.lists(st.binary(max_size=80), max_size=8))
def test_reply_decoder_never_raises_and_accounts_for_every_line(chunks: list[bytes]) -> None:
    decoder = ReplyDecoder()
    readings = [reading for chunk in chunks for reading in decoder.feed(chunk)]
    terminated = re.split(rb"[\r\n]", b"".join(chunks))[:-1]
    assert decoder.lines + decoder.garbage == sum(1 for line in terminated if line)
    assert decoder.lines == len(readings)


@given(chunks=st.lists(st.binary(max_size=40), max_size=8))
def test_reply_decoder_survives_noise_then_decodes(chunks: list[bytes]) -> None:
    decoder = ReplyDecoder()
    for chunk in chunks:
        decoder.feed(chunk)
    assert decoder.feed(b"\r12.34NXY\r")[-1:] == [Reading(12.34, "N", "X", "Y")]


@given(count=st.integers(min_value=0, max_value=20), cut=st.integers(min_value=0, max_value=60))
def test_request_decoder_round_trip(count: int, cut: int) -> None:
    wire = encode_request() * count
    decoder = RequestDecoder()
    assert decoder.feed(wire[:cut]) + decoder.feed(wire[cut:]) == [Request.READ_DISPLAYED] * count
