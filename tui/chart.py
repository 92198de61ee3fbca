"""Force against time, drawn in the terminal: the pure renderer and the ``ForceChart`` widget.

The line is drawn with braille dots: each cell holds 2x4 dots, so an 80-column chart has 150-odd
dot columns. Samples are binned per dot column keeping the minimum and the maximum (a 1 ms spike
is never lost to averaging), and the column's range is joined to its neighbour's so the line is
continuous. The target band is a background colour, the ceiling a dashed red row, hold starts
and ends vertical marks. Only the 16 ANSI colour names are used so the chart reads in a
16-colour terminal.

``render_chart`` (and ``render_plot`` for the plot area alone) are pure: points, a size and the
ranges in, rows of ``Cell`` out. Its cost is O(dot columns x log points + points in view),
since each column's points are found by bisection over the time-sorted samples and reduced by
``min``/``max`` over an array slice.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from devicectl.units import ForceUnit, from_newtons, to_newtons

__all__ = [
    "BandSpan",
    "Cell",
    "ForceChart",
    "Mark",
    "force_range",
    "nice_step",
    "render_chart",
    "render_plot",
]

BRAILLE_BASE = 0x2800  # U+2800 BRAILLE PATTERN BLANK; the dots are bits added to it
# Bit of each dot, indexed [dot row 0..3][dot column 0..1] (the Unicode braille dot numbering).
BRAILLE_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
DOTS_X = 2  # dot columns per cell (braille is 2 dots wide)
DOTS_Y = 4  # dot rows per cell (braille is 4 dots tall)
MAX_JOIN_GAP_S = 1.0  # join the line across empty columns only up to the core's stale-data timeout
LIVE_MARGIN_S = 5.0  # keep this much beyond the window, so old points are dropped in batches
HEADROOM = 1.1  # the auto-scaled top sits 10 % above the highest thing drawn
MIN_TOP_N = 10.0  # the y-axis spans at least 0..10 N, so sensor noise at rest stays flat
BAND_BG = "bright_black"  # dark grey: the dimmest 16-colour background; any line colour reads on it
CEILING_FG = "red"  # the ceiling is an alarm level
START_FG = "cyan"  # a hold start mark
END_FG = "yellow"  # a hold end mark
AXIS_FG = "bright_black"  # axes recede behind the data
CEILING_CHAR = "╌"  # a dashed horizontal line
MARK_CHAR = "┊"  # a dashed vertical line, so it never reads as the force line


@dataclass(frozen=True)
class BandSpan:
    """A hold step's target band over a time span (``t1_s`` None: still running)."""

    t0_s: float
    t1_s: float | None
    low_n: float
    high_n: float
    ceiling_n: float | None


@dataclass(frozen=True)
class Mark:
    """A hold's start or end."""

    t_s: float
    kind: Literal["start", "end"]
    label: str = ""


class Cell(NamedTuple):
    """One terminal cell: a character and its colours (ANSI colour names; None: the default)."""

    char: str
    fg: str | None = None
    bg: str | None = None


BLANK = Cell(" ")


def nice_step(span: float, count: int) -> float:
    """A 1/2/5 x 10^k step that cuts ``span`` into about ``count`` parts."""
    raw = span / max(count, 1)
    if raw <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)


def force_range(
    fs: Sequence[float], bands: Sequence[BandSpan], unit: ForceUnit
) -> tuple[float, float]:
    """The y-axis range in newtons: from 0 (or below, for negative force) to a round number in
    ``unit`` above every force, band and ceiling shown."""
    tops = [MIN_TOP_N, *(b.high_n for b in bands)]
    tops += [b.ceiling_n for b in bands if b.ceiling_n is not None]
    top = max(max(fs, default=0.0), *tops) * HEADROOM
    bottom = min(min(fs, default=0.0), 0.0) * HEADROOM
    top_u, bottom_u = from_newtons(top, unit), from_newtons(bottom, unit)
    step = nice_step(top_u - bottom_u, 4)
    return (
        to_newtons(math.floor(bottom_u / step) * step, unit),
        to_newtons(math.ceil(top_u / step) * step, unit),
    )


