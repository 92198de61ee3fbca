"""Dose: what was delivered, against what was planned. Per hold, then rolled up per step, site, session."""

from __future__ import annotations

from dataclasses import dataclass


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
