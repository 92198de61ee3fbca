"""The session runner in-process: a scripted sensor, fake actuators, real records.

What matters here is what the runner does at its edges: every exit path stops every actuator,
records the session with the right status and exit code, and moves samples into the records.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

from devicectl.plan import GunStep, HoldStep, Limits, Plan
from devicectl.records import DeviceRecord, Records
from devicectl.session import (
    EXIT_COMPLETED,
    EXIT_DEVICE_FAILURE,
    EXIT_INTERRUPTED,
    ActuatorPort,
    SessionRunner,
)
from devicectl.timing.types import Actuator, ActuatorCommand, Command, Output, Status
from devicectl.units import ForceUnit
from drivers.errors import DeviceDisconnected
from drivers.force import DeviceInfo, ForceSample, ForceSensor

RATE_S = 0.01  # the scripted sensor's sample interval


class ScriptedSensor(ForceSensor):
    """Samples from ``force(t)`` at 100 Hz on the real clock; fails with ``fail_with`` if set."""

    def __init__(self, force: Callable[[float], float]) -> None:
        self.force = force
        self.first_sample = asyncio.Event()
        self.fail_with: Exception | None = None
        self.tared = 0
        self._info = DeviceInfo("scripted", "test", simulated=True)

    async def connect(self) -> DeviceInfo:
        return self._info

    async def samples(self) -> AsyncIterator[ForceSample]:
        t0 = time.monotonic()
        while True:
            if self.fail_with is not None:
                raise self.fail_with
            now = time.monotonic()
            yield ForceSample(now, self.force(now - t0))
            self.first_sample.set()  # after the yield: the runner has taken the sample in
            await asyncio.sleep(RATE_S)

    async def tare(self) -> None:
        self.tared += 1

    async def close(self) -> None:
        return None

    @property
    def info(self) -> DeviceInfo | None:
        return self._info


class FakeGun:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.started = asyncio.Event()

    async def execute(self, command: ActuatorCommand) -> None:
        self.calls.append(command.action)
        if not command.is_stop:
            self.started.set()

    async def stop(self) -> None:
        self.calls.append("stop()")


class Collect:
    def __init__(self) -> None:
        self.seen: list[Output] = []
        self.messages: list[str] = []
        self.samples: list[tuple[float, float]] = []

    def outputs(self, outputs: Sequence[Output], elapsed_s: float) -> None:
        self.seen.extend(outputs)

    def status(self, status: Status) -> None:
        return None

    def sample(self, t_s: float, force_n: float) -> None:
        self.samples.append((t_s, force_n))

    def message(self, text: str) -> None:
        self.messages.append(text)


def _hold_plan() -> Plan:
    step = HoldStep(
        "calf", low_n=20, high_n=40, ceiling_n=60, hold_s=0.3, rest_s=0.2, repeat=1, grace_s=0.1
    )
    return Plan("short hold", ForceUnit.N, (step,), Limits(contact_n=2.0))


def _gun_plan() -> Plan:
    step = GunStep("quads", level=3, duration_s=30.0)
    return Plan("gun", ForceUnit.N, (step,), Limits(max_session_s=900))


def _runner(
    tmp_path: Path, plan: Plan, sensor: ForceSensor, gun: FakeGun | None = None
) -> tuple[SessionRunner, Records, Collect]:
    records = Records.open(tmp_path / "r.db")
    writer = records.begin(
        plan_name=plan.name,
        plan_source=plan.source,
        plan_text="",
        devices=[DeviceRecord("tbar", "scripted", "scripted", simulated=True)],
    )
    actuators: dict[Actuator, ActuatorPort] = {Actuator.GUN: gun} if gun is not None else {}
    sink = Collect()
    runner = SessionRunner(plan, sensor, writer, sink, actuators=actuators)
    return runner, records, sink


async def test_a_short_hold_completes_and_its_samples_and_dose_are_recorded(
    tmp_path: Path,
) -> None:
    sensor = ScriptedSensor(lambda t: 0.0 if t < 0.1 else 30.0 if t < 0.8 else 0.0)
    runner, records, _ = _runner(tmp_path, _hold_plan(), sensor)
    result = await asyncio.wait_for(runner.run(), 10)
    assert (result.status, result.exit_code) == ("completed", EXIT_COMPLETED)
    [session] = records.sessions()
    assert session.status == "completed"
    [hold] = records.holds(session.id)
    assert hold["completed"]
    assert hold["in_band_s"] == pytest.approx(0.3, abs=0.05)
    assert session.samples >= 50
    records.close()


async def test_interrupt_during_a_gun_step_stops_the_gun_and_records_stopped(
    tmp_path: Path,
) -> None:
    gun = FakeGun()
    runner, records, sink = _runner(tmp_path, _gun_plan(), ScriptedSensor(lambda t: 0.0), gun)
    run = asyncio.create_task(runner.run())
    await asyncio.wait_for(gun.started.wait(), 5)
    runner.interrupt("interrupted (Ctrl-C)")
    result = await asyncio.wait_for(run, 5)
    assert (result.status, result.exit_code) == ("stopped", EXIT_INTERRUPTED)
    # The core's stop command reached the gun, then the last line of defence ran as well.
    assert gun.calls == ["start", "stop", "stop()"]
    assert records.sessions()[0].status == "stopped"
    assert any("Ctrl-C" in m for m in sink.messages)
    records.close()


async def test_sensor_failure_during_a_gun_step_stops_the_gun_and_exits_1(tmp_path: Path) -> None:
    gun = FakeGun()
    sensor = ScriptedSensor(lambda t: 0.0)
    runner, records, _ = _runner(tmp_path, _gun_plan(), sensor, gun)
    run = asyncio.create_task(runner.run())
    await asyncio.wait_for(gun.started.wait(), 5)
    sensor.fail_with = DeviceDisconnected("mark10", "link lost")
    result = await asyncio.wait_for(run, 5)
    assert (result.status, result.exit_code) == ("interrupted", EXIT_DEVICE_FAILURE)
    assert result.error is not None
    assert "link lost" in result.error
    assert gun.calls == ["start", "stop", "stop()"]
    [session] = records.sessions()
    assert session.status == "interrupted"
    assert "device_failure" in [e["kind"] for e in records.events(session.id)]
    records.close()


async def test_an_unexpected_error_still_stops_the_gun_and_closes_the_record(
    tmp_path: Path,
) -> None:
    gun = FakeGun()
    sensor = ScriptedSensor(lambda t: 0.0)
    runner, records, _ = _runner(tmp_path, _gun_plan(), sensor, gun)
    run = asyncio.create_task(runner.run())
    await asyncio.wait_for(gun.started.wait(), 5)
    sensor.fail_with = RuntimeError("a bug")
    with pytest.raises(RuntimeError, match="a bug"):
        await asyncio.wait_for(run, 5)
    assert gun.calls[-1] == "stop()"
    assert records.sessions()[0].status == "interrupted"
    records.close()


async def test_emergency_stop_command_reaches_the_gun_first(tmp_path: Path) -> None:
    gun = FakeGun()
    runner, records, sink = _runner(tmp_path, _gun_plan(), ScriptedSensor(lambda t: 0.0), gun)
    run = asyncio.create_task(runner.run())
    await asyncio.wait_for(gun.started.wait(), 5)
    runner.command(Command.STOP)
    result = await asyncio.wait_for(run, 5)
    assert result.status == "stopped"
    stops = [o for o in sink.seen if isinstance(o, ActuatorCommand) and o.is_stop]
    assert len(stops) == 1
    assert gun.calls == ["start", "stop", "stop()"]
    records.close()


async def test_tare_goes_to_the_sensor_and_is_recorded(tmp_path: Path) -> None:
    sensor = ScriptedSensor(lambda t: 0.0)
    runner, records, _ = _runner(tmp_path, _gun_plan(), sensor)
    run = asyncio.create_task(runner.run())
    await asyncio.wait_for(sensor.first_sample.wait(), 5)
    await runner.tare()
    runner.command(Command.STOP)
    result = await asyncio.wait_for(run, 5)
    assert sensor.tared == 1
    assert "tare" in [e["kind"] for e in records.events(result.session_id)]
    records.close()


async def test_pause_stops_the_gun_at_once_and_resume_starts_it_again(tmp_path: Path) -> None:
    gun = FakeGun()
    runner, records, _ = _runner(tmp_path, _gun_plan(), ScriptedSensor(lambda t: 0.0), gun)
    run = asyncio.create_task(runner.run())
    await asyncio.wait_for(gun.started.wait(), 5)
    gun.started.clear()
    runner.command(Command.PAUSE)
    runner.command(Command.RESUME)
    await asyncio.wait_for(gun.started.wait(), 5)
    runner.command(Command.STOP)
    await asyncio.wait_for(run, 5)
    assert gun.calls == ["start", "stop", "start", "stop", "stop()"]
    records.close()


async def test_a_start_that_hangs_is_cut_short_by_a_stop(tmp_path: Path) -> None:
    class HangingGun(FakeGun):
        async def execute(self, command: ActuatorCommand) -> None:
            self.calls.append(command.action)
            if not command.is_stop:
                self.started.set()
                await asyncio.Event().wait()  # the start never confirms

    gun = HangingGun()
    runner, records, _ = _runner(tmp_path, _gun_plan(), ScriptedSensor(lambda t: 0.0), gun)
    run = asyncio.create_task(runner.run())
    await asyncio.wait_for(gun.started.wait(), 5)
    runner.command(Command.STOP)
    result = await asyncio.wait_for(run, 5)
    assert result.status == "stopped"
    assert gun.calls == ["start", "stop", "stop()"]
    records.close()


async def test_tare_is_refused_while_the_tip_is_loaded_even_when_paused(tmp_path: Path) -> None:
    sensor = ScriptedSensor(lambda t: 30.0)  # pressing from the first sample
    runner, records, sink = _runner(tmp_path, _hold_plan(), sensor)
    run = asyncio.create_task(runner.run())
    await asyncio.wait_for(sensor.first_sample.wait(), 5)
    await runner.tare()
    runner.command(Command.PAUSE)
    await runner.tare()
    runner.command(Command.STOP)
    result = await asyncio.wait_for(run, 5)
    assert sensor.tared == 0
    assert sum("tare refused" in m for m in sink.messages) == 2
    assert "tare" not in [e["kind"] for e in records.events(result.session_id)]
    records.close()
