"""Step machines: the base class, pause steps and actuator (gun, chair) steps. Holds: holdstep.py.

A machine runs one step. The core calls it only with the session RUNNING, except ``pause``,
``resume``, ``abort`` and the actuator events; it reads ``done`` to move to the next step.
"""

from __future__ import annotations

from devicectl.dose import step_label
from devicectl.plan import ChairStep, GunStep, PauseStep, Step
from devicectl.timing.context import EPS, Ctx
from devicectl.timing.rules import STOP_CONFIRM_S
from devicectl.timing.types import Actuator, AlertKind, Phase, PhaseChange, Severity


class StepMachine:
    step: Step

    def __init__(self, ctx: Ctx, index: int, previous: Phase | None) -> None:
        self.ctx = ctx
        self.index = index
        self.phase: Phase | None = previous  # until enter(): the phase we came from
        self.rep = 1
        self.reps = 1
        self.done = False

    @property
    def label(self) -> str:
        return step_label(self.step)

    def set_phase(self, phase: Phase) -> None:
        previous, self.phase = self.phase, phase
        self.ctx.emit(PhaseChange(self.ctx.now, self.index, self.rep, phase, previous))

    def finish(self) -> None:
        self.set_phase(Phase.DONE)
        self.done = True

    # Default behaviour; subclasses override what applies to them.
    def enter(self) -> None:
        raise NotImplementedError

    def tick(self) -> None:
        return None

    def on_sample(self, force_n: float) -> None:
        return None

    def next(self) -> None:
        self.finish()

    def confirm(self) -> bool:
        """True when the step was waiting for a confirmation and took it."""
        return False

    def pause(self) -> None:
        return None

    def resume(self) -> None:
        return None

    def abort(self) -> None:
        """The session ends now (STOP or session cap): close the books, no phase changes."""
        return None

    def cap_reached(self) -> None:
        """The session cap is about to end the session (before ``abort``)."""
        return None

    def countdown(self, active: float) -> float | None:
        return None

    def deadline(self) -> float | None:
        """The next active time at which time alone changes something in this step, if known.

        The core stops its clock there (rather than at the next call) so the rule fires at that
        exact moment: a countdown ends, a cap is reached, a hold completes.
        """
        return None


class PauseMachine(StepMachine):
    """Timed: RUNNING for duration_s (active time). Untimed: WAITING until CONFIRM."""

    step: PauseStep

    def __init__(self, ctx: Ctx, index: int, previous: Phase | None, step: PauseStep) -> None:
        super().__init__(ctx, index, previous)
        self.step = step
        self.end_active = 0.0

    def enter(self) -> None:
        if self.step.duration_s is None:
            self.set_phase(Phase.WAITING)
            return
        self.end_active = self.ctx.active + self.step.duration_s
        self.set_phase(Phase.RUNNING)

    def tick(self) -> None:
        if self.phase is Phase.RUNNING and self.ctx.active >= self.end_active - EPS:
            self.finish()

    def confirm(self) -> bool:
        if self.phase is Phase.WAITING:
            self.finish()
            return True
        return False

    def countdown(self, active: float) -> float | None:
        if self.phase is Phase.RUNNING:
            return max(0.0, self.end_active - active)
        return None

    def deadline(self) -> float | None:
        return self.end_active if self.phase is Phase.RUNNING else None


