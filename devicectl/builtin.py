"""Built-in plans (``devicectl/plans/*.toml``, shipped as package data): list, find, describe.

``devicectl plans list/show/validate`` and every command that takes a plan go through
:func:`resolve_plan`, so a file path and a built-in's name work the same way everywhere.
"""

from __future__ import annotations

import textwrap
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from devicectl.errors import PlanError
from devicectl.limits import gun_time_by_area, in_band_by_site, planned_duration_s
from devicectl.plan import ChairStep, GunStep, HoldStep, PauseStep, Plan, Step
from devicectl.planfile import load_plan, parse_plan
from devicectl.units import ForceUnit, from_newtons, pressure_kpa

BUILTIN_PREFIX = "builtin:"  # how a built-in's source is written in Plan.source and in records


def _plans_dir() -> Traversable:
    return resources.files("devicectl").joinpath("plans")


def builtin_names() -> list[str]:
    """The built-in plans' names (file stems), sorted."""
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in _plans_dir().iterdir()
        if entry.name.endswith(".toml")
    )


def builtin_text(name: str) -> str:
    """A built-in plan's TOML, as shipped. PlanError (listing the built-ins) if there is none."""
    name = name.removeprefix(BUILTIN_PREFIX)
    if name not in builtin_names():
        raise PlanError(
            BUILTIN_PREFIX + name, f"no built-in plan named {name!r}; built-ins: {_known()}"
        )
    return _plans_dir().joinpath(f"{name}.toml").read_text(encoding="utf-8")


def builtin_plan(name: str) -> Plan:
    name = name.removeprefix(BUILTIN_PREFIX)
    return parse_plan(builtin_text(name), BUILTIN_PREFIX + name)


def resolve_plan(arg: str) -> Plan:
    """A plan file when ``arg`` is an existing path (or ends in .toml), else a built-in by name."""
    path = Path(arg)
    if path.exists():
        return load_plan(path)
    name = arg.removeprefix(BUILTIN_PREFIX)
    if not arg.endswith(".toml") and name in builtin_names():
        return builtin_plan(name)
    raise PlanError(arg, f"no plan file or built-in plan named {arg!r}; built-ins: {_known()}")


def _known() -> str:
    return ", ".join(builtin_names())


# --- describe ----------------------------------------------------------------------------------


def describe_plan(plan: Plan) -> str:
    """Human text for ``devicectl plans show``: header, numbered steps in plan units, totals."""
    lines = [f"{plan.name}  ({plan.source})"]
    if plan.description:
        lines.append(
            textwrap.fill(plan.description, 96, initial_indent="  ", subsequent_indent="  ")
        )
    lines += [f"Units: {plan.units.value}", f"Limits: {_limits_text(plan)}", "Steps:"]
    for number, step in enumerate(plan.steps, start=1):
        lines.append(f"  {number}. {_step_text(step, plan.units)}")
        if step.note:
            lines.append(f"     {step.note}")
    return "\n".join(lines + _totals(plan))


def _force(value_n: float, unit: ForceUnit) -> str:
    return f"{round(from_newtons(value_n, unit), 2):g} {unit.value}"


def _secs(value: float) -> str:
    if value < 60:
        return f"{value:g} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"


def _limits_text(plan: Plan) -> str:
    lim = plan.limits
    session = "none" if lim.max_session_s is None else _secs(lim.max_session_s)
    return (
        f"contact {_force(lim.contact_n, plan.units)}, stale after {lim.stale_s:g} s, "
        f"at most {lim.max_reps_per_site} holds and {_secs(lim.max_site_in_band_s)} in band "
        f"per site, {_secs(lim.max_gun_area_s)} gun time per area, session cap {session}"
    )


def _step_text(step: Step, unit: ForceUnit) -> str:
    if isinstance(step, HoldStep):
        return _hold_text(step, unit)
    if isinstance(step, PauseStep):
        return "pause, " + (
            "until confirmed" if step.duration_s is None else _secs(step.duration_s)
        )
    if isinstance(step, GunStep):
        return f"gun on {step.area}, level {step.level}, {_secs(step.duration_s)}"
    assert isinstance(step, ChairStep)  # the Step union has four members
    return f"chair program {step.program!r}, {_secs(step.duration_s)}"


def _hold_text(step: HoldStep, unit: ForceUnit) -> str:
    band = f"{_force(step.low_n, unit).split()[0]}-{_force(step.high_n, unit)}"
    text = (
        f"hold on {step.site}: band {band}, ceiling {_force(step.ceiling_n, unit)}, "
        f"{step.repeat} x {_secs(step.hold_s)} in band, rest {_secs(step.rest_s)}, "
        f"grace {step.grace_s:g} s, cap {_secs(step.max_hold_s)}"
    )
    if step.ramp_rate_n_s is not None:
        text += f", ramp {_force(step.ramp_rate_n_s, unit)}/s"
    if step.tip_area_cm2 is not None:
        low, high = (pressure_kpa(f, step.tip_area_cm2) for f in (step.low_n, step.high_n))
        text += f", tip {step.tip_area_cm2:g} cm2 ({low:.0f}-{high:.0f} kPa)"
    return text


def _totals(plan: Plan) -> list[str]:
    lines = ["Totals:"]
    lines += [f"  in band on {site}: {_secs(s)}" for site, s in in_band_by_site(plan.steps).items()]
    lines += [f"  gun on {area}: {_secs(s)}" for area, s in gun_time_by_area(plan.steps).items()]
    extra = _unplanned(plan)
    least = "at least " if extra else ""
    lines.append(f"  planned duration: {least}{_secs(planned_duration_s(plan))}{extra}")
    return lines


def _unplanned(plan: Plan) -> str:
    """What the estimate leaves out: ramps into the band, and pauses that wait for a confirm."""
    extra = []
    if plan.hold_steps:
        extra.append("ramps")
    if any(isinstance(s, PauseStep) and s.duration_s is None for s in plan.steps):
        extra.append("untimed pauses")
    return f" (plus {' and '.join(extra)})" if extra else ""
