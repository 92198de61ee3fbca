"""The ``report`` command: its parser and handler.

``devicectl.cli`` adds it with :func:`add_parser`. The handler returns the exit code; a missing
session or an unwritable ``--out`` is a DevicectlError, which the CLI turns into exit 2 with a
one-line message.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from devicectl.errors import DevicectlError
from devicectl.records import Records
from devicectl.records.store import default_db_path
from devicectl.report import render_report, write_report

__all__ = ["add_parser", "default_out", "report_command"]


def default_out(session_id: int) -> Path:
    """Where a report goes without ``--out``: ``session-ID.html`` in the current directory."""
    return Path(f"session-{session_id}.html")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``report`` subcommand, for cli.build_parser."""
    p = sub.add_parser(
        "report", help="a session as one HTML page (chart, dose, feedback, events) for any browser"
    )
    p.add_argument("id", type=int, help="the session's number (see `devicectl history`)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="where to write it (default: session-ID.html in the current directory)",
    )
    p.add_argument(
        "--db", type=Path, default=None, help="session records (default: the user's data dir)"
    )
    p.set_defaults(handler=report_command)


def report_command(args: argparse.Namespace) -> int:
    """Render the report, write it atomically, print the path written."""
    path = args.db if args.db is not None else default_db_path()
    if not path.exists():  # reading must not leave an empty database behind
        raise DevicectlError(f"no session records at {path}; run a session first, or give --db")
    records = Records.open(path)
    try:
        html_text = render_report(records, args.id)
    finally:
        records.close()
    out: Path = args.out if args.out is not None else default_out(args.id)
    write_report(html_text, out)
    print(out)
    return 0
