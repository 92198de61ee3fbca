"""Read-only views of a running core: the status snapshot and the dose so far."""

from __future__ import annotations

import dataclasses

from devicectl.dose import SessionDose, session_dose, step_label
from devicectl.plan import GunStep, HoldStep
from devicectl.timing.context import Ctx
from devicectl.timing.holdstep import HoldMachine
from devicectl.timing.rules import ceiling_for
from devicectl.timing.steps import ActuatorMachine, StepMachine
from devicectl.timing.types import Phase, SessionState, Status


@dataclasses.dataclass(frozen=True)
class Clock:
    """The times a view needs: the caller's now, active seconds at now, seconds since start."""

    now: float
    active: float
    elapsed: float


def make_status(ctx: Ctx, state: SessionState, m: StepMachine | None, clock: Clock) -> Status:
    plan = ctx.plan
    step = m.step if m is not None else (plan.steps[0] if plan.steps else None)
    hold = step if isinstance(step, HoldStep) else None
    index = m.index if m is not None else 0
    live = state not in (SessionState.COMPLETED, SessionState.STOPPED)
    # Before start the session waits for the user's start: WAITING, not a step's phase.
    phase = Phase.WAITING if m is None or m.phase is None else m.phase
    return Status(
        state=state,
        step_index=index,
        step_count=len(plan.steps),
        step_kind=step.kind if step is not None else "",
        label=step_label(step) if step is not None else "",
        rep=m.rep if m is not None else 1,
        repeats=m.reps if m is not None else (hold.repeat if hold is not None else 1),
        phase=phase,
        force_n=ctx.track.last_f,
        band_n=(hold.low_n, hold.high_n) if hold is not None else None,
        ceiling_n=ceiling_for(plan, index) if plan.steps else None,
        in_band_s=m.in_band(clock.now) if isinstance(m, HoldMachine) else 0.0,
        hold_s=hold.hold_s if hold is not None else None,
        countdown_s=m.countdown(clock.active) if m is not None and live else None,
        frozen=isinstance(m, HoldMachine) and ctx.track.frozen and live,
        elapsed_s=clock.elapsed,
    )


def live_dose(ctx: Ctx, m: StepMachine | None, clock: Clock) -> SessionDose:
    """Recorded holds and gun time, plus the hold or gun step in progress (incomplete)."""
    holds = list(ctx.ledger.holds)
    gun = dict(ctx.ledger.gun_s_by_step)
    if isinstance(m, HoldMachine) and m.meter is not None:
        dose = m.meter.dose(max(clock.now, ctx.now), clock.active, ctx.t0)
        holds.append(dataclasses.replace(dose, in_band_s=m.in_band(clock.now)))
    if isinstance(m, ActuatorMachine) and isinstance(m.step, GunStep) and not m.recorded:
        gun[m.index] = gun.get(m.index, 0.0) + m.run_total(clock.active)
    return session_dose(ctx.plan, holds, gun)
