"""Capture, then replay: the real driver records its conversation with a simulator, the capture
is replayed (strict) in place of the simulator, and the same driver reads the same readings.

Mark-10: ``CapturingTransport`` around ``SerialTransport`` on a ``PtyServer`` pty, replayed by
``ReplayDevice`` on a pty. Progressor: ``capture=`` on the driver's ``BleLink`` over the bleak
simulator backend, replayed by ``ReplayGatt`` in a ``SimRegistry``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from pathlib import Path

from drivers.capture import CaptureLog, CapturingTransport, read_capture
from drivers.force import DeviceInfo
from drivers.mark10 import Mark10
from drivers.progressor import Progressor
from drivers.transport.base import Transport
from drivers.transport.serial import SerialTransport
from protocols.progressor import SERVICE_UUID
from simulators.ble_backend import (
    ProgressorGatt,
    SimPeripheral,
    SimRegistry,
    progressor_peripheral,
)
from simulators.force_model import Segment, TherapistModel
from simulators.mark10 import Mark10Device
from simulators.progressor import ProgressorDevice
from simulators.replay import ReplayDevice, ReplayGatt
from simulators.serve import ByteDevice, PtyServer
from tests.samples import take

READINGS = 12
ADDRESS = "F0:0D:5E:ED:00:01"


def pressing() -> TherapistModel:
    """A force that changes from one reading to the next, so that order matters."""
    return TherapistModel(
        [Segment("ramp", 2.0, 40.0), Segment("hold", math.inf, 40.0)], tremor_n=0.5, seed=7
    )


async def mark10_run(
    device: ByteDevice, log: CaptureLog | None
) -> tuple[list[float], DeviceInfo | None]:
    server = PtyServer(lambda: device)
    try:
        transport: Transport = SerialTransport(await server.start())
        if log is not None:
            transport = CapturingTransport(transport, log)
        async with Mark10(transport, rate_hz=50.0) as sensor:
            forces = [s.force_n for s in await take(sensor, READINGS)]
            info = sensor.info
    finally:
        await server.stop()
    return forces, info


async def test_a_mark10_capture_replays_to_the_same_readings(tmp_path: Path) -> None:
    path = tmp_path / "mark10.jsonl"
    with CaptureLog.open(path, device="mark10@sim", model="Mark-10", transport="serial") as log:
        simulator = Mark10Device(pressing(), clock=time.monotonic)
        recorded, recorded_info = await mark10_run(simulator, log)
        assert log.failure is None
    capture = read_capture(path)
    assert capture.header.transport == "serial"
    replay = ReplayDevice(capture, timing="immediate", strict=True)
    replayed, replayed_info = await mark10_run(replay, None)
    assert replayed == recorded
    assert len(set(recorded)) > 1  # the readings really changed, so their order was checked
    # The same identity, read from the replay; the address is each run's own pty path.
    assert recorded_info is not None
    assert replayed_info is not None
    assert replayed_info == dataclasses.replace(recorded_info, address=replayed_info.address)
    assert replay.mismatches == []


async def progressor_run(
    peripheral: SimPeripheral, log: CaptureLog | None
) -> tuple[list[float], DeviceInfo | None]:
    loop = asyncio.get_running_loop()
    registry = SimRegistry()
    registry.add(peripheral)
    client_backend, scanner_backend = registry.backends()
    driver = Progressor(
        clock=loop.time,
        command_timeout_s=2.0,
        scan_timeout_s=2.0,
        client_backend=client_backend,
        scanner_backend=scanner_backend,
        capture=log,
    )
    async with driver:
        forces = [s.force_n for s in await take(driver, READINGS)]
        info = driver.info
    return forces, info


async def test_a_progressor_capture_replays_to_the_same_readings(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    path = tmp_path / "progressor.jsonl"
    with CaptureLog.open(
        path, device="progressor@ble", model="Tindeq Progressor", transport="ble"
    ) as log:
        simulator = ProgressorDevice(pressing(), clock=loop.time, firmware="2.0.1")
        recorded, recorded_info = await progressor_run(progressor_peripheral(simulator), log)
        assert log.failure is None
    capture = read_capture(path)
    assert capture.header.transport == "ble"
    replay = ReplayGatt(capture, clock=loop.time, services=ProgressorGatt.services)
    peripheral = SimPeripheral(ADDRESS, "Progressor REPLAY", replay, service_uuids=[SERVICE_UUID])
    replayed, replayed_info = await progressor_run(peripheral, None)
    assert replayed == recorded
    assert len(set(recorded)) > 1
    assert replayed_info == recorded_info
    assert replay.mismatches == []
    assert replay.position == len(replay.conversation.steps)  # the stop was replayed too
