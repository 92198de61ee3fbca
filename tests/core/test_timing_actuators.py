"""Gun and chair steps, with and without the device present; caps; the ceiling stopping them."""

from __future__ import annotations

from devicectl.plan import ChairStep, GunStep, Limits, PauseStep
from devicectl.timing.types import (
    Actuator,
    ActuatorCommand,
    AlertKind,
    Command,
    DeviceEventKind,
    Phase,
    SessionState,
    Severity,
)
from tests.core.timing_support import A, Run, hold_step, make_plan

GUN = frozenset({Actuator.GUN})
CHAIR = frozenset({Actuator.CHAIR})
STARTED, STOPPED = DeviceEventKind.ACTUATOR_STARTED, DeviceEventKind.ACTUATOR_STOPPED


def test_gun_step_with_the_gun_present() -> None:
    run = Run.started(make_plan(GunStep(area="calf", level=3, duration_s=60.0)), GUN)
    assert run.actuator_commands() == [ActuatorCommand(0.0, Actuator.GUN, "start", level=3)]
    assert run.phases() == [(0.0, Phase.STARTING)]
    run.event(0.5, STARTED, "gun")
    run.ticks(until=30.5, step=0.5)
    assert run.core.status(30.5).countdown_s == A(30.0)
    run.ticks(until=60.0, step=0.5)
    assert run.phases()[1:] == [(0.5, Phase.RUNNING)]
    run.tick(60.5)
    assert run.phases()[-1] == (60.5, Phase.STOPPING)
    assert run.actuator_commands()[-1] == ActuatorCommand(60.5, Actuator.GUN, "stop")
    run.event(61.0, STOPPED, "gun")
    assert run.phases()[-1] == (61.0, Phase.DONE)
    assert run.core.state is SessionState.COMPLETED
    total = run.core.dose(61.0).total
    assert (total.planned_gun_s, total.gun_s, total.gun_s_by_level) == (
        60.0,
        A(60.0),
        ((3, A(60.0)),),
    )


def test_gun_step_without_the_gun_is_timed_for_a_person() -> None:
    run = Run.started(make_plan(GunStep(area="calf", level=3, duration_s=60.0)))
    assert run.phases() == [(0.0, Phase.STARTING), (0.0, Phase.RUNNING)]
    run.ticks(until=61.0, step=0.5)
    assert run.phases()[2:] == [(60.0, Phase.STOPPING), (60.0, Phase.DONE)]
    assert run.actuator_commands() == []
    assert run.core.state is SessionState.COMPLETED
    assert run.core.dose(61.0).total.gun_s == A(60.0)


def test_chair_step_with_and_without_the_chair() -> None:
    plan = make_plan(ChairStep(program="relax", duration_s=600.0))
    run = Run.started(plan, CHAIR)
    assert run.actuator_commands() == [
        ActuatorCommand(0.0, Actuator.CHAIR, "start", program="relax")
    ]
    run.event(2.0, STARTED, "chair")
    run.tick(602.0)
    assert run.actuator_commands()[-1].is_stop
    run.event(603.0, STOPPED, "chair")
    assert run.core.state is SessionState.COMPLETED
    bare = Run.started(plan)
    bare.tick(600.0)
    assert bare.actuator_commands() == []
    assert bare.core.state is SessionState.COMPLETED


def test_gun_area_cap_stops_the_step_and_skips_the_area() -> None:
    plan = make_plan(
        GunStep(area="calf", level=2, duration_s=90.0),
        GunStep(area="calf", level=4, duration_s=90.0),
        GunStep(area="calf", level=4, duration_s=30.0),
        GunStep(area="thigh", level=1, duration_s=10.0),
        limits=Limits(max_gun_area_s=120.0),
    )
    run = Run.started(plan)
    run.ticks(until=200.0, step=1.0)
    caps = run.alerts(AlertKind.GUN_AREA_CAP)
    assert [(a.t, a.step_index) for a in caps] == [(A(120.0), 1), (A(120.0), 2)]
    assert run.phases(2) == [(A(120.0), Phase.DONE)]
    dose = run.core.dose(200.0)
    assert dose.steps[1].gun_s_by_level == ((4, A(30.0)),)
    calf = dose.sites[0]
    assert (calf.label, calf.gun_s, calf.planned_gun_s) == ("calf", A(120.0), 210.0)
    assert calf.gun_s_by_level == ((2, A(90.0)), (4, A(30.0)))


