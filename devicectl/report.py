"""``devicectl report``: one recorded session as a self-contained HTML page.

The page has the session's header (plan, status, times, devices), an inline SVG chart of force
against time (target bands over the time each hold step ran, ceilings, hold starts and ends,
pauses), the dose table (per hold, per site, the session), the client's feedback and every event.
It needs nothing but a browser: inline CSS, inline SVG, no JavaScript, no external resources.
Every recorded string (plan names, sites, messages, notes) comes from users and is escaped.

The chart's force trace is decimated as it is read from the records: the time axis is cut into
:data:`CHART_COLUMNS` columns and each keeps only its lowest and highest sample, so the trace has
at most ``2 * CHART_COLUMNS`` points however long the session or fast the gauge. The highest
sample of the session is the highest of its column, so the peak always survives. See
``docs/report.md``.
"""

from __future__ import annotations

import html
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from devicectl.dose import DoseTotals, HoldDose, SessionDose, rollup, session_dose
from devicectl.errors import DevicectlError, PlanError
from devicectl.limits import site_key
from devicectl.plan import GunStep, HoldStep, Limits, PauseStep, Plan, Step
from devicectl.planfile import parse_plan
from devicectl.records import HOLD_FIELDS, DeviceRecord, Records, SessionSummary
from devicectl.timing.sensor import TBAR
from devicectl.units import ForceUnit, from_newtons, parse_unit

__all__ = [
    "CHART_COLUMNS",
    "decimate",
    "render_report",
    "write_report",
]

# Plot width in SVG pixels and the number of decimation columns: one column per pixel, wide enough
# for a 90 s hold to span 30 columns in an hour-long session, while the trace stays <= 2400 points.
CHART_COLUMNS = 1200
# Plot height in SVG pixels: a 3:1 plot, readable on a laptop and on a printed A4 page.
_PLOT_H = 360.0
# Room for the force axis labels (left), the time axis labels and title (bottom), a little air.
_LEFT, _RIGHT, _TOP, _BOTTOM = 64.0, 16.0, 16.0, 44.0
# Room above the highest thing drawn, so the peak and the ceiling never sit on the frame.
_HEADROOM = 1.08
# A session with no data still gets a one-second time axis.
_MIN_SPAN_S = 1.0
# About this many ticks on each axis: enough to read values off, few enough to label clearly.
_TICKS = 6
# Tick steps on the time axis, in seconds: whole seconds, then whole minutes, as a clock reads.
_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
# Above this span the time axis is labelled m:ss, below it in seconds.
_CLOCK_LABELS_S = 120.0
# Control characters are not allowed in XML (inline SVG) and are parse errors in HTML.
_FORBIDDEN = dict.fromkeys((*range(0, 9), 11, 12, *range(14, 32), 127), "\ufffd")
# Client feedback's event kind: shown in its own table, not among the events.
_FEEDBACK = "feedback"
# Band changes' event kinds: they also re-shade the step's band on the chart from their time.
_BAND_CHANGES = ("band.raised", "band.lowered")


def _e(value: object) -> str:
    """Escaped text for HTML and SVG; also safe for any attribute (quotes escaped)."""
    text = str(value).translate(_FORBIDDEN)
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates from JSON data
    return html.escape(text, quote=True)


# --- decimation -------------------------------------------------------------------------------


class _MinMax:
    """The lowest and highest sample per time column, columns widened as data runs past them.

    Columns start ``span_s / columns`` wide from t = 0. A sample beyond the last column doubles the
    width, merging neighbouring columns pairwise (min of mins, max of maxes: nothing is lost that a
    wider column would have kept), so one pass suffices whatever the real length of the data.
    """

    def __init__(self, columns: int, span_s: float) -> None:
        self.columns = columns
        self.width_s = max(span_s, _MIN_SPAN_S) / columns
        self.low: list[tuple[float, float] | None] = [None] * columns
        self.high: list[tuple[float, float] | None] = [None] * columns

    def add(self, t_s: float, force_n: float) -> None:
        if not (math.isfinite(t_s) and math.isfinite(force_n)):
            return
        i = int(max(t_s, 0.0) / self.width_s)
        while i >= self.columns:  # bounded: each pass halves i
            self._widen()
            i //= 2
        low, high = self.low[i], self.high[i]
        if low is None or high is None:
            self.low[i] = self.high[i] = (t_s, force_n)
        elif force_n < low[1]:
            self.low[i] = (t_s, force_n)
        elif force_n > high[1]:
            self.high[i] = (t_s, force_n)

    def _widen(self) -> None:
        """Double the column width: new column j is old columns 2j and 2j + 1."""
        kept = range(0, self.columns, 2)
        last = self.columns - 1
        low = [_merge(self.low[j], self.low[min(j + 1, last)], higher=False) for j in kept]
        high = [_merge(self.high[j], self.high[min(j + 1, last)], higher=True) for j in kept]
        self.low = low + [None] * (self.columns - len(low))
        self.high = high + [None] * (self.columns - len(high))
        self.width_s *= 2

    def points(self) -> list[tuple[float, float]]:
        """Each column's extremes in time order; a column with one sample gives one point."""
        out: list[tuple[float, float]] = []
        for low, high in zip(self.low, self.high, strict=True):
            if low is None or high is None:
                continue
            out.extend(sorted({low, high}))
        return out


