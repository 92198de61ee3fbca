"""One writer per actuator: commands run in order, and a stop jumps the queue.

A stop cancels the command in flight (a start still being sent) and drops everything queued behind
it, then runs first. Every command has a time limit, so one hung device cannot hold a stop up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

from devicectl.timing.types import ActuatorCommand
from drivers.errors import DeviceError, DeviceTimeout

log = logging.getLogger(__name__)

# A device that has not confirmed a command in this time is treated as failed; 2 s is longer than
# any serial or BLE round trip plus the device's own confirmation, short enough to act on.
COMMAND_TIMEOUT_S = 2.0


class ActuatorPort(Protocol):
    """What the runner needs from an actuator driver (guns and chairs arrive in a later issue)."""

    async def execute(self, command: ActuatorCommand) -> None: ...

    async def stop(self) -> None: ...


Done = Callable[[ActuatorCommand, DeviceError | None], None]


class ActuatorChannel:
    """The single writer for one actuator. ``on_done`` hears how each command ended."""

    def __init__(self, name: str, port: ActuatorPort, on_done: Done) -> None:
        self.name = name
        self.port = port
        self.on_done = on_done
        self._queue: deque[ActuatorCommand] = deque()
        self._wake = asyncio.Event()
        self._current: asyncio.Task[None] | None = None
        self._current_is_stop = False
        self._worker = asyncio.create_task(self._work(), name=f"actuator-{name}")

    def submit(self, command: ActuatorCommand) -> None:
        if command.is_stop:
            self._queue.clear()
            if self._current is not None and not self._current_is_stop:
                self._current.cancel()
            self._queue.appendleft(command)
        else:
            self._queue.append(command)
        self._wake.set()

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._run(self._queue.popleft())

    async def _run(self, command: ActuatorCommand) -> None:
        self._current_is_stop = command.is_stop
        self._current = asyncio.create_task(self._send(command), name=f"{self.name}-command")
        try:
            await self._current
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # the worker itself is being cancelled
                raise
        finally:
            self._current = None

    async def _send(self, command: ActuatorCommand) -> None:
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_S):
                await self.port.execute(command)
        except TimeoutError:
            error: DeviceError | None = DeviceTimeout(
                self.name, f"no confirmation of {command.action} within {COMMAND_TIMEOUT_S} s"
            )
        except DeviceError as exc:
            error = exc
        else:
            error = None
        try:
            self.on_done(command, error)
        except Exception:  # the writer must outlive a failing listener: later stops depend on it
            log.exception("reporting the end of %s on %s failed", command.action, self.name)

    async def close(self) -> None:
        """The last line of defence. A stop in flight or queued is carried out (time-limited):
        cutting a stop frame short and sending another could garble both. Anything else is
        cancelled. Then a plain ``port.stop()``, time-limited, whatever happened before."""
        current, current_is_stop = self._current, self._current_is_stop
        if current is not None and current_is_stop:
            await asyncio.wait({current}, timeout=COMMAND_TIMEOUT_S)
        queued_stop = next((c for c in self._queue if c.is_stop), None)
        self._queue.clear()
        tasks = [t for t in (current, self._worker) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if queued_stop is not None:
            await self._send(queued_stop)
        with contextlib.suppress(DeviceError, TimeoutError):
            async with asyncio.timeout(COMMAND_TIMEOUT_S):
                await self.port.stop()


async def close_all(channels: list[ActuatorChannel]) -> None:
    """Stop every actuator at once, so one slow device does not delay the others."""
    await asyncio.gather(*(c.close() for c in channels))
