"""Hold steps in virtual time: phases, the hold timer, grace, caps, rest, ceiling, ramp feedback."""

from __future__ import annotations

import itertools

import pytest

from devicectl.plan import Limits
from devicectl.timing.types import (
    AlertKind,
    Command,
    Cue,
    CueKind,
    DeviceEventKind,
    Phase,
    PhaseChange,
    SessionEnded,
    SessionState,
    Severity,
)
from tests.core.timing_support import A, Run, hold_step, linear, make_plan, presses


def test_full_cycle_has_exact_phase_times() -> None:
    run = Run.started(make_plan(hold_step(repeat=2)))
    run.feed(presses((1.0, 32.0), (70.0, 101.0)), until=110.0)
    assert run.phases() == [
        (0.0, Phase.ARMED),
        (A(1.06), Phase.RAMP),  # first sample at or above 2 N
        (A(1.5), Phase.HOLD),  # first sample at 20 N
        (A(31.5), Phase.RELEASE),  # 30 s in band
        (A(32.94), Phase.REST),  # first sample below 2 N
        (A(62.94), Phase.ARMED),  # 30 s later, force already released
        (A(70.06), Phase.RAMP),
        (A(70.5), Phase.HOLD),
        (A(100.5), Phase.RELEASE),
        (A(101.94), Phase.DONE),  # the very last hold: no rest
    ]
    assert [c.t for c in run.cues(CueKind.RELEASE)] == [A(31.5), A(100.5)]
    assert [c.t for c in run.cues(CueKind.REST_OVER)] == [A(62.94)]
    assert run.cues(CueKind.SESSION_DONE)[0].t == A(101.94)
    assert run.out[-1] == SessionEnded(A(101.94), SessionState.COMPLETED)
    assert run.core.state is SessionState.COMPLETED
    assert run.core.finished
    first, second = (h.dose for h in run.holds())
    # The hold starts where the force crossed 2 N (1.05, interpolated), before the 1.06 sample.
    assert (first.rep, first.started_s, first.ended_s) == (1, A(1.05), A(32.94))
    assert first.in_band_s == A(30.0)
    assert first.completed
    assert not first.over_held
    assert first.ramp_rate_n_s == A(40.0)  # the trace's true slope: 20 N in 0.5 s
    assert (second.rep, second.completed) == (2, True)
    assert run.alerts() == []


def test_phase_changes_carry_the_previous_phase() -> None:
    run = Run.started(make_plan(hold_step(repeat=2)))
    run.feed(presses((1.0, 32.0), (70.0, 101.0)), until=110.0)
    changes = [o for o in run.out if isinstance(o, PhaseChange)]
    assert changes[0].previous is None
    for before, after in itertools.pairwise(changes):
        assert after.previous is before.phase


def test_dip_shorter_than_grace_keeps_the_hold_and_does_not_count() -> None:
    run = Run.started(make_plan(hold_step()))
    dip = linear([(0.0, 0.0), (1.0, 0.0), (1.5, 20.0), (2.0, 30.0), (10.0, 30.0), (10.0, 10.0),
                  (11.5, 10.0), (11.5, 30.0), (40.0, 30.0), (41.0, 0.0)])  # fmt: skip
    run.feed(dip, until=45.0)
    assert [p for _, p in run.phases()].count(Phase.HOLD) == 1
    assert run.alerts(AlertKind.HOLD_BROKEN) == []
    # The dip's 1.5 s (samples 10.02 .. 11.5 below the band) did not count.
    assert run.phase_at(Phase.RELEASE) == A(31.5 + 1.5)
    assert run.holds()[0].dose.in_band_s == A(30.0)


