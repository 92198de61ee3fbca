"""Device opener: an address string becomes a driver. Part of the composition root.

The one place allowed to wire a simulator in, and only for ``@sim`` addresses: a simulated
device is served the way the real one is (a pty pair), the real driver talks to it, and it is
labelled simulated everywhere. Nothing ever falls back to a simulator silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from devicectl.builtin import builtin_plan
from devicectl.errors import AddressError, DevicectlError
from devicectl.plan import ChairStep, GunStep, HoldStep, PauseStep, Plan
from drivers.address import AddressError as DriverAddressError
from drivers.address import DeviceAddress, parse_address
from drivers.calibration import CalibratedSensor, CalibrationStore
from drivers.capture import CaptureLog, CapturingTransport, read_capture
from drivers.force import ForceSensor
from drivers.imada import Imada
from drivers.mark10 import Mark10
from drivers.models import ModelEntry, get_model, load_models
from drivers.progressor import Progressor
from drivers.shimpo import Shimpo
from drivers.supervisor import SupervisedSensor
from drivers.transport.base import Transport
from drivers.transport.serial import SerialTransport
from drivers.wagner import Wagner
from protocols.capture import CaptureError
from protocols.mark10 import Mark10Unit
from simulators import catalog
from simulators import exec as simexec
from simulators.ble_backend import SimRegistry, progressor_peripheral
from simulators.force_model import ForceModel, HandOver, Segment, TherapistModel, hold_segments
from simulators.mark10 import Mark10Faults
from simulators.progressor import ProgressorDevice, ProgressorFaults
from simulators.replay import ReplayDevice
from simulators.serve import ByteDevice, PtyServer, TcpServer

# Before its first press the simulated therapist waits this long, so the session has started.
SIM_LEAD_IN_S = 1.0
# An untimed pause is confirmed by a person; the simulated therapist waits this long for it.
SIM_UNTIMED_PAUSE_S = 5.0
# The plan a simulated device follows when no session plan is at hand (``scan --sim``).
SIM_DEFAULT_PLAN = "demo"


# The serial drivers, by the protocol their model speaks: a new model speaking a known protocol
# is a model-table entry, not code.
class _SerialDriver(Protocol):
    """How the opener builds every serial force-gauge driver."""

    def __call__(
        self,
        transport: Transport,
        *,
        rate_hz: float,
        default_unit: Mark10Unit | None,
        label: str,
        simulated: bool,
    ) -> ForceSensor: ...


_SERIAL_DRIVERS: dict[str, _SerialDriver] = {
    "protocols.mark10": Mark10,
    "protocols.imada": Imada,
    "protocols.shimpo": Shimpo,
    "protocols.wagner": Wagner,
}
# This project's simulators print newtons unless told otherwise, so a simulated gauge whose
# readings carry no unit (Imada's) is read in newtons.
_SIM_UNIT = Mark10Unit.N
_BLE_DRIVERS = frozenset({"protocols.progressor"})


@dataclass(frozen=True)
class SensorSpec:
    """A parsed, checked force-sensor address, before anything is opened."""

    text: str
    address: DeviceAddress
    model: ModelEntry

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
    module = model.protocol_module
    if module not in _SERIAL_DRIVERS and module not in _BLE_DRIVERS:
        raise AddressError(f"{text}: {model.name} has no driver yet")
    if address.scheme == "mqtt":
        raise AddressError(f"{text}: devices behind an MQTT bridge are not supported yet")
    if address.scheme == "sim":
        sim_faults(address, model)  # reject bad fault switches now, not mid-session
    return SensorSpec(text, address, model)


def sim_faults(address: DeviceAddress, model: ModelEntry) -> Mark10Faults | ProgressorFaults:
    """Fault switches from ``mark10@sim?garbage_every=5&disconnect_after_s=3``."""
    try:
        if model.transport == "ble":
            return catalog.ble_faults(address.params)
        return catalog.serial_faults(address.params)
    except ValueError as exc:
        raise AddressError(f"{address}: {exc}") from exc


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


def _ble_registry(therapist: ForceModel, faults: ProgressorFaults | None) -> SimRegistry:
    """The simulated radio neighbourhood: one Progressor following ``therapist``."""
    loop = asyncio.get_running_loop()
    registry = SimRegistry()
    registry.add(progressor_peripheral(ProgressorDevice(therapist, clock=loop.time, faults=faults)))
    return registry


def sim_scanner_backend() -> type[Any]:
    """A bleak scanner backend hearing the built-in simulated peripherals (``scan --sim``)."""
    plan = builtin_plan(SIM_DEFAULT_PLAN)
    _, scanner = _ble_registry(TherapistModel(plan_segments(plan), loop=True), None).backends()
    return scanner


class SimHands(Protocol):
    """A simulated T-bar a person can press from the keyboard (``devicectl demo``)."""

    @property
    def manual(self) -> bool: ...

    def press(self) -> None: ...

    def release(self) -> None: ...

    def automatic(self) -> None: ...


# With no hold step to aim at, a hand-pressed simulated T-bar goes to a firm trigger-point
# pressure (the built-in plans' bands sit around 20-45 N).
_HAND_TARGET_N = 30.0


def _hands(plan: Plan) -> HandOver:
    """The simulated therapist following ``plan``, which a person can take over; pressing by
    hand aims at the middle of the plan's first target band."""
    target = next(((s.low_n + s.high_n) / 2 for s in plan.hold_steps), _HAND_TARGET_N)
    return HandOver(TherapistModel(plan_segments(plan)), target_n=target)


