"""The Progressor driver against the simulated peripheral through the real BleakClient, and its
clock mapping and jump filter on synthetic samples."""

from __future__ import annotations

import asyncio
import itertools
import math
import statistics
from collections.abc import Callable

import pytest

from drivers.errors import DeviceDisconnected
from drivers.force import ForceSample
from drivers.progressor import MODEL_NAME, Progressor
from drivers.progressor_clock import MAX_DRIFT, DeviceClock, JumpFilter
from drivers.sample_stream import close_stream
from protocols.progressor import KGF_N, US_WRAP, Opcode
from simulators.ble_backend import SimRegistry, progressor_peripheral
from simulators.force_model import Segment, TherapistModel, constant
from simulators.progressor import ProgressorDevice, ProgressorFaults

ADDRESS = "F0:0D:5E:ED:00:01"
WAIT_S = 5.0
PERIOD_S = 1 / 80
# A mapped step differs from the device's by how much later the loop delivered a notification
# than the one that set the offset: well under this on any test machine.
STEP_JITTER_S = 3e-3
# A whole run's span, or one late step, may absorb a scheduling hiccup of this size on a busy
# machine; a clock error (a wrap mishandled, a drift) would be orders of magnitude larger.
SPAN_SLACK_S = 0.1


def sim(
    model: TherapistModel | None = None,
    faults: ProgressorFaults | None = None,
    *,
    by_address: bool = False,
    name: str = "Progressor SIM",
    **device_kwargs: object,
) -> tuple[Progressor, ProgressorDevice, SimRegistry]:
    loop = asyncio.get_running_loop()
    device = ProgressorDevice(
        model or constant(98.0665),
        clock=loop.time,
        faults=faults,
        **device_kwargs,  # type: ignore[arg-type]
    )
    registry = SimRegistry()
    registry.add(progressor_peripheral(device, address=ADDRESS, name=name))
    client_backend, scanner_backend = registry.backends()
    driver = Progressor(
        address=ADDRESS if by_address else None,
        clock=loop.time,
        simulated=True,
        command_timeout_s=0.5,
        scan_timeout_s=2.0,
        client_backend=client_backend,
        scanner_backend=scanner_backend,
    )
    return driver, device, registry


async def take(driver: Progressor, n: int) -> list[tuple[float, ForceSample]]:
    """``n`` samples, each with the loop time it was received."""
    loop = asyncio.get_running_loop()

    async def collect() -> list[tuple[float, ForceSample]]:
        got: list[tuple[float, ForceSample]] = []
        stream = driver.samples()
        try:
            async for sample in stream:
                got.append((loop.time(), sample))
                if len(got) >= n:
                    break
        finally:
            await close_stream(stream)
        return got

    return await asyncio.wait_for(collect(), WAIT_S)


async def take_until(
    driver: Progressor, wanted: Callable[[ForceSample], bool]
) -> list[ForceSample]:
    async def collect() -> list[ForceSample]:
        got: list[ForceSample] = []
        stream = driver.samples()
        try:
            async for sample in stream:
                got.append(sample)
                if wanted(sample):
                    break
        finally:
            await close_stream(stream)
        return got

    return await asyncio.wait_for(collect(), WAIT_S)


# ------------------------------------------------------------------ over the simulator


