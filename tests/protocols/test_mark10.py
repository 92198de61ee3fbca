"""The Mark-10 GCL2 codec: golden lines from the manuals, three ways of feeding, properties."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.mark10 import (
    MAX_LINE,
    ErrorReply,
    Mark10Unit,
    Reading,
    Reply,
    ReplyDecoder,
    Request,
    RequestDecoder,
    SetUnit,
    TextReply,
    UnknownCommand,
    encode_error,
    encode_reading,
    encode_request,
    encode_text,
    parse_unit,
)
from tests.protocols.three_ways import Decoded
from tests.protocols.three_ways import decode_three_ways as three_ways


def decode_three_ways(data: bytes) -> Decoded:
    return three_ways(ReplyDecoder, data)


# --------------------------------------------------------------------------- golden replies

# (line as the gauge sends it, expected reply). Source: Mark-10 Series 4 manual §9.1.4 examples
# and Series 5 manual p.19 error codes (shared/reference/device-protocols.md §2.1).
GOLDEN_REPLIES: list[tuple[bytes, Reply]] = [
    (b"-18.78 lbF\r\n", Reading(-18.78, Mark10Unit.LBF)),  # 18.78 lbF of tension
    (b"4.285 N\r\n", Reading(4.285, Mark10Unit.N)),  # compression
    (b"12.5\r\n", Reading(12.5, None)),  # unit output disabled in Data format
    (b"*10\r\n", ErrorReply(10)),
    (b"*11\r\n", ErrorReply(11)),
    (b"*12\r\n", ErrorReply(12)),
    (b"*22\r\n", ErrorReply(22)),
    (b"M5-100\r\n", TextReply("M5-100")),
    (b"4.285 N\r", Reading(4.285, Mark10Unit.N)),  # a lone CR still ends the line
    (b"4.285 N\n", Reading(4.285, Mark10Unit.N)),  # and so does a lone LF
    (b"+3.5 kgF\r\n", Reading(3.5, Mark10Unit.KGF)),  # polarity inverted: a plus sign
    (b"-.5 ozF\r\n", Reading(-0.5, Mark10Unit.OZF)),
    (b"0 mN\r\n", Reading(0.0, Mark10Unit.MN)),
    (b"  7.0   kN  \r\n", Reading(7.0, Mark10Unit.KN)),
    (b"1.04 beta\r\n", TextReply("1.04 beta")),
    (b"V1.00;LBF;CUR\r\n", TextReply("V1.00;LBF;CUR")),
]


@pytest.mark.parametrize(("line", "expected"), GOLDEN_REPLIES, ids=lambda v: repr(v))
def test_golden_reply(line: bytes, expected: Reply) -> None:
    decoded = decode_three_ways(line)
    assert decoded.replies == [expected]
    assert (decoded.lines, decoded.garbage) == (1, 0)


def test_golden_replies_in_one_stream() -> None:
    stream = b"".join(line for line, _ in GOLDEN_REPLIES)
    decoded = decode_three_ways(stream)
    assert decoded.replies == [reply for _, reply in GOLDEN_REPLIES]


GARBAGE_LINES = [
    b"nan N\r\n",
    b"NaN\r\n",
    b"inf lbF\r\n",
    b"-Infinity\r\n",
    b"*abc\r\n",
    b"*\r\n",
    b"*10x\r\n",
    b"\x80\x81\r\n",
    b"4.2\x00 N\r\n",
    b"4.2\tN\r\n",
    b"   \r\n",
    b"\x1b[0m\r\n",
]


@pytest.mark.parametrize("line", GARBAGE_LINES, ids=repr)
def test_garbage_line_is_counted_and_skipped(line: bytes) -> None:
    decoded = decode_three_ways(line + b"1.5 N\r\n")
    assert decoded.replies == [Reading(1.5, Mark10Unit.N)]
    assert (decoded.lines, decoded.garbage) == (1, 1)


def test_empty_lines_are_ignored_not_counted() -> None:
    decoded = decode_three_ways(b"\r\n\r\n\n\r1.5 N\r\n\r\n")
    assert decoded == Decoded([Reading(1.5, Mark10Unit.N)], 1, 0)


def test_line_at_the_cap_is_kept() -> None:
    text = "x" * MAX_LINE
    assert decode_three_ways(text.encode() + b"\r\n").replies == [TextReply(text)]


def test_over_long_line_is_one_garbage_line() -> None:
    decoded = decode_three_ways(b"9" * (MAX_LINE + 1) + b"\r\n2 N\r\n")
    assert decoded == Decoded([Reading(2.0, Mark10Unit.N)], 1, 1)


def test_unterminated_noise_does_not_grow_the_buffer() -> None:
    decoder = ReplyDecoder()
    for _ in range(1000):
        assert decoder.feed(b"\xaa" * 1000) == []
    assert len(decoder._buffer) <= MAX_LINE
    assert decoder.feed(b"\r\n3 N\r\n") == [Reading(3.0, Mark10Unit.N)]
    assert (decoder.lines, decoder.garbage) == (1, 1)


def test_reading_keeps_the_raw_line_for_text_replies() -> None:
    (reply,) = ReplyDecoder().feed(b"1.040\r\n")
    assert isinstance(reply, Reading)
    assert reply.raw == "1.040"
    assert reply == Reading(1.04, None)  # raw takes no part in equality


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize("unit", list(Mark10Unit))
def test_every_unit_round_trips_as_a_reply(unit: Mark10Unit) -> None:
    decoded = decode_three_ways(encode_reading(-1.5, unit))
    assert decoded.replies == [Reading(-1.5, unit)]


@pytest.mark.parametrize("unit", list(Mark10Unit))
def test_parse_unit_accepts_reply_and_command_spellings(unit: Mark10Unit) -> None:
    for spelling in (unit.value, unit.value.upper(), unit.value.lower(), unit.command):
        assert parse_unit(spelling) is unit


@pytest.mark.parametrize("text", ["", "lbs", "newton", "F", "k N"])
def test_parse_unit_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="not a Mark-10 unit"):
        parse_unit(text)


@pytest.mark.parametrize(
    ("unit", "newtons", "command"),
    [
        (Mark10Unit.LBF, 4.4482216152605, "LB"),
        (Mark10Unit.OZF, 4.4482216152605 / 16, "OZ"),
        (Mark10Unit.KGF, 9.80665, "KG"),
        (Mark10Unit.GF, 0.00980665, "G"),
        (Mark10Unit.N, 1.0, "N"),
        (Mark10Unit.MN, 0.001, "MN"),
        (Mark10Unit.KN, 1000.0, "KN"),
    ],
)
def test_unit_factors_and_commands(unit: Mark10Unit, newtons: float, command: str) -> None:
    assert unit.newtons == pytest.approx(newtons, rel=1e-12)
    assert unit.command == command


def test_reading_in_newtons_uses_the_default_unit_only_when_none_printed() -> None:
    assert Reading(-18.78, Mark10Unit.LBF).newtons(Mark10Unit.N) == pytest.approx(-83.5376, 1e-5)
    assert Reading(2.0, None).newtons(Mark10Unit.KGF) == pytest.approx(19.6133)


def test_error_reply_text() -> None:
    assert [ErrorReply(c).text for c in (10, 11, 12, 22)] == [
        "illegal command",
        "not applicable",
        "invalid specifier",
        "value too large",
    ]
    assert ErrorReply(99).text == "unknown error 99"


# --------------------------------------------------------------------------- device-side encoders


@pytest.mark.parametrize(
    ("value", "unit", "decimals", "expected"),
    [
        (-18.78, Mark10Unit.LBF, 2, b"-18.78 lbF\r\n"),
        (4.285, Mark10Unit.N, 3, b"4.285 N\r\n"),
        (4.2861, None, 2, b"4.29\r\n"),
        (12.0, Mark10Unit.KGF, 0, b"12 kgF\r\n"),
        (-0.001, Mark10Unit.N, 2, b"0.00 N\r\n"),  # no "-0.00"
    ],
)
def test_encode_reading(
    value: float, unit: Mark10Unit | None, decimals: int, expected: bytes
) -> None:
    assert encode_reading(value, unit, decimals) == expected


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_encode_reading_refuses_non_finite(value: float) -> None:
    with pytest.raises(ValueError, match="non-finite"):
        encode_reading(value, Mark10Unit.N)


def test_encode_error_and_text() -> None:
    assert encode_error(10) == b"*10\r\n"
    assert encode_text("M5-100") == b"M5-100\r\n"
    with pytest.raises(ValueError, match="printable"):
        encode_text("M5\r\n")
    with pytest.raises(ValueError, match="out of range"):
        encode_error(-1)


# --------------------------------------------------------------------------- requests

GOLDEN_REQUESTS: list[tuple[Request | SetUnit, bytes]] = [
    (Request.READ_DISPLAYED, b"?\r"),
    (Request.READ_CURRENT, b"?C\r"),
    (Request.ZERO, b"Z\r"),
    (Request.MODEL, b"RM\r"),
    (Request.FIRMWARE, b"RV\r"),
    (Request.SERIAL, b"RS\r"),
    (SetUnit(Mark10Unit.LBF), b"LB\r"),
    (SetUnit(Mark10Unit.OZF), b"OZ\r"),
    (SetUnit(Mark10Unit.KGF), b"KG\r"),
    (SetUnit(Mark10Unit.GF), b"G\r"),
    (SetUnit(Mark10Unit.N), b"N\r"),
    (SetUnit(Mark10Unit.MN), b"MN\r"),
    (SetUnit(Mark10Unit.KN), b"KN\r"),
]


@pytest.mark.parametrize(("request_", "wire"), GOLDEN_REQUESTS, ids=repr)
def test_request_golden_bytes(request_: Request | SetUnit, wire: bytes) -> None:
    assert encode_request(request_) == wire
    assert RequestDecoder().feed(wire) == [request_]
    assert RequestDecoder().feed(wire.lower() + b"\n") == [request_]  # case, and CR LF
    decoder = RequestDecoder()
    assert [c for b in wire for c in decoder.feed(bytes([b]))] == [request_]


def test_request_decoder_unknown_and_noise() -> None:
    decoder = RequestDecoder()
    assert decoder.feed(b"\r\r\n") == []  # bare terminators are not commands
    assert decoder.feed(b"foo\r?PT\r") == [UnknownCommand("foo"), UnknownCommand("?PT")]
    assert decoder.feed(b"\n?\n\r") == [Request.READ_DISPLAYED]  # LF is ignored, not a terminator


def test_request_decoder_caps_an_over_long_command() -> None:
    decoder = RequestDecoder()
    for _ in range(100):
        decoder.feed(b"A" * 100)
    (command,) = decoder.feed(b"\r")
    assert command == UnknownCommand("A" * MAX_LINE)


# --------------------------------------------------------------------------- properties

units_or_none = st.sampled_from([*Mark10Unit, None])
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(value=finite, unit=units_or_none, decimals=st.integers(min_value=0, max_value=4))
def test_encode_then_decode_is_identity_within_rounding(
    value: float, unit: Mark10Unit | None, decimals: int
) -> None:
    (reply,) = ReplyDecoder().feed(encode_reading(value, unit, decimals))
    assert isinstance(reply, Reading)
    assert reply.unit is unit
    assert abs(reply.value - value) <= 0.5 * 10**-decimals + 1e-9 * max(1.0, abs(value))


@given(chunks=st.lists(st.binary(max_size=80), max_size=8))
def test_reply_decoder_never_raises_and_accounts_for_every_line(chunks: list[bytes]) -> None:
    decoder = ReplyDecoder()
    replies = [reply for chunk in chunks for reply in decoder.feed(chunk)]
    terminated = re.split(rb"[\r\n]", b"".join(chunks))[:-1]
    assert decoder.lines + decoder.garbage == sum(1 for line in terminated if line)
    assert decoder.lines == len(replies)


@given(chunks=st.lists(st.binary(max_size=40), max_size=8))
def test_reply_decoder_survives_noise_then_decodes(chunks: list[bytes]) -> None:
    decoder = ReplyDecoder()
    for chunk in chunks:
        decoder.feed(chunk)
    # Whatever the noise left in the buffer ends at the first CR LF; the next line is clean.
    assert decoder.feed(b"\r\n-18.78 lbF\r\n")[-1:] == [Reading(-18.78, Mark10Unit.LBF)]


requests = st.sampled_from([request for request, _ in GOLDEN_REQUESTS])


@given(sent=st.lists(requests, max_size=20), cut=st.integers(min_value=0, max_value=200))
def test_request_decoder_round_trip(sent: list[Request | SetUnit], cut: int) -> None:
    wire = b"".join(encode_request(r) for r in sent)
    decoder = RequestDecoder()
    assert decoder.feed(wire[:cut]) + decoder.feed(wire[cut:]) == sent
