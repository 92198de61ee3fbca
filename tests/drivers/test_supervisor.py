"""The reconnection supervisor with scripted drivers, in virtual time (a fake clock moved by a
fake sleep), and its backoff by table and by property."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import (
    BluetoothUnavailable,
    DeviceDisconnected,
    DeviceFault,
    DeviceMisconfigured,
    DeviceNotFound,
    DevicePermissionDenied,
    DeviceTimeout,
    UnsupportedCommand,
)
from drivers.force import DeviceInfo, ForceSample, ForceSensor, LinkStats
from drivers.supervisor import Backoff, LinkState, SupervisedSensor, is_retryable

WAIT_S = 5.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Virtual time: the wait passes at once."""
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@dataclass
class Script:
    """One driver's life: how its connect ends, the forces it then gives, how its stream ends."""

    connect_error: BaseException | None = None
    forces: tuple[float, ...] = ()
    then: BaseException | None = None  # None: the stream stays open until closed
    connect_forever: bool = False  # connect() never returns (until cancelled)
    connect_takes_s: float = 0.0  # virtual seconds a connect attempt costs
    stats: LinkStats = field(default_factory=lambda: LinkStats(requests=1, readings=2))


class FakeDriver(ForceSensor):
    def __init__(
        self, script: Script, clock: FakeClock, serial: str, blocked: asyncio.Event | None = None
    ) -> None:
        self.script = script
        self.blocked = blocked or asyncio.Event()  # set when connect() starts to hang
        self.clock = clock
        self._info: DeviceInfo | None = None
        self.serial = serial
        self.closed = asyncio.Event()
        self.connect_cancelled = False
        self.tared = 0

    async def connect(self) -> DeviceInfo:
        self.clock.now += self.script.connect_takes_s
        if self.script.connect_forever:
            self.blocked.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.connect_cancelled = True
                raise
        if self.script.connect_error is not None:
            raise self.script.connect_error
        self._info = DeviceInfo("fake", "fake://", serial=self.serial)
        return self._info

    async def samples(self) -> AsyncIterator[ForceSample]:
        for force in self.script.forces:
            yield ForceSample(self.clock.now, force)
        if self.script.then is not None:
            raise self.script.then
        await self.closed.wait()

    async def tare(self) -> None:
        self.tared += 1

    async def close(self) -> None:
        self.closed.set()

    @property
    def info(self) -> DeviceInfo | None:
        return self._info

    @property
    def stats(self) -> LinkStats:
        return self.script.stats


class Factory:
    """Drivers from scripts, in order; the last script repeats."""

    def __init__(
        self, clock: FakeClock, *scripts: Script, serials: tuple[str, ...] = ("0042",)
    ) -> None:
        self.clock = clock
        self.scripts = list(scripts)
        self.serials = serials  # the device each driver reaches (the last one repeats)
        self.made: list[FakeDriver] = []
        self.blocked = asyncio.Event()  # a driver's connect() hangs

    def __call__(self) -> FakeDriver:
        script = self.scripts[min(len(self.made), len(self.scripts) - 1)]
        serial = self.serials[min(len(self.made), len(self.serials) - 1)]
        driver = FakeDriver(script, self.clock, serial, self.blocked)
        self.made.append(driver)
        return driver


class Listener:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.changed = asyncio.Event()

    def __call__(self, state: str, message: str) -> None:
        self.calls.append((state, message))
        self.changed.set()

    async def wait_for(self, state: LinkState) -> None:
        async def until() -> None:
            while not any(s == state for s, _ in self.calls):
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(until(), WAIT_S)


def lost(message: str = "the link was closed by the other end") -> DeviceDisconnected:
    return DeviceDisconnected("fake://", message)


def not_back() -> DeviceNotFound:
    return DeviceNotFound("fake://", "cannot open: no such file", hint="plug it in")


def supervised(
    factory: Factory,
    clock: FakeClock,
    *,
    give_up_after_s: float = 30.0,
    seed: int = 1,
    steady_s: float = 0.0,
) -> tuple[SupervisedSensor, Listener]:
    """``steady_s`` 0: restored at the new link's first sample (the fakes' samples all carry
    the time of their connection)."""
    sensor = SupervisedSensor(
        factory,
        label="tbar",
        give_up_after_s=give_up_after_s,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(seed),
        steady_s=steady_s,
    )
    listener = Listener()
    sensor.watch_link(listener)
    return sensor, listener


