"""The force chart: the pure renderer (line, band, ceiling, marks, axes), the widget under Pilot."""

from __future__ import annotations

import math

import pytest

from devicectl.units import ForceUnit, from_newtons
from tests.tui.support import HostApp, wait_until
from tui.chart import (
    BAND_BG,
    BRAILLE_BASE,
    CEILING_CHAR,
    CEILING_FG,
    LIVE_MARGIN_S,
    MARK_CHAR,
    BandSpan,
    Cell,
    ForceChart,
    Mark,
    force_range,
    nice_step,
    render_chart,
    render_plot,
)


def is_dot(cell: Cell) -> bool:
    return BRAILLE_BASE < ord(cell.char[0]) <= BRAILLE_BASE + 0xFF


def dot_rows(cells: list[list[Cell]]) -> list[int]:
    return [y for y, row in enumerate(cells) if any(is_dot(c) for c in row)]


def ramp(n: int, rate_hz: float, force: float) -> tuple[list[float], list[float]]:
    return [i / rate_hz for i in range(n)], [force] * n


def test_a_constant_force_draws_one_row_across_the_plot() -> None:
    ts, fs = ramp(1000, 100.0, 20.0)
    cells = render_plot(ts, fs, width=40, height=10, t_range=(0.0, 10.0), f_range=(0.0, 40.0))
    assert len(cells) == 10
    assert all(len(row) == 40 for row in cells)
    assert len(dot_rows(cells)) == 1
    (y,) = dot_rows(cells)
    assert all(is_dot(c) for c in cells[y])


def test_band_rows_are_shaded_over_the_band_span_only() -> None:
    band = BandSpan(5.0, None, 10.0, 20.0, None)
    cells = render_plot([], [], width=40, height=8, t_range=(0.0, 10.0), f_range=(0.0, 40.0),
                        bands=[band])  # fmt: skip
    # Rows are 5 N tall: rows 4 (15-20 N) and 5 (10-15 N) lie in the band.
    shaded = {y for y, row in enumerate(cells) if any(c.bg == BAND_BG for c in row)}
    assert shaded == {4, 5}
    assert all(c.bg == BAND_BG for c in cells[4][20:])
    assert all(c.bg is None for c in cells[4][:20])


def test_a_band_thinner_than_a_row_still_shows() -> None:
    band = BandSpan(0.0, 10.0, 21.0, 22.0, None)
    cells = render_plot([], [], width=10, height=4, t_range=(0.0, 10.0), f_range=(0.0, 40.0),
                        bands=[band])  # fmt: skip
    assert sum(1 for row in cells if row[0].bg == BAND_BG) == 1


def test_a_single_spike_survives_binning() -> None:
    ts, fs = ramp(10_000, 1000.0, 2.0)
    fs[6_123] = 38.0  # one sample in ten thousand, 250 samples to a dot column
    cells = render_plot(ts, fs, width=20, height=8, t_range=(0.0, 10.0), f_range=(0.0, 40.0))
    assert 0 in dot_rows(cells)  # the spike reaches the top row
    spike_columns = [x for x in range(20) if is_dot(cells[0][x])]
    assert spike_columns == [12]  # 6.123 s of 10 s across 20 cells


def test_the_ceiling_is_a_dashed_red_row_over_its_span() -> None:
    band = BandSpan(0.0, 5.0, 10.0, 20.0, 35.0)
    cells = render_plot([], [], width=40, height=8, t_range=(0.0, 10.0), f_range=(0.0, 40.0),
                        bands=[band])  # fmt: skip
    ceiling_rows = [y for y, row in enumerate(cells) if any(c.char == CEILING_CHAR for c in row)]
    assert ceiling_rows == [1]  # 35 N in 0..40 N over 8 rows
    assert all(c.char == CEILING_CHAR and c.fg == CEILING_FG for c in cells[1][:20])
    assert all(c.char == " " for c in cells[1][20:])


def test_hold_marks_are_vertical_and_the_line_draws_over_them() -> None:
    ts, fs = ramp(1000, 100.0, 20.0)
    marks = [Mark(5.0, "start", "H1"), Mark(8.0, "end")]
    cells = render_plot(ts, fs, width=40, height=6, t_range=(0.0, 10.0), f_range=(0.0, 40.0),
                        marks=marks)  # fmt: skip
    line_row = dot_rows(cells)[0]
    for x in (20, 32):
        column = [row[x] for y, row in enumerate(cells) if y != line_row]
        assert all(c.char == MARK_CHAR for c in column)
        assert is_dot(cells[line_row][x])
    assert "".join(c.char for c in cells[0][21:23]) == "H1"


def test_the_line_is_continuous_and_breaks_at_a_long_gap() -> None:
    ts = [0.0, 1.0, 1.5, 9.0]  # 1.0 -> 1.5 is joined; 1.5 -> 9.0 is a gap in the data
    fs = [0.0, 40.0, 0.0, 0.0]
    cells = render_plot(ts, fs, width=20, height=4, t_range=(0.0, 10.0), f_range=(0.0, 40.0))
    filled = [x for x in range(20) if any(is_dot(row[x]) for row in cells)]
    assert filled == [0, 1, 2, 17]  # 0.5 s a cell; nothing drawn across 1.5..9 s


