"""The command line: the composition root. Parses arguments, wires parts, maps errors to exits.

Exit codes: 0 completed, 1 device failure, 2 bad input, 130 interrupted (actuators stopped first).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from devicectl import commands
from devicectl.errors import DevicectlError
from devicectl.session import EXIT_BAD_INPUT, EXIT_DEVICE_FAILURE, EXIT_INTERRUPTED
from drivers.errors import DeviceError

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


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", type=Path, default=None, help="session records (default: the user's data dir)"
    )


def _run_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run a session headless against a force sensor")
    p.add_argument("plan", help="a plan file, or the name of a built-in plan (see `plans list`)")
    p.add_argument(
        "--tbar",
        required=True,
        metavar="ADDRESS",
        help="the T-bar's force sensor, e.g. mark10@serial:///dev/ttyUSB0?baud=115200, "
        "mark10@socket://127.0.0.1:7001, mark10@sim",
    )
    p.add_argument("--rate", type=_rate, default=50.0, help="sensor poll rate in Hz (default 50)")
    p.add_argument("--json", action="store_true", help="JSON lines on stdout instead of text")
    _add_db(p)
    p.set_defaults(handler=commands.run)


def _demo_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="the demo plan on a simulated Mark-10 gauge (no hardware)")
    p.add_argument("--json", action="store_true", help="JSON lines on stdout instead of text")
    _add_db(p)
    p.set_defaults(handler=commands.demo)


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


def _sim_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sim", help="serve a simulated device by hand (for developers)")
    p.add_argument("model", choices=("mark10",))
    where = p.add_mutually_exclusive_group()
    where.add_argument("--tcp", type=int, metavar="PORT", help="serve on 127.0.0.1:PORT")
    where.add_argument("--pty", action="store_true", help="serve on a pty pair (the default)")
    p.add_argument("--plan", default="demo", help="the plan the simulated therapist follows")
    p.add_argument("--loop", action="store_true", help="repeat the plan's pressing forever")
    p.set_defaults(handler=commands.sim)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devicectl",
        description="Massage-device control and session timing: timed pressure holds on a "
        "force-sensing T-bar, with every hold and rest enforced and recorded.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _run_parser(sub)
    _demo_parser(sub)
    _plans_parser(sub)
    _records_parsers(sub)
    _sim_parser(sub)
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
