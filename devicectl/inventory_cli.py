"""The ``models``, ``scan`` and ``diagnose`` commands: their parsers and handlers.

``devicectl.cli`` adds them with :func:`add_parsers`. Handlers return the exit code; errors are
DevicectlError (exit 2) as the CLI maps them. A scan never fails for want of Bluetooth: it says
so and lists the serial ports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from pathlib import Path
from typing import Any

from devicectl.diagnose import build_bundle, to_json, write_bundle
from devicectl.inventory import (
    DEFAULT_SCAN_TIMEOUT_S,
    BleScanResult,
    ble_result_dict,
    list_serial_ports,
    model_dict,
    models_table,
    port_dict,
    render_scan,
    scan_ble,
)
from drivers.models import load_models

__all__ = [
    "MAX_SCAN_TIMEOUT_S",
    "add_parsers",
    "diagnose_command",
    "models_command",
    "scan_command",
]

# A scan longer than a minute finds nothing a shorter one misses; it only looks hung.
MAX_SCAN_TIMEOUT_S = 60.0


def _timeout(text: str) -> float:
    """``--timeout``: seconds in (0, MAX_SCAN_TIMEOUT_S]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and 0 < value <= MAX_SCAN_TIMEOUT_S):
        raise argparse.ArgumentTypeError(
            f"{text} s is out of range; use a time above 0 and at most {MAX_SCAN_TIMEOUT_S:.0f} s"
        )
    return value


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``models``, ``scan`` and ``diagnose`` to the CLI's subcommands."""
    m = sub.add_parser("models", help="the supported device models (the model table)")
    m.add_argument("--json", action="store_true", help="every field of every model, as JSON")
    m.set_defaults(handler=models_command)

    s = sub.add_parser("scan", help="serial ports and BLE devices here, and the model of each")
    s.add_argument(
        "--timeout",
        type=_timeout,
        default=DEFAULT_SCAN_TIMEOUT_S,
        metavar="S",
        help=f"how long to listen for BLE devices (default {DEFAULT_SCAN_TIMEOUT_S:g} s)",
    )
    s.add_argument("--json", action="store_true", help="JSON instead of text")
    s.add_argument("--sim", action="store_true", help="also list the simulated BLE peripherals")
    s.set_defaults(handler=scan_command)

    d = sub.add_parser("diagnose", help="a JSON bundle for a bug report (secrets removed)")
    d.add_argument("--out", type=Path, default=None, help="write it to FILE (default: stdout)")
    d.add_argument(
        "--db", type=Path, default=None, help="session records (default: the user's data dir)"
    )
    d.set_defaults(handler=diagnose_command)


def models_command(args: argparse.Namespace) -> int:
    models = sorted(load_models().values(), key=lambda m: m.key)
    if args.json:
        print(json.dumps([model_dict(m) for m in models], indent=2))
    else:
        print(models_table(models))
    return 0


def scan_command(args: argparse.Namespace) -> int:
    models = sorted(load_models().values(), key=lambda m: m.key)
    ports = list_serial_ports()
    results = asyncio.run(_scan_ble(args.timeout, sim=args.sim))
    if args.json:
        document = {
            "serial_ports": [port_dict(p, models) for p in ports],
            "ble": [ble_result_dict(r, models) for r in results],
        }
        print(json.dumps(document, indent=2))
    else:
        print(render_scan(ports, results, models))
    return 0


async def _scan_ble(timeout_s: float, *, sim: bool) -> list[BleScanResult]:
    """The real radio's scan and, with ``sim``, the simulator's, side by side."""
    scans = [scan_ble(timeout_s)]
    if sim:
        # Lazily: only the composition root's opener may wire simulators in.
        from devicectl.opener import sim_scanner_backend

        backend: type[Any] = sim_scanner_backend()
        scans.append(scan_ble(timeout_s, backend))
    return list(await asyncio.gather(*scans))


def diagnose_command(args: argparse.Namespace) -> int:
    bundle = asyncio.run(build_bundle(db=args.db))
    if args.out is None:
        sys.stdout.write(to_json(bundle))
    else:
        write_bundle(bundle, args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
