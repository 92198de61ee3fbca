"""Dose accounting: the integration rules, roll-ups, and a known trace integrated by hand."""

from __future__ import annotations

import pytest

from devicectl.dose import (
    HoldDose,
    contact_segment,
    merge_levels,
    rollup,
    session_dose,
    step_label,
)
from devicectl.plan import ChairStep, GunStep, PauseStep
from devicectl.timing.types import SessionState
from tests.core.timing_support import A, Run, hold_step, linear, make_plan


def hold(
    site: str = "trap", step_index: int = 0, *, contact_s: float, integral_ns: float, **kw: object
) -> HoldDose:
    values: dict[str, object] = {
        "step_index": step_index,
        "site": site,
        "rep": 1,
        "started_s": 0.0,
        "ended_s": 40.0,
        "planned_in_band_s": 30.0,
        "in_band_s": 30.0,
        "contact_s": contact_s,
        "integral_ns": integral_ns,
        "peak_n": 35.0,
        "mean_n": integral_ns / contact_s,
        "over_ceiling_s": 0.0,
        "ramp_rate_n_s": None,
        "completed": True,
        "over_held": False,
    }
    values.update(kw)
    return HoldDose(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("f0", "f1", "expected"),
    [
        (10.0, 20.0, (1.0, 15.0)),  # wholly above contact: the trapezoid
        (0.0, 1.0, (0.0, 0.0)),  # wholly below
        (0.0, 4.0, (0.5, 1.5)),  # crosses 2 N half way: (2 + 4) / 2 * 0.5
        (4.0, 0.0, (0.5, 1.5)),  # and on the way down
        (2.0, 2.0, (0.0, 0.0)),  # at contact is not above it
    ],
)
def test_contact_segment(f0: float, f1: float, expected: tuple[float, float]) -> None:
    assert contact_segment(0.0, f0, 1.0, f1, 2.0) == A(expected)


def test_contact_segment_of_no_length_is_nothing() -> None:
    assert contact_segment(1.0, 10.0, 1.0, 20.0, 2.0) == (0.0, 0.0)


def test_rollup_weights_the_mean_by_contact_time() -> None:
    holds = [
        hold(contact_s=30.0, integral_ns=900.0, peak_n=40.0),
        hold(contact_s=10.0, integral_ns=100.0, completed=False, over_ceiling_s=2.0),
    ]
    totals = rollup("trap", holds, holds_planned=3, planned_in_band_s=90.0)
    assert (totals.holds_planned, totals.holds_done) == (3, 1)
    assert (totals.planned_in_band_s, totals.in_band_s) == (90.0, 60.0)
    assert (totals.contact_s, totals.integral_ns) == (40.0, 1000.0)
    assert totals.mean_n == A(25.0)  # not (30 + 10) / 2
    assert (totals.peak_n, totals.over_ceiling_s) == (40.0, 2.0)


def test_rollup_of_nothing_is_zero() -> None:
    totals = rollup("x", [])
    assert (totals.mean_n, totals.peak_n, totals.gun_s, totals.gun_s_by_level) == (0, 0, 0, ())


def test_merge_levels_sums_per_level_and_drops_empty() -> None:
    assert merge_levels([(3, 10.0), (1, 5.0), (3, 20.0), (2, 0.0)]) == ((1, 5.0), (3, 30.0))


def test_step_labels() -> None:
    assert step_label(hold_step(site="neck")) == "neck"
    assert step_label(GunStep(area="calf", level=1, duration_s=1)) == "calf"
    assert step_label(ChairStep(program="relax", duration_s=1)) == "relax"
    assert step_label(PauseStep(note="drink")) == "drink"
    assert step_label(PauseStep()) == "pause"


def test_session_dose_per_step_site_and_session() -> None:
    plan = make_plan(
        hold_step(repeat=2),
        GunStep(area="trap", level=2, duration_s=60.0),
        hold_step(site="neck", hold_s=20.0),
        PauseStep(note="stretch"),
    )
    holds = [
        hold(contact_s=30.0, integral_ns=900.0),
        hold(contact_s=30.0, integral_ns=600.0, peak_n=45.0, completed=False),
        hold("neck", 2, contact_s=20.0, integral_ns=500.0, planned_in_band_s=20.0),
    ]
    dose = session_dose(plan, holds, {1: 45.0})
    assert [s.label for s in dose.steps] == ["trap", "trap", "neck", "stretch"]
    first = dose.steps[0]
    assert (first.holds_planned, first.holds_done, first.planned_in_band_s) == (2, 1, 60.0)
    assert first.mean_n == A(25.0)
    assert first.peak_n == 45.0
    assert (dose.steps[1].planned_gun_s, dose.steps[1].gun_s_by_level) == (60.0, ((2, 45.0),))
    assert [s.label for s in dose.sites] == ["trap", "neck"]
    trap = dose.sites[0]
    assert (trap.holds_planned, trap.gun_s, trap.planned_gun_s) == (2, 45.0, 60.0)
    total = dose.total
    assert (total.label, total.holds_planned, total.holds_done) == ("test", 3, 2)
    assert (total.planned_in_band_s, total.integral_ns, total.contact_s) == (80.0, 2000.0, 80.0)
    assert total.gun_s == 45.0


