"""The live session screen, and its two modals (client feedback, quit while running).

The screen owns no device and no runner: it drains a :class:`tui.sink.TuiSink` on two timers and
hands the data down to its widgets as attributes. The digits, gauge, phase, steps and devices are
updated at ``STATUS_INTERVAL_S`` (10 Hz, twice as fast as the runner's 20 Hz status is useful to
the eye), the chart and the session dose at ``CHART_INTERVAL_S`` (4 Hz). A 1 kHz sensor therefore
costs the screen nothing per sample: samples reach the chart as 50 ms buckets (min and max).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, HorizontalGroup, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Label, OptionList, Static

from devicectl.console import event_line
from devicectl.dose import SessionDose
from devicectl.plan import HoldStep, Plan
from devicectl.session import DeviceInfo, SessionResult
from devicectl.timing.types import (
    Alert,
    BandChanged,
    Cue,
    Output,
    Phase,
    PhaseChange,
    SessionEnded,
    SessionState,
    Status,
)
from tui.chart import BandSpan, ForceChart, Mark
from tui.sink import TuiSink
from tui.widgets import (
    AlertLog,
    BandGauge,
    DevicesPanel,
    DoseLine,
    ForceDigits,
    HoldPanel,
    StepsPanel,
)

__all__ = [
    "CHART_INTERVAL_S",
    "CHART_WINDOW_S",
    "NOTE_PRESETS",
    "STATUS_INTERVAL_S",
    "FeedbackModal",
    "LiveScreen",
    "QuitModal",
]

# Digits, phase, gauge and panels are redrawn this often: 10 Hz reads as live, and is half the
# runner's 20 Hz status, so no status goes unseen for long.
STATUS_INTERVAL_S = 0.1
# The chart and the session dose are redrawn this often: a 60 s chart moves a dot column about
# every 0.4 s on an 80-column terminal, so 4 Hz is smooth without redrawing for nothing.
CHART_INTERVAL_S = 0.25
# The chart shows the last minute, as the design asks.
CHART_WINDOW_S = 60.0
# The width from which the screen uses two columns (the roomy layout).
WIDE_FROM_COLUMNS = 120
# Client feedback notes offered with a score (free text would fight the one-letter keys: the
# emergency stop key must work in this modal too). Chosen with the arrows; the first is none.
NOTE_PRESETS = ("no note", "sharp", "dull ache", "referred pain", "tender", "easing off")


class LiveScreen(Screen[None]):
    """Force, band, phase, dose, steps, devices and alerts of the running session.

    ``dose_now`` gives the session's dose so far (the runner's core); it is read at the chart's
    pace. The first of ``devices`` is the T-bar: its link state and measured rate are shown.
    """

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE_FROM_COLUMNS, "-wide")]  # noqa: RUF012

    def __init__(
        self,
        plan: Plan,
        sink: TuiSink,
        devices: Sequence[DeviceInfo],
        dose_now: Callable[[], SessionDose],
        tbar_now: Callable[[], DeviceInfo | None] | None = None,
    ) -> None:
        super().__init__()
        self.plan = plan
        self.sink = sink
        self.devices = tuple(devices)
        self.dose_now = dose_now
        # The T-bar's identity as its driver has it now: a battery that runs low (or a device
        # that reconnects) shows without restarting the screen.
        self.tbar_now = tbar_now
        self.status_drains = 0
        self.chart_drains = 0
        self._spans: list[BandSpan] = []
        self._open_span: tuple[int, tuple[float, float], float | None] | None = None
        self._marks: list[Mark] = []
        self._holds_marked = 0  # for the start marks' labels, H1, H2, ...
        self._span_start = 0.0
        self._now_s = 0.0

    def compose(self) -> ComposeResult:
        unit = self.plan.units
        with Container(id="main"):
            with Vertical(id="left"):
                yield Static(id="banner")
                with HorizontalGroup(id="top"):
                    yield ForceDigits(unit, id="digits")
                    yield HoldPanel(id="hold")
                yield BandGauge(unit, id="gauge")
                yield ForceChart(window_s=CHART_WINDOW_S, unit=unit, id="chart")
            with Container(id="side"):
                yield StepsPanel(self.plan, id="steps")
                yield DevicesPanel(self.devices, id="devices")
                yield DoseLine(id="dose")
                yield AlertLog(id="alerts")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.set_interval(STATUS_INTERVAL_S, self.drain_status, name="live-status")
        self.set_interval(CHART_INTERVAL_S, self.drain_chart, name="live-chart")

    # -- draining the sink ----------------------------------------------------------------------

    def drain_status(self) -> None:
        """Take the latest status, the new outputs and messages; update the fast widgets."""
        self.status_drains += 1
        status = self.sink.latest
        if status is not None:
            self._now_s = status.elapsed_s
            self._show_status(status)
        alerts = self.query_one(AlertLog)
        for out, elapsed in self.sink.take_outputs():
            self._on_output(out, elapsed, alerts)
        for text in self.sink.take_messages():
            alerts.add(f"[{self._now_s:7.1f}s] {text}", "warning" if "refused" in text else "info")

    def drain_chart(self) -> None:
        """Move the new sample buckets, bands and marks to the chart, refresh it and the dose."""
        self.chart_drains += 1
        chart = self.query_one(ForceChart)
        points = [p for bucket in self.sink.take_buckets() for p in bucket.points()]
        if points:
            chart.add_points(points)
        oldest = self._now_s - 2 * CHART_WINDOW_S
        self._spans = [s for s in self._spans if s.t1_s is None or s.t1_s >= oldest]
        self._marks = [m for m in self._marks if m.t_s >= oldest]
        chart.set_bands(self._bands())
        chart.set_marks(self._marks)
        chart.refresh()
        dose = self.dose_now()
        self.query_one(DoseLine).dose = dose
        self.query_one(StepsPanel).dose = dose

    def _show_status(self, status: Status) -> None:
        force, band, ceiling = status.force_n, status.band_n, status.ceiling_n
        digits = self.query_one(ForceDigits)
        digits.force_n, digits.band_n, digits.ceiling_n = force, band, ceiling
        gauge = self.query_one(BandGauge)
        gauge.force_n, gauge.band_n, gauge.ceiling_n = force, band, ceiling
        self.query_one(HoldPanel).status = status
        steps = self.query_one(StepsPanel)
        steps.step_index = status.step_index
        # Only a completed session ticks every step; after a stop the steps not reached stay open.
        steps.finished = status.state is SessionState.COMPLETED
        devices = self.query_one(DevicesPanel)
        current = self.tbar_now() if self.tbar_now is not None else None
        if current is not None and self.devices and current != self.devices[0]:
            self.devices = (current, *self.devices[1:])
            devices.devices = self.devices
            devices.refresh()
        devices.link = status.link
        devices.rate_hz = self.sink.rate_hz(status.elapsed_s)
        devices.compact = self.size.width < WIDE_FROM_COLUMNS

    def _follow_band(self, out: Output, elapsed_s: float) -> None:
        """Band spans from the outputs, timed as they happened: a hold step's planned band from
        its first phase, a moved band from ``BandChanged``, closed when the step or session ends.
        """
        if isinstance(out, PhaseChange):
            step = self.plan.steps[out.step_index]
            if not isinstance(step, HoldStep) or out.phase is Phase.DONE:
                self._close_span(elapsed_s)
            elif self._open_span is None or self._open_span[0] != out.step_index:
                self._close_span(elapsed_s)
                self._open(out.step_index, (step.low_n, step.high_n), step.ceiling_n, elapsed_s)
        elif isinstance(out, BandChanged):
            step = self.plan.steps[out.step_index]
            ceiling = step.ceiling_n if isinstance(step, HoldStep) else None
            self._close_span(elapsed_s)
            self._open(out.step_index, out.band_n, ceiling, elapsed_s)
        elif isinstance(out, SessionEnded):
            self._close_span(elapsed_s)

    def _open(
        self, step: int, band: tuple[float, float], ceiling: float | None, elapsed_s: float
    ) -> None:
        self._open_span = (step, band, ceiling)
        self._span_start = elapsed_s

    def _close_span(self, elapsed_s: float) -> None:
        if self._open_span is not None:
            _, (low, high), ceiling = self._open_span
            self._spans.append(BandSpan(self._span_start, elapsed_s, low, high, ceiling))
        self._open_span = None

    def _bands(self) -> list[BandSpan]:
        if self._open_span is None:
            return list(self._spans)
        _, (low, high), ceiling = self._open_span
        return [*self._spans, BandSpan(self._span_start, None, low, high, ceiling)]

    def _on_output(self, out: Output, elapsed_s: float, alerts: AlertLog) -> None:
        self._follow_band(out, elapsed_s)
        if isinstance(out, PhaseChange):
            self._mark(out, elapsed_s)
            return
        line = event_line(out, elapsed_s, self.plan)
        if line is None:
            return
        if isinstance(out, Alert):
            alerts.add(line, out.severity.value)
        elif isinstance(out, Cue):
            alerts.add(line, "cue")
        else:
            alerts.add(line)

    def _mark(self, change: PhaseChange, elapsed_s: float) -> None:
        """A hold starts at first contact (RAMP) and ends at the release cue (RELEASE). Starts
        are labelled H1, H2, ... as in the history: a site's name does not fit between two marks
        of an 80-column chart (the steps panel names the sites)."""
        if change.phase is Phase.RAMP and change.previous is not Phase.HOLD:
            self._holds_marked += 1
            self._marks.append(Mark(elapsed_s, "start", f"H{self._holds_marked}"))
        elif change.phase is Phase.RELEASE:
            self._marks.append(Mark(elapsed_s, "end"))

    # -- the end ----------------------------------------------------------------------------------

    def note(self, line: str, severity: str = "info") -> None:
        """Add a line to the alert log, stamped with the session time."""
        self.query_one(AlertLog).add(f"[{self._now_s:7.1f}s] {line}", severity)

    def show_end(self, result: SessionResult, linger_s: float | None) -> None:
        """Show the session's end (after a last drain) and how to leave."""
        self.drain_status()
        self.drain_chart()
        total = result.dose.total
        when = "" if linger_s is None else f" (closing in {linger_s:.0f} s)"
        text = Text(
            f"session {result.session_id} {result.status.upper()}: "
            f"{total.in_band_s:.1f}/{total.planned_in_band_s:.0f} s in band, "
            f"holds {total.holds_done}/{total.holds_planned}. q or Enter leaves{when}"
        )
        if result.error:
            text.append(f"\n{result.error}")
        banner = self.query_one("#banner", Static)
        banner.update(text)
        banner.add_class("-shown")


