"""Moving a hold step's target band while it runs (``TimingCore.adjust_band``), in virtual time.

The band moves by one band step (10 % of the planned low edge, at least 1 N); in-band counting
follows the new band from the moment it moved, for this repetition and the step's remaining ones;
it never reaches the contact level, the ceiling or the hard force limit; the next step starts with
its own planned band.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devicectl.limits import HARD_LIMITS
from devicectl.plan import HoldStep, Limits, PauseStep, Plan
from devicectl.timing.band import BAND_STEP_MIN_N, band_step_n
from devicectl.timing.core import TimingCore
from devicectl.timing.types import (
    Actuator,
    Alert,
    AlertKind,
    BandChanged,
    BandDirection,
    Command,
    HoldDone,
    Output,
    Phase,
    Severity,
)
from tests.core.test_timing_properties import hold_steps
from tests.core.timing_support import A, Run, hold_step, linear, make_plan, presses

UP, DOWN = BandDirection.UP, BandDirection.DOWN


class BandRun(Run):
    """The Run harness with the band key."""

    @classmethod
    def started(
        cls, plan: Plan, actuators: frozenset[Actuator] = frozenset(), at: float = 0.0
    ) -> BandRun:
        run = cls(TimingCore(plan, actuators=actuators), now=at)
        run.out += run.core.start(at)
        return run

    def band(self, t: float, direction: BandDirection, reason: str = "") -> list[Output]:
        return self._got(t, self.core.adjust_band(t, direction, reason))

    def changes(self) -> list[BandChanged]:
        return [o for o in self.out if isinstance(o, BandChanged)]

    def band_at(self, t: float) -> tuple[float, float] | None:
        return self.core.status(t).band_n


def moves(outputs: list[Output]) -> list[BandChanged]:
    return [o for o in outputs if isinstance(o, BandChanged)]


def refusals(outputs: list[Output]) -> list[Alert]:
    return [o for o in outputs if isinstance(o, Alert) and o.kind is AlertKind.REFUSED]


# --- in-band counting follows the band ------------------------------------------------------


def test_raising_the_band_above_the_force_stops_counting_at_that_moment() -> None:
    run = BandRun.started(make_plan(hold_step()))
    force = presses((1.0, 60.0), level=21.0)  # in band 20-40 from 1.5 s
    run.feed(force, until=10.0)
    [changed] = run.band(10.01, UP, "too little")  # between two samples
    assert changed == BandChanged(10.01, 0, 1, (22.0, 42.0), (20.0, 40.0), UP, "too little")
    status = run.core.status(10.01)
    assert status.band_n == (22.0, 42.0)  # at once
    assert status.in_band_s == A(10.01 - 1.5)
    run.feed(force, until=12.5)
    # 21 N is below the new band from 10.01 on: a dip from that moment, broken after grace (2 s).
    [broken] = run.alerts(AlertKind.HOLD_BROKEN)
    assert broken.t == A(12.01)
    assert "8.5 of 30 s kept" in broken.message
    assert run.core.status(12.5).in_band_s == A(8.51)  # 10.0-10.01 counted, 10.01-10.02 not
    # Lowered again: RAMP -> HOLD on the next sample, and the hold completes 30 s in band.
    run.band(13.0, DOWN, "too much")
    run.feed(force, until=62.0)
    assert run.phases()[-3:] == [(A(13.02), Phase.HOLD), (A(34.51), Phase.RELEASE),
                                (A(60.92), Phase.DONE)]  # fmt: skip
    [dose] = [h.dose for h in run.holds()]
    assert (dose.in_band_s, dose.planned_in_band_s, dose.completed) == (30.0, 30.0, True)
    assert [(c.direction, c.band_n) for c in run.changes()] == [
        (UP, (22.0, 42.0)),
        (DOWN, (20.0, 40.0)),
    ]


def test_a_hold_broken_at_once_keeps_the_time_before_the_raise() -> None:
    run = BandRun.started(make_plan(hold_step(grace_s=0.0)))
    force = presses((1.0, 60.0), level=21.0)
    run.feed(force, until=10.0)
    run.band(10.01, UP)  # 21 N is below 22-42 N: a dip, and no grace
    run.feed(force, until=10.02)
    [broken] = run.alerts(AlertKind.HOLD_BROKEN)
    assert broken.t == A(10.02)  # the first call after the raise
    assert run.core.status(10.5).in_band_s == A(8.51)  # 1.5-10.01 s: the part before the raise


def test_lowering_the_band_to_the_force_ends_a_dip_and_counts_from_that_moment() -> None:
    run = BandRun.started(make_plan(hold_step()))
    force = linear([(0.0, 0.0), (1.0, 0.0), (1.5, 20.0), (2.0, 25.0), (5.0, 25.0), (5.0, 19.0),
                    (60.0, 19.0), (61.0, 0.0)])  # fmt: skip
    run.feed(force, until=6.0, hz=4.0)  # in band 1.5-5.25 s; 19 N, a dip, from 5.25 s
    run.band(6.1, DOWN, "too much")  # 18-38 N: 19 N is in band again
    assert run.core.status(6.1).in_band_s == A(3.75)
    run.feed(force, until=7.0, hz=4.0)
    assert run.core.status(7.0).in_band_s == A(3.75 + 0.9)  # from 6.1, not from the 6.25 sample
    run.feed(force, until=62.0, hz=4.0)
    assert run.alerts() == []  # the dip ended at 6.1: no HOLD_BROKEN at 7.25
    assert run.phase_at(Phase.RELEASE) == A(6.1 + 30.0 - 3.75)
    assert run.holds()[0].dose.in_band_s == 30.0


def test_without_the_lowering_the_same_dip_breaks_the_hold() -> None:
    """The control for the test above."""
    run = BandRun.started(make_plan(hold_step()))
    force = linear([(0.0, 0.0), (1.0, 0.0), (1.5, 20.0), (2.0, 25.0), (5.0, 25.0), (5.0, 19.0)])
    run.feed(force, until=8.0, hz=4.0)
    assert [a.t for a in run.alerts(AlertKind.HOLD_BROKEN)] == [A(7.25)]


def test_the_band_holds_for_the_remaining_reps_and_the_next_step_has_its_own() -> None:
    neck = hold_step(site="neck", low_n=30.0, high_n=50.0, ceiling_n=80.0)
    run = BandRun.started(make_plan(hold_step(repeat=2, rest_s=5.0), neck))
    force = presses((1.0, 35.0), (45.0, 80.0), (90.0, 125.0))
    run.feed(force, until=10.0)
    run.band(10.01, UP)
    run.feed(force, until=44.0)
    assert (run.core.status(44.0).rep, run.band_at(44.0)) == (2, (22.0, 42.0))
    run.feed(force, until=88.0)
    # Rep 1 entered the band at 20 N (1.5 s); rep 2 at 22 N: 20 N at 45.5 s, 30 N at 46 s.
    assert [t for t, p in run.phases(0) if p is Phase.HOLD] == [A(1.5), A(45.6)]
    assert [h.dose.in_band_s for h in run.holds()] == [30.0, 30.0]
    run.feed(force, until=95.0)
    assert run.band_at(95.0) == (30.0, 50.0)  # the next step: its planned band
    run.feed(force, until=130.0)
    assert [t for t, p in run.phases(1) if p is Phase.HOLD] == [A(91.0)]


# --- the step, the limits, refusals ---------------------------------------------------------


@pytest.mark.parametrize(
    ("band", "ceiling", "raised"),
    [
        ((20.0, 40.0), 60.0, (22.0, 42.0)),  # 10 % of the low edge
        ((50.0, 70.0), 100.0, (55.0, 75.0)),
        ((3.0, 8.0), 12.0, (4.0, 9.0)),  # at least 1 N
    ],
)
def test_one_band_step(
    band: tuple[float, float], ceiling: float, raised: tuple[float, float]
) -> None:
    run = BandRun.started(make_plan(hold_step(low_n=band[0], high_n=band[1], ceiling_n=ceiling)))
    [changed] = moves(run.band(0.5, UP))
    assert changed.band_n == A(raised)
    assert band_step_n(hold_step(low_n=band[0])) >= BAND_STEP_MIN_N


def test_up_then_down_returns_exactly_to_the_planned_band() -> None:
    run = BandRun.started(make_plan(hold_step(low_n=23.0, high_n=41.0)))  # steps of 2.3 N
    for direction in (UP, UP, DOWN, DOWN, DOWN, UP):
        run.band(0.5, direction)
    assert run.band_at(0.5) == (23.0, 41.0)


def test_raising_stops_below_the_ceiling() -> None:
    run = BandRun.started(make_plan(hold_step()))  # 20-40 N, ceiling 60 N
    for _ in range(9):
        assert isinstance(run.band(0.5, UP)[0], BandChanged)
    [refused] = refusals(run.band(0.5, UP))  # 40-60 N would reach the ceiling
    assert (refused.kind, refused.severity, refused.step_index) == (
        AlertKind.REFUSED,
        Severity.INFO,
        0,
    )
    assert refused.message == (
        "cannot raise the band 38-58 N: its high edge must stay below the ceiling 60 N"
    )
    assert run.band_at(0.5) == (38.0, 58.0)
    assert isinstance(run.band(0.5, DOWN)[0], BandChanged)  # the other way is still open


def test_lowering_stops_above_the_contact_level() -> None:
    run = BandRun.started(make_plan(hold_step()))  # contact 2 N
    for _ in range(8):
        run.band(0.5, DOWN)
    assert run.band_at(0.5) == (4.0, 24.0)
    [refused] = refusals(run.band(0.5, DOWN))  # 2-22 N: the low edge would be at contact
    assert "low edge must stay above the contact level 2 N" in refused.message
    assert run.band_at(0.5) == (4.0, 24.0)


def test_raising_stops_at_the_hard_force_limit() -> None:
    # A ceiling above the hard limit cannot come from a plan file; the core still holds the limit.
    step = hold_step(low_n=480.0, high_n=495.0, ceiling_n=600.0)
    run = BandRun.started(make_plan(step))
    [refused] = refusals(run.band(0.5, UP))
    assert f"within the hard limit {HARD_LIMITS.force_n:g} N" in refused.message
    assert run.band_at(0.5) == (480.0, 495.0)


def test_refused_outside_a_hold_step_and_before_the_start() -> None:
    plan = make_plan(PauseStep(note="warm up"), hold_step())
    core = TimingCore(plan)
    [before] = refusals(core.adjust_band(0.0, UP))
    assert before.message == "band up: the session has not started"
    run = BandRun.started(plan)
    [refused] = refusals(run.band(1.0, DOWN))
    assert refused.message == "cannot move the band: step 1 is not a hold step"
    assert run.changes() == []


def test_ignored_after_the_end() -> None:
    run = BandRun.started(make_plan(hold_step()))
    run.command(1.0, Command.STOP)
    assert run.band(2.0, UP) == []


def test_a_paused_session_takes_the_change_and_the_dip_waits_for_the_resume() -> None:
    run = BandRun.started(make_plan(hold_step()))
    force = presses((1.0, 60.0), level=21.0)
    run.feed(force, until=5.0)
    run.command(5.0, Command.PAUSE)
    run.feed(force, until=6.0)
    [changed] = moves(run.band(6.0, UP, "too little"))
    assert changed.band_n == (22.0, 42.0)
    run.feed(force, until=10.0)
    run.command(10.0, Command.RESUME)
    run.feed(force, until=13.0)
    # The first sample after the resume (10.02) is below the new band: the dip starts there.
    assert [a.t for a in run.alerts(AlertKind.HOLD_BROKEN)] == [A(12.02)]
    assert run.core.status(13.0).in_band_s == A(5.0 - 1.5)


# --- a property: the band stays within its limits, whatever the presses -------------------


ACTIONS = st.lists(
    st.tuples(
        st.sampled_from([0.02, 0.1, 0.5, 1.5]),
        st.sampled_from(
            ["up", "up", "down", "down", "tick", "pause", "resume", 0.0, 10.0, 25.0, 40.0, 70.0]
        ),
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(hold_steps(), min_size=1, max_size=2),
    contact=st.sampled_from([1.0, 2.0, 5.0]),
    actions=ACTIONS,
)
def test_the_band_stays_between_contact_and_ceiling(
    steps: list[HoldStep], contact: float, actions: list[tuple[float, str | float]]
) -> None:
    plan = make_plan(*steps, limits=Limits(contact_n=contact, stale_s=0.5))
    run = BandRun.started(plan)
    t = 0.0
    for gap, action in actions:
        t = round(t + gap, 6)
        if isinstance(action, float):
            run.sample(t, action)
        elif action == "tick":
            run.tick(t)
        elif action in ("pause", "resume"):
            run.command(t, Command(action))
        else:
            out = run.band(t, BandDirection(action))
            check_move(plan, run, t, out)
        check_band(plan, run, t)
    for done in (o for o in run.out if isinstance(o, HoldDone)):
        dose = done.dose
        assert dose.in_band_s <= dose.planned_in_band_s + 1e-9
        assert dose.in_band_s <= dose.wall_s - dose.paused_s + 1e-9


def check_band(plan: Plan, run: BandRun, t: float) -> None:
    status = run.core.status(t)
    step = plan.steps[status.step_index]
    if status.band_n is None or not isinstance(step, HoldStep):
        return
    low, high = status.band_n
    assert plan.limits.contact_n < low < high < step.ceiling_n
    assert high <= HARD_LIMITS.force_n
    assert high - low == pytest.approx(step.high_n - step.low_n)
    moved = (low - step.low_n) / band_step_n(step)
    assert moved == pytest.approx(round(moved), abs=1e-6)  # whole band steps from the plan


def check_move(plan: Plan, run: BandRun, t: float, out: list[Output]) -> None:
    """A move is refused exactly when one band step more would leave the limits."""
    status = run.core.status(t)
    step = plan.steps[status.step_index]
    changed = [o for o in out if isinstance(o, BandChanged)]
    refused = [a for a in refusals(out) if "band" in a.message]
    if not isinstance(step, HoldStep) or status.band_n is None:
        return
    if changed:
        c = changed[-1]
        assert c.band_n == status.band_n
        assert abs(c.band_n[0] - c.previous_n[0]) == pytest.approx(band_step_n(step))
    elif refused and "not a hold step" not in refused[-1].message:
        sign = 1 if "raise" in refused[-1].message else -1
        low, high = (edge + sign * band_step_n(step) for edge in status.band_n)
        limit = min(step.ceiling_n, HARD_LIMITS.force_n + 1e-9)
        assert low <= plan.limits.contact_n + 1e-9 or high >= limit - 1e-9
