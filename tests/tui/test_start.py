"""The start screen under Pilot: choosing plans and devices, inline errors, scanning, layout."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, OptionList, Static

from devicectl.builtin import builtin_names, builtin_plan, builtin_text
from devicectl.opener import parse_sensor
from tests.tui.support import HostApp, wait_until
from tui.history import HistoryScreen
from tui.start import SIM_DEVICES, FoundDevice, Scanner, ScanOutcome, StartChoice, StartScreen

SIZES = [(80, 24), (120, 40)]
USB_MARK10 = FoundDevice("mark10@serial:///dev/ttyUSB0", "Mark-10 on /dev/ttyUSB0 (USB)")


def host(scan: Scanner | None = None, db_path: Path | None = None) -> HostApp:
    """A host app showing a start screen that checks addresses with the real parser."""
    return HostApp(
        screen=lambda: StartScreen(check_address=parse_sensor, scan=scan, db_path=db_path)
    )


async def started(app: HostApp, pilot: Pilot[Any]) -> StartScreen:
    await wait_until(pilot, lambda: isinstance(app.screen, StartScreen))
    screen = app.screen
    assert isinstance(screen, StartScreen)
    return screen


async def test_a_built_in_plan_and_a_simulated_device_make_the_choice() -> None:
    app = host()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(app, pilot)
        screen.query_one("#plans", OptionList).highlighted = builtin_names().index("trigger-point")
        screen.query_one("#devices", OptionList).highlighted = SIM_DEVICES.index("progressor@sim")
        await pilot.click("#start")
        await wait_until(pilot, lambda: app.dismissed)
    assert app.result == StartChoice(builtin_plan("trigger-point"), "progressor@sim", True)


async def test_the_demo_plan_is_the_default_and_ctrl_s_starts() -> None:
    app = host()
    async with app.run_test(size=(80, 24)) as pilot:
        await started(app, pilot)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.dismissed)
    assert app.result == StartChoice(builtin_plan("demo"), "mark10@sim", True)


async def test_a_bad_plan_file_shows_its_error_on_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nunits = "N"\n[[steps]]\ntype = "hold"\n', encoding="utf-8")
    app = host()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(app, pilot)
        screen.query_one("#plan-file", Input).value = str(bad)
        await pilot.click("#start")
        error = screen.query_one("#plan-error", Static)
        await wait_until(pilot, lambda: "bad.toml" in str(error.render()))
        assert "\n" not in str(error.render())
        assert not app.dismissed
        assert 1 <= error.region.height <= 3
        assert error.region.right <= 80


async def test_a_typed_plan_file_and_address_are_used(tmp_path: Path) -> None:
    plan_file = tmp_path / "hq.toml"
    plan_file.write_text(builtin_text("demo"), encoding="utf-8")
    app = host()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(app, pilot)
        screen.query_one("#plan-file", Input).value = f"{tmp_path}/"
        await pilot.click("#plan-file")
        await pilot.press("end", *"hq.toml")  # typing q or h into an input must not quit
        screen.query_one("#address", Input).value = "mark10@socket://127.0.0.1:7001"
        await pilot.click("#start")
        await wait_until(pilot, lambda: app.dismissed)
    assert isinstance(app.result, StartChoice)
    assert app.result.plan.source == str(plan_file)
    assert (app.result.tbar, app.result.simulated) == ("mark10@socket://127.0.0.1:7001", False)


async def test_a_bad_address_shows_its_error() -> None:
    app = host()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(app, pilot)
        screen.query_one("#address", Input).value = "nosuchgauge@sim"
        await pilot.click("#start")
        error = screen.query_one("#address-error", Static)
        await wait_until(pilot, lambda: "nosuchgauge" in str(error.render()))
        assert not app.dismissed


async def test_scan_adds_what_it_finds_and_says_bluetooth_is_unavailable() -> None:
    release = asyncio.Event()

    async def scan() -> ScanOutcome:
        await release.wait()
        notes = ("Bluetooth is unavailable: no adapter.",)
        return ScanOutcome((USB_MARK10, FoundDevice("mark10@sim", "again", True)), notes)

    app = host(scan=scan)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(app, pilot)
        await pilot.click("#scan")
        button = screen.query_one("#scan", Button)
        await wait_until(pilot, lambda: button.disabled)  # busy while the scan runs
        release.set()
        await wait_until(pilot, lambda: not button.disabled)
        devices = screen.query_one("#devices", OptionList)
        assert devices.option_count == len(SIM_DEVICES) + 1  # the simulator is not added twice
        note = str(screen.query_one("#scan-note", Static).render())
        assert "found 2 devices" in note
        assert "Bluetooth is unavailable" in note
        devices.highlighted = len(SIM_DEVICES)
        await pilot.click("#start")
        await wait_until(pilot, lambda: app.dismissed)
    assert isinstance(app.result, StartChoice)
    assert (app.result.tbar, app.result.simulated) == (USB_MARK10.address, False)


async def test_without_a_scanner_the_scan_button_is_disabled() -> None:
    app = host()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(app, pilot)
        assert screen.query_one("#scan", Button).disabled


async def test_escape_dismisses_with_none_and_history_opens_the_history(tmp_path: Path) -> None:
    app = host(db_path=tmp_path / "s.db")
    async with app.run_test(size=(80, 24)) as pilot:
        await started(app, pilot)
        await pilot.click("#history")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.press("escape")
        await started(app, pilot)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.dismissed)
    assert app.result is None


@pytest.mark.parametrize("size", SIZES)
async def test_the_start_screen_fits(size: tuple[int, int]) -> None:
    app = host()
    async with app.run_test(size=size) as pilot:
        screen = await started(app, pilot)
        await pilot.pause(0.05)
        for selector in ("#plans", "#plan-file", "#devices", "#address", "#start", "#history"):
            region = screen.query_one(selector).region
            assert min(region.width, region.height) > 0, selector
            assert region.right <= size[0], selector
            assert region.bottom <= size[1], selector
        plans = screen.query_one("#plans", OptionList)
        assert plans.size.height >= 3  # several plans visible even at 80x24