async def take(sensor: SupervisedSensor, n: int) -> list[float]:
    async def collect() -> list[float]:
        got: list[float] = []
        stream = sensor.samples()
        try:
            async for sample in stream:
                got.append(sample.force_n)
                if len(got) >= n:
                    break
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        return got

    return await asyncio.wait_for(collect(), WAIT_S)


async def drain(sensor: SupervisedSensor) -> list[float]:
    """Every sample until the stream ends (or raises)."""

    async def collect() -> list[float]:
        return [s.force_n async for s in sensor.samples()]

    return await asyncio.wait_for(collect(), WAIT_S)


def expected_delays(backoff: Backoff, seed: int, n: int) -> list[float]:
    rng = random.Random(seed)
    return [backoff.delay(i, rng) for i in range(n)]


# ---------------------------------------------------------------------------- Backoff


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (60, 8.0), (5000, 8.0)],
)
def test_backoff_without_jitter_doubles_up_to_the_cap(attempt: int, expected: float) -> None:
    assert Backoff(jitter=0.0).delay(attempt, random.Random(0)) == expected


@given(attempt=st.integers(0, 3000), seed=st.integers(0, 2**32))
def test_backoff_stays_within_its_jitter_and_under_the_cap(attempt: int, seed: int) -> None:
    backoff = Backoff()
    base = min(8.0, 0.5 * 2.0 ** min(attempt, 10))
    delay = backoff.delay(attempt, random.Random(seed))
    assert base * 0.75 <= delay <= min(8.0, base * 1.25)


def test_backoff_jitter_spreads_the_waits() -> None:
    rng = random.Random(7)
    delays = {Backoff().delay(1, rng) for _ in range(50)}
    assert len(delays) == 50
    assert min(delays) < 0.85  # both sides of 1 s, within +-25 %
    assert max(delays) > 1.15


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_s": 0.0},
        {"initial_s": float("nan")},
        {"factor": 0.5},
        {"max_s": 0.1},
        {"max_s": float("inf")},
        {"jitter": 1.0},
        {"jitter": -0.1},
    ],
)
def test_backoff_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Backoff(**kwargs)


def test_backoff_rejects_a_negative_attempt() -> None:
    with pytest.raises(ValueError, match="attempt"):
        Backoff().delay(-1, random.Random(0))


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (DeviceDisconnected("d", "m"), True),
        (DeviceTimeout("d", "m"), True),
        (DeviceNotFound("d", "m"), True),
        (BluetoothUnavailable("d", "m"), True),  # an adapter switched off and on again
        (DevicePermissionDenied("d", "m"), True),
        (DeviceMisconfigured("d", "m"), False),
        (DeviceFault("d", "m", code="10"), False),
        (UnsupportedCommand("d", "m"), False),
        (RuntimeError("bug"), False),
    ],
)
def test_which_errors_are_retried(error: BaseException, retried: bool) -> None:
    assert is_retryable(error) is retried


# ---------------------------------------------------------------------------- reconnecting


async def test_samples_resume_after_failed_attempts_with_the_backoff_waits() -> None:
    clock = FakeClock()
    factory = Factory(
        clock,
        Script(forces=(1.0, 2.0), then=lost()),
        Script(connect_error=not_back()),
        Script(connect_error=DevicePermissionDenied("fake://", "permission denied")),
        Script(connect_error=not_back()),
        Script(forces=(3.0, 4.0)),
    )
    sensor, listener = supervised(factory, clock, seed=3)
    info = await sensor.connect()
    assert info.serial == "0042"
    lost_at = clock.now
    assert await take(sensor, 4) == [1.0, 2.0, 3.0, 4.0]  # nothing replayed, nothing lost
    assert clock.sleeps == expected_delays(Backoff(), 3, 4)
    assert clock.now == pytest.approx(lost_at + sum(clock.sleeps))
    after = sum(clock.sleeps)
    assert listener.calls == [
        ("reconnecting", "the link was closed by the other end"),
        ("connected", f"restored after {after:.1f} s (4 attempts)"),
    ]
    assert sensor.state is LinkState.CONNECTED
    assert sensor.reconnects == 1
    assert sensor.info is not None
    assert sensor.info is factory.made[-1].info  # the new connection's
    assert all(d.closed.is_set() for d in factory.made[:4])  # every dead or failed one closed
    await sensor.close()
    assert factory.made[4].closed.is_set()