@dataclass(frozen=True)
class OpenOptions:
    """How to open a force sensor for a session (all optional).

    ``calibrations``: where stored calibrations are looked up (None: none applied).
    ``capture``: a file to record the device conversation in (``--capture``).
    ``reconnect_for_s``: reconnect a lost link for up to this long (None: a loss ends the session).
    ``on_hands``: called with the simulated T-bar's :class:`SimHands` when the device is simulated.
    """

    rate_hz: float = 50.0
    calibrations: CalibrationStore | None = None
    capture: Path | None = None
    on_capture_error: Callable[[Exception], None] | None = None
    reconnect_for_s: float | None = None
    on_hands: Callable[[SimHands], None] | None = None


@asynccontextmanager
async def open_force_sensor(
    spec: SensorSpec, *, plan: Plan, options: OpenOptions = OpenOptions()
) -> AsyncIterator[CalibratedSensor]:
    """The sensor for ``spec``, not yet connected: the model's driver (under a reconnecting
    supervisor when asked), with calibration and software tare on top. On exit it is closed and
    any simulator stopped."""
    async with contextlib.AsyncExitStack() as stack:
        log = _capture_log(spec, options)
        if log is not None:
            stack.callback(log.close)
        factory: Callable[[], ForceSensor]
        if spec.model.protocol_module in _BLE_DRIVERS:
            factory = _ble_factory(spec, plan, log, options)
        else:
            factory = await _serial_factory(spec, plan, options, log, stack)
        driver: ForceSensor
        if options.reconnect_for_s is None:
            driver = factory()
        else:
            driver = SupervisedSensor(
                factory, label=spec.text, give_up_after_s=options.reconnect_for_s
            )
        sensor = CalibratedSensor(driver, store=options.calibrations)
        try:
            yield sensor
        finally:
            await sensor.close()


def _capture_log(spec: SensorSpec, options: OpenOptions) -> CaptureLog | None:
    if options.capture is None:
        return None
    kind: Literal["ble", "serial"] = (
        "ble" if spec.model.protocol_module in _BLE_DRIVERS else "serial"
    )
    try:
        return CaptureLog.open(
            options.capture,
            device=spec.text,
            model=spec.model.name,
            transport=kind,
            on_error=options.on_capture_error,
        )
    except CaptureError as exc:
        raise AddressError(f"--capture: {exc}") from exc


