"""The Tindeq Progressor driver (and clones that advertise as ``Progressor``), over BLE."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

from drivers.capture import CaptureLog
from drivers.errors import DeviceDisconnected, DeviceError
from drivers.force import DeviceInfo, ForceSample, ForceSensor, LinkStats
from drivers.progressor_clock import DeviceClock, JumpFilter
from drivers.sample_stream import SampleStream
from drivers.transport.ble import CONNECT_TIMEOUT_S, SCAN_TIMEOUT_S, BleLink
from protocols.progressor import (
    ADVERTISED_NAME_PREFIX,
    CONTROL_POINT_UUID,
    DATA_POINT_UUID,
    CommandResponse,
    LowPowerWarning,
    NotificationDecoder,
    Opcode,
    WeightSamples,
    encode_command,
)

__all__ = ["MODEL_NAME", "Progressor"]

MODEL_NAME = "Tindeq Progressor"
# 50 N between two samples 12.5 ms apart (80 Hz) is 4000 N/s, twice MAX_RATE_N_PER_S: well
# beyond what a person does with a tool, well above tremor and noise (under 1 N).
DEFAULT_MAX_JUMP_N = 50.0
# After a tare the reading steps by the whole load at once; samples arriving this soon after
# it re-anchor the jump filter instead of being checked (in-flight batches are a few 10 ms).
_TARE_SETTLE_S = 0.5


class Progressor(ForceSensor):
    """A Tindeq Progressor (or a clone speaking its published API) as a force sensor.

    Conversation (``protocols.progressor``): :meth:`connect` finds the device (by ``address``,
    else the first one advertising a name starting ``name_prefix``), subscribes to the data
    point, asks GET_APP_VERSION and GET_BATTERY_VOLTAGE (each answer awaited for
    ``command_timeout_s``; no answer leaves the field empty and is counted in ``missed``), then
    sends START_WEIGHT_MEAS. :meth:`tare` sends TARE_SCALE (the device tares only while
    streaming, §1.1; it sends no answer). :meth:`close` sends STOP_WEIGHT_MEAS then disconnects,
    each best-effort within ``command_timeout_s``, so the gauge stops streaming (and draining
    its battery) and the link is free for the vendor's app.

    Samples: force in N = kg * 9.80665, sign kept (negative under tension after a tare); times
    on the local monotonic ``clock`` by :class:`~drivers.progressor_clock.DeviceClock` (never
    ahead of arrival, never backwards, no drift, the µs wrap handled). Bad data never reaches
    the consumer: truncated/short/ragged notifications and non-finite weights (dropped by the
    codec), and impossible jumps (:class:`~drivers.progressor_clock.JumpFilter`, ``max_jump_n``).
    A lost link raises :class:`~drivers.errors.DeviceDisconnected` from :meth:`samples`.

    :attr:`stats`: ``requests`` commands written; ``readings`` samples delivered; ``missed``
    commands unanswered plus samples lost on the air (gaps in device time); ``garbage``
    notifications or samples dropped as bad (codec drops, late answers, impossible jumps);
    ``errors`` low-power warnings from the device; ``dropped`` samples a stalled consumer lost.
    :attr:`drop_counts` has the same by reason. A low battery also shows in ``info.battery``.

    ``client_backend``/``scanner_backend`` are bleak backend classes handed to
    :class:`~drivers.transport.ble.BleLink` (tests and ``devicectl sim`` pass the simulator's);
    this module does not import bleak. ``capture`` is handed to the link too: a
    :class:`~drivers.capture.CaptureLog` recording the conversation (``--capture FILE``).

    Verification: written from Tindeq's API page and sample client, tested against this
    project's simulator only; **not checked on hardware**.
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        name_prefix: str = ADVERTISED_NAME_PREFIX,
        clock: Callable[[], float] = time.monotonic,
        label: str = "progressor",
        simulated: bool = False,
        command_timeout_s: float = 2.0,
        max_jump_n: float = DEFAULT_MAX_JUMP_N,
        scan_timeout_s: float = SCAN_TIMEOUT_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        client_backend: type[Any] | None = None,
        scanner_backend: type[Any] | None = None,
        capture: CaptureLog | None = None,
    ) -> None:
        if not command_timeout_s > 0:
            raise ValueError(f"command_timeout_s must be > 0, not {command_timeout_s!r}")
        self._link = BleLink(
            address=address,
            name_prefix=None if address else name_prefix,
            model="Progressor",
            scan_timeout_s=scan_timeout_s,
            connect_timeout_s=connect_timeout_s,
            disconnected_callback=self._on_lost,
            client_backend=client_backend,
            scanner_backend=scanner_backend,
            capture=capture,
        )
        self._clock = clock
        self._label = label
        self._simulated = simulated
        self._timeout_s = command_timeout_s
        self._decoder = NotificationDecoder()
        self._device_clock = DeviceClock()
        self._jumps = JumpFilter(max_jump_n)
        self._rearm_until = -1.0
        self._answers: dict[Opcode, asyncio.Future[CommandResponse]] = {}
        self._samples = SampleStream(on_drop=self._count_overflow)
        self._counts: Counter[str] = Counter()
        self._info: DeviceInfo | None = None
        self._low_battery = False
        self._battery_mv: int | None = None
        self._connected = False
        self._closed = False

    # ------------------------------------------------------------------ public

    @property
    def info(self) -> DeviceInfo | None:
        return self._info

    @property
    def link(self) -> BleLink:
        return self._link

    @property
    def low_battery(self) -> bool:
        """True once the device sent its low-power warning."""
        return self._low_battery

    @property
    def drop_counts(self) -> dict[str, int]:
        """What was dropped or missed, by reason (codec reasons, "impossible jump", "lost on
        air", "no answer", "late answer", "buffer overflow")."""
        counts = Counter({str(reason): n for reason, n in self._decoder.drops.items()})
        counts.update(self._counts)
        counts["impossible jump"] += self._jumps.dropped
        counts["lost on air"] += self._device_clock.lost
        counts["late answer"] += self._decoder.unmatched
        return {reason: n for reason, n in counts.items() if n}

    @property
    def stats(self) -> LinkStats:
        decoder = self._decoder
        return LinkStats(
            requests=self._counts["requests"],
            readings=self._counts["readings"],
            missed=self._counts["no answer"] + self._device_clock.lost,
            garbage=decoder.dropped + decoder.unmatched + self._jumps.dropped,
            errors=self._counts["low-power warnings"],
            dropped=self._counts["buffer overflow"],
        )

    async def connect(self) -> DeviceInfo:
        if self._info is not None or self._closed or self._connected:
            raise RuntimeError(f"{self._label}: connect() is called once per driver")
        await self._link.connect()
        self._connected = True
        try:
            await self._link.subscribe(DATA_POINT_UUID, self._on_notification)
            firmware = await self._ask(Opcode.GET_APP_VERSION)
            battery = await self._ask(Opcode.GET_BATTERY_VOLTAGE)
            self._battery_mv = None if battery is None else battery.battery_mv()
            await self._send(Opcode.START_WEIGHT_MEAS)
        except BaseException:
            await self.close()
            raise
        self._info = DeviceInfo(
            model=MODEL_NAME,
            address=self._link.address or "",
            firmware="" if firmware is None else firmware.text(),
            battery=self._battery_text(),
            simulated=self._simulated,
        )
        return self._info

    async def samples(self) -> AsyncIterator[ForceSample]:
        if self._info is None and not self._closed:
            raise RuntimeError(f"{self._label}: call connect() before samples()")
        async for sample in self._samples:
            yield sample

    async def tare(self) -> None:
        if not self._connected:
            raise DeviceDisconnected(self._label, "not connected")
        await self._send(Opcode.TARE_SCALE)
        # The reading now steps by the whole load: take it as the filter's new anchor.
        self._jumps.rearm()
        self._rearm_until = self._clock() + _TARE_SETTLE_S

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._link.is_connected:
            # Best-effort: a device that does not take it is left to the disconnect.
            with contextlib.suppress(DeviceError, TimeoutError):
                await asyncio.wait_for(self._send(Opcode.STOP_WEIGHT_MEAS), self._timeout_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._link.disconnect(), self._timeout_s)
        self._connected = False
        for waiting in self._answers.values():
            waiting.cancel()
        self._answers.clear()
        self._emit(None)

    # ------------------------------------------------------------------ commands

    async def _send(self, opcode: Opcode) -> None:
        self._counts["requests"] += 1
        await self._link.write(CONTROL_POINT_UUID, encode_command(opcode), response=True)

    async def _ask(self, opcode: Opcode) -> CommandResponse | None:
        """The answer to ``opcode``, or None if none came within the timeout (counted)."""
        waiting = asyncio.get_running_loop().create_future()
        self._answers[opcode] = waiting
        self._decoder.expect(opcode)
        try:
            await self._send(opcode)
            return await asyncio.wait_for(waiting, self._timeout_s)
        except TimeoutError:
            # A late answer must not be matched to the next request.
            self._decoder.pending.clear()
            self._counts["no answer"] += 1
            return None
        finally:
            self._answers.pop(opcode, None)

    def _battery_text(self) -> str:
        mv = self._battery_mv
        text = "" if mv is None else f"{mv / 1000:.2f} V"
        if self._low_battery:
            text = f"{text} (low)".strip()
        return text

    # ------------------------------------------------------------------ notifications

    def _on_notification(self, data: bytes) -> None:
        arrival = self._clock()
        for event in self._decoder.feed(data):
            if isinstance(event, WeightSamples):
                self._take(event, arrival)
            elif isinstance(event, CommandResponse):
                waiting = None if event.opcode is None else self._answers.get(event.opcode)
                if waiting is not None and not waiting.done():
                    waiting.set_result(event)
            elif isinstance(event, LowPowerWarning):
                self._counts["low-power warnings"] += 1
                self._low_battery = True
                if self._info is not None:
                    self._info = dataclasses.replace(self._info, battery=self._battery_text())

    def _take(self, batch: WeightSamples, arrival: float) -> None:
        times = self._device_clock.map_batch([s.device_us for s in batch.samples], arrival)
        for sample, t in zip(batch.samples, times, strict=True):
            force_n = sample.newtons
            if arrival <= self._rearm_until:
                self._jumps.rearm()
            if not self._jumps.accept(t, force_n):
                continue
            self._counts["readings"] += 1
            self._emit(ForceSample(t, force_n))

    def _on_lost(self) -> None:
        self._connected = False
        self._emit(DeviceDisconnected(self._label, "the Bluetooth link was lost"))

    def _emit(self, item: ForceSample | DeviceError | None) -> None:
        self._samples.put(item)

    def _count_overflow(self) -> None:
        self._counts["buffer overflow"] += 1