@pytest.mark.parametrize("by_address", [False, True], ids=["name prefix", "address"])
async def test_connect_reads_identity_and_streams(by_address: bool) -> None:
    driver, device, _ = sim(by_address=by_address, firmware="1.2.7", battery_mv=3900)
    async with driver:
        info = driver.info
        assert info is not None
        assert (info.model, info.address) == (MODEL_NAME, ADDRESS)
        assert (info.firmware, info.battery, info.simulated) == ("1.2.7", "3.90 V", True)
        assert device.state.commands[:3] == [
            Opcode.GET_APP_VERSION,
            Opcode.GET_BATTERY_VOLTAGE,
            Opcode.START_WEIGHT_MEAS,
        ]
        got = await take(driver, 40)
    forces = [s.force_n for _, s in got]
    assert forces == pytest.approx([98.0665] * 40, abs=1e-3)
    times = [s.t for _, s in got[2:]]  # the first batch's delay is not yet known
    steps = [b - a for a, b in itertools.pairwise(times)]
    # ~80 Hz. Single steps vary with the loop's wake-up latency (the offset estimate), which a
    # loaded CI machine can stretch; the median and the span are what the mapping guarantees.
    assert all(step >= 0 for step in steps)
    assert statistics.median(steps) == pytest.approx(PERIOD_S, abs=STEP_JITTER_S)
    assert times[-1] - times[0] == pytest.approx(37 * PERIOD_S, abs=SPAN_SLACK_S)
    assert driver.stats.readings >= 40
    assert driver.stats.garbage == 0


async def test_a_clone_advertising_as_progressor_is_found() -> None:
    driver, _, _ = sim(name="Progressor-Clone 42")
    async with driver:
        assert driver.info is not None
        assert driver.info.address == ADDRESS


async def test_samples_follow_the_force_model() -> None:
    ramp = TherapistModel(
        [Segment("ramp", 0.5, 40.0), Segment("hold", math.inf, 40.0)],
        tremor_n=0.0,
        drift_n_per_s=0.0,
    )
    driver, device, _ = sim(ramp)
    async with driver:
        got = await take_until(driver, lambda s: s.force_n > 39.9)
        started = device.state.started_at
        assert started is not None
        for sample in got:
            # The mapped time is within one batch of when the device took the sample.
            expected = [ramp.force_at(sample.t - started - d) for d in (0.0, PERIOD_S, 0.03)]
            assert min(expected) - 0.01 <= sample.force_n <= max(expected) + 0.01
    assert got[0].force_n < got[-1].force_n


async def test_negative_values_after_tare_keep_their_sign() -> None:
    model = TherapistModel(
        [Segment("hold", 0.6, 30.0), Segment("release", 0.1), Segment("hold", math.inf, 0.0)],
        tremor_n=0.0,
        drift_n_per_s=0.0,
    )
    driver, device, _ = sim(model)
    async with driver:
        await take(driver, 2)
        await driver.tare()
        assert device.state.tare_offset_kg == pytest.approx(30.0 / KGF_N)
        got = await take_until(driver, lambda s: s.force_n < -29.9)
    assert got[-1].force_n == pytest.approx(-30.0, abs=0.1)
    assert driver.stats.garbage == 0  # the tare's step is not an impossible jump
    assert Opcode.TARE_SCALE in device.state.commands


async def test_the_device_clock_wrap_mid_stream_gives_monotonic_times() -> None:
    boot_us = US_WRAP - 200_000  # wraps 0.2 s after the device object is made
    driver, device, _ = sim(boot_us=boot_us)
    async with driver:
        got = await take(driver, 60)  # 0.75 s at 80 Hz: across the wrap
    loop = asyncio.get_running_loop()
    assert device.device_us(loop.time()) < boot_us  # it did wrap
    times = [s.t for _, s in got]
    steps = [b - a for a, b in itertools.pairwise(times)]
    # Monotonic, and no jump anywhere near the 71.6 min wrap: every step is sample-sized.
    assert all(0 <= step < SPAN_SLACK_S for step in steps)
    assert statistics.median(steps) == pytest.approx(PERIOD_S, abs=STEP_JITTER_S)


async def test_the_mapping_never_runs_ahead_of_arrival() -> None:
    driver, _, _ = sim()
    async with driver:
        got = await take(driver, 40)
    assert all(sample.t <= received for received, sample in got)
    times = [s.t for _, s in got]
    assert times == sorted(times)


async def test_dropped_notifications_are_counted_as_lost() -> None:
    driver, device, _ = sim(faults=ProgressorFaults(drop_every=4))
    async with driver:
        await take(driver, 40)
        assert device.state.notifications_dropped >= 1
        # Responses go through the same drop counter; those lost were weight notifications
        # (both answers arrived), each of 2 samples.
        assert driver.info is not None
        assert driver.info.firmware
        lost = driver.drop_counts.get("lost on air", 0)
        assert lost >= 2
        assert driver.stats.missed >= lost


