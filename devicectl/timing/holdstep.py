"""The hold step: ARMED -> RAMP -> HOLD -> RELEASE -> REST, per repetition, then DONE.

Decisions beyond DESIGN.md (each one is tested):
* RAMP -> HOLD when the force reaches the band's low edge, even if it jumps past the high edge:
  force above the band simply does not count.
* A lift-off (force below contact) during RAMP before the band was ever reached is a false start:
  back to ARMED, same repetition, nothing recorded. After the band was reached, a lift-off ends the
  hold (incomplete, recorded) and the rest follows, as after any hold.
* A dip in HOLD that goes below contact is still a dip: within grace the hold goes on; past grace it
  is HOLD_BROKEN and, the tip being off, the hold ends at the moment the force left the skin.
* The dip, rest and hold-cap clocks run on active time: a PAUSE stops them, so a paused hold is
  never flagged as over-held and a rest is never shortened by a pause.
* Stale data freezes in-band counting and the dip rule (we do not know the force), but not the hold
  cap: a tip pressed for 90 s is over-held whether or not the sensor was talking.
"""

from __future__ import annotations

from dataclasses import replace

from devicectl.timing.band import band_refusal, shifted_band
from devicectl.timing.context import EPS
from devicectl.timing.hold import HoldMeter
from devicectl.timing.holdtimer import HoldTimer
from devicectl.timing.rules import RAMP_SEVERITY, ramp_feedback, ramp_message
from devicectl.timing.types import (
    AlertKind,
    BandChanged,
    BandDirection,
    CueKind,
    HoldDone,
    Phase,
    Severity,
)


