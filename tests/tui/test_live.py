"""The live screen and app under Pilot: a real session runner, a real records db, and a sensor
whose samples the test pushes, on a clock the test moves. Phases are therefore deterministic: the
runner ticks at 20 Hz of real time, but the core only sees time pass when the test says so.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Digits

from devicectl.plan import GunStep, HoldStep, Limits, PauseStep, Plan
from devicectl.records import DeviceRecord, Records
from devicectl.session import ActuatorPort, SessionResult, SessionRunner, SessionSink
from devicectl.timing.types import Actuator, ActuatorCommand, Phase, SessionState, Status
from devicectl.units import ForceUnit
from drivers.force import DeviceInfo, ForceSample, ForceSensor, LinkListener
from tests.tui.support import wait_until
from tui.app import LiveApp
from tui.chart import ForceChart
from tui.live import FeedbackModal, LiveScreen, QuitModal
from tui.widgets import (
    AlertLog,
    BandGauge,
    DevicesPanel,
    DoseLine,
    ForceDigits,
    HoldPanel,
    StepsPanel,
)

START_T = 1000.0  # the fake clock's start: any value; far from 0 so no time is mistaken for none
STEP_S = 0.1  # the default spacing of pushed samples (10 Hz): plenty for the core's rules


class FakeClock:
    def __init__(self) -> None:
        self.t = START_T

    def __call__(self) -> float:
        return self.t


class QueueSensor(ForceSensor):
    """Yields the samples the test pushes, with the times they were pushed at."""

    def __init__(self, clock: FakeClock) -> None:
        self.queue: asyncio.Queue[ForceSample] = asyncio.Queue()
        self.clock = clock
        self.tared = 0
        self.listener: LinkListener | None = None
        self._info = DeviceInfo("scripted", "test", simulated=True, battery="80%")

    async def connect(self) -> DeviceInfo:
        return self._info

    async def samples(self) -> AsyncIterator[ForceSample]:
        while True:
            sample = await self.queue.get()
            # The clock reaches a sample's time when it is delivered, as a real sample's time is
            # its arrival: the runner's heartbeat never sees a time ahead of the samples it has.
            self.clock.t = max(self.clock.t, sample.t)
            yield sample

    async def tare(self) -> None:
        self.tared += 1

    async def close(self) -> None:
        return None

    @property
    def info(self) -> DeviceInfo | None:
        return self._info

    @property
    def device(self) -> DeviceInfo:
        return self._info

    def watch_link(self, listener: LinkListener) -> None:
        self.listener = listener


class FakeGun:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.started = asyncio.Event()

    async def execute(self, command: ActuatorCommand) -> None:
        self.calls.append(command.action)
        if not command.is_stop:
            self.started.set()

    async def stop(self) -> None:
        self.calls.append("stop()")


@dataclass
class FakeHands:
    calls: list[str] = field(default_factory=list)
    manual: bool = False

    def press(self) -> None:
        self.calls.append("press")
        self.manual = True

    def release(self) -> None:
        self.calls.append("release")

    def automatic(self) -> None:
        self.calls.append("automatic")
        self.manual = False


class CountingApp(LiveApp):
    """The live app with the terminal bell counted instead of rung."""

    bells = 0

    def bell(self) -> None:
        self.bells += 1


@dataclass
class Rig:
    app: CountingApp
    sensor: QueueSensor
    clock: FakeClock
    records: Records
    pushed_t: float = 0.0  # the last queued sample's time

    def push(self, force_n: float, dt: float = STEP_S) -> None:
        """Queue one sample taken ``dt`` after the last one (or after the clock, if the test
        moved it further); the clock reaches its time when it is delivered."""
        self.pushed_t = max(self.pushed_t, self.clock.t) + dt
        self.sensor.queue.put_nowait(ForceSample(self.pushed_t, force_n))

    def press_for(self, force_n: float, seconds: float, dt: float = STEP_S) -> None:
        for _ in range(round(seconds / dt)):
            self.push(force_n, dt)

    @property
    def status(self) -> Status:
        status = self.app.sink.latest
        assert status is not None
        return status

    @property
    def screen(self) -> LiveScreen:
        return self.app.live

    def shown(self, widget: type[Widget]) -> str:
        """What a widget shows now, as plain text."""
        return str(self.screen.query_one(widget).render())

    def events(self) -> list[dict[str, Any]]:
        """The session's recorded events (written out first: the writer batches)."""
        if self.app.runner is not None and self.app.running:
            self.app.runner.writer.flush()
        return self.records.events(self.records.sessions()[0].id)

    def alert_lines(self) -> list[str]:
        return [line for line, _ in self.screen.query_one(AlertLog).lines_written]


