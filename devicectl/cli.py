"""The command line: the composition root. Parses arguments, wires parts, maps errors to exits.

Exit codes: 0 completed, 1 device failure, 2 bad input, 130 interrupted (actuators stopped first).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from devicectl import calibrate, commands, inventory_cli, report_cli
from devicectl.errors import DevicectlError
from devicectl.session import EXIT_BAD_INPUT, EXIT_DEVICE_FAILURE, EXIT_INTERRUPTED
from drivers.errors import DeviceError
from drivers.supervisor import DEFAULT_GIVE_UP_S

Handler = Callable[[argparse.Namespace], int]


# Polling faster than this gains nothing over a serial line (each poll is a request and a reply).
MAX_RATE_HZ = 500.0


def _rate(text: str) -> float:
    """``--rate``: a number of polls per second in (0, MAX_RATE_HZ]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= MAX_RATE_HZ:
        raise argparse.ArgumentTypeError(
            f"{text} Hz is out of range; use a rate above 0 and at most {MAX_RATE_HZ:.0f} Hz"
        )
    return value


# A reconnection window longer than this is a session left hanging, not a brief drop.
MAX_RECONNECT_S = 600.0


def _seconds(text: str) -> float:
    """``--reconnect-for``: seconds in [0, MAX_RECONNECT_S]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= MAX_RECONNECT_S:
        raise argparse.ArgumentTypeError(
            f"{text} s is out of range; use 0 (no reconnecting) up to {MAX_RECONNECT_S:.0f} s"
        )
    return value


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", type=Path, default=None, help="session records (default: the user's data dir)"
    )


def _tui(name: str) -> Handler:
    """A terminal-UI handler, imported when called: headless commands never load Textual."""

    def handler(args: argparse.Namespace) -> int:
        from devicectl import tui_cli

        command: Handler = getattr(tui_cli, name)
        return command(args)

    return handler


def _session_options(p: argparse.ArgumentParser) -> None:
    """How the T-bar is read during a session: shared by run and tui."""
    p.add_argument("--rate", type=_rate, default=50.0, help="sensor poll rate in Hz (default 50)")
    p.add_argument(
        "--reconnect-for",
        type=_seconds,
        default=DEFAULT_GIVE_UP_S,
        metavar="S",
        help="when the sensor's link drops, try to reconnect for this long before giving up "
        f"(default {DEFAULT_GIVE_UP_S:.0f} s; 0: give up at once)",
    )
    p.add_argument(
        "--calibrations",
        type=Path,
        default=None,
        metavar="FILE",
        help="stored calibrations (default: calibrations.json in the user's config dir)",
    )
    p.add_argument(
        "--capture",
        type=Path,
        default=None,
        metavar="FILE",
        help="record the device conversation as JSON lines (see docs/capture.md)",
    )
    _add_db(p)


_TBAR_HELP = (
    "the T-bar's force sensor, e.g. mark10@serial:///dev/ttyUSB0?baud=115200, "
    "mark10@socket://127.0.0.1:7001, progressor@ble, mark10@sim"
)


def _run_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run a session headless (or with --tui) against a force sensor")
    p.add_argument("plan", help="a plan file, or the name of a built-in plan (see `plans list`)")
    p.add_argument("--tbar", required=True, metavar="ADDRESS", help=_TBAR_HELP)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="JSON lines on stdout instead of text")
    out.add_argument("--tui", action="store_true", help="the live session screen (a terminal)")
    _session_options(p)
    p.set_defaults(handler=_tui("run"))


def _tui_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "tui", help="the terminal UI: choose a plan and a device, or go straight to a session"
    )
    p.add_argument("plan", nargs="?", help="a plan file or built-in plan (with --tbar)")
    p.add_argument("--tbar", metavar="ADDRESS", help=_TBAR_HELP)
    p.add_argument("--gun", metavar="ADDRESS", help="a massage gun (not supported yet)")
    p.add_argument("--chair", metavar="ADDRESS", help="a massage chair (not supported yet)")
    _session_options(p)
    p.set_defaults(handler=_tui("tui_command"))


def _demo_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="the demo plan on a simulated Mark-10 gauge (no hardware): the live screen on a "
        "terminal, text otherwise",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="JSON lines on stdout instead of text")
    out.add_argument("--headless", action="store_true", help="text, even on a terminal")
    _add_db(p)
    p.set_defaults(handler=_tui("demo"))


def _plans_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plans", help="list, show and validate plans")
    psub = p.add_subparsers(dest="plans_command", required=True, metavar="COMMAND")
    psub.add_parser("list", help="the built-in plans").set_defaults(handler=commands.plans_list)
    show = psub.add_parser("show", help="a plan's steps and planned dose")
    show.add_argument("name", help="a built-in plan's name or a plan file")
    show.set_defaults(handler=commands.plans_show)
    val = psub.add_parser("validate", help="check plan files; exit 0 if all are valid, else 2")
    val.add_argument("files", nargs="+", type=Path)
    val.set_defaults(handler=commands.plans_validate)


def _records_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    h = sub.add_parser("history", help="past sessions and their status")
    h.add_argument("--json", action="store_true")
    _add_db(h)
    h.set_defaults(handler=commands.history)
    e = sub.add_parser("export", help="a session's samples, holds and events as CSV or JSON")
    e.add_argument("id", type=int)
    e.add_argument("--format", choices=("csv", "json"), required=True)
    e.add_argument(
        "--out", type=Path, default=None, help="json: a file (default stdout); csv: a directory"
    )
    _add_db(e)
    e.set_defaults(handler=commands.export)


def _fault(text: str) -> tuple[str, str]:
    """``--fault KEY=VALUE``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: use KEY=VALUE, e.g. garbage_every=5")
    return key.strip(), value.strip()