async def test_gives_up_after_the_limit_with_the_last_error() -> None:
    clock = FakeClock()
    factory = Factory(clock, Script(forces=(1.0,), then=lost()), Script(connect_error=not_back()))
    sensor, listener = supervised(factory, clock, give_up_after_s=10.0)
    await sensor.connect()
    lost_at = clock.now
    with pytest.raises(DeviceDisconnected) as caught:
        await drain(sensor)
    error = caught.value
    assert error.device == "tbar"
    assert error.message == "gave up reconnecting after 10.0 s: cannot open: no such file"
    assert error.hint == "plug it in"  # the last error's hint: what the user can do
    assert isinstance(error.__cause__, DeviceNotFound)
    assert clock.now == pytest.approx(lost_at + 10.0)  # the last attempt at the deadline
    # 0.5 + 1 + 2 + 4 (+-25 %) leave under 10 s; the fifth wait is cut to the deadline.
    assert len(clock.sleeps) == 5
    assert clock.sleeps[:4] == expected_delays(Backoff(), 1, 4)
    assert [s for s, _ in listener.calls] == ["reconnecting", "lost"]
    assert listener.calls[-1][1] == error.message
    assert sensor.state is LinkState.LOST
    assert all(d.closed.is_set() for d in factory.made)
    await sensor.close()


async def test_an_attempt_over_its_own_timeout_is_not_cut_short() -> None:
    """A connect that takes long (the driver's own timeout) runs to its end: giving up comes
    after it, not inside it."""
    clock = FakeClock()
    slow = Script(connect_error=DeviceTimeout("fake://", "no reply"), connect_takes_s=15.0)
    factory = Factory(clock, Script(then=lost()), slow)
    sensor, _ = supervised(factory, clock, give_up_after_s=10.0)
    await sensor.connect()
    lost_at = clock.now
    with pytest.raises(DeviceDisconnected, match=r"gave up reconnecting after 1[5-6]\.[0-9] s"):
        await drain(sensor)
    assert len(factory.made) == 2  # one attempt, past the deadline by itself
    assert clock.now - lost_at > 15.0


@pytest.mark.parametrize(
    "error",
    [
        DeviceMisconfigured("fake://", "no unit"),
        DeviceFault("fake://", "overload", code="11"),
        UnsupportedCommand("fake://", "no tare"),
        RuntimeError("a bug"),
    ],
)
async def test_a_non_retryable_failure_is_raised_at_once(error: BaseException) -> None:
    clock = FakeClock()
    factory = Factory(clock, Script(forces=(1.0,), then=error))
    sensor, listener = supervised(factory, clock)
    await sensor.connect()
    with pytest.raises(type(error)):
        await drain(sensor)
    assert len(factory.made) == 1
    assert listener.calls == []
    assert clock.sleeps == []
    await sensor.close()


async def test_a_non_retryable_error_while_reconnecting_is_raised_after_lost() -> None:
    clock = FakeClock()
    factory = Factory(
        clock,
        Script(then=lost()),
        Script(connect_error=not_back()),
        Script(connect_error=DeviceMisconfigured("fake://", "readings without a unit")),
    )
    sensor, listener = supervised(factory, clock)
    await sensor.connect()
    with pytest.raises(DeviceMisconfigured):
        await drain(sensor)
    assert listener.calls[-1] == ("lost", "readings without a unit")
    assert len(factory.made) == 3
    await sensor.close()


async def test_connect_errors_go_straight_to_the_caller() -> None:
    clock = FakeClock()
    factory = Factory(clock, Script(connect_error=not_back()))
    sensor, listener = supervised(factory, clock)
    with pytest.raises(DeviceNotFound):
        await sensor.connect()
    assert len(factory.made) == 1
    assert factory.made[0].closed.is_set()
    assert clock.sleeps == []
    assert listener.calls == []
    await sensor.close()