def _merge(
    a: tuple[float, float] | None, b: tuple[float, float] | None, *, higher: bool
) -> tuple[float, float] | None:
    """The lower (or higher) of two columns' samples; the earlier one on a tie."""
    if a is None or b is None:
        return a or b
    return b if (b[1] > a[1] if higher else b[1] < a[1]) else a


def decimate(
    samples: Iterable[tuple[float, float]], *, columns: int = CHART_COLUMNS, span_s: float = 0.0
) -> list[tuple[float, float]]:
    """(t_s, force_n) reduced to the lowest and highest sample per time column, in time order.

    At most ``2 * columns`` points come back, whatever the input's length; the highest and the
    lowest sample are always among them. ``span_s`` is the expected length (columns are widened
    if the data runs longer). Non-finite samples are left out.
    """
    if columns < 1:
        raise ValueError(f"decimate needs at least one column, not {columns}")
    reducer = _MinMax(columns, span_s)
    for t_s, force_n in samples:
        reducer.add(t_s, force_n)
    return reducer.points()


# --- what the page is made of -----------------------------------------------------------------


@dataclass(frozen=True)
class _Span:
    """A step's time on the chart: from its first phase to its DONE (or the next step's start)."""

    step_index: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class _Session:
    summary: SessionSummary
    plan: Plan | None
    plan_problem: str  # why the recorded plan could not be read, "" when it could
    unit: ForceUnit
    holds: tuple[HoldDose, ...]
    events: list[dict[str, Any]]
    spans: list[_Span]
    pauses: list[tuple[float, float]]  # session paused, from - to
    trace: list[tuple[float, float]]  # decimated (t_s, force_n)
    end_s: float  # the chart's right edge


def _read(records: Records, session_id: int) -> _Session:
    summary = records.session(session_id)  # a missing session fails here, naming its id
    plan, problem = _plan(records.plan_text(session_id), summary.plan_source)
    holds = tuple(_hold(row) for row in records.holds(session_id))
    events = records.events(session_id)
    phases = records.phases(session_id)
    known_end = max(
        [summary.duration_s or 0.0, _MIN_SPAN_S]
        + [p["t_s"] for p in phases]
        + [e["t_s"] for e in events]
        + [h.ended_s for h in holds]
    )
    rows = records.sample_rows(session_id)  # streamed: an hour at 1 kHz never sits in memory
    trace = decimate(((t, f) for t, device, f in rows if device == TBAR), span_s=known_end)
    end_s = max(known_end, trace[-1][0] if trace else 0.0)
    return _Session(
        summary=summary,
        plan=plan,
        plan_problem=problem,
        unit=plan.units if plan is not None else _summary_unit(summary.summary),
        holds=holds,
        events=events,
        spans=_step_spans(phases, end_s),
        pauses=_pauses(events, end_s),
        trace=trace,
        end_s=end_s,
    )


def _plan(text: str, source: str) -> tuple[Plan | None, str]:
    """The plan as the session ran it; a plan this version cannot read still gives a report."""
    if not text.strip():
        return None, "the session's plan text was not recorded"
    try:
        return parse_plan(text, source), ""
    except PlanError as exc:
        return None, f"the recorded plan cannot be read: {exc}"


def _summary_unit(summary: Mapping[str, Any] | None) -> ForceUnit:
    try:
        return parse_unit(str((summary or {})["units"]))
    except (KeyError, ValueError):
        return ForceUnit.N


def _hold(row: Mapping[str, Any]) -> HoldDose:
    return HoldDose(**{name: row[name] for name in HOLD_FIELDS})


def _step_spans(phases: Sequence[Mapping[str, Any]], end_s: float) -> list[_Span]:
    """When each step ran, from the phase changes (a step's phases are contiguous)."""
    spans: list[_Span] = []
    current: tuple[int, float] | None = None  # step index, start
    for p in phases:
        index, t_s, phase = p["step_index"], p["t_s"], p["phase"]
        if current is not None and current[0] != index:
            spans.append(_Span(current[0], current[1], t_s))
            current = None
        if current is None and phase != "DONE":
            current = (index, t_s)
        elif current is not None and phase == "DONE":
            spans.append(_Span(index, current[1], t_s))
            current = None
    if current is not None:
        spans.append(_Span(current[0], current[1], end_s))
    return spans


