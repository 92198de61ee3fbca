"""The Wagner codec: golden records from the documented format, three ways, sign, overload.

Sources (shared/reference/device-protocols.md §2.4): the FDIX continuous-output addendum for
the commands, the UNC notes for ``F`` polling, and the FDV / Force Ten data format for records
(``-XXXXXX YY Peak`` CR LF; space = compression, minus = tension; ``HELP`` = overload).
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.wagner import (
    GUESSED_BAUD,
    MAX_LINE,
    RATES_HZ,
    Overload,
    Reading,
    Reply,
    ReplyDecoder,
    Request,
    RequestDecoder,
    SetRate,
    UnknownCommand,
    WagnerUnit,
    encode_overload,
    encode_reading,
    encode_request,
    parse_unit,
)
from tests.protocols.three_ways import Decoded
from tests.protocols.three_ways import decode_three_ways as three_ways


def decode_three_ways(data: bytes) -> Decoded:
    return three_ways(ReplyDecoder, data)


LB = WagnerUnit.LBF

GOLDEN: list[tuple[bytes, Reply]] = [
    # §2.4 "-XXXXXX YY Peak": a minus is tension, so the value is negative.
    (b"-012.34 LB\r\n", Reading(-12.34, LB, "LB")),
    # A space is compression: positive.
    (b" 012.34 LB\r\n", Reading(12.34, LB, "LB")),
    (b" 012.34 LB Peak\r\n", Reading(12.34, LB, "LB", peak=True)),
    (b"-1234.5 KG Peak\r\n", Reading(-1234.5, WagnerUnit.KGF, "KG", peak=True)),
    (b" 00.000 N\r\n", Reading(0.0, WagnerUnit.N, "N")),
    (b" 12345. OZ\r\n", Reading(12345.0, WagnerUnit.OZF, "OZ")),
    (b" 100.00 g\r\n", Reading(100.0, WagnerUnit.GF, "g")),
    (b"-  1.23 lbf\r\n", Reading(-1.23, LB, "lbf")),  # padding after the sign tolerated
    (b" 012.34 YY\r\n", Reading(12.34, None, "YY")),  # unrecognised units are kept
    # HELP: overloaded; the sign still says which way.
    (b" HELP LB\r\n", Overload(tension=False, unit=LB, unit_text="LB")),
    (b"-HELP LB\r\n", Overload(tension=True, unit=LB, unit_text="LB")),
    (b"-HELP KG Peak\r\n", Overload(True, WagnerUnit.KGF, "KG", peak=True)),
    (b" 012.34 LB\r", Reading(12.34, LB, "LB")),  # a lone CR ends a record
    (b" 012.34 LB\n", Reading(12.34, LB, "LB")),  # and so does a lone LF
]


@pytest.mark.parametrize(("line", "expected"), GOLDEN, ids=repr)
def test_golden_record(line: bytes, expected: Reply) -> None:
    assert decode_three_ways(line) == Decoded([expected], 1, 0)


def test_golden_records_in_one_stream() -> None:
    decoded = decode_three_ways(b"".join(line for line, _ in GOLDEN))
    assert decoded.replies == [reply for _, reply in GOLDEN]


def test_sign_convention() -> None:
    tension, compression = ReplyDecoder().feed(b"-012.34 LB\r\n 012.34 LB\r\n")
    assert isinstance(tension, Reading)
    assert isinstance(compression, Reading)
    assert tension.tension
    assert not compression.tension
    assert tension.value == -compression.value


def test_overload_is_not_a_number() -> None:
    (reply,) = ReplyDecoder().feed(b"-HELP LB\r\n")
    assert isinstance(reply, Overload)
    assert not hasattr(reply, "value")


GARBAGE_LINES = [
    b"012.34 LB\r\n",  # no sign character: neither a space nor a minus
    b"+012.34 LB\r\n",  # a plus is not documented
    b" 012.34\r\n",  # no units
    b" HELPX LB\r\n",
    b" help LB\r\n",
    b" 1.2.3 LB\r\n",
    b" nan LB\r\n",
    b" inf LB\r\n",
    b" 1e3 LB\r\n",
    b" 012.34\tLB\r\n",
    b"\x80 012.34 LB\r\n",
    b" 012.34 LB Peak extra\r\n",
    b"   \r\n",
]


@pytest.mark.parametrize("line", GARBAGE_LINES, ids=repr)
def test_garbage_line_is_counted_and_skipped(line: bytes) -> None:
    decoded = decode_three_ways(line + b" 001.50 LB\r\n")
    assert decoded == Decoded([Reading(1.5, LB, "LB")], 1, 1)


def test_over_long_line_is_one_garbage_line() -> None:
    decoded = decode_three_ways(b" " + b"9" * MAX_LINE + b" LB\r\n 002.00 LB\r\n")
    assert decoded == Decoded([Reading(2.0, LB, "LB")], 1, 1)


def test_unterminated_noise_does_not_grow_the_buffer() -> None:
    decoder = ReplyDecoder()
    for _ in range(1000):
        assert decoder.feed(b"\xaa" * 1000) == []
    assert len(decoder._buffer) <= MAX_LINE
    assert decoder.feed(b"\r\n 003.00 LB\r\n") == [Reading(3.0, LB, "LB")]


@pytest.mark.parametrize(
    ("reading", "default", "newtons"),
    [
        (Reading(-1.0, LB, "LB"), WagnerUnit.N, -4.4482216152605),
        (Reading(2.0, WagnerUnit.KGF, "KG"), WagnerUnit.N, 19.6133),
        (Reading(16.0, WagnerUnit.OZF, "OZ"), WagnerUnit.N, 4.4482216152605),
        (Reading(1000.0, WagnerUnit.GF, "G"), WagnerUnit.N, 9.80665),
        (Reading(3.0, None, "YY"), WagnerUnit.N, 3.0),  # the default applies only here
        (Reading(3.0, WagnerUnit.N, "N"), WagnerUnit.LBF, 3.0),
    ],
)
def test_newtons(reading: Reading, default: WagnerUnit, newtons: float) -> None:
    assert reading.newtons(default) == pytest.approx(newtons, rel=1e-12)


def test_parse_unit() -> None:
    assert parse_unit("lb") is parse_unit("LBF") is WagnerUnit.LBF
    assert parse_unit("Kg") is WagnerUnit.KGF
    assert parse_unit("newton") is None
    assert GUESSED_BAUD == 9600


# --------------------------------------------------------------------------- requests

GOLDEN_REQUESTS: list[tuple[Request | SetRate, bytes]] = [
    (SetRate(0.5), b"C.5\r"),
    (SetRate(1), b"C1\r"),
    (SetRate(2), b"C2\r"),
    (SetRate(5), b"C5\r"),
    (SetRate(10), b"C10\r"),
    (SetRate(20), b"C20\r"),
    (SetRate(50), b"C50\r"),
    (SetRate(100), b"C100\r"),
    (Request.ALL_POINTS, b"CA\r"),
    (Request.ABOVE_2_PERCENT, b"CX\r"),
    (Request.BEGIN, b"CB\r"),
    (Request.END, b"CE\r"),
    (Request.POLL, b"F\r"),
]


@pytest.mark.parametrize(("request_", "wire"), GOLDEN_REQUESTS, ids=repr)
def test_request_golden_bytes(request_: Request | SetRate, wire: bytes) -> None:
    assert encode_request(request_) == wire
    assert RequestDecoder().feed(wire) == [request_]
    assert RequestDecoder().feed(wire + b"\n") == [request_]
    decoder = RequestDecoder()
    assert [c for b in wire for c in decoder.feed(bytes([b]))] == [request_]


def test_every_documented_rate_has_a_command() -> None:
    assert sorted(RATES_HZ) == [0.5, 1, 2, 5, 10, 20, 50, 100]


@pytest.mark.parametrize("rate", [0.0, 3.0, 200.0, math.nan])
def test_undocumented_rate_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="rate must be one of"):
        SetRate(rate)


def test_request_decoder_unknown_and_noise() -> None:
    decoder = RequestDecoder()
    assert decoder.feed(b"\r\r\n") == []
    assert decoder.feed(b"C0.5\rC3\rcb\r") == [
        UnknownCommand("C0.5"),
        UnknownCommand("C3"),
        UnknownCommand("cb"),
    ]
    for _ in range(10):
        decoder.feed(b"A" * 100)
    assert decoder.feed(b"\r") == [UnknownCommand("A" * MAX_LINE)]


# --------------------------------------------------------------------------- encoders


@pytest.mark.parametrize(
    ("value", "unit", "decimals", "peak", "expected"),
    [
        (-12.34, LB, 2, False, b"-012.34 LB\r\n"),
        (12.34, LB, 2, True, b" 012.34 LB Peak\r\n"),
        (1.5, WagnerUnit.N, 3, False, b" 01.500 N\r\n"),
        (12345.0, WagnerUnit.GF, 0, False, b" 12345. G\r\n"),
        (-0.001, LB, 2, False, b" 000.00 LB\r\n"),  # no "-000.00"
    ],
)
def test_encode_reading(
    value: float, unit: WagnerUnit, decimals: int, peak: bool, expected: bytes
) -> None:
    assert encode_reading(value, unit, decimals=decimals, peak=peak) == expected


@pytest.mark.parametrize(
    ("value", "decimals", "message"),
    [
        (math.nan, 2, "non-finite"),
        (math.inf, 2, "non-finite"),
        (1000.0, 2, "does not fit"),
        (1.0, 6, "decimals"),
    ],
)
def test_encode_reading_refuses_bad_input(value: float, decimals: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_reading(value, LB, decimals=decimals)


def test_encode_overload() -> None:
    assert encode_overload(True, LB) == b"-HELP LB\r\n"
    assert encode_overload(False, LB, peak=True) == b" HELP LB Peak\r\n"


# --------------------------------------------------------------------------- properties


@given(
    value=st.floats(min_value=-999.99, max_value=999.99, allow_nan=False),
    unit=st.sampled_from(list(WagnerUnit)),
    peak=st.booleans(),
)
def test_encode_then_decode_round_trips(value: float, unit: WagnerUnit, peak: bool) -> None:
    (reply,) = ReplyDecoder().feed(encode_reading(value, unit, decimals=2, peak=peak))
    assert isinstance(reply, Reading)
    assert (reply.unit, reply.peak) == (unit, peak)
    assert abs(reply.value - value) <= 0.005 + 1e-9


@given(tension=st.booleans(), unit=st.sampled_from(list(WagnerUnit)), peak=st.booleans())
def test_overload_round_trips(tension: bool, unit: WagnerUnit, peak: bool) -> None:
    assert ReplyDecoder().feed(encode_overload(tension, unit, peak=peak)) == [
        Overload(tension, unit, unit.value, peak)
    ]


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
    assert decoder.feed(b"\r\n-012.34 LB\r\n")[-1:] == [Reading(-12.34, LB, "LB")]


requests = st.sampled_from([request for request, _ in GOLDEN_REQUESTS])


@given(sent=st.lists(requests, max_size=20), cut=st.integers(min_value=0, max_value=100))
def test_request_decoder_round_trip(sent: list[Request | SetRate], cut: int) -> None:
    wire = b"".join(encode_request(r) for r in sent)
    decoder = RequestDecoder()
    assert decoder.feed(wire[:cut]) + decoder.feed(wire[cut:]) == sent
