"""The timing core: a pure state machine over an injected clock. No I/O, no sleeping, no clock.

The caller passes the time with every call; each call first brings the rules up to that time (what
``tick`` does), then applies its own input, and returns the outputs it caused, in order.

Session-level decisions (each one is tested):
* Every countdown and wall-time cap (rest, pause step, actuator run, hold cap, session cap) runs on
  *active* time: PAUSE freezes them all. The session cap is therefore time spent running.
* The ceiling alarm is checked on every sample while RUNNING or PAUSED (it is a safety alarm). In a
  running actuator step it also stops the actuator and PAUSES the session, so nothing restarts it
  until a person resumes; so does an actuator that reports it stopped (or lost its link) unasked.
* An ACTUATOR_STARTED that nothing asked for (paused, stopped, completed, another step) is answered
  with a stop: after STOP the only output the core can produce is a stop.
* Samples older than the last sample are ignored; a sample stamped before the latest call's time is
  taken at that time (the clock never runs backwards).
"""

from __future__ import annotations

from devicectl.dose import SessionDose
from devicectl.errors import SessionError
from devicectl.timing.holdstep import HoldMachine
from devicectl.timing.lifecycle import TERMINAL, SessionBase
from devicectl.timing.sensor import (
    TBAR,
    data_resumed,
    link_lost,
    link_restored,
)
from devicectl.timing.steps import ActuatorMachine
from devicectl.timing.types import (
    Actuator,
    AlertKind,
    BandDirection,
    Command,
    DeviceEvent,
    DeviceEventKind,
    Output,
    Phase,
    SessionState,
    Severity,
    Status,
)
from devicectl.timing.view import Clock, live_dose, make_status


