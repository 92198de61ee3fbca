"""Devices that drop their link and come back, with the real drivers under the supervisor:
a Mark-10 over TCP, a Mark-10 over a pty replugged under the same symlink, a Progressor over
the bleak simulator backend. And the simulated therapist carries on where it was."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.force import ForceSample, ForceSensor
from drivers.mark10 import Mark10
from drivers.progressor import Progressor
from drivers.supervisor import Backoff, LinkState, SupervisedSensor
from drivers.transport.serial import SerialTransport
from simulators.ble_backend import SimRegistry, progressor_peripheral
from simulators.force_model import Segment, TherapistModel, constant
from simulators.mark10 import Mark10Device, Mark10Faults
from simulators.progressor import ProgressorDevice, ProgressorFaults
from simulators.serve import PtyServer, TcpServer

TIMEOUT_S = 10.0  # generous for a loaded machine; every wait ends on an event long before
# Quick retries: these tests are about coming back, not about the production waits.
FAST = Backoff(initial_s=0.05, factor=2.0, max_s=0.2, jitter=0.25)
DROP_AFTER_S = 0.3  # the first device's disconnect fault
# A press rising to 100 N over 2 s, then held without tremor: a restart of the plan (back to
# 0 N) shows at once, and the force at a time is known exactly.
RAMP = TherapistModel(
    [Segment("ramp", 2.0, 100.0), Segment("hold", 60.0, 100.0)], tremor_n=0.0, drift_n_per_s=0.0
)
# The ramp's steepest slope is 75 N/s; a reply read a few ms after the device computed it is
# well within this of the model's value at the time the host stamped it.
FORCE_SLACK_N = 2.0


class Watch:
    """The supervisor's listener: every (state, message), and an event per change."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, state: str, message: str) -> None:
        self.calls.append((state, message))

    @property
    def states(self) -> list[str]:
        return [state for state, _ in self.calls]


async def across_a_reconnect(
    sensor: SupervisedSensor, watch: Watch, after: int
) -> tuple[list[ForceSample], list[ForceSample]]:
    """Samples before the link dropped, and the first ``after`` ones of the new connection (the
    supervisor hands on none of those before it has told the listener of the loss)."""
    before: list[ForceSample] = []
    back: list[ForceSample] = []
    stream = sensor.samples()
    try:
        async with asyncio.timeout(TIMEOUT_S):
            async for sample in stream:
                (back if watch.states else before).append(sample)
                if len(back) >= after:
                    break
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
    return before, back


def present(path: str) -> bool:
    """True if anything (a symlink too, dangling or not) is at ``path``."""
    return os.path.lexists(path)


def supervise(factory: Callable[[], ForceSensor]) -> tuple[SupervisedSensor, Watch]:
    # steady_s=0: restored at the new link's first sample (steadiness is tested on its own in
    # tests/drivers/test_supervisor.py); these tests are about the simulators coming back.
    sensor = SupervisedSensor(
        factory, label="tbar", give_up_after_s=TIMEOUT_S, backoff=FAST, steady_s=0.0
    )
    watch = Watch()
    sensor.watch_link(watch)
    return sensor, watch


def first_device_drops(
    model: TherapistModel, *, epoch: float | None = None
) -> tuple[Callable[[], Mark10Device], list[Mark10Device]]:
    """A device factory whose first device unplugs itself after DROP_AFTER_S; later ones stay."""
    made: list[Mark10Device] = []

    def make() -> Mark10Device:
        faults = Mark10Faults(disconnect_after_s=DROP_AFTER_S) if not made else None
        made.append(Mark10Device(model, clock=time.monotonic, faults=faults, epoch=epoch))
        return made[-1]

    return make, made


def mark10_at(url: str) -> Callable[[], Mark10]:
    return lambda: Mark10(SerialTransport(url, baudrate=115200), label="tbar", simulated=True)


async def test_mark10_over_tcp_reconnects_and_the_press_carries_on() -> None:
    epoch = time.monotonic()
    make, devices = first_device_drops(RAMP, epoch=epoch)
    async with TcpServer(make) as server:
        host, port = server.address
        sensor, watch = supervise(mark10_at(f"socket://{host}:{port}"))
        try:
            await sensor.connect()
            before, back = await across_a_reconnect(sensor, watch, after=10)
        finally:
            await sensor.close()
    assert watch.states == [LinkState.RECONNECTING, LinkState.CONNECTED]
    assert sensor.reconnects == 1
    assert len(devices) == 2  # a fresh device on the new connection
    assert before
    assert back[0].t > before[-1].t
    # The same press, further on (not restarted at 0 N).
    assert back[0].force_n > before[-1].force_n
    expected = RAMP.force_at(back[0].t - epoch)
    assert back[0].force_n == pytest.approx(expected, abs=FORCE_SLACK_N)
    stats = sensor.stats
    assert stats.readings >= len(before) + len(back)