def test_sites_that_differ_only_in_case_and_spacing_roll_up_as_one() -> None:
    plan = make_plan(
        hold_step(site="Upper trapezius L"),
        GunStep(area="upper  trapezius l", level=2, duration_s=60.0),
        hold_step(site=" UPPER TRAPEZIUS L "),
        hold_step(site="neck"),
    )
    holds = [
        hold("Upper trapezius L", 0, contact_s=30.0, integral_ns=900.0),
        hold(" UPPER TRAPEZIUS L ", 2, contact_s=30.0, integral_ns=600.0),
        hold("neck", 3, contact_s=10.0, integral_ns=100.0),
    ]
    dose = session_dose(plan, holds, {1: 45.0})
    assert [s.label for s in dose.sites] == ["Upper trapezius L", "neck"]  # first spelling
    trap = dose.sites[0]
    assert (trap.holds_planned, trap.holds_done, trap.integral_ns) == (2, 2, 1500.0)
    assert (trap.planned_in_band_s, trap.gun_s, trap.planned_gun_s) == (60.0, 45.0, 60.0)
    assert dose.sites[1].integral_ns == 100.0


def test_a_known_trace_integrated_by_hand() -> None:
    """2 N at 1.0 s, up to 32 N at 2.0 s, held to 32.0 s, down to 2 N at 33.0 s, then off.

    Above contact: 1 s of ramp (mean 17 N), 30 s at 32 N, 1 s down (mean 17 N): 32 s, 994 N*s.
    In band (17..40 N): samples from 1.5 s to 32.5 s, plus the interval after 32.5: 31.02 s.
    Ramp rate: (17 - 2) N / 0.5 s = 30 N/s. Released at the 33.02 s sample (1.6 N).
    """
    plan = make_plan(hold_step(low_n=17.0, hold_s=60.0))
    run = Run.started(plan)
    trace = linear([(0.98, 0.0), (1.0, 2.0), (2.0, 32.0), (32.0, 32.0), (33.0, 2.0), (33.1, 0.0)])
    run.feed(trace, until=35.0)
    assert run.core.state is SessionState.COMPLETED
    (done,) = run.holds()
    d = done.dose
    assert (d.started_s, d.ended_s, d.wall_s) == (A(1.0), A(33.02), A(32.02))
    assert d.contact_s == A(32.0)
    assert d.integral_ns == A(994.0)
    assert d.mean_n == A(994.0 / 32.0)
    assert d.peak_n == 32.0
    assert d.in_band_s == A(31.02)
    assert d.ramp_rate_n_s == A(30.0)
    assert (d.completed, d.over_held, d.over_ceiling_s, d.paused_s) == (False, False, 0.0, 0.0)
    total = run.core.dose(35.0).total
    assert (total.holds_done, total.integral_ns, total.planned_in_band_s) == (0, A(994.0), 60.0)


def test_gap_longer_than_stale_counts_for_nothing() -> None:
    plan = make_plan(hold_step(hold_s=60.0))
    run = Run.started(plan)
    run.sample(1.0, 30.0)
    run.sample(2.0, 30.0)  # 1.0 s gap: exactly stale_s, still counted
    run.sample(3.5, 30.0)  # 1.5 s gap: not counted
    live = run.core.dose(3.5).holds[0]
    assert (live.contact_s, live.integral_ns, live.in_band_s) == (A(1.0), A(30.0), A(1.0))
    assert live.ended_s == A(3.5)
    assert not live.completed


def test_the_live_hold_is_in_the_dose() -> None:
    run = Run.started(make_plan(hold_step()))
    run.feed(linear([(0.0, 0.0), (1.0, 0.0), (1.02, 30.0)]), until=11.0)
    live = run.core.dose(11.0).holds
    assert len(live) == 1
    assert live[0].in_band_s == A(9.98)
    assert not live[0].completed
    assert run.core.dose(11.0).total.in_band_s == A(9.98)
