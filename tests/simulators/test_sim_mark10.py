"""The simulated Mark-10: conversations as data, the clock, and every fault switch."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from protocols.mark10 import Mark10Unit, Reading, ReplyDecoder
from simulators.force_model import TherapistModel, constant, hold_segments
from simulators.mark10 import Mark10Device, Mark10Faults


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Conversation:
    name: str
    force_n: float
    exchanges: list[tuple[bytes, bytes]]  # host writes → the device's reply bytes
    device_kwargs: dict[str, Any] = field(default_factory=dict)


# Expected replies use the manual's formats (device-protocols.md §2.1): "<value> <unit>" CR LF,
# "*10" for an illegal command; 83.54 N of tension is the manual's "-18.78 lbF".
CONVERSATIONS = [
    Conversation("read current", 12.5, [(b"?C\r", b"12.50 N\r\n")]),
    Conversation("read displayed", 12.5, [(b"?\r", b"12.50 N\r\n")]),
    Conversation("lower case with CR LF", 12.5, [(b"?c\r\n", b"12.50 N\r\n")]),
    Conversation("tension in lbF", -83.54, [(b"LB\r", b""), (b"?C\r", b"-18.78 lbF\r\n")]),
    Conversation("kgF", 9.80665, [(b"KG\r", b""), (b"?C\r", b"1.00 kgF\r\n")]),
    Conversation("ozF", 4.4482216152605, [(b"OZ\r", b""), (b"?C\r", b"16.00 ozF\r\n")]),
    Conversation("gF", 9.80665, [(b"G\r", b""), (b"?C\r", b"1000.00 gF\r\n")]),
    Conversation("mN", 1.5, [(b"MN\r", b""), (b"?C\r", b"1500.00 mN\r\n")]),
    Conversation("kN", 1500.0, [(b"KN\r", b""), (b"?C\r", b"1.50 kN\r\n")]),
    Conversation("back to N", 2.0, [(b"LB\rN\r", b""), (b"?C\r", b"2.00 N\r\n")]),
    Conversation("zero", 10.0, [(b"Z\r", b""), (b"?C\r", b"0.00 N\r\n")]),
    Conversation("model", 0.0, [(b"RM\r", b"M5-100\r\n")]),
    Conversation("firmware", 0.0, [(b"RV\r", b"1.04\r\n")]),
    Conversation("serial", 0.0, [(b"RS\r", b"SIM-0001\r\n")]),
    Conversation("unknown command", 0.0, [(b"FOO\r", b"*10\r\n"), (b"?PT\r", b"*10\r\n")]),
    Conversation("two in one write", 0.0, [(b"RM\rRV\r", b"M5-100\r\n1.04\r\n")]),
    Conversation("split command", 3.0, [(b"?", b""), (b"C", b""), (b"\r", b"3.00 N\r\n")]),
    Conversation("bare CR is ignored", 3.0, [(b"\r\r", b"")]),
    Conversation("decimals", 4.285, [(b"?C\r", b"4.285 N\r\n")], {"decimals": 3}),
    Conversation("unit output off", 12.5, [(b"?C\r", b"12.50\r\n")], {"unit_output": False}),
    Conversation("start unit", 9.80665, [(b"?C\r", b"1.00 kgF\r\n")], {"unit": Mark10Unit.KGF}),
    Conversation(
        "identity",
        0.0,
        [(b"RM\r", b"M5-200\r\n"), (b"RV\r", b"2.0\r\n"), (b"RS\r", b"X7\r\n")],
        {"model_name": "M5-200", "firmware": "2.0", "serial": "X7"},
    ),
]


@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=lambda c: c.name)
def test_conversation(conversation: Conversation) -> None:
    device = Mark10Device(
        constant(conversation.force_n), clock=FakeClock(), **conversation.device_kwargs
    )
    for sent, expected in conversation.exchanges:
        assert device.receive(sent) == expected, sent


def test_state_is_inspectable() -> None:
    device = Mark10Device(constant(10.0), clock=FakeClock())
    device.receive(b"Z\rLB\r?C\rXX\r")
    state = device.state
    assert state.zero_offset_n == 10.0
    assert state.unit is Mark10Unit.LBF
    assert (state.requests_seen, state.replies_sent) == (4, 2)
    assert state.commands == ["Z", "LB", "?C", "XX"]
    assert state.last_force_n == 10.0


def test_model_clock_starts_at_the_first_byte() -> None:
    clock = FakeClock()
    model = TherapistModel(hold_segments(40.0, 30, 30, 1, ramp_s=2.0), tremor_n=0.0)
    device = Mark10Device(model, clock=clock)
    clock.now += 100.0  # time before the host talks does not count
    assert device.receive(b"?C\r") == b"0.00 N\r\n"
    assert device.state.started_at == clock.now
    clock.now += 1.0  # halfway up a smooth ramp
    assert device.receive(b"?C\r") == b"20.00 N\r\n"
    clock.now += 2.0
    assert _reading(device.receive(b"?C\r")) == pytest.approx(40.0, abs=0.2)


def _reading(reply: bytes) -> float:
    (decoded,) = ReplyDecoder().feed(reply)
    assert isinstance(decoded, Reading)
    return decoded.value


def test_disconnect_after_counts_from_the_first_byte() -> None:
    clock = FakeClock()
    faults = Mark10Faults(disconnect_after_s=5.0)
    device = Mark10Device(constant(1.0), clock=clock, faults=faults)
    clock.now += 60.0
    assert not device.should_disconnect()  # nobody has talked yet
    device.receive(b"?C\r")
    clock.now += 4.9
    assert not device.should_disconnect()
    clock.now += 0.1
    assert device.should_disconnect()


def test_no_disconnect_without_the_fault() -> None:
    clock = FakeClock()
    device = Mark10Device(constant(1.0), clock=clock)
    device.receive(b"?C\r")
    clock.now += 1e6
    assert not device.should_disconnect()


def test_garbage_every_kth_reply_line() -> None:
    device = Mark10Device(constant(1.0), clock=FakeClock(), faults=Mark10Faults(garbage_every=2))
    replies = [device.receive(b"?C\r") for _ in range(4)]
    assert replies[0] == replies[2] == b"1.00 N\r\n"
    for garbled in (replies[1], replies[3]):
        assert garbled.endswith(b"\r\n")
        assert all(b >= 0x80 for b in garbled[:-2])
    decoder = ReplyDecoder()
    assert decoder.feed(b"".join(replies)) == 2 * [Reading(1.0, Mark10Unit.N)]
    assert (decoder.lines, decoder.garbage) == (2, 2)
    assert (device.state.replies_sent, device.state.garbage_sent) == (4, 2)


def test_garbage_is_deterministic_with_a_seed() -> None:
    def garbled(seed: int) -> bytes:
        faults = Mark10Faults(garbage_every=1)
        return Mark10Device(constant(1.0), clock=FakeClock(), faults=faults, seed=seed).receive(
            b"?C\r"
        )

    assert garbled(3) == garbled(3)


def test_no_reply_every_kth_request_and_the_request_is_lost() -> None:
    faults = Mark10Faults(no_reply_every=3)
    device = Mark10Device(constant(5.0), clock=FakeClock(), faults=faults)
    assert device.receive(b"?C\r") == b"5.00 N\r\n"
    assert device.receive(b"RM\r") == b"M5-100\r\n"
    assert device.receive(b"Z\r") == b""  # the third request: dropped, so not zeroed either
    assert device.receive(b"?C\r") == b"5.00 N\r\n"
    assert device.state.requests_dropped == 1
    assert device.state.zero_offset_n == 0.0


def test_stuck_value_ignores_the_model_and_zeroing() -> None:
    clock = FakeClock()
    model = TherapistModel(hold_segments(40.0, 30, 30, 1), tremor_n=0.0)
    device = Mark10Device(model, clock=clock, faults=Mark10Faults(stuck_value_n=7.0))
    assert device.receive(b"?C\r") == b"7.00 N\r\n"
    clock.now += 10.0
    assert device.receive(b"Z\r?C\r") == b"7.00 N\r\n"
    assert device.receive(b"LB\r?C\r") == b"1.57 lbF\r\n"


BAD_FAULTS = [
    ("garbage_every", 0, "garbage_every must be a whole number >= 1, not 0"),
    ("garbage_every", -2, "garbage_every must be a whole number >= 1"),
    ("garbage_every", 2.5, "garbage_every must be a whole number >= 1, not 2.5"),
    ("no_reply_every", 0, "no_reply_every must be a whole number >= 1"),
    ("disconnect_after_s", 0.0, "disconnect_after_s must be a finite number > 0 s, not 0.0"),
    ("disconnect_after_s", -1.0, "disconnect_after_s must be a finite number > 0 s"),
    ("disconnect_after_s", float("inf"), "disconnect_after_s must be a finite number > 0 s"),
    ("disconnect_after_s", float("nan"), "disconnect_after_s must be a finite number > 0 s"),
    ("stuck_value_n", float("nan"), "stuck_value_n must be a finite force in N, not nan"),
    ("stuck_value_n", float("inf"), "stuck_value_n must be a finite force in N"),
    ("stuck_value_n", float("-inf"), "stuck_value_n must be a finite force in N"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_FAULTS)
def test_bad_fault_settings_are_rejected_naming_the_field_and_range(
    name: str, value: float, message: str
) -> None:
    settings: dict[str, Any] = {name: value}
    with pytest.raises(ValueError, match=re.escape(message)):
        Mark10Faults(**settings)


def test_good_fault_settings_are_accepted() -> None:
    faults = Mark10Faults(
        disconnect_after_s=0.01, garbage_every=1, no_reply_every=1, stuck_value_n=-3.0
    )
    assert faults.stuck_value_n == -3.0
    assert Mark10Faults(stuck_value_n=0.0).stuck_value_n == 0.0
