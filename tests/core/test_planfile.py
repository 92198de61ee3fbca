"""Plan files: every validation rule names file, step and field and says what is allowed."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devicectl.errors import PlanError
from devicectl.limits import HARD_LIMITS
from devicectl.plan import ChairStep, GunStep, HoldStep, PauseStep, Plan
from devicectl.planfile import RAMP_ROOM_S, load_plan, parse_plan
from devicectl.units import KGF_N, LBF_N, ForceUnit

SRC = "plans/test.toml"


# --- helpers: plans as dicts, written as TOML --------------------------------------------------


def toml_value(value: object) -> str:
    """Enough of a TOML writer for plans: scalars, arrays and inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return toml_str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_str(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_str(text: str) -> str:
    """A TOML basic string: backslash and quote escaped, control characters (DEL too) as \\u."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def to_toml(doc: dict[str, Any]) -> str:
    lines = [f"{toml_str(k)} = {toml_value(v)}" for k, v in doc.items() if k not in _TABLES]
    if isinstance(doc.get("limits"), dict):
        lines.append("[limits]")
        lines += [f"{toml_str(k)} = {toml_value(v)}" for k, v in doc["limits"].items()]
    elif "limits" in doc:
        lines.insert(0, f"limits = {toml_value(doc['limits'])}")
    steps = doc.get("steps")
    if isinstance(steps, list) and steps and all(isinstance(s, dict) for s in steps):
        for step in steps:
            lines.append("[[steps]]")
            lines += [f"{toml_str(k)} = {toml_value(v)}" for k, v in step.items()]
    elif "steps" in doc:
        lines.insert(0, f"steps = {toml_value(steps)}")
    return "\n".join(lines) + "\n"


_TABLES = ("limits", "steps")


def hold(**fields: object) -> dict[str, Any]:
    step: dict[str, Any] = {"type": "hold", "site": "upper trapezius L", "target": [30, 45]}
    step.update(fields)
    return step


def plan_doc(*steps: dict[str, Any], **top: object) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": "Test plan", "units": "N"}
    doc.update(top)
    doc["steps"] = list(steps) if steps else [hold()]
    return doc


def parse(doc: dict[str, Any]) -> Plan:
    return parse_plan(to_toml(doc), SRC)


def error(doc: dict[str, Any]) -> PlanError:
    with pytest.raises(PlanError) as info:
        parse(doc)
    return info.value


def assert_error(
    doc: dict[str, Any], *, step: int | None, field: str | None, says: str | tuple[str, ...]
) -> PlanError:
    err = error(doc)
    assert err.source == SRC
    assert str(err).startswith(SRC)
    assert (err.step, err.field) == (step, field), str(err)
    for part in (says,) if isinstance(says, str) else says:
        assert part in err.message, str(err)
    return err


# --- good plans, one per step type -------------------------------------------------------------


def test_full_hold_step_reads_every_field() -> None:
    step = hold(
        hold_s=45, rest_s=40, repeat=2, ceiling=80, grace_s=1.5, max_hold_s=60, ramp_rate=5,
        tip_area_cm2=1.0, note="slowly",
    )  # fmt: skip
    plan = parse(plan_doc(step, description="d"))
    assert plan.name == "Test plan"
    assert plan.source == SRC
    assert plan.description == "d"
    assert plan.units is ForceUnit.N
    assert plan.steps == (
        HoldStep(
            site="upper trapezius L", low_n=30, high_n=45, ceiling_n=80, hold_s=45, rest_s=40,
            repeat=2, grace_s=1.5, max_hold_s=60, ramp_rate_n_s=5, tip_area_cm2=1.0, note="slowly",
        ),
    )  # fmt: skip


def test_pause_steps_timed_and_untimed() -> None:
    plan = parse(
        plan_doc({"type": "pause", "duration_s": 60, "note": "warm-up"}, {"type": "pause"})
    )
    assert plan.steps == (PauseStep(duration_s=60, note="warm-up"), PauseStep())


def test_gun_step() -> None:
    plan = parse(plan_doc({"type": "gun", "area": "quadriceps L", "level": 3, "duration_s": 90}))
    assert plan.steps == (GunStep(area="quadriceps L", level=3, duration_s=90),)


def test_chair_step() -> None:
    plan = parse(plan_doc({"type": "chair", "program": "classic", "duration_s": 600, "note": "n"}))
    assert plan.steps == (ChairStep(program="classic", duration_s=600, note="n"),)


def test_limits_table_maps_onto_limits() -> None:
    limits = {
        "contact": 3, "stale_s": 0.5, "max_reps_per_site": 5, "max_site_in_band_s": 300,
        "max_gun_area_s": 200, "max_session_s": 1800,
    }  # fmt: skip
    got = parse(plan_doc(limits=limits)).limits
    assert (got.contact_n, got.stale_s, got.max_reps_per_site) == (3, 0.5, 5)
    assert (got.max_site_in_band_s, got.max_gun_area_s, got.max_session_s) == (300, 200, 1800)


def test_load_plan_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(to_toml(plan_doc()), encoding="utf-8")
    plan = load_plan(path)
    assert plan.source == str(path)
    assert plan.hold_steps[0].site == "upper trapezius L"


def test_units_are_case_insensitive() -> None:
    assert parse(plan_doc(units="KGF")).units is ForceUnit.KGF


# --- defaults ----------------------------------------------------------------------------------


def test_hold_defaults_come_from_design() -> None:
    (step,) = parse(plan_doc(hold())).hold_steps
    assert (step.hold_s, step.rest_s, step.grace_s, step.max_hold_s, step.repeat) == (
        30, 30, 2, 90, 1,
    )  # fmt: skip
    assert (step.ramp_rate_n_s, step.tip_area_cm2, step.note) == (None, None, "")


def test_default_ceiling_is_one_and_a_half_times_band_top() -> None:
    assert parse(plan_doc(hold())).hold_steps[0].ceiling_n == pytest.approx(67.5)


def test_default_ceiling_never_exceeds_the_hard_force_limit() -> None:
    step = parse(plan_doc(hold(target=[300, 400]))).hold_steps[0]
    assert step.ceiling_n == HARD_LIMITS.force_n


def test_plan_level_ceiling_is_the_default_for_steps() -> None:
    plan = parse(plan_doc(hold(), hold(site="x", ceiling=90), ceiling=70))
    assert [s.ceiling_n for s in plan.hold_steps] == [70, 90]


def test_default_limits_and_no_session_cap_without_gun() -> None:
    plan = parse(plan_doc())
    assert plan.limits.max_session_s is None
    assert (plan.limits.contact_n, plan.limits.stale_s, plan.limits.max_reps_per_site) == (2, 1, 3)


def test_gun_plan_gets_fifteen_minute_session_cap() -> None:
    gun = {"type": "gun", "area": "calves", "level": 2, "duration_s": 60}
    assert parse(plan_doc(gun)).limits.max_session_s == 900
    assert parse(plan_doc(gun, limits={"max_session_s": 1200})).limits.max_session_s == 1200


# --- unit conversion ---------------------------------------------------------------------------


@pytest.mark.parametrize(("unit", "factor"), [("kgf", KGF_N), ("lbf", LBF_N), ("N", 1.0)])
def test_forces_end_up_in_newtons(unit: str, factor: float) -> None:
    doc = plan_doc(
        hold(target=[3, 4.5], ceiling=7, ramp_rate=0.5), units=unit, limits={"contact": 0.25}
    )
    plan = parse(doc)
    step = plan.hold_steps[0]
    assert plan.units.value == unit
    assert step.low_n == pytest.approx(3 * factor)
    assert step.high_n == pytest.approx(4.5 * factor)
    assert step.ceiling_n == pytest.approx(7 * factor)
    assert step.ramp_rate_n_s == pytest.approx(0.5 * factor)
    assert plan.limits.contact_n == pytest.approx(0.25 * factor)


def test_hard_force_limit_applies_in_newtons() -> None:
    assert_error(
        plan_doc(hold(target=[30, 60]), units="kgf"),
        step=1,
        field="target",
        says=("target high end = 60 kgf exceeds the hard limit of 50.99 kgf (500 N)",),
    )


# --- file-level problems -----------------------------------------------------------------------


def test_bad_toml_gives_line_and_column() -> None:
    with pytest.raises(PlanError) as info:
        parse_plan('name = "x"\nunits = N\n', SRC)
    assert info.value.source == SRC
    assert "not valid TOML" in str(info.value)
    assert "line 2" in str(info.value)
    assert "column" in str(info.value)


def test_missing_file_is_a_plan_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(PlanError, match="cannot read the plan file") as info:
        load_plan(path)
    assert info.value.source == str(path)


def test_non_utf8_file_is_a_plan_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(PlanError, match="cannot read"):
        load_plan(path)


def test_deeply_nested_toml_is_a_plan_error() -> None:
    with pytest.raises(PlanError, match="not valid TOML"):
        parse_plan("x = " + "[" * 5000 + "]" * 5000, SRC)


# --- missing, unknown and wrongly typed keys ---------------------------------------------------


def without(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


@pytest.mark.parametrize(
    ("key", "says"),
    [("name", "the plan's name"), ("units", "N, kgf, lbf"), ("steps", "[[steps]]")],
)
def test_missing_top_level_key(key: str, says: str) -> None:
    assert_error(without(plan_doc(), key), step=None, field=key, says=(repr(key), says))


GUN = {"type": "gun", "area": "calves", "level": 2, "duration_s": 60}
CHAIR = {"type": "chair", "program": "classic", "duration_s": 600}


@pytest.mark.parametrize(
    ("step", "key", "says"),
    [
        (hold(), "site", "missing required key 'site'"),
        (hold(), "target", "[low, high] in N"),
        (hold(), "type", "one of hold, pause, gun, chair"),
        (GUN, "area", "missing required key 'area'"),
        (GUN, "level", "allowed: 1 to 10"),
        (GUN, "duration_s", "allowed: more than 0 to 120 s"),
        (CHAIR, "program", "missing required key 'program'"),
        (CHAIR, "duration_s", "allowed: more than 0 to 3600 s"),
    ],
)
def test_missing_step_key(step: dict[str, Any], key: str, says: str) -> None:
    doc = plan_doc(hold(site="first"), without(step, key))
    assert_error(doc, step=2, field=key, says=says)


@pytest.mark.parametrize(
    ("doc", "step", "field", "suggestion"),
    [
        (plan_doc(unit="N"), None, "unit", "did you mean 'units'?"),
        (plan_doc(hold(hold_seconds=30)), 1, "hold_seconds", "did you mean 'hold_s'?"),
        (plan_doc(hold(ceil=30)), 1, "ceil", "did you mean 'ceiling'?"),
        (plan_doc(limits={"contacts": 2}), None, "limits.contacts", "did you mean 'contact'?"),
        (plan_doc(hold(zzz=1)), 1, "zzz", "known: type, site, target"),
    ],
)
def test_unknown_keys_name_the_nearest_known_key(
    doc: dict[str, Any], step: int | None, field: str, suggestion: str
) -> None:
    assert_error(doc, step=step, field=field, says=("unknown key", suggestion))


def test_a_key_of_another_step_type_is_unknown() -> None:
    assert_error(
        plan_doc({"type": "pause", "level": 3}), step=1, field="level", says="in a pause step"
    )


@pytest.mark.parametrize(
    ("step", "field", "says"),
    [
        (hold(hold_s=True), "hold_s", "must be a number, got the boolean true"),
        (hold(rest_s="30"), "rest_s", "must be a number, got the string '30'"),
        (hold(repeat=2.0), "repeat", "must be a whole number"),
        (hold(repeat=False), "repeat", "must be a whole number, got the boolean false"),
        (hold(target=30), "target", "must be [low, high] in N"),
        (hold(target=[30, 40, 50]), "target", "must be [low, high]"),
        (hold(target=[30, "40"]), "target", "target high end"),
        (hold(site=3), "site", "must be a string"),
        (hold(site="  "), "site", "must not be empty"),
        (hold(note=["x"]), "note", "must be a string"),
        ({**GUN, "level": 2.5}, "level", "must be a whole number"),
        ({"type": 1}, "type", "must be a string"),
    ],
)
def test_wrong_types_in_steps(step: dict[str, Any], field: str, says: str) -> None:
    assert_error(plan_doc(step), step=1, field=field, says=says)


@pytest.mark.parametrize(
    ("doc", "field", "says"),
    [
        (plan_doc(name=7), "name", "must be a string"),
        (plan_doc(units=1), "units", "must be a string"),
        (plan_doc(ceiling=True), "ceiling", "must be a number, got the boolean"),
        (plan_doc(limits=3), "limits", "must be a table"),
        (plan_doc(limits={"max_reps_per_site": 2.5}), "limits.max_reps_per_site", "whole number"),
        (plan_doc(limits={"stale_s": "1"}), "limits.stale_s", "must be a number"),
        ({"name": "x", "units": "N", "steps": []}, "steps", "one or more [[steps]]"),
        ({"name": "x", "units": "N", "steps": 3}, "steps", "one or more [[steps]]"),
    ],
)
def test_wrong_types_at_top_level(doc: dict[str, Any], field: str, says: str) -> None:
    assert_error(doc, step=None, field=field, says=says)


def test_a_step_that_is_not_a_table() -> None:
    assert_error(
        {"name": "x", "units": "N", "steps": [1]}, step=1, field=None, says="[[steps]] table"
    )


def test_unknown_step_type_suggests_and_lists() -> None:
    assert_error(
        plan_doc({"type": "hodl"}), step=1, field="type",
        says=("unknown step type 'hodl'", "did you mean 'hold'?", "hold, pause, gun, chair"),
    )  # fmt: skip


def test_unknown_units() -> None:
    assert_error(plan_doc(units="kg"), step=None, field="units", says=("'kg'", "N, kgf, lbf"))


# --- band, ceiling, contact --------------------------------------------------------------------


@pytest.mark.parametrize("target", [[45, 30], [40, 40]])
def test_band_low_must_be_below_high(target: list[int]) -> None:
    low, high = target
    says = f"the low end {low} N must be below the high end {high} N; write target = [low, high]"
    assert_error(plan_doc(hold(target=target)), step=1, field="target", says=says)


def test_ceiling_below_band_top() -> None:
    assert_error(
        plan_doc(hold(ceiling=40)), step=1, field="ceiling",
        says=("ceiling = 40 N is below the band's high end 45 N", "allowed: 45 to 500 N"),
    )  # fmt: skip


def test_plan_level_ceiling_below_a_band_top_blames_the_step() -> None:
    assert_error(
        plan_doc(hold(), hold(site="x", target=[50, 60]), ceiling=55),
        step=2, field="ceiling", says=("plan-level ceiling 55 N", "high end 60 N"),
    )  # fmt: skip


def test_band_must_sit_above_contact() -> None:
    assert_error(
        plan_doc(hold(target=[3, 10]), limits={"contact": 5}),
        step=1, field="target", says="above the contact threshold limits.contact = 5 N",
    )  # fmt: skip


def test_default_contact_also_applies() -> None:
    assert_error(
        plan_doc(hold(target=[1.5, 10])), step=1, field="target", says="limits.contact = 2 N"
    )


# --- durations and hard limits -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "field", "says"),
    [
        (hold(hold_s=0), "hold_s", "hold_s = 0 s is too small; allowed: more than 0 to 85 s"),
        (hold(rest_s=-1), "rest_s", "rest_s = -1 s is too small; allowed: more than 0 to 600 s"),
        (hold(grace_s=-0.5), "grace_s", "allowed: 0 to 10 s"),
        (hold(repeat=0), "repeat", "allowed: 1 to 3"),
        (hold(target=[-5, 10]), "target", "target low end = -5 N is too small"),
        (hold(max_hold_s=0), "max_hold_s", "allowed: more than 5 to 180 s"),
        ({"type": "pause", "duration_s": 0}, "duration_s", "allowed: more than 0 to 3600 s"),
        ({**GUN, "duration_s": -10}, "duration_s", "allowed: more than 0 to 120 s"),
        ({**CHAIR, "duration_s": 0}, "duration_s", "allowed: more than 0 to 3600 s"),
        (hold(tip_area_cm2=0), "tip_area_cm2", "allowed: 0.1 to 20 cm2"),
        (hold(ramp_rate=0), "ramp_rate", "ramp_rate = 0 N/s is too small"),
    ],
)
def test_zero_and_negative_values(step: dict[str, Any], field: str, says: str) -> None:
    assert_error(plan_doc(step), step=1, field=field, says=says)


@pytest.mark.parametrize(
    ("step", "field", "says"),
    [
        (hold(max_hold_s=200), "max_hold_s", "max_hold_s = 200 s exceeds the hard limit of 180 s"),
        (hold(hold_s=181, max_hold_s=180), "hold_s", "exceeds max_hold_s - 5 s"),
        (hold(rest_s=601), "rest_s", "exceeds the hard limit of 600 s"),
        (hold(grace_s=11), "grace_s", "exceeds the hard limit of 10 s"),
        (hold(target=[30, 501]), "target", "exceeds the hard limit of 500 N"),
        (hold(ceiling=501), "ceiling", "exceeds the hard limit of 500 N"),
        (hold(ramp_rate=51), "ramp_rate", "exceeds the hard limit of 50 N/s"),
        (hold(tip_area_cm2=21), "tip_area_cm2", "exceeds the hard limit of 20 cm2"),
        ({**GUN, "level": 11}, "level", "exceeds the hard limit of 10; allowed: 1 to 10"),
        ({**GUN, "level": 0}, "level", "level = 0 is too small; allowed: 1 to 10"),
        ({"type": "pause", "duration_s": 3601}, "duration_s", "exceeds the hard limit of 3600 s"),
        ({**CHAIR, "duration_s": 3601}, "duration_s", "exceeds the hard limit of 3600 s"),
    ],
)
def test_step_values_beyond_hard_limits(step: dict[str, Any], field: str, says: str) -> None:
    assert_error(plan_doc(step), step=1, field=field, says=says)


def test_repeat_beyond_hard_limit_when_plan_raises_its_own() -> None:
    doc = plan_doc(hold(repeat=11), limits={"max_reps_per_site": 10})
    assert_error(doc, step=1, field="repeat", says="exceeds the hard limit of 10; allowed: 1 to 10")


@pytest.mark.parametrize(
    ("limits", "field", "says"),
    [
        ({"max_reps_per_site": 11}, "max_reps_per_site", "exceeds the hard limit of 10"),
        ({"max_reps_per_site": 0}, "max_reps_per_site", "allowed: 1 to 10"),
        ({"max_site_in_band_s": 601}, "max_site_in_band_s", "exceeds the hard limit of 600 s"),
        ({"max_gun_area_s": 301}, "max_gun_area_s", "exceeds the hard limit of 300 s"),
        ({"max_session_s": 7201}, "max_session_s", "exceeds the hard limit of 7200 s"),
        ({"max_session_s": 0}, "max_session_s", "allowed: more than 0 to 7200 s"),
        ({"stale_s": 0.05}, "stale_s", "stale_s = 0.05 s is too small; allowed: 0.1 to 5 s"),
        ({"stale_s": 6}, "stale_s", "exceeds the hard limit of 5 s"),
        ({"contact": 0}, "contact", "contact = 0 N is too small; allowed: more than 0 to 500 N"),
        ({"contact": 600}, "contact", "exceeds the hard limit of 500 N"),
    ],
)
def test_limits_beyond_hard_limits(limits: dict[str, Any], field: str, says: str) -> None:
    assert_error(plan_doc(limits=limits), step=None, field=f"limits.{field}", says=says)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda v: plan_doc(hold(hold_s=v)), "hold_s"),
        (lambda v: plan_doc(hold(target=[30, v])), "target"),
        (lambda v: plan_doc(limits={"stale_s": v}), "limits.stale_s"),
    ],
)
def test_nan_and_inf_are_rejected(
    make: Callable[[float], dict[str, Any]], field: str, value: float
) -> None:
    err = error(make(value))
    assert err.field == field
    assert "not a finite number" in err.message


# --- rules between fields and across steps -----------------------------------------------------


def test_hold_longer_than_its_cap() -> None:
    assert_error(
        plan_doc(hold(hold_s=60, max_hold_s=45)), step=1, field="hold_s",
        says=(
            "hold_s = 60 s exceeds max_hold_s - 5 s",
            "of 40 s; allowed: more than 0 to 40 s",
            "a plan may raise max_hold_s up to 180 s",
        ),
    )  # fmt: skip


def test_hold_equal_to_its_cap_leaves_no_room_to_ramp() -> None:
    # The cap counts from first contact: a 90 s hold under a 90 s cap could only be over-held.
    assert_error(
        plan_doc(hold(hold_s=90, max_hold_s=90)), step=1, field="hold_s",
        says=(
            "hold_s = 90 s exceeds max_hold_s - 5 s (time to ramp into the band: the hold cap "
            "counts from first contact) of 85 s; allowed: more than 0 to 85 s",
            "a plan may raise max_hold_s up to 180 s",
        ),
    )  # fmt: skip
    assert_error(plan_doc(hold(hold_s=86)), step=1, field="hold_s", says="of 85 s")
    assert parse(plan_doc(hold(hold_s=85))).hold_steps[0].hold_s == 85


def test_a_cap_too_short_for_any_hold_is_refused() -> None:
    assert_error(
        plan_doc(hold(max_hold_s=5, hold_s=1)), step=1, field="max_hold_s",
        says="max_hold_s = 5 s is too small; allowed: more than 5 to 180 s",
    )  # fmt: skip


def test_default_hold_longer_than_a_short_cap_says_it_is_the_default() -> None:
    assert_error(
        plan_doc(hold(max_hold_s=20)), step=1, field="hold_s", says="hold_s = 30 s (the default)"
    )


def test_repeat_above_max_reps_per_site() -> None:
    assert_error(
        plan_doc(hold(repeat=4)), step=1, field="repeat",
        says=(
            "repeat = 4 exceeds limits.max_reps_per_site of 3; allowed: 1 to 3",
            "a plan may raise limits.max_reps_per_site up to 10",
        ),
    )  # fmt: skip


def test_reps_per_site_add_up_across_steps_whatever_the_spelling() -> None:
    doc = plan_doc(
        hold(repeat=2), hold(site="other", repeat=3), hold(site="Upper  Trapezius l", repeat=2)
    )
    assert_error(
        doc, step=3, field="repeat",
        says=("holds on site 'Upper  Trapezius l' reaches 4", "limits.max_reps_per_site = 3",
              "up to 10"),
    )  # fmt: skip


def test_in_band_time_per_site_is_capped() -> None:
    doc = plan_doc(hold(hold_s=60, repeat=2), hold(hold_s=10))
    assert_error(
        doc, step=2, field="hold_s",
        says=("in-band time on site 'upper trapezius L' reaches 130 s",
              "limits.max_site_in_band_s = 120 s", "up to 600 s"),
    )  # fmt: skip


def test_gun_time_per_area_names_the_step_that_crosses_it() -> None:
    doc = plan_doc(
        {**GUN, "area": "calves L", "duration_s": 60},
        {**GUN, "area": "calves R", "duration_s": 60},
        {**GUN, "area": "calves L", "duration_s": 61},
    )
    assert_error(
        doc, step=3, field="duration_s",
        says=("gun time on area 'calves L' reaches 121 s", "limits.max_gun_area_s = 120 s"),
    )  # fmt: skip


def test_one_gun_step_longer_than_the_area_cap() -> None:
    assert_error(
        plan_doc({**GUN, "duration_s": 150}), step=1, field="duration_s",
        says="duration_s = 150 s exceeds limits.max_gun_area_s of 120 s",
    )  # fmt: skip


def test_gun_routine_over_fifteen_minutes() -> None:
    steps = [{**GUN, "area": f"area {i}", "duration_s": 120} for i in range(8)]
    assert_error(
        plan_doc(*steps), step=8, field="limits.max_session_s",
        says=("reaches 960 s", "cap of 900 s", "gun routines default to 900 s", "up to 7200"),
    )  # fmt: skip


def test_session_cap_counts_holds_and_pauses() -> None:
    doc = plan_doc({"type": "pause", "duration_s": 100}, hold(), limits={"max_session_s": 120})
    assert_error(doc, step=2, field="limits.max_session_s", says="reaches 160 s")


def test_first_problem_is_reported() -> None:
    err = error(plan_doc(hold(hold_s=-1), hold(rest_s=-1), name=""))
    assert err.field == "name"


# --- properties ---------------------------------------------------------------------------------

_names = st.text(st.characters(codec="utf-8"), min_size=1).filter(
    lambda s: s.strip() == s and s != ""
)


@st.composite
def valid_holds(draw: st.DrawFn, site: str) -> dict[str, Any]:
    low = draw(st.floats(2.5, 200))
    high = draw(st.floats(low + 0.5, 300))
    max_hold = draw(st.floats(5.5, 180))
    hold_s = draw(st.floats(0.5, max_hold - RAMP_ROOM_S).filter(lambda h: 3 * h <= 600))
    return hold(
        site=site, target=[low, high], ceiling=draw(st.floats(high, 500)),
        max_hold_s=max_hold, hold_s=hold_s,
        rest_s=draw(st.floats(0.5, 300)), repeat=draw(st.integers(1, 3)),
        grace_s=draw(st.floats(0, 10)), ramp_rate=draw(st.floats(0.05, 50)),
        tip_area_cm2=draw(st.floats(0.1, 20)), note=draw(st.text(max_size=20)),
    )  # fmt: skip


@st.composite
def valid_plans(draw: st.DrawFn) -> dict[str, Any]:
    sites = draw(
        st.lists(_names, min_size=1, max_size=3, unique_by=lambda s: " ".join(s.lower().split()))
    )
    steps: list[dict[str, Any]] = [draw(valid_holds(s)) for s in sites]
    steps.append({"type": "pause", "duration_s": draw(st.floats(0.5, 600)), "note": "n"})
    steps.append({"type": "chair", "program": draw(_names), "duration_s": draw(st.floats(1, 1200))})
    limits = {"max_site_in_band_s": 600, "max_session_s": 7200}
    return plan_doc(*steps, name=draw(_names), limits=limits)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(valid_plans())
def test_valid_generated_plans_round_trip(doc: dict[str, Any]) -> None:
    plan = parse(doc)
    assert plan.name == doc["name"]
    for step, raw in zip(plan.hold_steps, doc["steps"], strict=False):
        assert step.site == raw["site"]
        assert [step.low_n, step.high_n] == raw["target"]
        assert (step.hold_s, step.rest_s, step.repeat) == (
            raw["hold_s"],
            raw["rest_s"],
            raw["repeat"],
        )
        assert step.ceiling_n == raw["ceiling"]


def outcome(run: Callable[[], Plan]) -> Plan | PlanError:
    """A plan or the PlanError; any other exception fails the test."""
    try:
        return run()
    except PlanError as err:
        return err


_scalars = st.one_of(st.booleans(), st.integers(-(10**6), 10**6), st.floats(), st.text(max_size=10))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6)


@settings(max_examples=200)
@given(st.data())
def test_any_mutated_plan_gives_a_plan_or_plan_error(data: st.DataObject) -> None:
    doc = plan_doc(hold(), {**GUN}, {"type": "pause"}, limits={"contact": 1})
    target = data.draw(st.sampled_from([doc, doc["limits"], *doc["steps"]]))
    key = data.draw(st.sampled_from([*target, "extra", "type", "target"]))
    target[key] = data.draw(_values)
    result = outcome(lambda: parse(doc))
    assert isinstance(result, Plan) or result.source == SRC


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_any_text_gives_a_plan_or_plan_error(text: str) -> None:
    result = outcome(lambda: parse_plan(text, SRC))
    assert isinstance(result, Plan) or str(result).startswith(SRC)
