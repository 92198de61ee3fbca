"""Replaying captures, sans-I/O: matching host messages (in pieces, several at once, wrong),
recorded and immediate timing, the end of the capture, disconnects, and the BLE replay."""

from __future__ import annotations

import pytest

from protocols.capture import (
    DEVICE_TO_HOST,
    HOST_TO_DEVICE,
    Capture,
    CaptureHeader,
    CaptureRecord,
    CaptureTransport,
)
from simulators.replay import (
    REPLAY_SERVICE_UUID,
    AtEnd,
    Conversation,
    Mismatch,
    ReplayDevice,
    ReplayGatt,
    Reply,
)

CP = "7e4e1703-1ea6-40c9-9dcc-13d34ffead57"
DP = "7e4e1702-1ea6-40c9-9dcc-13d34ffead57"


class FakeClock:
    def __init__(self, now: float = 50.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def host(t: float, data: bytes, char: str | None = None) -> CaptureRecord:
    return CaptureRecord(t, HOST_TO_DEVICE, data, char=char)


def dev(t: float, data: bytes, char: str | None = None) -> CaptureRecord:
    return CaptureRecord(t, DEVICE_TO_HOST, data, char=char)


def event(t: float, name: str) -> CaptureRecord:
    return CaptureRecord(t, event=name)


def capture(transport: CaptureTransport, *records: CaptureRecord) -> Capture:
    header = CaptureHeader("test", "model", transport, "2025-01-01T00:00:00+00:00")
    return Capture(header, records)


GAUGE = capture(
    "serial",
    event(1.0, "open"),
    dev(1.5, b"HELLO\r\n"),  # the preamble: sent before the host says anything
    host(2.0, b"?C\r"),
    dev(2.25, b"1.00 N\r\n"),
    host(3.0, b"RM\r"),
    dev(3.5, b"M5-100\r\n"),
    host(4.0, b"?C\r"),
    dev(4.25, b"2.00 N\r\n"),
)


def started(*, strict: bool = True, at_end: AtEnd = "silent") -> ReplayDevice:
    """A replay of GAUGE with answers at once, its preamble already sent."""
    device = ReplayDevice(
        GAUGE, clock=FakeClock(), timing="immediate", strict=strict, at_end=at_end
    )
    assert device.due() == b"HELLO\r\n"
    return device


def test_a_capture_is_cut_into_steps_with_offsets_from_their_message() -> None:
    conversation = Conversation.from_capture(GAUGE)
    assert conversation.preamble == (Reply(0.5, b"HELLO\r\n"),)
    assert [(s.host, s.replies) for s in conversation.steps] == [
        (b"?C\r", (Reply(0.25, b"1.00 N\r\n"),)),
        (b"RM\r", (Reply(0.5, b"M5-100\r\n"),)),
        (b"?C\r", (Reply(0.25, b"2.00 N\r\n"),)),
    ]


def test_immediate_replies_come_with_the_message_in_order() -> None:
    device = started()
    assert device.receive(b"?C\r") == b"1.00 N\r\n"
    assert device.receive(b"RM\r") == b"M5-100\r\n"
    assert device.receive(b"?C\r") == b"2.00 N\r\n"
    assert device.finished
    assert device.mismatches == []
    assert device.past_end == 0


def test_recorded_timing_keeps_the_delays() -> None:
    clock = FakeClock()
    device = ReplayDevice(GAUGE, clock=clock, timing="recorded")
    assert device.due() == b""
    clock.now += 0.5
    assert device.due() == b"HELLO\r\n"
    assert device.receive(b"?C\r") == b""
    clock.now += 0.2
    assert device.due() == b""
    clock.now += 0.05
    assert device.due() == b"1.00 N\r\n"


def test_messages_in_pieces_and_several_at_once_are_matched() -> None:
    device = started()
    assert device.receive(b"?") == b""
    assert device.receive(b"C") == b""
    assert device.receive(b"\rRM\r?C") == b"1.00 N\r\nM5-100\r\n"
    assert device.receive(b"\r") == b"2.00 N\r\n"
    assert device.mismatches == []


def test_a_mismatch_in_strict_mode_is_recorded_and_answered_with_nothing() -> None:
    device = started()
    assert device.receive(b"?X\r") == b""
    assert device.mismatches == [Mismatch(0, b"?C\r", b"?X\r")]
    assert device.receive(b"?C\r") == b"1.00 N\r\n"  # the replay still waits for it
    assert device.position == 1


def test_a_mismatch_when_lenient_is_answered_as_recorded() -> None:
    device = started(strict=False)
    assert device.receive(b"?X\r") == b"1.00 N\r\n"
    assert device.mismatch_count == 1
    assert device.receive(b"RM\r") == b"M5-100\r\n"


def test_past_the_end_the_replay_goes_silent_and_counts() -> None:
    device = started()
    device.receive(b"?C\rRM\r?C\r")
    assert device.receive(b"?C\r?C\r") == b""
    assert device.past_end == 2
    assert device.mismatches == []


def test_past_the_end_a_looping_replay_cycles_through_the_recorded_replies() -> None:
    device = started(at_end="loop")
    device.receive(b"?C\rRM\r?C\r")
    assert device.receive(b"?C\r") == b"1.00 N\r\n"
    assert device.receive(b"?C\r") == b"2.00 N\r\n"
    assert device.receive(b"?C\r") == b"1.00 N\r\n"
    assert device.receive(b"RM\r") == b"M5-100\r\n"
    assert device.receive(b"XX\r") == b""
    assert device.past_end == 1


def test_a_recorded_disconnect_drops_the_link_at_its_time() -> None:
    clock = FakeClock()
    recorded = capture(
        "serial",
        host(0.0, b"?C\r"),
        dev(0.1, b"1.00 N\r\n"),
        event(0.5, "disconnect"),
        dev(0.6, b"never sent\r\n"),
    )
    device = ReplayDevice(recorded, clock=clock, timing="recorded")
    device.receive(b"?C\r")
    clock.now += 0.1
    assert device.due() == b"1.00 N\r\n"
    assert not device.should_disconnect()
    clock.now += 0.5
    assert device.due() == b""
    assert device.should_disconnect()


def test_binary_messages_without_a_common_terminator_match_byte_by_byte() -> None:
    recorded = capture("serial", host(0, b"\x01\x02"), dev(0, b"A"), host(0, b"\x03"), dev(0, b"B"))
    device = ReplayDevice(recorded, clock=FakeClock(), timing="immediate")
    assert device.receive(b"\x01") == b""
    assert device.receive(b"\x02\x03") == b"AB"


def test_each_replay_takes_only_its_own_transport() -> None:
    with pytest.raises(ValueError, match="ReplayGatt"):
        ReplayDevice(capture("ble"))
    with pytest.raises(ValueError, match="ReplayDevice"):
        ReplayGatt(capture("serial"), clock=FakeClock())
    with pytest.raises(ValueError, match="timing"):
        ReplayDevice(capture("serial"), timing="fast")  # type: ignore[arg-type]


# ------------------------------------------------------------------ BLE

PROGRESSOR = capture(
    "ble",
    event(0.0, "open"),
    host(1.0, b"\x6b", CP),
    dev(1.02, b"\x00\x01x", DP),
    host(2.0, b"\x65", CP),
    dev(2.0125, b"\x01\x08" + bytes(8), DP),
    dev(2.0375, b"\x01\x08" + bytes(8), DP),
    event(2.5, "disconnect"),
)


def test_gatt_writes_are_matched_and_notifications_follow_their_schedule() -> None:
    clock = FakeClock()
    gatt = ReplayGatt(PROGRESSOR, clock=clock)
    gatt.connect()
    gatt.write(CP.upper(), b"\x6b")  # UUIDs compare as bleak reports them (lower case)
    assert gatt.next_deadline() == pytest.approx(clock.now + 0.02)
    assert gatt.notifications(clock.now) == []
    assert gatt.notifications(clock.now + 0.02) == [(DP, b"\x00\x01x")]
    clock.now += 1.0
    gatt.write(CP, b"\x65")
    assert gatt.notifications(clock.now + 0.0125) == [(DP, b"\x01\x08" + bytes(8))]
    assert gatt.notifications(clock.now + 0.04) == [(DP, b"\x01\x08" + bytes(8))]
    assert not gatt.should_disconnect(clock.now + 0.04)
    assert gatt.notifications(clock.now + 0.5) == []
    assert gatt.should_disconnect(clock.now + 0.5)
    assert gatt.finished
    assert gatt.mismatches == []


def test_gatt_mismatches_name_the_characteristic() -> None:
    gatt = ReplayGatt(PROGRESSOR, clock=FakeClock(), timing="immediate")
    gatt.connect()
    gatt.write(DP, b"\x6b")
    assert gatt.mismatches == [Mismatch(0, b"\x6b", b"\x6b", CP, DP)]
    assert gatt.notifications(0.0) == []


def test_gatt_writes_past_the_end_are_counted() -> None:
    gatt = ReplayGatt(PROGRESSOR, clock=FakeClock(), timing="immediate")
    gatt.connect()
    for opcode in (b"\x6b", b"\x65", b"\x66"):
        gatt.write(CP, opcode)
    assert gatt.past_end == 1
    assert gatt.mismatches == []


def test_a_disconnect_forgets_what_was_scheduled() -> None:
    clock = FakeClock()
    gatt = ReplayGatt(PROGRESSOR, clock=clock)
    gatt.connect()
    gatt.write(CP, b"\x6b")
    gatt.disconnect()
    assert gatt.next_deadline() is None
    assert gatt.notifications(clock.now + 1) == []


def test_gatt_table_derived_from_the_capture() -> None:
    (service,) = ReplayGatt(PROGRESSOR, clock=FakeClock()).services
    assert service.uuid == REPLAY_SERVICE_UUID
    props = {c.uuid: c.properties for c in service.characteristics}
    assert props == {CP: ("write", "write-without-response"), DP: ("notify",)}
