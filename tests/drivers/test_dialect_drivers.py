"""The real Imada, Shimpo and Wagner drivers over a real pty and a real socket, against their
simulators (every fault switch) and against hand-played peers (silent, error-only)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import pytest

from devicectl import opener
from drivers.errors import (
    DeviceDisconnected,
    DeviceFault,
    DeviceMisconfigured,
    DeviceTimeout,
    UnsupportedCommand,
)
from drivers.force import ForceSample, ForceSensor
from drivers.imada import Imada
from drivers.line_gauge import STREAM_FALLBACK_S
from drivers.models import get_model
from drivers.shimpo import Shimpo
from drivers.transport.serial import SerialTransport
from drivers.wagner import Wagner, stream_rate_for
from protocols.imada import ImadaUnit
from protocols.mark10 import Mark10Unit
from protocols.shimpo import ShimpoUnit
from protocols.units import KGF_N, LBF_N
from protocols.wagner import Request, WagnerUnit
from simulators.force_model import constant
from simulators.imada import ImadaDevice
from simulators.line_device import DialectFaults, LineDevice
from simulators.serve import PtyServer, TcpServer
from simulators.shimpo import ShimpoDevice
from simulators.wagner import WagnerDevice
from tests.drivers.pty_peer import PtyPeer

TIMEOUT_S = 5.0  # generous, for a loaded machine; nothing waits for it to pass
FORCE_N = 4.0  # about 0.41 kgf or 0.90 lbf: the simulators print it in those units
Link = Literal["pty", "socket"]
LINKS: list[Link] = ["pty", "socket"]
Name = Literal["imada", "shimpo", "wagner"]
NAMES: list[Name] = ["imada", "shimpo", "wagner"]
Driver = Imada | Shimpo | Wagner


@dataclass(frozen=True)
class Dialect:
    """How to build one dialect's simulator and driver for these tests."""

    driver: type[Driver]
    unit_n: float  # the simulator prints in this unit (kgf or lbf, to prove conversion)
    default_unit: Mark10Unit | None  # what the driver needs told (Imada: always)
    tare_command: str | None  # None: the dialect has no zero

    def device(self, force_n: float, faults: DialectFaults | None) -> LineDevice:
        model, clock = constant(force_n), time.monotonic
        if self.driver is Imada:
            return ImadaDevice(model, clock=clock, faults=faults, unit=ImadaUnit.KGF)
        if self.driver is Shimpo:
            return ShimpoDevice(model, clock=clock, faults=faults, unit=ShimpoUnit.KGF)
        return WagnerDevice(model, clock=clock, faults=faults, unit=WagnerUnit.LBF)

    def sensor(
        self,
        url: str,
        *,
        rate_hz: float = 50.0,
        invert: bool = False,
        no_reply_limit_s: float = 2.0,
        label: str = "gauge",
        simulated: bool = False,
    ) -> Driver:
        return self.driver(
            SerialTransport(url),
            rate_hz=rate_hz,
            invert=invert,
            no_reply_limit_s=no_reply_limit_s,
            default_unit=self.default_unit,
            label=label,
            simulated=simulated,
        )

    @property
    def rounding_n(self) -> float:
        return 0.005 * self.unit_n + 1e-9  # every simulator prints 2 decimals in its unit


DIALECTS: dict[Name, Dialect] = {
    "imada": Dialect(Imada, KGF_N, Mark10Unit.KGF, None),
    "shimpo": Dialect(Shimpo, KGF_N, None, "AA"),
    "wagner": Dialect(Wagner, LBF_N, None, None),
}


class Watched:
    """A served device that wakes waiters whenever it receives bytes or streams some."""

    def __init__(self, device: LineDevice, changed: asyncio.Event) -> None:
        self.device = device
        self._changed = changed

    def receive(self, data: bytes) -> bytes:
        reply = self.device.receive(data)
        self._changed.set()
        return reply

    def should_disconnect(self) -> bool:
        return self.device.should_disconnect()

    def due(self) -> bytes:
        out = self.device.due()
        if out:
            self._changed.set()
        return out