async def test_truncated_notifications_are_counted_and_dropped() -> None:
    driver, device, _ = sim(faults=ProgressorFaults(truncate_every=5))
    async with driver:
        got = await take(driver, 40)
        assert device.state.notifications_truncated >= 1
        assert driver.drop_counts["truncated"] == device.state.notifications_truncated
        assert driver.stats.garbage >= 1
    assert all(s.force_n == pytest.approx(98.0665, abs=1e-3) for _, s in got)


async def test_a_stuck_value_is_passed_through_as_it_is() -> None:
    driver, _, _ = sim(faults=ProgressorFaults(stuck_value_n=-12.5))
    async with driver:
        got = await take(driver, 20)
    assert {round(s.force_n, 3) for _, s in got} == {-12.5}


async def test_low_battery_is_visible() -> None:
    driver, _, _ = sim(faults=ProgressorFaults(low_battery=True), battery_mv=3300)
    async with driver:
        await take(driver, 2)
        assert driver.low_battery
        assert driver.info is not None
        assert driver.info.battery == "3.30 V (low)"
        assert driver.stats.errors == 1


async def test_link_loss_raises_from_samples() -> None:
    driver, _, registry = sim(faults=ProgressorFaults(disconnect_after_s=0.3))
    async with driver:

        async def drain() -> None:
            async for _ in driver.samples():
                pass

        with pytest.raises(DeviceDisconnected, match="link was lost"):
            await asyncio.wait_for(drain(), WAIT_S)
    peripheral = registry.get(ADDRESS)
    assert peripheral is not None
    assert not peripheral.connected


async def test_close_stops_the_stream_then_releases_the_link() -> None:
    driver, device, registry = sim()
    await driver.connect()
    await take(driver, 4)
    await driver.close()
    assert device.state.commands[-1] is Opcode.STOP_WEIGHT_MEAS
    assert not device.state.measuring
    peripheral = registry.get(ADDRESS)
    assert peripheral is not None
    assert not peripheral.connected
    await driver.close()  # idempotent
    assert device.state.commands.count(Opcode.STOP_WEIGHT_MEAS) == 1
    # The stream ends after close.
    assert await asyncio.wait_for(_count(driver), WAIT_S) >= 0
    # The vendor's app (here: another driver) can connect now.
    client_backend, scanner_backend = registry.backends()
    again = Progressor(
        address=ADDRESS, client_backend=client_backend, scanner_backend=scanner_backend
    )
    async with again:
        assert again.info is not None


async def _count(driver: Progressor) -> int:
    return len([s async for s in driver.samples()])


async def test_no_answer_leaves_the_field_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    driver, device, _ = sim()
    original = device._respond

    def mute(opcode: Opcode) -> None:
        if opcode is not Opcode.GET_APP_VERSION:
            original(opcode)

    monkeypatch.setattr(device, "_respond", mute)
    async with driver:
        assert driver.info is not None
        assert (driver.info.firmware, driver.info.battery) == ("", "3.90 V")
        assert driver.stats.missed == 1
        assert driver.drop_counts["no answer"] == 1


async def test_samples_before_connect_is_an_error() -> None:
    driver, _, _ = sim()
    with pytest.raises(RuntimeError, match="connect"):
        await anext(driver.samples())
    with pytest.raises(DeviceDisconnected):
        await driver.tare()
    await driver.close()


# ------------------------------------------------------------------ clock mapping


