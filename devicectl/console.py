"""Text for people: the live status line, event lines and the dose table. Pure functions of data."""

from __future__ import annotations

from devicectl.dose import DoseTotals, HoldDose, SessionDose
from devicectl.plan import HoldStep, Plan
from devicectl.timing.types import (
    ActuatorCommand,
    Alert,
    BandChanged,
    BandDirection,
    Cue,
    CueKind,
    HoldDone,
    Output,
    Phase,
    PhaseChange,
    SessionEnded,
    SessionState,
    StateChange,
    Status,
)
from devicectl.units import ForceUnit, from_newtons, pressure_kpa

_CUE_TEXT = {
    CueKind.RELEASE: "RELEASE now",
    CueKind.REST_OVER: "rest over: next hold when ready",
    CueKind.STEP_START: "next step",
    CueKind.SESSION_DONE: "session complete",
}
# Why a release was cued: the therapist must know whether the dose was delivered.
_RELEASE_REASON = {
    "complete": "hold complete",
    "over_held": "hold cap reached (OVER-HELD)",
    "site_cap": "this site's in-band cap is reached",
    "next": "step ended early (next)",
    "session_cap": "session cap reached",
}


def cue_text(cue: Cue) -> str:
    text = _CUE_TEXT[cue.kind]
    if cue.kind is CueKind.RELEASE:
        text += f": {_RELEASE_REASON.get(cue.reason, cue.reason or 'hold over')}"
    return text


def _f(value_n: float | None, unit: ForceUnit, digits: int = 1) -> str:
    if value_n is None:
        return "--"
    return f"{from_newtons(value_n, unit):.{digits}f}"


def _g(value_n: float, unit: ForceUnit) -> str:
    """A force in plan units to 0.1, without a trailing .0: 25, 2.2."""
    return f"{round(from_newtons(value_n, unit), 1):g}"


def _bar(done: float, total: float, width: int = 10) -> str:
    filled = 0 if total <= 0 else min(width, int(width * done / total))
    return "#" * filled + "." * (width - filled)


def status_line(status: Status, unit: ForceUnit) -> str:
    """One line: step, phase, force against band, hold progress or countdown."""
    parts = [
        f"step {status.step_index + 1}/{status.step_count}",
        status.label,
        f"rep {status.rep}/{status.repeats}" if status.step_kind == "hold" else status.step_kind,
        status.phase.value if status.state is SessionState.RUNNING else status.state.value.upper(),
        f"{_f(status.force_n, unit)} {unit.value}",
    ]
    if status.band_n is not None:
        parts.append(f"band {_f(status.band_n[0], unit)}-{_f(status.band_n[1], unit)}")
    if status.hold_s is not None and status.phase in (Phase.RAMP, Phase.HOLD, Phase.RELEASE):
        bar = _bar(status.in_band_s, status.hold_s)
        parts.append(f"hold [{bar}] {status.in_band_s:4.1f}/{status.hold_s:.0f} s")
    if status.countdown_s is not None:
        parts.append(f"{status.countdown_s:4.1f} s left")
    if status.link:
        parts.append(f"T-bar {status.link.upper()}")
    if status.frozen:
        parts.append("NO DATA: timer frozen")
    return " | ".join(p for p in parts if p)


def event_line(output: Output, elapsed_s: float, plan: Plan) -> str | None:
    """A line for the log, or None for outputs that are not worth a line."""
    stamp = f"[{elapsed_s:7.1f}s]"
    match output:
        case PhaseChange(step_index=i, rep=rep, phase=phase):
            return f"{stamp} step {i + 1} rep {rep}: {phase.value}"
        case Cue():
            return f"{stamp} CUE {cue_text(output)}"
        case StateChange(state=state, reason=reason):
            why = f" ({reason})" if reason else ""
            return f"{stamp} session {state.value.upper()}{why}"
        case Alert(severity=sev, message=message):
            return f"{stamp} {sev.value.upper()}: {message}"
        case HoldDone(dose=d):
            return f"{stamp} hold done: {hold_summary(d, plan)}"
        case ActuatorCommand(actuator=a, action=action):
            return f"{stamp} {a.value}: {action}"
        case BandChanged(band_n=(low, high), direction=way, reason=reason):
            moved = "raised" if way is BandDirection.UP else "lowered"
            unit = plan.units
            why = f" ({reason})" if reason else ""
            return f"{stamp} band {moved} to {_g(low, unit)}-{_g(high, unit)} {unit.value}{why}"
        case SessionEnded(state=state):
            return f"{stamp} session {state.value}"
    return None


