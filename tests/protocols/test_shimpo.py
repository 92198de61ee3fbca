"""The Shimpo FGV-X codec: every documented command, the echo, three ways, properties.

Source: shared/reference/device-protocols.md §2.3 (FGV-X manual p.4): two letters + CR, the gauge
echoes a command to acknowledge it, data replies carry a code such as ``NA``. The data layout
after the code is unverified ([G]); the golden data lines below test our reading of it.
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.shimpo import (
    BAUD_RATES,
    MAX_LINE,
    Command,
    Echo,
    OtherReply,
    Reading,
    Reply,
    ReplyDecoder,
    RequestDecoder,
    ShimpoUnit,
    UnknownCommand,
    encode_echo,
    encode_reading,
    encode_request,
    parse_unit,
)
from tests.protocols.three_ways import Decoded
from tests.protocols.three_ways import decode_three_ways as three_ways


def decode_three_ways(data: bytes) -> Decoded:
    return three_ways(ReplyDecoder, data)


# Every documented command, its wire bytes (§2.3).
COMMANDS: list[tuple[Command, bytes]] = [
    (Command.TARE, b"AA\r"),
    (Command.STOP_OUTPUT, b"AB\r"),
    (Command.PEAK_MODE, b"AC\r"),
    (Command.AVERAGE_MODE, b"AD\r"),
    (Command.PEAK_RESET, b"AE\r"),
    (Command.UNITS_KG, b"AF\r"),
    (Command.UNITS_N, b"AG\r"),
    (Command.UNITS_LB, b"AH\r"),
    (Command.SINGLE_OUTPUT, b"BA\r"),
    (Command.CONTINUOUS_OUTPUT, b"BB\r"),
]


@pytest.mark.parametrize(("command", "wire"), COMMANDS, ids=repr)
def test_command_bytes_and_device_decoding(command: Command, wire: bytes) -> None:
    assert encode_request(command) == wire
    assert RequestDecoder().feed(wire) == [command]
    assert RequestDecoder().feed(wire + b"\n") == [command]
    decoder = RequestDecoder()
    assert [c for b in wire for c in decoder.feed(bytes([b]))] == [command]


def test_the_command_set_is_exactly_the_documented_one() -> None:
    documented = ["AA", "AB", "AC", "AD", "AE", "AF", "AG", "AH", "BA", "BB"]
    assert [c.value for c in Command] == documented == [c.value for c, _ in COMMANDS]


@pytest.mark.parametrize(("command", "_wire"), COMMANDS, ids=repr)
def test_echo_is_the_acknowledgement(command: Command, _wire: bytes) -> None:
    # §2.3: "The gauge echoes the command to acknowledge it." The echo's CR/CR LF is [G].
    assert decode_three_ways(encode_echo(command)) == Decoded([Echo(command)], 1, 0)
    assert decode_three_ways(command.value.encode() + b"\r") == Decoded([Echo(command)], 1, 0)


GOLDEN: list[tuple[bytes, Reply]] = [
    (b"NA12.50 N\r\n", Reading("NA", 12.5, ShimpoUnit.N, "N")),
    (b"NA-3.2 kg\r\n", Reading("NA", -3.2, ShimpoUnit.KGF, "kg")),  # sign as printed
    (b"NA +0.75 lb\r", Reading("NA", 0.75, ShimpoUnit.LBF, "lb")),
    (b"NA100\r\n", Reading("NA", 100.0, None, "")),  # no unit printed
    (b"NB1.5 xyz\r\n", Reading("NB", 1.5, None, "xyz")),  # an unknown code and unit kept
    (b"E1\r\n", OtherReply("E1")),  # possibly the undocumented error symbol
    (b"?\r\n", OtherReply("?")),
    (b"ab\n", OtherReply("ab")),  # echoes are upper case
]


@pytest.mark.parametrize(("line", "expected"), GOLDEN, ids=repr)
def test_golden_reply(line: bytes, expected: Reply) -> None:
    assert decode_three_ways(line) == Decoded([expected], 1, 0)


def test_bb_then_a_stream_then_ab() -> None:
    wire = b"BB\r\nNA1.00 N\r\nNA1.10 N\r\nAB\r\n"
    assert decode_three_ways(wire).replies == [
        Echo(Command.CONTINUOUS_OUTPUT),
        Reading("NA", 1.0, ShimpoUnit.N, "N"),
        Reading("NA", 1.1, ShimpoUnit.N, "N"),
        Echo(Command.STOP_OUTPUT),
    ]


GARBAGE_LINES = [b"\x80\x81\r\n", b"NA1.0\x00 N\r\n", b"   \r\n", b"\x1b[0m\r\n"]


@pytest.mark.parametrize("line", GARBAGE_LINES, ids=repr)
def test_garbage_line_is_counted_and_skipped(line: bytes) -> None:
    decoded = decode_three_ways(line + b"AA\r\n")
    assert decoded == Decoded([Echo(Command.TARE)], 1, 1)


def test_over_long_line_and_unterminated_noise() -> None:
    assert decode_three_ways(b"N" * (MAX_LINE + 1) + b"\r\nAA\r\n") == Decoded(
        [Echo(Command.TARE)], 1, 1
    )
    decoder = ReplyDecoder()
    for _ in range(1000):
        decoder.feed(b"\xaa" * 1000)
    assert len(decoder._buffer) <= MAX_LINE
    assert decoder.feed(b"\r\nAB\r\n") == [Echo(Command.STOP_OUTPUT)]


def test_newtons_and_units() -> None:
    assert Reading("NA", 2.0, ShimpoUnit.KGF).newtons(ShimpoUnit.N) == pytest.approx(19.6133)
    assert Reading("NA", 1.0, ShimpoUnit.LBF).newtons(ShimpoUnit.N) == pytest.approx(4.44822162)
    assert Reading("NA", 16.0, ShimpoUnit.OZF).newtons(ShimpoUnit.N) == pytest.approx(4.44822162)
    assert Reading("NA", 1000.0, ShimpoUnit.GF).newtons(ShimpoUnit.N) == pytest.approx(9.80665)
    assert Reading("NA", 3.0, None).newtons(ShimpoUnit.KGF) == pytest.approx(29.41995)
    assert parse_unit("KGF") is ShimpoUnit.KGF
    assert parse_unit("n") is ShimpoUnit.N
    assert parse_unit("stone") is None
    assert BAUD_RATES == (2400, 4800, 9600, 19200)


def test_request_decoder_unknown_and_cap() -> None:
    decoder = RequestDecoder()
    assert decoder.feed(b"\r\raa\rZZ\r") == [UnknownCommand("aa"), UnknownCommand("ZZ")]
    for _ in range(10):
        decoder.feed(b"A" * 100)
    assert decoder.feed(b"\r") == [UnknownCommand("A" * MAX_LINE)]


@pytest.mark.parametrize(
    ("value", "unit", "decimals", "expected"),
    [
        (12.5, ShimpoUnit.N, 2, b"NA12.50 N\r\n"),
        (-3.2, ShimpoUnit.KGF, 1, b"NA-3.2 kg\r\n"),
        (100.0, None, 0, b"NA100\r\n"),
        (-0.001, ShimpoUnit.N, 2, b"NA0.00 N\r\n"),
    ],
)
def test_encode_reading(
    value: float, unit: ShimpoUnit | None, decimals: int, expected: bytes
) -> None:
    assert encode_reading(value, unit, decimals=decimals) == expected


@pytest.mark.parametrize(
    ("value", "code", "decimals", "message"),
    [
        (math.nan, "NA", 2, "non-finite"),
        (1.0, "AA", 2, "not a command"),  # would read back as an echo
        (1.0, "na", 2, "two capital letters"),
        (1.0, "NA", -1, "decimals"),
    ],
)
def test_encode_reading_refuses_bad_input(
    value: float, code: str, decimals: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        encode_reading(value, ShimpoUnit.N, code=code, decimals=decimals)


# --------------------------------------------------------------------------- properties


@given(
    value=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    unit=st.sampled_from([*ShimpoUnit, None]),
    decimals=st.integers(min_value=0, max_value=4),
)
def test_encode_then_decode_round_trips(
    value: float, unit: ShimpoUnit | None, decimals: int
) -> None:
    (reply,) = ReplyDecoder().feed(encode_reading(value, unit, decimals=decimals))
    assert isinstance(reply, Reading)
    assert (reply.code, reply.unit) == ("NA", unit)
    assert abs(reply.value - value) <= 0.5 * 10**-decimals + 1e-9 * max(1.0, abs(value))


@given(chunks=st.lists(st.binary(max_size=80), max_size=8))
def test_reply_decoder_never_raises_and_accounts_for_every_line(chunks: list[bytes]) -> None:
    decoder = ReplyDecoder()
    replies = [reply for chunk in chunks for reply in decoder.feed(chunk)]
    terminated = re.split(rb"[\r\n]", b"".join(chunks))[:-1]
    assert decoder.lines + decoder.garbage == sum(1 for line in terminated if line)
    assert decoder.lines == len(replies)


@given(sent=st.lists(st.sampled_from(list(Command)), max_size=20), cut=st.integers(0, 80))
def test_request_decoder_round_trip(sent: list[Command], cut: int) -> None:
    wire = b"".join(encode_request(c) for c in sent)
    decoder = RequestDecoder()
    assert decoder.feed(wire[:cut]) + decoder.feed(wire[cut:]) == sent