async def test_the_listener_hears_every_loss_and_return_in_order() -> None:
    clock = FakeClock()
    factory = Factory(
        clock,
        Script(forces=(1.0,), then=lost("cable pulled")),
        Script(forces=(2.0,), then=DeviceTimeout("fake://", "no reply for 2 s")),
        Script(forces=(3.0,)),
    )
    sensor, listener = supervised(factory, clock)
    await sensor.connect()
    assert await take(sensor, 3) == [1.0, 2.0, 3.0]
    assert [(s, m.split(" after")[0]) for s, m in listener.calls] == [
        ("reconnecting", "cable pulled"),
        ("connected", "restored"),
        ("reconnecting", "no reply for 2 s"),
        ("connected", "restored"),
    ]
    assert sensor.reconnects == 2
    await sensor.close()


async def test_close_during_a_backoff_wait_ends_the_samples_cleanly() -> None:
    clock = FakeClock()
    factory = Factory(clock, Script(forces=(1.0,), then=lost()), Script(connect_error=not_back()))
    waiting = asyncio.Event()

    async def never(seconds: float) -> None:  # a wait that only close() can end
        waiting.set()
        await asyncio.Event().wait()

    sensor = SupervisedSensor(factory, label="tbar", clock=clock, sleep=never)
    await sensor.connect()
    consumer = asyncio.create_task(drain(sensor))
    await asyncio.wait_for(waiting.wait(), WAIT_S)
    await sensor.close()
    assert await asyncio.wait_for(consumer, WAIT_S) == [1.0]  # ended, no error
    assert len(factory.made) == 1
    await sensor.close()  # idempotent


async def test_close_during_a_connect_attempt_aborts_it() -> None:
    clock = FakeClock()
    factory = Factory(clock, Script(then=lost()), Script(connect_forever=True))
    sensor, listener = supervised(factory, clock)
    await sensor.connect()
    consumer = asyncio.create_task(drain(sensor))
    await listener.wait_for(LinkState.RECONNECTING)
    await asyncio.wait_for(factory.blocked.wait(), WAIT_S)
    await sensor.close()
    assert await asyncio.wait_for(consumer, WAIT_S) == []
    attempt = factory.made[1]
    assert attempt.connect_cancelled
    assert attempt.closed.is_set()


async def test_cancelling_the_consumer_mid_attempt_cancels_the_attempt() -> None:
    clock = FakeClock()
    factory = Factory(clock, Script(then=lost()), Script(connect_forever=True))
    sensor, _ = supervised(factory, clock)
    await sensor.connect()
    consumer = asyncio.create_task(drain(sensor))
    await asyncio.wait_for(factory.blocked.wait(), WAIT_S)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert factory.made[1].connect_cancelled
    assert factory.made[1].closed.is_set()
    await sensor.close()


async def test_stats_sum_every_driver_and_count_reconnects() -> None:
    clock = FakeClock()
    factory = Factory(
        clock,
        Script(forces=(1.0,), then=lost(), stats=LinkStats(requests=10, readings=9, missed=1)),
        Script(connect_error=not_back(), stats=LinkStats(requests=3, garbage=2)),
        Script(forces=(2.0,), stats=LinkStats(requests=5, readings=5, dropped=1)),
    )
    sensor, _ = supervised(factory, clock)
    await sensor.connect()
    assert await take(sensor, 2) == [1.0, 2.0]
    expected = LinkStats(requests=18, readings=14, missed=1, garbage=2, dropped=1)
    assert sensor.stats == expected
    assert sensor.reconnects == 1
    await sensor.close()
    assert sensor.stats == expected  # still counted once the last driver is closed


async def test_tare_goes_to_the_driver_and_is_refused_while_reconnecting() -> None:
    clock = FakeClock()
    factory = Factory(clock, Script(forces=(1.0,), then=lost()), Script(connect_error=not_back()))
    in_wait = asyncio.Event()
    release = asyncio.Event()

    async def held(seconds: float) -> None:
        in_wait.set()
        await release.wait()
        clock.now += 60.0

    sensor = SupervisedSensor(factory, label="tbar", clock=clock, sleep=held)
    await sensor.connect()
    await sensor.tare()
    assert factory.made[0].tared == 1
    consumer = asyncio.create_task(drain(sensor))
    await asyncio.wait_for(in_wait.wait(), WAIT_S)
    with pytest.raises(DeviceDisconnected, match="reconnecting"):
        await sensor.tare()
    release.set()
    with pytest.raises(DeviceDisconnected, match="gave up"):
        await asyncio.wait_for(consumer, WAIT_S)
    await sensor.close()


