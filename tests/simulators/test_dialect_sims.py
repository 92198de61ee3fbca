"""The Imada, Shimpo and Wagner simulators: conversations as data, a fake clock, streamed
output through ``due``, and every fault switch. Expected bytes follow the documented formats of
device-protocols.md §2.2-2.4 (choices the documents leave open are the simulators' [G] ones)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from protocols import imada, shimpo, wagner
from simulators.force_model import TherapistModel, constant, hold_segments
from simulators.imada import ImadaDevice
from simulators.line_device import MAX_BACKLOG, DialectFaults, LineDevice
from simulators.serve import ByteDevice
from simulators.shimpo import ShimpoDevice
from simulators.wagner import WagnerDevice

LBF_N = 4.4482216152605


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


DeviceFactory = Callable[..., LineDevice]
FACTORIES: dict[str, DeviceFactory] = {
    "imada": ImadaDevice,
    "shimpo": ShimpoDevice,
    "wagner": WagnerDevice,
}
# A request that gets exactly one reply line from each device.
READ: dict[str, bytes] = {"imada": b"D\r", "shimpo": b"AA\r", "wagner": b"F\r"}


@dataclass(frozen=True)
class Conversation:
    name: str
    device: str
    force_n: float
    exchanges: list[tuple[bytes, bytes]]  # host writes → the device's reply bytes
    kwargs: dict[str, Any] = field(default_factory=dict)


CONVERSATIONS = [
    # §2.2: "D" CR → number + 3 status characters + CR.
    Conversation("imada read", "imada", 12.5, [(b"D\r", b"12.50???\r")]),
    Conversation("imada CR LF", "imada", 12.5, [(b"D\r\n", b"12.50???\r")]),
    Conversation("imada tension", "imada", -3.0, [(b"D\r", b"-3.00???\r")]),
    Conversation(
        "imada status", "imada", 1.0, [(b"D\r", b"1.0NXY\r")], {"status": "NXY", "decimals": 1}
    ),
    Conversation("imada split", "imada", 2.0, [(b"D", b""), (b"\r", b"2.00???\r")]),
    Conversation("imada no zero", "imada", 5.0, [(b"Z\r", b""), (b"D\r", b"5.00???\r")]),
    # §2.3: every command echoed; BA's data follows its echo [G layout].
    Conversation("shimpo single", "shimpo", 12.5, [(b"BA\r", b"BA\r\nNA12.50 N\r\n")]),
    Conversation(
        "shimpo tare", "shimpo", 10.0, [(b"AA\r", b"AA\r\n"), (b"BA\r", b"BA\r\nNA0.00 N\r\n")]
    ),
    Conversation(
        "shimpo kg", "shimpo", 9.80665, [(b"AF\r", b"AF\r\n"), (b"BA\r", b"BA\r\nNA1.00 kg\r\n")]
    ),
    Conversation(
        "shimpo lb", "shimpo", -LBF_N, [(b"AH\r", b"AH\r\n"), (b"BA\r", b"BA\r\nNA-1.00 lb\r\n")]
    ),
    Conversation(
        "shimpo back to N",
        "shimpo",
        2.0,
        [(b"AH\rAG\r", b"AH\r\nAG\r\n"), (b"BA\r", b"BA\r\nNA2.00 N\r\n")],
    ),
    Conversation(
        "shimpo modes and reset",
        "shimpo",
        0.0,
        [(b"AC\r", b"AC\r\n"), (b"AD\r", b"AD\r\n"), (b"AE\r", b"AE\r\n"), (b"AB\r", b"AB\r\n")],
    ),
    Conversation("shimpo unknown", "shimpo", 0.0, [(b"ZZ\r", b""), (b"ba\r", b"")]),
    # §2.4: "-XXXXXX YY Peak"; space = compression, minus = tension, HELP = overload.
    Conversation("wagner poll", "wagner", 12.34 * LBF_N, [(b"F\r", b" 012.34 LB\r\n")]),
    Conversation("wagner tension", "wagner", -12.34 * LBF_N, [(b"F\r", b"-012.34 LB\r\n")]),
    Conversation("wagner overload", "wagner", 200 * LBF_N, [(b"F\r", b" HELP LB\r\n")]),
    Conversation("wagner overload tension", "wagner", -200 * LBF_N, [(b"F\r", b"-HELP LB\r\n")]),
    Conversation(
        "wagner peak",
        "wagner",
        1.5,
        [(b"F\r", b" 001.50 N Peak\r\n")],
        {"unit": wagner.WagnerUnit.N, "peak": True},
    ),
    Conversation(
        "wagner commands are silent",
        "wagner",
        1.0,
        [(b"C10\rCA\rCX\rCB\rCE\rC.5\r", b""), (b"XX\r", b"")],
    ),
]


@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=lambda c: c.name)
def test_conversation(conversation: Conversation) -> None:
    factory = FACTORIES[conversation.device]
    device = factory(constant(conversation.force_n), clock=FakeClock(), **conversation.kwargs)
    for sent, expected in conversation.exchanges:
        assert device.receive(sent) == expected, sent


@pytest.mark.parametrize("name", FACTORIES)
def test_devices_are_byte_devices_and_their_replies_decode(name: str) -> None:
    device: ByteDevice = FACTORIES[name](constant(4.0), clock=FakeClock())
    reply = device.receive(READ[name])
    decoder: Any = {"imada": imada, "shimpo": shimpo, "wagner": wagner}[name].ReplyDecoder()
    assert decoder.feed(reply)
    assert decoder.garbage == 0


def test_state_is_inspectable() -> None:
    device = ShimpoDevice(constant(10.0), clock=FakeClock())
    device.receive(b"AA\rAH\rBA\rXX\r")
    state = device.state
    assert state.zero_offset_n == 10.0
    assert device.unit is shimpo.ShimpoUnit.LBF
    assert (state.requests_seen, state.replies_sent) == (4, 4)  # 3 echoes + 1 data line
    assert state.commands == ["AA", "AH", "BA", "XX"]


def test_model_clock_starts_at_the_first_byte() -> None:
    clock = FakeClock()
    model = TherapistModel(hold_segments(40.0, 30, 30, 1, ramp_s=2.0), tremor_n=0.0)
    device = ImadaDevice(model, clock=clock)
    clock.now += 100.0
    assert device.receive(b"D\r") == b"0.00???\r"
    assert device.state.started_at == clock.now
    clock.now += 1.0  # halfway up a smooth ramp
    assert device.receive(b"D\r") == b"20.00???\r"


# --------------------------------------------------------------------------- streamed output


def _decode_wagner(data: bytes) -> list[wagner.Reply]:
    return wagner.ReplyDecoder().feed(data)


def test_wagner_rate_does_not_start_output_and_cb_does() -> None:
    clock = FakeClock()
    device = WagnerDevice(constant(LBF_N), clock=clock)
    assert device.receive(b"C2\r") == b""
    clock.now += 5.0
    assert device.due() == b""  # "Setting the rate does not start the output" (§2.4)
    device.receive(b"CB\r")
    assert device.due() == b" 001.00 LB\r\n"  # the first sample is at CB
    clock.now += 0.49
    assert device.due() == b""
    clock.now += 0.01
    assert device.due() == b" 001.00 LB\r\n"
    clock.now += 2.0  # a late call catches up on the grid: 4 samples at 2/s
    assert len(_decode_wagner(device.due())) == 4
    device.receive(b"CE\r")
    clock.now += 10.0
    assert device.due() == b""


@pytest.mark.parametrize(("rate", "command"), list(wagner.RATES_HZ.items()))
def test_wagner_every_rate(rate: float, command: str) -> None:
    clock = FakeClock()
    device = WagnerDevice(constant(1.0), clock=clock)
    device.receive(command.encode() + b"\rCB\r")
    assert device.state.stream_rate_hz == rate
    clock.now += 5.0
    # Samples at 0, 1/rate, … 5 s inclusive (under the MAX_BACKLOG cap even at 100/s).
    assert len(_decode_wagner(device.due())) == int(5 * rate) + 1


def test_wagner_samples_are_taken_at_their_own_time() -> None:
    clock = FakeClock()
    model = TherapistModel(hold_segments(40.0, 30, 30, 1, ramp_s=2.0), tremor_n=0.0)
    device = WagnerDevice(model, clock=clock, unit=wagner.WagnerUnit.N)
    device.receive(b"C1\rCB\r")
    clock.now += 2.0
    values = [r.value for r in _decode_wagner(device.due()) if isinstance(r, wagner.Reading)]
    assert values == [0.0, 20.0, 40.0]  # t = 0, 1, 2 s on the ramp, however late the call


def test_wagner_cx_sends_only_points_above_two_percent_of_full_scale() -> None:
    clock = FakeClock()
    model = TherapistModel(hold_segments(10.0, 30, 30, 1, ramp_s=2.0), tremor_n=0.0)
    device = WagnerDevice(model, clock=clock, unit=wagner.WagnerUnit.N, capacity_n=100.0)
    device.receive(b"CX\rC10\rCB\r")
    clock.now += 2.0
    sent = [r.value for r in _decode_wagner(device.due()) if isinstance(r, wagner.Reading)]
    assert sent
    assert all(abs(v) > 2.0 for v in sent)
    assert len(sent) < 21
    device.receive(b"CA\r")  # all points again, zeros included
    clock.now += 100.0  # after the hold: the model is at rest, 0 N
    assert len(_decode_wagner(device.due())) == MAX_BACKLOG


def test_wagner_poll_works_while_streaming_and_after_a_power_cycle() -> None:
    clock = FakeClock()
    device = WagnerDevice(constant(LBF_N), clock=clock)
    device.receive(b"CB\r")
    assert device.receive(b"F\r") == b" 001.00 LB\r\n"
    device.power_cycle()  # the UNC notes: CB is lost; F polling still works
    assert not device.state.streaming
    clock.now += 1.0
    assert device.due() == b""
    assert device.receive(b"F\r") == b" 001.00 LB\r\n"


def test_wagner_overload_streams_as_help() -> None:
    clock = FakeClock()
    device = WagnerDevice(constant(-1000.0), clock=clock, capacity_n=100.0)
    device.receive(b"CB\r")
    assert _decode_wagner(device.due()) == [wagner.Overload(True, wagner.WagnerUnit.LBF, "LB")]


def test_stream_backlog_is_capped_and_counted() -> None:
    clock = FakeClock()
    device = WagnerDevice(constant(1.0), clock=clock)
    device.receive(b"C100\rCB\r")
    clock.now += 3600.0
    assert len(_decode_wagner(device.due())) == MAX_BACKLOG
    assert device.state.samples_skipped == 3600 * 100 + 1 - MAX_BACKLOG
    assert device.due() == b""  # caught up


def test_changing_the_rate_while_streaming_restarts_the_grid() -> None:
    clock = FakeClock()
    device = WagnerDevice(constant(1.0), clock=clock)
    device.receive(b"C1\rCB\r")
    assert len(_decode_wagner(device.due())) == 1
    clock.now += 0.5
    device.receive(b"C10\r")
    clock.now += 0.3
    assert len(_decode_wagner(device.due())) == 4  # 0, 0.1, 0.2, 0.3 s after C10


def test_shimpo_bb_streams_until_ab() -> None:
    clock = FakeClock()
    device = ShimpoDevice(constant(2.0), clock=clock, rate_hz=5.0)
    assert device.receive(b"BB\r") == b"BB\r\n"
    clock.now += 1.0
    replies = shimpo.ReplyDecoder().feed(device.due())
    assert replies == 6 * [shimpo.Reading("NA", 2.0, shimpo.ShimpoUnit.N, "N")]
    assert device.receive(b"AB\r") == b"AB\r\n"
    clock.now += 1.0
    assert device.due() == b""


def test_imada_never_streams() -> None:
    clock = FakeClock()
    device = ImadaDevice(constant(1.0), clock=clock)
    device.receive(b"D\r")
    clock.now += 10.0
    assert device.due() == b""


def test_due_accepts_an_explicit_now() -> None:
    clock = FakeClock()
    device = WagnerDevice(constant(1.0), clock=clock)
    device.receive(b"C1\rCB\r")
    assert len(_decode_wagner(device.due(clock.now + 2.0))) == 3


# --------------------------------------------------------------------------- fault switches


@pytest.mark.parametrize("name", FACTORIES)
def test_disconnect_after_counts_from_the_first_byte(name: str) -> None:
    clock = FakeClock()
    device = FACTORIES[name](
        constant(1.0), clock=clock, faults=DialectFaults(disconnect_after_s=5.0)
    )
    clock.now += 60.0
    assert not device.should_disconnect()  # nobody has talked yet
    device.receive(READ[name])
    clock.now += 4.9
    assert not device.should_disconnect()
    clock.now += 0.1
    assert device.should_disconnect()


@pytest.mark.parametrize("name", FACTORIES)
def test_no_disconnect_without_the_fault(name: str) -> None:
    clock = FakeClock()
    device = FACTORIES[name](constant(1.0), clock=clock)
    device.receive(READ[name])
    clock.now += 1e6
    assert not device.should_disconnect()


@pytest.mark.parametrize("name", FACTORIES)
def test_garbage_every_kth_reply_line(name: str) -> None:
    device = FACTORIES[name](
        constant(1.0), clock=FakeClock(), faults=DialectFaults(garbage_every=2), seed=4
    )
    replies = [device.receive(READ[name]) for _ in range(4)]
    assert replies[0] == replies[2]
    for garbled in (replies[1], replies[3]):
        body = garbled.rstrip(b"\r\n")
        assert body
        assert all(b >= 0x80 for b in body)
    decoder: Any = {"imada": imada, "shimpo": shimpo, "wagner": wagner}[name].ReplyDecoder()
    assert len(decoder.feed(b"".join(replies))) == 2
    assert (decoder.lines, decoder.garbage) == (2, 2)
    assert (device.state.replies_sent, device.state.garbage_sent) == (4, 2)


def test_garbage_applies_to_streamed_lines_too() -> None:
    clock = FakeClock()
    device = WagnerDevice(constant(1.0), clock=clock, faults=DialectFaults(garbage_every=3))
    device.receive(b"C10\rCB\r")
    clock.now += 0.85  # 9 samples
    decoder = wagner.ReplyDecoder()
    assert len(decoder.feed(device.due())) == 6
    assert decoder.garbage == 3


@pytest.mark.parametrize("name", FACTORIES)
def test_no_reply_every_kth_request_and_the_request_is_lost(name: str) -> None:
    device = FACTORIES[name](
        constant(5.0), clock=FakeClock(), faults=DialectFaults(no_reply_every=3)
    )
    answered = [device.receive(READ[name]) for _ in range(4)]
    assert [bool(a) for a in answered] == [True, True, False, True]
    assert device.state.requests_dropped == 1
    assert device.state.requests_seen == 4


def test_a_lost_request_is_not_acted_on() -> None:
    device = ShimpoDevice(constant(5.0), clock=FakeClock(), faults=DialectFaults(no_reply_every=1))
    assert device.receive(b"AA\rBB\r") == b""
    assert device.state.zero_offset_n == 0.0
    assert not device.state.streaming


def test_stuck_value_ignores_the_model_and_the_tare() -> None:
    clock = FakeClock()
    model = TherapistModel(hold_segments(40.0, 30, 30, 1), tremor_n=0.0)
    device = ShimpoDevice(model, clock=clock, faults=DialectFaults(stuck_value_n=7.0))
    clock.now += 10.0
    assert device.receive(b"AA\rBA\r") == b"AA\r\nBA\r\nNA7.00 N\r\n"


BAD_FAULTS = [
    ("garbage_every", 0, "garbage_every must be a whole number >= 1, not 0"),
    ("garbage_every", 2.5, "garbage_every must be a whole number >= 1, not 2.5"),
    ("no_reply_every", -1, "no_reply_every must be a whole number >= 1"),
    ("no_reply_every", True, "no_reply_every must be a whole number >= 1"),
    ("disconnect_after_s", 0.0, "disconnect_after_s must be a finite number > 0 s, not 0.0"),
    ("disconnect_after_s", float("nan"), "disconnect_after_s must be a finite number > 0 s"),
    ("disconnect_after_s", float("inf"), "disconnect_after_s must be a finite number > 0 s"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_FAULTS)
def test_bad_fault_settings_are_rejected(name: str, value: object, message: str) -> None:
    settings: dict[str, Any] = {name: value}
    with pytest.raises(ValueError, match=re.escape(message)):
        DialectFaults(**settings)


@pytest.mark.parametrize(
    ("factory", "kwargs", "message"),
    [
        (ImadaDevice, {"status": "NX"}, "3 printable"),
        (WagnerDevice, {"rate_hz": 3.0}, "rate_hz must be one of"),
        (WagnerDevice, {"capacity_n": 0.0}, "capacity_n must be > 0"),
        (WagnerDevice, {"capacity_n": 1e9}, "does not fit"),
        (ShimpoDevice, {"rate_hz": 0.0}, "rate_hz must be in"),
    ],
)
def test_bad_device_settings_fail_at_construction(
    factory: DeviceFactory, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        factory(constant(0.0), clock=FakeClock(), **kwargs)
