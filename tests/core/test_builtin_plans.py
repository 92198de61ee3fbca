"""Built-in plans: they parse, are clinically sensible, and resolve_plan/describe_plan work."""

from __future__ import annotations

from pathlib import Path

import pytest

from devicectl.builtin import (
    builtin_names,
    builtin_plan,
    builtin_text,
    describe_plan,
    resolve_plan,
)
from devicectl.errors import PlanError
from devicectl.limits import gun_time_by_area, planned_duration_s
from devicectl.plan import ChairStep, GunStep, HoldStep, PauseStep, Step
from devicectl.planfile import parse_plan

REQUIRED = ["chair-program", "combined", "demo", "gun-routine", "trigger-point"]


def test_required_builtins_exist() -> None:
    assert set(REQUIRED) <= set(builtin_names())
    assert builtin_names() == sorted(builtin_names())


@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_parses_with_a_description(name: str) -> None:
    plan = builtin_plan(name)
    assert plan.source == f"builtin:{name}"
    assert plan.description
    assert plan == parse_plan(builtin_text(name), f"builtin:{name}")


def step_words(step: Step) -> list[str]:
    """What describe_plan must say about a step."""
    if isinstance(step, HoldStep):
        return [step.site, f"{step.hold_s:g} s"]
    if isinstance(step, GunStep):
        return [step.area, f"level {step.level}"]
    if isinstance(step, ChairStep):
        return [repr(step.program)]
    return ["pause"]


@pytest.mark.parametrize("name", builtin_names())
def test_describe_mentions_every_step(name: str) -> None:
    plan = builtin_plan(name)
    text = describe_plan(plan)
    assert plan.name in text
    assert "Units: N" in text
    lines = text.splitlines()
    for number, step in enumerate(plan.steps, start=1):
        line = next(x for x in lines if x.startswith(f"  {number}. "))
        for word in step_words(step):
            assert word in line
    assert "planned duration" in text


def test_trigger_point_is_clinically_sensible() -> None:
    plan = builtin_plan("trigger-point")
    assert isinstance(plan.steps[0], PauseStep)
    assert "Swedish" in plan.steps[0].note
    holds = plan.hold_steps
    assert len({h.site for h in holds}) == 2
    for h in holds:
        assert (h.hold_s, h.rest_s, h.repeat) == (30, 30, 3)
        assert h.low_n < h.high_n <= h.ceiling_n


def test_demo_finishes_well_under_a_minute() -> None:
    plan = builtin_plan("demo")
    assert planned_duration_s(plan) <= 35
    assert all(isinstance(s, PauseStep | HoldStep) for s in plan.steps)
    assert all(s.duration_s is not None for s in plan.steps if isinstance(s, PauseStep))
    for h in plan.hold_steps:
        assert 20 <= h.low_n < h.high_n <= 40
        assert h.repeat == 2


def test_gun_routine_respects_caps() -> None:
    plan = builtin_plan("gun-routine")
    guns = [s for s in plan.steps if isinstance(s, GunStep)]
    assert len({g.area for g in guns}) >= 3
    assert len({g.level for g in guns}) >= 2
    assert max(gun_time_by_area(guns).values()) <= 120
    assert planned_duration_s(plan) <= 900
    assert plan.limits.max_session_s == 900


def test_chair_program_has_several_programs() -> None:
    programs = [s.program for s in builtin_plan("chair-program").steps if isinstance(s, ChairStep)]
    assert len(set(programs)) >= 2


def test_combined_warms_up_with_the_gun_then_holds() -> None:
    steps = builtin_plan("combined").steps
    assert isinstance(steps[0], GunStep)
    assert isinstance(steps[-1], HoldStep)


def test_unknown_builtin_names_the_known_ones() -> None:
    with pytest.raises(PlanError, match="no built-in plan named 'nope'; built-ins: ") as info:
        builtin_plan("nope")
    assert "trigger-point" in str(info.value)


def test_builtin_text_accepts_the_builtin_prefix() -> None:
    assert builtin_text("builtin:demo") == builtin_text("demo")


# --- resolve_plan ------------------------------------------------------------------------------


def test_resolve_plan_reads_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(builtin_text("demo"), encoding="utf-8")
    assert resolve_plan(str(path)).source == str(path)


def test_resolve_plan_prefers_a_file_named_like_a_builtin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").write_text(builtin_text("trigger-point"), encoding="utf-8")
    assert resolve_plan("demo").source == "demo"


@pytest.mark.parametrize("arg", ["demo", "builtin:demo"])
def test_resolve_plan_finds_a_builtin(arg: str) -> None:
    assert resolve_plan(arg).source == "builtin:demo"


@pytest.mark.parametrize("arg", ["no-such-plan", "missing/plan.toml", "demo.toml"])
def test_resolve_plan_unknown(arg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PlanError) as info:
        resolve_plan(arg)
    assert f"no plan file or built-in plan named {arg!r}; built-ins: " in str(info.value)
    assert "trigger-point" in str(info.value)


def test_resolve_plan_reports_problems_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\nunits = "N"\n[[steps]]\ntype = "hodl"\n', encoding="utf-8")
    with pytest.raises(PlanError, match="step 1: type: unknown step type") as info:
        resolve_plan(str(path))
    assert info.value.source == str(path)


# --- describe in other units -------------------------------------------------------------------


def test_describe_shows_forces_in_the_plans_units() -> None:
    text = """
name = "kgf plan"
units = "kgf"
[[steps]]
type = "hold"
site = "glute"
target = [3, 4.5]
ceiling = 6
ramp_rate = 0.5
tip_area_cm2 = 1
[[steps]]
type = "pause"
"""
    out = describe_plan(parse_plan(text, "x.toml"))
    assert "band 3-4.5 kgf, ceiling 6 kgf" in out
    assert "ramp 0.5 kgf/s" in out
    assert "kPa" in out
    assert "contact 0.2 kgf" in out
    assert "pause, until confirmed" in out
    assert "plus ramps and untimed pauses" in out


# --- the examples in docs/plans.md -------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plans.md"


def doc_examples() -> list[str]:
    blocks = DOCS.read_text(encoding="utf-8").split("```toml\n")[1:]
    return [block.split("```", 1)[0] for block in blocks]


def test_docs_have_at_least_three_toml_examples() -> None:
    assert len(doc_examples()) >= 3


@pytest.mark.parametrize("index", range(3))
def test_every_example_in_the_docs_is_a_valid_plan(index: int) -> None:
    plan = parse_plan(doc_examples()[index], f"docs/plans.md example {index + 1}")
    assert plan.steps


@pytest.mark.parametrize("name", builtin_names())
def test_docs_list_every_builtin(name: str) -> None:
    assert f"| `{name}` |" in DOCS.read_text(encoding="utf-8")
