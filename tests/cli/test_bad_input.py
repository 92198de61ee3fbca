"""Bad plans and bad addresses: one clear line on stderr, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import devicectl

BAND_REVERSED = """
name = "reversed"
units = "N"
[[steps]]
type = "hold"
site = "upper trapezius L"
target = [45, 30]
"""


@pytest.mark.parametrize(
    ("plan", "address", "needle"),
    [
        ("no-such-plan", "mark10@sim", "no-such-plan"),
        ("demo", "nosuchmodel@sim", "nosuchmodel"),
        ("demo", "mark10@ftp://example", "mark10@ftp://example"),
        ("demo", "mark10", "mark10"),
        ("demo", "mark10@socket://127.0.0.1:99999", "99999"),
        ("demo", "mark10@sim?garbage_every=often", "garbage_every"),
        ("demo", "mark10@sim?garbage_every=0", "garbage_every"),
        ("demo", "mark10@sim?stuck_n=nan", "stuck"),
        ("demo", "mark10@sim?disconnect_after_s=-1", "disconnect_after_s"),
        ("demo", "mark10@sim?colour=red", "colour"),
    ],
)
async def test_bad_plan_or_address_exits_2_with_one_line(
    tmp_path: Path, plan: str, address: str, needle: str
) -> None:
    done = await devicectl("run", plan, "--tbar", address, "--db", str(tmp_path / "x.db"))
    assert done.code == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("devicectl: error:")
    assert needle in lines[0]


async def test_bad_plan_file_names_file_step_and_field(tmp_path: Path) -> None:
    plan = tmp_path / "bad.toml"
    plan.write_text(BAND_REVERSED)
    done = await devicectl("run", str(plan), "--tbar", "mark10@sim", "--db", str(tmp_path / "x.db"))
    assert done.code == 2
    [line] = done.stderr.strip().splitlines()
    assert str(plan) in line
    assert "step 1" in line
    assert "target" in line


async def test_a_port_that_does_not_exist_is_a_device_failure(tmp_path: Path) -> None:
    done = await devicectl(
        "run", "demo", "--tbar", "mark10@serial:///dev/ttyNOPE0", "--db", str(tmp_path / "x.db")
    )
    assert done.code == 1
    assert "Traceback" not in done.stderr
    assert "/dev/ttyNOPE0" in done.stderr


async def test_plans_validate_exit_codes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BAND_REVERSED)
    good = tmp_path / "good.toml"
    good.write_text(BAND_REVERSED.replace("[45, 30]", "[30, 45]"))
    ok = await devicectl("plans", "validate", str(good))
    assert ok.code == 0
    assert "ok" in ok.stdout
    failed = await devicectl("plans", "validate", str(good), str(bad))
    assert failed.code == 2
    assert str(bad) in failed.stderr
    assert "Traceback" not in failed.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("name = [unclosed\n")
    assert (await devicectl("plans", "validate", str(broken))).code == 2


async def test_plans_list_and_show() -> None:
    listed = await devicectl("plans", "list")
    assert listed.code == 0
    for name in ("trigger-point", "demo", "gun-routine", "chair-program"):
        assert name in listed.stdout
    shown = await devicectl("plans", "show", "trigger-point")
    assert shown.code == 0
    assert "hold" in shown.stdout.lower()


async def test_export_of_a_missing_session_is_bad_input(tmp_path: Path) -> None:
    done = await devicectl("export", "42", "--format", "json", "--db", str(tmp_path / "x.db"))
    assert done.code == 2
    assert "42" in done.stderr
    assert "Traceback" not in done.stderr