@dataclass
class Served:
    url: str
    devices: list[LineDevice]
    changed: asyncio.Event

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait (bounded) until ``condition`` holds; it is checked whenever a device acts."""
        async with asyncio.timeout(TIMEOUT_S):
            while not condition():
                self.changed.clear()
                await self.changed.wait()


@asynccontextmanager
async def served(link: Link, factory: Callable[[], LineDevice]) -> AsyncIterator[Served]:
    """The simulator's URL, and the devices it created (one per connection)."""
    devices: list[LineDevice] = []
    changed = asyncio.Event()

    def make() -> Watched:
        devices.append(factory())
        return Watched(devices[-1], changed)

    server: PtyServer | TcpServer
    if link == "pty":
        server = PtyServer(make)
        url = await server.start()
    else:
        server = TcpServer(make)
        host, port = await server.start()
        url = f"socket://{host}:{port}"
    try:
        yield Served(url, devices, changed)
    finally:
        await server.stop()


def simulator(
    name: Name, *, force_n: float = FORCE_N, faults: DialectFaults | None = None
) -> Callable[[], LineDevice]:
    return lambda: DIALECTS[name].device(force_n, faults)


async def take(
    sensor: ForceSensor, count: int, after_t: float = float("-inf")
) -> list[ForceSample]:
    """The next ``count`` samples read after ``after_t``."""
    got: list[ForceSample] = []
    async with asyncio.timeout(TIMEOUT_S):
        async for sample in sensor.samples():
            if sample.t > after_t:
                got.append(sample)
            if len(got) == count:
                break
    return got


# --------------------------------------------------------------------------- every dialect


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("name", NAMES)
async def test_connect_fills_info(name: Name, link: Link) -> None:
    async with served(link, simulator(name)) as sim:
        sensor = DIALECTS[name].sensor(sim.url, label="gauge-1", simulated=True)
        async with sensor:
            info = sensor.info
            assert info is not None
            assert info.model == sensor.model_name
            assert info.address == sim.url
            assert info.simulated
            assert sensor.stats.readings >= 1  # connect proved the link with a reading


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("name", NAMES)
async def test_readings_follow_the_force_in_newtons(name: Name, link: Link) -> None:
    dialect = DIALECTS[name]
    async with served(link, simulator(name)) as sim, dialect.sensor(sim.url) as sensor:
        samples = await take(sensor, 10)
        stats = sensor.stats
    assert (stats.errors, stats.garbage) == (0, 0)  # Shimpo's echoes are neither
    assert all(abs(s.force_n - FORCE_N) <= dialect.rounding_n for s in samples)
    assert [s.t for s in samples] == sorted(s.t for s in samples)


@pytest.mark.parametrize("name", NAMES)
async def test_tension_is_negative_and_invert_flips_it(name: Name) -> None:
    dialect = DIALECTS[name]
    async with served("pty", simulator(name, force_n=-FORCE_N)) as sim:
        async with dialect.sensor(sim.url) as sensor:
            tension = await take(sensor, 3)
        async with dialect.sensor(sim.url, invert=True) as sensor:
            inverted = await take(sensor, 3)
    assert all(abs(s.force_n + FORCE_N) <= dialect.rounding_n for s in tension)
    assert all(abs(s.force_n - FORCE_N) <= dialect.rounding_n for s in inverted)


@pytest.mark.parametrize("link", LINKS)
async def test_shimpo_tare_zeroes_the_reading(link: Link) -> None:
    async with served(link, simulator("shimpo")) as sim, DIALECTS["shimpo"].sensor(sim.url) as s:
        assert abs((await take(s, 1))[0].force_n - FORCE_N) <= DIALECTS["shimpo"].rounding_n
        await s.tare()
        samples = await take(s, 3, after_t=time.monotonic())
        assert sim.devices[0].state.commands.count("AA") == 1
        assert (s.stats.garbage, s.stats.errors) == (0, 0)  # the echoes of AA and BA
    assert all(abs(sample.force_n) <= 0.01 for sample in samples)


