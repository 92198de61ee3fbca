"""The terminal UI's commands: ``devicectl tui``, ``devicectl run ... --tui``, and ``devicectl
demo`` on a terminal.

The one module of :mod:`devicectl` that imports :mod:`tui` (checked by import-linter); the
Textual import is deferred to the functions that open a screen, so headless commands never pay
for it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys
from pathlib import Path

from devicectl import commands, opener
from devicectl.builtin import builtin_plan, resolve_plan
from devicectl.console import dose_table
from devicectl.errors import DevicectlError
from devicectl.inventory import (
    DEFAULT_SCAN_TIMEOUT_S,
    ble_address,
    list_serial_ports,
    match_advertisement,
    match_port,
    scan_ble,
    serial_address,
)
from devicectl.plan import Plan
from devicectl.session import EXIT_INTERRUPTED, SessionRunner, SessionSink
from drivers.models import load_models
from drivers.supervisor import DEFAULT_GIVE_UP_S
from tui.app import LiveApp
from tui.start import FoundDevice, ScanOutcome, StartApp

__all__ = ["demo", "live_session", "run", "tui_command", "wants_tui"]


def wants_tui(args: argparse.Namespace) -> bool:
    """The terminal UI needs a terminal on both sides; JSON output is for programs."""
    if getattr(args, "json", False) or getattr(args, "headless", False):
        return False
    return sys.stdin.isatty() and sys.stdout.isatty()


def run(args: argparse.Namespace) -> int:
    """``devicectl run``: the terminal UI with ``--tui``, else headless."""
    if not args.tui:
        return commands.run(args)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise DevicectlError("--tui needs a terminal; without one, leave --tui out")
    plan = resolve_plan(args.plan)
    spec = opener.parse_sensor(args.tbar)
    return asyncio.run(live_session(plan, spec, db=args.db, options=_options(args)))


def demo(args: argparse.Namespace) -> int:
    """``devicectl demo``: the terminal UI on a terminal (headless with --json or --headless)."""
    if not wants_tui(args):
        return commands.demo(args)
    plan = builtin_plan(commands.DEMO_PLAN)
    spec = opener.parse_sensor(commands.DEMO_SENSOR)
    options = opener.OpenOptions(reconnect_for_s=DEFAULT_GIVE_UP_S)
    return asyncio.run(live_session(plan, spec, db=args.db, options=options))


def tui_command(args: argparse.Namespace) -> int:
    """``devicectl tui [PLAN --tbar ADDRESS]``: the start screen unless both are given."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise DevicectlError("the terminal UI needs a terminal; use `devicectl run` without one")
    if args.gun or args.chair:
        raise DevicectlError("guns and chairs are not supported yet; leave --gun/--chair out")
    if args.plan is not None and args.tbar is not None:
        plan = resolve_plan(args.plan)
        spec = opener.parse_sensor(args.tbar)
    else:
        app = StartApp(check_address=opener.parse_sensor, scan=_scan, db_path=args.db)
        choice = app.run()
        if choice is None:
            return 0
        plan, spec = choice.plan, opener.parse_sensor(choice.tbar)
    return asyncio.run(live_session(plan, spec, db=args.db, options=_options(args)))


def _options(args: argparse.Namespace) -> opener.OpenOptions:
    return opener.OpenOptions(
        rate_hz=args.rate,
        calibrations=commands.calibrations_store(args.calibrations),
        capture=args.capture,
        reconnect_for_s=args.reconnect_for or None,
    )


async def live_session(
    plan: Plan, spec: opener.SensorSpec, *, db: Path | None, options: opener.OpenOptions
) -> int:
    """One session on the live screen. What the user must read before the screen opens
    (recovered sessions, the device) is printed first; the dose table after it closes."""
    hands: list[opener.SimHands] = []
    options = dataclasses.replace(options, on_hands=hands.append)
    said: list[str] = []
    async with commands.session_devices(
        plan, spec, db=db, options=options, say=said.append
    ) as opened:

        def make_runner(sink: SessionSink) -> SessionRunner:
            return SessionRunner(plan, opened.sensor, opened.writer, sink)

        app = LiveApp(plan, make_runner, [opened.info], hands[0] if hands else None)
        # SIGTERM and SIGHUP (the terminal closed) stop first, as headless; Ctrl-C is a key here.
        with commands.signals_stop(app.interrupt, (signal.SIGTERM, signal.SIGHUP)):
            await app.run_async()
    for line in said:
        print(line)
    if app.session_error is not None:
        raise app.session_error
    result = app.result
    if result is None:  # the screen closed before the session ran: nothing was recorded
        return EXIT_INTERRUPTED
    print(dose_table(result.dose, plan))
    print(f"session {result.session_id}: {result.status}")
    if result.error:
        print(f"devicectl: error: {result.error}", file=sys.stderr)
    return result.exit_code


async def _scan() -> ScanOutcome:
    """The start screen's scan: serial ports and BLE, force sensors only."""
    models = sorted(load_models().values(), key=lambda m: m.key)
    ports = await asyncio.to_thread(list_serial_ports)
    ble = await scan_ble(DEFAULT_SCAN_TIMEOUT_S)
    found = [
        FoundDevice(serial_address(m, p.device), f"{m.name} on {p.device}")
        for p in ports
        for m in match_port(p, models)
        if m.family == "force_sensor"
    ]
    found += [
        FoundDevice(ble_address(m, a), f"{m.name} {a.name or ''} ({a.rssi} dBm)", ble.simulated)
        for a in ble.advertisements
        for m in match_advertisement(a, models)
        if m.family == "force_sensor"
    ]
    notes: list[str] = []
    if ble.unavailable:
        notes.append(f"Bluetooth is unavailable: {ble.reason}")
    elif not ble.ok:
        notes.append(f"Bluetooth scan failed: {ble.reason}")
    return ScanOutcome(tuple(found), tuple(notes))
