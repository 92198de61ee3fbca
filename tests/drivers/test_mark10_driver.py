"""The real Mark-10 driver over a real pty and a real socket, against the simulator and against
hand-played peers (silent, garbage-only, error-only)."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Literal

import pytest

from drivers.errors import (
    DeviceDisconnected,
    DeviceFault,
    DeviceMisconfigured,
    DeviceNotFound,
    DeviceTimeout,
)
from drivers.force import ForceSample
from drivers.mark10 import Mark10
from drivers.transport.serial import SerialTransport
from protocols.mark10 import Mark10Unit
from simulators.force_model import constant
from simulators.mark10 import Mark10Device, Mark10Faults
from simulators.serve import PtyServer, TcpServer
from tests.drivers.pty_peer import PtyPeer

TIMEOUT_S = 5.0  # generous, for a loaded machine; nothing waits for it to pass
FORCE_N = 10.0
Link = Literal["pty", "socket"]
LINKS: list[Link] = ["pty", "socket"]


def gauge(
    *, unit: Mark10Unit = Mark10Unit.N, faults: Mark10Faults | None = None, force_n: float = FORCE_N
) -> Callable[[], Mark10Device]:
    return lambda: Mark10Device(constant(force_n), clock=time.monotonic, unit=unit, faults=faults)


@asynccontextmanager
async def served(
    link: Link, factory: Callable[[], Mark10Device]
) -> AsyncIterator[tuple[str, list[Mark10Device]]]:
    """The simulator's URL, and the devices it created (one per connection)."""
    devices: list[Mark10Device] = []

    def make() -> Mark10Device:
        devices.append(factory())
        return devices[-1]

    server: PtyServer | TcpServer
    if link == "pty":
        server = PtyServer(make)
        url = await server.start()
    else:
        server = TcpServer(make)
        host, port = await server.start()
        url = f"socket://{host}:{port}"
    try:
        yield url, devices
    finally:
        await server.stop()


async def take(sensor: Mark10, count: int, after_t: float = float("-inf")) -> list[ForceSample]:
    """The next ``count`` samples read after ``after_t``."""
    got: list[ForceSample] = []
    async with asyncio.timeout(TIMEOUT_S):
        async for sample in sensor.samples():
            if sample.t > after_t:
                got.append(sample)
            if len(got) == count:
                break
    return got


@pytest.mark.parametrize("link", LINKS)
async def test_connect_reads_identity(link: Link) -> None:
    async with served(link, gauge()) as (url, _):
        sensor = Mark10(SerialTransport(url), label="gauge-1", simulated=True)
        async with sensor:
            info = sensor.info
            assert info is not None
            assert info.model == "Mark-10 M5-100"
            assert (info.firmware, info.serial) == ("1.04", "SIM-0001")
            assert info.address == url
            assert info.simulated
            assert sensor.stats.readings >= 1  # connect proved the link with a reading


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("unit", [Mark10Unit.N, Mark10Unit.LBF, Mark10Unit.KGF])
async def test_samples_follow_the_force_in_newtons(link: Link, unit: Mark10Unit) -> None:
    async with served(link, gauge(unit=unit)) as (url, _), Mark10(SerialTransport(url)) as sensor:
        samples = await take(sensor, 10)
    rounding_n = 0.005 * unit.newtons  # the simulator prints 2 decimals in its unit
    assert all(abs(s.force_n - FORCE_N) <= rounding_n + 1e-9 for s in samples)
    assert [s.t for s in samples] == sorted(s.t for s in samples)


PRESSED_N = 50.0  # on a gauge set to lbF it prints 11.24: read as newtons, 4.45x too low


def unitless_lbf_gauge() -> Mark10Device:
    """A gauge set to lbF with its unit output off, pressed at ``PRESSED_N``."""
    return Mark10Device(
        constant(PRESSED_N), clock=time.monotonic, unit=Mark10Unit.LBF, unit_output=False
    )


async def test_unitless_replies_without_a_default_unit_fail_connect_with_a_hint() -> None:
    async with served("pty", unitless_lbf_gauge) as (url, _):
        sensor = Mark10(SerialTransport(url), label="gauge-1")
        try:
            with pytest.raises(DeviceMisconfigured) as caught:
                async with asyncio.timeout(TIMEOUT_S):
                    await sensor.connect()
        finally:
            await sensor.close()
    error = caught.value
    assert error.device == "gauge-1"
    assert "the gauge sends readings without a unit ('11.24')" in error.message
    assert "Serial/USB data-format settings" in error.hint
    assert "mark10@serial:///dev/ttyUSB0?unit=lbF" in error.hint
    assert sensor.info is None


