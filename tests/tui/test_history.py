"""The history screens under Pilot, on a records database built here with deterministic data."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from devicectl.builtin import builtin_plan, builtin_text
from devicectl.dose import HoldDose
from devicectl.records import DeviceRecord, Records
from tests.tui.support import HostApp, wait_until
from tui.chart import BandSpan, ForceChart
from tui.history import HistoryScreen, SessionScreen, band_spans, hold_marks

SIM_TBAR = DeviceRecord("tbar", "mark10@sim", "Mark-10 Series 5", simulated=True)
REAL_TBAR = DeviceRecord("tbar", "mark10@serial:///dev/ttyUSB0", "Mark-10 Series 5")
SIZES = [(80, 24), (120, 40)]
RATE_HZ = 100.0  # enough samples for a smooth chart, few enough for a fast test
HOLD_CYCLE_S = 10.0  # ARMED 1 s, RAMP 1 s, HOLD 4 s, RELEASE 1 s, REST 3 s (the demo plan)


def _force(t: float, start: float) -> float:
    """A therapist's press in a hold cycle starting at ``start``: ramp, hold near 30 N, release."""
    x = t - start
    if x < 1.0 or x >= 7.0:
        return 0.5
    if x < 2.0:
        return 0.5 + 29.5 * (x - 1.0)
    if x < 6.0:
        return 30.0 + 2.0 * math.sin(x * 3.0)
    return 30.0 * (7.0 - x)


def write_demo_session(records: Records, started_at: datetime) -> int:
    """A demo-plan session as the runner would record it: a 3 s pause, then 2 x 2 holds."""
    writer = records.begin(
        plan_name="Demo", plan_source="builtin:demo", plan_text=builtin_text("demo"),
        devices=[SIM_TBAR], started_at=started_at,
    )  # fmt: skip
    writer.phase(0.0, 0, 1, "RUNNING")
    writer.phase(3.0, 0, 1, "DONE")
    starts = [3.0 + HOLD_CYCLE_S * k for k in range(4)]
    for k, start in enumerate(starts):
        step, rep = 1 + k // 2, 1 + k % 2
        for offset, phase in ((0, "ARMED"), (1, "RAMP"), (2, "HOLD"), (6, "RELEASE"), (7, "REST")):
            writer.phase(start + offset, step, rep, phase)
        if rep == 2:
            writer.phase(start + HOLD_CYCLE_S, step, rep, "DONE")
    end_s = starts[-1] + HOLD_CYCLE_S
    for i in range(int(end_s * RATE_HZ)):
        t = i / RATE_HZ
        start = max((s for s in starts if s <= t), default=-100.0)
        writer.sample(t, 65.0 if i == int(37.5 * RATE_HZ) else _force(t, start))
    for k, start in enumerate(starts):
        writer.hold(_dose(k, start))
    writer.event(22.0, "feedback", "client feedback 6/10", data={"score": 6, "note": "a bit much"})
    writer.event(30.0, "band.raised", data={"step": 3, "band_n": [25.0, 45.0], "reason": "x"})
    writer.finish("completed", ended_at=started_at.replace(minute=started_at.minute + 1))
    return writer.session_id


def _dose(k: int, start: float) -> HoldDose:
    return HoldDose(
        step_index=1 + k // 2, site=f"demo site {'AB'[k // 2]}", rep=1 + k % 2,
        started_s=start + 1.0, ended_s=start + 7.0, planned_in_band_s=4.0,
        in_band_s=4.0 if k < 3 else 3.5, contact_s=6.0, integral_ns=150.0, peak_n=32.0 + k,
        mean_n=25.0, over_ceiling_s=0.1 if k == 3 else 0.0, ramp_rate_n_s=29.5,
        completed=k < 3, over_held=False,
    )  # fmt: skip


def build_history_db(path: Path) -> tuple[int, int]:
    """An older stopped session on real hardware, then a newer simulated demo session."""
    with Records.open(path) as records:
        old = records.begin(
            plan_name="Trigger points", plan_source="builtin:trigger-point",
            plan_text=builtin_text("trigger-point"), devices=[REAL_TBAR],
            started_at=datetime(2025, 3, 1, 9, 0, tzinfo=UTC),
        )  # fmt: skip
        old.sample(0.0, 0.0)
        old.finish("stopped", ended_at=datetime(2025, 3, 1, 9, 2, tzinfo=UTC))
        demo = write_demo_session(records, datetime(2025, 3, 2, 10, 0, tzinfo=UTC))
    return old.session_id, demo


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