async def _serial_factory(
    spec: SensorSpec,
    plan: Plan,
    options: OpenOptions,
    log: CaptureLog | None,
    stack: contextlib.AsyncExitStack,
) -> Callable[[], ForceSensor]:
    """A maker of fresh, unconnected drivers for a serial gauge (one per connection)."""
    model = spec.model
    if spec.simulated:
        url = await _serve_serial_sim(spec, plan, stack, options.on_hands)
        baud = model.baud or 115200
    else:
        url = spec.address.serial_url
        baud = spec.address.baud or model.baud or 115200
    make_driver = _SERIAL_DRIVERS[model.protocol_module]

    def factory() -> ForceSensor:
        transport: Transport = SerialTransport(url, baudrate=baud)
        if log is not None:
            transport = CapturingTransport(transport, log)
        return make_driver(
            transport,
            rate_hz=options.rate_hz,
            default_unit=spec.address.unit or (_SIM_UNIT if spec.simulated else None),
            label=spec.text,
            simulated=spec.simulated,
        )

    return factory


async def _serve_serial_sim(
    spec: SensorSpec,
    plan: Plan,
    stack: contextlib.AsyncExitStack,
    on_hands: Callable[[SimHands], None] | None,
) -> str:
    """Serve the simulated gauge on a pty, behind a stable path (as /dev/serial/by-id gives a
    real one), so that with ``replug_after_s`` it can come back where the driver looks."""
    faults = sim_faults(spec.address, spec.model)
    assert isinstance(faults, Mark10Faults)
    try:
        replug = catalog.replug_after_s(spec.address.params)
    except ValueError as exc:
        raise AddressError(f"{spec.address}: {exc}") from exc
    hands = _hands(plan)
    if on_hands is not None:
        on_hands(hands)
    series = catalog.SerialSeries(
        spec.model.protocol_module,
        hands,
        clock=time.monotonic,
        faults=faults,
    )
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="devicectl-sim-")))
    server = PtyServer(
        series, link_path=str(folder / f"{spec.model.key}-sim"), replug_after_s=replug
    )
    await server.start()
    stack.push_async_callback(server.stop)
    return server.link_path or server.path


def _ble_factory(
    spec: SensorSpec, plan: Plan, log: CaptureLog | None, options: OpenOptions = OpenOptions()
) -> Callable[[], Progressor]:
    """A maker of fresh, unconnected Progressor drivers (one per connection). The address the
    first connection found is pinned: a reconnection scanning by name again could find another
    Progressor first."""
    backends: tuple[type[Any] | None, type[Any] | None] = (None, None)
    if spec.simulated:
        faults = sim_faults(spec.address, spec.model)
        assert isinstance(faults, ProgressorFaults)
        hands = _hands(plan)
        if options.on_hands is not None:
            options.on_hands(hands)
        backends = _ble_registry(hands, faults).backends()
    pinned = spec.address.target or None
    last: Progressor | None = None

    def factory() -> Progressor:
        nonlocal pinned, last
        if pinned is None and last is not None and last.info is not None:
            pinned = last.info.address
        last = Progressor(
            address=pinned,
            label=spec.text,
            simulated=spec.simulated,
            client_backend=backends[0],
            scanner_backend=backends[1],
            capture=log,
        )
        return last

    return factory


def sim_models() -> list[tuple[ModelEntry, str]]:
    """Every model with a simulator, and how it is served (``devicectl sim list``)."""
    kinds = catalog.simulated_protocols()
    return [
        (entry, kinds[entry.protocol_module])
        for entry in load_models().values()
        if entry.protocol_module in kinds
    ]


def fault_switches(kind: str) -> tuple[catalog.FaultSwitch, ...]:
    """The fault switches of a simulator served as ``kind`` ("serial" or "ble")."""
    return catalog.BLE_FAULTS if kind == "ble" else catalog.SERIAL_FAULTS


def sim_therapist(plan: Plan, profile: str, *, loop: bool) -> TherapistModel:
    """The simulated therapist: ``plan`` (press through the plan), ``holds[:N]`` or
    ``constant:N``."""
    try:
        return catalog.therapist(profile, plan=plan_segments(plan), loop=loop)
    except ValueError as exc:
        raise AddressError(str(exc)) from exc


