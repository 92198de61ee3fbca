"""Golden conversations (``tests/golden/*.jsonl``) checked against both sides, so that the
drivers and the simulators cannot share a bug (DESIGN.md, Simulators).

The golden files are written by hand from shared/reference/device-protocols.md (§2.1 Mark-10
GCL2, §1.1 Tindeq Progressor); each record's ``note`` cites what it is taken from. Nothing here
builds its expectations with the project's codecs: the expected forces use the unit factors
by definition, and the reply grammars below are written from the same sections.

(a) The real driver talks to a replay of the golden file (the strict ``ReplayDevice`` on a pty,
    the strict ``ReplayGatt`` behind the bleak backend): every message it sends must be the
    golden one (no mismatch, every golden message sent), and it must read the golden readings
    and identity.
(b) The project's simulator is sent each golden host message and must answer in the same
    format as the golden reply. Compared is the *structure*, never the force values (those
    come from the simulator's force model): for GCL2 the reply kind (reading / error / text /
    no reply), a reading's unit and an error's code; for the Progressor each notification's
    characteristic, TLV tag and length (a weight frame's length as "a positive multiple of 8",
    since samples per notification depend on the link's MTU), in order, with consecutive
    weight frames counted as one run (how many come depends on the sample rate).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from drivers.capture import read_capture
from drivers.mark10 import Mark10
from drivers.progressor import Progressor
from drivers.transport.serial import SerialTransport
from protocols.capture import Capture
from protocols.mark10 import Mark10Unit
from simulators.ble_backend import ProgressorGatt, SimPeripheral, SimRegistry
from simulators.force_model import constant
from simulators.mark10 import Mark10Device
from simulators.progressor import ProgressorDevice
from simulators.replay import Conversation, ReplayDevice, ReplayGatt, Reply, Step
from simulators.serve import PtyServer
from tests.samples import take

GOLDEN = Path(__file__).parent / "golden"
# By definition (DESIGN.md, Units): 1 kgf = 9.80665 N, 1 lbf = 4.4482216152605 N.
KGF_N = 9.80665
LBF_N = 4.4482216152605
# Polling this slowly lets a tare asked for after a reading go out before the next poll.
MARK10_RATE_HZ = 10.0
ADDRESS = "F0:0D:60:1D:E4:01"
# device-protocols.md §1.1: the control point (write) and the data point (notify).
CONTROL_POINT = "7e4e1703-1ea6-40c9-9dcc-13d34ffead57"
DATA_POINT = "7e4e1702-1ea6-40c9-9dcc-13d34ffead57"


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def golden(name: str) -> Capture:
    return read_capture(GOLDEN / f"{name}.jsonl")


# ------------------------------------------------------------------ (a) driver against golden


async def test_the_mark10_driver_holds_the_golden_conversation() -> None:
    capture = golden("mark10")
    server = PtyServer(lambda: ReplayDevice(capture, timing="immediate", strict=True))
    try:
        path = await server.start()
        async with Mark10(SerialTransport(path), rate_hz=MARK10_RATE_HZ) as sensor:
            before_tare = await take(sensor, 3)
            await sensor.tare()
            after_tare = await take(sensor, 1)
            info = sensor.info
    finally:
        await server.stop()
    replay = server.device
    assert isinstance(replay, ReplayDevice)
    assert replay.mismatches == []
    assert replay.position == len(replay.conversation.steps)  # every golden message was sent
    forces = [s.force_n for s in before_tare + after_tare]
    assert forces == pytest.approx([4.285, -18.78 * LBF_N, 4.285, -18.78 * LBF_N], rel=1e-12)
    assert info is not None
    assert (info.model, info.firmware, info.serial) == ("Mark-10 M5-100", "V1.00", "3052017")


async def test_the_progressor_driver_holds_the_golden_conversation() -> None:
    loop = asyncio.get_running_loop()
    gatt = ReplayGatt(golden("progressor"), clock=loop.time, timing="recorded", strict=True)
    registry = SimRegistry()
    registry.add(SimPeripheral(ADDRESS, "Progressor GOLDEN", gatt))
    client_backend, scanner_backend = registry.backends()
    driver = Progressor(
        address=ADDRESS,
        clock=loop.time,
        command_timeout_s=2.0,
        client_backend=client_backend,
        scanner_backend=scanner_backend,
    )
    async with driver:
        before_tare = await take(driver, 6)
        await driver.tare()
        after_tare = await take(driver, 4)
        info = driver.info
    assert gatt.mismatches == []
    assert gatt.position == len(gatt.conversation.steps)  # STOP_WEIGHT_MEAS on close too
    kgs = [2.0, 2.0625, 2.125, 2.1875, 2.25, 2.25, 0.0, -0.015625, 0.03125, 0.0625]
    forces = [s.force_n for s in before_tare + after_tare]
    assert forces == pytest.approx([kg * KGF_N for kg in kgs], rel=1e-12, abs=1e-12)
    assert info is not None
    assert (info.firmware, info.battery) == ("1.2.3", "3.90 V")


# ------------------------------------------------------------------ (b) simulator against golden

# GCL2 reply lines as §2.1 gives them: "<value> <unit>" CR LF, "*NN" CR LF, or other text.
_READING = re.compile(rb"-?\d+(?:\.\d+)? (?P<unit>[A-Za-z]+)\r\n")
_ERROR = re.compile(rb"\*(?P<code>\d{2})\r\n")
_TEXT = re.compile(rb"[\x20-\x7e]+\r\n")


def gcl2_shape(reply: bytes) -> tuple[str, str]:
    """A reply's structure: its kind, and a reading's unit or an error's code. Not the value,
    and not the number of decimals (§2.1: it depends on the gauge's capacity)."""
    if not reply:
        return ("no reply", "")
    if reading := _READING.fullmatch(reply):
        return ("reading", reading["unit"].decode("ascii"))
    if error := _ERROR.fullmatch(reply):
        return ("error", error["code"].decode("ascii"))
    if _TEXT.fullmatch(reply):
        return ("text", "")
    return ("not GCL2", reply.decode("latin-1"))


def replies_of(step: Step) -> bytes:
    return b"".join(r.data for r in step.replies if r.data is not None)


@pytest.mark.parametrize("name", ["mark10", "mark10-errors"])
def test_the_mark10_simulator_answers_in_the_golden_format(name: str) -> None:
    steps = Conversation.from_capture(golden(name)).steps
    assert steps
    for step in steps:
        expected = gcl2_shape(replies_of(step))
        # The unit a reading is printed in is a setting of the gauge, not part of the
        # conversation: the simulated gauge is set to the golden reply's unit.
        unit = Mark10Unit(expected[1]) if expected[0] == "reading" else Mark10Unit.N
        device = Mark10Device(constant(12.5), clock=FakeClock(), unit=unit)
        assert gcl2_shape(device.receive(step.host)) == expected, step.host


Shape = tuple[str, int, int | str]


def tlv_shape(char: str, frame: bytes) -> Shape:
    """§1.1: one TLV frame per notification: tag, payload length, payload."""
    tag, length = frame[0], frame[1]
    assert len(frame) == 2 + length, f"the length byte does not match the payload: {frame.hex()}"
    if tag == 1:  # weight: n samples of 8 bytes; n depends on the MTU
        return (char, tag, "8n" if length and length % 8 == 0 else length)
    return (char, tag, length)


def runs(shapes: Iterable[Shape]) -> list[Shape]:
    return [shape for shape, _ in itertools.groupby(shapes)]


def sample_times(frames: Iterable[bytes]) -> list[int]:
    """The device µs of every weight sample (§1.1: float32 LE kg, then uint32 LE µs)."""
    times: list[int] = []
    for frame in frames:
        if frame[0] == 1:
            for offset in range(2, len(frame), 8):
                kg, us = struct.unpack_from("<fI", frame, offset)
                assert math.isfinite(kg)
                times.append(us)
    return times


def frames_of(replies: Sequence[Reply]) -> list[tuple[str, bytes]]:
    return [(r.char or "", r.data) for r in replies if r.data is not None]


def test_the_progressor_simulator_answers_in_the_golden_format() -> None:
    capture = golden("progressor")
    steps = Conversation.from_capture(capture).steps
    host_times = [r.t for r in capture.records if r.direction == "host>dev"]
    end = capture.records[-1].t
    version = next(r.data[2:] for s in steps for r in s.replies if r.data and r.data[:1] == b"\0")
    clock = FakeClock(0.0)
    # The firmware text is the device's identity, not the format: the simulated one is given
    # the golden's, so that the response's length can be compared.
    gatt = ProgressorGatt(ProgressorDevice(constant(20.0), clock=clock, firmware=version.decode()))
    gatt.connect()
    golden_frames: list[tuple[str, bytes]] = []
    sim_frames: list[tuple[str, bytes]] = []
    for step, t, until in zip(steps, host_times, [*host_times[1:], end], strict=True):
        clock.now = t
        assert step.char == CONTROL_POINT
        gatt.write(step.char, step.host)  # the simulator takes writes on this one only
        expected = frames_of(step.replies)
        got = gatt.notifications(until - 1e-6)
        assert runs(tlv_shape(*f) for f in got) == runs(tlv_shape(*f) for f in expected), step
        golden_frames += expected
        sim_frames += got
    assert {char for char, _ in golden_frames + sim_frames} == {DATA_POINT}
    for frames in (golden_frames, sim_frames):
        times = sample_times(data for _, data in frames)
        assert times
        assert all(a < b for a, b in itertools.pairwise(times)), "device µs must increase"