def test_ceiling_during_a_running_gun_step_stops_the_gun_and_pauses() -> None:
    plan = make_plan(hold_step(), GunStep(area="calf", level=3, duration_s=60.0))
    run = Run.started(plan, GUN)
    run.command(0.0, Command.NEXT)  # skip the hold (ARMED -> next step)
    run.event(0.5, STARTED, "gun")
    run.sample(5.0, 10.0)
    run.sample(5.02, 75.0)  # above the hold step's 60 N ceiling
    run.sample(5.04, 80.0)
    alarms = run.alerts(AlertKind.CEILING)
    assert len(alarms) == 1
    assert alarms[0].severity is Severity.ALARM
    assert run.actuator_commands()[-1] == ActuatorCommand(5.02, Actuator.GUN, "stop")
    assert run.core.state is SessionState.PAUSED
    run.command(10.0, Command.RESUME)  # a person resumes: the gun is started again
    assert run.actuator_commands()[-1] == ActuatorCommand(10.0, Actuator.GUN, "start", level=3)
    assert run.phases()[-1] == (10.0, Phase.STARTING)


def test_gun_that_stops_by_itself_pauses_the_session() -> None:
    run = Run.started(make_plan(GunStep(area="calf", level=3, duration_s=60.0)), GUN)
    run.event(0.5, STARTED, "gun")
    run.event(10.0, STOPPED, "gun", "watchdog")
    assert run.alerts(AlertKind.DEVICE_ERROR)[0].device == "gun"
    assert run.core.state is SessionState.PAUSED


def test_pause_stops_the_actuator_and_resume_restarts_it_with_time_frozen() -> None:
    run = Run.started(make_plan(GunStep(area="calf", level=3, duration_s=60.0)), GUN)
    run.event(1.0, STARTED, "gun")
    run.command(21.0, Command.PAUSE)
    assert run.actuator_commands()[-1] == ActuatorCommand(21.0, Actuator.GUN, "stop")
    run.event(21.5, STOPPED, "gun")  # the stop we asked for: no alarm
    assert run.core.state is SessionState.PAUSED
    assert run.alerts() == []
    run.ticks(until=100.0, step=1.0)
    assert run.core.status(100.0).countdown_s == A(40.0)
    run.command(100.0, Command.RESUME)
    assert run.actuator_commands()[-1] == ActuatorCommand(100.0, Actuator.GUN, "start", level=3)
    run.event(101.0, STARTED, "gun")
    run.ticks(until=142.0, step=1.0)
    assert run.phase_at(Phase.STOPPING) == A(141.0)  # 20 s before the pause + 40 s after


def test_a_pause_stop_confirmed_after_a_quick_resume_is_not_a_self_stop() -> None:
    # Pause and resume in quick succession: the gun confirms the pause's stop only after the
    # resume has sent a new start. That confirmation answers our stop; it must not pause again.
    run = Run.started(make_plan(GunStep(area="calf", level=3, duration_s=60.0)), GUN)
    run.event(1.0, STARTED, "gun")
    run.command(10.0, Command.PAUSE)
    run.command(10.1, Command.RESUME)
    run.event(10.2, STOPPED, "gun")  # the pause's stop, confirmed late
    run.event(10.3, STARTED, "gun")  # the resume's start
    assert run.alerts(AlertKind.DEVICE_ERROR) == []
    assert run.core.status(10.3).state is SessionState.RUNNING
    assert run.core.status(10.3).phase is Phase.RUNNING
    run.event(20.0, STOPPED, "gun")  # and a real self-stop is still caught
    assert run.alerts(AlertKind.DEVICE_ERROR)[0].device == "gun"
    assert run.core.state is SessionState.PAUSED