async def test_without_a_shared_epoch_a_fresh_device_starts_its_plan_again() -> None:
    """Why the epoch exists: each device's model otherwise counts from its own first byte."""
    make, _ = first_device_drops(RAMP)
    async with TcpServer(make) as server:
        host, port = server.address
        sensor, watch = supervise(mark10_at(f"socket://{host}:{port}"))
        try:
            await sensor.connect()
            before, back = await across_a_reconnect(sensor, watch, after=1)
        finally:
            await sensor.close()
    assert back[0].force_n < before[-1].force_n


async def test_mark10_over_a_replugged_pty_reconnects_through_the_symlink(
    tmp_path: Path,
) -> None:
    link = str(tmp_path / "usb-Mark-10_SIM-0001-if00")
    make, devices = first_device_drops(constant(50.0))
    server = PtyServer(make, link_path=link, replug_after_s=0.2)
    first = await server.start()
    assert os.readlink(link) == first
    sensor, watch = supervise(mark10_at(link))
    try:
        info = await sensor.connect()
        assert info.address == link
        replugged = asyncio.ensure_future(server.next_plug())
        before, back = await across_a_reconnect(sensor, watch, after=5)
        second = await asyncio.wait_for(replugged, TIMEOUT_S)
        assert os.readlink(link) == second
    finally:
        await sensor.close()
        await server.stop()
    assert not present(link)  # stop() removes it
    assert server.plugs == 2
    assert len(devices) == 2
    assert watch.states == [LinkState.RECONNECTING, LinkState.CONNECTED]
    assert [s.force_n for s in back] == [50.0] * 5
    assert before


async def test_progressor_over_ble_reconnects_after_the_peripheral_drops() -> None:
    loop = asyncio.get_running_loop()
    device = ProgressorDevice(
        RAMP, clock=loop.time, faults=ProgressorFaults(disconnect_after_s=DROP_AFTER_S)
    )
    registry = SimRegistry()
    registry.add(progressor_peripheral(device))
    client_backend, scanner_backend = registry.backends()
    made = itertools.count()

    def factory() -> Progressor:
        next(made)
        return Progressor(
            clock=loop.time,
            label="tbar",
            simulated=True,
            command_timeout_s=0.5,
            scan_timeout_s=2.0,
            client_backend=client_backend,
            scanner_backend=scanner_backend,
        )

    sensor, watch = supervise(factory)
    try:
        await sensor.connect()
        before, back = await across_a_reconnect(sensor, watch, after=8)
    finally:
        await sensor.close()
    assert watch.states[:2] == [LinkState.RECONNECTING, LinkState.CONNECTED]
    assert next(made) >= 2  # a fresh driver found the advertising peripheral again
    assert back[0].t > before[-1].t
    # One device across its links: the press carries on.
    assert back[0].force_n > before[-1].force_n
    assert not any(p.connected for p in registry)  # closed: the peripheral advertises again


async def test_a_replug_server_validates_and_cleans_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="replug_after_s"):
        PtyServer(lambda: Mark10Device(constant(1.0), clock=time.monotonic), replug_after_s=-1)
    taken = tmp_path / "a-file"
    taken.write_text("not ours")
    server = PtyServer(
        lambda: Mark10Device(constant(1.0), clock=time.monotonic), link_path=str(taken)
    )
    with pytest.raises(FileExistsError):
        await server.start()
    assert taken.read_text() == "not ours"


class DropsOnFirstByte:
    """A ByteDevice that unplugs itself as soon as the host sends anything."""

    def __init__(self) -> None:
        self.received = asyncio.Event()

    def receive(self, data: bytes) -> bytes:
        self.received.set()
        return b""

    def should_disconnect(self) -> bool:
        return self.received.is_set()

    def due(self) -> bytes:
        return b""


async def test_unplugging_removes_the_symlink_and_stop_cancels_the_replug(tmp_path: Path) -> None:
    link = str(tmp_path / "gauge")
    devices: list[DropsOnFirstByte] = []

    def make() -> DropsOnFirstByte:
        devices.append(DropsOnFirstByte())
        return devices[-1]

    server = PtyServer(make, link_path=link, replug_after_s=60.0)
    path = await server.start()
    fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        assert os.readlink(link) == path
        os.write(fd, b"?C\r")
        await asyncio.wait_for(devices[0].received.wait(), TIMEOUT_S)
        assert server.closed  # the fault closed the pty in the same callback
        assert not present(link)  # unplugged: the name is gone, as udev removes it
        await server.stop()  # well before the replug is due
        assert server.plugs == 1
        assert len(devices) == 1
        assert not present(link)
    finally:
        os.close(fd)
        await server.stop()  # idempotent
