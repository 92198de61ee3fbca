"""The start screen: choose a plan (built-in or a file) and a force sensor, then start.

Devices: the simulated ones (always labelled SIMULATED), whatever a scan finds, or an address
typed by hand. This package sits above the core and must not pull in simulators or transports,
so the two things that need them come from the composition root (the command line):
``check_address`` (``devicectl.opener.parse_sensor``: raises a DevicectlError for a bad address)
and ``scan`` (serial ports and BLE via ``devicectl.inventory``; see ``ScanOutcome``). The scan
runs in a worker, so the screen stays live while BLE listens.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import HorizontalGroup, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from devicectl.builtin import builtin_names, builtin_plan
from devicectl.errors import DevicectlError
from devicectl.plan import Plan
from devicectl.planfile import load_plan
from tui.history import HistoryScreen

__all__ = [
    "SIM_DEVICES",
    "AddressCheck",
    "CheckedAddress",
    "FoundDevice",
    "ScanOutcome",
    "Scanner",
    "StartApp",
    "StartChoice",
    "StartScreen",
]

# Every force sensor with a simulator (devicectl sim list); offered without a scan.
SIM_DEVICES = ("mark10@sim", "progressor@sim", "imada@sim", "shimpo@sim", "wagner@sim")
SIM_LABEL = "SIMULATED"  # how a simulated device is marked everywhere on screen


@dataclass(frozen=True)
class StartChoice:
    """What the user chose: the plan and the T-bar's address."""

    plan: Plan
    tbar: str  # a device address, e.g. "mark10@sim" or "progressor@ble:AA:BB:CC:DD:EE:FF"
    simulated: bool  # the T-bar is a simulator


@dataclass(frozen=True)
class FoundDevice:
    """A device a scan found: its address and what to show for it."""

    address: str
    label: str  # e.g. "Mark-10 on /dev/ttyUSB0 (USB 1A86:7523)"
    simulated: bool = False


@dataclass(frozen=True)
class ScanOutcome:
    """What a scan found, and notes to show (e.g. "Bluetooth is unavailable: ...")."""

    devices: tuple[FoundDevice, ...] = ()
    notes: tuple[str, ...] = ()


class CheckedAddress(Protocol):
    """What an address check returns (``devicectl.opener.SensorSpec`` is one)."""

    @property
    def simulated(self) -> bool: ...


AddressCheck = Callable[[str], CheckedAddress]
"""Checks a force-sensor address without opening it; raises a DevicectlError if it is bad."""
Scanner = Callable[[], Awaitable[ScanOutcome]]
"""Scans serial ports and BLE; never raises for a missing Bluetooth (that is a note)."""


