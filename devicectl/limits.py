"""Hard limits (the caps no plan can exceed, whatever it says) and a plan's per-session totals.

The plan reader enforces both: each value against :data:`HARD_LIMITS`, then the totals summed
across steps (holds and in-band time per site, gun time per area, session length) against the
plan's own :class:`~devicectl.plan.Limits`.

Each value carries its reason. Clinical numbers come from ``shared/reference/device-protocols.md``
§5 (cited as §5.x below); the rest are engineering margins around those numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from devicectl.errors import PlanError
from devicectl.plan import GunStep, HoldStep, Limits, Plan, Step


@dataclass(frozen=True)
class HardLimits:
    """The ceilings (and a few floors) for every plan value. Seconds, newtons, counts."""

    # A T-bar on a human: Travell's ischemic compression goes "up to 20-30 lb" (89-133 N, §5.3);
    # cervical PPT is 14-20 N over 1 cm^2 (§5.2). 500 N (51 kgf, 112 lbf) is ~4x Travell's top and
    # the range of a 100 lbf gauge; above it is a unit mistake (N written as kgf), not a treatment.
    force_n: float = 500.0
    # Holds: §5.3 suggests 30-60 s with a 90 s cap; 180 s (2x that cap, Travell's "1-2 min") is the
    # most any single hold may be planned or capped at.
    hold_s: float = 180.0
    max_hold_s: float = 180.0
    # Rest: §5.2/§5.3 use 30 s; 10 min is far past any protocol and still keeps a session moving.
    rest_s: float = 600.0
    # Repetitions in one step: §5.3 finds 2-3 effective; 10 leaves room for lighter protocols.
    repeat: int = 10
    # A dip below the band shorter than grace does not break a hold (default 2 s); 10 s of dip is no
    # longer "a hold".
    grace_s: float = 10.0
    # Ramp-rate feedback target: reported rates span 0.05-20 N/s (§5.2, Ylinen 2007); 50 N/s is 2.5x
    # the fastest, beyond which loading is not controlled.
    ramp_rate_n_s: float = 50.0
    # Tip area: algometer tips are 0.5-2 cm^2 (§5.1); 0.1-20 cm^2 covers every T-bar tip and catches
    # mm^2 written as cm^2.
    tip_area_min_cm2: float = 0.1
    tip_area_max_cm2: float = 20.0
    # Gun speed levels: no vendor protocol is public (§3.1); our open gun protocol numbers its
    # levels 1..10 (commercial guns have 3-5 speeds, so every one maps in). A device's configured
    # maximum narrows this further at run time.
    gun_level_min: int = 1
    gun_level_max: int = 10
    # A timed pause or chair program: chair programs run 15 min and the timer tops out at 30 min
    # (§4.1); one hour is the most any single step may take.
    step_duration_s: float = 3600.0
    # Gun time per muscle group: §5.4 sources say 1-3 min; 5 min is the most a plan may allow.
    max_gun_area_s: float = 300.0
    # Repetitions per site per session: §5.3 suggests at most 3; 10 is the ceiling for any protocol.
    max_reps_per_site: int = 10
    # In-band time per site per session: §5.3 suggests 1-2 min on a first session; 10 min at most.
    max_site_in_band_s: float = 600.0
    # Whole session: gun routines default to 15 min (§5.4); two hours covers any clinic appointment.
    max_session_s: float = 7200.0
    # Stale-sample timeout: the slowest supported gauge streams at >= 10 Hz, so 0.1 s is the
    # tightest sensible timeout; past 5 s a hold timer would run blind for too long.
    stale_min_s: float = 0.1
    stale_max_s: float = 5.0


# DESIGN.md "Caps": gun routines get a 15 min session cap unless the plan sets its own (§5.4).
GUN_SESSION_DEFAULT_S = 900.0
HARD_LIMITS = HardLimits()
"""The hard limits in force. Frozen: tests may build their own, nothing may change this one."""

# --- a plan's totals and the per-session caps ---------------------------------------------------


def site_key(name: str) -> str:
    """Sites (and gun areas) match whatever their case or spacing: caps count them once."""
    return " ".join(name.casefold().split())


def step_planned_s(step: Step) -> float:
    """The least time a step takes: in-band time and rest (not ramps); an untimed pause is 0."""
    if isinstance(step, HoldStep):
        return step.repeat * (step.hold_s + step.rest_s)
    return step.duration_s or 0.0


def planned_duration_s(plan: Plan) -> float:
    return sum(step_planned_s(s) for s in plan.steps)


def in_band_by_site(steps: Iterable[Step]) -> dict[str, float]:
    """Planned in-band seconds per site (first spelling kept), in plan order."""
    return _tally((s.site, s.repeat * s.hold_s) for s in steps if isinstance(s, HoldStep))


def gun_time_by_area(steps: Iterable[Step]) -> dict[str, float]:
    return _tally((s.area, s.duration_s) for s in steps if isinstance(s, GunStep))


def _tally(pairs: Iterable[tuple[str, float]]) -> dict[str, float]:
    names: dict[str, str] = {}
    totals: dict[str, float] = {}
    for name, amount in pairs:
        shown = names.setdefault(site_key(name), name)
        totals[shown] = totals.get(shown, 0.0) + amount
    return totals


def check_totals(steps: tuple[Step, ...], limits: Limits, source: str) -> None:
    """Per-site, per-area and per-session caps, naming the step that first crosses each."""
    reps = _Cap(
        limits.max_reps_per_site, HARD_LIMITS.max_reps_per_site, "max_reps_per_site", "repeat"
    )
    in_band = _Cap(
        limits.max_site_in_band_s, HARD_LIMITS.max_site_in_band_s, "max_site_in_band_s", "hold_s"
    )
    gun = _Cap(limits.max_gun_area_s, HARD_LIMITS.max_gun_area_s, "max_gun_area_s", "duration_s")
    session = 0.0
    for number, step in enumerate(steps, start=1):
        where = _Where(source, number)
        if isinstance(step, HoldStep):
            reps.add(where, "site", step.site, step.repeat)
            in_band.add(where, "site", step.site, step.repeat * step.hold_s)
        if isinstance(step, GunStep):
            gun.add(where, "area", step.area, step.duration_s)
        session += step_planned_s(step)
        if limits.max_session_s is not None and session > limits.max_session_s:
            raise where.fail(
                "limits.max_session_s",
                f"the planned session reaches {session:g} s at this step, over the session "
                f"cap of {limits.max_session_s:g} s (gun routines default to "
                f"{GUN_SESSION_DEFAULT_S:g} s; a plan may set [limits] max_session_s up to "
                f"{HARD_LIMITS.max_session_s:g} s)",
            )


@dataclass(frozen=True)
class _Where:
    source: str
    step: int

    def fail(self, field: str, message: str) -> PlanError:
        return PlanError(self.source, message, step=self.step, field=field)


@dataclass
class _Cap:
    """A per-session cap summed per site (or area) across steps."""

    cap: float
    hard: float
    limit: str  # the [limits] key
    field: str  # the step field to blame
    totals: dict[str, float] = dataclass_field(default_factory=dict)

    def add(self, where: _Where, kind: str, name: str, amount: float) -> None:
        key = site_key(name)
        self.totals[key] = total = self.totals.get(key, 0.0) + amount
        if total > self.cap:
            what, unit = _CAP_WORDS[self.field]
            raise where.fail(
                self.field,
                f"{what} on {kind} {name!r} reaches {total:g}{unit} at this step, over "
                f"limits.{self.limit} = {self.cap:g}{unit} per session "
                f"(a plan may raise it up to {self.hard:g}{unit})",
            )


_CAP_WORDS = {
    "repeat": ("holds", ""),
    "hold_s": ("in-band time", " s"),
    "duration_s": ("gun time", " s"),
}