def _pauses(events: Sequence[Mapping[str, Any]], end_s: float) -> list[tuple[float, float]]:
    """When the session was paused: ``session.paused`` to the next session state event."""
    pauses: list[tuple[float, float]] = []
    since: float | None = None
    for e in events:
        kind = e["kind"]
        if kind == "session.paused" and since is None:
            since = e["t_s"]
        elif kind.startswith("session.") and kind != "session.paused" and since is not None:
            pauses.append((since, e["t_s"]))
            since = None
    if since is not None:
        pauses.append((since, end_s))
    return pauses


def _band_changes(
    events: Sequence[Mapping[str, Any]],
) -> dict[int, list[tuple[float, float, float]]]:
    """Band changes per step index (``data.step`` counts from 1): (t_s, low_n, high_n)."""
    changes: dict[int, list[tuple[float, float, float]]] = {}
    for e in events:
        band = _band_data(e)
        if band is not None:
            step, low, high = band
            changes.setdefault(step - 1, []).append((e["t_s"], low, high))
    return changes


def _band_data(event: Mapping[str, Any]) -> tuple[int, float, float] | None:
    """(step from 1, low_n, high_n) of a well-formed band change event, else None."""
    data = event["data"]
    if event["kind"] not in _BAND_CHANGES or not isinstance(data, dict):
        return None
    step, band = data.get("step"), data.get("band_n")
    if not isinstance(step, int) or isinstance(step, bool):
        return None
    if not (isinstance(band, list) and len(band) == 2 and all(_is_number(v) for v in band)):
        return None
    low, high = sorted(float(v) for v in band)
    return step, low, high


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- the chart --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scale:
    """Maps time and force to SVG coordinates. Forces are given in newtons, drawn in ``unit``."""

    end_s: float  # time at the right edge of the plot
    bottom: float  # force at the bottom edge, in ``unit``
    top: float  # force at the top edge, in ``unit``
    step: float  # between force ticks, in ``unit``: bottom and top are multiples of it
    unit: ForceUnit

    @property
    def width(self) -> float:
        return _LEFT + CHART_COLUMNS + _RIGHT

    @property
    def height(self) -> float:
        return _TOP + _PLOT_H + _BOTTOM

    def x(self, t_s: float) -> float:
        return _LEFT + CHART_COLUMNS * min(max(t_s, 0.0), self.end_s) / self.end_s

    def y(self, force_n: float) -> float:
        return self.y_unit(from_newtons(force_n, self.unit))

    def y_unit(self, value: float) -> float:
        """The y of a force already in ``unit`` (ticks)."""
        return _TOP + _PLOT_H * (self.top - value) / (self.top - self.bottom)


def _nice_step(span: float, steps: Sequence[float] | None = None) -> float:
    """A tick step giving about :data:`_TICKS` ticks over ``span``: 1, 2 or 5 times 10^k, or
    the first of ``steps`` that is wide enough."""
    raw = max(span, 1e-9) / _TICKS
    if steps is not None:
        return next((s for s in steps if s >= raw), steps[-1] * math.ceil(raw / steps[-1]))
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1.0, 2.0, 5.0, 10.0) if m * magnitude >= raw)


def _scale(s: _Session) -> _Scale:
    """Force axis from 0 (or below, for negative readings) to above the highest of the peak,
    the bands and the ceilings; time axis over the whole session."""
    forces = [f for _, f in s.trace]
    for hold in s.plan.hold_steps if s.plan is not None else ():
        forces += [hold.high_n, hold.ceiling_n]
    for changes in _band_changes(s.events).values():
        forces += [high for _, _, high in changes]
    high = from_newtons(max(forces, default=0.0), s.unit) * _HEADROOM
    low = min(0.0, from_newtons(min(forces, default=0.0), s.unit))
    high = max(high, low + 1.0)  # a flat or empty trace still gets an axis
    step = _nice_step(high - low)
    return _Scale(
        end_s=s.end_s,
        bottom=step * math.floor(low / step),
        top=step * math.ceil(high / step),
        step=step,
        unit=s.unit,
    )


def _n(value: float) -> str:
    """An SVG coordinate: a tenth of a pixel is finer than any screen or printer shows."""
    return f"{value:.1f}"


def _clock(t_s: float) -> str:
    """Seconds since the start as m:ss.s (always with the tenth, so columns line up)."""
    minutes, seconds = divmod(max(t_s, 0.0), 60.0)
    return f"{int(minutes)}:{seconds:04.1f}"


def _time_label(t_s: float, span_s: float) -> str:
    if span_s < _CLOCK_LABELS_S:
        return f"{t_s:g}"
    minutes, seconds = divmod(round(t_s), 60)
    return f"{minutes}:{seconds:02d}"