class TimingCore(SessionBase):
    """The timing core (see the module docstring). Every entry point returns its outputs."""

    # --- entry points --------------------------------------------------------------------

    def start(self, now: float) -> list[Output]:
        if self._state is SessionState.STOPPED:
            return []
        if self._state is not SessionState.READY:
            raise SessionError(f"the session has already started (it is {self._state.value})")
        ctx = self._ctx
        ctx.now = ctx.t0 = ctx.track.baseline_t = now
        self._state = SessionState.RUNNING
        self._started = True
        if not self._plan.steps:
            self._complete(cap=False)
        else:
            self._enter(0, None)
            self._advance_steps()
        return self._flush()

    def tick(self, now: float) -> list[Output]:
        if self._state in (SessionState.RUNNING, SessionState.PAUSED):
            self._advance_clock(now)
            self._rules()
        return self._flush()

    def sample(self, now: float, force_n: float) -> list[Output]:
        track = self._ctx.track
        if self._state not in (SessionState.RUNNING, SessionState.PAUSED):
            return []
        if track.last_t is not None and now < track.last_t:
            return []
        self._advance_clock(now)
        self._rules()
        if self._state in (SessionState.RUNNING, SessionState.PAUSED):
            self._apply_sample(force_n)
        return self._flush()

    def _apply_sample(self, force_n: float) -> None:
        """The ceiling first (a safety alarm, even when paused), then the step, then the track."""
        track = self._ctx.track
        running = self._actuator_running(self._machine)
        if self._ceiling.check(self._ctx, self._index, force_n, running):
            self._pause("ceiling")  # which stops the actuator
        if self._state is SessionState.RUNNING and self._machine is not None:
            data_resumed(self._ctx, self._index)
            self._machine.on_sample(force_n)
        track.last_t, track.last_f = self._ctx.now, force_n
        track.void = self._state is SessionState.PAUSED
        self._advance_steps()

    def command(self, now: float, command: Command) -> list[Output]:
        if command is Command.STOP:
            return self._emergency_stop(now)
        if self._take_input(now, command.value):
            self._dispatch(command)
            self._advance_steps()
        return self._flush()

    def adjust_band(self, now: float, direction: BandDirection, reason: str = "") -> list[Output]:
        """Raise or lower the current hold step's target band by one band step.

        Any phase of a hold step, running or paused; the new band holds for this repetition from
        ``now`` and for the step's remaining ones (the next step has its own). Outputs a
        :class:`BandChanged` carrying ``reason``, or a REFUSED alert (info) saying why: not a hold
        step, or the band would reach the contact level, the ceiling or the hard force limit
        (:mod:`devicectl.timing.band`). Like a command: refused before start, ignored after end.
        """
        if self._take_input(now, f"band {direction.value}"):
            m = self._machine
            if isinstance(m, HoldMachine) and not m.done:
                m.move_band(direction, reason, running=self._state is SessionState.RUNNING)
            else:
                self._refuse(f"cannot move the band: step {self._index + 1} is not a hold step")
            self._advance_steps()
        return self._flush()

    def _take_input(self, now: float, what: str) -> bool:
        """Bring the rules up to ``now`` for a user's input: False when it cannot apply (the
        session is over: ignored; or not started: refused, saying so)."""
        if self._state in TERMINAL:
            return False
        self._advance_clock(now)
        if self._state is SessionState.READY:
            self._refuse(f"{what}: the session has not started")
            return False
        self._rules()
        return self._state not in TERMINAL

    def device_event(self, now: float, event: DeviceEvent) -> list[Output]:
        if event.kind is DeviceEventKind.ACTUATOR_STARTED:
            return self._on_started(now, event)
        if self._state in TERMINAL:
            return []
        self._advance_clock(now)
        self._rules()
        if self._state in TERMINAL:
            return self._flush()
        if event.kind is DeviceEventKind.ACTUATOR_STOPPED:
            self._on_stopped(event)
        elif event.kind is DeviceEventKind.LINK_LOST:
            self._on_link_lost(event)
        elif event.kind is DeviceEventKind.LINK_RESTORED and event.device == TBAR:
            link_restored(self._ctx, self._index)
        elif event.kind is DeviceEventKind.LINK_RESTORED:
            pass  # an actuator back: the user resumes; nothing restarts by itself
        else:
            self._on_error(event)
        self._advance_steps()
        return self._flush()

    # --- status and dose -----------------------------------------------------------------

    def status(self, now: float) -> Status:
        return make_status(self._ctx, self._state, self._machine, self._clock(now))

    def dose(self, now: float) -> SessionDose:
        """Delivered against planned so far; a hold in progress is included, incomplete."""
        return live_dose(self._ctx, self._machine, self._clock(now))

    def _clock(self, now: float) -> Clock:
        return Clock(now, self._active_at(now), self._elapsed(now))

    # --- commands and events -------------------------------------------------------------

    def _dispatch(self, command: Command) -> None:
        m = self._machine
        assert m is not None
        paused = self._state is SessionState.PAUSED
        if command is Command.PAUSE and not paused:
            self._pause("pause")
        elif command is Command.RESUME and paused:
            self._resume()
        elif command in (Command.NEXT, Command.CONFIRM) and paused:
            self._refuse(f"{command.value}: the session is paused; resume first")
        elif command is Command.NEXT:
            m.next()
        elif command is Command.CONFIRM and not m.confirm():
            self._refuse("confirm: nothing is waiting for a confirmation")

    def _on_started(self, now: float, event: DeviceEvent) -> list[Output]:
        try:
            actuator = Actuator(event.device)
        except ValueError:
            return []
        if actuator not in self._ctx.actuators:
            return []
        if self._state is SessionState.RUNNING:
            self._advance_clock(now)
            self._rules()
        else:
            self._ctx.now = max(now, self._ctx.now)
        m = self._machine
        if self._actuator_running(m) is actuator:
            assert isinstance(m, ActuatorMachine)
            m.on_started()
            self._advance_steps()
        else:  # nobody wants it running: stop it (the only output allowed after STOP)
            self._ctx.stop_actuator(actuator)
        return self._flush()

    def _on_stopped(self, event: DeviceEvent) -> None:
        m = self._machine
        if not isinstance(m, ActuatorMachine) or m.actuator.value != event.device:
            return
        if m.on_stopped(paused=self._state is SessionState.PAUSED):
            self._actuator_lost(m, f"{event.device} stopped by itself", "actuator_stopped")

    def _actuator_lost(self, m: ActuatorMachine, why: str, reason: str) -> None:
        message = f"{why}: session paused; resume to restart it"
        device = m.actuator.value
        self._ctx.alert(AlertKind.DEVICE_ERROR, Severity.WARNING, message, m.index, device)
        if self._state is SessionState.RUNNING:
            self._pause(reason)

    def _on_link_lost(self, event: DeviceEvent) -> None:
        if event.device == TBAR:
            link_lost(self._ctx, self._index, event.message)
            return
        m = self._machine
        running = self._actuator_running(m)
        if running is not None and running.value == event.device:
            assert isinstance(m, ActuatorMachine)
            self._actuator_lost(m, f"{event.device} link lost", "actuator_link_lost")
            return
        message = f"{event.device} link lost" + (f": {event.message}" if event.message else "")
        self._ctx.alert(
            AlertKind.DEVICE_ERROR, Severity.WARNING, message, self._index, event.device
        )

    def _on_error(self, event: DeviceEvent) -> None:
        """A device error is a warning. If it is the actuator this step is starting, the start
        failed: the step goes on to STOPPING (a stop is the safe direction) rather than hang."""
        m = self._machine
        failed_start = (
            self._actuator_running(m) is not None
            and isinstance(m, ActuatorMachine)
            and m.actuator.value == event.device
            and m.phase is Phase.STARTING
        )
        message = event.message or "device error"
        if failed_start:
            message = f"{event.device} did not start ({message}): step ended"
        self._ctx.alert(
            AlertKind.DEVICE_ERROR, Severity.WARNING, message, self._index, event.device
        )
        if failed_start and m is not None:
            m.next()