def test_clock_offset_follows_the_smallest_delay() -> None:
    clock = DeviceClock()
    # Two samples per notification, 12.5 ms apart, arriving with the second; delays vary.
    local0 = 1000.0
    delays = [0.030, 0.005, 0.050, 0.000, 0.020, 0.040]
    mapped: list[tuple[float, float, float]] = []
    for n, delay in enumerate(delays):
        arrival = local0 + (2 * n + 1) * PERIOD_S + delay
        for i in (2 * n, 2 * n + 1):
            true = local0 + i * PERIOD_S
            mapped.append(
                (clock.map(5_000_000 + round(i * PERIOD_S * 1e6), arrival), arrival, true)
            )
    ts = [t for t, _, _ in mapped]
    assert ts == sorted(ts)
    assert all(t <= arrival for t, arrival, _ in mapped)
    # Once the zero-delay notification came, mapped times are the true ones.
    for t, _, true in mapped[7:]:
        assert t == pytest.approx(true, abs=MAX_DRIFT * 0.1 + 1e-9)


def test_clock_handles_the_wrap() -> None:
    clock = DeviceClock()
    start = US_WRAP - 30_000
    ts = [clock.map((start + i * 12_500) % US_WRAP, 50.0 + i * PERIOD_S) for i in range(6)]
    assert [b - a for a, b in itertools.pairwise(ts)] == pytest.approx([PERIOD_S] * 5)
    assert clock.lost == 0


def test_clock_follows_a_slow_device_without_drift() -> None:
    clock = DeviceClock()
    slow = 100e-6  # the device's clock runs 100 ppm slow
    t = 0.0
    for i in range(80 * 600):  # ten minutes at 80 Hz
        true = i * PERIOD_S
        t = clock.map(round(true * (1 - slow) * 1e6) % US_WRAP, 10.0 + true)
    assert t == pytest.approx(10.0 + 600 - PERIOD_S, abs=0.005)


def test_clock_never_steps_back_when_the_estimate_falls() -> None:
    clock = DeviceClock()
    first = clock.map_batch([0, 12_500], 1.2)  # late: offset 1.1875
    assert first == pytest.approx([1.1875, 1.2])
    # On time: the offset falls to 1.1725, which would put the older sample at 1.1975.
    second = clock.map_batch([25_000, 37_500], 1.21)
    assert second == pytest.approx([1.2, 1.21])  # held, not stepped back
    assert clock.offset_s == pytest.approx(1.1725)


def test_clock_counts_gaps_as_lost_samples() -> None:
    clock = DeviceClock()
    for i in (0, 1, 2, 5, 6, 7):  # samples 3 and 4 were lost
        clock.map(i * 12_500, 1.0 + i * PERIOD_S)
    assert clock.lost == 2


# ------------------------------------------------------------------ jump filter


def test_jump_filter_drops_a_spike_and_counts_it() -> None:
    jumps = JumpFilter(50.0)
    values = [10.0, 10.5, 900.0, 11.0, -800.0, 11.5]
    kept = [v for i, v in enumerate(values) if jumps.accept(i * PERIOD_S, v)]
    assert kept == [10.0, 10.5, 11.0, 11.5]
    assert jumps.dropped == 2


def test_jump_filter_accepts_a_confirmed_fast_step() -> None:
    jumps = JumpFilter(50.0)
    values = [0.0, 0.0, 300.0, 301.0, 302.0]
    kept = [v for i, v in enumerate(values) if jumps.accept(i * PERIOD_S, v)]
    assert kept == [0.0, 0.0, 301.0, 302.0]
    assert jumps.dropped == 1


def test_jump_filter_allows_more_change_over_a_longer_gap() -> None:
    jumps = JumpFilter(50.0)
    assert jumps.accept(0.0, 0.0)
    assert jumps.accept(0.1, 240.0)  # 50 N + 2000 N/s x 0.1 s = 250 N allowed
    assert not jumps.accept(0.1125, 600.0)


def test_jump_filter_rearm_and_validation() -> None:
    jumps = JumpFilter(50.0)
    assert jumps.accept(0.0, 100.0)
    jumps.rearm()
    assert jumps.accept(PERIOD_S, 0.0)
    with pytest.raises(ValueError, match="max_jump_n"):
        JumpFilter(math.nan)
    with pytest.raises(ValueError, match="confirm"):
        JumpFilter(10.0, confirm=1)