def fits(app: HostApp, selector: str, size: tuple[int, int]) -> bool:
    region = app.screen.query_one(selector).region
    return region.width > 0 and region.right <= size[0] and region.bottom <= size[1]


@pytest.mark.parametrize("size", SIZES)
async def test_history_lists_sessions_newest_first(db: Path, size: tuple[int, int]) -> None:
    old, demo = build_history_db(db)
    app = HostApp(screen=lambda: HistoryScreen(db))
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        table = screen.query_one("#sessions", DataTable)
        await wait_until(pilot, lambda: table.row_count == 2)
        assert screen.session_ids == [demo, old]
        assert table.get_row_at(0)[2:] == ["completed", "1:00", "4", "Demo", "SIMULATED"]
        assert table.get_row_at(1)[2:] == ["stopped", "2:00", "0", "Trigger points", ""]
        assert fits(app, "#sessions", size)
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= size[0]


async def test_opening_a_session_shows_its_chart_holds_dose_and_feedback(db: Path) -> None:
    _, demo = build_history_db(db)
    app = HostApp(screen=lambda: HistoryScreen(db))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SessionScreen))
        screen = app.screen
        assert isinstance(screen, SessionScreen)
        assert screen.session_id == demo
        await wait_until(pilot, lambda: screen.data is not None)
        holds = screen.query_one("#holds", DataTable)
        assert holds.row_count == 4
        assert holds.get_row_at(3)[2:4] == ["3.5/4", "150"]
        assert holds.get_row_at(3)[-1] == "no"
        dose = str(screen.query_one("#dose", Static).render())
        assert "15.5 s in band of 16 s planned" in dose
        assert "3 of 4 holds" in dose
        assert "6/10 a bit much" in str(screen.query_one("#feedback", Static).render())
        assert "SIMULATED" in str(screen.query_one("#session-title", Static).render())
        chart = screen.query_one("#chart", ForceChart)
        assert chart.point_count == 4300
        assert chart.time_range() == (0.0, 43.0)
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen))


@pytest.mark.parametrize("size", SIZES)
async def test_the_session_screen_fits(db: Path, size: tuple[int, int]) -> None:
    _, demo = build_history_db(db)
    app = HostApp(screen=lambda: SessionScreen(demo, db_path=db))
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: getattr(app.screen, "data", None) is not None)
        await pilot.pause(0.05)
        for selector in ("#session-title", "#chart", "#holds", "#dose", "#feedback"):
            assert fits(app, selector, size), selector
        chart = app.screen.query_one("#chart", ForceChart)
        assert chart.size.height >= 8
        holds = app.screen.query_one("#holds", DataTable)
        assert holds.size.height >= 5  # the header and every hold


async def test_escape_on_the_history_dismisses_it(db: Path) -> None:
    build_history_db(db)
    app = HostApp(screen=lambda: HistoryScreen(db))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.dismissed)


async def test_an_empty_database_says_so(db: Path) -> None:
    app = HostApp(screen=lambda: HistoryScreen(db))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        note = app.screen.query_one("#history-error", Static)
        await wait_until(pilot, lambda: "No sessions" in str(note.render()))


async def test_a_missing_session_shows_the_error(db: Path) -> None:
    build_history_db(db)
    app = HostApp(screen=lambda: SessionScreen(99, db_path=db))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SessionScreen))
        error = app.screen.query_one("#session-error", Static)
        await wait_until(pilot, lambda: "no session 99" in str(error.render()))


def test_band_spans_follow_phases_and_band_moves(db: Path) -> None:
    _, demo = build_history_db(db)
    with Records.open(db) as records:
        phases, events = records.phases(demo), records.events(demo)
    spans = band_spans(builtin_plan("demo"), phases, events)
    assert spans == [
        BandSpan(3.0, 23.0, 20.0, 40.0, 60.0),
        BandSpan(23.0, 30.0, 20.0, 40.0, 60.0),
        BandSpan(30.0, 43.0, 25.0, 45.0, 60.0),
    ]


def test_hold_marks_label_each_start() -> None:
    holds = [{"started_s": 1.0, "ended_s": 5.0}, {"started_s": 8.0, "ended_s": 12.0}]
    marks = hold_marks(holds)
    assert [(m.t_s, m.kind, m.label) for m in marks] == [
        (1.0, "start", "H1"), (5.0, "end", ""), (8.0, "start", "H2"), (12.0, "end", ""),
    ]  # fmt: skip