class StartScreen(Screen[StartChoice | None]):
    """Choose a plan and a device; Start dismisses with the choice, Escape/q with None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Back"),
        Binding("q", "cancel", "Quit"),
        Binding("ctrl+s", "start", "Start"),
        Binding("h", "history", "History"),
    ]
    DEFAULT_CSS = """
    StartScreen #columns { height: 1fr; }
    StartScreen .column { width: 1fr; height: 1fr; padding: 0 1; }
    StartScreen .heading { text-style: bold; height: 1; }
    StartScreen OptionList { height: 1fr; min-height: 3; }
    StartScreen .error { color: red; height: auto; max-height: 3; }
    StartScreen #scan-note { color: yellow; height: auto; max-height: 2; }
    StartScreen #plan-about { height: auto; max-height: 3; color: $text-muted; }
    StartScreen Input { margin-top: 1; }
    StartScreen #buttons { height: auto; padding: 0 1; }
    StartScreen #buttons Button { margin-right: 2; }
    """

    def __init__(
        self,
        *,
        check_address: AddressCheck,
        scan: Scanner | None = None,
        db_path: Path | None = None,
    ) -> None:
        super().__init__()
        self._check_address = check_address
        self._scan = scan
        self.db_path = db_path  # for the history screen; None: the default database
        self._simulated: dict[str, bool] = dict.fromkeys(SIM_DEVICES, True)

    def compose(self) -> ComposeResult:
        with HorizontalGroup(id="columns"):
            with Vertical(classes="column"):
                yield Static("Plan", classes="heading")
                yield OptionList(*(Option(n, id=n) for n in builtin_names()), id="plans")
                yield Static("", id="plan-about")
                yield Input(placeholder="or a plan file: path/to/plan.toml", id="plan-file",
                            compact=True)  # fmt: skip
                yield Static("", id="plan-error", classes="error")
            with Vertical(classes="column"):
                yield Static("Force sensor", classes="heading")
                yield OptionList(*(Option(f"{a}  {SIM_LABEL}", id=a) for a in SIM_DEVICES),
                                 id="devices")  # fmt: skip
                yield Input(placeholder="or an address: mark10@serial:///dev/ttyUSB0",
                            id="address", compact=True)  # fmt: skip
                yield Static("", id="address-error", classes="error")
                yield Static("", id="scan-note")
        with HorizontalGroup(id="buttons"):
            yield Button("Start", id="start", variant="success", compact=True)
            yield Button("Scan", id="scan", disabled=self._scan is None, compact=True)
            yield Button("History", id="history", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        for list_id in ("#plans", "#devices"):
            self.query_one(list_id, OptionList).highlighted = 0
        if "demo" in builtin_names():
            self.query_one("#plans", OptionList).highlighted = builtin_names().index("demo")

    @on(OptionList.OptionHighlighted, "#plans")
    def _plan_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        plan = builtin_plan(event.option.id) if event.option.id else None
        about = plan.description if plan is not None else ""
        self.query_one("#plan-about", Static).update(" ".join(about.split()))

    # -- choosing ---------------------------------------------------------------------------

    def chosen_plan(self) -> Plan | None:
        """The typed plan file if any (errors shown inline), else the highlighted built-in."""
        error = self.query_one("#plan-error", Static)
        error.update("")
        path = self.query_one("#plan-file", Input).value.strip()
        if path:
            try:
                return load_plan(Path(path).expanduser())
            except DevicectlError as exc:
                error.update(_one_line(exc))
                return None
        option = self.query_one("#plans", OptionList).highlighted_option
        return builtin_plan(option.id) if option is not None and option.id else None

    def chosen_device(self) -> tuple[str, bool] | None:
        """The typed address if any (checked, errors inline), else the highlighted device."""
        error = self.query_one("#address-error", Static)
        error.update("")
        address = self.query_one("#address", Input).value.strip()
        if address:
            try:
                checked = self._check_address(address)
            except DevicectlError as exc:
                error.update(_one_line(exc))
                return None
            return address, checked.simulated
        option = self.query_one("#devices", OptionList).highlighted_option
        if option is None or option.id is None:
            error.update("choose a device, scan, or type an address")
            return None
        return option.id, self._simulated.get(option.id, False)

    def action_start(self) -> None:
        plan, device = self.chosen_plan(), self.chosen_device()
        if plan is not None and device is not None:
            self.dismiss(StartChoice(plan, device[0], device[1]))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_history(self) -> None:
        self.app.push_screen(HistoryScreen(self.db_path))

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#history")
    def _history_pressed(self) -> None:
        self.action_history()

    @on(Input.Submitted, "#plan-file")
    def _plan_submitted(self) -> None:
        self.chosen_plan()

    @on(Input.Submitted, "#address")
    def _address_submitted(self) -> None:
        self.chosen_device()

    # -- scanning ---------------------------------------------------------------------------

    @on(Button.Pressed, "#scan")
    def _scan_pressed(self) -> None:
        if self._scan is None:
            return
        button = self.query_one("#scan", Button)
        button.disabled, button.label = True, "Scanning…"
        self.query_one("#scan-note", Static).update("Scanning serial ports and Bluetooth…")
        self.run_worker(self._run_scan(self._scan), name="scan", exclusive=True)

    async def _run_scan(self, scan: Scanner) -> None:
        try:
            outcome = await scan()
        except DevicectlError as exc:
            outcome = ScanOutcome(notes=(f"scan failed: {_one_line(exc)}",))
        finally:
            button = self.query_one("#scan", Button)
            button.disabled, button.label = False, "Scan"
        self.add_found(outcome)

    def add_found(self, outcome: ScanOutcome) -> None:
        """Add what a scan found to the device list (once each) and show its notes."""
        devices = self.query_one("#devices", OptionList)
        for found in outcome.devices:
            if found.address in self._simulated:
                continue
            self._simulated[found.address] = found.simulated
            mark = f"  {SIM_LABEL}" if found.simulated else ""
            devices.add_option(Option(f"{found.address}  {found.label}{mark}", id=found.address))
        count = len(outcome.devices)
        summary = f"Scan found {count} device{'s' if count != 1 else ''}."
        self.query_one("#scan-note", Static).update(" ".join((summary, *outcome.notes)))


def _one_line(exc: Exception) -> str:
    """An error's message on one line (the screen has one line for it)."""
    return " ".join(str(exc).split())


class StartApp(App[StartChoice | None]):
    """The start screen on its own: exits with the user's choice, or None."""

    TITLE = "devicectl"

    def __init__(
        self,
        *,
        check_address: AddressCheck,
        scan: Scanner | None = None,
        db_path: Path | None = None,
    ) -> None:
        super().__init__()
        self._screen_args = (check_address, scan, db_path)

    def on_mount(self) -> None:
        check_address, scan, db_path = self._screen_args
        screen = StartScreen(check_address=check_address, scan=scan, db_path=db_path)
        self.push_screen(screen, callback=self.exit)