def _chart(s: _Session) -> str:
    scale = _scale(s)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(scale.width)} '
        f'{_n(scale.height)}" role="img" aria-labelledby="chart-title" '
        'font-family="sans-serif" font-size="12">',
        f'<title id="chart-title">Force ({_e(s.unit.value)}) against time</title>',
        f'<rect x="{_n(_LEFT)}" y="{_n(_TOP)}" width="{CHART_COLUMNS}" height="{_n(_PLOT_H)}" '
        'fill="#ffffff" stroke="#888888"/>',
        *_pause_rects(s, scale),
        *_band_rects(s, scale),
        *_axes(scale),
        *_hold_marks(s, scale),
        *_alarm_marks(s, scale),
        _trace(s, scale),
        "</svg>",
    ]
    return "\n".join(p for p in parts if p)


def _vertical_rect(scale: _Scale, start_s: float, end_s: float, attrs: str, title: str) -> str:
    """A full-height rectangle over a time span, with a tooltip (``title``, unescaped)."""
    x0, x1 = scale.x(start_s), scale.x(end_s)
    return (
        f'<rect x="{_n(x0)}" y="{_n(_TOP)}" width="{_n(max(x1 - x0, 0.5))}" '
        f'height="{_n(_PLOT_H)}" {attrs}><title>{_e(title)}</title></rect>'
    )


def _pause_rects(s: _Session, scale: _Scale) -> list[str]:
    """Pause steps shaded grey; the times the session was paused shaded orange."""
    out = []
    for span in s.spans:
        step = _step(s.plan, span.step_index)
        if isinstance(step, PauseStep):
            title = f"step {span.step_index + 1}: pause" + (f": {step.note}" if step.note else "")
            attrs = 'class="pause-step" fill="#9e9e9e" fill-opacity="0.18"'
            out.append(_vertical_rect(scale, span.start_s, span.end_s, attrs, title))
    for start_s, end_s in s.pauses:
        attrs = 'class="session-paused" fill="#ff9800" fill-opacity="0.25"'
        title = f"session paused {_clock(start_s)} to {_clock(end_s)}"
        out.append(_vertical_rect(scale, start_s, end_s, attrs, title))
    return out


def _step(plan: Plan | None, index: int) -> Step | None:
    if plan is None or not 0 <= index < len(plan.steps):
        return None
    return plan.steps[index]


def _band_rects(s: _Session, scale: _Scale) -> list[str]:
    """Each hold step's band over the time it ran (split where the band was changed), and its
    ceiling as a dashed line over the same time."""
    out: list[str] = []
    changes = _band_changes(s.events)
    for span in s.spans:
        step = _step(s.plan, span.step_index)
        if not isinstance(step, HoldStep):
            continue
        for start_s, end_s, low_n, high_n in _band_pieces(step, span, changes):
            y0, y1 = scale.y(high_n), scale.y(low_n)
            x0, x1 = scale.x(start_s), scale.x(end_s)
            band = f"{_f(low_n, s.unit)}-{_f(high_n, s.unit)} {s.unit.value}"
            out.append(
                f'<rect class="band" data-step="{span.step_index + 1}" x="{_n(x0)}" '
                f'y="{_n(y0)}" width="{_n(max(x1 - x0, 0.5))}" height="{_n(max(y1 - y0, 0.5))}" '
                f'fill="#43a047" fill-opacity="0.2"><title>step {span.step_index + 1} '
                f"{_e(step.site)}: band {_e(band)}</title></rect>"
            )
        y = scale.y(step.ceiling_n)
        out.append(
            f'<line class="ceiling" data-step="{span.step_index + 1}" '
            f'x1="{_n(scale.x(span.start_s))}" y1="{_n(y)}" x2="{_n(scale.x(span.end_s))}" '
            f'y2="{_n(y)}" stroke="#d32f2f" '
            f'stroke-width="1.5" stroke-dasharray="6 4"><title>ceiling '
            f"{_e(_f(step.ceiling_n, s.unit))} {s.unit.value}</title></line>"
        )
    return out


def _band_pieces(
    step: HoldStep, span: _Span, changes: Mapping[int, Sequence[tuple[float, float, float]]]
) -> list[tuple[float, float, float, float]]:
    """(start_s, end_s, low_n, high_n) pieces of a step's band within its span."""
    low, high, start = step.low_n, step.high_n, span.start_s
    pieces = []
    for t_s, new_low, new_high in sorted(changes.get(span.step_index, ())):
        if t_s >= span.end_s:
            break
        if t_s > start:
            pieces.append((start, t_s, low, high))
            start = t_s
        low, high = new_low, new_high
    pieces.append((start, span.end_s, low, high))
    return pieces


