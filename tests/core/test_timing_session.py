"""Session commands in virtual time: PAUSE/RESUME, STOP from every state, NEXT, CONFIRM, status."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devicectl.errors import SessionError
from devicectl.plan import GunStep, PauseStep
from devicectl.timing.core import TimingCore
from devicectl.timing.types import (
    Actuator,
    ActuatorCommand,
    AlertKind,
    Command,
    CueKind,
    DeviceEventKind,
    Phase,
    SessionEnded,
    SessionState,
    Severity,
)
from tests.core.timing_support import A, Run, hold_step, linear, make_plan, presses

BOTH = frozenset({Actuator.GUN, Actuator.CHAIR})
MIXED = make_plan(
    hold_step(repeat=2), GunStep(area="calf", level=3, duration_s=60.0), PauseStep(note="stretch")
)


def test_pause_freezes_the_hold_timer_and_the_hold_cap() -> None:
    run = Run.started(make_plan(hold_step(max_hold_s=40.0)))
    trace = presses((1.0, 200.0))
    run.feed(trace, until=10.0)
    run.command(10.0, Command.PAUSE)
    assert run.core.state is SessionState.PAUSED
    run.feed(trace, until=70.0)  # samples keep coming while paused; nothing counts
    assert run.core.status(70.0).in_band_s == A(8.5)
    run.command(70.0, Command.RESUME)
    run.feed(trace, until=100.0)
    # 8.5 s + 21.5 s: the first interval after the pause is not counted either.
    assert run.phase_at(Phase.RELEASE) == A(70.02 + 21.5)
    assert run.alerts(AlertKind.OVER_HELD) == []  # 60 s paused are not hold time
    run.feed(trace, until=210.0)
    over = run.alerts(AlertKind.OVER_HELD)
    assert [a.t for a in over] == [A(1.05 + 40.0 + 60.0)]  # from the 2 N crossing at 1.05
    dose = run.holds()[0].dose
    assert dose.paused_s == A(60.0)
    assert dose.over_held


def test_pause_freezes_the_rest_countdown() -> None:
    run = Run.started(make_plan(hold_step(repeat=2)))
    trace = presses((1.0, 32.0))
    run.feed(trace, until=40.0)
    run.command(40.0, Command.PAUSE)
    run.ticks(until=100.0, step=1.0)
    assert run.core.status(100.0).countdown_s == A(22.94)
    run.command(100.0, Command.RESUME)
    run.feed(trace, until=130.0)
    assert run.phase_at(Phase.ARMED, 1) == A(122.94)


def test_commands_while_paused_or_before_start_are_refused() -> None:
    unstarted = Run(TimingCore(MIXED))
    unstarted.command(0.0, Command.NEXT)
    assert unstarted.alerts(AlertKind.REFUSED)[0].severity is Severity.INFO
    run = Run.started(MIXED)
    run.command(1.0, Command.PAUSE)
    run.command(2.0, Command.NEXT)
    assert len(run.alerts(AlertKind.REFUSED)) == 1
    assert run.phases() == [(0.0, Phase.ARMED)]


def test_start_twice_is_a_programming_error() -> None:
    run = Run.started(MIXED)
    with pytest.raises(SessionError):
        run.core.start(1.0)


def _ready(run: Run) -> None:
    return None


def _armed(run: Run) -> None:
    run.tick(1.0)


def _hold(run: Run) -> None:
    run.feed(presses((1.0, 100.0)), until=5.0)


def _rest(run: Run) -> None:
    run.feed(presses((1.0, 32.0)), until=40.0)


def _paused(run: Run) -> None:
    _hold(run)
    run.command(5.0, Command.PAUSE)


def _gun_running(run: Run) -> None:
    run.command(1.0, Command.NEXT)
    run.event(1.5, DeviceEventKind.ACTUATOR_STARTED, "gun")


def _completed(run: Run) -> None:
    run.command(1.0, Command.NEXT)
    run.command(2.0, Command.NEXT)
    run.event(2.5, DeviceEventKind.ACTUATOR_STOPPED, "gun")
    run.command(3.0, Command.CONFIRM)


def _stopped(run: Run) -> None:
    run.command(1.0, Command.STOP)


SETUPS: dict[str, Callable[[Run], None]] = {
    "ready": _ready,
    "armed": _armed,
    "hold": _hold,
    "rest": _rest,
    "paused": _paused,
    "gun-running": _gun_running,
    "completed": _completed,
    "stopped": _stopped,
}


@pytest.mark.parametrize("where", list(SETUPS))
def test_stop_works_from_every_state(where: str) -> None:
    run = Run(TimingCore(MIXED, actuators=BOTH))
    if where != "ready":
        run.out += run.core.start(0.0)
    SETUPS[where](run)
    before = run.core.state
    out = run.command(50.0, Command.STOP)
    stops = [o for o in out if isinstance(o, ActuatorCommand)]
    assert stops == [
        ActuatorCommand(50.0, Actuator.CHAIR, "stop"),
        ActuatorCommand(50.0, Actuator.GUN, "stop"),
    ]
    assert out[: len(stops)] == stops  # the stops come first
    if before in (SessionState.COMPLETED, SessionState.STOPPED):
        assert out == stops
        assert run.core.state is before
    else:
        assert out[-1] == SessionEnded(50.0, SessionState.STOPPED)
        assert run.core.state is SessionState.STOPPED
        assert run.core.finished
    # Afterwards nothing but stops can come out.
    later = run.sample(51.0, 30.0) + run.tick(60.0) + run.command(61.0, Command.RESUME)
    later += run.command(62.0, Command.NEXT)
    later += run.event(63.0, DeviceEventKind.ERROR, "gun", "boom")
    assert later == []
    if run.core.state is SessionState.STOPPED:
        assert run.core.start(64.0) == []
    late = run.event(65.0, DeviceEventKind.ACTUATOR_STARTED, "gun")
    assert late == [ActuatorCommand(65.0, Actuator.GUN, "stop")]


def test_stop_records_the_open_hold() -> None:
    run = Run.started(MIXED)
    _hold(run)
    run.command(5.0, Command.STOP)
    (done,) = run.holds()
    assert done.dose.ended_s == A(5.0)
    assert not done.dose.completed


def test_untimed_pause_waits_for_confirm() -> None:
    run = Run.started(make_plan(PauseStep(note="stretch"), PauseStep(duration_s=10.0)))
    assert run.phases() == [(0.0, Phase.WAITING)]
    run.ticks(until=100.0, step=1.0)
    assert run.phases() == [(0.0, Phase.WAITING)]
    assert run.core.status(100.0).countdown_s is None
    run.command(100.0, Command.CONFIRM)
    assert run.phases()[1:] == [(100.0, Phase.DONE), (100.0, Phase.RUNNING)]
    run.command(101.0, Command.CONFIRM)  # nothing is waiting now
    assert len(run.alerts(AlertKind.REFUSED)) == 1
    run.ticks(until=104.0, step=1.0)
    assert run.core.status(104.0).countdown_s == A(6.0)
    run.ticks(until=111.0, step=1.0)
    assert run.phases()[-1] == (110.0, Phase.DONE)
    assert run.core.state is SessionState.COMPLETED


def test_next_in_armed_moves_on_at_once() -> None:
    run = Run.started(make_plan(hold_step(repeat=3), PauseStep(note="x")))
    run.command(1.0, Command.NEXT)
    assert run.phases() == [(0.0, Phase.ARMED), (1.0, Phase.DONE), (1.0, Phase.WAITING)]


@pytest.mark.parametrize(("at", "phase"), [(1.2, Phase.RAMP), (5.0, Phase.HOLD)])
def test_next_in_ramp_or_hold_releases_then_rests_then_moves_on(at: float, phase: Phase) -> None:
    run = Run.started(make_plan(hold_step(repeat=3), PauseStep(note="x")))
    trace = presses((1.0, 10.0))
    run.feed(trace, until=at)
    assert run.phases()[-1][1] is phase
    run.command(at, Command.NEXT)
    assert run.phases()[-1] == (at, Phase.RELEASE)
    assert run.cues(CueKind.RELEASE)[0].t == at
    run.feed(trace, until=50.0)
    assert run.phase_at(Phase.REST) == A(10.94)
    assert run.phases()[-2:] == [(A(40.94), Phase.DONE), (A(40.94), Phase.WAITING)]
    assert not run.holds()[0].dose.completed


def test_next_in_release_skips_the_remaining_repetitions() -> None:
    run = Run.started(make_plan(hold_step(repeat=3, hold_s=5.0), PauseStep(note="x")))
    trace = presses((1.0, 10.0))
    run.feed(trace, until=8.0)
    assert run.phases()[-1] == (A(6.5), Phase.RELEASE)
    run.command(8.0, Command.NEXT)
    run.feed(trace, until=50.0)
    assert run.phases()[-2:] == [(A(40.94), Phase.DONE), (A(40.94), Phase.WAITING)]


def test_next_after_rest_elapsed_but_still_pressed_moves_on_after_release() -> None:
    run = Run.started(make_plan(hold_step(repeat=3), PauseStep(note="x")))
    trace = presses((1.0, 32.0), (50.0, 80.0))
    run.feed(trace, until=70.0)
    assert run.phases()[-1][1] is Phase.REST
    run.command(70.0, Command.NEXT)
    assert run.alerts(AlertKind.REFUSED) == []
    run.feed(trace, until=85.0)
    assert run.phases()[-2:] == [(A(80.94), Phase.DONE), (A(80.94), Phase.WAITING)]


def test_next_in_a_pause_step_moves_on() -> None:
    run = Run.started(make_plan(PauseStep(duration_s=30.0), PauseStep(note="x")))
    run.command(3.0, Command.NEXT)
    assert run.phases()[-2:] == [(3.0, Phase.DONE), (3.0, Phase.WAITING)]


def test_device_error_is_a_warning() -> None:
    run = Run.started(MIXED)
    run.event(1.0, DeviceEventKind.ERROR, "tbar", "checksum errors")
    (alert,) = run.alerts()
    assert (alert.kind, alert.severity, alert.device) == (
        AlertKind.DEVICE_ERROR,
        Severity.WARNING,
        "tbar",
    )


def test_status_fills_every_field() -> None:
    run = Run.started(make_plan(hold_step(repeat=2)), at=10.0)
    run.feed(linear([(0.0, 0.0), (11.0, 0.0), (11.5, 20.0), (12.0, 30.0)]), until=20.0)
    status = run.core.status(20.0)
    assert status.state is SessionState.RUNNING
    assert (status.step_index, status.step_count, status.step_kind) == (0, 1, "hold")
    assert (status.label, status.rep, status.repeats, status.phase) == ("trap", 1, 2, Phase.HOLD)
    assert status.force_n == 30.0
    assert (status.band_n, status.ceiling_n, status.hold_s) == ((20.0, 40.0), 60.0, 30.0)
    assert status.in_band_s == A(8.5)
    assert status.countdown_s is None
    assert not status.frozen
    assert status.elapsed_s == A(10.0)
    assert run.core.status(20.01).in_band_s == A(8.51)  # the held sample keeps counting


def test_status_before_start() -> None:
    status = TimingCore(MIXED).status(5.0)
    assert (status.state, status.phase, status.elapsed_s) == (
        SessionState.READY,
        Phase.WAITING,
        0.0,
    )
    assert status.repeats == 2
    assert status.band_n == (20.0, 40.0)


def test_samples_older_than_the_last_are_ignored() -> None:
    run = Run.started(make_plan(hold_step()))
    run.sample(1.0, 30.0)
    assert run.sample(0.5, 0.0) == []
    assert run.core.status(1.0).force_n == 30.0