def test_the_whole_chart_has_axes_in_the_unit_and_seconds() -> None:
    ts, fs = ramp(600, 10.0, 30.0)
    cells = render_chart(ts, fs, width=60, height=12, t_range=(0.0, 60.0), f_range=(0.0, 40.0),
                         unit=ForceUnit.N, relative_time=True)  # fmt: skip
    assert len(cells) == 12
    assert all(len(row) == 60 for row in cells)
    text = ["".join(c.char for c in row) for row in cells]
    assert text[-1].lstrip().startswith("N└")
    assert text[-1].endswith("0s")
    assert "-60s" in text[-1]
    assert text[0].strip().startswith("40")
    assert text[-2].strip().startswith("0┤")


def test_y_labels_are_round_in_the_display_unit() -> None:
    lo, hi = force_range([0.0, 100.0], [], ForceUnit.KGF)
    assert lo == 0.0
    top_kgf = from_newtons(hi, ForceUnit.KGF)
    assert top_kgf == pytest.approx(round(top_kgf))
    assert top_kgf >= 100.0 / 9.80665 * 1.1
    cells = render_chart([], [], width=40, height=10, t_range=(0.0, 10.0), f_range=(lo, hi),
                         unit=ForceUnit.KGF)  # fmt: skip
    assert "kgf└" in "".join(c.char for c in cells[-1])


@pytest.mark.parametrize(("span", "count", "step"), [(60, 5, 20), (40, 4, 10), (0.3, 3, 0.1)])
def test_nice_steps(span: float, count: int, step: float) -> None:
    assert nice_step(span, count) == pytest.approx(step)


def test_a_tiny_area_still_renders_the_plot() -> None:
    cells = render_chart([0.0], [1.0], width=6, height=2, t_range=(0.0, 1.0), f_range=(0.0, 2.0))
    assert len(cells) == 2
    assert all(len(row) == 6 for row in cells)


def test_live_mode_keeps_only_the_window_plus_a_margin() -> None:
    chart = ForceChart(window_s=10.0)
    for second in range(60):  # 60 s at 1 kHz, in one-second batches
        chart.add_points([(second + i / 1000, 20.0) for i in range(1000)])
    assert chart.point_count <= (10.0 + LIVE_MARGIN_S + 1.0) * 1000
    t0, t1 = chart.time_range()
    assert t1 == pytest.approx(59.999)
    assert t1 - t0 == pytest.approx(10.0)


def test_live_points_out_of_order_are_dropped() -> None:
    chart = ForceChart(window_s=10.0)
    chart.add_points([(1.0, 5.0), (0.5, 9.0), (2.0, 5.0)])
    assert chart.point_count == 2


def test_history_mode_shows_everything_and_sorts() -> None:
    chart = ForceChart(window_s=None)
    chart.set_points([(30.0, 1.0), (2.0, 1.0)])
    chart.set_marks([Mark(40.0, "end")])
    assert chart.time_range() == (2.0, 40.0)
    assert chart.point_count == 2


async def test_the_widget_draws_under_pilot_and_fits_80x24() -> None:
    app = HostApp(widgets=lambda: [ForceChart(window_s=60.0, id="chart")])
    async with app.run_test(size=(80, 24)) as pilot:
        chart = app.query_one("#chart", ForceChart)
        await wait_until(pilot, lambda: chart.size.height > 0)
        chart.set_bands([BandSpan(0.0, None, 20.0, 40.0, 60.0)])
        chart.set_marks([Mark(10.0, "start", "H1")])
        chart.add_points([(i / 1000, 30.0 + 5 * math.sin(i / 500)) for i in range(30_000)])
        drawn = chart.redraws
        chart.refresh()
        await wait_until(pilot, lambda: chart.redraws > drawn)
        assert chart.region.right <= 80
        assert chart.region.bottom <= 24
        lines = [chart.render_line(y).text for y in range(chart.size.height)]
        assert all(len(line) == chart.size.width for line in lines)
        assert "H1" in lines[0]
        assert lines[-1].rstrip().endswith("0s")
        assert any(CEILING_CHAR in line for line in lines)
        assert any(is_dot(Cell(ch)) for line in lines for ch in line)


async def test_setters_do_not_redraw_by_themselves() -> None:
    app = HostApp(widgets=lambda: [ForceChart(window_s=60.0, id="chart")])
    async with app.run_test(size=(80, 24)) as pilot:
        chart = app.query_one("#chart", ForceChart)
        await wait_until(pilot, lambda: chart.redraws > 0)
        drawn = chart.redraws
        for i in range(1000):  # a 1 kHz second, one sample at a time
            chart.add_points([(i / 1000, 20.0)])
        await pilot.pause(0.05)
        assert chart.redraws == drawn
        chart.refresh()
        await wait_until(pilot, lambda: chart.redraws == drawn + 1)
