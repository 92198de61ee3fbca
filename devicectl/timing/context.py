"""State shared by the step machines of one session: clocks, the last sample, ledgers, outputs.

Two clocks: ``now`` is the caller's monotonic time (outputs carry it); ``active`` is seconds the
session has been RUNNING since start, so every countdown and wall-time cap freezes while PAUSED.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devicectl.dose import HoldDose
from devicectl.limits import site_key
from devicectl.plan import Plan
from devicectl.timing.types import (
    Actuator,
    ActuatorCommand,
    Alert,
    AlertKind,
    Cue,
    CueKind,
    Output,
    Severity,
)

# Float slack for time comparisons: 1500 sample intervals of 0.02 s must still add up to 30 s.
EPS = 1e-9


@dataclass
class SampleTrack:
    """The force sensor's data as the core sees it."""

    last_t: float | None = None
    last_f: float | None = None
    # The open interval (since last_t) touches a pause: it counts for nothing. Costs at most one
    # sample interval at each pause edge, and keeps paused time out of every dose figure.
    void: bool = False
    stale: bool = False  # no sample for longer than stale_s (during a hold step)
    link_lost: bool = False  # the runner reported the T-bar's link down
    # Staleness is measured from the latest of: last sample, hold step start, resume, link restored,
    # so a step that begins (or a session that resumes) is not stale before stale_s has passed.
    baseline_t: float = 0.0

    @property
    def frozen(self) -> bool:
        return self.stale or self.link_lost

    def fresh_gap(self, now: float, stale_s: float) -> float | None:
        """Seconds since the last sample if that interval may still be counted, else None."""
        if self.last_t is None or self.last_f is None or self.void or self.link_lost:
            return None
        gap = max(0.0, now - self.last_t)
        return gap if gap <= stale_s + EPS else None


@dataclass
class Ledger:
    """What earlier holds and steps used up, for the per-site and per-area caps and for the dose.

    Sites and areas are keyed by :func:`devicectl.limits.site_key`, as plan validation counts them:
    "Upper trapezius L" and "upper  trapezius l" are one site. Use the accessors, not the dicts.
    """

    holds: list[HoldDose] = field(default_factory=list)
    site_in_band: dict[str, float] = field(default_factory=dict)
    site_reps: dict[str, int] = field(default_factory=dict)
    capped_sites: set[str] = field(default_factory=set)
    area_gun: dict[str, float] = field(default_factory=dict)
    gun_s_by_step: dict[int, float] = field(default_factory=dict)

    def add_hold(self, dose: HoldDose) -> None:
        key = site_key(dose.site)
        self.holds.append(dose)
        self.site_in_band[key] = self.site_in_band.get(key, 0.0) + dose.in_band_s
        self.site_reps[key] = self.site_reps.get(key, 0) + 1

    def add_gun(self, index: int, area: str, seconds: float) -> None:
        key = site_key(area)
        self.gun_s_by_step[index] = self.gun_s_by_step.get(index, 0.0) + seconds
        self.area_gun[key] = self.area_gun.get(key, 0.0) + seconds

    def in_band_on(self, site: str) -> float:
        return self.site_in_band.get(site_key(site), 0.0)

    def reps_on(self, site: str) -> int:
        return self.site_reps.get(site_key(site), 0)

    def gun_on(self, area: str) -> float:
        return self.area_gun.get(site_key(area), 0.0)

    def cap_site(self, site: str) -> None:
        self.capped_sites.add(site_key(site))

    def is_capped(self, site: str) -> bool:
        return site_key(site) in self.capped_sites


@dataclass
class Ctx:
    plan: Plan
    actuators: frozenset[Actuator]
    out: list[Output] = field(default_factory=list)
    now: float = 0.0
    t0: float = 0.0
    active: float = 0.0
    track: SampleTrack = field(default_factory=SampleTrack)
    ledger: Ledger = field(default_factory=Ledger)
    # Actuators we told to start and have not told to stop since: what "completed" must stop.
    actuator_on: set[Actuator] = field(default_factory=set)

    def advance(self, now: float, running: bool) -> None:
        """Move the clock to ``now`` (never backwards); active time grows only while running."""
        now = max(now, self.now)
        if running:
            self.active += now - self.now
        self.now = now

    def active_at(self, now: float, running: bool) -> float:
        return self.active + max(0.0, now - self.now) if running else self.active

    @property
    def rel(self) -> float:
        """Seconds since the session started (dose times)."""
        return self.now - self.t0

    def emit(self, output: Output) -> None:
        self.out.append(output)

    def alert(
        self,
        kind: AlertKind,
        severity: Severity,
        message: str,
        step_index: int | None = None,
        device: str | None = None,
    ) -> None:
        self.emit(Alert(self.now, kind, severity, message, step_index, device))

    def cue(self, kind: CueKind, step_index: int, reason: str = "") -> None:
        self.emit(Cue(self.now, kind, step_index, reason))

    def start_actuator(
        self, actuator: Actuator, level: int | None = None, program: str | None = None
    ) -> None:
        self.actuator_on.add(actuator)
        self.emit(ActuatorCommand(self.now, actuator, "start", level=level, program=program))

    def stop_actuator(self, actuator: Actuator) -> None:
        self.actuator_on.discard(actuator)
        self.emit(ActuatorCommand(self.now, actuator, "stop"))