def hold(site: str = "calf", **kw: Any) -> HoldStep:
    values: dict[str, Any] = {"low_n": 20, "high_n": 40, "ceiling_n": 60, "hold_s": 1.0}
    values |= {"rest_s": 1.0, "repeat": 1, "grace_s": 0.3} | kw
    return HoldStep(site, **values)


def plan_of(*steps: HoldStep | PauseStep | GunStep, session_s: float | None = None) -> Plan:
    return Plan("test plan", ForceUnit.N, steps, Limits(contact_n=2.0, max_session_s=session_s))


def build_rig(
    plan: Plan,
    records: Records,
    *,
    gun: FakeGun | None = None,
    hands: FakeHands | None = None,
    linger_s: float | None = None,
) -> Rig:
    """A live app on ``plan`` whose runner reads a :class:`QueueSensor` on a :class:`FakeClock`
    and records into ``records``."""
    clock = FakeClock()
    sensor = QueueSensor(clock)
    actuators: dict[Actuator, ActuatorPort] = {Actuator.GUN: gun} if gun else {}

    def make_runner(sink: SessionSink) -> SessionRunner:
        writer = records.begin(
            plan_name=plan.name,
            plan_source=plan.source,
            plan_text="",
            devices=[DeviceRecord("tbar", "scripted", "scripted", simulated=True)],
        )
        return SessionRunner(plan, sensor, writer, sink, actuators=actuators, clock=clock)

    app = CountingApp(plan, make_runner, [sensor.device], hands, linger_s=linger_s)
    return Rig(app, sensor, clock, records)


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    opened: list[Records] = []

    def make(plan: Plan, **kw: Any) -> Rig:
        records = Records.open(tmp_path / "s.db")
        opened.append(records)
        return build_rig(plan, records, **kw)

    yield make
    for records in opened:
        records.close()


async def started(rig: Rig, pilot: Pilot[Any]) -> None:
    """Wait until the session runs and the screen has shown its first status."""
    await wait_until(pilot, lambda: rig.app.sink.latest is not None)
    await wait_until(pilot, lambda: rig.screen.query_one(HoldPanel).status is not None)


async def showing(rig: Rig, pilot: Pilot[Any], phase: Phase) -> None:
    """Wait until the hold panel shows a status in ``phase``."""

    def shown() -> bool:
        status = rig.screen.query_one(HoldPanel).status
        return status is not None and status.phase is phase

    await wait_until(pilot, shown)


async def ended(rig: Rig, pilot: Pilot[Any]) -> SessionResult:
    await wait_until(pilot, lambda: rig.app.result is not None)
    assert rig.app.result is not None
    return rig.app.result


# -- phases and what the screen shows ---------------------------------------------------------