@pytest.mark.parametrize("name", ["imada", "wagner"])
async def test_no_documented_zero_is_unsupported(name: Name) -> None:
    async with served("pty", simulator(name)) as sim, DIALECTS[name].sensor(sim.url) as sensor:
        with pytest.raises(UnsupportedCommand, match="documents no zero") as caught:
            await sensor.tare()
        assert "keypad" in caught.value.hint
        await take(sensor, 2)  # and readings go on
        commands = set(sim.devices[0].state.commands)
    assert commands <= {"D", "F", "C50", "CA", "CB", "CE"}


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("name", NAMES)
async def test_garbage_lines_are_counted_and_skipped(name: Name, link: Link) -> None:
    dialect = DIALECTS[name]
    faults = DialectFaults(garbage_every=3)
    async with (
        served(link, simulator(name, faults=faults)) as sim,
        dialect.sensor(sim.url) as sensor,
    ):
        samples = await take(sensor, 12)
        assert sensor.stats.garbage >= 3
        assert sensor.stats.garbage <= sim.devices[0].state.garbage_sent
    assert all(abs(s.force_n - FORCE_N) <= dialect.rounding_n for s in samples)


@pytest.mark.parametrize("name", ["imada", "shimpo"])
async def test_missing_replies_are_counted_and_polling_goes_on(name: Name) -> None:
    dialect = DIALECTS[name]
    faults = DialectFaults(no_reply_every=4)
    async with (
        served("socket", simulator(name, faults=faults)) as sim,
        dialect.sensor(sim.url, rate_hz=100) as sensor,
    ):
        samples = await take(sensor, 12)
        stats = sensor.stats
    assert stats.missed >= 3
    assert stats.requests >= stats.readings + stats.missed
    assert all(abs(s.force_n - FORCE_N) <= dialect.rounding_n for s in samples)


async def test_wagner_lost_begin_command_falls_back_and_counts_missed_polls() -> None:
    # Commands C50, CA, CB: the 3rd (CB) is lost, so no stream comes; then every 3rd F is lost.
    faults = DialectFaults(no_reply_every=3)
    async with (
        served("pty", simulator("wagner", faults=faults)) as sim,
        DIALECTS["wagner"].sensor(sim.url, rate_hz=100) as sensor,
    ):
        samples = await take(sensor, 12)
        stats = sensor.stats
        assert not sensor.streaming
        assert sim.devices[0].state.commands[:5] == ["C100", "CA", "CB", "CE", "F"]
    assert stats.missed >= 3
    assert all(abs(s.force_n - FORCE_N) <= DIALECTS["wagner"].rounding_n for s in samples)


@pytest.mark.parametrize("name", NAMES)
async def test_a_stuck_value_is_reported_as_is(name: Name) -> None:
    dialect = DIALECTS[name]
    faults = DialectFaults(stuck_value_n=7.5)
    async with (
        served("pty", simulator(name, faults=faults)) as sim,
        dialect.sensor(sim.url) as sensor,
    ):
        samples = await take(sensor, 5)
    assert all(abs(s.force_n - 7.5) <= dialect.rounding_n for s in samples)


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("name", NAMES)
async def test_disconnect_raises_from_samples(name: Name, link: Link) -> None:
    faults = DialectFaults(disconnect_after_s=0.3)
    async with (
        served(link, simulator(name, faults=faults)) as sim,
        DIALECTS[name].sensor(sim.url) as sensor,
    ):
        with pytest.raises(DeviceDisconnected):
            await take(sensor, 10_000)
        with pytest.raises(DeviceDisconnected):  # and every later iteration
            await take(sensor, 1)


@pytest.mark.parametrize("name", NAMES)
async def test_a_silent_gauge_times_out_with_the_dialects_baud_hint(name: Name) -> None:
    peer = PtyPeer()
    sensor = DIALECTS[name].sensor(peer.path, no_reply_limit_s=0.4)
    started = time.monotonic()
    try:
        with pytest.raises(DeviceTimeout, match=r"no valid replies within 0.4 s") as caught:
            await sensor.connect()
    finally:
        await sensor.close()
        peer.close()
    assert 0.4 <= time.monotonic() - started < 0.4 + TIMEOUT_S
    assert sensor.baud_hint == caught.value.hint
    assert "baud" in caught.value.hint
    assert sensor.info is None
    polls = {"imada": b"D", "shimpo": b"BA", "wagner": b"F"}[name]
    assert peer.requests.count(polls) >= 2  # Wagner too: it fell back to polling in time


