"""The session runner: feeds the timing core from the sensor, carries out its outputs, records.

The core decides; the runner only moves data. Every exit path (completion, emergency stop, Ctrl-C,
SIGTERM, device failure, an exception) stops every actuator before the session is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from devicectl.dose import SessionDose
from devicectl.plan import Plan
from devicectl.records import SessionWriter
from devicectl.summary import dose_summary
from devicectl.timing.core import TimingCore
from devicectl.timing.types import (
    Actuator,
    ActuatorCommand,
    Alert,
    Command,
    Cue,
    DeviceEvent,
    DeviceEventKind,
    HoldDone,
    Output,
    Phase,
    PhaseChange,
    SessionEnded,
    SessionState,
    Status,
)
from drivers.errors import DeviceError
from drivers.force import ForceSensor

# The core is ticked this often with no sample, so countdowns and the stale-data rule run on time.
# 20 Hz keeps countdowns within 50 ms, far below what a person notices, at negligible cost.
TICK_S = 0.05

EXIT_COMPLETED = 0
EXIT_DEVICE_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class ActuatorPort(Protocol):
    """What the runner needs from an actuator driver (guns and chairs arrive in a later issue)."""

    async def execute(self, command: ActuatorCommand) -> None: ...

    async def stop(self) -> None: ...


class SessionSink(Protocol):
    """Where the runner reports: a console, JSON lines, later the terminal UI."""

    def outputs(self, outputs: Sequence[Output], elapsed_s: float) -> None: ...

    def status(self, status: Status) -> None: ...

    def message(self, text: str) -> None: ...


@dataclass(frozen=True)
class SessionResult:
    session_id: int
    status: str  # completed | stopped | interrupted
    exit_code: int
    dose: SessionDose
    error: str | None = None


@dataclass
class _Ending:
    status: str = "completed"
    exit_code: int = EXIT_COMPLETED
    error: str | None = None
    reason: str = ""


@dataclass
class SessionRunner:
    plan: Plan
    sensor: ForceSensor
    writer: SessionWriter
    sink: SessionSink
    actuators: Mapping[Actuator, ActuatorPort] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    tick_s: float = TICK_S

    def __post_init__(self) -> None:
        self.core = TimingCore(self.plan, actuators=frozenset(self.actuators))
        self._t0 = 0.0
        self._done = asyncio.Event()
        self._ending = _Ending()
        self._actuator_tasks: set[asyncio.Task[None]] = set()
        self._side_tasks: set[asyncio.Task[None]] = set()
        # Set when nobody can press a key (stdin closed): untimed pauses are confirmed at once.
        self.auto_confirm = False

    # -- commands from the user (keyboard, signals); safe to call at any time -----------------

    def command(self, command: Command, *, reason: str = "") -> None:
        now = self.clock()
        self._handle(self.core.command(now, command), now)
        if command is Command.STOP and self._ending.status == "completed":
            self._ending = _Ending("stopped", EXIT_INTERRUPTED, reason=reason or "stop")

    def interrupt(self, reason: str) -> None:
        """Ctrl-C or SIGTERM: an emergency stop, recorded as stopped, exit 130."""
        self.sink.message(f"{reason}: stopping every actuator and closing the session")
        self.command(Command.STOP, reason=reason)

    async def tare(self) -> None:
        try:
            await self.sensor.tare()
        except DeviceError as exc:
            self.sink.message(f"tare failed: {exc}")
            return
        self.writer.event(self._elapsed(self.clock()), "tare", "sensor zeroed")

    def keep(self, task: asyncio.Task[None]) -> None:
        """Hold a reference to a side task (a tare) until it ends; cancelled when the run ends."""
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    # -- the run -----------------------------------------------------------------------------------

    async def run(self) -> SessionResult:
        self._t0 = self.clock()
        self._handle(self.core.start(self._t0), self._t0)
        pump = asyncio.create_task(self._pump(), name="session-samples")
        ticker = asyncio.create_task(self._tick(), name="session-ticker")
        failed = True
        try:
            await self._wait(pump)
            failed = False
        finally:
            for task in (pump, ticker):
                task.cancel()
            await asyncio.gather(pump, ticker, return_exceptions=True)
            await self._stop_all_actuators()
            if failed:  # a bug or a cancellation: still close the record, then let it propagate
                self._ending = _Ending("interrupted", EXIT_DEVICE_FAILURE, error="unexpected error")
                self._finish()
        return self._finish()

    async def _wait(self, pump: asyncio.Task[None]) -> None:
        done_waiter = asyncio.create_task(self._done.wait(), name="session-done")
        try:
            await asyncio.wait({pump, done_waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            done_waiter.cancel()
            await asyncio.gather(done_waiter, return_exceptions=True)
        if pump.done() and not self._done.is_set():
            self._device_failed(pump)

    def _device_failed(self, pump: asyncio.Task[None]) -> None:
        exc = None if pump.cancelled() else pump.exception()
        if exc is not None and not isinstance(exc, DeviceError):
            raise exc
        message = str(exc) if exc else "the sensor stopped sending samples"
        self.sink.message(f"device failure: {message}")
        now = self.clock()
        self.writer.event(self._elapsed(now), "device_failure", message, severity="alarm")
        self._handle(self.core.command(now, Command.STOP), now)
        self._ending = _Ending("interrupted", EXIT_DEVICE_FAILURE, error=message)

    async def _pump(self) -> None:
        async for sample in self.sensor.samples():
            self.writer.sample(self._elapsed(sample.t), sample.force_n)
            self._handle(self.core.sample(sample.t, sample.force_n), sample.t)

    async def _tick(self) -> None:
        next_at = self.clock()
        while True:
            now = self.clock()
            self._handle(self.core.tick(now), now)
            status = self.core.status(now)
            if self.auto_confirm and status.phase is Phase.WAITING:
                self.sink.message("no keyboard: the untimed pause is confirmed at once")
                self.command(Command.CONFIRM)
            self.sink.status(status)
            if self.writer.flush_due(self._elapsed(now)):
                self.writer.flush()
            # Deadlines, not sleep(tick): a fixed sleep drifts (see docs on paced producers).
            next_at = max(next_at + self.tick_s, now)
            await asyncio.sleep(next_at - now)

    # -- outputs of the core --------------------------------------------------------------------

    def _elapsed(self, t: float) -> float:
        return max(0.0, t - self._t0)

    def _handle(self, outputs: Sequence[Output], now: float) -> None:
        if not outputs:
            return
        elapsed = self._elapsed(now)
        for out in outputs:
            self._record(out)
            if isinstance(out, ActuatorCommand):
                self._actuate(out)
            elif isinstance(out, SessionEnded):
                self._done.set()
        self.sink.outputs(outputs, elapsed)

    def _record(self, out: Output) -> None:
        w = self.writer
        match out:
            case PhaseChange(t=t, step_index=i, rep=rep, phase=phase):
                w.phase(self._elapsed(t), i, rep, phase.value)
            case Cue(t=t, kind=kind, step_index=i):
                w.event(self._elapsed(t), f"cue.{kind.value}", data={"step": i + 1})
            case Alert(t=t, kind=kind, severity=sev, message=msg, step_index=i, device=dev):
                data = {"step": None if i is None else i + 1, "device": dev}
                w.event(self._elapsed(t), f"alert.{kind.value}", msg, severity=sev.value, data=data)
            case ActuatorCommand(t=t, actuator=a, action=action, level=level, program=program):
                data = {"level": level, "program": program}
                w.event(self._elapsed(t), f"actuator.{a.value}.{action}", data=data)
            case HoldDone(dose=dose):
                w.hold(dose)
            case SessionEnded(t=t, state=state):
                w.event(self._elapsed(t), f"session.{state.value}")

    def _actuate(self, command: ActuatorCommand) -> None:
        port = self.actuators.get(command.actuator)
        if port is None:
            return
        task = asyncio.create_task(self._run_actuator(port, command), name="actuator-command")
        self._actuator_tasks.add(task)
        task.add_done_callback(self._actuator_tasks.discard)

    async def _run_actuator(self, port: ActuatorPort, command: ActuatorCommand) -> None:
        kind = (
            DeviceEventKind.ACTUATOR_STOPPED
            if command.is_stop
            else DeviceEventKind.ACTUATOR_STARTED
        )
        try:
            await port.execute(command)
        except DeviceError as exc:
            event = DeviceEvent(DeviceEventKind.ERROR, command.actuator.value, str(exc))
        else:
            event = DeviceEvent(kind, command.actuator.value)
        now = self.clock()
        self._handle(self.core.device_event(now, event), now)

    async def _stop_all_actuators(self) -> None:
        """The last line of defence: every actuator gets a stop, whatever the core thinks."""
        for task in [*self._actuator_tasks, *self._side_tasks]:
            task.cancel()
        for port in self.actuators.values():
            with contextlib.suppress(DeviceError):
                await port.stop()

    def _finish(self) -> SessionResult:
        now = self.clock()
        dose = self.core.dose(now)
        ending = self._ending
        if ending.status == "completed" and self.core.state is SessionState.STOPPED:
            ending = _Ending("stopped", EXIT_INTERRUPTED)
        summary = dose_summary(dose, self.plan, ending.reason or ending.error or "")
        self.writer.finish(ending.status, summary=summary)
        return SessionResult(
            self.writer.session_id, ending.status, ending.exit_code, dose, ending.error
        )