def test_dip_longer_than_grace_breaks_the_hold_and_keeps_seconds() -> None:
    run = Run.started(make_plan(hold_step()))
    dip = linear([(0.0, 0.0), (1.0, 0.0), (1.5, 20.0), (2.0, 30.0), (10.0, 30.0), (10.0, 10.0),
                  (14.0, 10.0), (14.0, 30.0), (40.0, 30.0), (41.0, 0.0)])  # fmt: skip
    run.feed(dip, until=45.0)
    broken = run.alerts(AlertKind.HOLD_BROKEN)
    # A step in the trace at t takes effect at the next sample: below the band from 10.02 on.
    assert [a.t for a in broken] == [A(12.02)]  # grace (2 s) after the first sample below
    assert broken[0].severity is Severity.WARNING
    assert [(t, p) for t, p in run.phases() if 11 < t < 15] == [
        (A(12.02), Phase.RAMP),
        (A(14.02), Phase.HOLD),
    ]
    # 8.52 s before the dip were kept; 21.48 more from 14.02.
    assert run.phase_at(Phase.RELEASE) == A(35.5)
    assert run.holds()[0].dose.ramp_rate_n_s == A(40.0)  # measured once, at first entry


def test_force_above_the_band_does_not_count() -> None:
    run = Run.started(make_plan(hold_step()))
    over = linear([(0.0, 0.0), (1.0, 0.0), (1.5, 20.0), (2.0, 30.0), (10.0, 30.0), (10.0, 45.0),
                   (15.0, 45.0), (15.0, 30.0), (40.0, 30.0), (41.0, 0.0)])  # fmt: skip
    run.feed(over, until=45.0)
    assert run.phase_at(Phase.RELEASE) == A(36.5)
    assert run.alerts() == []  # 45 N is above the band, below the 60 N ceiling


def test_jump_past_the_band_enters_hold() -> None:
    run = Run.started(make_plan(hold_step()))
    run.feed(linear([(0.0, 0.0), (1.0, 0.0), (1.02, 45.0), (3.0, 45.0), (3.0, 30.0)]), until=5.0)
    assert [p for _, p in run.phases()] == [Phase.ARMED, Phase.RAMP, Phase.HOLD]


def test_lift_off_past_grace_ends_the_hold_incomplete_then_rest() -> None:
    run = Run.started(make_plan(hold_step(repeat=2)))
    run.feed(linear([(0.0, 0.0), (1.0, 0.0), (1.5, 20.0), (2.0, 30.0), (10.0, 30.0),
                     (10.0, 0.0)]), until=15.0)  # fmt: skip
    assert run.alerts(AlertKind.HOLD_BROKEN)[0].t == A(12.02)
    assert run.phases()[-1] == (A(12.02), Phase.REST)
    dose = run.holds()[0].dose
    assert dose.ended_s == A(10.02)
    assert not dose.completed
    assert dose.in_band_s == A(8.52)


def test_false_start_goes_back_to_armed_without_a_record() -> None:
    run = Run.started(make_plan(hold_step()))
    run.feed(linear([(0.0, 0.0), (1.0, 0.0), (1.2, 10.0), (1.4, 0.0)]), until=3.0)
    assert [p for _, p in run.phases()] == [Phase.ARMED, Phase.RAMP, Phase.ARMED]
    assert run.holds() == []


def test_over_held_cap_in_ramp_alarms_once_and_cues_release() -> None:
    run = Run.started(make_plan(hold_step(max_hold_s=20.0)))
    run.feed(linear([(0.0, 0.0), (1.0, 0.0), (1.5, 10.0), (40.0, 10.0), (41.0, 0.0)]), until=45.0)
    over = run.alerts(AlertKind.OVER_HELD)
    # Contact (2 N) at the 1.1 s sample; the cap is wall time from contact.
    assert [(a.t, a.severity) for a in over] == [(A(1.1 + 20.0), Severity.ALARM)]
    assert run.phase_at(Phase.RELEASE) == A(21.1)
    assert run.cues(CueKind.RELEASE)[0].t == A(21.1)
    dose = run.holds()[0].dose
    assert dose.over_held
    assert not dose.completed