class ActuatorMachine(StepMachine):
    """STARTING -> RUNNING -> STOPPING -> DONE. Without the device present the step is still timed
    (a home user follows it by hand): STARTING and STOPPING pass at once, no commands."""

    step: GunStep | ChairStep

    def __init__(
        self, ctx: Ctx, index: int, previous: Phase | None, step: GunStep | ChairStep
    ) -> None:
        super().__init__(ctx, index, previous)
        self.step = step
        self.actuator = Actuator.GUN if isinstance(step, GunStep) else Actuator.CHAIR
        self.present = self.actuator in ctx.actuators
        self.run_s = 0.0  # RUNNING seconds before run_since
        self.run_since: float | None = None  # active time the current RUNNING stretch began
        self.stop_sent = 0.0  # active time of the step's stop command
        self.stops_asked = 0  # stops sent and not yet confirmed: their confirmations are expected
        self.recorded = False

    def run_total(self, active: float) -> float:
        live = 0.0 if self.run_since is None else active - self.run_since
        return self.run_s + max(0.0, live)

    def enter(self) -> None:
        self._starting()

    def _starting(self) -> None:
        if self.phase is not Phase.STARTING:
            self.set_phase(Phase.STARTING)
        if not self.present:
            self._running()
        elif isinstance(self.step, GunStep):
            self.ctx.start_actuator(self.actuator, level=self.step.level)
        else:
            self.ctx.start_actuator(self.actuator, program=self.step.program)

    def _running(self) -> None:
        self.set_phase(Phase.RUNNING)
        self.run_since = self.ctx.active

    def _commit_run(self) -> None:
        self.run_s = self.run_total(self.ctx.active)
        self.run_since = None

    def on_started(self) -> None:
        if self.phase is Phase.STARTING:
            self._running()

    def on_stopped(self, paused: bool) -> bool:
        """The device says it stopped. True when that was not asked for (it stopped by itself).

        A pause's stop may be confirmed after the resume has begun starting again: that
        confirmation answers our own stop, so it is expected, not the device stopping itself."""
        asked = self.stops_asked > 0
        self.stops_asked = max(0, self.stops_asked - 1)
        if self.phase is Phase.STOPPING:
            self._done()
            return False
        return not asked and not paused and self.phase in (Phase.STARTING, Phase.RUNNING)

    def tick(self) -> None:
        if self.phase is Phase.RUNNING:
            self._check_time()
        elif self.phase is Phase.STOPPING and self.ctx.active - self.stop_sent >= STOP_CONFIRM_S:
            self.ctx.alert(
                AlertKind.DEVICE_ERROR,
                Severity.WARNING,
                f"{self.actuator.value} did not confirm the stop within {STOP_CONFIRM_S:.0f} s",
                self.index,
                self.actuator.value,
            )
            self._done()

    def _check_time(self) -> None:
        total = self.run_total(self.ctx.active)
        if total >= self.step.duration_s - EPS:
            self._stopping()
        elif isinstance(self.step, GunStep) and total >= self._area_left() - EPS:
            self.ctx.alert(
                AlertKind.GUN_AREA_CAP,
                Severity.WARNING,
                f"gun time on {self.step.area} reached "
                f"{self.ctx.plan.limits.max_gun_area_s:.0f} s: step stopped",
                self.index,
                self.actuator.value,
            )
            self._stopping()

    def _area_left(self) -> float:
        assert isinstance(self.step, GunStep)
        used = self.ctx.ledger.gun_on(self.step.area)
        return self.ctx.plan.limits.max_gun_area_s - used

    def _stopping(self) -> None:
        self._commit_run()
        self.set_phase(Phase.STOPPING)
        if not self.present:
            self._done()
            return
        self.ctx.stop_actuator(self.actuator)
        self.stops_asked += 1
        self.stop_sent = self.ctx.active

    def _done(self) -> None:
        self._record()
        self.finish()

    def _record(self) -> None:
        self._commit_run()
        if isinstance(self.step, GunStep) and not self.recorded:
            self.ctx.ledger.add_gun(self.index, self.step.area, self.run_s)
        self.recorded = True

    def next(self) -> None:
        if self.phase in (Phase.STARTING, Phase.RUNNING):
            self._stopping()

    def pause(self) -> None:
        if self.phase in (Phase.STARTING, Phase.RUNNING):
            self._commit_run()
            if self.present:
                self.ctx.stop_actuator(self.actuator)
                self.stops_asked += 1

    def resume(self) -> None:
        if self.phase is Phase.RUNNING and not self.present:
            self.run_since = self.ctx.active
        elif self.phase in (Phase.STARTING, Phase.RUNNING):
            self._starting()

    def abort(self) -> None:
        self._record()

    def countdown(self, active: float) -> float | None:
        if self.phase is Phase.RUNNING:
            return max(0.0, self.step.duration_s - self.run_total(active))
        return None

    def deadline(self) -> float | None:
        if self.phase is Phase.STOPPING and self.present:
            return self.stop_sent + STOP_CONFIRM_S
        if self.phase is not Phase.RUNNING or self.run_since is None:
            return None
        left = self.step.duration_s
        if isinstance(self.step, GunStep):
            left = min(left, self._area_left())
        return self.run_since + left - self.run_s


def started_actuator(m: StepMachine | None) -> Actuator | None:
    """The actuator a step has started (or is starting), if it is present."""
    if isinstance(m, ActuatorMachine) and m.present and m.phase in (Phase.STARTING, Phase.RUNNING):
        return m.actuator
    return None
