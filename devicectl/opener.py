"""Device opener: an address string becomes a driver. Part of the composition root.

The one place allowed to wire a simulator in, and only for ``@sim`` addresses: a simulated
device is served the way the real one is (a pty pair), the real driver talks to it, and it is
labelled simulated everywhere. Nothing ever falls back to a simulator silently.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from devicectl.errors import AddressError
from devicectl.plan import ChairStep, GunStep, HoldStep, PauseStep, Plan
from drivers.address import AddressError as DriverAddressError
from drivers.address import DeviceAddress, parse_address
from drivers.force import ForceSensor
from drivers.mark10 import Mark10
from drivers.models import get_model
from drivers.transport.serial import SerialTransport
from simulators.force_model import Segment, TherapistModel, hold_segments
from simulators.mark10 import Mark10Device, Mark10Faults
from simulators.serve import PtyServer, TcpServer

# Before its first press the simulated therapist waits this long, so the session has started.
SIM_LEAD_IN_S = 1.0
# An untimed pause is confirmed by a person; the simulated therapist waits this long for it.
SIM_UNTIMED_PAUSE_S = 5.0

_FAULT_PARAMS = {
    "disconnect_after_s": float,
    "garbage_every": int,
    "no_reply_every": int,
    "stuck_n": float,
}


@dataclass(frozen=True)
class SensorSpec:
    """A parsed, checked force-sensor address, before anything is opened."""

    text: str
    address: DeviceAddress

    @property
    def simulated(self) -> bool:
        return self.address.scheme == "sim"


def parse_sensor(text: str) -> SensorSpec:
    """Check a force-sensor address without opening it. Raises AddressError."""
    try:
        address = parse_address(text)
    except DriverAddressError as exc:
        raise AddressError(str(exc)) from exc
    model = get_model(address.model)
    if model.family != "force_sensor":
        raise AddressError(f"{text}: {model.name} is a {model.family}, not a force sensor")
    if address.scheme not in ("serial", "socket", "sim"):
        raise AddressError(f"{text}: {address.scheme} devices are not supported yet")
    if address.scheme == "sim":
        sim_faults(address)  # reject bad fault parameters now, not mid-session
    return SensorSpec(text, address)


def sim_faults(address: DeviceAddress) -> Mark10Faults:
    """Fault switches from ``mark10@sim?garbage_every=5&disconnect_after_s=3``."""
    values: dict[str, float | int] = {}
    for key, raw in address.params.items():
        kind = _FAULT_PARAMS.get(key)
        if kind is None:
            allowed = ", ".join(_FAULT_PARAMS)
            raise AddressError(f"unknown simulator setting {key!r}; use one of {allowed}")
        try:
            values[key] = kind(raw)
        except ValueError as exc:
            raise AddressError(f"simulator setting {key}={raw!r} is not a number") from exc
    try:  # Mark10Faults checks the ranges (counts >= 1, finite positive seconds, ...)
        return Mark10Faults(
            disconnect_after_s=_opt_float(values.get("disconnect_after_s")),
            garbage_every=_opt_int(values.get("garbage_every")),
            no_reply_every=_opt_int(values.get("no_reply_every")),
            stuck_value_n=_opt_float(values.get("stuck_n")),
        )
    except ValueError as exc:
        raise AddressError(f"{address}: {exc}") from exc


def _opt_float(v: float | int | None) -> float | None:
    return None if v is None else float(v)


def _opt_int(v: float | int | None) -> int | None:
    return None if v is None else int(v)


def plan_segments(plan: Plan) -> list[Segment]:
    """A simulated therapist following the plan: presses mid-band for each hold, rests between."""
    segments = [Segment("rest", SIM_LEAD_IN_S)]
    for step in plan.steps:
        match step:
            case HoldStep():
                target = (step.low_n + step.high_n) / 2
                segments += hold_segments(target, step.hold_s, step.rest_s, step.repeat)
            case PauseStep(duration_s=duration):
                segments.append(Segment("rest", duration or SIM_UNTIMED_PAUSE_S))
            case GunStep(duration_s=duration) | ChairStep(duration_s=duration):
                segments.append(Segment("rest", duration + 1.0))
    return segments


@asynccontextmanager
async def open_force_sensor(
    spec: SensorSpec, *, plan: Plan, rate_hz: float = 50.0
) -> AsyncIterator[ForceSensor]:
    """The driver for ``spec``, not yet connected; closed (and any simulator stopped) on exit."""
    model = get_model(spec.address.model)
    server: PtyServer | None = None
    if spec.simulated:
        faults = sim_faults(spec.address)
        therapist = TherapistModel(plan_segments(plan))
        server = PtyServer(lambda: Mark10Device(therapist, clock=time.monotonic, faults=faults))
        transport = SerialTransport(await server.start(), baudrate=model.baud or 115200)
    else:
        baud = int(spec.address.params.get("baud", model.baud or 115200))
        transport = SerialTransport(spec.address.serial_url, baudrate=baud)
    sensor = Mark10(
        transport,
        rate_hz=rate_hz,
        default_unit=spec.address.unit,
        label=spec.text,
        simulated=spec.simulated,
    )
    try:
        yield sensor
    finally:
        await sensor.close()
        if server is not None:
            await server.stop()


async def serve_simulator(model: str, plan: Plan, *, tcp_port: int | None, loop: bool) -> int:
    """``devicectl sim``: serve a simulated device until Ctrl-C, printing where to connect."""
    therapist = TherapistModel(plan_segments(plan), loop=loop)
    factory = lambda: Mark10Device(therapist, clock=time.monotonic)  # noqa: E731
    server: PtyServer | TcpServer
    if tcp_port is None:
        server = PtyServer(factory)
        where = f"serial://{await server.start()}"
    else:
        server = TcpServer(factory)
        host, port = await server.start(port=tcp_port)
        where = f"socket://{host}:{port}"
    print(f"simulated {model} (following plan {plan.name!r}) on {where}", flush=True)
    print(
        f"connect with: devicectl run {plan.source.removeprefix('builtin:')} "
        f"--tbar {model}@{where}",
        flush=True,
    )
    stop = asyncio.Event()
    running = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        running.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
    return 0