def test_over_held_cap_while_not_releasing_alarms_without_second_cue() -> None:
    run = Run.started(make_plan(hold_step(hold_s=10.0, max_hold_s=20.0)))
    run.feed(presses((1.0, 40.0)), until=45.0)
    assert run.phase_at(Phase.RELEASE) == A(11.5)
    assert [a.t for a in run.alerts(AlertKind.OVER_HELD)] == [A(21.05)]  # 2 N crossed at 1.05
    assert len(run.cues(CueKind.RELEASE)) == 1
    dose = run.holds()[0].dose
    assert dose.completed
    assert dose.over_held


def test_over_held_cap_fires_at_its_exact_time_between_ticks() -> None:
    run = Run.started(make_plan(hold_step(max_hold_s=20.0), limits=Limits(stale_s=100.0)))
    run.feed(presses((1.0, 100.0)), until=2.0)
    run.ticks(until=25.0, step=0.5)
    # Found by the 21.5 tick, stamped at the moment it was reached: 20 s after the 1.05 crossing.
    assert run.alerts(AlertKind.OVER_HELD)[0].t == A(21.05)
    assert run.cues(CueKind.RELEASE)[0] == Cue(A(21.05), CueKind.RELEASE, 0, "over_held")


def test_next_during_rest_is_refused_and_rest_is_not_shortened() -> None:
    run = Run.started(make_plan(hold_step(repeat=2)))
    run.feed(presses((1.0, 32.0)), until=40.0)
    assert run.phases()[-1] == (A(32.94), Phase.REST)
    run.command(40.0, Command.NEXT)
    refused = run.alerts(AlertKind.REFUSED)
    assert len(refused) == 1
    assert "22.9 s left" in refused[0].message
    run.feed(presses((1.0, 32.0)), until=70.0)
    assert run.phase_at(Phase.ARMED, 1) == A(62.94)
    assert run.core.status(62.94).rep == 2


def test_pressure_during_rest_is_flagged_once_per_press_and_does_not_count() -> None:
    run = Run.started(make_plan(hold_step(repeat=2)))
    trace = presses((1.0, 32.0), (40.0, 45.0), (50.0, 70.0))
    run.feed(trace, until=80.0)
    flagged = run.alerts(AlertKind.PRESSURE_DURING_REST)
    assert [a.t for a in flagged] == [A(40.06), A(50.06)]
    assert all(a.severity is Severity.WARNING for a in flagged)
    # Rest elapsed at 62.94 with the force still on: REST_OVER, then wait for the release.
    assert run.cues(CueKind.REST_OVER)[0].t == A(62.94)
    assert run.phase_at(Phase.ARMED, 1) == A(70.94)
    assert len(run.holds()) == 1  # the presses during rest recorded nothing


def test_rest_after_the_last_hold_of_a_step_when_more_steps_follow() -> None:
    run = Run.started(make_plan(hold_step(), hold_step(site="neck")))
    run.feed(presses((1.0, 32.0)), until=70.0)
    assert [(t, p) for t, p in run.phases(0)][-2:] == [
        (A(32.94), Phase.REST),
        (A(62.94), Phase.DONE),
    ]
    assert run.phases(1) == [(A(62.94), Phase.ARMED)]
    assert [c.step_index for c in run.cues(CueKind.STEP_START)] == [0, 1]


def test_ceiling_alarm_once_per_excursion_and_time_recorded() -> None:
    run = Run.started(make_plan(hold_step(hold_s=60.0)))
    trace = linear([(0.0, 0.0), (1.0, 0.0), (1.5, 20.0), (2.0, 30.0), (5.0, 30.0), (5.0, 70.0),
                    (7.0, 70.0), (7.0, 65.0), (8.0, 65.0), (8.0, 30.0), (10.0, 30.0), (10.0, 61.0),
                    (11.0, 61.0), (11.0, 30.0), (12.0, 30.0), (13.0, 0.0)])  # fmt: skip
    run.feed(trace, until=15.0)
    alarms = run.alerts(AlertKind.CEILING)
    assert [(a.t, a.severity) for a in alarms] == [
        (A(5.02), Severity.ALARM),
        (A(10.02), Severity.ALARM),
    ]
    assert run.holds()[0].dose.over_ceiling_s == A(3.0 + 1.0)
    assert run.holds()[0].dose.peak_n == A(70.0)