@pytest.mark.parametrize("name", NAMES)
async def test_a_gauge_that_goes_silent_times_out_from_samples(name: Name) -> None:
    replies = {
        "imada": b"1.00???\r",
        "shimpo": b"BA\r\nNA1.00 N\r\n",
        "wagner": b" 001.00 N\r\n",
    }
    answering = True

    def respond(_request: bytes) -> bytes | None:
        return replies[name] if answering else None

    peer = PtyPeer(respond)
    try:
        dialect = DIALECTS[name]
        async with dialect.sensor(peer.path, no_reply_limit_s=0.4) as sensor:
            await take(sensor, 2)
            answering = False
            with pytest.raises(DeviceTimeout):
                await take(sensor, 10_000)
            assert sensor.stats.missed >= 1
    finally:
        peer.close()


def test_bad_settings_are_rejected_at_construction() -> None:
    transport = SerialTransport("/dev/null")
    for driver in (Imada, Shimpo, Wagner):
        with pytest.raises(ValueError, match="rate_hz"):
            driver(transport, rate_hz=0)
        with pytest.raises(ValueError, match="no_reply_limit_s"):
            driver(transport, no_reply_limit_s=-1)


# --------------------------------------------------------------------------- Imada


async def test_imada_without_a_unit_fails_connect_with_a_hint() -> None:
    async with served("pty", simulator("imada")) as sim:
        sensor = Imada(SerialTransport(sim.url), label="gauge-1")
        try:
            with pytest.raises(DeviceMisconfigured) as caught:
                async with asyncio.timeout(TIMEOUT_S):
                    await sensor.connect()
        finally:
            await sensor.close()
    assert caught.value.device == "gauge-1"
    assert "without a unit the driver can read ('0.41???')" in caught.value.message
    assert "imada@serial:///dev/ttyUSB0?unit=N" in caught.value.hint


# --------------------------------------------------------------------------- Shimpo


async def test_shimpo_follows_the_printed_unit_and_needs_a_default_without_one() -> None:
    def respond(request: bytes) -> bytes | None:
        return b"BA\r\nNA2.00 lb\r\n" if with_unit else b"BA\r\nNA2.00\r\n"

    with_unit = True
    peer = PtyPeer(respond)
    try:
        async with Shimpo(SerialTransport(peer.path)) as sensor:
            (sample,) = await take(sensor, 1)
            with_unit = False
            with pytest.raises(DeviceMisconfigured, match="without a unit"):
                await take(sensor, 10_000)
        async with Shimpo(SerialTransport(peer.path), default_unit=Mark10Unit.KGF) as sensor:
            (unitless,) = await take(sensor, 1)
    finally:
        peer.close()
    assert sample.force_n == pytest.approx(2 * LBF_N)
    assert unitless.force_n == pytest.approx(2 * KGF_N)


async def test_shimpo_error_symbols_only_are_a_device_fault() -> None:
    peer = PtyPeer(lambda request: request + b"\r\nE1\r\n")  # the echo, then not data
    sensor = Shimpo(SerialTransport(peer.path), no_reply_limit_s=0.3)
    try:
        with pytest.raises(DeviceFault, match="error symbol") as caught:
            await sensor.connect()
    finally:
        await sensor.close()
        peer.close()
    assert caught.value.code == "E1"
    assert sensor.stats.errors >= 2
    assert sensor.stats.garbage == 0


# --------------------------------------------------------------------------- Wagner


class DeafWagner(WagnerDevice):
    """A gauge with firmware older than continuous output: it ignores ``CB``."""

    def _execute(self, command: object) -> list[bytes]:
        return [] if command is Request.BEGIN else super()._execute(command)