def test_next_in_an_actuator_step_stops_it_and_moves_on() -> None:
    plan = make_plan(GunStep(area="calf", level=3, duration_s=60.0), hold_step())
    run = Run.started(plan, GUN)
    run.event(0.5, STARTED, "gun")
    run.command(10.0, Command.NEXT)
    assert run.phases()[-1] == (10.0, Phase.STOPPING)
    assert run.actuator_commands()[-1].is_stop
    run.event(10.5, STOPPED, "gun")
    assert run.phases()[-2:] == [(10.5, Phase.DONE), (10.5, Phase.ARMED)]
    assert run.core.dose(11.0).steps[0].gun_s == A(9.5)


def test_next_while_starting_sends_a_stop() -> None:
    run = Run.started(make_plan(GunStep(area="calf", level=3, duration_s=60.0)), GUN)
    run.command(1.0, Command.NEXT)
    assert [c.action for c in run.actuator_commands()] == ["start", "stop"]
    run.event(1.2, STARTED, "gun")  # a late confirmation of the start: stop it again
    assert run.actuator_commands()[-1] == ActuatorCommand(1.2, Actuator.GUN, "stop")
    run.event(1.5, STOPPED, "gun")
    assert run.core.state is SessionState.COMPLETED


def test_a_stop_that_is_never_confirmed_does_not_hang_the_session() -> None:
    run = Run.started(make_plan(GunStep(area="calf", level=3, duration_s=5.0)), GUN)
    run.event(0.0, STARTED, "gun")
    run.ticks(until=20.0, step=1.0)
    assert run.alerts(AlertKind.DEVICE_ERROR)[0].t == A(15.0)
    assert run.core.state is SessionState.COMPLETED


def test_session_cap_stops_a_running_gun() -> None:
    plan = make_plan(GunStep(area="calf", level=3, duration_s=600.0), limits=Limits(
        max_session_s=100.0, max_gun_area_s=1000.0))  # fmt: skip
    run = Run.started(plan, GUN)
    run.event(0.0, STARTED, "gun")
    run.ticks(until=110.0, step=1.0)
    out = [o for o in run.out if getattr(o, "t", -1) == A(100.0)]
    kinds = [type(o).__name__ for o in out]
    assert kinds[:2] == ["ActuatorCommand", "Alert"]
    assert run.actuator_commands()[-1] == ActuatorCommand(A(100.0), Actuator.GUN, "stop")
    assert run.core.state is SessionState.COMPLETED
    assert run.core.dose(110.0).total.gun_s == A(100.0)


def test_a_failed_start_ends_the_step_instead_of_hanging() -> None:
    plan = make_plan(GunStep(area="calf", level=3, duration_s=60.0), PauseStep(note="x"))
    run = Run.started(plan, GUN)
    run.event(0.5, DeviceEventKind.ERROR, "gun", "no reply")
    (alert,) = run.alerts(AlertKind.DEVICE_ERROR)
    assert "did not start" in alert.message
    assert run.phases()[-1] == (0.5, Phase.STOPPING)
    assert run.actuator_commands()[-1] == ActuatorCommand(0.5, Actuator.GUN, "stop")
    run.event(0.7, STOPPED, "gun")
    assert run.phases()[-1] == (0.7, Phase.WAITING)


def test_an_error_while_running_is_only_a_warning() -> None:
    run = Run.started(make_plan(GunStep(area="calf", level=3, duration_s=60.0)), GUN)
    run.event(0.5, STARTED, "gun")
    run.event(5.0, DeviceEventKind.ERROR, "gun", "battery low")
    (alert,) = run.alerts()
    assert (alert.kind, alert.severity, alert.message) == (
        AlertKind.DEVICE_ERROR,
        Severity.WARNING,
        "battery low",
    )
    assert run.core.state is SessionState.RUNNING
