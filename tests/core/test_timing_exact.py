"""Rules fire at their exact moment, not at the next call; the ramp rate and the integral start at
interpolated crossings; release cue reasons; pause/resume state changes; site names; stale text."""

from __future__ import annotations

import math

import pytest

from devicectl.plan import GunStep, Limits, PauseStep
from devicectl.timing.types import (
    Actuator,
    AlertKind,
    Command,
    Cue,
    CueKind,
    DeviceEventKind,
    Phase,
    PhaseChange,
    SessionState,
    StateChange,
)
from tests.core.timing_support import A, Run, hold_step, linear, make_plan, presses

ODD_HZ = 1 / 0.07  # a sample interval that does not divide 30 s, 0.5 s or any band edge


def first_sample_at_or_after(t: float, interval: float = 0.07) -> float:
    return math.ceil(t / interval - 1e-9) * interval


# --- 1. exact hold completion and caps -----------------------------------------------------------


def test_three_30s_holds_exactly_fill_a_90s_site_cap() -> None:
    limits = Limits(max_site_in_band_s=90.0, max_reps_per_site=3)
    run = Run.started(make_plan(hold_step(repeat=3, rest_s=5.0), limits=limits))
    spans = ((1.0, 35.0), (45.0, 80.0), (90.0, 125.0))
    run.feed(presses(*spans), until=130.0, hz=ODD_HZ)
    doses = [h.dose for h in run.holds()]
    assert [d.in_band_s for d in doses] == [30.0, 30.0, 30.0]  # exactly: no overshoot
    assert [d.completed for d in doses] == [True, True, True]
    # Each hold completes 30 s after its first in-band sample (20 N at a + 0.5), between samples.
    expected = [first_sample_at_or_after(a + 0.5) + 30.0 for a, _ in spans]
    releases = run.cues(CueKind.RELEASE)
    assert [c.t for c in releases] == [A(t) for t in expected]
    assert [c.reason for c in releases] == ["complete"] * 3
    assert [t for t, p in run.phases() if p is Phase.RELEASE] == [A(t) for t in expected]
    (cap,) = run.alerts(AlertKind.SITE_CAP)  # reached with the third hold, at the same moment
    assert cap.t == A(expected[2])


def test_site_cap_ends_a_hold_at_exactly_the_cap() -> None:
    limits = Limits(max_site_in_band_s=40.0)
    run = Run.started(make_plan(hold_step(repeat=2, rest_s=5.0), limits=limits))
    run.feed(presses((1.0, 35.0), (45.0, 80.0)), until=90.0, hz=ODD_HZ)
    first, second = (h.dose for h in run.holds())
    assert first.in_band_s == 30.0
    assert second.in_band_s == pytest.approx(10.0, abs=1e-9)
    assert not second.completed
    release = run.cues(CueKind.RELEASE)[1]
    assert (release.t, release.reason) == (A(first_sample_at_or_after(45.5) + 10.0), "site_cap")


def test_hold_cap_is_reached_at_exactly_start_plus_cap() -> None:
    run = Run.started(make_plan(hold_step(hold_s=60.0, max_hold_s=20.0)))
    run.feed(presses((1.0, 40.0)), until=45.0, hz=ODD_HZ)
    dose = run.holds()[0].dose
    (over,) = run.alerts(AlertKind.OVER_HELD)
    assert over.t == A(dose.started_s + 20.0)
    assert run.cues(CueKind.RELEASE)[0] == Cue(A(dose.started_s + 20.0), CueKind.RELEASE, 0,
                                               "over_held")  # fmt: skip


def test_countdowns_end_exactly_between_sparse_ticks() -> None:
    plan = make_plan(hold_step(hold_s=2.0, rest_s=3.0), PauseStep(duration_s=4.0),
                     GunStep(area="calf", level=2, duration_s=5.0))  # fmt: skip
    run = Run.started(plan)
    run.feed(presses((1.0, 4.0)), until=6.0, hz=ODD_HZ)
    ended = run.holds()[0].dose.ended_s
    run.ticks(until=30.0, step=0.7)
    assert run.cues(CueKind.REST_OVER)[0].t == A(ended + 3.0)
    assert run.phases(1) == [(A(ended + 3.0), Phase.RUNNING), (A(ended + 7.0), Phase.DONE)]
    assert run.phases(2)[-1] == (A(ended + 12.0), Phase.DONE)


def test_session_cap_ends_exactly_at_the_cap() -> None:
    plan = make_plan(hold_step(hold_s=60.0), limits=Limits(max_session_s=12.345))
    run = Run.started(plan)
    run.feed(presses((1.0, 40.0)), until=13.0, hz=ODD_HZ)
    assert run.core.state is SessionState.COMPLETED
    assert run.alerts(AlertKind.SESSION_CAP)[0].t == A(12.345)


