"""The session runner: feeds the timing core from the sensor, carries out its outputs, records.

The core decides; the runner only moves data. Every exit path (completion, emergency stop, Ctrl-C,
SIGTERM, device failure, an exception) stops every actuator before the session is closed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from devicectl.actuation import ActuatorChannel, ActuatorPort, close_all
from devicectl.dose import SessionDose
from devicectl.plan import Plan
from devicectl.records import SessionWriter
from devicectl.summary import dose_summary
from devicectl.timing.core import TimingCore
from devicectl.timing.sensor import TBAR
from devicectl.timing.types import (
    Actuator,
    ActuatorCommand,
    Alert,
    BandChanged,
    BandDirection,
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
    StateChange,
    Status,
)
from drivers.errors import DeviceError
from drivers.force import DeviceInfo, ForceSensor
from drivers.supervisor import LinkState

# The core is ticked this often with no sample, so countdowns and the stale-data rule run on time.
# 20 Hz keeps countdowns within 50 ms, far below what a person notices, at negligible cost.
TICK_S = 0.05

EXIT_COMPLETED = 0
EXIT_DEVICE_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

# What a band move means in the client's words, recorded with it unless the caller gives its own.
_BAND_REASON = {BandDirection.UP: "too little", BandDirection.DOWN: "too much"}
# Client feedback is a 0-10 rating (DESIGN.md "The terminal UI": "record client feedback (0-10)").
FEEDBACK_MIN, FEEDBACK_MAX = 0, 10

# Taring re-zeroes the gauge at the load on it now: only sensible with the tip off the skin.
_TARE_PHASES = frozenset({Phase.ARMED, Phase.REST, Phase.WAITING, Phase.RUNNING, Phase.DONE})

# DeviceInfo is re-exported: what a screen shows of a device comes through the core, not drivers.
__all__ = ["ActuatorPort", "DeviceInfo", "SessionResult", "SessionRunner", "SessionSink"]


class SessionSink(Protocol):
    """Where the runner reports: a console, JSON lines, the terminal UI."""

    def outputs(self, outputs: Sequence[Output], elapsed_s: float) -> None: ...

    def status(self, status: Status) -> None: ...

    def message(self, text: str) -> None: ...

    def sample(self, t_s: float, force_n: float) -> None:
        """Every sample the runner records (``t_s``: seconds since the session started), after
        the core has seen it. Called up to 1,000 times a second: keep it cheap (a display
        aggregates; the console and JSON sinks ignore it)."""
        ...


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
        self._t0: float | None = None
        self._done = asyncio.Event()
        self._ending = _Ending()
        self._channels: dict[Actuator, ActuatorChannel] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._told_no_keyboard = False
        # The T-bar's link as the sensor last told it (a bare driver never tells).
        self._link = LinkState.CONNECTED
        # Set when nobody can press a key (stdin closed): untimed pauses are confirmed at once.
        self.auto_confirm = False

    # -- commands from the user (keyboard, signals); safe to call at any time -----------------

    def command(self, command: Command, *, reason: str = "") -> None:
        now = self.clock()
        running = not self._done.is_set()
        if command is Command.STOP and running and self._ending.status == "completed":
            self._ending = _Ending("stopped", EXIT_INTERRUPTED, reason=reason or "stop key")
        data = {"reason": reason} if reason else None
        self.writer.event(self._elapsed(now), f"command.{command.value}", data=data)
        self._handle(self.core.command(now, command), now)

    def interrupt(self, reason: str) -> None:
        """Ctrl-C or SIGTERM: an emergency stop, recorded as stopped, exit 130."""
        self.sink.message(f"{reason}: stopping every actuator and closing the session")
        self.command(Command.STOP, reason=reason)

    def adjust_band(self, direction: BandDirection | str, reason: str = "") -> None:
        """Raise ("up") or lower ("down") the current hold step's target band by one band step
        (``TimingCore.adjust_band``). Recorded as ``band.raised`` / ``band.lowered`` with
        ``{"step": n (from 1), "band_n": [low, high], "reason": ...}``; the reason defaults to
        the client's words: raise = "too little", lower = "too much". A refusal (not a hold
        step, a limit) is recorded and shown as the core's REFUSED alert."""
        way = BandDirection(direction)  # ValueError for anything but "up" / "down"
        now = self.clock()
        self._handle(self.core.adjust_band(now, way, reason or _BAND_REASON[way]), now)

    def feedback(self, score: int, note: str = "") -> None:
        """Record the client's rating, 0 to 10, at the session's elapsed time (event
        ``feedback``, data ``{"score": n, "note": note}``), and tell the sink."""
        if isinstance(score, bool) or not isinstance(score, int):
            raise ValueError(f"feedback must be a whole number 0-10, not {score!r}")
        if not FEEDBACK_MIN <= score <= FEEDBACK_MAX:
            raise ValueError(f"feedback must be {FEEDBACK_MIN}-{FEEDBACK_MAX}, not {score}")
        if self._closing:  # the session is being closed: nothing may be written to it now
            self.sink.message("feedback not recorded: the session is over")
            return
        data = {"score": score, "note": note}
        self.writer.event(self._elapsed(self.clock()), "feedback", data=data)
        self.sink.message(f"client feedback {score}/10 recorded" + (f": {note}" if note else ""))

    def tare_refusal(self) -> str | None:
        """Why a tare would be wrong now, or None when it is safe (the tip is off the skin).

        Whatever the state (paused included): taring a loaded gauge would shift every later
        reading, the band and the ceiling alarm by that load."""
        status = self.core.status(self.clock())
        if status.force_n is None or status.frozen:
            return "tare refused: no fresh reading from the sensor"
        loaded = status.force_n >= self.plan.limits.contact_n
        in_a_hold = status.state is SessionState.RUNNING and status.phase not in _TARE_PHASES
        if loaded or in_a_hold:
            return "tare refused: lift the tip off the skin first (taring now would zero the load)"
        return None

    async def tare(self) -> None:
        refusal = self.tare_refusal()
        if refusal is not None:
            self.sink.message(refusal)
            return
        try:
            await self.sensor.tare()
        except DeviceError as exc:
            self.sink.message(f"tare failed: {exc}")
            return
        self.writer.event(self._elapsed(self.clock()), "tare", "sensor zeroed")
        self.sink.message("sensor zeroed")

    def link_changed(self, state: str, message: str) -> None:
        """The sensor's supervisor reports its link (``ForceSensor.watch_link``).

        Down: the core freezes the hold timer (LINK_LOST) and the status line says
        "reconnecting"; back: the same hold resumes (LINK_RESTORED). Given up: recorded as an
        alarm; the samples then end with DeviceDisconnected, which ends the session as
        interrupted (exit 1) as any device failure does.
        """
        if self._closing:  # the session is being closed: nothing may be written to it now
            return
        now = self.clock()
        elapsed = self._elapsed(now)
        was = self._link
        self._link = LinkState(state)
        if self._link is LinkState.RECONNECTING:
            self.writer.event(elapsed, "link.reconnecting", message, severity="warning")
            self.sink.message(f"T-bar link lost ({message}): reconnecting")
            event = DeviceEvent(DeviceEventKind.LINK_LOST, TBAR, "link lost, reconnecting")
            self._handle(self.core.device_event(now, event), now)
        elif self._link is LinkState.CONNECTED and was is not LinkState.CONNECTED:
            self.writer.event(elapsed, "link.restored", message)
            self.sink.message(f"T-bar reconnected: {message}")
            event = DeviceEvent(DeviceEventKind.LINK_RESTORED, TBAR)
            self._handle(self.core.device_event(now, event), now)
        elif self._link is LinkState.LOST:
            self.writer.event(elapsed, "link.lost", message, severity="alarm")

    def keep(self, task: asyncio.Task[None]) -> None:
        """Hold a reference to a side task (a tare) until it ends; cancelled when the run ends."""
        if self._closing:  # too late: the session is closing and must not be written to
            task.cancel()
            return
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    # -- the run -----------------------------------------------------------------------------------

    async def run(self) -> SessionResult:
        tasks: list[asyncio.Task[None]] = []
        failed = True
        try:
            self._channels = {
                a: ActuatorChannel(a.value, port, self._actuator_done)
                for a, port in self.actuators.items()
            }
            self.sensor.watch_link(self.link_changed)
            self._t0 = self.clock()
            self._handle(self.core.start(self._t0), self._t0)
            pump = asyncio.create_task(self._pump(), name="session-samples")
            ticker = asyncio.create_task(self._tick(), name="session-ticker")
            tasks = [pump, ticker]
            await self._wait(pump, ticker)
            failed = False
        finally:
            self._closing = True
            tasks += self._side_tasks
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await close_all(list(self._channels.values()))
            if failed:  # a bug or a cancellation: still close the record, then let it propagate
                self._ending = _Ending("interrupted", EXIT_DEVICE_FAILURE, error="unexpected error")
                self._finish()
        return self._finish()

    async def _wait(self, pump: asyncio.Task[None], ticker: asyncio.Task[None]) -> None:
        done_waiter = asyncio.create_task(self._done.wait(), name="session-done")
        try:
            await asyncio.wait({pump, ticker, done_waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            done_waiter.cancel()
            await asyncio.gather(done_waiter, return_exceptions=True)
        if ticker.done() and not self._done.is_set():
            # The ticker is the session's heartbeat: without it no rule runs. Never carry on.
            raise ticker.exception() or RuntimeError("the session ticker stopped")
        if pump.done() and not self._done.is_set():
            self._device_failed(pump)

    def abort(self, message: str) -> None:
        """Something around the session failed (its screen crashed): stop every actuator and end
        the session as interrupted, exit 1, with ``message`` recorded as the error."""
        now = self.clock()
        if not self._done.is_set():
            self.writer.event(self._elapsed(now), "session_failure", message, severity="alarm")
            self._ending = _Ending("interrupted", EXIT_DEVICE_FAILURE, error=message)
        self._handle(self.core.command(now, Command.STOP), now)

    def _device_failed(self, pump: asyncio.Task[None]) -> None:
        exc = None if pump.cancelled() else pump.exception()
        if exc is not None and not isinstance(exc, DeviceError):
            raise exc
        message = str(exc) if exc else "the sensor stopped sending samples"
        self.sink.message(f"device failure: {message}")
        now = self.clock()
        self.writer.event(self._elapsed(now), "device_failure", message, severity="alarm")
        self._ending = _Ending("interrupted", EXIT_DEVICE_FAILURE, error=message)
        self._handle(self.core.command(now, Command.STOP), now)

    async def _pump(self) -> None:
        t0 = self._t0 if self._t0 is not None else self.clock()
        async for sample in self.sensor.samples():
            if sample.t < t0:  # read while connecting, before the session began
                continue
            elapsed = self._elapsed(sample.t)
            self.writer.sample(elapsed, sample.force_n)
            self._handle(self.core.sample(sample.t, sample.force_n), sample.t)
            self.sink.sample(elapsed, sample.force_n)  # after the core: a stop never waits

    async def _tick(self) -> None:
        # The core is fed the session clock; the heartbeat is paced by the event loop's own
        # clock. Both are monotonic seconds in a session, but an injected clock (a test's, or a
        # replay's) need not move with real time, and pacing by it would make the heartbeat's
        # waits grow without bound while it stands still.
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            now = self.clock()
            self._handle(self.core.tick(now), now)
            status = self.core.status(now)
            self._confirm_without_keyboard(status)
            self.sink.status(self._with_link(status))
            if self.writer.flush_due(self._elapsed(now)):
                self.writer.flush()
            # Deadlines, not sleep(tick): a fixed sleep drifts (see docs on paced producers).
            next_at = max(next_at + self.tick_s, loop.time())
            await asyncio.sleep(next_at - loop.time())

    def _with_link(self, status: Status) -> Status:
        """The core's status, with the T-bar's link state when it is not plainly connected."""
        if self._link is LinkState.CONNECTED:
            return status
        return dataclasses.replace(status, link=self._link.value)

    def _confirm_without_keyboard(self, status: Status) -> None:
        """With no keyboard, an untimed pause is confirmed at once; a paused session cannot be
        resumed, which is said once (never a confirm at every tick)."""
        if not self.auto_confirm:
            return
        if status.state is SessionState.PAUSED:
            if not self._told_no_keyboard:
                self._told_no_keyboard = True
                self.sink.message("no keyboard: the paused session cannot be resumed; stop it")
        elif status.state is SessionState.RUNNING and status.phase is Phase.WAITING:
            self.sink.message("no keyboard: the untimed pause is confirmed at once")
            self.command(Command.CONFIRM, reason="no keyboard")

    # -- outputs of the core --------------------------------------------------------------------

    def _elapsed(self, t: float) -> float:
        return 0.0 if self._t0 is None else max(0.0, t - self._t0)

    def _handle(self, outputs: Sequence[Output], now: float) -> None:
        if not outputs:
            return
        shown: list[Output] = []
        for out in outputs:
            if isinstance(out, ActuatorCommand):
                self._actuate(out)  # first: a stop must not wait for the records
            if isinstance(out, SessionEnded):
                self._done.set()
                if self._ending.status == "interrupted":
                    continue  # the device failure was reported; "stopped" would mislead
            self._record(out)
            shown.append(out)
        self.sink.outputs(shown, self._elapsed(now))

    def _record(self, out: Output) -> None:
        w = self.writer
        match out:
            case PhaseChange(t=t, step_index=i, rep=rep, phase=phase):
                w.phase(self._elapsed(t), i, rep, phase.value)
            case Cue(t=t, kind=kind, step_index=i, reason=reason):
                w.event(
                    self._elapsed(t), f"cue.{kind.value}", data={"step": i + 1, "reason": reason}
                )
            case Alert(t=t, kind=kind, severity=sev, message=msg, step_index=i, device=dev):
                data = {"step": None if i is None else i + 1, "device": dev}
                w.event(self._elapsed(t), f"alert.{kind.value}", msg, severity=sev.value, data=data)
            case ActuatorCommand(t=t, actuator=a, action=action, level=level, program=program):
                data = {"level": level, "program": program}
                w.event(self._elapsed(t), f"actuator.{a.value}.{action}", data=data)
            case HoldDone(dose=dose):
                w.hold(dose)
            case BandChanged(t=t, step_index=i, band_n=(low, high), direction=way, reason=why):
                moved = "band.raised" if way is BandDirection.UP else "band.lowered"
                band = {"step": i + 1, "band_n": [low, high], "reason": why}
                w.event(self._elapsed(t), moved, data=band)
            case StateChange(t=t, state=state, reason=reason):
                w.event(self._elapsed(t), f"session.{state.value}", reason)
            case SessionEnded(t=t, state=state):
                w.event(self._elapsed(t), f"session.{state.value}", self._ending.reason)

    def _actuate(self, command: ActuatorCommand) -> None:
        channel = self._channels.get(command.actuator)
        if channel is not None:
            channel.submit(command)

    def _actuator_done(self, command: ActuatorCommand, error: DeviceError | None) -> None:
        if error is not None:
            event = DeviceEvent(DeviceEventKind.ERROR, command.actuator.value, str(error))
        elif command.is_stop:
            event = DeviceEvent(DeviceEventKind.ACTUATOR_STOPPED, command.actuator.value)
        else:
            event = DeviceEvent(DeviceEventKind.ACTUATOR_STARTED, command.actuator.value)
        now = self.clock()
        self._handle(self.core.device_event(now, event), now)

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