def test_wagner_streams_at_the_nearest_documented_rate() -> None:
    assert stream_rate_for(50) == 50
    assert stream_rate_for(80) == 100
    assert stream_rate_for(35) == 50  # a tie goes to the faster rate
    assert stream_rate_for(0.1) == 0.5
    assert stream_rate_for(1000) == 100


@pytest.mark.parametrize("link", LINKS)
async def test_wagner_streams_and_close_stops_the_stream(link: Link) -> None:
    async with served(link, simulator("wagner")) as sim:
        sensor = DIALECTS["wagner"].sensor(sim.url, rate_hz=20)
        async with sensor:
            samples = await take(sensor, 10)
            device = sim.devices[0]
            assert sensor.streaming
            assert device.state.streaming
            assert device.state.stream_rate_hz == 20
            assert sensor.stats.requests == 0  # nothing was polled
            assert device.state.commands == ["C20", "CA", "CB"]
        await sim.until(lambda: not device.state.streaming)
        assert device.state.commands == ["C20", "CA", "CB", "CE"]
    assert all(abs(s.force_n - FORCE_N) <= DIALECTS["wagner"].rounding_n for s in samples)


async def test_wagner_falls_back_to_polling_when_no_stream_comes() -> None:
    factory = lambda: DeafWagner(constant(FORCE_N), clock=time.monotonic)  # noqa: E731
    async with served("pty", factory) as sim:
        started = time.monotonic()
        async with DIALECTS["wagner"].sensor(sim.url) as sensor:
            connected_s = time.monotonic() - started
            samples = await take(sensor, 5)
            assert not sensor.streaming
            assert sensor.stats.requests >= 5
            commands = sim.devices[0].state.commands
            assert commands[:5] == ["C50", "CA", "CB", "CE", "F"]
            assert set(commands[4:]) == {"F"}
    assert STREAM_FALLBACK_S <= connected_s < STREAM_FALLBACK_S + TIMEOUT_S
    assert all(abs(s.force_n - FORCE_N) <= DIALECTS["wagner"].rounding_n for s in samples)


async def test_wagner_polls_after_a_power_cycle_forgets_the_stream() -> None:
    async with served("pty", simulator("wagner")) as sim, Wagner(SerialTransport(sim.url)) as s:
        await take(s, 3)
        assert s.streaming
        device = sim.devices[0]
        assert isinstance(device, WagnerDevice)
        device.power_cycle()
        cycled_at = time.monotonic()
        samples = await take(s, 5, after_t=cycled_at + STREAM_FALLBACK_S)
        assert not s.streaming
        assert device.state.commands[3:5] == ["CE", "F"]
    assert all(abs(sample.force_n - FORCE_N) <= DIALECTS["wagner"].rounding_n for sample in samples)


async def test_wagner_overload_is_counted_and_only_overloads_are_a_fault() -> None:
    overloaded_n = 150 * LBF_N  # the simulated gauge's capacity is 100 lbF: it prints HELP
    async with served("pty", simulator("wagner", force_n=overloaded_n)) as sim:
        sensor = Wagner(SerialTransport(sim.url), no_reply_limit_s=0.3)
        try:
            with pytest.raises(DeviceFault, match=r"overloaded in compression \(HELP\)") as caught:
                await sensor.connect()
        finally:
            await sensor.close()
    assert caught.value.code == "HELP"
    assert sensor.stats.errors >= 2
    assert sensor.stats.readings == 0


# --------------------------------------------------------------------------- the model table


@pytest.mark.parametrize("name", NAMES)
def test_the_model_table_entry(name: Name) -> None:
    entry = get_model(name)
    assert entry.family == "force_sensor"
    assert entry.transport == "serial"
    assert entry.baud is not None
    assert entry.framing == "8N1"
    assert entry.verified_on_hardware is False
    assert entry.provenance.endswith("(partial; unverified)")
    assert entry.protocol_module == f"protocols.{name}"
    # The opener builds the driver by protocol: a clone speaking it needs only a table entry.
    assert opener._SERIAL_DRIVERS[entry.protocol_module] is DIALECTS[name].driver