@pytest.mark.parametrize(
    ("ramp_s", "expected"),
    [(0.2, AlertKind.RAMP_TOO_FAST), (2.0, AlertKind.RAMP_TOO_SLOW), (0.9, None)],
)
def test_ramp_rate_feedback(ramp_s: float, expected: AlertKind | None) -> None:
    # Target 20 N/s: contact (2 N) to 20 N is 18 N, so 0.9 s is on target.
    run = Run.started(make_plan(hold_step(ramp_rate_n_s=20.0)))
    run.feed(linear([(0.0, 0.0), (1.0, 2.0), (1.0 + ramp_s, 20.0), (9.0, 30.0)]), until=10.0)
    feedback = run.alerts(AlertKind.RAMP_TOO_FAST) + run.alerts(AlertKind.RAMP_TOO_SLOW)
    assert [a.kind for a in feedback] == ([expected] if expected else [])
    assert run.holds() == []
    assert run.core.dose(10.0).holds[0].ramp_rate_n_s == A(18.0 / ramp_s)


def test_no_ramp_feedback_without_a_target() -> None:
    run = Run.started(make_plan(hold_step()))
    run.feed(linear([(0.0, 0.0), (1.0, 2.0), (1.02, 30.0)]), until=3.0)
    assert run.alerts() == []


def test_site_in_band_cap_ends_the_hold_and_skips_the_site() -> None:
    limits = Limits(max_site_in_band_s=40.0)
    plan = make_plan(hold_step(repeat=3), hold_step(), hold_step(site="neck"), limits=limits)
    run = Run.started(plan)
    run.feed(presses((1.0, 32.0), (70.0, 90.0)), until=130.0)
    cap = run.alerts(AlertKind.SITE_CAP)
    assert cap[0].t == A(80.5)  # 30 s + 10 s in band on "trap"
    assert run.cues(CueKind.RELEASE)[1].t == A(80.5)
    assert run.holds()[1].dose.in_band_s == A(10.0)
    assert run.holds()[1].dose.completed is False
    # Rest, then step 1 (same site) is skipped with SITE_CAP, and step 2 begins.
    assert cap[1].step_index == 1
    assert cap[1].t == A(120.94)
    assert run.phases(1) == [(A(120.94), Phase.DONE)]
    assert run.phases(2) == [(A(120.94), Phase.ARMED)]


def test_repetitions_per_site_count_every_step_on_the_site() -> None:
    plan = make_plan(hold_step(repeat=2, rest_s=5.0), hold_step(repeat=2, rest_s=5.0),
                     hold_step(rest_s=5.0), hold_step(site="neck"))  # fmt: skip
    run = Run.started(plan)
    run.feed(presses((1.0, 32.0), (40.0, 71.0), (80.0, 111.0), (120.0, 150.0)), until=160.0)
    infos = run.alerts(AlertKind.SITE_CAP)
    assert [(a.step_index, a.severity) for a in infos] == [
        (1, Severity.INFO),
        (2, Severity.WARNING),
    ]
    # Step 1 runs one repetition (3 - 2 used), step 2 is skipped, "neck" is not affected.
    assert [h.dose.step_index for h in run.holds()] == [0, 0, 1, 3]
    assert run.core.status(160.0).repeats == 1


def test_session_cap_completes_the_session() -> None:
    plan = make_plan(hold_step(repeat=3, rest_s=5.0), limits=Limits(max_session_s=50.0))
    run = Run.started(plan)
    run.feed(presses((1.0, 32.0), (40.0, 80.0)), until=60.0)
    cap = run.alerts(AlertKind.SESSION_CAP)
    assert [a.t for a in cap] == [A(50.0)]
    assert run.core.state is SessionState.COMPLETED
    assert run.out[-1] == SessionEnded(A(50.0), SessionState.COMPLETED)
    second = run.holds()[1].dose  # the open hold is recorded, incomplete
    assert (second.ended_s, second.completed) == (A(50.0), False)
    assert run.phases()[-1] == (A(50.0), Phase.DONE)


