"""The live screen's widgets. Each gets its data as attributes from the screen above it.

The drawing of each is a pure function of that data (``gauge_rows``, ``phase_label``,
``hold_rows``, ``step_rows``, ``dose_text``, ``device_rows``), so it is tested without Textual.
Only the 16 ANSI colour names are used (in the widgets' CSS and in these renderables), so
everything reads in a 16-colour terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.geometry import Size
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Digits, RichLog, Static

from devicectl.console import _step_label
from devicectl.dose import SessionDose, step_label
from devicectl.plan import Plan
from devicectl.session import DeviceInfo
from devicectl.timing.types import Phase, SessionState, Status
from devicectl.units import ForceUnit, from_newtons

__all__ = [
    "AlertLog",
    "BandClass",
    "BandGauge",
    "DevicesPanel",
    "DoseLine",
    "ForceDigits",
    "HoldPanel",
    "StepsPanel",
    "band_class",
    "dose_text",
    "gauge_rows",
    "hold_rows",
    "phase_label",
    "step_rows",
]

BandClass = Literal["-none", "-under", "-in-band", "-over"]
BAND_CLASSES: tuple[BandClass, ...] = ("-none", "-under", "-in-band", "-over")

# The gauge's scale reaches this far past the ceiling (or the band's top), so the ceiling mark
# never sits on the right edge and a force above it still shows as above.
GAUGE_HEADROOM = 1.2
# With no band and no ceiling (a pause or a gun step), the gauge spans 0..50 N: a firm press.
GAUGE_DEFAULT_TOP_N = 50.0
# The dose bar's width in cells: fine enough to move visibly every second of a 30 s hold.
DOSE_BAR_WIDTH = 20

# Phase labels and their styles: what the therapist must do now, readable at a glance.
_PHASE_STYLE = {
    Phase.ARMED: "bold",
    Phase.RAMP: "bold yellow",
    Phase.HOLD: "bold green",
    Phase.RELEASE: "bold reverse magenta",
    Phase.REST: "bold cyan",
    Phase.WAITING: "bold reverse yellow",
    Phase.STARTING: "bold yellow",
    Phase.RUNNING: "bold green",
    Phase.STOPPING: "bold yellow",
    Phase.DONE: "bold",
}
_STATE_LABEL = {
    SessionState.READY: ("READY", "bold"),
    SessionState.PAUSED: ("PAUSED (p resumes)", "bold reverse yellow"),
    SessionState.COMPLETED: ("SESSION COMPLETE", "bold reverse green"),
    SessionState.STOPPED: ("STOPPED", "bold reverse red"),
}


def _f(value_n: float, unit: ForceUnit, digits: int = 1) -> str:
    return f"{from_newtons(value_n, unit):.{digits}f}"


def band_class(
    force_n: float | None, band_n: tuple[float, float] | None, ceiling_n: float | None
) -> BandClass:
    """Where the force lies against the band: no reading or no band, under, in, or over (above
    the band's top, or above the ceiling when there is no band)."""
    if force_n is None:
        return "-none"
    if band_n is None:
        return "-over" if ceiling_n is not None and force_n > ceiling_n else "-none"
    low, high = band_n
    return "-under" if force_n < low else "-over" if force_n > high else "-in-band"


class ForceDigits(Widget):
    """The force in large digits in the plan's unit, coloured by band (under / in / over), with
    the unit beside it; above the ceiling the digits are shown in reverse red."""

    DEFAULT_CSS = """
    ForceDigits { layout: horizontal; height: 3; width: auto; }
    ForceDigits > Digits { width: auto; min-width: 12; }
    ForceDigits > #force-unit { width: auto; padding: 0 1; content-align: left bottom; height: 3; }
    ForceDigits.-none > Digits { color: ansi_bright_black; }
    ForceDigits.-under > Digits { color: ansi_yellow; }
    ForceDigits.-in-band > Digits { color: ansi_green; }
    ForceDigits.-over > Digits { color: ansi_red; }
    ForceDigits.-ceiling > Digits { color: ansi_bright_white; background: ansi_red; }
    """

    force_n: reactive[float | None] = reactive(None)
    band_n: reactive[tuple[float, float] | None] = reactive(None)
    ceiling_n: reactive[float | None] = reactive(None)

    def __init__(self, unit: ForceUnit, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="-none")
        self.unit = unit

    def compose(self) -> ComposeResult:
        yield Digits("--.-", id="force-value")
        yield Static(self.unit.value, id="force-unit")

    def on_mount(self) -> None:
        self._show()

    def watch_force_n(self) -> None:
        self._show()

    def watch_band_n(self) -> None:
        self._show()

    def watch_ceiling_n(self) -> None:
        self._show()

    @property
    def band(self) -> BandClass:
        return band_class(self.force_n, self.band_n, self.ceiling_n)

    def _show(self) -> None:
        if not self.is_mounted:
            return
        force = self.force_n
        self.query_one(Digits).update("--.-" if force is None else _f(force, self.unit))
        band = self.band
        for name in BAND_CLASSES:
            self.set_class(name == band, name)
        over = force is not None and self.ceiling_n is not None and force > self.ceiling_n
        self.set_class(over, "-ceiling")


def gauge_rows(
    width: int,
    force_n: float | None,
    band_n: tuple[float, float] | None,
    ceiling_n: float | None,
    unit: ForceUnit,
) -> list[Text]:
    """A horizontal gauge 0..top: the force as a filled bar (coloured by band), the band as a
    green background, the ceiling as a red ``┃``; below it the band's and ceiling's values."""
    width = max(width, 10)
    top = max(
        (ceiling_n or 0.0) * GAUGE_HEADROOM,
        (band_n[1] if band_n else 0.0) * GAUGE_HEADROOM,
        GAUGE_DEFAULT_TOP_N if band_n is None and ceiling_n is None else 0.0,
        force_n or 0.0,
    )

    def col(value_n: float) -> int:
        return min(width - 1, max(0, round(value_n / top * (width - 1))))

    colour = {"-under": "yellow", "-in-band": "green", "-over": "red", "-none": "bright_black"}[
        band_class(force_n, band_n, ceiling_n)
    ]
    filled = -1 if force_n is None or force_n <= 0 else col(force_n)
    band_cols = range(col(band_n[0]), col(band_n[1]) + 1) if band_n else range(0)
    ceiling_col = col(ceiling_n) if ceiling_n is not None else None
    bar = Text()
    for x in range(width):
        bg = " on green" if x in band_cols else ""
        if x == ceiling_col:
            bar.append("┃", "bold red" + bg)
        elif x <= filled:
            bar.append("█", colour + bg)
        else:
            bar.append("─" if not bg else " ", "bright_black" + bg)
    labels = [" "] * width
    marks = [(0.0, "0")]
    if band_n:
        marks += [(band_n[0], _f(band_n[0], unit, 0)), (band_n[1], _f(band_n[1], unit, 0))]
    if ceiling_n is not None:
        marks.append((ceiling_n, f"max {_f(ceiling_n, unit, 0)}"))
    for value, label in marks:
        start = min(col(value), width - len(label))
        if all(c == " " for c in labels[max(0, start - 1) : start + len(label)]):
            labels[start : start + len(label)] = label
    return [bar, Text("".join(labels) + "", "bright_black")]


class BandGauge(Widget):
    """A horizontal gauge 0..max with the target band, the ceiling and the force's bar."""

    DEFAULT_CSS = """
    BandGauge { height: 2; }
    """

    force_n: reactive[float | None] = reactive(None)
    band_n: reactive[tuple[float, float] | None] = reactive(None)
    ceiling_n: reactive[float | None] = reactive(None)

    def __init__(self, unit: ForceUnit, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.unit = unit

    def render(self) -> Text:
        rows = gauge_rows(self.size.width, self.force_n, self.band_n, self.ceiling_n, self.unit)
        return Text("\n").join(rows)


def phase_label(status: Status) -> tuple[str, str]:
    """What the phase line says and its style: the session's state when it is not running,
    else the phase, in words that say what to do (RELEASE NOW, WAITING: space continues)."""
    if status.state is not SessionState.RUNNING:
        return _STATE_LABEL[status.state]
    phase = status.phase
    style = _PHASE_STYLE[phase]
    if phase is Phase.RELEASE:
        return "RELEASE NOW", style
    if phase is Phase.WAITING:
        return "WAITING: space continues", style
    if phase is Phase.ARMED:
        return "ARMED: press to start", style
    if phase is Phase.RUNNING and status.step_kind == "pause":
        return "PAUSE", style
    return phase.value, style


def _dose_bar(done_s: float, total_s: float, width: int = DOSE_BAR_WIDTH) -> Text:
    filled = 0 if total_s <= 0 else min(width, int(width * done_s / total_s))
    return Text.assemble(("█" * filled, "green"), ("░" * (width - filled), "bright_black"))


def hold_rows(status: Status | None) -> list[Text]:
    """The phase with its countdown; repetition k of n and site (or the step); the hold's dose
    (in-band seconds against planned); the frozen-timer and link warnings."""
    if status is None:
        return [Text("connecting…", "bold")]
    label, style = phase_label(status)
    head = Text.assemble((f" {label} ", style))
    if status.countdown_s is not None:
        head.append(f"  {status.countdown_s:4.1f} s left", "bold")
    if status.step_kind == "hold":
        where = f"rep {status.rep} of {status.repeats} · {status.label}"
    else:
        where = f"{status.step_kind}: {status.label}"
    rows = [head, Text(f"step {status.step_index + 1}/{status.step_count} · {where}")]
    if status.hold_s is not None:
        bar = _dose_bar(status.in_band_s, status.hold_s)
        rows.append(Text.assemble("dose ", bar, f" {status.in_band_s:4.1f}/{status.hold_s:.0f} s"))
    warnings = []
    if status.frozen:
        warnings.append(("NO DATA: timer frozen", "bold reverse red"))
    if status.link:
        warnings.append((f"T-bar {status.link.upper()}", "bold reverse yellow"))
    if warnings:
        rows.append(Text(" ").join(Text(w, s) for w, s in warnings))
    return rows


class HoldPanel(Widget):
    """The phase (RAMP, HOLD, RELEASE, REST, ...) with its countdown, repetition k of n, site,
    and the hold as dose progress: in-band seconds against planned."""

    DEFAULT_CSS = """
    HoldPanel { height: 4; padding: 0 1; }
    """

    status: reactive[Status | None] = reactive(None)

    def render(self) -> Text:
        return Text("\n").join(hold_rows(self.status))


def step_rows(
    plan: Plan, step_index: int, finished: bool, dose: SessionDose | None, height: int
) -> list[Text]:
    """One row a step: done ``✓``, current ``▶``, next ``▷``; a hold step with its in-band seconds
    against planned. When the rows do not fit ``height``, a window around the current step."""
    rows: list[Text] = []
    for i, step in enumerate(plan.steps):
        done = finished or i < step_index
        current = not finished and i == step_index
        mark, style = ("✓", "bright_black") if done else ("▶", "bold") if current else ("▷", "")
        if not done and not current and i != step_index + 1:
            mark = " "
        text = Text(f"{mark} {_step_label(plan, i, step_label(step))}", style)
        if dose is not None and i < len(dose.steps) and dose.steps[i].planned_in_band_s > 0:
            totals = dose.steps[i]
            text.append(f"  {totals.in_band_s:.0f}/{totals.planned_in_band_s:.0f} s", style)
        if i == step_index + 1 and not finished:
            text.append("  next", "italic bright_black")
        rows.append(text)
    if height <= 0 or len(rows) <= height:
        return rows
    first = min(max(0, step_index - 1), len(rows) - height)
    return rows[first : first + height]


class StepsPanel(Widget):
    """The plan's steps: done, current, next; with each hold step's dose so far."""

    DEFAULT_CSS = """
    StepsPanel { height: auto; max-height: 12; }
    """

    step_index: reactive[int] = reactive(0)
    finished: reactive[bool] = reactive(False)
    dose: reactive[SessionDose | None] = reactive(None)

    def __init__(self, plan: Plan, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.plan = plan

    def render(self) -> Text:
        rows = step_rows(self.plan, self.step_index, self.finished, self.dose, self.size.height)
        return Text("\n").join(rows)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.plan.steps)


def dose_text(dose: SessionDose | None) -> Text:
    """The session's dose so far against planned: in-band seconds, holds completed, N·s."""
    if dose is None:
        return Text("session dose: --")
    t = dose.total
    text = Text.assemble(
        ("session ", "bold"),
        f"in band {t.in_band_s:.1f}/{t.planned_in_band_s:.0f} s · ",
        f"holds {t.holds_done}/{t.holds_planned} · {t.integral_ns:.0f} N·s",
    )
    if t.planned_gun_s > 0:
        text.append(f" · gun {t.gun_s:.0f}/{t.planned_gun_s:.0f} s")
    return text


class DoseLine(Widget):
    """The session's dose so far against planned, on one line."""

    DEFAULT_CSS = """
    DoseLine { height: 1; }
    """

    dose: reactive[SessionDose | None] = reactive(None)

    def render(self) -> Text:
        return dose_text(self.dose)


_LINK_STYLE = {"connected": "green", "reconnecting": "bold reverse yellow", "lost": "bold red"}


def device_rows(
    devices: Sequence[DeviceInfo], link: str, rate_hz: float, *, compact: bool
) -> list[Text]:
    """One row per device: model, SIMULATED, link state, battery; the T-bar (the first device)
    with its measured sample rate. ``compact`` leaves out the address."""
    rows: list[Text] = []
    for i, info in enumerate(devices):
        text = Text(info.model, "bold")
        if not compact:
            text.append(f" {info.address}")
        if info.simulated:
            text.append(" SIMULATED", "reverse magenta")
        state = (link or "connected") if i == 0 else "connected"
        text.append(f" {state}", _LINK_STYLE.get(state, ""))
        if info.battery:
            text.append(f" bat {info.battery}")
        if i == 0:
            text.append(f" {rate_hz:.0f}\u00a0Hz")
        rows.append(text)
    return rows or [Text("no devices", "bright_black")]


class DevicesPanel(Widget):
    """Each device: name, SIMULATED, link state (connected, reconnecting, lost), battery, and the
    T-bar's measured sample rate."""

    DEFAULT_CSS = """
    DevicesPanel { height: auto; }
    """

    link: reactive[str] = reactive("")
    rate_hz: reactive[float] = reactive(0.0)
    compact: reactive[bool] = reactive(True)

    def __init__(self, devices: Sequence[DeviceInfo], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.devices = tuple(devices)

    def render(self) -> Text:
        rows = device_rows(self.devices, self.link, self.rate_hz, compact=self.compact)
        return Text("\n").join(rows)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self.devices))


_SEVERITY_STYLE = {"alarm": "bold red", "warning": "yellow", "cue": "bold cyan", "info": ""}


class AlertLog(RichLog):
    """Alerts (ceiling, over-held, pressure during rest, stale data, device errors), cues and
    device messages, newest last; alarms in red."""

    DEFAULT_CSS = """
    AlertLog { height: 1fr; min-height: 3; border: none; }
    """

    # Old lines are dropped past this: a session's alerts fit, memory stays bounded.
    MAX_LINES = 500

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(max_lines=self.MAX_LINES, min_width=20, wrap=True, markup=False, id=id)
        self.lines_written: list[tuple[str, str]] = []

    def add(self, line: str, severity: str = "info") -> None:
        """Append a line; ``severity`` is "alarm", "warning", "cue" or "info"."""
        self.lines_written.append((line, severity))
        del self.lines_written[: -self.MAX_LINES]
        self.write(Text(line, _SEVERITY_STYLE.get(severity, "")))