async def test_every_phase_is_shown_with_its_countdown_and_the_hold_as_dose_progress(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(plan_of(PauseStep(duration_s=1.0, note="get ready"), hold(repeat=2)))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        await showing(rig, pilot, Phase.RUNNING)
        assert "PAUSE" in rig.shown(HoldPanel)
        assert "s left" in rig.shown(HoldPanel)
        assert "▶ 1. pause: get ready" in rig.shown(StepsPanel)
        rig.press_for(0.0, 1.2)
        await showing(rig, pilot, Phase.ARMED)
        assert "rep 1 of 2 · calf" in rig.shown(HoldPanel)
        assert "✓ 1. pause" in rig.shown(StepsPanel)
        rig.push(10.0)
        await showing(rig, pilot, Phase.RAMP)
        rig.press_for(30.0, 0.5)
        await showing(rig, pilot, Phase.HOLD)
        assert "dose" in rig.shown(HoldPanel)
        await wait_until(pilot, lambda: "0.4/1 s" in rig.shown(HoldPanel))
        rig.press_for(30.0, 0.6)
        await showing(rig, pilot, Phase.RELEASE)
        assert "RELEASE NOW" in rig.shown(HoldPanel)
        rig.push(0.0)
        await showing(rig, pilot, Phase.REST)
        assert "REST" in rig.shown(HoldPanel)
        assert "s left" in rig.shown(HoldPanel)
        # The chart got the hold's start and end marks, and the band while the step lasts.
        chart = rig.screen.query_one(ForceChart)
        await wait_until(pilot, lambda: len(chart._marks) == 2)
        assert [m.kind for m in chart._marks] == ["start", "end"]
        assert chart._bands[-1].low_n == 20
        assert chart._bands[-1].t1_s is None
        # The release cue rang the bell.
        assert rig.app.bells >= 1


async def test_the_digits_are_coloured_under_in_and_over_the_band_and_the_ceiling_alarms(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(plan_of(hold(hold_s=30.0)))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        digits = rig.screen.query_one(ForceDigits)
        for force, cls in ((10.0, "-under"), (30.0, "-in-band"), (50.0, "-over")):
            rig.push(force)
            await wait_until(pilot, lambda cls=cls: digits.has_class(cls))  # type: ignore[misc]
            assert not digits.has_class("-ceiling")
        assert rig.app.bells == 0
        rig.push(70.0)
        await wait_until(pilot, lambda: digits.has_class("-ceiling"))
        assert digits.has_class("-over")
        await wait_until(pilot, lambda: any("ALARM" in line for line in rig.alert_lines()))
        severities = [sev for _, sev in rig.screen.query_one(AlertLog).lines_written]
        assert "alarm" in severities
        assert rig.app.bells >= 1
        assert rig.screen.query_one(ForceDigits).query_one(Digits).value == "70.0"


async def test_the_gauge_shows_the_band_the_ceiling_and_the_force(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(plan_of(hold(hold_s=30.0)))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        rig.push(30.0)
        gauge = rig.screen.query_one(BandGauge)
        await wait_until(pilot, lambda: gauge.force_n == 30.0)
        shown = rig.shown(BandGauge)
        assert "┃" in shown
        assert "█" in shown
        assert "max 60" in shown


# -- keys -----------------------------------------------------------------------------------


async def test_space_confirms_an_untimed_pause(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(plan_of(PauseStep(note="lie down"), hold()))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        await showing(rig, pilot, Phase.WAITING)
        assert "WAITING: space continues" in rig.shown(HoldPanel)
        await pilot.press("space")
        await showing(rig, pilot, Phase.ARMED)
        assert "command.confirm" in [e["kind"] for e in rig.events()]


async def test_p_pauses_and_resumes(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(plan_of(hold()))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        await pilot.press("p")
        await wait_until(pilot, lambda: "PAUSED" in rig.shown(HoldPanel))
        assert rig.status.state is SessionState.PAUSED
        await pilot.press("p")
        await wait_until(pilot, lambda: rig.status.state is SessionState.RUNNING)
        kinds = [e["kind"] for e in rig.events()]
        assert kinds.index("command.pause") < kinds.index("command.resume")


async def test_s_stops_every_actuator_and_the_result_is_stopped(
    make_rig: Callable[..., Rig],
) -> None:
    gun = FakeGun()
    rig = make_rig(plan_of(GunStep("quads", level=3, duration_s=30.0), session_s=900), gun=gun)
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        await wait_until(pilot, gun.started.is_set)
        await pilot.press("s")
        result = await ended(rig, pilot)
        assert result.status == "stopped"
        assert "stop" in gun.calls
        assert gun.calls[-1] == "stop()"
        # The end stays on screen (no linger in this test) until a key leaves.
        banner = rig.screen.query_one("#banner")
        await wait_until(pilot, lambda: banner.has_class("-shown"))
        assert "STOPPED" in str(banner.render())
        await pilot.press("q")
    assert rig.app.return_value is result
    stop = next(e for e in rig.events() if e["kind"] == "command.stop")
    assert stop["data"] == {"reason": "stop key"}


async def test_s_stops_the_session_from_inside_a_modal(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(plan_of(hold()))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(rig.app.screen, FeedbackModal))
        await pilot.press("s")
        result = await ended(rig, pilot)
        assert result.status == "stopped"


async def test_n_ends_the_step_early(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(plan_of(PauseStep(duration_s=30.0), hold()))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        await showing(rig, pilot, Phase.RUNNING)
        await pilot.press("n")
        await showing(rig, pilot, Phase.ARMED)
        assert rig.status.step_index == 1
        assert "command.next" in [e["kind"] for e in rig.events()]


async def test_t_tares_with_the_tip_off_the_skin(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(plan_of(hold()))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        rig.push(0.5)
        await wait_until(pilot, lambda: rig.status.force_n == 0.5)
        await pilot.press("t")
        await wait_until(pilot, lambda: any("sensor zeroed" in x for x in rig.alert_lines()))
        assert rig.sensor.tared == 1


async def test_t_is_refused_under_load_and_the_refusal_is_logged(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(plan_of(hold(hold_s=30.0)))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        rig.push(30.0)
        await wait_until(pilot, lambda: rig.status.force_n == 30.0)
        await pilot.press("t")
        await wait_until(pilot, lambda: any("tare refused" in x for x in rig.alert_lines()))
        assert rig.sensor.tared == 0


async def test_plus_and_minus_move_the_band_and_are_recorded(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(plan_of(hold(hold_s=30.0)))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        rig.push(30.0)
        await showing(rig, pilot, Phase.HOLD)
        await pilot.press("plus")
        await wait_until(pilot, lambda: rig.status.band_n != (20.0, 40.0))
        raised = rig.status.band_n
        assert raised is not None
        assert raised[0] > 20.0
        await pilot.press("minus")
        await wait_until(pilot, lambda: rig.status.band_n == (20.0, 40.0))
        await pilot.press("equals_sign")
        await wait_until(pilot, lambda: rig.status.band_n == raised)
        band_events = [e for e in rig.events() if "band" in e["kind"]]
        reasons = [str(e["message"]) + str(e["data"]) for e in band_events]
        assert len(band_events) == 3
        assert "too little" in reasons[0]
        assert "too much" in reasons[1]
        # The chart's band follows: the old band span is closed, the new one open.
        chart = rig.screen.query_one(ForceChart)
        await wait_until(pilot, lambda: len(chart._bands) >= 4)


async def test_f_records_the_clients_feedback_with_a_note(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(plan_of(hold(hold_s=30.0)))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(rig.app.screen, FeedbackModal))
        await pilot.press("enter")  # no score yet: nothing is recorded
        assert isinstance(rig.app.screen, FeedbackModal)
        await pilot.press("1", "0", "down", "enter")
        await wait_until(pilot, lambda: isinstance(rig.app.screen, LiveScreen))
        await wait_until(pilot, lambda: any("feedback" in e["kind"] for e in rig.events()))
        [event] = [e for e in rig.events() if "feedback" in e["kind"]]
        assert event["data"]["score"] == 10
        assert "sharp" in str(event["message"]) + str(event["data"])
        assert any("client feedback 10/10 recorded: sharp" in x for x in rig.alert_lines())


async def test_feedback_escape_records_nothing(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(plan_of(hold(hold_s=30.0)))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        await pilot.press("f", "6", "escape")
        await wait_until(pilot, lambda: isinstance(rig.app.screen, LiveScreen))
        assert not any("feedback" in e["kind"] for e in rig.events())


async def test_q_while_running_asks_and_no_keeps_going(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(plan_of(hold()))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(rig.app.screen, QuitModal))
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(rig.app.screen, LiveScreen))
        assert rig.app.running
        await pilot.press("q", "y")
        await wait_until(pilot, lambda: rig.app.return_value is not None)
    result = rig.app.return_value
    assert result is not None
    assert result.status == "stopped"
    assert rig.records.sessions()[0].status == "stopped"


async def test_a_stop_under_the_quit_question_closes_it_and_ticks_no_step_not_run(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(plan_of(hold(), hold(site="neck")))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(rig.app.screen, QuitModal))
        await pilot.press("s")  # the emergency stop works under the question...
        await ended(rig, pilot)
        # ...and the question about a running session goes with the session.
        await wait_until(pilot, lambda: isinstance(rig.app.screen, LiveScreen))
        await wait_until(pilot, lambda: "STOPPED" in rig.shown(HoldPanel).upper())
        assert "✓" not in rig.shown(StepsPanel)  # nothing was done: nothing is ticked


async def test_q_after_the_end_leaves_at_once(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(plan_of(hold(hold_s=0.5, rest_s=0.5)))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        rig.press_for(30.0, 0.8)
        rig.press_for(0.0, 0.8)
        result = await ended(rig, pilot)
        assert result.status == "completed"
        await wait_until(pilot, lambda: "SESSION COMPLETE" in rig.shown(HoldPanel))
        assert "✓ 1. hold: calf" in rig.shown(StepsPanel)
        await pilot.press("q")
        assert not isinstance(rig.app.screen, QuitModal)
    assert rig.app.return_value is result


async def test_the_end_state_closes_by_itself_after_the_linger(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(plan_of(PauseStep(duration_s=0.2)), linger_s=0.3)
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        rig.push(0.0, 0.5)
        await ended(rig, pilot)
        await wait_until(pilot, lambda: rig.app.return_value is not None)
    result = rig.app.return_value
    assert result is not None
    assert result.status == "completed"


async def test_ctrl_c_stops_the_session_first_then_quits(make_rig: Callable[..., Rig]) -> None:
    gun = FakeGun()
    rig = make_rig(plan_of(GunStep("quads", level=3, duration_s=30.0), session_s=900), gun=gun)
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        await wait_until(pilot, gun.started.is_set)
        await pilot.press("ctrl+c")
        await wait_until(pilot, lambda: rig.app.return_value is not None)
    result = rig.app.return_value
    assert result is not None
    assert result.status == "stopped"
    assert "stop" in gun.calls
    stop = next(e for e in rig.events() if e["kind"] == "command.stop")
    assert "Ctrl-C" in stop["data"]["reason"]


async def test_closing_the_app_mid_session_stops_it(make_rig: Callable[..., Rig]) -> None:
    gun = FakeGun()
    rig = make_rig(plan_of(GunStep("quads", level=3, duration_s=30.0), session_s=900), gun=gun)
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        await wait_until(pilot, gun.started.is_set)
    assert "stop" in gun.calls
    assert rig.records.sessions()[0].status == "stopped"


async def test_h_and_a_hand_the_t_bar_to_the_keyboard_and_back(
    make_rig: Callable[..., Rig],
) -> None:
    hands = FakeHands()
    rig = make_rig(plan_of(hold()), hands=hands)
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        await pilot.press("h", "h", "a")
        assert hands.calls == ["press", "release", "automatic"]
        assert not hands.manual
        assert any("simulated therapist" in x for x in rig.alert_lines())


async def test_without_hands_h_is_neither_shown_nor_active(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(plan_of(hold()))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        shown = {
            key for key, b in rig.app.screen.active_bindings.items() if b.binding.show and b.enabled
        }
        assert {"s", "space", "p", "n", "t", "plus", "minus", "f", "q"} <= shown
        assert "h" not in shown
        await pilot.press("h")  # nothing to call: must not fail
        assert rig.app.running


# -- devices, rate and pacing ------------------------------------------------------------------


async def test_the_devices_panel_shows_reconnecting_from_the_status(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(plan_of(hold()))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        assert "SIMULATED" in rig.shown(DevicesPanel)
        assert "connected" in rig.shown(DevicesPanel)
        assert rig.sensor.listener is not None
        rig.sensor.listener("reconnecting", "test: link dropped")
        await wait_until(pilot, lambda: "reconnecting" in rig.shown(DevicesPanel))
        assert "RECONNECTING" in rig.shown(HoldPanel)
        rig.sensor.listener("connected", "test: back")
        await wait_until(pilot, lambda: "reconnecting" not in rig.shown(DevicesPanel))


async def test_a_1khz_burst_is_aggregated_and_the_rate_is_measured(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(plan_of(hold(hold_s=30.0)))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        chart = rig.screen.query_one(ForceChart)
        added: list[int] = []
        refreshes: list[int] = []
        add_points, refresh = chart.add_points, chart.refresh

        def counting_add(points: Any) -> None:
            added.append(len(points))
            add_points(points)

        def counting_refresh(*args: Any, **kw: Any) -> Any:
            refreshes.append(1)
            return refresh(*args, **kw)

        chart.add_points = counting_add  # type: ignore[method-assign]
        chart.refresh = counting_refresh  # type: ignore[method-assign]
        drains_before = rig.screen.chart_drains
        for i in range(1000):
            rig.push(30.0 + (i % 7), 0.001)
        await wait_until(pilot, lambda: rig.app.sink.samples_seen >= 1000)
        await wait_until(pilot, lambda: "1000\u00a0Hz" in rig.shown(DevicesPanel))
        await wait_until(pilot, lambda: sum(added) >= 38)
        drains = rig.screen.chart_drains - drains_before
        # 1,000 samples over 1 s of sensor time became 20 buckets of two points each.
        assert sum(added) <= 2 * (1000 * 0.001 / 0.05 + 2)
        assert len(refreshes) <= drains + 2
        assert drains < 100
        assert rig.app.sink.rate_hz(rig.status.elapsed_s) == pytest.approx(1000, rel=0.01)


# -- layouts ---------------------------------------------------------------------------------

_KEY_WIDGETS = (ForceDigits, HoldPanel, BandGauge, ForceChart, StepsPanel, DevicesPanel, DoseLine)


@pytest.mark.parametrize(("size", "wide"), [((80, 24), False), ((120, 40), True)])
async def test_the_key_widgets_fit_the_terminal(
    make_rig: Callable[..., Rig], size: tuple[int, int], wide: bool
) -> None:
    rig = make_rig(plan_of(PauseStep(duration_s=5.0), hold(), hold("shoulder")))
    async with rig.app.run_test(size=size) as pilot:
        await started(rig, pilot)
        screen = rig.screen
        assert screen.has_class("-wide") is wide
        for kind in (*_KEY_WIDGETS, AlertLog):
            region = screen.query_one(kind).region
            assert region.area > 0, kind.__name__
            assert screen.region.contains_region(region), kind.__name__
        chart = screen.query_one(ForceChart).region
        digits = screen.query_one(ForceDigits).region
        assert digits.height == 3
        if wide:
            assert chart.height >= 20
            assert chart.width >= 60
            assert screen.query_one(StepsPanel).region.height == 3
        else:
            assert chart.height >= 6
        footer = screen.query_one("Footer").region
        assert footer.y == size[1] - 1


async def test_a_crash_of_the_screen_stops_the_session_as_interrupted(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(plan_of(hold()))

    def broken() -> None:
        raise RuntimeError("a widget broke")

    async def crash_it() -> None:
        async with rig.app.run_test(size=(80, 24)) as pilot:
            await started(rig, pilot)
            rig.app.call_later(broken)
            await wait_until(pilot, lambda: rig.app.return_code is not None)

    with pytest.raises(RuntimeError, match="a widget broke"):
        await crash_it()
    [session] = rig.records.sessions()
    assert session.status == "interrupted"  # not "stopped": nobody chose to stop it
    failures = [e for e in rig.events() if e["kind"] == "session_failure"]
    assert len(failures) == 1
    assert "a widget broke" in failures[0]["message"]


async def test_pressure_during_rest_and_stale_data_are_in_the_alert_log(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(plan_of(hold(hold_s=0.5, rest_s=5.0, repeat=2)))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        rig.press_for(30.0, 0.8)
        rig.push(0.0)
        await showing(rig, pilot, Phase.REST)
        rig.push(25.0)  # the client is pressed on during the rest
        await wait_until(pilot, lambda: any("pressure during rest" in x for x in rig.alert_lines()))
        rig.push(0.0)
        rig.clock.t += 3.0  # no sample for longer than the stale-data timeout
        await wait_until(pilot, lambda: rig.status.frozen)
        await wait_until(pilot, lambda: any("frozen" in x for x in rig.alert_lines()))
        severities = [sev for _, sev in rig.screen.query_one(AlertLog).lines_written]
        assert "warning" in severities


async def test_an_over_held_press_is_an_alarm_in_the_log_with_a_bell(
    make_rig: Callable[..., Rig],
) -> None:
    # Pressed below the band, the hold never completes; at its wall-time cap it is over-held.
    rig = make_rig(plan_of(hold(hold_s=5.0, max_hold_s=2.0)))
    async with rig.app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        rig.press_for(10.0, 2.5)
        await wait_until(pilot, lambda: any("OVER-HELD" in x for x in rig.alert_lines()))
        assert "alarm" in [sev for _, sev in rig.screen.query_one(AlertLog).lines_written]
        assert rig.app.bells >= 1


async def test_the_devices_panel_follows_the_battery_the_driver_reports(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(plan_of(hold(hold_s=30.0)))
    async with rig.app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        await wait_until(pilot, lambda: "80%" in rig.shown(DevicesPanel))
        # The gauge warns of low power mid-session (as the Progressor's driver records it).
        rig.sensor._info = dataclasses.replace(rig.sensor._info, battery="3.30 V (low)")
        rig.push(10.0)
        await wait_until(pilot, lambda: "3.30 V (low)" in rig.shown(DevicesPanel))
