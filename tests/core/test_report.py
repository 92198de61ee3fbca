"""The HTML session report: a well-formed page, the chart's parts, the dose numbers, escaping,
decimation (size bound, peak kept), and the ``report`` command's exits."""

from __future__ import annotations

import argparse
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from devicectl import cli, report_cli
from devicectl.dose import HoldDose
from devicectl.errors import DevicectlError, RecordsError
from devicectl.records import DeviceRecord, Records
from devicectl.report import CHART_COLUMNS, decimate, render_report, write_report
from devicectl.report_cli import report_command
from devicectl.units import KGF_N

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
GENERATED = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)
SIM_TBAR = DeviceRecord("tbar", "mark10@sim", "Mark-10 M5-100", "SIM-0001", "1.04", True)
REAL_TBAR = DeviceRecord(
    "tbar",
    "mark10@serial:///dev/ttyUSB0",
    "Mark-10 M5-100",
    calibration='{"id":"3f0c9a41d2e7","scale":1.02}',
)
PLAN = """
name = "neck"
units = "N"
[[steps]]
type = "pause"
duration_s = 2
note = "get ready"
[[steps]]
type = "hold"
site = "upper trapezius L"
target = [20, 40]
ceiling = 60
hold_s = 5
rest_s = 3
repeat = 2
[[steps]]
type = "hold"
site = "levator"
target = [25, 45]
ceiling = 70
hold_s = 5
rest_s = 3
"""
# (t_s, step_index, rep, phase) as the runner records them.
PHASES = [
    (0.0, 0, 1, "RUNNING"), (2.0, 0, 1, "DONE"),
    (2.0, 1, 1, "ARMED"), (3.0, 1, 1, "RAMP"), (4.0, 1, 1, "HOLD"), (9.0, 1, 1, "RELEASE"),
    (10.0, 1, 1, "REST"), (13.0, 1, 2, "ARMED"), (14.0, 1, 2, "RAMP"), (15.0, 1, 2, "HOLD"),
    (20.0, 1, 2, "RELEASE"), (21.0, 1, 2, "REST"), (24.0, 1, 2, "DONE"),
    (24.0, 2, 1, "ARMED"), (25.0, 2, 1, "RAMP"), (26.0, 2, 1, "HOLD"), (31.0, 2, 1, "RELEASE"),
    (32.0, 2, 1, "REST"), (35.0, 2, 1, "DONE"),
]  # fmt: skip


def dose(step_index: int, site: str, rep: int, start: float, **changes: Any) -> HoldDose:
    values: dict[str, Any] = {
        "step_index": step_index, "site": site, "rep": rep, "started_s": start,
        "ended_s": start + 7.0, "planned_in_band_s": 5.0, "in_band_s": 5.04, "contact_s": 6.5,
        "integral_ns": 185.25, "peak_n": 31.0, "mean_n": 28.5, "over_ceiling_s": 0.0,
        "ramp_rate_n_s": 24.5, "completed": True, "over_held": False,
    }  # fmt: skip
    return HoldDose(**(values | changes))


HOLDS = [
    dose(1, "upper trapezius L", 1, 3.0),
    dose(1, "upper trapezius L", 2, 14.0, in_band_s=3.25, completed=False, peak_n=36.75),
    dose(2, "levator", 1, 25.0, peak_n=47.5, over_ceiling_s=0.0, ramp_rate_n_s=None),
]


def force_at(t_s: float) -> float:
    """30 N inside each hold, 0.5 N between, a 47.5 N peak at 27.02 s."""
    if abs(t_s - 27.02) < 1e-9:
        return 47.5
    inside = any(h.started_s + 1.0 <= t_s <= h.ended_s - 1.0 for h in HOLDS)
    return 30.0 + math.sin(t_s * 7.0) if inside else 0.5


@dataclass
class Spec:
    plan_text: str = PLAN
    plan_name: str = "neck"
    devices: Sequence[DeviceRecord] = (SIM_TBAR,)
    samples: Sequence[tuple[float, float]] = field(
        default_factory=lambda: [(i / 50, force_at(i / 50)) for i in range(35 * 50 + 1)]
    )
    phases: Sequence[tuple[float, int, int, str]] = tuple(PHASES)
    holds: Sequence[HoldDose] = tuple(HOLDS)
    events: Sequence[tuple[float, str, str, str, dict[str, Any] | None]] = (
        (0.0, "cue.step_start", "info", "", {"step": 1}),
        (27.0, "alert.ceiling", "alarm", "force 75 N above the ceiling", {"step": 3}),
        (30.0, "feedback", "info", "", {"score": 6, "note": "sharp <b>pain</b>"}),
    )
    status: str = "completed"
    summary: dict[str, Any] | None = field(default_factory=lambda: {"units": "N", "reason": ""})


