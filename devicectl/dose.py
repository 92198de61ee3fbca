"""Dose: delivered against what was planned, per hold; rolled up per step, site, session."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from devicectl.limits import site_key
from devicectl.plan import ChairStep, GunStep, HoldStep, Plan, Step


@dataclass(frozen=True)
class HoldDose:
    """One hold, from first contact to release. Times are seconds since the session started."""

    step_index: int
    site: str
    rep: int
    started_s: float  # first contact (RAMP)
    ended_s: float  # release (force back below contact), or the end of the session
    planned_in_band_s: float
    in_band_s: float
    contact_s: float  # time with force above contact
    integral_ns: float  # force-time integral while above contact, N*s
    peak_n: float
    mean_n: float  # integral_ns / contact_s (0 when there was no contact)
    over_ceiling_s: float
    ramp_rate_n_s: float | None  # mean loading rate from contact to the band, None if never reached
    completed: bool  # the planned in-band time was delivered
    over_held: bool  # wall time passed the hold cap
    paused_s: float = (
        0.0  # session-paused seconds inside [started_s, ended_s] (not counted by caps)
    )

    @property
    def wall_s(self) -> float:
        return self.ended_s - self.started_s


@dataclass(frozen=True)
class DoseTotals:
    """A roll-up of holds (and of gun time) under one label: a step, a site or the session."""

    label: str
    holds_planned: int
    holds_done: int  # holds that delivered their planned in-band time
    planned_in_band_s: float
    in_band_s: float
    contact_s: float
    integral_ns: float
    peak_n: float
    mean_n: float
    over_ceiling_s: float
    planned_gun_s: float = 0.0
    gun_s: float = 0.0
    gun_s_by_level: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class SessionDose:
    holds: tuple[HoldDose, ...]
    steps: tuple[DoseTotals, ...]
    sites: tuple[DoseTotals, ...]
    total: DoseTotals


# --- accumulation ---------------------------------------------------------------------------


def contact_segment(
    t0: float, f0: float, t1: float, f1: float, contact_n: float
) -> tuple[float, float]:
    """Seconds with force above ``contact_n`` and the force-time integral over them (N*s).

    The force is taken as linear between the two samples (the trapezoid rule), and a segment that
    crosses the contact level is cut at the crossing: a piecewise-linear trace integrates exactly.
    """
    dt = t1 - t0
    above0, above1 = f0 > contact_n, f1 > contact_n
    if dt <= 0 or not (above0 or above1):
        return 0.0, 0.0
    if above0 and above1:
        return dt, (f0 + f1) / 2.0 * dt
    crossing = t0 + (contact_n - f0) / (f1 - f0) * dt
    if above0:
        seconds = crossing - t0
        return seconds, (f0 + contact_n) / 2.0 * seconds
    seconds = t1 - crossing
    return seconds, (contact_n + f1) / 2.0 * seconds


def interpolate(t0: float, f0: float, t1: float, f1: float, t: float) -> float:
    """The force at ``t`` on the line between two samples (``f0`` when they coincide)."""
    if t1 <= t0:
        return f0
    return f0 + (f1 - f0) * (t - t0) / (t1 - t0)


# --- roll-ups -------------------------------------------------------------------------------


def step_label(step: Step) -> str:
    """What a step is about, for screens and roll-ups: the site, area, program, or the note."""
    if isinstance(step, HoldStep):
        return step.site
    if isinstance(step, GunStep):
        return step.area
    if isinstance(step, ChairStep):
        return step.program
    return step.note or "pause"


def merge_levels(pairs: Iterable[tuple[int, float]]) -> tuple[tuple[int, float], ...]:
    """Seconds per gun level, summed, levels ascending; levels with no time are left out."""
    by_level: dict[int, float] = {}
    for level, seconds in pairs:
        by_level[level] = by_level.get(level, 0.0) + seconds
    return tuple((lvl, s) for lvl, s in sorted(by_level.items()) if s > 0)


def rollup(
    label: str,
    holds: Iterable[HoldDose],
    *,
    holds_planned: int = 0,
    planned_in_band_s: float = 0.0,
    planned_gun_s: float = 0.0,
    gun_s_by_level: Iterable[tuple[int, float]] = (),
) -> DoseTotals:
    """Sum holds (and gun time) under one label. The mean is contact-weighted: sum of integrals
    over sum of contact time, so a long hold weighs more than a short one."""
    hs = tuple(holds)
    contact_s = sum(h.contact_s for h in hs)
    integral_ns = sum(h.integral_ns for h in hs)
    levels = merge_levels(gun_s_by_level)
    return DoseTotals(
        label=label,
        holds_planned=holds_planned,
        holds_done=sum(1 for h in hs if h.completed),
        planned_in_band_s=planned_in_band_s,
        in_band_s=sum(h.in_band_s for h in hs),
        contact_s=contact_s,
        integral_ns=integral_ns,
        peak_n=max((h.peak_n for h in hs), default=0.0),
        mean_n=integral_ns / contact_s if contact_s > 0 else 0.0,
        over_ceiling_s=sum(h.over_ceiling_s for h in hs),
        planned_gun_s=planned_gun_s,
        gun_s=sum(s for _, s in levels),
        gun_s_by_level=levels,
    )


def _step_totals(
    index: int, step: Step, holds: Sequence[HoldDose], gun_s_by_step: Mapping[int, float]
) -> DoseTotals:
    label = step_label(step)
    if isinstance(step, HoldStep):
        mine = [h for h in holds if h.step_index == index]
        return rollup(
            label, mine, holds_planned=step.repeat, planned_in_band_s=step.hold_s * step.repeat
        )
    if isinstance(step, GunStep):
        gun = ((step.level, gun_s_by_step.get(index, 0.0)),)
        return rollup(label, (), planned_gun_s=step.duration_s, gun_s_by_level=gun)
    return rollup(label, ())


def _combine(label: str, parts: Sequence[DoseTotals], holds: Iterable[HoldDose]) -> DoseTotals:
    """Roll several step totals up under one label; the holds give peak and mean exactly."""
    return rollup(
        label,
        holds,
        holds_planned=sum(p.holds_planned for p in parts),
        planned_in_band_s=sum(p.planned_in_band_s for p in parts),
        planned_gun_s=sum(p.planned_gun_s for p in parts),
        gun_s_by_level=[pair for p in parts for pair in p.gun_s_by_level],
    )


def session_dose(
    plan: Plan, holds: Sequence[HoldDose], gun_s_by_step: Mapping[int, float]
) -> SessionDose:
    """Delivered against planned, per step (every step of the plan, in order), per site and for
    the session. A hold site and a gun area with the same name are the same site: one body part.
    Sites match as plan validation matches them (:func:`devicectl.limits.site_key`: case and
    spacing ignored), and a site is shown with its first spelling in the plan."""
    steps = tuple(_step_totals(i, s, holds, gun_s_by_step) for i, s in enumerate(plan.steps))
    shown: dict[str, str] = {}  # site key -> first spelling
    for step in plan.steps:
        if isinstance(step, HoldStep | GunStep):
            shown.setdefault(site_key(step_label(step)), step_label(step))
    sites = tuple(
        _combine(
            name,
            [t for s, t in zip(plan.steps, steps, strict=True) if _site_of(s) == key],
            [h for h in holds if site_key(h.site) == key],
        )
        for key, name in shown.items()
    )
    return SessionDose(
        holds=tuple(holds), steps=steps, sites=sites, total=_combine(plan.name, steps, holds)
    )


def _site_of(step: Step) -> str | None:
    """The site key of a hold or gun step; None for other steps."""
    return site_key(step_label(step)) if isinstance(step, HoldStep | GunStep) else None
