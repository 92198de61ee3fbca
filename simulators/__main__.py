"""Manual entry: ``python -m simulators mark10 --pty`` or ``... mark10 --tcp 7001``.

Prints where the simulated gauge can be opened and serves it until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from collections.abc import Sequence

from protocols.mark10 import parse_unit

from .force_model import TherapistModel, constant, hold_segments
from .mark10 import Mark10Device, Mark10Faults
from .serve import PtyServer, TcpServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulators", description=__doc__)
    sub = parser.add_subparsers(dest="model", required=True)
    mark10 = sub.add_parser("mark10", help="a Mark-10 Series 5 gauge speaking GCL2")
    where = mark10.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true", help="serve on a pty pair")
    where.add_argument("--tcp", type=int, metavar="PORT", help="serve on 127.0.0.1:PORT")
    mark10.add_argument("--force", type=float, help="a constant force in N instead of holds")
    mark10.add_argument("--target", type=float, default=40.0, help="hold target in N")
    mark10.add_argument("--unit", default="N", help="initial unit (N, lbF, kgF, ...)")
    mark10.add_argument("--seed", type=int, default=0)
    mark10.add_argument("--disconnect-after", type=float, metavar="S")
    mark10.add_argument("--garbage-every", type=int, metavar="K")
    mark10.add_argument("--no-reply-every", type=int, metavar="K")
    mark10.add_argument("--stuck", type=float, metavar="N", help="stuck reading in N")
    return parser


def _model(args: argparse.Namespace) -> TherapistModel:
    if args.force is not None:
        return constant(args.force)
    # A typical trigger-point site: three 30 s holds with 30 s rests, looping for ever.
    return TherapistModel(hold_segments(args.target, 30, 30, 3), seed=args.seed, loop=True)


def _device(args: argparse.Namespace) -> Mark10Device:
    faults = Mark10Faults(
        disconnect_after_s=args.disconnect_after,
        garbage_every=args.garbage_every,
        no_reply_every=args.no_reply_every,
        stuck_value_n=args.stuck,
    )
    return Mark10Device(
        _model(args), clock=time.monotonic, unit=parse_unit(args.unit), faults=faults
    )


async def _serve(args: argparse.Namespace) -> None:
    server: PtyServer | TcpServer
    if args.pty:
        server = PtyServer(lambda: _device(args))
        print(f"mark10 (simulated) on {await server.start()}", flush=True)
    else:
        server = TcpServer(lambda: _device(args))
        host, port = await server.start(port=args.tcp)
        print(f"mark10 (simulated) on socket://{host}:{port}", flush=True)
    try:
        await _until_signalled()
    finally:
        await server.stop()


async def _until_signalled() -> None:
    # SIGTERM as well as Ctrl-C, so a script or a background job can stop the simulator cleanly.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(_serve(_parser().parse_args(argv)))


if __name__ == "__main__":
    main()