class _DotGrid:
    """Braille dot bits per cell, addressed in dot coordinates (row 0 at the top)."""

    def __init__(self, width: int, height: int) -> None:
        self.bits = [[0] * width for _ in range(height)]

    def vline(self, x: int, r0: int, r1: int) -> None:
        for r in range(min(r0, r1), max(r0, r1) + 1):
            self.bits[r // DOTS_Y][x // DOTS_X] |= BRAILLE_BITS[r % DOTS_Y][x % DOTS_X]


def _dot_row(value: float, f_range: tuple[float, float], rows: int) -> int:
    lo, hi = f_range
    frac = (hi - value) / (hi - lo) if hi > lo else 0.5
    return min(rows - 1, max(0, round(frac * (rows - 1))))


def _draw_line(
    grid: _DotGrid,
    ts: Sequence[float],
    fs: Sequence[float],
    t_range: tuple[float, float],
    f_range: tuple[float, float],
    size: tuple[int, int],
) -> None:
    cols, rows = size[0] * DOTS_X, size[1] * DOTS_Y
    t0, t1 = t_range
    step = (t1 - t0) / cols
    start = bisect_left(ts, t0)
    prev: tuple[int, float, float] | None = None  # (column, time, force) of the last point drawn
    for x in range(cols):
        end = (
            bisect_right(ts, t0 + (x + 1) * step, lo=start)
            if x < cols - 1
            else bisect_right(ts, t1)
        )
        if end <= start:
            continue
        lo_f, hi_f = min(fs[start:end]), max(fs[start:end])
        r_lo, r_hi = _dot_row(hi_f, f_range, rows), _dot_row(lo_f, f_range, rows)
        if prev is not None and ts[start] - prev[1] <= MAX_JOIN_GAP_S:
            _join(grid, prev, (x, fs[start]), f_range, rows)
        grid.vline(x, r_lo, r_hi)
        prev, start = (x, ts[end - 1], fs[end - 1]), end


def _join(
    grid: _DotGrid,
    prev: tuple[int, float, float],
    cur: tuple[int, float],
    f_range: tuple[float, float],
    rows: int,
) -> None:
    """Join the previous column's last value to this column's first, interpolating over gaps."""
    x0, _, f0 = prev
    x1, f1 = cur
    last = _dot_row(f0, f_range, rows)
    for x in range(x0 + 1, x1 + 1):
        row = _dot_row(f0 + (f1 - f0) * (x - x0) / (x1 - x0), f_range, rows)
        grid.vline(x, last, row)
        last = row


def _cell_columns(t: float, t_range: tuple[float, float], width: int) -> int | None:
    t0, t1 = t_range
    if not t0 <= t <= t1 or t1 <= t0:
        return None
    return min(width - 1, int((t - t0) / (t1 - t0) * width))


def _shade_bands(
    cells: list[list[Cell]],
    bands: Sequence[BandSpan],
    t_range: tuple[float, float],
    f_range: tuple[float, float],
) -> None:
    height, width = len(cells), len(cells[0])
    (t0, t1), (lo, hi) = t_range, f_range
    cw, ch = (t1 - t0) / width, (hi - lo) / height
    for band in bands:
        end = math.inf if band.t1_s is None else band.t1_s
        xs = [x for x in range(width) if band.t0_s <= t0 + (x + 0.5) * cw <= end]
        ys = [y for y in range(height) if band.low_n <= hi - (y + 0.5) * ch <= band.high_n]
        if not ys:  # a band thinner than a row still shows, on the row its middle falls in
            ys = [_dot_row((band.low_n + band.high_n) / 2, f_range, height * DOTS_Y) // DOTS_Y]
        ceiling_y = None
        if band.ceiling_n is not None and lo <= band.ceiling_n <= hi:
            ceiling_y = _dot_row(band.ceiling_n, f_range, height * DOTS_Y) // DOTS_Y
        for x in xs:
            for y in ys:
                cells[y][x] = cells[y][x]._replace(bg=BAND_BG)
            if ceiling_y is not None:
                cells[ceiling_y][x] = Cell(CEILING_CHAR, CEILING_FG, cells[ceiling_y][x].bg)


def _draw_marks(
    cells: list[list[Cell]], marks: Sequence[Mark], t_range: tuple[float, float]
) -> None:
    width = len(cells[0])
    for mark in marks:
        x = _cell_columns(mark.t_s, t_range, width)
        if x is None:
            continue
        fg = START_FG if mark.kind == "start" else END_FG
        for y, row in enumerate(cells):
            if row[x].char in (" ", CEILING_CHAR):
                row[x] = Cell(MARK_CHAR, fg, row[x].bg)
            if y == 0 and mark.label:
                for i, ch in enumerate(mark.label[: width - x - 1]):
                    row[x + 1 + i] = Cell(ch, fg, row[x + 1 + i].bg)


def render_plot(
    ts: Sequence[float],
    fs: Sequence[float],
    *,
    width: int,
    height: int,
    t_range: tuple[float, float],
    f_range: tuple[float, float],
    bands: Sequence[BandSpan] = (),
    marks: Sequence[Mark] = (),
) -> list[list[Cell]]:
    """The plot area alone: ``height`` rows of ``width`` cells.

    ``ts`` must be sorted (non-decreasing); ``fs`` are newtons. Points outside ``t_range`` are
    not drawn; forces outside ``f_range`` are clipped to its edge.
    """
    if width <= 0 or height <= 0:
        return []
    cells = [[BLANK] * width for _ in range(height)]
    _shade_bands(cells, bands, t_range, f_range)
    _draw_marks(cells, marks, t_range)
    grid = _DotGrid(width, height)
    if t_range[1] > t_range[0]:
        _draw_line(grid, ts, fs, t_range, f_range, (width, height))
    for y, bit_row in enumerate(grid.bits):
        for x, bits in enumerate(bit_row):
            if bits:
                cells[y][x] = Cell(chr(BRAILLE_BASE + bits), None, cells[y][x].bg)
    return cells


def _y_labels(height: int, f_range: tuple[float, float], unit: ForceUnit) -> dict[int, str]:
    lo_u, hi_u = (from_newtons(v, unit) for v in f_range)
    step = nice_step(hi_u - lo_u, max(1, height // 3))
    labels: dict[int, str] = {}
    value = math.ceil(lo_u / step) * step
    for _ in range(height + 1):  # bounded: never more ticks than rows
        if value > hi_u + step / 1000:
            break
        y = _dot_row(to_newtons(value, unit), f_range, height * DOTS_Y) // DOTS_Y
        labels.setdefault(y, f"{value:g}")
        value += step
    return labels


def _x_axis(width: int, t_range: tuple[float, float], relative: bool) -> str:
    t0, t1 = t_range
    step = nice_step(t1 - t0, max(1, width // 12))
    origin = t1 if relative else 0.0
    line = ["─"] * width
    value = math.ceil((t0 - origin) / step) * step
    for _ in range(width):  # bounded: never more ticks than columns
        if value + origin > t1 + step / 1000:
            break
        text = f"{value:g}s"
        x = min(
            width - len(text),
            max(0, int((value + origin - t0) / (t1 - t0) * width) - len(text) // 2),
        )
        if all(c == "─" for c in line[max(0, x - 1) : x + len(text) + 1]):
            line[x : x + len(text)] = text
        value += step
    return "".join(line)


def render_chart(
    ts: Sequence[float],
    fs: Sequence[float],
    *,
    width: int,
    height: int,
    t_range: tuple[float, float],
    f_range: tuple[float, float],
    bands: Sequence[BandSpan] = (),
    marks: Sequence[Mark] = (),
    unit: ForceUnit = ForceUnit.N,
    relative_time: bool = False,
) -> list[list[Cell]]:
    """The whole chart: y-axis labels in ``unit`` on the left, the plot, and an x-axis row in
    seconds (relative to the right edge when ``relative_time``, so a live chart reads "-60s ..
    0s"). The axis row's left corner names the unit. Rows are exactly ``width`` cells."""
    labels = _y_labels(max(1, height - 1), f_range, unit)
    gutter = max([len(unit.value), *(len(s) for s in labels.values())]) + 1
    plot_w, plot_h = width - gutter - 1, height - 1
    if plot_w < 4 or plot_h < 2:  # too small for axes: the plot alone
        return render_plot(
            ts,
            fs,
            width=width,
            height=height,
            t_range=t_range,
            f_range=f_range,
            bands=bands,
            marks=marks,
        )
    plot = render_plot(
        ts,
        fs,
        width=plot_w,
        height=plot_h,
        t_range=t_range,
        f_range=f_range,
        bands=bands,
        marks=marks,
    )
    rows: list[list[Cell]] = []
    for y, plot_row in enumerate(plot):
        tick = "┤" if y in labels else "│"
        head = [Cell(c) for c in labels.get(y, "").rjust(gutter)] + [Cell(tick, AXIS_FG)]
        rows.append(head + plot_row)
    axis = [Cell(c) for c in unit.value.rjust(gutter)] + [Cell("└", AXIS_FG)]
    axis += [
        Cell(c, AXIS_FG if c == "─" else None) for c in _x_axis(plot_w, t_range, relative_time)
    ]
    rows.append(axis)
    return rows


class _Series:
    """Time-sorted samples in two compact ``array('d')``s (16 bytes a point)."""

    def __init__(self) -> None:
        self.ts = array("d")
        self.fs = array("d")

    def append(self, points: Sequence[tuple[float, float]]) -> None:
        """Append; a point older than the newest is dropped (the chart needs sorted time)."""
        last = self.ts[-1] if self.ts else -math.inf
        for t, f in points:
            if t >= last:
                self.ts.append(t)
                self.fs.append(f)
                last = t

    def replace(self, points: Sequence[tuple[float, float]]) -> None:
        ordered = sorted(points, key=lambda p: p[0])
        self.ts = array("d", (t for t, _ in ordered))
        self.fs = array("d", (f for _, f in ordered))

    def drop_before(self, t_min: float) -> None:
        cut = bisect_left(self.ts, t_min)
        del self.ts[:cut]
        del self.fs[:cut]


class ForceChart(Widget):
    """Force against time: a line drawn with braille dots (2x4 per cell), the target band shaded
    (background colour), the ceiling dashed, hold starts/ends as vertical marks; a y-axis with
    labels in ``unit`` and an x-axis in seconds. Live mode (window_s set) shows the last window_s
    seconds; history mode (window_s None) shows everything.

    None of the setters redraws: the owner calls ``refresh()`` at its own pace.
    """

    DEFAULT_CSS = """
    ForceChart {
        height: 1fr;
        min-height: 6;
    }
    """

    def __init__(
        self,
        *,
        window_s: float | None = 60.0,
        unit: ForceUnit = ForceUnit.N,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.window_s = window_s
        self.unit = unit
        self._series = _Series()
        self._bands: tuple[BandSpan, ...] = ()
        self._marks: tuple[Mark, ...] = ()
        self._styles: dict[tuple[str | None, str | None], Style] = {}
        self._cache: tuple[tuple[int, int], list[Strip]] | None = None
        self.redraws = 0  # how many times the cells were computed (pacing is visible in tests)

    @property
    def point_count(self) -> int:
        """How many points are stored (bounded in live mode by the window plus a margin)."""
        return len(self._series.ts)

    def add_points(self, points: Sequence[tuple[float, float]]) -> None:
        """Append live ``(t_s, force_n)`` points; in live mode drop those older than the window."""
        self._series.append(points)
        series = self._series
        if self.window_s is not None and series.ts:
            newest = series.ts[-1]
            if series.ts[0] < newest - self.window_s - LIVE_MARGIN_S:
                series.drop_before(newest - self.window_s)
        self._cache = None

    def set_points(self, points: Sequence[tuple[float, float]]) -> None:
        """Replace every point (history mode)."""
        self._series.replace(points)
        self._cache = None

    def set_bands(self, bands: Sequence[BandSpan]) -> None:
        self._bands = tuple(bands)
        self._cache = None

    def set_marks(self, marks: Sequence[Mark]) -> None:
        self._marks = tuple(marks)
        self._cache = None

    def set_unit(self, unit: ForceUnit) -> None:
        self.unit = unit
        self._cache = None

    def time_range(self) -> tuple[float, float]:
        """The span shown: the last ``window_s`` up to the newest point, or everything drawn."""
        ts = self._series.ts
        if self.window_s is not None:
            newest = ts[-1] if ts else 0.0
            return (newest - self.window_s, newest)
        times = [*(ts[:1]), *(ts[-1:]), *(m.t_s for m in self._marks)]
        times += [b.t0_s for b in self._bands] + [b.t1_s for b in self._bands if b.t1_s is not None]
        lo, hi = min(times, default=0.0), max(times, default=1.0)
        return (lo, hi if hi > lo else lo + 1.0)

    def render_cells(self, width: int, height: int) -> list[list[Cell]]:
        """The chart as cells at a size (what is drawn; also handy for tests)."""
        t_range = self.time_range()
        ts, fs = self._series.ts, self._series.fs
        start, end = bisect_left(ts, t_range[0]), bisect_right(ts, t_range[1])
        return render_chart(
            ts[start:end],
            fs[start:end],
            width=width,
            height=height,
            t_range=t_range,
            f_range=force_range(fs[start:end], self._bands, self.unit),
            bands=self._bands,
            marks=self._marks,
            unit=self.unit,
            relative_time=self.window_s is not None,
        )

    def render_line(self, y: int) -> Strip:
        size = (self.size.width, self.size.height)
        if self._cache is None or self._cache[0] != size:
            self._styles.clear()  # the base style follows the theme: rebuild per redraw
            self.redraws += 1
            self._cache = (size, [self._strip(row) for row in self.render_cells(*size)])
        strips = self._cache[1]
        return strips[y] if 0 <= y < len(strips) else Strip.blank(size[0])

    def _strip(self, row: list[Cell]) -> Strip:
        segments: list[Segment] = []
        for cell in row:
            style = self._style(cell.fg, cell.bg)
            if segments and segments[-1].style is style:
                segments[-1] = Segment(segments[-1].text + cell.char, style)
            else:
                segments.append(Segment(cell.char, style))
        return Strip(segments, len(row))

    def _style(self, fg: str | None, bg: str | None) -> Style:
        key = (fg, bg)
        if key not in self._styles:
            self._styles[key] = self.rich_style + Style(color=fg, bgcolor=bg)
        return self._styles[key]
