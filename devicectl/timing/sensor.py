"""The force sensor's side of the rules: stale data, its link, and the ceiling alarm."""

from __future__ import annotations

import math
from dataclasses import dataclass

from devicectl.timing.context import EPS, Ctx
from devicectl.timing.holdstep import HoldMachine
from devicectl.timing.rules import ceiling_for
from devicectl.timing.steps import StepMachine
from devicectl.timing.types import Actuator, AlertKind, Severity

TBAR = "tbar"


def check_stale(ctx: Ctx, m: StepMachine | None) -> None:
    """During a hold step, no sample for longer than stale_s freezes the hold timer (once).

    Only in hold steps: the rule exists to freeze the hold timer, and the core cannot tell whether
    a T-bar is there at all in other steps (a gun or chair routine may run without one); a sensor
    stream that ends is the runner's business (docs/timing.md, "Stale data freezes the timer").
    """
    track = ctx.track
    if not isinstance(m, HoldMachine) or track.stale or track.link_lost:
        return
    last = track.last_t if track.last_t is not None else -math.inf
    stale_s = ctx.plan.limits.stale_s
    if ctx.now - max(last, track.baseline_t) <= stale_s + EPS:
        return
    track.stale = True
    message = f"no data from {TBAR} for {_secs(stale_s)} s: the hold timer is frozen"
    ctx.alert(AlertKind.STALE_DATA, Severity.WARNING, message, m.index, TBAR)


def _secs(seconds: float) -> str:
    """1.0, 0.5, 0.25: one decimal at least, more only when the value needs it."""
    return f"{seconds:.1f}" if round(seconds, 1) == seconds else f"{seconds:g}"


def data_resumed(ctx: Ctx, index: int) -> None:
    """A sample arrived: clear a stale freeze."""
    if ctx.track.stale:
        ctx.track.stale = False
        message = f"data from {TBAR} is back: the hold timer is running"
        ctx.alert(AlertKind.DATA_RESUMED, Severity.INFO, message, index, TBAR)


def link_lost(ctx: Ctx, index: int, why: str) -> None:
    # The interval since the last sample was not measured to its end: it counts for nothing,
    # even if the link is back within stale_s (as an interval across a pause counts nothing).
    ctx.track.void = True
    if not ctx.track.link_lost:
        ctx.track.link_lost = True
        message = f"T-bar: {why or 'link lost'}: hold timer frozen"
        ctx.alert(AlertKind.STALE_DATA, Severity.WARNING, message, index, TBAR)


def link_restored(ctx: Ctx, index: int) -> None:
    track = ctx.track
    if not track.link_lost:
        return
    track.link_lost = False
    track.stale = False
    track.baseline_t = ctx.now  # staleness counts afresh from the reconnection
    message = "T-bar link restored: hold timer running"
    ctx.alert(AlertKind.DATA_RESUMED, Severity.INFO, message, index, TBAR)


@dataclass
class CeilingWatch:
    """One CEILING alarm per excursion; it re-arms when the force is back at or below."""

    over: bool = False

    def check(self, ctx: Ctx, index: int, force_n: float, running: Actuator | None) -> bool:
        """True when the alarm fired now and ``running`` (the actuator in use) must stop."""
        ceiling = ceiling_for(ctx.plan, index)
        if ceiling is None or force_n <= ceiling:
            self.over = False
            return False
        if self.over:
            return False
        self.over = True
        message = f"force {force_n:.1f} N above the ceiling {ceiling:.1f} N"
        if running is not None:
            message += f": {running.value} stopped, session paused"
        ctx.alert(AlertKind.CEILING, Severity.ALARM, message, index, TBAR)
        return running is not None