class HoldMachine(HoldTimer):
    def enter(self) -> None:
        self.set_phase(Phase.ARMED)

    def _more_reps(self) -> bool:
        capped = self.ctx.ledger.is_capped(self.step.site)
        return not (self.no_more_reps or capped) and self.rep < self.reps

    # --- time passes ---------------------------------------------------------------------

    def tick(self) -> None:
        if self.phase in (Phase.RAMP, Phase.HOLD, Phase.RELEASE):
            self._check_cap()
        if self.phase is Phase.HOLD and not self.ctx.track.frozen:
            self._check_hold()
        if self.phase is Phase.REST:
            self._check_rest()

    def _check_cap(self) -> None:
        m = self.meter
        if m is None or m.over_held:
            return
        if m.active_wall(self.ctx.active) < self.step.max_hold_s - EPS:
            return
        m.over_held = True
        self.ctx.alert(
            AlertKind.OVER_HELD,
            Severity.ALARM,
            f"{self.step.site}: hold reached its cap of {self.step.max_hold_s:g} s: release now",
            self.index,
        )
        if self.phase in (Phase.RAMP, Phase.HOLD):
            self._release_cue("over_held")

    def _check_hold(self) -> None:
        m = self.meter
        assert m is not None
        in_band = self.in_band(self.ctx.now)
        if in_band >= self.step.hold_s - EPS:
            m.completed = True
            self._release_cue("complete")
            m.in_band_s = self.step.hold_s  # reached at exactly this moment (see deadline())
        if self._site_left() - in_band <= EPS:
            self._site_cap()
        if self.phase is Phase.HOLD:
            self._check_dip()

    def _site_cap(self) -> None:
        if self.phase is Phase.HOLD:
            self._release_cue("site_cap")
        self.ctx.ledger.cap_site(self.step.site)
        self.ctx.alert(
            AlertKind.SITE_CAP,
            Severity.WARNING,
            f"{self.step.site}: {self.limits.max_site_in_band_s:g} s in band this session: "
            "hold ended, no more repetitions on this site",
            self.index,
        )

    def _check_dip(self) -> None:
        if self.dip_since is None or self.ctx.active - self.dip_since < self.step.grace_s - EPS:
            return
        self.dip_since = None
        self.ctx.alert(
            AlertKind.HOLD_BROKEN,
            Severity.WARNING,
            f"below the band for {self.step.grace_s:g} s: hold broken "
            f"({self.in_band(self.ctx.now):.1f} of {self.step.hold_s:g} s kept)",
            self.index,
        )
        if self.lift is not None:
            self._end_hold(*self.lift)
        else:  # keep the open interval's in-band part (before a band change that began the dip)
            self._commit_in_band()
            self.set_phase(Phase.RAMP)

    def _check_rest(self) -> None:
        if not self.rest_over:
            if self.ctx.active < self.rest_end - EPS:
                return
            self.rest_over = True
            self.ctx.cue(CueKind.REST_OVER, self.index)
        force = self.ctx.track.last_f
        if force is None or force < self.limits.contact_n:
            self._after_rest()

    # --- transitions ---------------------------------------------------------------------

    def _release_cue(self, reason: str) -> None:
        """RAMP/HOLD -> RELEASE, keeping the in-band time counted up to now."""
        self._commit_in_band()
        self.set_phase(Phase.RELEASE)
        self.ctx.cue(CueKind.RELEASE, self.index, reason)

    def _commit_in_band(self) -> None:
        if self.meter is not None:
            self.meter.add_in_band(self.provisional(self.ctx.now))
        self.dip_since = None
        self.lift = None

    def _end_hold(self, ended_t: float, ended_active: float) -> None:
        self._record(ended_t, ended_active)
        if self._more_reps() or self.index < len(self.ctx.plan.steps) - 1:
            self._rest()
        else:  # the very last hold of the session: no rest after it
            self.finish()

    def _record(self, ended_t: float, ended_active: float) -> None:
        m = self.meter
        if m is None:
            return
        self.meter = None
        dose = m.dose(ended_t, ended_active, self.ctx.t0)
        self.ctx.ledger.add_hold(dose)
        self.ctx.emit(HoldDone(self.ctx.now, dose))
        self.last_in_band = dose.in_band_s
        self.dip_since = None
        self.lift = None

    def _rest(self) -> None:
        self.rest_end = self.ctx.active + self.step.rest_s
        self.rest_over = False
        self.pressing = False
        self.set_phase(Phase.REST)
        self._check_rest()

    def _after_rest(self) -> None:
        if self._more_reps():
            self.rep += 1
            self.last_in_band = 0.0
            self.set_phase(Phase.ARMED)
        else:
            self.finish()

    # --- samples -------------------------------------------------------------------------

    def on_sample(self, force_n: float) -> None:
        self._integrate(force_n)
        self.band_marks.clear()  # the interval they split is counted: a new one begins
        phase = self.phase
        if phase is Phase.ARMED and force_n >= self.limits.contact_n:
            self._contact(force_n)
        elif phase is Phase.RAMP:
            self._ramp(force_n)
        elif phase is Phase.HOLD:
            self._hold(force_n)
        elif phase is Phase.RELEASE and force_n < self.limits.contact_n:
            self._end_hold(self.ctx.now, self.ctx.active)
        elif phase is Phase.REST:
            self._rest_sample(force_n)

    def _integrate(self, force_n: float) -> None:
        """Count the interval from the last sample to this one into the open hold."""
        m, track = self.meter, self.ctx.track
        if m is None or track.last_t is None or track.last_f is None:
            return
        gap = track.fresh_gap(self.ctx.now, self.limits.stale_s)
        if gap is not None:
            m.add_interval(
                track.last_t,
                track.last_f,
                self.ctx.now,
                force_n,
                contact_n=self.limits.contact_n,
                ceiling_n=self.step.ceiling_n,
            )
            if self.phase is Phase.HOLD:
                m.add_in_band(self.open_in_band(self.ctx.now))
        m.see(force_n)

    def _contact(self, force_n: float) -> None:
        """The hold starts where the force crossed contact (interpolated), not at this sample."""
        back = self._since_crossing(self.limits.contact_n, force_n)
        self.meter = HoldMeter(
            step_index=self.index,
            site=self.step.site,
            rep=self.rep,
            planned_in_band_s=self.step.hold_s,
            started_t=self.ctx.now - back,
            started_active=self.ctx.active - back,
        )
        self._integrate(force_n)  # the approach from the crossing to this sample
        self.set_phase(Phase.RAMP)
        self._ramp(force_n)  # a first sample already in the band goes straight on to HOLD

    def _ramp(self, force_n: float) -> None:
        m = self.meter
        assert m is not None
        if force_n < self.limits.contact_n:
            if m.reached_band:
                self._end_hold(self.ctx.now, self.ctx.active)
            else:  # a false start: slipped off before the band; nothing was delivered
                self.meter = None
                self.set_phase(Phase.ARMED)
        elif force_n >= self.step.low_n:
            self._enter_band(m, force_n)

    def _enter_band(self, m: HoldMeter, force_n: float) -> None:
        self.dip_since = None
        self.lift = None
        self.set_phase(Phase.HOLD)
        if m.reached_band:
            return
        m.reached_band = True  # the ramp rate is measured once per hold, at first band entry
        # From the contact crossing to the low-edge crossing, both interpolated between samples.
        seconds = m.active_wall(self.ctx.active - self._since_crossing(self.step.low_n, force_n))
        rise = self.step.low_n - self.limits.contact_n
        m.ramp_rate_n_s = rise / seconds if seconds > EPS else None
        if (self.ctx.now - m.started_t) - m.active_wall(self.ctx.active) > EPS:
            # Paused during the ramp: the force rose while the clock stood still. No honest rate.
            m.ramp_rate_n_s = None
            return
        target = self.step.ramp_rate_n_s
        kind = ramp_feedback(m.ramp_rate_n_s, target)
        if kind is not None and target is not None:
            message = ramp_message(kind, m.ramp_rate_n_s, target)
            self.ctx.alert(kind, RAMP_SEVERITY, message, self.index, "tbar")

    def _hold(self, force_n: float) -> None:
        if force_n >= self.step.low_n:
            self.dip_since = None
            self.lift = None
            return
        if self.dip_since is None:
            self.dip_since = self.ctx.active
        if force_n >= self.limits.contact_n:
            self.lift = None
        elif self.lift is None:
            self.lift = (self.ctx.now, self.ctx.active)

    def _rest_sample(self, force_n: float) -> None:
        if force_n < self.limits.contact_n:
            self.pressing = False
            if self.rest_over:
                self._after_rest()
            return
        if self.pressing or self.rest_over:
            return
        self.pressing = True
        left = self.rest_end - self.ctx.active
        self.ctx.alert(
            AlertKind.PRESSURE_DURING_REST,
            Severity.WARNING,
            f"pressure during rest ({left:.1f} s left): release; it does not count",
            self.index,
            "tbar",
        )

    # --- commands ------------------------------------------------------------------------

    def next(self) -> None:
        phase = self.phase
        if phase is Phase.ARMED:
            self.finish()
        elif phase in (Phase.RAMP, Phase.HOLD):
            self.no_more_reps = True
            self._release_cue("next")
        elif phase is Phase.RELEASE or (phase is Phase.REST and self.rest_over):
            self.no_more_reps = True
        elif phase is Phase.REST:
            left = self.rest_end - self.ctx.active
            self.ctx.alert(
                AlertKind.REFUSED,
                Severity.INFO,
                f"rest cannot be shortened: {left:.1f} s left",
                self.index,
            )

    def move_band(self, direction: BandDirection, reason: str, *, running: bool) -> None:
        """Move the band one band step (see :mod:`devicectl.timing.band`), or refuse with why.

        The new band is in force from now: the rest of the open sample interval is judged
        against it, and a running HOLD re-judges the last sample at once (a dip starts now when the
        band rose above the force, one ends when it came down to it). RAMP -> HOLD still waits for
        a sample, as always. The planned dose (``hold_s``) is unchanged.
        """
        steps = self.band_steps + (1 if direction is BandDirection.UP else -1)
        band = shifted_band(self.planned, steps)
        previous = (self.step.low_n, self.step.high_n)
        why = band_refusal(band, previous, self.planned, self.limits, direction)
        if why is not None:
            self.ctx.alert(AlertKind.REFUSED, Severity.INFO, why, self.index)
            return
        self.band_marks.append((self.ctx.now, *previous))
        self.band_steps = steps
        self.step = replace(self.planned, low_n=band[0], high_n=band[1])
        self.ctx.emit(
            BandChanged(self.ctx.now, self.index, self.rep, band, previous, direction, reason)
        )
        track = self.ctx.track
        usable = track.fresh_gap(self.ctx.now, self.limits.stale_s) is not None
        if running and self.phase is Phase.HOLD and usable and track.last_f is not None:
            self._hold(track.last_f)

    def abort(self) -> None:
        self._record(self.ctx.now, self.ctx.active)

    def cap_reached(self) -> None:
        """The session cap ends the session now: a tip still pressing is told to release."""
        if self.phase in (Phase.RAMP, Phase.HOLD):
            self._commit_in_band()
            self.ctx.cue(CueKind.RELEASE, self.index, "session_cap")

    def countdown(self, active: float) -> float | None:
        if self.phase is Phase.REST:
            return max(0.0, self.rest_end - active)
        return None
