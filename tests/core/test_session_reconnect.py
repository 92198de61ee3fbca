"""The session runner while the T-bar's link drops and comes back (or does not).

A sensor pushed by the test: each sample and each link change is taken in by the runner before
``push`` returns. The runner's clock is the real one plus an offset the test moves, so a 10 s
outage takes no time.
"""

from __future__ import annotations

import asyncio
import time
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from devicectl.console import status_line
from devicectl.plan import HoldStep, Limits, Plan
from devicectl.records import DeviceRecord, Records
from devicectl.session import EXIT_DEVICE_FAILURE, SessionResult, SessionRunner
from devicectl.timing.types import (
    Alert,
    AlertKind,
    Command,
    Cue,
    CueKind,
    HoldDone,
    Output,
    Phase,
    SessionState,
    Status,
)
from devicectl.units import ForceUnit
from drivers.errors import DeviceDisconnected, DeviceError
from drivers.force import DeviceInfo, ForceSample, ForceSensor, LinkListener

WAIT_S = 5.0
STEP_S = 0.1  # virtual seconds between two pushed samples
PRESS_N = 30.0  # in the band 20-40 N
# The clock is virtual (it moves only when the test moves it), so dose figures are exact but
# for float rounding.
SLACK_S = 1e-6

Item = ForceSample | tuple[str, str] | DeviceError


class Clock:
    """Virtual time: it moves only when the test adds to ``offset``."""

    def __init__(self) -> None:
        self.base = time.monotonic()
        self.offset = 0.0

    def __call__(self) -> float:
        return self.base + self.offset


