"""The history: a list of past sessions, and one session's chart, holds and dose.

``HistoryScreen`` lists the sessions of a records database, newest first; Enter (or a click) on a
row opens ``SessionScreen``. That screen loads the session in a thread worker, because a long
session at 1 kHz holds a million samples: SQLite connections belong to the thread that opened
them, so the worker opens its own :class:`~devicectl.records.Records`, reads everything, closes
it and hands the data back; the event loop never waits on the database. Escape goes back.

The chart's bands come from the recorded phases (a hold step's span runs from its first phase
to the next step's) and the plan text the session ran, split where the band was raised or
lowered (``band.raised`` / ``band.lowered`` events).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import Worker, WorkerState

from devicectl.errors import DevicectlError
from devicectl.plan import HoldStep, Plan
from devicectl.planfile import parse_plan
from devicectl.records import Records, SessionSummary
from devicectl.units import ForceUnit, from_newtons
from tui.chart import BandSpan, ForceChart, Mark

__all__ = [
    "HistoryScreen",
    "SessionData",
    "SessionScreen",
    "band_spans",
    "hold_marks",
    "load_session",
]

BAND_EVENTS = ("band.raised", "band.lowered")  # what the runner records when the band moves


def _when(iso_text: str) -> str:
    """An ISO 8601 UTC time as local "YYYY-MM-DD HH:MM"."""
    return datetime.fromisoformat(iso_text).astimezone().strftime("%Y-%m-%d %H:%M")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def _simulated(summary: SessionSummary) -> bool:
    return any(d.simulated for d in summary.devices)


@dataclass(frozen=True)
class SessionData:
    """Everything the session screen shows, read in one go (in a worker thread)."""

    summary: SessionSummary
    samples: list[tuple[float, float]]
    holds: list[dict[str, Any]]
    events: list[dict[str, Any]]
    phases: list[dict[str, Any]]
    plan: Plan | None
    plan_error: str  # why the plan text could not be read again ("" when it could)


def load_session(db_path: Path | None, session_id: int) -> SessionData:
    """Open the records, read one session, close them. Raises RecordsError."""
    with Records.open(db_path) as records:
        summary = records.session(session_id)
        plan: Plan | None = None
        plan_error = ""
        try:
            plan = parse_plan(records.plan_text(session_id), summary.plan_source)
        except DevicectlError as exc:
            plan_error = str(exc)
        return SessionData(
            summary, records.samples(session_id), records.holds(session_id),
            records.events(session_id), records.phases(session_id), plan, plan_error,
        )  # fmt: skip


def band_spans(
    plan: Plan, phases: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]]
) -> list[BandSpan]:
    """The target band over time: one span per hold step as run, split where it was moved."""
    moves = [e for e in events if e["kind"] in BAND_EVENTS and isinstance(e["data"], dict)]
    spans: list[BandSpan] = []
    current: tuple[int, BandSpan] | None = None  # (step index, open span)
    for row in phases:
        step = row["step_index"]
        if current is not None and (step != current[0] or row["phase"] == "DONE"):
            spans.append(_closed(current[1], row["t_s"]))
            current = None
        if current is None and row["phase"] != "DONE" and 0 <= step < len(plan.steps):
            hold = plan.steps[step]
            if isinstance(hold, HoldStep):
                current = (
                    step,
                    BandSpan(row["t_s"], None, hold.low_n, hold.high_n, hold.ceiling_n),
                )
        if current is not None:
            current = _apply_moves(current, moves, spans, until=row["t_s"])
    if current is not None:
        current = _apply_moves(current, moves, spans, until=float("inf"))
        spans.append(current[1])
    return spans


def _apply_moves(
    current: tuple[int, BandSpan],
    moves: list[dict[str, Any]],
    spans: list[BandSpan],
    *,
    until: float,
) -> tuple[int, BandSpan]:
    """Split the open span at each band move of its step up to ``until`` (moves are consumed)."""
    step, span = current
    while moves and moves[0]["t_s"] <= until:
        move = moves.pop(0)
        band = move["data"].get("band_n")
        if move["t_s"] < span.t0_s or move["data"].get("step") != step + 1 or len(band or ()) != 2:
            continue
        spans.append(_closed(span, move["t_s"]))
        span = BandSpan(move["t_s"], None, float(band[0]), float(band[1]), span.ceiling_n)
    return step, span


def _closed(span: BandSpan, t_s: float) -> BandSpan:
    return BandSpan(span.t0_s, t_s, span.low_n, span.high_n, span.ceiling_n)


def hold_marks(holds: Sequence[dict[str, Any]]) -> list[Mark]:
    """A start mark labelled H1, H2, ... and an end mark per recorded hold."""
    marks: list[Mark] = []
    for i, hold in enumerate(holds, start=1):
        marks.append(Mark(hold["started_s"], "start", f"H{i}"))
        marks.append(Mark(hold["ended_s"], "end"))
    return marks


class HistoryScreen(Screen[None]):
    """Past sessions, newest first: id, start, status, duration, holds, plan, SIMULATED."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back")]
    DEFAULT_CSS = """
    HistoryScreen #sessions { height: 1fr; }
    HistoryScreen #history-title { height: 1; text-style: bold; }
    HistoryScreen #history-error { color: red; height: auto; display: none; }
    """

    def __init__(self, db_path: Path | None = None) -> None:
        super().__init__()
        self.db_path = db_path
        self._records: Records | None = None
        self.session_ids: list[int] = []  # the table's rows, in order

    def compose(self) -> ComposeResult:
        yield Static("Sessions", id="history-title")
        yield Static("", id="history-error")
        yield DataTable(id="sessions", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#sessions", DataTable)
        table.add_columns("id", "start", "status", "time", "holds", "plan", "devices")
        try:
            self._records = Records.open(self.db_path)
            sessions = self._records.sessions()
        except DevicectlError as exc:
            self._note(str(exc))
            return
        self.query_one("#history-title", Static).update(f"Sessions in {self._records.path}")
        for s in sessions:
            table.add_row(
                str(s.id), _when(s.started_at), s.status, _duration(s.duration_s), str(s.holds),
                s.plan_name, "SIMULATED" if _simulated(s) else "", key=str(s.id),
            )  # fmt: skip
            self.session_ids.append(s.id)
        if not sessions:
            self._note("No sessions recorded yet.")

    def _note(self, text: str) -> None:
        note = self.query_one("#history-error", Static)
        note.update(text)
        note.display = True

    def on_unmount(self) -> None:
        if self._records is not None:
            self._records.close()
            self._records = None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.app.push_screen(SessionScreen(int(event.row_key.value), db_path=self.db_path))

    def action_back(self) -> None:
        self.dismiss(None)


class SessionScreen(Screen[None]):
    """One past session: its chart with bands and hold marks, the holds, the dose, feedback."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back")]
    DEFAULT_CSS = """
    SessionScreen #session-title { height: auto; text-style: bold; }
    SessionScreen #chart { height: 1fr; min-height: 8; }
    SessionScreen #holds { height: auto; max-height: 40%; }
    SessionScreen .line { height: auto; }
    SessionScreen #session-error { color: red; height: auto; display: none; }
    """

    def __init__(self, session_id: int, *, db_path: Path | None = None) -> None:
        super().__init__()
        self.session_id = session_id
        self.db_path = db_path
        self.data: SessionData | None = None  # set once loaded

    def compose(self) -> ComposeResult:
        yield Static(f"Session {self.session_id}: loading…", id="session-title")
        yield Static("", id="session-error")
        yield ForceChart(window_s=None, id="chart")
        yield DataTable(id="holds", cursor_type="row", show_cursor=False)
        yield Static("", id="dose", classes="line")
        yield Static("", id="feedback", classes="line")
        yield Footer()

    def on_mount(self) -> None:
        self.run_worker(
            lambda: load_session(self.db_path, self.session_id),
            name="load-session", thread=True, exit_on_error=False,
        )  # fmt: skip

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.SUCCESS and isinstance(event.worker.result, SessionData):
            self.show(event.worker.result)
        elif event.state is WorkerState.ERROR:
            self._error(f"Cannot load the session: {event.worker.error}")

    def show(self, data: SessionData) -> None:
        """Fill every part from loaded data."""
        self.data = data
        unit = data.plan.units if data.plan is not None else ForceUnit.N
        self.query_one("#session-title", Static).update(_title(data))
        if data.plan_error:
            self._error(f"Plan: {data.plan_error}")
        chart = self.query_one("#chart", ForceChart)
        chart.set_unit(unit)
        chart.set_points(data.samples)
        if data.plan is not None:
            chart.set_bands(band_spans(data.plan, data.phases, data.events))
        chart.set_marks(hold_marks(data.holds))
        chart.refresh()
        self._fill_holds(data.holds, unit)
        self.query_one("#dose", Static).update(_dose_text(data))
        self.query_one("#feedback", Static).update(_feedback_text(data.events))

    def _error(self, text: str) -> None:
        error = self.query_one("#session-error", Static)
        error.update(text)
        error.display = True

    def _fill_holds(self, holds: Sequence[dict[str, Any]], unit: ForceUnit) -> None:
        table = self.query_one("#holds", DataTable)
        table.add_columns("#", "site", "in band s", "N·s", f"peak {unit}", f"mean {unit}", "done")
        for i, h in enumerate(holds, start=1):
            done = "over-held" if h["over_held"] else ("yes" if h["completed"] else "no")
            table.add_row(
                str(i), f"{h['site']} {h['rep']}",
                f"{h['in_band_s']:.1f}/{h['planned_in_band_s']:g}",
                f"{h['integral_ns']:.0f}", f"{from_newtons(h['peak_n'], unit):.1f}",
                f"{from_newtons(h['mean_n'], unit):.1f}", done,
            )  # fmt: skip

    def action_back(self) -> None:
        self.dismiss(None)


def _title(data: SessionData) -> str:
    s = data.summary
    sim = " · SIMULATED" if _simulated(s) else ""
    return f"Session {s.id} · {s.plan_name} · {_when(s.started_at)} · {s.status}{sim}"


def _dose_text(data: SessionData) -> str:
    """The session's dose against planned: in-band seconds and holds completed."""
    in_band = sum(h["in_band_s"] for h in data.holds)
    done = sum(1 for h in data.holds if h["completed"])
    integral = sum(h["integral_ns"] for h in data.holds)
    if data.plan is not None:
        steps = data.plan.hold_steps
        planned_s = sum(s.hold_s * s.repeat for s in steps)
        planned_holds = sum(s.repeat for s in steps)
    else:
        planned_s = sum(h["planned_in_band_s"] for h in data.holds)
        planned_holds = len(data.holds)
    return (
        f"Dose: {in_band:.1f} s in band of {planned_s:g} s planned · "
        f"{done} of {planned_holds} holds completed · {integral:.0f} N·s"
    )


def _feedback_text(events: Sequence[dict[str, Any]]) -> str:
    scores = []
    for e in events:
        if e["kind"] == "feedback" and isinstance(e["data"], dict) and "score" in e["data"]:
            note = e["data"].get("note") or ""
            scores.append(
                f"{e['t_s']:.0f} s: {e['data']['score']}/10" + (f" {note}" if note else "")
            )
    return "Client feedback: " + ("; ".join(scores) if scores else "none recorded")