async def serve_simulator(
    model_key: str,
    plan: Plan,
    *,
    tcp_port: int | None,
    loop: bool,
    profile: str = "plan",
    faults: Mapping[str, str] | None = None,
) -> int:
    """``devicectl sim MODEL``: serve a simulated serial device until Ctrl-C or SIGTERM,
    printing where to connect."""
    model = get_model(model_key)
    if catalog.simulated_protocols().get(model.protocol_module) != "serial":
        raise AddressError(
            f"{model.key} is not a serial device: use the address {model.key}@sim in a session, "
            f"or `devicectl sim exec --model {model.key} -- COMMAND` for a program of your own"
        )
    therapist = sim_therapist(plan, profile, loop=loop)
    try:
        switches = catalog.serial_faults(faults or {})
    except ValueError as exc:
        raise AddressError(str(exc)) from exc

    factory = catalog.SerialSeries(
        model.protocol_module, therapist, clock=time.monotonic, faults=switches
    )
    following = f"following plan {plan.name!r}" if profile == "plan" else profile
    label = f"SIMULATED {model.key} ({model.name}; {following})"
    hint = f"devicectl run {plan.source.removeprefix('builtin:')} --tbar {model.key}@{{where}}"
    return await _serve_until_signalled(factory, label, hint, tcp_port=tcp_port)


def sim_exec(
    models: Sequence[str],
    faults: Mapping[str, str],
    profile: str | None,
    seed: int,
    argv: Sequence[str],
) -> int:
    """``devicectl sim exec``: run ``argv`` with simulated peripherals in place of the radio;
    its exit code."""
    try:
        spec = simexec.ExecSpec.parse(
            models or ["progressor"], seed=seed, faults=faults, profile=profile
        )
        return simexec.run(spec, argv)
    except ValueError as exc:
        raise AddressError(str(exc)) from exc
    except RuntimeError as exc:  # the startup hook is missing: a broken installation
        raise DevicectlError(f"sim exec cannot run: {exc}") from exc


async def serve_replay(path: Path, *, tcp_port: int | None) -> int:
    """``devicectl sim replay FILE``: serve a recorded serial conversation as a device."""
    try:
        capture = read_capture(path)
    except CaptureError as exc:
        raise AddressError(str(exc)) from exc
    if capture.header.transport != "serial":
        raise AddressError(
            f"{path}: a Bluetooth capture cannot be served to another program; "
            "replay it in-process (simulators.replay.ReplayGatt)"
        )

    def factory() -> ByteDevice:
        # Not strict: a driver asking a little differently still gets the recorded answers.
        return ReplayDevice(capture, timing="recorded", strict=False, at_end="loop")

    label = f"SIMULATED replay of {path} ({capture.header.model})"
    hint = "devicectl run PLAN --tbar MODEL@{where}  (MODEL: the captured device's model)"
    return await _serve_until_signalled(factory, label, hint, tcp_port=tcp_port)


async def _serve_until_signalled(
    factory: Callable[[], ByteDevice], label: str, hint: str, *, tcp_port: int | None
) -> int:
    """Serve ``factory``'s devices on a pty (or 127.0.0.1:``tcp_port``) until Ctrl-C or
    SIGTERM, printing where to connect (``{where}`` in ``hint``)."""
    server: PtyServer | TcpServer
    if tcp_port is None:
        server = PtyServer(factory)
        where = f"serial://{await server.start()}"
    else:
        server = TcpServer(factory)
        try:
            host, port = await server.start(port=tcp_port)
        except OSError as exc:
            raise AddressError(f"cannot serve on 127.0.0.1:{tcp_port}: {exc.strerror}") from exc
        where = f"socket://{host}:{port}"
    print(f"{label} on {where}", flush=True)
    print(f"connect with: {hint.format(where=where)}", flush=True)
    stop = asyncio.Event()
    running = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        running.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
    return 0