class PushedSensor(ForceSensor):
    """Samples, link changes (told to the runner's listener) and failures, as the test pushes."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._listener: LinkListener | None = None
        self._info = DeviceInfo("pushed", "test", simulated=True)

    def watch_link(self, listener: LinkListener) -> None:
        self._listener = listener

    async def push(self, item: Item, runner: asyncio.Task[SessionResult]) -> None:
        """Returns once the runner has taken ``item`` in, or has ended."""
        self._queue.put_nowait(item)
        taken = asyncio.create_task(self._queue.join())
        try:
            await asyncio.wait({taken, runner}, timeout=WAIT_S, return_when=FIRST_COMPLETED)
        finally:
            taken.cancel()
            await asyncio.gather(taken, return_exceptions=True)
        assert runner.done() or self._queue.empty(), "the runner did not take a sample in"

    async def connect(self) -> DeviceInfo:
        return self._info

    async def samples(self) -> AsyncIterator[ForceSample]:
        while True:
            item = await self._queue.get()
            try:
                if isinstance(item, ForceSample):
                    yield item  # resumed once the runner has handled it
                elif isinstance(item, DeviceError):
                    raise item
                else:
                    assert self._listener is not None, "the runner did not watch the link"
                    self._listener(*item)
            finally:
                self._queue.task_done()

    async def tare(self) -> None:
        return None

    async def close(self) -> None:
        return None

    @property
    def info(self) -> DeviceInfo | None:
        return self._info


class Collect:
    def __init__(self) -> None:
        self.seen: list[Output] = []
        self.messages: list[str] = []
        self.statuses: list[Status] = []
        self.status_changed = asyncio.Event()

    def outputs(self, outputs: Sequence[Output], elapsed_s: float) -> None:
        self.seen.extend(outputs)

    def status(self, status: Status) -> None:
        self.statuses.append(status)
        self.status_changed.set()

    def sample(self, t_s: float, force_n: float) -> None:
        return None

    def message(self, text: str) -> None:
        self.messages.append(text)

    async def wait_status(self, link: str) -> Status:
        async def until() -> Status:
            while True:
                if self.statuses and self.statuses[-1].link == link:
                    return self.statuses[-1]
                self.status_changed.clear()
                await self.status_changed.wait()

        return await asyncio.wait_for(until(), WAIT_S)


class Session:
    def __init__(self, tmp_path: Path) -> None:
        step = HoldStep("calf", low_n=20, high_n=40, ceiling_n=60, hold_s=5.0, rest_s=1.0)
        self.plan = Plan("reconnect", ForceUnit.N, (step,), Limits(contact_n=2.0, stale_s=1.0))
        self.records = Records.open(tmp_path / "r.db")
        writer = self.records.begin(
            plan_name=self.plan.name,
            plan_source=self.plan.source,
            plan_text="",
            devices=[DeviceRecord("tbar", "test", "pushed", simulated=True)],
        )
        self.clock = Clock()
        self.sensor = PushedSensor()
        self.sink = Collect()
        self.runner = SessionRunner(self.plan, self.sensor, writer, self.sink, clock=self.clock)
        self.task: asyncio.Task[SessionResult] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.runner.run())
        await self.push(ForceSample(self.clock(), 0.0))

    async def push(self, item: Item) -> None:
        assert self.task is not None
        await self.sensor.push(item, self.task)

    async def press(self, seconds: float, force_n: float = PRESS_N) -> None:
        """Samples every STEP_S virtual seconds for ``seconds`` (until the session ends)."""
        for _ in range(round(seconds / STEP_S)):
            assert self.task is not None
            if self.task.done():
                return
            self.clock.offset += STEP_S
            await self.push(ForceSample(self.clock(), force_n))

    def status(self) -> Status:
        return self.runner.core.status(self.clock())

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.runner.command(Command.STOP, reason="test over")
            await asyncio.wait_for(self.task, WAIT_S)

    def events(self) -> list[dict[str, object]]:
        [session] = self.records.sessions()
        return self.records.events(session.id)


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[Session]:
    s = Session(tmp_path)
    try:
        yield s
    finally:
        await s.stop()  # a failed test still ends its session (no task leaks)
        s.records.close()


async def test_a_link_loss_mid_hold_freezes_the_hold_and_the_same_hold_resumes(
    session: Session,
) -> None:
    s = session
    await s.start()
    await s.press(2.0)
    assert s.status().phase is Phase.HOLD

    await s.push(("reconnecting", "the link was closed by the other end"))
    frozen = s.status()
    assert frozen.frozen
    s.clock.offset += 10.0  # ten seconds without the T-bar
    lost = s.status()
    assert lost.in_band_s == frozen.in_band_s  # not a moment counted while lost
    assert (lost.phase, lost.rep) == (Phase.HOLD, 1)
    shown = await s.sink.wait_status("reconnecting")
    assert "T-bar RECONNECTING" in status_line(shown, ForceUnit.N)

    await s.push(("connected", "restored after 10.0 s (4 attempts)"))
    await s.press(2.0)
    back = s.status()
    assert (back.phase, back.rep, back.frozen) == (Phase.HOLD, 1, False)
    # The same hold goes on from where it was: the first interval after the gap is not counted.
    assert back.in_band_s == pytest.approx(frozen.in_band_s + 2.0 - STEP_S, abs=SLACK_S)
    assert not [o for o in s.sink.seen if isinstance(o, HoldDone)]
    assert (await s.sink.wait_status("")).link == ""

    await s.press(2.0)  # 5 s in band: over a wall time with the outage in it
    assert any(isinstance(o, Cue) and o.kind is CueKind.RELEASE for o in s.sink.seen)
    await s.press(0.5, force_n=0.0)  # released: the hold is done, and the session with it
    [done] = [o for o in s.sink.seen if isinstance(o, HoldDone)]
    assert done.dose.completed
    assert done.dose.rep == 1
    assert done.dose.ended_s - done.dose.started_s > 10.0
    assert done.dose.in_band_s == pytest.approx(5.0)
    assert s.task is not None
    result = await asyncio.wait_for(s.task, WAIT_S)
    assert (result.status, result.exit_code) == ("completed", 0)
    events = s.events()
    link = [(e["kind"], e["severity"], e["message"]) for e in events if "link" in str(e["kind"])]
    assert link == [
        ("link.reconnecting", "warning", "the link was closed by the other end"),
        ("link.restored", "info", "restored after 10.0 s (4 attempts)"),
    ]
    alerts = [o for o in s.sink.seen if isinstance(o, Alert)]
    assert [a.kind for a in alerts] == [AlertKind.STALE_DATA, AlertKind.DATA_RESUMED]
    assert any("reconnecting" in m for m in s.sink.messages)
    assert any("reconnected" in m for m in s.sink.messages)


async def test_giving_up_ends_the_session_interrupted_with_exit_1(session: Session) -> None:
    s = session
    await s.start()
    await s.press(1.0)
    await s.push(("reconnecting", "the Bluetooth link was lost"))
    s.clock.offset += 30.0
    message = "gave up reconnecting after 30.0 s: no peripheral found"
    await s.push(("lost", message))
    assert s.status().in_band_s == pytest.approx(1.0 - STEP_S, abs=SLACK_S)  # frozen all along
    await s.push(DeviceDisconnected("tbar", message))
    assert s.task is not None
    result = await asyncio.wait_for(s.task, WAIT_S)
    assert result.status == "interrupted"
    assert result.exit_code == EXIT_DEVICE_FAILURE
    assert result.error is not None
    assert message in result.error
    [summary] = s.records.sessions()
    assert summary.status == "interrupted"
    kinds = [(e["kind"], e["severity"]) for e in s.events()]
    assert ("link.reconnecting", "warning") in kinds
    assert ("link.lost", "alarm") in kinds
    assert kinds.index(("link.lost", "alarm")) < kinds.index(("device_failure", "alarm"))


def test_the_status_line_says_when_the_t_bar_is_reconnecting() -> None:
    base = Status(
        state=SessionState.RUNNING,
        step_index=0, step_count=1, step_kind="hold", label="calf", rep=1, repeats=1,
        phase=Phase.HOLD, force_n=None, band_n=(20.0, 40.0), ceiling_n=60.0, in_band_s=2.0,
        hold_s=5.0, countdown_s=None, frozen=True, elapsed_s=3.0, link="reconnecting",
    )  # fmt: skip
    line = status_line(base, ForceUnit.N)
    assert "T-bar RECONNECTING" in line
    assert "NO DATA: timer frozen" in line
    assert "T-bar" not in status_line(Status(**{**base.__dict__, "link": ""}), ForceUnit.N)
