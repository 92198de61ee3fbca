"""The hold step's clocks: the hold timer, and when time alone will next change something.

:class:`HoldTimer` holds a hold step's state and answers questions about time; the phases and
their transitions are in :mod:`devicectl.timing.holdstep`.
"""

from __future__ import annotations

from devicectl.plan import HoldStep
from devicectl.timing.context import Ctx
from devicectl.timing.hold import HoldMeter, crossing
from devicectl.timing.steps import StepMachine
from devicectl.timing.types import Phase


class HoldTimer(StepMachine):
    step: HoldStep

    def __init__(
        self, ctx: Ctx, index: int, previous: Phase | None, step: HoldStep, reps: int
    ) -> None:
        super().__init__(ctx, index, previous)
        self.step = step  # the band in force (moved by adjust_band); the plan's is ``planned``
        self.planned = step
        self.band_steps = 0  # band steps the band is moved from the plan (negative: lowered)
        # Band changes since the last sample: (time, low, high) of the band in force *before*
        # each. The open interval is judged piece by piece against the band of each moment.
        self.band_marks: list[tuple[float, float, float]] = []
        self.reps = reps
        self.limits = ctx.plan.limits
        self.meter: HoldMeter | None = None
        self.last_in_band = 0.0  # the previous hold's, shown during REST
        self.dip_since: float | None = None  # active time the force fell below the band
        self.lift: tuple[float, float] | None = None  # (now, active) the force fell below contact
        self.rest_end = 0.0  # active time
        self.rest_over = False
        self.pressing = False  # a press during rest is flagged once per press
        self.no_more_reps = False  # NEXT or the site cap: finish after this hold's rest

    def provisional(self, now: float) -> float:
        """In-band seconds since the last sample, not yet committed (the sample taken as held)."""
        if self.phase is not Phase.HOLD or self.meter is None:
            return 0.0
        gap = self.ctx.track.fresh_gap(now, self.limits.stale_s)
        if gap is None:
            return 0.0
        return self.open_in_band(now)

    def open_in_band(self, end: float) -> float:
        """In-band seconds of the open interval, from the last sample to ``end``, the last
        sample's force taken as held: each part of it judged against the band in force then
        (a band change splits the interval). The caller has checked the interval counts."""
        track = self.ctx.track
        assert track.last_t is not None
        assert track.last_f is not None
        before, start = self._before_band_change(end)
        held = max(0.0, end - start) if self.step.in_band(track.last_f) else 0.0
        return before + held

    def _before_band_change(self, end: float) -> tuple[float, float]:
        """(in-band seconds of the open interval under earlier bands, the moment the band now in
        force took over): (0, the last sample's time) when the band has not moved since."""
        track = self.ctx.track
        assert track.last_t is not None
        assert track.last_f is not None
        start, seconds = track.last_t, 0.0
        for t, low, high in self.band_marks:
            t = min(t, end)
            if t > start:  # marks older than the last sample belong to a closed interval
                if low <= track.last_f <= high:
                    seconds += t - start
                start = t
        return seconds, start

    def in_band(self, now: float) -> float:
        if self.meter is None:
            return self.last_in_band
        return self.meter.in_band_s + self.provisional(now)

    def _site_left(self) -> float:
        """In-band seconds the site had left when this hold began (earlier holds, any spelling)."""
        return self.limits.max_site_in_band_s - self.ctx.ledger.in_band_on(self.step.site)

    def _since_crossing(self, level: float, force_n: float) -> float:
        """Seconds before now that the force rose through ``level`` on the line from the previous
        sample to this one; 0 (this sample) when that interval does not count or did not cross."""
        track, now = self.ctx.track, self.ctx.now
        if track.fresh_gap(now, self.limits.stale_s) is None:
            return 0.0
        assert track.last_t is not None
        assert track.last_f is not None
        if not track.last_f < level <= force_n:
            return 0.0
        return now - crossing(track.last_t, track.last_f, now, force_n, level)

    def deadline(self) -> float | None:
        m, phase, due = self.meter, self.phase, list[float]()
        if m is not None and not m.over_held and phase in (Phase.RAMP, Phase.HOLD, Phase.RELEASE):
            due.append(m.started_active + self.step.max_hold_s)
        if phase is Phase.HOLD and not self.ctx.track.frozen:
            due += self._band_due()
        if phase is Phase.REST and not self.rest_over:
            due.append(self.rest_end)
        return min(due, default=None)

    def _band_due(self) -> list[float]:
        """When a dip outlasts grace; and when, with the last sample's force taken as held, the
        hold reaches hold_s or the site its in-band cap (only if before the data goes stale)."""
        due = [] if self.dip_since is None else [self.dip_since + self.step.grace_s]
        m, track, now = self.meter, self.ctx.track, self.ctx.now
        if m is None or track.fresh_gap(now, self.limits.stale_s) is None:
            return due
        assert track.last_t is not None
        assert track.last_f is not None
        before, start = self._before_band_change(now)
        left = min(self.step.hold_s, self._site_left()) - m.in_band_s - before
        # Counting goes on from ``start`` (the last sample, or a later band change).
        if self.step.in_band(track.last_f) and (start - track.last_t) + left <= self.limits.stale_s:
            due.append(self.ctx.active + (start + left - now))
        return due
