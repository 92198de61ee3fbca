"""The actuator writer: commands in order, a stop jumps the queue, nothing waits for ever."""

from __future__ import annotations

import asyncio

import pytest

from devicectl import actuation
from devicectl.actuation import ActuatorChannel, close_all
from devicectl.timing.types import Actuator, ActuatorCommand
from drivers.errors import DeviceError, DeviceTimeout


def _cmd(action: str, level: int | None = None) -> ActuatorCommand:
    return ActuatorCommand(0.0, Actuator.GUN, action, level=level)


class SlowGun:
    """A gun whose starts hang until released; stops are immediate."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.cancelled: list[str] = []
        self.start_began = asyncio.Event()
        self.release = asyncio.Event()

    async def execute(self, command: ActuatorCommand) -> None:
        label = f"{command.action}{command.level or ''}"
        if command.is_stop:
            self.sent.append(label)
            return
        self.start_began.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.append(label)
            raise
        self.sent.append(label)

    async def stop(self) -> None:
        self.sent.append("stop()")


class Results:
    def __init__(self) -> None:
        self.done: list[tuple[str, DeviceError | None]] = []
        self.changed = asyncio.Event()

    def __call__(self, command: ActuatorCommand, error: DeviceError | None) -> None:
        self.done.append((command.action, error))
        self.changed.set()

    async def wait_for(self, n: int) -> None:
        async def _until() -> None:
            while len(self.done) < n:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(_until(), 5)


async def test_a_stop_cancels_the_start_in_flight_and_drops_the_queue() -> None:
    gun, results = SlowGun(), Results()
    channel = ActuatorChannel("gun", gun, results)
    channel.submit(_cmd("start", 3))
    channel.submit(_cmd("start", 4))  # queued behind the hung start
    await asyncio.wait_for(gun.start_began.wait(), 5)
    channel.submit(_cmd("stop"))
    await results.wait_for(1)
    assert gun.cancelled == ["start3"]
    assert gun.sent == ["stop"]  # start4 never went out
    assert results.done == [("stop", None)]
    await channel.close()
    assert gun.sent == ["stop", "stop()"]


async def test_commands_run_in_order_when_nothing_is_stopped() -> None:
    gun, results = SlowGun(), Results()
    gun.release.set()
    channel = ActuatorChannel("gun", gun, results)
    for level in (1, 2, 3):
        channel.submit(_cmd("start", level))
    await results.wait_for(3)
    assert gun.sent == ["start1", "start2", "start3"]
    await channel.close()


async def test_a_hung_device_times_out_with_a_device_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(actuation, "COMMAND_TIMEOUT_S", 0.05)
    gun, results = SlowGun(), Results()
    channel = ActuatorChannel("gun", gun, results)
    channel.submit(_cmd("start", 2))
    await results.wait_for(1)
    [(action, error)] = results.done
    assert action == "start"
    assert isinstance(error, DeviceTimeout)
    await channel.close()


async def test_close_all_stops_every_actuator_even_when_one_hangs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(actuation, "COMMAND_TIMEOUT_S", 0.05)

    class HungStop(SlowGun):
        async def stop(self) -> None:
            await asyncio.Event().wait()  # never returns: the time limit must end it

    hung, fine = HungStop(), SlowGun()
    channels = [ActuatorChannel("chair", hung, Results()), ActuatorChannel("gun", fine, Results())]
    channels[0].submit(_cmd("start", 1))
    await asyncio.wait_for(hung.start_began.wait(), 5)
    await asyncio.wait_for(close_all(channels), 5)
    assert fine.sent == ["stop()"]
    assert hung.cancelled == ["start1"]