def tip_area(plan: Plan, step_index: int) -> float | None:
    """The tip area of a hold step, when the plan gives one (pressure is shown then)."""
    step = plan.steps[step_index] if 0 <= step_index < len(plan.steps) else None
    return step.tip_area_cm2 if isinstance(step, HoldStep) else None


def peak_pressure(d: HoldDose, plan: Plan) -> str:
    area = tip_area(plan, d.step_index)
    return "" if area is None else f"{pressure_kpa(d.peak_n, area):.0f}"


def hold_summary(d: HoldDose, plan: Plan) -> str:
    unit = plan.units
    result = "complete" if d.completed else "incomplete"
    if d.over_held:
        result += ", OVER-HELD"
    kpa = peak_pressure(d, plan)
    pressure = f" = {kpa} kPa" if kpa else ""
    return (
        f"{d.site} rep {d.rep}: {d.in_band_s:.1f}/{d.planned_in_band_s:.0f} s in band, "
        f"{d.integral_ns:.0f} N*s, peak {_f(d.peak_n, unit)} {unit.value}{pressure} ({result})"
    )


_HEAD = ("", "in band s", "planned s", "holds", "N*s", "peak", "mean", "over ceil s")


def _totals_row(t: DoseTotals, unit: ForceUnit, label: str, gun: bool) -> tuple[str, ...]:
    row = (
        label,
        f"{t.in_band_s:.1f}",
        f"{t.planned_in_band_s:.0f}",
        f"{t.holds_done}/{t.holds_planned}",
        f"{t.integral_ns:.0f}",
        _f(t.peak_n, unit),
        _f(t.mean_n, unit),
        f"{t.over_ceiling_s:.1f}",
    )
    return (*row, f"{t.gun_s:.0f}/{t.planned_gun_s:.0f}") if gun else row


def _hold_row(d: HoldDose, plan: Plan) -> tuple[str, ...]:
    unit = plan.units
    flag = "" if d.completed else " (incomplete)"
    if d.over_held:
        flag += " OVER-HELD"
    return (
        f"{d.site} #{d.rep}{flag}",
        f"{d.in_band_s:.1f}",
        f"{d.planned_in_band_s:.0f}",
        "",
        f"{d.integral_ns:.0f}",
        _f(d.peak_n, unit),
        _f(d.mean_n, unit),
        f"{d.over_ceiling_s:.1f}",
        _f(d.ramp_rate_n_s, unit),
        peak_pressure(d, plan),
    )


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]

    def cell(i: int, text: str) -> str:
        return text.ljust(widths[i]) if i == 0 else text.rjust(widths[i])

    return ["  ".join(cell(i, c) for i, c in enumerate(r)) for r in rows]


# Step labels can be whole instructions; the table keeps to a readable width.
_LABEL_WIDTH = 32


def _step_label(plan: Plan, index: int, label: str) -> str:
    kind = plan.steps[index].kind if index < len(plan.steps) else "step"
    text = f"{index + 1}. {kind}: {label}"
    return text if len(text) <= _LABEL_WIDTH else text[: _LABEL_WIDTH - 3] + "..."


def dose_table(dose: SessionDose, plan: Plan) -> str:
    """The dose delivered against planned: every hold, then per step, per site and the session."""
    unit = plan.units
    head = (*_HEAD[1:5], f"peak {unit.value}", f"mean {unit.value}", _HEAD[7])
    gun = dose.total.planned_gun_s > 0
    totals_head = (*head, "gun s") if gun else head
    lines = ["Dose delivered against planned"]
    if dose.holds:
        rows = [_hold_row(d, plan) for d in dose.holds]
        with_kpa = any(r[-1] for r in rows)
        ramp = f"ramp {unit.value}/s"
        hold_head = ("hold", *head, ramp, "peak kPa") if with_kpa else ("hold", *head, ramp)
        lines += [*_table([hold_head, *(r if with_kpa else r[:-1] for r in rows)]), ""]
    steps = [
        _totals_row(t, unit, _step_label(plan, i, t.label), gun) for i, t in enumerate(dose.steps)
    ]
    lines += [*_table([("step", *totals_head), *steps]), ""]
    sites = [_totals_row(t, unit, t.label, gun) for t in dose.sites]
    if sites:
        lines += [*_table([("site", *totals_head), *sites]), ""]
    total = _totals_row(dose.total, unit, dose.total.label, gun)
    lines += _table([("session", *totals_head), total])
    return "\n".join(lines)