class FeedbackModal(ModalScreen[tuple[int, str] | None]):
    """The client's feedback: a score 0-10 (digit keys, ``1`` then ``0`` for 10, or the buttons)
    and an optional preset note (arrows); Enter records, Escape cancels."""

    BINDINGS = [  # noqa: RUF012
        *(Binding(str(d), f"score({d})", show=False) for d in range(10)),
        Binding("enter", "record", "record"),
        Binding("escape", "cancel", "cancel"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.score: int | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Client feedback: how does it feel, 0 to 10? (Enter records)")
            with HorizontalGroup(id="scores"):
                for n in range(11):
                    button = Button(str(n), id=f"score-{n}", compact=True)
                    button.can_focus = False
                    yield button
            yield Label("score: --", id="score")
            yield OptionList(*NOTE_PRESETS, id="notes")

    def on_mount(self) -> None:
        notes = self.query_one(OptionList)
        notes.highlighted = 0
        notes.focus()

    def action_score(self, digit: int) -> None:
        self._set(10 if self.score == 1 and digit == 0 else digit)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._set(int(str(event.button.label)))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_record()

    def _set(self, score: int) -> None:
        self.score = score
        self.query_one("#score", Label).update(f"score: {score}")

    def action_record(self) -> None:
        if self.score is None:
            self.query_one("#score", Label).update("score: -- (type 0-10 first)")
            return
        index = self.query_one(OptionList).highlighted or 0
        self.dismiss((self.score, "" if index == 0 else NOTE_PRESETS[index]))

    def action_cancel(self) -> None:
        self.dismiss(None)


class QuitModal(ModalScreen[bool]):
    """Asked when quitting while a session runs: stop it and quit (y), or keep going (n)."""

    BINDINGS = [  # noqa: RUF012
        Binding("y", "answer(True)", "stop and quit"),
        Binding("n,escape", "answer(False)", "keep going"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("The session is running. Stop the session and quit?")
            with HorizontalGroup(id="buttons"):
                yield Button("Stop and quit (y)", id="yes", variant="error")
                yield Button("Keep going (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
