"""A simulated Tindeq Progressor, sans-I/O: control-point writes in, data-point notifications out.

It uses the device side of ``protocols.progressor``. What it does with each command:

=====================  ================================================================
TARE_SCALE             the tare offset becomes the current weight; no response
START_WEIGHT_MEAS      weight notifications from now on, ``rate_hz`` samples a second
STOP_WEIGHT_MEAS       samples due so far are sent (a last, partial batch too), then none
GET_APP_VERSION        response: ``firmware`` as UTF-8 text
GET_BATTERY_VOLTAGE    response: ``battery_mv`` as uint32 LE
GET_PROGRESSOR_ID      response: ``progressor_id`` as u64 LE, trailing zero bytes left out
GET_ERROR_INFORMATION  response: empty text (no error stored)
ENTER_SLEEP            streaming stops and the device drops the link (it switches off)
anything else          recorded, otherwise ignored (no documented response)
=====================  ================================================================

Time: the host passes ``now`` (the same clock as ``clock``) to :meth:`notifications`, which
returns what the device would have sent up to then, so a server can pump it at any pace.
The force model's clock starts at the host's first write (as the Mark-10 simulator's does), or
at ``epoch`` when given (a shared start, so a device object made afresh carries on the same
press; the peripheral keeps one device across its links, so reconnecting alone needs none);
the device's uint32 µs counter at ``boot_us`` when the device object is created; it wraps.
Samples are sent in full batches (as many as ``att_payload`` holds) because the device fills a
notification before sending it; stopping the measurement flushes the last, partial batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from protocols.progressor import (
    KGF_N,
    US_WRAP,
    Command,
    CommandDecoder,
    Opcode,
    UnknownCommand,
    WeightSample,
    encode_low_power,
    encode_response,
    encode_weight,
    max_samples,
)

from .force_model import ForceModel

__all__ = ["ProgressorDevice", "ProgressorFaults", "ProgressorState"]


@dataclass
class ProgressorFaults:
    """Fault switches. Counts are 1-based over every notification the device produces:
    ``drop_every=3`` loses the 3rd, 6th, … (a dropped one is never truncated)."""

    disconnect_after_s: float | None = None  # the link drops this long after connecting
    drop_every: int | None = None  # every K-th notification is lost on the air
    truncate_every: int | None = None  # every K-th notification arrives cut in half
    stuck_value_n: float | None = None  # samples report this force (N) whatever the model says
    low_battery: bool = False  # the low-power warning follows the first write on each link

    def __post_init__(self) -> None:
        # Checked here, so a bad switch fails where it is set, not mid-session in the server.
        for name in ("drop_every", "truncate_every"):
            _check_count(name, getattr(self, name))
        after = self.disconnect_after_s
        if after is not None and not (math.isfinite(after) and after > 0):
            raise ValueError(f"disconnect_after_s must be a finite number > 0 s, not {after!r}")
        stuck = self.stuck_value_n
        if stuck is not None and not math.isfinite(stuck):
            raise ValueError(f"stuck_value_n must be a finite force in N, not {stuck!r}")
        if not isinstance(self.low_battery, bool):
            raise ValueError(f"low_battery must be True or False, not {self.low_battery!r}")


def _check_count(name: str, every: int | None) -> None:
    if every is None:
        return
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"{name} must be a whole number >= 1, not {every!r}")


@dataclass
class ProgressorState:
    """What a test may inspect; the device updates it as it runs."""

    connected_at: float | None = None  # clock() when the current link came up
    started_at: float | None = None  # clock() at the host's first write: the model's zero
    measuring: bool = False
    asleep: bool = False
    tare_offset_kg: float = 0.0
    samples_made: int = 0  # samples taken while measuring (those in lost notifications too)
    notifications_made: int = 0  # every notification produced, faulty ones included
    notifications_dropped: int = 0
    notifications_truncated: int = 0
    low_power_warnings: int = 0
    commands: list[Opcode | bytes] = field(default_factory=list)  # unknown ones as raw bytes


class ProgressorDevice:
    """The device state machine; serve it with ``simulators.ble_backend``."""

    def __init__(
        self,
        model: ForceModel,
        *,
        clock: Callable[[], float],
        faults: ProgressorFaults | None = None,
        seed: int = 0,
        firmware: str = "1.2.3",
        battery_mv: int = 3900,
        rate_hz: float = 80.0,
        att_payload: int = 20,
        progressor_id: int = 0x5EED_0001,
        boot_us: int = 0,
        epoch: float | None = None,
    ) -> None:
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be a finite number > 0, not {rate_hz!r}")
        if max_samples(att_payload) < 1:
            raise ValueError(f"att_payload={att_payload}: no weight sample fits a notification")
        if not 0 <= battery_mv < 1 << 32:
            raise ValueError(f"battery_mv must be a uint32, not {battery_mv!r}")
        if not 0 <= progressor_id < 1 << 64:
            raise ValueError(f"progressor_id must be a u64, not {progressor_id!r}")
        if not 0 <= boot_us < US_WRAP:
            raise ValueError(f"boot_us must be a uint32, not {boot_us!r}")
        self._model = model
        self._clock = clock
        self._faults = faults or ProgressorFaults()
        self.seed = seed  # the model carries its own seed; kept for labels and records
        self._firmware = firmware
        self._battery_mv = battery_mv
        self._rate_hz = rate_hz
        self._att_payload = att_payload
        self._progressor_id = progressor_id
        self._boot_us = boot_us
        self._epoch = epoch  # the clock value the model counts from; None: the first write
        self._created_at = clock()
        self._decoder = CommandDecoder()
        self._outbox: list[bytes] = []  # notifications made, not yet handed to the server
        self._batch: list[WeightSample] = []
        self._measure_start = 0.0
        self._next_index = 0  # the next sample's index since START_WEIGHT_MEAS
        self._warned_on_link = False
        self.state = ProgressorState()

    @property
    def faults(self) -> ProgressorFaults:
        return self._faults

    @property
    def rate_hz(self) -> float:
        return self._rate_hz

    @property
    def batch_size(self) -> int:
        """Samples per weight notification."""
        return max_samples(self._att_payload)

    # ------------------------------------------------------------------ link

    def connect(self) -> None:
        """A central connected: a fresh link, nothing streaming yet."""
        self._reset_link()
        self.state.asleep = False
        self.state.connected_at = self._clock()

    def disconnect(self) -> None:
        """The link is gone (either side): the device stops streaming and forgets the queue."""
        self._reset_link()
        self.state.connected_at = None

    def _reset_link(self) -> None:
        self.state.measuring = False
        self._outbox.clear()
        self._batch.clear()
        self._warned_on_link = False

    def should_disconnect(self, now: float) -> bool:
        """True once the device drops the link: asleep, or the disconnect fault's time came."""
        deadline = self.disconnect_at()
        return self.state.asleep or (deadline is not None and now >= deadline)

    def disconnect_at(self) -> float | None:
        after = self._faults.disconnect_after_s
        connected = self.state.connected_at
        return None if after is None or connected is None else connected + after

    # ------------------------------------------------------------------ host → device

    def write(self, data: bytes) -> None:
        """One control-point write from the host."""
        now = self._clock()
        if self.state.started_at is None:
            self.state.started_at = now
        for command in self._decoder.feed(data):
            self._handle(command, now)
        if self._faults.low_battery and not self._warned_on_link:
            # When the real device sends it is not documented; once per link, after the
            # answer to the host's first command, lets a host see it early and predictably.
            self._warned_on_link = True
            self._outbox.append(encode_low_power())

    def _handle(self, command: Command | UnknownCommand, now: float) -> None:
        if isinstance(command, UnknownCommand):
            self.state.commands.append(command.data)
            return
        self.state.commands.append(command.opcode)
        self._collect(now)  # what was due before this command goes out before its effect
        opcode = command.opcode
        if opcode is Opcode.TARE_SCALE:
            self.state.tare_offset_kg = self._raw_kg(now)
        elif opcode is Opcode.START_WEIGHT_MEAS:
            self._start_measuring(now)
        elif opcode is Opcode.STOP_WEIGHT_MEAS:
            self._stop_measuring()
        elif opcode is Opcode.ENTER_SLEEP:
            self._stop_measuring()
            self.state.asleep = True
        else:
            self._respond(opcode)

    def _start_measuring(self, now: float) -> None:
        if self.state.measuring:
            return  # already streaming: the sample clock keeps its phase
        self.state.measuring = True
        self._measure_start = now
        self._next_index = 0

    def _stop_measuring(self) -> None:
        self._flush_batch()
        self.state.measuring = False

    def _respond(self, opcode: Opcode) -> None:
        payload: bytes | None = None
        if opcode is Opcode.GET_APP_VERSION:
            payload = self._firmware.encode("utf-8")
        elif opcode is Opcode.GET_BATTERY_VOLTAGE:
            payload = self._battery_mv.to_bytes(4, "little")
        elif opcode is Opcode.GET_PROGRESSOR_ID:
            payload = self._progressor_id.to_bytes(8, "little").rstrip(b"\x00")
        elif opcode is Opcode.GET_ERROR_INFORMATION:
            payload = b""
        if payload is None:
            return  # no documented response
        self._outbox.append(encode_response(payload))

    # ------------------------------------------------------------------ device → host

    def notifications(self, now: float) -> list[bytes]:
        """Every notification due up to ``now``, in order, with the fault switches applied."""
        self._collect(now)
        made, self._outbox = self._outbox, []
        return [sent for data in made if (sent := self._on_air(data)) is not None]

    def next_deadline(self) -> float | None:
        """When :meth:`notifications` next has something to give (or the link drops)."""
        times: list[float] = []
        if self._outbox:
            times.append(self._clock())
        if self.state.measuring:
            missing = self.batch_size - len(self._batch)
            times.append(self._sample_time(self._next_index + missing - 1))
        if (drop := self.disconnect_at()) is not None:
            times.append(drop)
        return min(times) if times else None

    def device_us(self, at: float) -> int:
        """The device's uint32 µs counter at clock time ``at``."""
        return (self._boot_us + round((at - self._created_at) * 1e6)) % US_WRAP

    def force_n(self, at: float) -> float:
        """The model's raw force at clock time ``at`` (before tare and faults)."""
        start = self.state.started_at if self._epoch is None else self._epoch
        return self._model.force_at(0.0 if start is None else at - start)

    def _raw_kg(self, at: float) -> float:
        return self.force_n(at) / KGF_N

    def _sample_time(self, index: int) -> float:
        # From the index, not by adding periods, so the rate never drifts.
        return self._measure_start + index / self._rate_hz

    def _collect(self, now: float) -> None:
        """Take the samples due up to ``now`` into batches, full batches into the outbox."""
        while self.state.measuring and self._sample_time(self._next_index) <= now:
            self._batch.append(self._sample(self._sample_time(self._next_index)))
            self._next_index += 1
            self.state.samples_made += 1
            if len(self._batch) >= self.batch_size:
                self._flush_batch()

    def _sample(self, at: float) -> WeightSample:
        stuck = self._faults.stuck_value_n
        # A stuck sensor's output is frozen, so a tare does not move it either.
        kg = stuck / KGF_N if stuck is not None else self._raw_kg(at) - self.state.tare_offset_kg
        return WeightSample(kg, self.device_us(at))

    def _flush_batch(self) -> None:
        if self._batch:
            self._outbox.append(encode_weight(self._batch, self._att_payload))
            self._batch = []

    def _on_air(self, data: bytes) -> bytes | None:
        state = self.state
        state.notifications_made += 1
        if data == encode_low_power():
            state.low_power_warnings += 1
        if _is_every(self._faults.drop_every, state.notifications_made):
            state.notifications_dropped += 1
            return None
        if _is_every(self._faults.truncate_every, state.notifications_made):
            state.notifications_truncated += 1
            return data[: len(data) // 2]
        return data


def _is_every(every: int | None, count: int) -> bool:
    return every is not None and count % every == 0