# --- 2. ramp rate and the start of the integral ---------------------------------------------------


def test_ramp_rate_of_a_linear_ramp_reads_its_true_rate() -> None:
    # 15 N/s from 0 N at 1.0 s: 2 N (contact) at 1.1333 s, 20 N (low) at 2.3333 s.
    run = Run.started(make_plan(hold_step(ramp_rate_n_s=15.0)))
    run.feed(linear([(1.0, 0.0), (3.0, 30.0), (10.0, 30.0)]), until=10.0, hz=ODD_HZ)
    live = run.core.dose(10.0).holds[0]
    assert live.ramp_rate_n_s == pytest.approx(15.0, abs=0.1)
    assert live.ramp_rate_n_s == pytest.approx(15.0, rel=1e-9)  # exact on a linear ramp
    assert live.started_s == A(1.0 + 2.0 / 15.0)
    assert run.alerts(AlertKind.RAMP_TOO_FAST) + run.alerts(AlertKind.RAMP_TOO_SLOW) == []


def test_a_ramp_interrupted_by_a_pause_has_no_rate_and_no_feedback() -> None:
    # 10 N/s against a 10 N/s target, paused mid-ramp while the force keeps rising: the active
    # clock stood still, so any rate computed from it would be false ("too fast").
    run = Run.started(make_plan(hold_step(ramp_rate_n_s=10.0)))
    force = linear([(1.0, 0.0), (4.0, 30.0), (20.0, 30.0)])
    for i in range(0, 101):  # 0.0 .. 2.0 s at 50 Hz
        run.sample(i * 0.02, force(i * 0.02))
    run.command(2.0, Command.PAUSE)
    run.command(3.0, Command.RESUME)
    run.feed(force, until=6.0)
    live = run.core.dose(6.0).holds[0]
    assert live.ramp_rate_n_s is None
    assert live.paused_s == A(1.0)
    assert run.alerts(AlertKind.RAMP_TOO_FAST) + run.alerts(AlertKind.RAMP_TOO_SLOW) == []


def test_ramp_rate_when_contact_and_band_come_in_one_sample() -> None:
    run = Run.started(make_plan(hold_step()))
    run.sample(1.0, 0.0)
    run.sample(1.1, 30.0)  # 2 N and 20 N both crossed on this line: its slope, 300 N/s
    assert run.core.dose(1.1).holds[0].ramp_rate_n_s == A(300.0)
    assert run.core.dose(1.1).holds[0].started_s == A(1.0 + 0.1 * 2.0 / 30.0)


def test_integral_starts_at_the_interpolated_contact_crossing() -> None:
    # Up at 15 N/s to 30 N, held, down at 15 N/s. Its corners fall on samples (every 0.02 s), so
    # the samples' lines are the trace: exact. 2 N is crossed between samples (at 1.1333 s).
    run = Run.started(make_plan(hold_step()))
    trace = linear([(1.0, 0.0), (3.0, 30.0), (40.0, 30.0), (42.0, 0.0)])
    run.feed(trace, until=45.0)
    dose = run.holds()[0].dose
    slope_s = 28.0 / 15.0  # seconds from 2 N to 30 N (and back)
    assert dose.contact_s == A(2 * slope_s + 37.0)
    assert dose.integral_ns == A(2 * (2.0 + 30.0) / 2 * slope_s + 37.0 * 30.0)
    assert dose.started_s == A(1.0 + 2.0 / 15.0)
    assert dose.contact_s <= dose.wall_s


# --- 4. release cue reasons ----------------------------------------------------------------------


def test_release_reason_next_and_session_cap() -> None:
    run = Run.started(make_plan(hold_step()))
    run.feed(presses((1.0, 40.0)), until=10.0)
    run.command(10.0, Command.NEXT)
    assert run.cues(CueKind.RELEASE)[-1] == Cue(A(10.0), CueKind.RELEASE, 0, "next")

    capped = Run.started(make_plan(hold_step(), limits=Limits(max_session_s=10.0)))
    capped.feed(presses((1.0, 40.0)), until=12.0)
    assert capped.cues(CueKind.RELEASE) == [Cue(A(10.0), CueKind.RELEASE, 0, "session_cap")]
    assert capped.cues(CueKind.SESSION_DONE)[0].reason == "session_cap"
    assert capped.holds()[0].dose.in_band_s == A(10.0 - 1.5)


def test_other_cues_carry_no_release_reason() -> None:
    run = Run.started(make_plan(hold_step(repeat=2, rest_s=3.0)))
    run.feed(presses((1.0, 33.0), (40.0, 72.0)), until=80.0)
    assert {c.reason for c in run.cues(CueKind.STEP_START)} == {""}
    assert {c.reason for c in run.cues(CueKind.REST_OVER)} == {""}
    assert [c.reason for c in run.cues(CueKind.SESSION_DONE)] == ["complete"]


