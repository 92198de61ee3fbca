"""Which simulator stands in for which protocol, and the fault switches each one takes.

Keyed by a model's ``protocol_module`` (as the model table gives it), so a new model speaking a
known protocol gets a simulator with no code. Fault switches arrive as text (from an address
like ``mark10@sim?garbage_every=5`` or ``devicectl sim --fault``) and are checked here, with
messages that say what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .force_model import ForceModel, Segment, TherapistModel, constant, hold_segments
from .imada import ImadaDevice
from .line_device import LineDevice
from .mark10 import Mark10Device, Mark10Faults
from .progressor import ProgressorFaults
from .serve import ByteDevice
from .shimpo import ShimpoDevice
from .wagner import WagnerDevice

__all__ = [
    "BLE_FAULTS",
    "SERIAL_FAULTS",
    "FaultSwitch",
    "SerialSeries",
    "SimKind",
    "ble_faults",
    "replug_after_s",
    "serial_device",
    "serial_faults",
    "simulated_protocols",
    "therapist",
]

SimKind = Literal["serial", "ble"]

_SerialFactory = Callable[..., Mark10Device | LineDevice]

# protocol module → the device-side state machine that speaks it.
_SERIAL: dict[str, _SerialFactory] = {
    "protocols.mark10": Mark10Device,
    "protocols.imada": ImadaDevice,
    "protocols.shimpo": ShimpoDevice,
    "protocols.wagner": WagnerDevice,
}
_BLE = frozenset({"protocols.progressor"})


@dataclass(frozen=True)
class FaultSwitch:
    """One fault switch: its name as the user writes it, its kind, and what it does."""

    name: str
    kind: Literal["seconds", "count", "newtons", "flag"]
    help: str


SERIAL_FAULTS = (
    FaultSwitch("disconnect_after_s", "seconds", "the link drops this long after the first byte"),
    FaultSwitch("garbage_every", "count", "every K-th reply is garbled"),
    FaultSwitch("no_reply_every", "count", "every K-th request gets no reply"),
    FaultSwitch("stuck_n", "newtons", "every reading reports this force"),
    FaultSwitch(
        "replug_after_s",
        "seconds",
        "after the disconnect, the device comes back on the same path this long later",
    ),
)
BLE_FAULTS = (
    FaultSwitch("disconnect_after_s", "seconds", "the link drops this long after connecting"),
    FaultSwitch("drop_every", "count", "every K-th notification is lost on the air"),
    FaultSwitch("truncate_every", "count", "every K-th notification arrives cut short"),
    FaultSwitch("stuck_n", "newtons", "every sample reports this force"),
    FaultSwitch("low_battery", "flag", "the device warns of low power (true/false)"),
)


def simulated_protocols() -> dict[str, SimKind]:
    """Every protocol module a simulator speaks, with how it is served."""
    kinds: dict[str, SimKind] = dict.fromkeys(_SERIAL, "serial")
    kinds.update(dict.fromkeys(_BLE, "ble"))
    return kinds


def serial_device(
    protocol_module: str,
    model: TherapistModel,
    *,
    clock: Callable[[], float],
    faults: Mark10Faults | None = None,
    epoch: float | None = None,
) -> ByteDevice:
    """A fresh simulated serial device speaking ``protocol_module``. KeyError if none does.

    ``epoch``: the clock value the force model counts from (default: the device's first byte);
    a device replacing another is given the first one's, so the pressing carries on."""
    try:
        factory = _SERIAL[protocol_module]
    except KeyError:
        raise KeyError(f"no serial simulator speaks {protocol_module}") from None
    return factory(model, clock=clock, faults=faults, epoch=epoch)


class SerialSeries:
    """The devices one served port sees over time (a ``PtyServer``/``TcpServer`` factory).

    The first is made with every fault switch. A later one (the gauge plugged back in, or a new
    TCP connection) carries on the first one's pressing (its ``epoch``) and is made without the
    disconnect switch: one unplug, as a person pulling a cable and plugging it back does.
    """

    def __init__(
        self,
        protocol_module: str,
        model: ForceModel,
        *,
        clock: Callable[[], float],
        faults: Mark10Faults | None = None,
    ) -> None:
        if protocol_module not in _SERIAL:
            raise KeyError(f"no serial simulator speaks {protocol_module}")
        self._module = protocol_module
        self._model = model
        self._clock = clock
        self._faults = faults or Mark10Faults()
        self.devices: list[Mark10Device | LineDevice] = []

    def __call__(self) -> ByteDevice:
        if not self.devices:
            device = _SERIAL[self._module](self._model, clock=self._clock, faults=self._faults)
        else:
            again = dataclasses.replace(self._faults, disconnect_after_s=None)
            epoch = self.devices[0].state.started_at
            device = _SERIAL[self._module](
                self._model, clock=self._clock, faults=again, epoch=epoch
            )
        self.devices.append(device)
        return device


# The "holds" profile: a typical trigger-point hold (30 s at 40 N, then 30 s of rest), looping.
HOLD_TARGET_N = 40.0
HOLD_S = 30.0
REST_S = 30.0


def therapist(
    profile: str, *, plan: Sequence[Segment] | None = None, seed: int = 0, loop: bool = False
) -> TherapistModel:
    """The simulated therapist a profile names; ValueError (listing the profiles) otherwise.

    ``plan`` (when a session's plan is at hand: its segments), ``holds`` or ``holds:N`` (press
    and hold N newtons, 40 by default, in a loop), ``constant:N`` (N newtons for ever)."""
    kind, colon, value = profile.strip().partition(":")
    force_n = _number(value) if colon else HOLD_TARGET_N
    if kind == "plan" and not colon and plan is not None:
        return TherapistModel(list(plan), seed=seed, loop=loop)
    if kind == "holds" and force_n > 0:
        return TherapistModel(hold_segments(force_n, HOLD_S, REST_S, 1), seed=seed, loop=True)
    if kind == "constant" and colon and math.isfinite(force_n):
        return constant(force_n)
    choices = "plan, " if plan is not None else ""
    raise ValueError(
        f"unknown simulated therapist profile {profile!r}; use {choices}holds, holds:N "
        "(hold target in newtons) or constant:N (newtons)"
    )


def _number(text: str) -> float:
    """A finite number, or NaN, which every check of a profile rejects."""
    try:
        value = float(text)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def replug_after_s(params: Mapping[str, str]) -> float | None:
    """The ``replug_after_s`` switch (a server setting, not the device's), checked."""
    value = _float(_parse(params, SERIAL_FAULTS).get("replug_after_s"))
    if value is not None and value < 0:
        raise ValueError(f"replug_after_s must be >= 0 seconds, not {value}")
    return value


def serial_faults(params: Mapping[str, str]) -> Mark10Faults:
    """The serial simulators' fault switches from text; ValueError says what is wrong."""
    values = _parse(params, SERIAL_FAULTS)
    return Mark10Faults(
        disconnect_after_s=_float(values.get("disconnect_after_s")),
        garbage_every=_int(values.get("garbage_every")),
        no_reply_every=_int(values.get("no_reply_every")),
        stuck_value_n=_float(values.get("stuck_n")),
    )


def ble_faults(params: Mapping[str, str]) -> ProgressorFaults:
    """The BLE simulators' fault switches from text; ValueError says what is wrong."""
    values = _parse(params, BLE_FAULTS)
    return ProgressorFaults(
        disconnect_after_s=_float(values.get("disconnect_after_s")),
        drop_every=_int(values.get("drop_every")),
        truncate_every=_int(values.get("truncate_every")),
        stuck_value_n=_float(values.get("stuck_n")),
        low_battery=bool(values.get("low_battery", False)),
    )


def _parse(
    params: Mapping[str, str], switches: tuple[FaultSwitch, ...]
) -> dict[str, float | int | bool]:
    known = {s.name: s for s in switches}
    values: dict[str, float | int | bool] = {}
    for name, raw in params.items():
        switch = known.get(name)
        if switch is None:
            raise ValueError(f"unknown simulator setting {name!r}; use one of {', '.join(known)}")
        values[name] = _value(switch, raw)
    return values


def _value(switch: FaultSwitch, raw: str) -> float | int | bool:
    text = raw.strip().lower()
    if switch.kind == "flag":
        if text in ("1", "true", "yes", "on", ""):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"simulator setting {switch.name}={raw!r}: use true or false")
    try:
        number = int(text) if switch.kind == "count" else float(text)
    except ValueError:
        kind = "a whole number" if switch.kind == "count" else "a number"
        raise ValueError(f"simulator setting {switch.name}={raw!r} is not {kind}") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"simulator setting {switch.name}={raw!r} must be finite")
    return number


def _float(value: float | int | bool | None) -> float | None:
    return None if value is None else float(value)


def _int(value: float | int | bool | None) -> int | None:
    return None if value is None else int(value)