def _axes(scale: _Scale) -> list[str]:
    out = []
    bottom = _TOP + _PLOT_H
    count = round((scale.top - scale.bottom) / scale.step)
    for k in range(count + 1):
        value = scale.bottom + k * scale.step
        y = _n(scale.y_unit(value))
        out.append(
            f'<g class="ytick"><line x1="{_n(_LEFT - 4)}" y1="{y}" '
            f'x2="{_n(_LEFT + CHART_COLUMNS)}" y2="{y}" stroke="#e0e0e0"/>'
            f'<text x="{_n(_LEFT - 6)}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle">{value:g}</text></g>'
        )
    t_step = _nice_step(scale.end_s, _TIME_STEPS)
    for k in range(int(scale.end_s // t_step) + 1):
        t_s = k * t_step
        x = _n(scale.x(t_s))
        out.append(
            f'<g class="xtick"><line x1="{x}" y1="{_n(bottom)}" x2="{x}" y2="{_n(bottom + 4)}" '
            f'stroke="#888888"/><text x="{x}" y="{_n(bottom + 16)}" text-anchor="middle">'
            f"{_time_label(t_s, scale.end_s)}</text></g>"
        )
    time_title = "time (s)" if scale.end_s < _CLOCK_LABELS_S else "time (min:s)"
    out.append(
        f'<text x="{_n(_LEFT + CHART_COLUMNS / 2)}" y="{_n(bottom + 36)}" '
        f'text-anchor="middle">{time_title}</text>'
    )
    out.append(
        f'<text x="12" y="{_n(_TOP + _PLOT_H / 2)}" text-anchor="middle" '
        f'transform="rotate(-90 12 {_n(_TOP + _PLOT_H / 2)})">force ({_e(scale.unit.value)})</text>'
    )
    return out


def _hold_marks(s: _Session, scale: _Scale) -> list[str]:
    """A solid line where each hold started, a dotted one where it ended, labelled site #rep."""
    out = []
    y0, y1 = _n(_TOP), _n(_TOP + _PLOT_H)
    for h in s.holds:
        label = _e(f"{h.site} #{h.rep}")
        xs, xe = _n(scale.x(h.started_s)), _n(scale.x(h.ended_s))
        title = _e(f"{h.site} rep {h.rep}: {_clock(h.started_s)} to {_clock(h.ended_s)}")
        out.append(
            f'<g class="hold" data-step="{h.step_index + 1}" data-rep="{h.rep}">'
            f'<line class="hold-start" x1="{xs}" y1="{y0}" x2="{xs}" y2="{y1}" stroke="#2e7d32">'
            f"<title>{title}</title></line>"
            f'<line class="hold-end" x1="{xe}" y1="{y0}" x2="{xe}" y2="{y1}" stroke="#2e7d32" '
            'stroke-dasharray="2 3"/>'
            f'<text class="hold-label" x="{xs}" y="{_n(_TOP + 4)}" font-size="10" '
            f'fill="#1b5e20" transform="rotate(90 {xs} {_n(_TOP + 4)}) translate(0 -3)">'
            f"{label}</text></g>"
        )
    return out


def _alarm_marks(s: _Session, scale: _Scale) -> list[str]:
    """A red triangle on the top edge at each alarm."""
    out = []
    for e in s.events:
        if e["severity"] != "alarm":
            continue
        x = scale.x(e["t_s"])
        title = _e(f"{_clock(e['t_s'])} {e['kind']}: {e['message']}")
        out.append(
            f'<path class="alarm" d="M{_n(x - 5)},{_n(_TOP)}L{_n(x + 5)},{_n(_TOP)} '
            f'{_n(x)},{_n(_TOP + 9)}Z" fill="#d32f2f"><title>{title}</title></path>'
        )
    return out


def _trace(s: _Session, scale: _Scale) -> str:
    """The decimated force as one path, broken where no sample came for longer than the time
    the timing core itself treats as no data (the plan's stale time)."""
    if not s.trace:
        return (
            f'<text x="{_n(_LEFT + CHART_COLUMNS / 2)}" y="{_n(_TOP + _PLOT_H / 2)}" '
            'text-anchor="middle" fill="#888888">no force samples recorded</text>'
        )
    stale_s = (s.plan.limits if s.plan is not None else Limits()).stale_s
    gap_s = max(stale_s, 2 * s.end_s / CHART_COLUMNS)  # neighbouring columns' points may be 2 apart
    commands: list[str] = []
    previous: float | None = None
    for t_s, force_n in s.trace:
        point = f"{_n(scale.x(t_s))},{_n(scale.y(force_n))}"
        if previous is None or t_s - previous > gap_s:
            commands.append(f"M{point}")
        else:
            commands.append(f"L{point}" if commands[-1][0] == "M" else point)
        previous = t_s
    return (
        f'<path class="force" d="{" ".join(commands)}" fill="none" stroke="#1565c0" '
        'stroke-width="1.2" stroke-linejoin="round"/>'
    )


# --- tables -----------------------------------------------------------------------------------


def _f(value_n: float | None, unit: ForceUnit, digits: int = 1) -> str:
    """A force in the plan's unit, as the console shows it."""
    if value_n is None:
        return "--"
    return f"{from_newtons(value_n, unit):.{digits}f}"


def _table(head: Sequence[str], rows: Iterable[tuple[str, Sequence[str]]], caption: str) -> str:
    """A table; each row comes with its CSS class ("" for none). Cells must already be escaped."""
    body = "\n".join(
        (f'<tr class="{cls}">' if cls else "<tr>")
        + "".join(f"<td>{c}</td>" for c in cells)
        + "</tr>"
        for cls, cells in rows
    )
    header = "".join(f"<th>{h}</th>" for h in head)
    return (
        f'<div class="scroll"><table><caption>{caption}</caption>\n'
        f"<thead><tr>{header}</tr></thead>\n<tbody>\n{body}\n</tbody></table></div>"
    )


def _dose(s: _Session) -> SessionDose:
    """Delivered against planned, computed as the runner computed it (from the recorded holds);
    without a readable plan, the planned figures are those the holds recorded."""
    if s.plan is not None:
        return session_dose(s.plan, s.holds, _gun_s_by_step(s.plan, s.summary.summary))
    groups: dict[str, list[HoldDose]] = {}
    for h in s.holds:
        groups.setdefault(site_key(h.site), []).append(h)
    sites = tuple(_recorded_rollup(hs[0].site, hs) for hs in groups.values())
    return SessionDose(s.holds, (), sites, _recorded_rollup(s.summary.plan_name, s.holds))


def _recorded_rollup(label: str, holds: Sequence[HoldDose]) -> DoseTotals:
    planned = sum(h.planned_in_band_s for h in holds)
    return rollup(label, holds, holds_planned=len(holds), planned_in_band_s=planned)


def _gun_s_by_step(plan: Plan, summary: Mapping[str, Any] | None) -> dict[int, float]:
    """Gun seconds per step, from the summary stored at the end (none for a crashed session)."""
    steps = (summary or {}).get("steps")
    if not isinstance(steps, list) or len(steps) != len(plan.steps):
        return {}
    return {
        i: float(totals["gun_s"])
        for i, (step, totals) in enumerate(zip(plan.steps, steps, strict=True))
        if isinstance(step, GunStep)
        and isinstance(totals, dict)
        and _is_number(totals.get("gun_s"))
    }


def _result(h: HoldDose) -> str:
    text = "complete" if h.completed else "incomplete"
    return text + (", OVER-HELD" if h.over_held else "")


def _hold_cells(h: HoldDose, u: ForceUnit) -> list[str]:
    return [
        str(h.step_index + 1), _e(h.site), str(h.rep), f"{h.in_band_s:.1f}",
        f"{h.planned_in_band_s:.0f}", f"{h.integral_ns:.0f}", _f(h.peak_n, u), _f(h.mean_n, u),
        f"{h.over_ceiling_s:.1f}", _f(h.ramp_rate_n_s, u), _result(h),
    ]  # fmt: skip


def _hold_rows(s: _Session) -> list[tuple[str, list[str]]]:
    """Each hold; one that fell short of its dose (or was over-held) is highlighted."""
    return [
        ("" if h.completed and not h.over_held else "short", _hold_cells(h, s.unit))
        for h in s.holds
    ]


def _percent(done: float, planned: float) -> str:
    return f"{100.0 * done / planned:.0f} %" if planned > 0 else "--"


def _totals_row(t: DoseTotals, unit: ForceUnit, gun: bool) -> list[str]:
    row = [
        _e(t.label), f"{t.in_band_s:.1f}", f"{t.planned_in_band_s:.0f}",
        _percent(t.in_band_s, t.planned_in_band_s), f"{t.holds_done}/{t.holds_planned}",
        f"{t.integral_ns:.0f}", _f(t.peak_n, unit), _f(t.mean_n, unit), f"{t.over_ceiling_s:.1f}",
    ]  # fmt: skip
    return [*row, f"{t.gun_s:.0f}/{t.planned_gun_s:.0f}"] if gun else row


def _dose_section(s: _Session) -> str:
    dose, u = _dose(s), s.unit.value
    hold_head = (
        "step", "site", "rep", "in band s", "planned s", "N·s", f"peak {u}", f"mean {u}",
        "over ceiling s", f"ramp {u}/s", "result",
    )  # fmt: skip
    gun = dose.total.planned_gun_s > 0
    head = [
        "", "in band s", "planned s", "delivered", "holds done", "N·s", f"peak {u}", f"mean {u}",
        "over ceiling s", *(["gun s"] if gun else []),
    ]  # fmt: skip
    parts = ["<section><h2>Dose delivered against planned</h2>"]
    if s.plan is None:
        parts.append('<p class="note">Planned figures are those recorded with each hold.</p>')
    if s.holds:
        parts.append(_table(hold_head, _hold_rows(s), "Each hold"))
    else:
        parts.append("<p>No hold was recorded.</p>")
    sites = [("", _totals_row(t, s.unit, gun)) for t in dose.sites]
    if sites:
        parts.append(_table(["site", *head[1:]], sites, "Per site"))
    total = [("total", _totals_row(dose.total, s.unit, gun))]
    parts.append(_table(["session", *head[1:]], total, "The session"))
    parts.append("</section>")
    return "\n".join(parts)


def _feedback_section(s: _Session) -> str:
    rows = []
    for e in s.events:
        if e["kind"] != _FEEDBACK:
            continue
        data = e["data"] if isinstance(e["data"], dict) else {}
        score = data.get("score")
        shown = f"{score:g}/10" if _is_number(score) else ("--" if score is None else _e(score))
        note = data.get("note")
        rows.append(("", [_clock(e["t_s"]), shown, "" if note is None else _e(note)]))
    if not rows:
        return "<section><h2>Client feedback</h2><p>No feedback was recorded.</p></section>"
    table = _table(("time", "score", "note"), rows, "Scores the client gave (0 to 10)")
    return f"<section><h2>Client feedback</h2>\n{table}</section>"


def _event_text(e: Mapping[str, Any], unit: ForceUnit) -> str:
    band = _band_data(e)
    if band is None:
        return _e(e["message"])
    step, low, high = band
    reason = e["data"].get("reason")
    text = f"step {step}: band now {_f(low, unit)}-{_f(high, unit)} {unit.value}"
    text += f" ({reason})" if reason else ""
    return _e(f"{e['message']}: {text}" if e["message"] else text)


def _details(data: object) -> str:
    """An event's data for people: ``step 2, reason complete``; empty values left out."""
    if not isinstance(data, dict):
        return ""
    return _e(", ".join(f"{k} {v}" for k, v in data.items() if v not in (None, "", [], {})))


def _event_row(e: Mapping[str, Any], unit: ForceUnit) -> tuple[str, list[str]]:
    """An event; an alarm or a warning is highlighted (its severity is the row's class)."""
    cls = e["severity"] if e["severity"] in ("alarm", "warning") else ""
    text = _event_text(e, unit)
    return cls, [_clock(e["t_s"]), _e(e["kind"]), _e(e["severity"]), text, _details(e["data"])]


def _events_section(s: _Session) -> str:
    rows = [_event_row(e, s.unit) for e in s.events if e["kind"] != _FEEDBACK]
    if not rows:
        return "<section><h2>Events</h2><p>No events were recorded.</p></section>"
    head = ("time", "kind", "severity", "message", "details")
    table = _table(head, rows, "Alarms are highlighted")
    return f"<section><h2>Events</h2>\n{table}</section>"


# --- the page ---------------------------------------------------------------------------------

# Plain CSS for screens of any width (tables scroll sideways, the chart scales) and for print.
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:0 auto;
max-width:1200px;padding:0 12px 24px}
h1{font-size:1.5em;margin:.6em 0 .2em}h2{font-size:1.2em;margin:1.2em 0 .3em}
.badge{display:inline-block;padding:.05em .45em;border-radius:3px;font-weight:bold}
.completed{background:#c8e6c9;color:#1b5e20}.not-completed{background:#b00020;color:#fff}
.sim{background:#ffd54f;color:#222}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.1em 1em;margin:.5em 0}
dt{color:#555}dd{margin:0}
.scroll{overflow-x:auto}
table{border-collapse:collapse;margin:.4em 0 .8em;font-variant-numeric:tabular-nums}
caption{text-align:left;color:#555;padding:.2em 0}
th,td{padding:.15em .6em;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}
th{background:#f4f4f4}
td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}
tr.alarm td{background:#fde0e0;color:#8a0010;font-weight:bold}
tr.warning td{background:#fff6d6}
tr.short td{background:#fff6d6}tr.total td{font-weight:bold}
.note{background:#fff6d6;padding:.3em .6em}
figure{margin:.5em 0}svg{display:block;width:100%;height:auto}
.legend span{display:inline-block;margin-right:1.2em;white-space:nowrap}
.legend i{display:inline-block;width:1.4em;height:.8em;margin-right:.3em;vertical-align:middle}
footer{margin-top:2em;color:#777;font-size:.9em;border-top:1px solid #ddd;padding-top:.5em}
@media print{body{max-width:none;font-size:10pt;padding:0}.scroll{overflow:visible}
tr,figure{break-inside:avoid}.not-completed{border:2px solid #b00020}}
"""

# What the chart's colours and marks mean, drawn with CSS so it needs no second SVG.
_LEGEND = (
    '<p class="legend"><span><i style="background:#1565c0;height:2px"></i>force</span>'
    '<span><i style="background:#43a047;opacity:.35"></i>target band</span>'
    '<span><i style="border-top:2px dashed #d32f2f;height:0"></i>ceiling</span>'
    '<span><i style="border-left:2px solid #2e7d32;height:1em"></i>hold start '
    "(dotted: end)</span>"
    '<span><i style="background:#9e9e9e;opacity:.4"></i>pause step</span>'
    '<span><i style="background:#ff9800;opacity:.45"></i>session paused</span>'
    '<span><i style="border-top:8px solid #d32f2f;border-left:5px solid transparent;'
    'border-right:5px solid transparent;width:0;height:0"></i>alarm</span></p>'
)


def _simulated(summary: SessionSummary) -> bool:
    return any(d.simulated for d in summary.devices)


def _when(stored: str | None) -> str:
    if stored is None:
        return "unknown"
    try:
        return datetime.fromisoformat(stored).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return _e(stored)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def _status(summary: SessionSummary) -> str:
    status = summary.status
    reason = str((summary.summary or {}).get("reason") or "")
    if status == "completed":
        return '<span class="badge completed">completed</span>'
    why = f": {_e(reason)}" if reason else ""
    if status == "running":
        why = ": it had not ended when this report was made"
    return f'<span class="badge not-completed">{_e(status.upper())}</span>{why}'


def _device_row(d: DeviceRecord) -> tuple[str, list[str]]:
    calibration = d.calibration_data if d.calibration else None
    cal_id = calibration.get("id") if isinstance(calibration, dict) else None
    return (
        "",
        [
            _e(d.role), _e(d.model), _e(d.address), _e(d.serial), _e(d.firmware),
            '<span class="badge sim">SIMULATED</span>' if d.simulated else "",
            _e(cal_id) if cal_id else ("(unreadable)" if d.calibration else "none"),
        ],
    )  # fmt: skip


def _header(s: _Session) -> str:
    m = s.summary
    sim = ' <span class="badge sim">SIMULATED</span>' if _simulated(m) else ""
    items = [
        ("plan", _e(m.plan_name)),
        ("plan file", _e(m.plan_source)),
        ("status", _status(m)),
        ("started", _when(m.started_at)),
        ("ended", _when(m.ended_at)),
        ("duration", _duration(m.duration_s)),
        ("force unit", _e(s.unit.value)),
        ("holds, samples", f"{m.holds}, {m.samples}"),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items)
    parts = [f"<header><h1>Session {m.id}: {_e(m.plan_name)}{sim}</h1>", f"<dl>{dl}</dl>"]
    if s.plan_problem:
        parts.append(f'<p class="note">{_e(s.plan_problem)}: no bands or ceilings are shown.</p>')
    head = ("role", "model", "address", "serial", "firmware", "", "calibration")
    if m.devices:
        parts.append(_table(head, [_device_row(d) for d in m.devices], "Devices"))
    parts.append("</header>")
    return "\n".join(parts)


def _version() -> str:
    try:
        return metadata.version("devicectl")
    except metadata.PackageNotFoundError:
        return "(unknown version)"


def render_report(
    records: Records, session_id: int, *, generated_at: datetime | None = None
) -> str:
    """The session as one complete HTML5 document (UTF-8, no external resources, no script).

    Raises:
        RecordsError: no such session, or the records cannot be read.
    """
    s = _read(records, session_id)
    when = (generated_at or datetime.now(UTC)).astimezone(UTC)
    title = f"devicectl report: session {s.summary.id}, {s.summary.plan_name}"
    title += " (SIMULATED)" if _simulated(s.summary) else ""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title>",
            f"<style>{_CSS}</style></head><body>",
            _header(s),
            "<section><h2>Force</h2><figure>",
            _chart(s),
            f"<figcaption>{_LEGEND}</figcaption></figure></section>",
            _dose_section(s),
            _feedback_section(s),
            _events_section(s),
            f"<footer>generated by devicectl {_e(_version())} on "
            f"{when.strftime('%Y-%m-%d %H:%M:%S UTC')}</footer>",
            "</body></html>",
            "",
        ]
    )


def write_report(html_text: str, path: Path) -> None:
    """Write the report to ``path`` atomically: a temporary file beside it, then a rename, so a
    browser never shows half a report. Raises DevicectlError with the OS's reason."""
    temporary: Path | None = None
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        temporary = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(html_text)
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        reason = exc.strerror or str(exc)
        raise DevicectlError(f"cannot write the report to {path}: {reason}") from exc