# --- 5. pause and resume leave a trace -----------------------------------------------------------


def state_changes(run: Run) -> list[tuple[float, SessionState, SessionState, str]]:
    return [(o.t, o.state, o.previous, o.reason) for o in run.out if isinstance(o, StateChange)]


def test_pause_and_resume_commands_emit_state_changes() -> None:
    run = Run.started(make_plan(hold_step()))
    run.command(1.0, Command.PAUSE)
    run.command(2.0, Command.PAUSE)  # already paused: no change, no output
    run.command(3.0, Command.RESUME)
    run.command(4.0, Command.STOP)
    assert state_changes(run) == [
        (1.0, SessionState.PAUSED, SessionState.RUNNING, "pause"),
        (3.0, SessionState.RUNNING, SessionState.PAUSED, "resume"),
    ]  # STOP ends the session with SessionEnded only


GUN_PLAN = make_plan(GunStep(area="calf", level=3, duration_s=60.0), hold_step())


@pytest.mark.parametrize(
    ("act", "reason"),
    [
        (lambda run: run.sample(5.0, 70.0), "ceiling"),
        (lambda run: run.event(5.0, DeviceEventKind.ACTUATOR_STOPPED, "gun"), "actuator_stopped"),
        (lambda run: run.event(5.0, DeviceEventKind.LINK_LOST, "gun"), "actuator_link_lost"),
    ],
)
def test_the_core_pausing_itself_says_why(act: object, reason: str) -> None:
    run = Run.started(GUN_PLAN, actuators=frozenset({Actuator.GUN}))
    run.event(0.1, DeviceEventKind.ACTUATOR_STARTED, "gun")
    act(run)  # type: ignore[operator]
    assert state_changes(run) == [(5.0, SessionState.PAUSED, SessionState.RUNNING, reason)]
    assert run.core.state is SessionState.PAUSED


# --- 3. sites that differ only in case and spacing are one site --------------------------------


def test_site_caps_count_spellings_of_one_site_together() -> None:
    limits = Limits(max_reps_per_site=2, max_site_in_band_s=120.0)
    plan = make_plan(hold_step(site="Upper trapezius L", rest_s=3.0),
                     hold_step(site="upper  trapezius l", repeat=2, rest_s=3.0),
                     hold_step(site="neck"), limits=limits)  # fmt: skip
    run = Run.started(plan)
    run.feed(presses((1.0, 33.0), (40.0, 72.0), (80.0, 112.0)), until=120.0)
    info = run.alerts(AlertKind.SITE_CAP)
    assert [(a.step_index, a.message) for a in info] == [
        (1, "upper  trapezius l: only 1 of 2 repetitions (site cap)")
    ]
    assert [h.dose.step_index for h in run.holds()] == [0, 1, 2]


def test_in_band_cap_counts_spellings_of_one_site_together() -> None:
    limits = Limits(max_site_in_band_s=40.0)
    plan = make_plan(hold_step(site="Calf", rest_s=3.0), hold_step(site=" calf ", rest_s=3.0),
                     hold_step(site="CALF"), limits=limits)  # fmt: skip
    run = Run.started(plan)
    run.feed(presses((1.0, 33.0), (40.0, 72.0)), until=80.0)
    assert [h.dose.in_band_s for h in run.holds()] == [30.0, pytest.approx(10.0, abs=1e-9)]
    assert run.cues(CueKind.RELEASE)[1].reason == "site_cap"
    skipped = run.alerts(AlertKind.SITE_CAP)[-1]
    assert (skipped.step_index, "step skipped" in skipped.message) == (2, True)
    assert [s.label for s in run.core.dose(80.0).sites] == ["Calf"]


# --- 6. the stale-data alert names the device ----------------------------------------------------


def test_stale_alert_names_the_device() -> None:
    run = Run.started(make_plan(hold_step()))
    run.feed(presses((1.0, 40.0)), until=5.0)
    run.tick(6.5)
    (stale,) = run.alerts(AlertKind.STALE_DATA)
    assert stale.message == "no data from tbar for 1.0 s: the hold timer is frozen"
    assert stale.device == "tbar"
    run.sample(7.0, 30.0)
    assert run.alerts(AlertKind.DATA_RESUMED)[0].message == (
        "data from tbar is back: the hold timer is running"
    )


def test_phase_changes_and_cues_never_go_back_in_time() -> None:
    run = Run.started(make_plan(hold_step(hold_s=2.0, rest_s=1.0, repeat=3)))
    run.feed(presses((1.0, 4.0), (6.0, 9.0), (11.0, 14.0)), until=20.0, hz=ODD_HZ)
    times = [o.t for o in run.out if isinstance(o, PhaseChange | Cue)]
    assert times == sorted(times)