async def test_unitless_replies_use_the_default_unit() -> None:
    async with (
        served("pty", unitless_lbf_gauge) as (url, _),
        Mark10(SerialTransport(url), default_unit=Mark10Unit.LBF) as sensor,
    ):
        samples = await take(sensor, 3)
    rounding_n = 0.005 * Mark10Unit.LBF.newtons
    assert all(s.force_n == pytest.approx(PRESSED_N, abs=rounding_n) for s in samples)


async def test_a_unit_changed_mid_stream_is_followed() -> None:
    async with (
        served("pty", gauge()) as (url, devices),
        Mark10(SerialTransport(url), default_unit=Mark10Unit.KGF) as sensor,
    ):
        before = await take(sensor, 2)
        devices[0].state.unit = Mark10Unit.LBF  # the therapist changes the unit on the gauge
        changed_at = time.monotonic()
        after = await take(sensor, 3, after_t=changed_at)
    rounding_n = 0.005 * Mark10Unit.LBF.newtons
    assert all(s.force_n == pytest.approx(FORCE_N) for s in before)
    assert all(s.force_n == pytest.approx(FORCE_N, abs=rounding_n) for s in after)


async def test_unit_output_switched_off_mid_stream_ends_the_stream() -> None:
    with_unit = True

    def respond(request: bytes) -> bytes | None:
        if request != b"?C":
            return b"*10\r\n"
        return b"2.00 lbF\r\n" if with_unit else b"2.00\r\n"

    peer = PtyPeer(respond)
    try:
        async with Mark10(SerialTransport(peer.path)) as sensor:
            (sample,) = await take(sensor, 1)
            with_unit = False
            with pytest.raises(DeviceMisconfigured, match="without a unit"):
                await take(sensor, 10_000)
            with pytest.raises(DeviceMisconfigured):
                await sensor.tare()
    finally:
        peer.close()
    assert sample.force_n == pytest.approx(2 * Mark10Unit.LBF.newtons)


async def test_polls_no_faster_than_the_rate() -> None:
    rate_hz = 50.0
    async with (
        served("pty", gauge()) as (url, _),
        Mark10(SerialTransport(url), rate_hz=rate_hz) as sensor,
    ):
        await take(sensor, 1)  # skip the handshake's reading
        samples = await take(sensor, 20)
    gaps = [b.t - a.t for a, b in itertools.pairwise(samples)]
    # Deadlines on a grid: never a burst. The upper bound only catches a stalled poller.
    assert 0.8 / rate_hz <= statistics.median(gaps) <= 5.0 / rate_hz


async def test_invert_flips_the_sign() -> None:
    async with (
        served("pty", gauge()) as (url, _),
        Mark10(SerialTransport(url), invert=True) as sensor,
    ):
        samples = await take(sensor, 3)
    assert all(s.force_n == pytest.approx(-FORCE_N) for s in samples)


@pytest.mark.parametrize("link", LINKS)
async def test_tare_zeroes_the_reading(link: Link) -> None:
    async with served(link, gauge()) as (url, devices), Mark10(SerialTransport(url)) as sensor:
        assert (await take(sensor, 1))[0].force_n == pytest.approx(FORCE_N)
        await sensor.tare()
        tared_at = time.monotonic()
        samples = await take(sensor, 3, after_t=tared_at)
        assert devices[0].state.commands.count("Z") == 1
    assert all(abs(s.force_n) <= 0.01 for s in samples)


@pytest.mark.parametrize("link", LINKS)
async def test_garbage_lines_are_counted_and_skipped(link: Link) -> None:
    faults = Mark10Faults(garbage_every=3)
    async with (
        served(link, gauge(faults=faults)) as (url, devices),
        Mark10(SerialTransport(url)) as sensor,
    ):
        samples = await take(sensor, 12)
        sent = devices[0].state.garbage_sent
        assert sensor.stats.garbage >= 3
        assert sensor.stats.garbage <= sent
    assert all(s.force_n == pytest.approx(FORCE_N) for s in samples)


@pytest.mark.parametrize("link", LINKS)
async def test_missing_replies_are_counted_and_polling_goes_on(link: Link) -> None:
    faults = Mark10Faults(no_reply_every=4)
    async with (
        served(link, gauge(faults=faults)) as (url, _),
        Mark10(SerialTransport(url), rate_hz=100) as sensor,
    ):
        samples = await take(sensor, 12)
        stats = sensor.stats
    assert stats.missed >= 3
    assert stats.requests >= stats.readings + stats.missed
    assert all(s.force_n == pytest.approx(FORCE_N) for s in samples)


