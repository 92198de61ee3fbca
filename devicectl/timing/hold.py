"""One hold's dose, accumulated sample interval by sample interval."""

from __future__ import annotations

from dataclasses import dataclass

from devicectl.dose import HoldDose, contact_segment, interpolate


def crossing(t0: float, f0: float, t1: float, f1: float, level: float) -> float:
    """When the line from (t0, f0) to (t1, f1) reaches ``level`` (given f0 < level <= f1)."""
    return t0 + (level - f0) / (f1 - f0) * (t1 - t0)


@dataclass
class HoldMeter:
    """Accumulates one hold from first contact to release.

    Counting rules (one interval = from one sample to the next):
    * contact time and force-time integral: trapezoid between the samples, cut at the contact level;
    * in-band and over-ceiling time: the interval counts when the sample at its *start* is in band
      (above the ceiling) -- the force is taken as held until the next sample says otherwise;
    * an interval longer than stale_s, or touching a pause, counts for nothing (the caller decides).
    """

    step_index: int
    site: str
    rep: int
    planned_in_band_s: float
    started_t: float  # caller's monotonic time of first contact (the interpolated crossing)
    started_active: float
    in_band_s: float = 0.0
    contact_s: float = 0.0
    integral_ns: float = 0.0
    peak_n: float = 0.0
    over_ceiling_s: float = 0.0
    ramp_rate_n_s: float | None = None
    reached_band: bool = False
    completed: bool = False
    over_held: bool = False

    def add_interval(
        self, t0: float, f0: float, t1: float, f1: float, *, contact_n: float, ceiling_n: float
    ) -> None:
        """Count the sample interval (t0, f0) -> (t1, f1), but only from the hold's start on."""
        start = max(t0, self.started_t)
        if t1 <= start:
            return
        seconds, integral = contact_segment(
            start, interpolate(t0, f0, t1, f1, start), t1, f1, contact_n
        )
        self.contact_s += seconds
        self.integral_ns += integral
        if f0 > ceiling_n:
            self.over_ceiling_s += t1 - start

    def add_in_band(self, seconds: float) -> None:
        self.in_band_s += max(0.0, seconds)

    def see(self, force_n: float) -> None:
        self.peak_n = max(self.peak_n, force_n)

    def active_wall(self, active: float) -> float:
        """Wall time of the hold with paused time left out: what the hold cap measures."""
        return active - self.started_active

    def dose(self, ended_t: float, ended_active: float, t0: float) -> HoldDose:
        """The hold as a record; ``t0`` is the session's start, so times become session seconds."""
        wall = ended_t - self.started_t
        active_wall = ended_active - self.started_active
        return HoldDose(
            step_index=self.step_index,
            site=self.site,
            rep=self.rep,
            started_s=self.started_t - t0,
            ended_s=ended_t - t0,
            planned_in_band_s=self.planned_in_band_s,
            in_band_s=self.in_band_s,
            contact_s=self.contact_s,
            integral_ns=self.integral_ns,
            peak_n=self.peak_n,
            mean_n=self.integral_ns / self.contact_s if self.contact_s > 0 else 0.0,
            over_ceiling_s=self.over_ceiling_s,
            ramp_rate_n_s=self.ramp_rate_n_s,
            completed=self.completed,
            over_held=self.over_held,
            paused_s=max(0.0, wall - active_wall),
        )