async def test_samples_before_connect_is_a_usage_error() -> None:
    clock = FakeClock()
    sensor, _ = supervised(Factory(clock, Script()), clock)
    with pytest.raises(RuntimeError, match="connect"):
        await drain(sensor)


def test_give_up_time_must_be_positive() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match="give_up_after_s"):
        SupervisedSensor(Factory(clock, Script()), label="tbar", give_up_after_s=0)


# ---------------------------------------------------------------------------- flapping, identity


async def test_a_link_that_drops_again_at_once_is_one_outage_that_gives_up() -> None:
    # Connects fine, then fails before giving a sample, for ever: without one outage spanning
    # these, the give-up time would restart at each loss and the session would never end.
    clock = FakeClock()
    factory = Factory(clock, Script(forces=(1.0,), then=lost()), Script(then=lost("dropped again")))
    sensor, listener = supervised(factory, clock, give_up_after_s=10.0)
    await sensor.connect()
    lost_at = clock.now
    with pytest.raises(DeviceDisconnected, match="gave up reconnecting after") as caught:
        await drain(sensor)
    assert "dropped again" in caught.value.message
    assert 10.0 <= clock.now - lost_at < 10.0 + Backoff().max_s * 1.25
    states = [state for state, _ in listener.calls]
    assert states == ["reconnecting", "lost"]  # never "connected": it was never steady
    assert sensor.reconnects == 0
    await sensor.close()


async def test_restored_only_once_the_new_link_has_been_steady() -> None:
    clock = FakeClock()

    class Ticking(FakeDriver):
        async def samples(self) -> AsyncIterator[ForceSample]:
            for force in self.script.forces:
                self.clock.now += 0.2  # a sample every 0.2 s
                yield ForceSample(self.clock.now, force)
            if self.script.then is not None:
                raise self.script.then
            await self.closed.wait()

    scripts = [Script(forces=(1.0,), then=lost()), Script(forces=(2.0, 3.0, 4.0, 5.0))]
    made: list[FakeDriver] = []

    def factory() -> FakeDriver:
        driver = Ticking(scripts[min(len(made), 1)], clock, "0042")
        made.append(driver)
        return driver

    sensor = SupervisedSensor(
        factory, label="tbar", clock=clock, sleep=clock.sleep, rng=random.Random(1), steady_s=0.5
    )
    listener = Listener()
    sensor.watch_link(listener)
    await sensor.connect()
    got: list[tuple[float, list[str]]] = []
    stream = sensor.samples()
    try:
        async for sample in stream:
            got.append((sample.force_n, [state for state, _ in listener.calls]))
            if len(got) == 5:
                break
    finally:
        await cast(AsyncGenerator[ForceSample], stream).aclose()
    # The new link's samples: 2.0 at t0, 3.0 at +0.2, 4.0 at +0.4 (not yet steady), 5.0 at
    # +0.6: restored (the listener is told before that sample is handed on).
    assert [f for f, states in got if "connected" not in states] == [1.0, 2.0, 3.0, 4.0]
    assert listener.calls[-1][0] == "connected"
    assert sensor.reconnects == 1
    await sensor.close()


async def test_a_different_device_answering_after_a_drop_ends_the_session() -> None:
    clock = FakeClock()
    factory = Factory(
        clock, Script(forces=(1.0,), then=lost()), Script(forces=(2.0,)), serials=("A1", "B2")
    )
    sensor, listener = supervised(factory, clock)
    await sensor.connect()
    with pytest.raises(DeviceMisconfigured, match="a different device answered") as caught:
        await drain(sensor)
    assert "fake#B2" in caught.value.message
    assert "fake#A1" in caught.value.message
    assert listener.calls[-1][0] == "lost"
    assert all(driver.closed.is_set() for driver in factory.made[1:])
    await sensor.close()