def record(records: Records, spec: Spec) -> int:
    w = records.begin(
        plan_name=spec.plan_name,
        plan_source="neck.toml",
        plan_text=spec.plan_text,
        devices=list(spec.devices),
        started_at=T0,
    )
    w.max_batch_s = 60.0  # few, large transactions: these tests write long sessions quickly
    for t, step, rep, phase in spec.phases:
        w.phase(t, step, rep, phase)
    for t, kind, severity, message, data in spec.events:
        w.event(t, kind, message, severity=severity, data=data)
    for t, f in spec.samples:
        w.sample(t, f)
    for h in spec.holds:
        w.hold(h)
    end = max([0.0, *(t for t, _ in spec.samples), *(p[0] for p in spec.phases)])
    w.finish(spec.status, summary=spec.summary, ended_at=T0 + timedelta(seconds=end))
    return w.session_id


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
def records(db: Path) -> Iterator[Records]:
    r = Records.open(db)
    yield r
    r.close()


def render(records: Records, spec: Spec | None = None) -> str:
    return render_report(records, record(records, spec or Spec()), generated_at=GENERATED)


class StrictChecker(HTMLParser):
    """Every element closed in order (void elements excepted); nothing left open."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:]} at {self.getpos()}")
        else:
            self.stack.pop()


def check_html(page: str) -> StrictChecker:
    checker = StrictChecker()
    checker.feed(page)
    checker.close()
    assert checker.problems == []
    assert checker.stack == []
    return checker


def svg_of(page: str) -> ET.Element:
    match = re.search(r"<svg\b.*?</svg>", page, re.DOTALL)
    assert match is not None
    return ET.fromstring(match.group(0))


def by_class(svg: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in svg.iter(SVG + tag) if e.get("class") == cls]


def path_points(svg: ET.Element) -> list[tuple[float, float]]:
    [trace] = by_class(svg, "path", "force")
    pairs = re.findall(r"(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)", trace.get("d", ""))
    return [(float(x), float(y)) for x, y in pairs]


def y_of(svg: ET.Element, value: float) -> float:
    """Where ``value`` (in the chart's unit) sits, read off the force axis's tick marks."""
    ticks = []
    for g in by_class(svg, "g", "ytick"):
        line, text = g.find(SVG + "line"), g.find(SVG + "text")
        assert line is not None
        assert text is not None
        assert text.text is not None
        ticks.append((float(text.text), float(line.get("y1", "nan"))))
    (v0, y0), (v1, y1) = ticks[0], ticks[-1]
    return y0 + (value - v0) * (y1 - y0) / (v1 - v0)


def table_rows(page: str, caption: str) -> list[list[str]]:
    """The cells of the body rows of the table with this caption, tags stripped."""
    match = re.search(
        rf"<caption>{re.escape(caption)}</caption>.*?<tbody>(.*?)</tbody>", page, re.S
    )
    assert match is not None, caption
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", match.group(1), re.S)
    return [
        [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td>(.*?)</td>", r, re.S)] for r in rows
    ]


# --- the page ---------------------------------------------------------------------------------


def test_the_page_is_well_formed_html5_without_external_resources(records: Records) -> None:
    page = render(records)

    assert page.startswith("<!DOCTYPE html>")
    checker = check_html(page)
    assert checker.tags.count("svg") == 1
    assert '<meta charset="utf-8">' in page
    assert "<script" not in page
    assert not re.search(r"""(?:src|href)\s*=|@import|url\(""", page)
    assert "generated by devicectl 0.1.0 on 2025-03-02 12:00:00 UTC" in page


def test_the_chart_has_the_trace_bands_ceilings_and_a_marker_per_hold(records: Records) -> None:
    svg = svg_of(render(records))

    assert len(by_class(svg, "path", "force")) == 1
    assert list(svg.iter(SVG + "polyline")) == []  # one trace in all
    bands = by_class(svg, "rect", "band")
    assert sorted(b.get("data-step", "") for b in bands) == ["2", "3"]  # each hold step, once
    ceilings = by_class(svg, "line", "ceiling")
    assert sorted(c.get("data-step", "") for c in ceilings) == ["2", "3"]
    assert all(c.get("stroke-dasharray") for c in ceilings)
    starts = by_class(svg, "line", "hold-start")
    assert len(starts) == len(by_class(svg, "line", "hold-end")) == len(HOLDS)
    labels = [t.text for t in by_class(svg, "text", "hold-label")]
    assert labels == ["upper trapezius L #1", "upper trapezius L #2", "levator #1"]
    assert len(by_class(svg, "rect", "pause-step")) == 1
    assert len(by_class(svg, "path", "alarm")) == 1


def test_bands_and_ceilings_sit_at_the_plans_forces(records: Records) -> None:
    svg = svg_of(render(records))

    band = next(b for b in by_class(svg, "rect", "band") if b.get("data-step") == "2")
    top, height = float(band.get("y", "nan")), float(band.get("height", "nan"))
    assert top == pytest.approx(y_of(svg, 40.0), abs=0.11)
    assert top + height == pytest.approx(y_of(svg, 20.0), abs=0.2)
    ceiling = next(c for c in by_class(svg, "line", "ceiling") if c.get("data-step") == "3")
    assert float(ceiling.get("y1", "nan")) == pytest.approx(y_of(svg, 70.0), abs=0.11)


def test_the_band_spans_the_time_its_step_ran(records: Records) -> None:
    svg = svg_of(render(records))
    ticks = [
        (float(text.text or "nan"), float(line.get("x1", "nan")))
        for g in by_class(svg, "g", "xtick")
        if (line := g.find(SVG + "line")) is not None and (text := g.find(SVG + "text")) is not None
    ]
    (t0, x0), (t1, x1) = ticks[0], ticks[-1]

    def x_of(t: float) -> float:
        return x0 + (t - t0) * (x1 - x0) / (t1 - t0)

    band = next(b for b in by_class(svg, "rect", "band") if b.get("data-step") == "2")
    left, width = float(band.get("x", "nan")), float(band.get("width", "nan"))
    assert left == pytest.approx(x_of(2.0), abs=0.11)  # the step's first phase
    assert left + width == pytest.approx(x_of(24.0), abs=0.2)  # its DONE


def test_the_dose_table_shows_the_records_numbers(records: Records) -> None:
    session_id = record(records, Spec())
    page = render_report(records, session_id, generated_at=GENERATED)
    recorded = records.holds(session_id)

    rows = table_rows(page, "Each hold")
    assert len(rows) == len(recorded) == 3
    for row, h in zip(rows, recorded, strict=True):
        assert row[:10] == [
            str(h["step_index"] + 1), h["site"], str(h["rep"]), f"{h['in_band_s']:.1f}",
            f"{h['planned_in_band_s']:.0f}", f"{h['integral_ns']:.0f}", f"{h['peak_n']:.1f}",
            f"{h['mean_n']:.1f}", f"{h['over_ceiling_s']:.1f}",
            "--" if h["ramp_rate_n_s"] is None else f"{h['ramp_rate_n_s']:.1f}",
        ]  # fmt: skip
    assert rows[1][10] == "incomplete"
    sites = {r[0]: r for r in table_rows(page, "Per site")}
    trapezius = sites["upper trapezius L"]
    assert trapezius[1:5] == [f"{5.04 + 3.25:.1f}", "10", f"{100 * 8.29 / 10:.0f} %", "1/2"]
    [total] = table_rows(page, "The session")
    assert total[0] == "neck"
    assert total[1:6] == [f"{5.04 + 3.25 + 5.04:.1f}", "15", "89 %", "2/3", f"{3 * 185.25:.0f}"]
    assert total[6] == "47.5"  # the session's peak


def test_forces_are_shown_in_the_plans_unit(records: Records) -> None:
    plan = PLAN.replace('units = "N"', 'units = "kgf"').replace("[20, 40]", "[2, 4]")
    plan = plan.replace("[25, 45]", "[2.5, 4.5]").replace("ceiling = 60", "ceiling = 6")
    page = render(records, Spec(plan_text=plan.replace("ceiling = 70", "ceiling = 7")))

    [total] = table_rows(page, "The session")
    assert total[6] == f"{47.5 / KGF_N:.1f}"
    assert "peak kgf" in page
    assert "force (kgf)" in page
    svg = svg_of(page)
    ceiling = next(c for c in by_class(svg, "line", "ceiling") if c.get("data-step") == "3")
    assert float(ceiling.get("y1", "nan")) == pytest.approx(y_of(svg, 7.0), abs=0.11)


def test_recorded_strings_are_escaped(records: Records) -> None:
    hostile = "<script>alert('x')</script>"
    plan = PLAN.replace('name = "neck"', f'name = "{hostile}"').replace(
        "levator", f"levator {hostile}"
    )
    holds = [*HOLDS[:2], dose(2, f"levator {hostile}", 1, 25.0)]
    events = ((1.0, "alert.refused", "info", f'say "{hostile}" & more', {"note": hostile}),)
    spec = Spec(plan_text=plan, plan_name=hostile, holds=holds, events=events)
    page = render(records, spec)

    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    check_html(page)
    svg_of(page)  # still well-formed XML


def test_control_characters_never_reach_the_page(records: Records) -> None:
    events = ((1.0, "alert.refused", "info", "bell\x07 and nul\x00", None),)
    page = render(records, Spec(events=events))

    assert "\x07" not in page
    assert "\x00" not in page
    assert "bell\ufffd and nul\ufffd" in page


def test_feedback_and_events_tables_highlight_alarms(records: Records) -> None:
    page = render(records)

    assert table_rows(page, "Scores the client gave (0 to 10)") == [
        ["0:30.0", "6/10", "sharp &lt;b&gt;pain&lt;/b&gt;"]
    ]
    events = table_rows(page, "Alarms are highlighted")
    assert [r[1] for r in events] == ["cue.step_start", "alert.ceiling"]  # feedback listed above
    assert events[1][:4] == ["0:27.0", "alert.ceiling", "alarm", "force 75 N above the ceiling"]
    assert '<tr class="alarm"><td>0:27.0</td>' in page


def test_a_band_change_splits_the_shaded_band(records: Records) -> None:
    change = {"step": 3, "band_n": [30.0, 50.0], "reason": "too little"}
    events = ((28.0, "band.raised", "info", "", change),)
    page = render(records, Spec(events=events))
    svg = svg_of(page)

    pieces = [b for b in by_class(svg, "rect", "band") if b.get("data-step") == "3"]
    assert len(pieces) == 2
    assert float(pieces[1].get("y", "nan")) == pytest.approx(y_of(svg, 50.0), abs=0.11)
    assert "step 3: band now 30.0-50.0 N (too little)" in page


def test_session_pauses_are_shaded(records: Records) -> None:
    events = (
        (5.0, "session.paused", "info", "pause", None),
        (8.0, "session.running", "info", "", None),
    )
    svg = svg_of(render(records, Spec(events=events)))

    [paused] = by_class(svg, "rect", "session-paused")
    assert paused.get("fill") != by_class(svg, "rect", "pause-step")[0].get("fill")


def test_a_simulated_session_says_so(records: Records) -> None:
    page = render(records)
    assert "<title>devicectl report: session 1, neck (SIMULATED)</title>" in page
    assert "SIMULATED</span></h1>" in page


def test_a_real_device_is_not_labelled_simulated(records: Records) -> None:
    page = render(records, Spec(devices=(REAL_TBAR,)))
    assert "SIMULATED" not in page
    assert "<td>3f0c9a41d2e7</td>" in page  # the calibration's id


def test_a_session_that_did_not_complete_is_marked(records: Records) -> None:
    page = render(records, Spec(status="stopped", summary={"units": "N", "reason": "stop key"}))
    assert '<span class="badge not-completed">STOPPED</span>: stop key' in page


def test_a_session_with_no_data_still_renders(records: Records) -> None:
    spec = Spec(samples=(), phases=(), holds=(), events=(), summary=None, status="interrupted")
    page = render(records, spec)

    check_html(page)
    svg = svg_of(page)
    assert by_class(svg, "path", "force") == []
    assert "no force samples recorded" in page
    assert "No hold was recorded." in page
    assert "INTERRUPTED" in page


def test_an_unreadable_plan_still_gives_a_report(records: Records) -> None:
    page = render(records, Spec(plan_text="not = [toml"))

    check_html(page)
    assert "the recorded plan cannot be read" in page
    assert by_class(svg_of(page), "rect", "band") == []
    [total] = table_rows(page, "The session")
    assert total[1:3] == [f"{5.04 + 3.25 + 5.04:.1f}", "15"]  # planned as each hold recorded


# --- decimation -------------------------------------------------------------------------------


def test_decimation_keeps_each_columns_extremes_in_time_order() -> None:
    samples = [(i / 1000, math.sin(i / 37)) for i in range(100_000)]
    samples[54_321] = (54.321, 9.0)
    samples[70_000] = (70.0, -9.0)

    points = decimate(samples, columns=100, span_s=100.0)

    assert len(points) <= 200
    assert (54.321, 9.0) in points
    assert (70.0, -9.0) in points
    assert [t for t, _ in points] == sorted(t for t, _ in points)


def test_decimation_widens_its_columns_when_data_runs_long() -> None:
    samples = [(float(i), float(i % 7)) for i in range(1000)]  # 10x the span it was told
    samples[-1] = (999.0, -1.0)
    points = decimate(samples, columns=11, span_s=100.0)

    assert len(points) <= 22
    assert (999.0, -1.0) in points  # the last column is kept, odd column counts too
    assert max(f for _, f in points) == 6.0
    assert len(points) >= 11  # widened only as far as needed: at least half the columns used
    assert decimate([(0.0, math.nan), (math.inf, 1.0)]) == []


def test_a_1khz_ten_minute_session_stays_small_and_keeps_its_peak(
    records: Records, tmp_path: Path
) -> None:
    rate_hz, seconds = 1000, 600
    samples = [(i / rate_hz, 30.0 + 5.0 * math.sin(i / 150.0)) for i in range(rate_hz * seconds)]
    peak_at = 345_678
    samples[peak_at] = (peak_at / rate_hz, 88.8)
    phases = [(0.0, 1, 1, "ARMED"), (590.0, 1, 1, "DONE")]
    holds = [dose(1, "upper trapezius L", r, 60.0 * r) for r in range(1, 9)]
    page = render(records, Spec(samples=samples, phases=phases, holds=holds))
    out = tmp_path / "big.html"
    write_report(page, out)

    # The bound docs/report.md states: the trace is at most 2 x 1200 points, the page ~60 KB.
    assert out.stat().st_size < 100_000
    svg = svg_of(page)
    points = path_points(svg)
    assert len(points) <= 2 * CHART_COLUMNS
    assert min(y for _, y in points) == pytest.approx(y_of(svg, 88.8), abs=0.11)


# --- writing and the command ------------------------------------------------------------------


def test_write_report_is_atomic_and_reports_os_errors(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    write_report("<!DOCTYPE html>é", out)
    assert out.read_text(encoding="utf-8") == "<!DOCTYPE html>é"
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temporary file left

    with pytest.raises(DevicectlError, match=r"cannot write the report to .*: No such file"):
        write_report("x", tmp_path / "missing" / "r.html")
    with pytest.raises(DevicectlError, match="cannot write the report to"):
        write_report("x", tmp_path)  # a directory
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_a_missing_session_is_a_records_error(records: Records) -> None:
    with pytest.raises(RecordsError, match="no session 42 in"):
        render_report(records, 42)


def main(*argv: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """``devicectl`` with ``report`` registered (cli.py adds it once the lead wires it in)."""
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "report" not in sub.choices:
        report_cli.add_parser(sub)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    return cli.main(list(argv))


def test_the_command_writes_session_id_html_here_by_default(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with Records.open(db) as r:
        session_id = record(r, Spec())
    monkeypatch.chdir(tmp_path)

    code = main("report", str(session_id), "--db", str(db), monkeypatch=monkeypatch)

    assert code == 0
    assert capsys.readouterr().out == f"session-{session_id}.html\n"
    check_html((tmp_path / f"session-{session_id}.html").read_text(encoding="utf-8"))


def test_the_command_writes_to_out(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with Records.open(db) as r:
        session_id = record(r, Spec())
    out = tmp_path / "reports" / "neck.html"
    out.parent.mkdir()

    code = main(
        "report", str(session_id), "--out", str(out), "--db", str(db), monkeypatch=monkeypatch
    )

    assert code == 0
    assert capsys.readouterr().out == f"{out}\n"
    assert "neck" in out.read_text(encoding="utf-8")


def test_an_unwritable_out_exits_2(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with Records.open(db) as r:
        session_id = record(r, Spec())
    out = tmp_path / "no such dir" / "r.html"

    code = main(
        "report", str(session_id), "--out", str(out), "--db", str(db), monkeypatch=monkeypatch
    )

    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"devicectl: error: cannot write the report to {out}: ")


def test_a_missing_id_exits_2_with_one_line(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Records.open(db).close()
    monkeypatch.chdir(tmp_path)

    code = main("report", "99", "--db", str(db), monkeypatch=monkeypatch)

    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"devicectl: error: no session 99 in {db}\n"
    assert not (tmp_path / "session-99.html").exists()


def test_reporting_from_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    args = argparse.Namespace(id=1, out=tmp_path / "r.html", db=missing)
    with pytest.raises(DevicectlError, match="no session records at"):
        report_command(args)
    assert not missing.exists()