def _port(text: str) -> int:
    """``--tcp``: a TCP port, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port: use 0 (any free port) to 65535")
    return value


def _where(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--tcp", type=_port, metavar="PORT", help="serve on 127.0.0.1:PORT (0: any free port)"
    )
    where.add_argument("--pty", action="store_true", help="serve on a pty pair (the default)")


def _sim_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sim", help="simulated devices for developers: serve one by hand, list them")
    models = commands.sim_keys()
    ssub = p.add_subparsers(
        dest="sim_command", required=True, metavar="{list,exec,replay," + ",".join(models) + "}"
    )
    ssub.add_parser(
        "list", help="every simulated model, how it is served, and its fault switches"
    ).set_defaults(handler=commands.sim_list)
    x = ssub.add_parser(
        "exec",
        help="run your own bleak program against simulated BLE peripherals",
        usage="devicectl sim exec [--model MODEL[?KEY=VALUE&...]]... [--fault KEY=VALUE]... "
        "[--profile PROFILE] [--seed N] -- COMMAND [ARG]...",
    )
    x.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="MODEL[?KEY=VALUE&...]",
        help="a simulated peripheral, repeatable (default: one progressor); "
        "settings after ? are its own fault switches",
    )
    x.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a fault switch for every peripheral (see `devicectl sim list`)",
    )
    x.add_argument(
        "--profile", default=None, help="holds (the default), holds:N or constant:N (newtons)"
    )
    x.add_argument("--seed", type=int, default=0, help="seed of the simulated tremor and drift")
    x.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG]...")
    x.set_defaults(handler=commands.sim_exec)
    replay = ssub.add_parser("replay", help="serve a recorded serial conversation as a device")
    replay.add_argument("file", type=Path, help="a capture made with `run --capture FILE`")
    _where(replay)
    replay.set_defaults(handler=commands.sim_replay)
    for key in models:
        m = ssub.add_parser(key, help=f"serve a simulated {key} on a pty or a TCP port")
        _where(m)
        m.add_argument("--plan", default="demo", help="the plan the simulated therapist follows")
        m.add_argument("--loop", action="store_true", help="repeat the plan's pressing forever")
        m.add_argument(
            "--profile",
            default="plan",
            help="the force applied: plan (press through --plan, the default), holds[:N] "
            "(press and hold N newtons, in a loop) or constant:N",
        )
        m.add_argument(
            "--fault",
            type=_fault,
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a fault switch, repeatable (see `devicectl sim list`)",
        )
        m.set_defaults(handler=commands.sim, model=key)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devicectl",
        description="Massage-device control and session timing: timed pressure holds on a "
        "force-sensing T-bar, with every hold and rest enforced and recorded.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _run_parser(sub)
    _tui_parser(sub)
    _demo_parser(sub)
    _plans_parser(sub)
    _records_parsers(sub)
    _sim_parser(sub)
    inventory_cli.add_parsers(sub)
    calibrate.add_parser(sub)
    report_cli.add_parser(sub)
    return parser


def _fail(message: str, code: int) -> int:
    print(f"devicectl: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except DevicectlError as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    except DeviceError as exc:
        return _fail(str(exc), EXIT_DEVICE_FAILURE)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
