"""Moving from step to step: building each step's machine, and skipping steps the caps forbid."""

from __future__ import annotations

from devicectl.plan import ChairStep, GunStep, HoldStep, PauseStep
from devicectl.timing.context import EPS, Ctx
from devicectl.timing.holdstep import HoldMachine
from devicectl.timing.rules import reps_allowed
from devicectl.timing.steps import ActuatorMachine, PauseMachine, StepMachine
from devicectl.timing.types import AlertKind, CueKind, Phase, Severity


def build_machine(ctx: Ctx, index: int, previous: Phase | None) -> StepMachine:
    step = ctx.plan.steps[index]
    if isinstance(step, HoldStep):
        used = ctx.ledger.reps_on(step.site)
        reps = reps_allowed(step, used, ctx.plan.limits.max_reps_per_site)
        return HoldMachine(ctx, index, previous, step, reps)
    if isinstance(step, PauseStep):
        return PauseMachine(ctx, index, previous, step)
    assert isinstance(step, GunStep | ChairStep)
    return ActuatorMachine(ctx, index, previous, step)


def skip_reason(ctx: Ctx, m: StepMachine) -> tuple[AlertKind, str] | None:
    """Why a step may not run at all: its site or area used up its cap in earlier steps."""
    ledger, limits = ctx.ledger, ctx.plan.limits
    if isinstance(m, HoldMachine):
        site = m.step.site
        if ledger.is_capped(site):
            return AlertKind.SITE_CAP, f"{site}: in-band cap reached earlier: step skipped"
        if m.reps == 0:
            reps = limits.max_reps_per_site
            return AlertKind.SITE_CAP, f"{site}: {reps} repetitions already: step skipped"
    if isinstance(m, ActuatorMachine) and isinstance(m.step, GunStep):
        area = m.step.area
        if ledger.gun_on(area) >= limits.max_gun_area_s - EPS:
            cap = limits.max_gun_area_s
            return AlertKind.GUN_AREA_CAP, f"{area}: {cap:g} s of gun time already: skipped"
    return None


def enter_step(ctx: Ctx, index: int, previous: Phase | None) -> StepMachine:
    """Begin step ``index`` (STEP_START cue, first phase), or skip it straight to DONE."""
    m = build_machine(ctx, index, previous)
    skip = skip_reason(ctx, m)
    if skip is not None:
        kind, message = skip
        ctx.alert(kind, Severity.WARNING, message, index)
        m.finish()
        return m
    if isinstance(m, HoldMachine):
        ctx.track.baseline_t = ctx.now  # no sample yet in this step: stale counts from here
        if m.reps < m.step.repeat:
            message = f"{m.step.site}: only {m.reps} of {m.step.repeat} repetitions (site cap)"
            ctx.alert(AlertKind.SITE_CAP, Severity.INFO, message, index)
    ctx.cue(CueKind.STEP_START, index)
    m.enter()
    return m
