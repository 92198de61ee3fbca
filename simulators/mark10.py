"""A simulated Mark-10 Series 5 gauge (GCL2), sans-I/O: bytes from the host in, reply bytes out.

It uses the device side of ``protocols.mark10``. What it answers:

==============  ====================================================================
``?`` / ``?C``  the model's force now, in the current unit, minus the zero offset
``Z``           zero: the offset becomes the current force; no reply
``LB`` … ``KN`` select the unit; no reply
``RM/RV/RS``    model name, firmware version, serial number as text
anything else   ``*10`` (illegal command)
==============  ====================================================================

The manuals document no acknowledgement for ``Z`` or the unit commands, so the simulator sends
none (unverified on hardware). The model's clock, and the disconnect fault's, start at the first
byte the host sends, so a profile begins when a client starts talking rather than when a server
happened to be created. A device that replaces another one (a gauge unplugged and plugged back,
served afresh) is given the first one's ``epoch`` instead: its model then counts from that
clock value, so the simulated therapist carries on where it was rather than start its plan again
(the disconnect fault still counts from each device's own first byte).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from protocols.mark10 import (
    Mark10Unit,
    Request,
    RequestDecoder,
    SetUnit,
    UnknownCommand,
    encode_error,
    encode_reading,
    encode_text,
)

from .force_model import ForceModel

__all__ = ["Mark10Device", "Mark10Faults", "Mark10State"]

_ILLEGAL_COMMAND = 10


@dataclass
class Mark10Faults:
    """Fault switches. Counts are 1-based: ``garbage_every=3`` garbles the 3rd, 6th, … line."""

    disconnect_after_s: float | None = None  # the link closes this long after the first byte
    garbage_every: int | None = None  # every K-th reply line becomes random non-ASCII bytes
    no_reply_every: int | None = None  # every K-th request is lost: not acted on, not answered
    stuck_value_n: float | None = None  # readings report this force (N) whatever the model says

    def __post_init__(self) -> None:
        # Checked here, so a bad switch fails where it is set, not mid-session in the server.
        for name in ("garbage_every", "no_reply_every"):
            _check_count(name, getattr(self, name))
        after = self.disconnect_after_s
        if after is not None and not (math.isfinite(after) and after > 0):
            raise ValueError(f"disconnect_after_s must be a finite number > 0 s, not {after!r}")
        stuck = self.stuck_value_n
        if stuck is not None and not math.isfinite(stuck):
            raise ValueError(f"stuck_value_n must be a finite force in N, not {stuck!r}")


def _check_count(name: str, every: int | None) -> None:
    if every is None:
        return
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"{name} must be a whole number >= 1, not {every!r}")


@dataclass
class Mark10State:
    """What a test may inspect; the device updates it as it runs."""

    unit: Mark10Unit
    zero_offset_n: float = 0.0
    started_at: float | None = None  # clock() at the first byte received
    requests_seen: int = 0
    requests_dropped: int = 0
    replies_sent: int = 0  # reply lines, garbled ones included
    garbage_sent: int = 0
    last_force_n: float = 0.0  # the model's raw force at the last reading or zero
    commands: list[str] = field(default_factory=list)  # every request's text, in order


class Mark10Device:
    """The device state machine; serve it with ``simulators.serve``."""

    def __init__(
        self,
        model: ForceModel,
        *,
        clock: Callable[[], float],
        unit: Mark10Unit = Mark10Unit.N,
        faults: Mark10Faults | None = None,
        decimals: int = 2,
        model_name: str = "M5-100",
        firmware: str = "1.04",
        serial: str = "SIM-0001",
        seed: int = 0,
        unit_output: bool = True,
        epoch: float | None = None,
    ) -> None:
        self._model = model
        self._clock = clock
        self._epoch = epoch  # the clock value the model counts from; None: the first byte
        self._faults = faults or Mark10Faults()
        self._decimals = decimals
        self._unit_output = unit_output  # the gauge's "data format" menu may leave the unit out
        self._identity = {Request.MODEL: model_name, Request.FIRMWARE: firmware}
        self._identity[Request.SERIAL] = serial
        self._decoder = RequestDecoder()
        self._random = random.Random(seed)  # only for the bytes of garbled lines
        self.state = Mark10State(unit=unit)

    @property
    def faults(self) -> Mark10Faults:
        return self._faults

    def receive(self, data: bytes) -> bytes:
        """Bytes in from the host; the reply bytes to send back (maybe empty)."""
        if data and self.state.started_at is None:
            self.state.started_at = self._clock()
        out = bytearray()
        for command in self._decoder.feed(data):
            out += self._handle(command)
        return bytes(out)

    def should_disconnect(self) -> bool:
        """True once the disconnect fault's time has passed since the first byte."""
        after = self._faults.disconnect_after_s
        started = self.state.started_at
        return after is not None and started is not None and self._clock() - started >= after

    def due(self) -> bytes:
        """Nothing: a Mark-10 is polled here and never streams on its own."""
        return b""

    def force_n(self) -> float:
        """The model's raw force now (before zeroing and faults)."""
        start = self.state.started_at if self._epoch is None else self._epoch
        elapsed = 0.0 if start is None else self._clock() - start
        return self._model.force_at(elapsed)

    def _handle(self, command: Request | SetUnit | UnknownCommand) -> bytes:
        self.state.requests_seen += 1
        self.state.commands.append(_command_text(command))
        if _is_every(self._faults.no_reply_every, self.state.requests_seen):
            self.state.requests_dropped += 1
            return b""
        return self._reply_line(self._execute(command))

    def _execute(self, command: Request | SetUnit | UnknownCommand) -> bytes:
        if isinstance(command, UnknownCommand):
            return encode_error(_ILLEGAL_COMMAND)
        if isinstance(command, SetUnit):
            self.state.unit = command.unit
            return b""
        if command is Request.ZERO:
            self.state.zero_offset_n = self._sample()
            return b""
        if command in (Request.READ_CURRENT, Request.READ_DISPLAYED):
            return self._reading()
        return encode_text(self._identity[command])

    def _sample(self) -> float:
        self.state.last_force_n = self.force_n()
        return self.state.last_force_n

    def _reading(self) -> bytes:
        stuck = self._faults.stuck_value_n
        # A stuck sensor's output is frozen, so zeroing does not move it either.
        force_n = stuck if stuck is not None else self._sample() - self.state.zero_offset_n
        unit = self.state.unit
        printed = unit if self._unit_output else None
        return encode_reading(force_n / unit.newtons, printed, self._decimals)

    def _reply_line(self, line: bytes) -> bytes:
        if not line:
            return b""
        self.state.replies_sent += 1
        if _is_every(self._faults.garbage_every, self.state.replies_sent):
            self.state.garbage_sent += 1
            return self._garbage()
        return line

    def _garbage(self) -> bytes:
        # Bytes with the high bit set never form a valid GCL2 line, so a host must count them.
        length = self._random.randint(3, 12)
        return bytes(self._random.randint(0x80, 0xFF) for _ in range(length)) + b"\r\n"


def _is_every(every: int | None, count: int) -> bool:
    return every is not None and count % every == 0


def _command_text(command: Request | SetUnit | UnknownCommand) -> str:
    if isinstance(command, SetUnit):
        return command.unit.command
    if isinstance(command, UnknownCommand):
        return command.text
    return command.value