async def test_a_stuck_value_is_reported_as_is() -> None:
    faults = Mark10Faults(stuck_value_n=7.5)
    async with (
        served("pty", gauge(faults=faults)) as (url, _),
        Mark10(SerialTransport(url)) as sensor,
    ):
        await sensor.tare()
        samples = await take(sensor, 5, after_t=time.monotonic())
    assert all(s.force_n == pytest.approx(7.5) for s in samples)


@pytest.mark.parametrize("link", LINKS)
async def test_disconnect_raises_from_samples(link: Link) -> None:
    faults = Mark10Faults(disconnect_after_s=0.2)
    async with (
        served(link, gauge(faults=faults)) as (url, _),
        Mark10(SerialTransport(url)) as sensor,
    ):
        with pytest.raises(DeviceDisconnected):
            await take(sensor, 10_000)
        with pytest.raises(DeviceDisconnected):  # and every later iteration
            await take(sensor, 1)
        with pytest.raises(DeviceDisconnected):
            await sensor.tare()


async def test_a_missing_port_is_not_found() -> None:
    sensor = Mark10(SerialTransport("/dev/ttyUSB-devicectl-missing"))
    with pytest.raises(DeviceNotFound, match="devicectl scan"):
        await sensor.connect()
    await sensor.close()


async def test_a_silent_gauge_times_out_within_the_limit() -> None:
    peer = PtyPeer()
    sensor = Mark10(SerialTransport(peer.path), no_reply_limit_s=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(DeviceTimeout, match=r"no valid replies within 0.3 s") as caught:
            await sensor.connect()
    finally:
        await sensor.close()
        peer.close()
    assert 0.3 <= time.monotonic() - started < 0.3 + TIMEOUT_S
    assert "baud rate" in caught.value.hint
    assert len(peer.requests) >= 2
    assert set(peer.requests) == {b"?C"}


async def test_a_gauge_that_goes_silent_times_out_from_samples() -> None:
    answering = True

    def respond(request: bytes) -> bytes | None:
        return b"1.00 N\r\n" if answering else None

    peer = PtyPeer(respond)
    try:
        async with Mark10(SerialTransport(peer.path), no_reply_limit_s=0.3) as sensor:
            await take(sensor, 2)
            answering = False
            with pytest.raises(DeviceTimeout):
                await take(sensor, 10_000)
            assert sensor.stats.missed >= 1
    finally:
        peer.close()


async def test_garbage_only_times_out_and_mentions_the_baud_rate() -> None:
    peer = PtyPeer(lambda _request: b"\xf3\x9a\x07\xe1\r\n")  # what a wrong baud rate looks like
    sensor = Mark10(SerialTransport(peer.path), no_reply_limit_s=0.3)
    try:
        with pytest.raises(DeviceTimeout) as caught:
            await sensor.connect()
    finally:
        await sensor.close()
        peer.close()
    assert "baud rate" in str(caught.value)
    assert sensor.stats.garbage >= 2


async def test_error_only_replies_are_a_device_fault() -> None:
    peer = PtyPeer(lambda _request: b"*11\r\n")
    sensor = Mark10(SerialTransport(peer.path), no_reply_limit_s=0.3)
    try:
        with pytest.raises(DeviceFault, match="not applicable") as caught:
            await sensor.connect()
    finally:
        await sensor.close()
        peer.close()
    assert caught.value.code == "*11"


async def test_close_ends_the_stream_and_is_idempotent() -> None:
    async with served("pty", gauge()) as (url, _):
        sensor = Mark10(SerialTransport(url))
        await sensor.connect()
        consumer = asyncio.create_task(take(sensor, 10_000))
        await take(sensor, 1)
        await sensor.close()
        await sensor.close()
        async with asyncio.timeout(TIMEOUT_S):
            assert isinstance(await consumer, list)  # the iteration ended, no error
        with pytest.raises(DeviceDisconnected):
            await sensor.tare()


def test_bad_settings_are_rejected_at_construction() -> None:
    transport = SerialTransport("/dev/null")
    with pytest.raises(ValueError, match="rate_hz"):
        Mark10(transport, rate_hz=0)
    with pytest.raises(ValueError, match="no_reply_limit_s"):
        Mark10(transport, no_reply_limit_s=-1)
