"""The plan model: what a session should deliver. Forces are newtons here, whatever the file said.

Reading and validating plan files lives in :mod:`devicectl.planfile`; this module is only the shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devicectl.units import ForceUnit


@dataclass(frozen=True)
class HoldStep:
    """A timed pressure hold on one site, repeated ``repeat`` times with a rest after each."""

    site: str
    low_n: float
    high_n: float
    ceiling_n: float
    hold_s: float = 30.0
    rest_s: float = 30.0
    repeat: int = 1
    grace_s: float = 2.0
    max_hold_s: float = 90.0
    ramp_rate_n_s: float | None = None
    tip_area_cm2: float | None = None
    note: str = ""
    kind: str = field(default="hold", init=False)

    def in_band(self, force_n: float) -> bool:
        return self.low_n <= force_n <= self.high_n


@dataclass(frozen=True)
class PauseStep:
    """An instruction: timed when ``duration_s`` is set, else it waits for CONFIRM."""

    duration_s: float | None = None
    note: str = ""
    kind: str = field(default="pause", init=False)


@dataclass(frozen=True)
class GunStep:
    """A massage gun on one area (muscle group) at one speed level for a time."""

    area: str
    level: int
    duration_s: float
    note: str = ""
    kind: str = field(default="gun", init=False)


@dataclass(frozen=True)
class ChairStep:
    """A massage chair (or bed) program run for a time."""

    program: str
    duration_s: float
    note: str = ""
    kind: str = field(default="chair", init=False)


Step = HoldStep | PauseStep | GunStep | ChairStep


@dataclass(frozen=True)
class Limits:
    """Plan-level limits and rule settings. Defaults follow DESIGN.md ("The timing core").

    A plan may change these only within :data:`HARD_LIMITS` (enforced by the plan reader).
    """

    contact_n: float = 2.0  # below this the tip is off the skin: "released"
    stale_s: float = 1.0  # no sample for longer than this freezes the hold timer
    max_reps_per_site: int = 3
    max_site_in_band_s: float = 120.0
    max_gun_area_s: float = 120.0
    max_session_s: float | None = None  # None: no session cap (gun routines get 900 s by default)


@dataclass(frozen=True)
class Plan:
    """A validated plan. ``source`` names the file (or ``builtin:NAME``) for messages, records."""

    name: str
    units: ForceUnit
    steps: tuple[Step, ...]
    limits: Limits = Limits()
    source: str = "<memory>"
    description: str = ""

    @property
    def hold_steps(self) -> tuple[HoldStep, ...]:
        return tuple(s for s in self.steps if isinstance(s, HoldStep))
