"""Session-level state of the timing core: the clock, moving between steps, pause, resume, the end.

:class:`devicectl.timing.core.TimingCore` adds the entry points on top of this.
"""

from __future__ import annotations

from devicectl.plan import Plan
from devicectl.timing.context import EPS, Ctx
from devicectl.timing.sensor import CeilingWatch, check_stale
from devicectl.timing.sequence import enter_step
from devicectl.timing.steps import StepMachine, started_actuator
from devicectl.timing.types import (
    Actuator,
    AlertKind,
    CueKind,
    Output,
    Phase,
    SessionEnded,
    SessionState,
    Severity,
    StateChange,
)

TERMINAL = (SessionState.COMPLETED, SessionState.STOPPED)

# How many rule moments one call may cross before the clock simply jumps to its time: far more than
# any real gap holds (a hold ends, a rest starts and ends...), and a bound on a bug's loop.
_MAX_STOPS = 1000


class SessionBase:
    """``TimingCore(plan, *, actuators=frozenset())``: the actuator devices present this session."""

    def __init__(self, plan: Plan, *, actuators: frozenset[Actuator] = frozenset()) -> None:
        self._plan = plan
        self._ctx = Ctx(plan, frozenset(actuators))
        self._state = SessionState.READY
        self._machine: StepMachine | None = None
        self._ended_t: float | None = None
        self._started = False
        self._ceiling = CeilingWatch()

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def finished(self) -> bool:
        return self._state in TERMINAL

    # --- clock and rules -----------------------------------------------------------------

    @property
    def _index(self) -> int:
        return self._machine.index if self._machine is not None else 0

    def _flush(self) -> list[Output]:
        out, self._ctx.out = self._ctx.out, []
        return out

    def _advance_clock(self, now: float) -> None:
        """Move to ``now``, stopping at each moment in between where time alone fires a rule (a
        hold reaching hold_s, a cap, the end of a countdown) so it fires at exactly that time."""
        for _ in range(_MAX_STOPS):
            due = self._next_due(now)
            if due is None:
                break
            self._ctx.advance(due, running=True)
            self._rules()
        self._ctx.advance(now, self._state is SessionState.RUNNING)

    def _next_due(self, now: float) -> float | None:
        """The caller's time of the next rule moment strictly between the clock and ``now``."""
        if self._state is not SessionState.RUNNING or self._machine is None:
            return None
        ctx = self._ctx
        times = (self._machine.deadline(), self._plan.limits.max_session_s)
        due = min((d for d in times if d is not None and d > ctx.active + EPS), default=None)
        if due is None:
            return None
        t = ctx.now + (due - ctx.active)
        return t if t < now - EPS else None

    def _active_at(self, now: float) -> float:
        return self._ctx.active_at(now, self._state is SessionState.RUNNING)

    def _elapsed(self, now: float) -> float:
        if not self._started:
            return 0.0
        end = self._ended_t if self._ended_t is not None else max(now, self._ctx.now)
        return end - self._ctx.t0

    def _rules(self) -> None:
        """What time alone decides: the session cap, stale data, then the step's own clocks."""
        if self._state is not SessionState.RUNNING or self._machine is None:
            return
        limit = self._plan.limits.max_session_s
        if limit is not None and self._ctx.active >= limit - EPS:
            self._complete(cap=True)
            return
        check_stale(self._ctx, self._machine)
        self._machine.tick()
        self._advance_steps()

    def _actuator_running(self, m: StepMachine | None) -> Actuator | None:
        """The actuator of the current step while it runs (not while paused or after the end)."""
        return started_actuator(m) if self._state is SessionState.RUNNING else None

    # --- steps ---------------------------------------------------------------------------

    def _enter(self, index: int, previous: Phase | None) -> None:
        self._machine = enter_step(self._ctx, index, previous)

    def _advance_steps(self) -> None:
        while self._state is SessionState.RUNNING and self._machine is not None:
            m = self._machine
            if not m.done:
                return
            if m.index + 1 >= len(self._plan.steps):
                self._complete(cap=False)
                return
            self._enter(m.index + 1, m.phase)
            self._machine.tick()

    def _complete(self, *, cap: bool) -> None:
        ctx = self._ctx
        for actuator in sorted(ctx.actuator_on):
            ctx.stop_actuator(actuator)
        m = self._machine
        if cap and m is not None:
            m.cap_reached()
            m.abort()
            limit = self._plan.limits.max_session_s or 0.0
            message = f"session reached its cap of {limit:g} s: session complete"
            ctx.alert(AlertKind.SESSION_CAP, Severity.WARNING, message, m.index)
            if not m.done:
                m.finish()
        ctx.cue(CueKind.SESSION_DONE, self._index, "session_cap" if cap else "complete")
        self._end(SessionState.COMPLETED)

    def _end(self, state: SessionState) -> None:
        self._state = state
        self._ended_t = self._ctx.now
        self._ctx.emit(SessionEnded(self._ctx.now, state))

    def _refuse(self, message: str) -> None:
        self._ctx.alert(AlertKind.REFUSED, Severity.INFO, message, self._index)

    def _set_state(self, state: SessionState, reason: str) -> None:
        previous, self._state = self._state, state
        self._ctx.emit(StateChange(self._ctx.now, state, previous, reason))

    def _pause(self, reason: str) -> None:
        self._set_state(SessionState.PAUSED, reason)
        self._ctx.track.void = True
        if self._machine is not None:
            self._machine.pause()

    def _resume(self) -> None:
        self._set_state(SessionState.RUNNING, "resume")
        self._ctx.track.baseline_t = self._ctx.now
        if self._machine is not None:
            self._machine.resume()

    def _emergency_stop(self, now: float) -> list[Output]:
        """Every actuator present is told to stop, whatever we think its state is, first."""
        # The clock jumps to now without firing rules on the way: the stops go out first, alone.
        self._ctx.advance(now, self._state is SessionState.RUNNING)
        for actuator in sorted(self._ctx.actuators):
            self._ctx.stop_actuator(actuator)
        if self._state not in TERMINAL:
            if self._machine is not None:
                self._machine.abort()
            self._end(SessionState.STOPPED)
        return self._flush()