def test_stale_data_freezes_the_hold_timer_and_resumes() -> None:
    run = Run.started(make_plan(hold_step()))
    trace = presses((1.0, 40.0))
    run.feed(trace, until=10.0)
    run.ticks(until=13.0, step=0.1)  # no samples from 10.0 to 13.0
    stale = run.alerts(AlertKind.STALE_DATA)
    assert [(a.t, a.device) for a in stale] == [(A(11.1), "tbar")]
    assert run.core.status(12.0).frozen
    frozen_at = run.core.status(11.5).in_band_s
    assert run.core.status(12.9).in_band_s == A(frozen_at) == A(8.5)
    run.feed(trace, until=45.0)
    assert [a.t for a in run.alerts(AlertKind.DATA_RESUMED)] == [A(13.02)]
    assert not run.core.status(14.0).frozen
    # 8.5 s before the gap; the gap (10.0 .. 13.02) is not counted; 21.5 s more from 13.02.
    assert run.phase_at(Phase.RELEASE) == A(34.52)


def test_stale_found_by_a_late_sample_without_ticks() -> None:
    run = Run.started(make_plan(hold_step()))
    trace = presses((1.0, 40.0))
    run.feed(trace, until=10.0)
    run.sample(12.0, 30.0)
    kinds = [a.kind for a in run.alerts()]
    assert kinds == [AlertKind.STALE_DATA, AlertKind.DATA_RESUMED]
    assert run.core.status(12.0).in_band_s == A(8.5)


def test_stale_before_any_sample_is_measured_from_step_start() -> None:
    run = Run.started(make_plan(hold_step()), at=100.0)
    run.ticks(until=101.0, step=0.5)
    assert run.alerts() == []
    run.ticks(until=102.0, step=0.5)
    assert [a.t for a in run.alerts(AlertKind.STALE_DATA)] == [A(101.5)]


def test_a_short_outage_adds_no_unmeasured_time_to_the_hold() -> None:
    # A link back within stale_s of the last sample: the interval across the outage was never
    # measured, so it counts for nothing (as one across a pause does).
    run = Run.started(make_plan(hold_step()))
    trace = presses((1.0, 40.0))
    run.feed(trace, until=10.0)
    before = run.core.status(10.0).in_band_s
    run.event(10.3, DeviceEventKind.LINK_LOST, "tbar", "dropped")
    run.event(10.6, DeviceEventKind.LINK_RESTORED, "tbar")
    run.sample(10.7, 30.0)  # the first sample after the outage
    assert run.core.status(10.7).in_band_s == A(before)
    run.sample(10.72, 30.0)
    assert run.core.status(10.72).in_band_s == A(before + 0.02)


def test_link_lost_freezes_like_stale_data() -> None:
    run = Run.started(make_plan(hold_step()))
    trace = presses((1.0, 40.0))
    run.feed(trace, until=10.0)
    run.event(10.0, DeviceEventKind.LINK_LOST, "tbar", "BLE disconnected")
    lost = run.alerts(AlertKind.STALE_DATA)
    assert len(lost) == 1
    assert "BLE disconnected" in lost[0].message
    run.feed(trace, until=12.0)  # samples while the link is reported lost are not counted
    assert run.core.status(12.0).frozen
    assert run.core.status(12.0).in_band_s == A(8.5)
    run.event(12.0, DeviceEventKind.LINK_RESTORED, "tbar")
    assert len(run.alerts(AlertKind.DATA_RESUMED)) == 1
    run.feed(trace, until=45.0)
    assert run.phase_at(Phase.RELEASE) == A(12.0 + 21.5)
