"""What a person reads: the status line and the dose table, in the plan's units."""

from __future__ import annotations

import io
import json

from devicectl.console import dose_table, event_line, status_line
from devicectl.dose import HoldDose, session_dose
from devicectl.plan import GunStep, HoldStep, PauseStep, Plan
from devicectl.sinks import JsonSink
from devicectl.timing.types import (
    BandChanged,
    BandDirection,
    Cue,
    CueKind,
    Phase,
    SessionState,
    StateChange,
    Status,
)
from devicectl.units import KGF_N, ForceUnit


def _hold(*, completed: bool = True, over_held: bool = False, step_index: int = 0) -> HoldDose:
    return HoldDose(
        step_index=step_index, site="calf L", rep=1, started_s=1.0, ended_s=40.0,
        planned_in_band_s=30.0, in_band_s=30.0, contact_s=38.0, integral_ns=1140.0,
        peak_n=4 * KGF_N, mean_n=30.0, over_ceiling_s=0.0, ramp_rate_n_s=10.0,
        completed=completed, over_held=over_held,
    )  # fmt: skip


def _plan(units: ForceUnit, tip: float | None = None) -> Plan:
    step = HoldStep("calf L", 20.0, 40.0, 60.0, hold_s=30.0, tip_area_cm2=tip)
    return Plan("p", units, (step,))


def test_dose_table_shows_forces_in_the_plan_unit_and_delivered_against_planned() -> None:
    plan = _plan(ForceUnit.KGF)
    table = dose_table(session_dose(plan, [_hold()], {}), plan)
    assert "peak kgf" in table
    assert "4.0" in table  # the 4 kgf peak, not 39.2 N
    assert "39.2" not in table
    assert "1/1" in table  # holds done / planned
    assert "kPa" not in table  # no tip area, no pressure
    assert "ramp kgf/s" in table
    assert "1.0" in table.splitlines()[2]  # the 10 N/s ramp, as 1.0 kgf/s


def test_dose_table_adds_pressure_when_the_plan_gives_a_tip_area() -> None:
    plan = _plan(ForceUnit.N, tip=1.0)
    table = dose_table(session_dose(plan, [_hold()], {}), plan)
    assert "peak kPa" in table
    assert "392" in table  # 39.23 N on 1 cm^2 = 392 kPa


def test_incomplete_and_over_held_holds_are_marked() -> None:
    plan = _plan(ForceUnit.N)
    table = dose_table(session_dose(plan, [_hold(completed=False, over_held=True)], {}), plan)
    assert "(incomplete) OVER-HELD" in table
    assert "0/1" in table


def test_status_line_in_hold_shows_progress_band_and_force_in_plan_units() -> None:
    status = Status(
        state=SessionState.RUNNING, step_index=1, step_count=3, step_kind="hold", label="calf L",
        rep=2, repeats=3, phase=Phase.HOLD, force_n=3 * KGF_N, band_n=(2 * KGF_N, 4 * KGF_N),
        ceiling_n=6 * KGF_N, in_band_s=15.0, hold_s=30.0, countdown_s=None, frozen=False,
        elapsed_s=100.0,
    )  # fmt: skip
    line = status_line(status, ForceUnit.KGF)
    assert "step 2/3" in line
    assert "rep 2/3" in line
    assert "3.0 kgf" in line
    assert "band 2.0-4.0" in line
    assert "[#####.....] 15.0/30 s" in line
    frozen = status_line(
        Status(**{**status.__dict__, "frozen": True, "state": SessionState.PAUSED}),
        ForceUnit.KGF,
    )
    assert "NO DATA" in frozen
    assert "PAUSED" in frozen


def test_release_cue_says_why_the_release_came() -> None:
    plan = _plan(ForceUnit.N)
    complete = event_line(Cue(12.0, CueKind.RELEASE, 0, reason="complete"), 12.0, plan)
    assert complete == "[   12.0s] CUE RELEASE now: hold complete"
    capped = event_line(Cue(90.0, CueKind.RELEASE, 0, reason="over_held"), 90.0, plan)
    assert capped is not None
    assert "OVER-HELD" in capped
    assert "complete" not in capped
    early = event_line(Cue(5.0, CueKind.RELEASE, 0, reason="next"), 5.0, plan)
    assert early is not None
    assert "early" in early


def test_pause_and_resume_have_lines() -> None:
    plan = _plan(ForceUnit.N)
    line = event_line(
        StateChange(3.0, SessionState.PAUSED, SessionState.RUNNING, "pause"), 3.0, plan
    )
    assert line == "[    3.0s] session PAUSED (pause)"


def test_dose_table_has_a_row_per_step_and_gun_time_against_planned() -> None:
    plan = Plan(
        "mixed",
        ForceUnit.N,
        (
            GunStep("quads", 3, 60.0),
            PauseStep(None, "Put the gun down and pick up the T-bar; confirm to continue"),
            HoldStep("calf L", 20.0, 40.0, 60.0, hold_s=30.0),
        ),
    )
    table = dose_table(session_dose(plan, [_hold(step_index=2)], {0: 45.0}), plan)
    rows = {line.split("  ")[0].strip(): line for line in table.splitlines()}
    assert "2. pause: Put the gun down an..." in rows  # long labels are cut
    assert rows["1. gun: quads"].endswith("45/60")  # gun seconds delivered against planned
    assert rows["3. hold: calf L"].split()[4:7] == ["30.0", "30", "1/1"]


def test_a_band_change_has_a_line_in_the_plan_unit_with_its_reason() -> None:
    raised = BandChanged(12.0, 0, 1, (25.0, 45.0), (20.0, 40.0), BandDirection.UP, "too little")
    line = event_line(raised, 12.0, _plan(ForceUnit.N))
    assert line == "[   12.0s] band raised to 25-45 N (too little)"
    lowered = BandChanged(13.0, 0, 1, (2 * KGF_N, 4 * KGF_N), (0.0, 0.0), BandDirection.DOWN)
    line = event_line(lowered, 13.0, _plan(ForceUnit.KGF))
    assert line == "[   13.0s] band lowered to 2-4 kgf"


def test_the_json_sink_emits_a_band_change_with_its_fields() -> None:
    out = io.StringIO()
    sink = JsonSink(out)
    sink.sample(0.5, 21.0)  # samples are not on this stream
    raised = BandChanged(12.0, 0, 1, (22.0, 42.0), (20.0, 40.0), BandDirection.UP, "too little")
    sink.outputs([raised], 12.0)
    [record] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert record == {
        "type": "BandChanged",
        "elapsed_s": 12.0,
        "t": 12.0,
        "step_index": 0,
        "rep": 1,
        "band_n": [22.0, 42.0],
        "previous_n": [20.0, 40.0],
        "direction": "up",
        "reason": "too little",
    }
