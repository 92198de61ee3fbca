"""The shared driver for the line-based ASCII gauges: Imada, Shimpo FGV-X and Wagner FDIX.

Each dialect (``drivers/imada.py``, ``drivers/shimpo.py``, ``drivers/wagner.py``) is a small
subclass of :class:`LineGauge` that says which bytes to send and what each decoded line means;
the conversation itself lives here once:

* **Polling** (every dialect, and Wagner's fallback): one task owns the link and sends the
  dialect's read request on a :class:`~drivers.gcl_poll.Pacer` grid at ``rate_hz``, one request
  outstanding, with a reply timeout of two periods (at least 50 ms). An acknowledgement (Shimpo
  echoes every command) does not answer a poll: the wait goes on for the data line.
* **Streaming** (a dialect that gives a :class:`StreamPlan`, i.e. Wagner): connect sends the
  plan's commands and then only listens. If no reading arrives for the fallback time (see
  :data:`STREAM_FALLBACK_S`) the driver sends the plan's stop command and polls instead, for the
  rest of the session: the gauge ignored the start command, or forgot it on a power cycle.
* **Health**: requests, readings, missed replies (in a stream: gaps of two stream periods),
  garbage lines, device reports (errors, overload) and dropped samples are counted into
  :class:`~drivers.force.LinkStats`. No valid reading for ``no_reply_limit_s`` raises
  :class:`~drivers.errors.DeviceTimeout` (with the dialect's baud/cable hint) from
  :meth:`~LineGauge.samples`, or :class:`~drivers.errors.DeviceFault` when every line in that
  time was a device report. A lost link ends :meth:`~LineGauge.samples` with
  :class:`~drivers.errors.DeviceDisconnected`.
* **Tare** is queued to the link task and sent between polls; a dialect without a documented
  zero command raises :class:`~drivers.errors.UnsupportedCommand`.
* **Close** cancels the task, sends the stream's stop command if a stream was begun (so the
  gauge is left quiet), then closes the link.

A sample's time is the local monotonic time its line was read, so streamed records that arrive
in one chunk share a time. Samples are buffered for one consumer; if it stalls, the oldest are
dropped and counted.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import ClassVar, Final, Generic, TypeVar

from drivers.errors import (
    DeviceDisconnected,
    DeviceError,
    DeviceFault,
    DeviceMisconfigured,
    DeviceTimeout,
    UnsupportedCommand,
)
from drivers.force import DeviceInfo, ForceSample, ForceSensor, LinkStats
from drivers.gcl_poll import Pacer, PollHealth
from drivers.line_link import Garbage, LineLink, Timed
from drivers.sample_stream import SampleStream
from drivers.tare_queue import TareQueue
from drivers.transport.base import Transport
from protocols.lines import LineDecoder
from protocols.mark10 import Mark10Unit

__all__ = [
    "ACK",
    "STREAM_FALLBACK_S",
    "Ack",
    "DeviceReport",
    "LineGauge",
    "LineHealth",
    "LineLink",
    "StreamPlan",
    "Timed",
]

R = TypeVar("R")

# As Mark-10's: a gauge answers within a few ms; two poll periods leave room for a busy host,
# and the floor keeps fast rates from timing out on USB latency.
_MIN_REPLY_TIMEOUT_S = 0.05
# How long a begun stream may stay silent before the driver polls instead. The UNC algometer
# software polls after 0.1 s without data (device-protocols.md §2.4); 0.5 s also covers a
# USB-serial adapter's latency and the first record's delay after ``CB`` without a false
# fallback, and is short next to the 2 s default ``no_reply_limit_s``.
STREAM_FALLBACK_S = 0.5
# A slow stream (0.5 samples/s) must get this many of its periods before it counts as silent.
_STREAM_FALLBACK_PERIODS = 3.0
# Closing sends the stop-stream command; a device that stopped reading must not hold up close.
_CLOSE_WRITE_TIMEOUT_S = 0.5


class Ack:
    """A line that acknowledges a command (Shimpo's echo): not an answer to a poll."""

    def __repr__(self) -> str:
        return "ACK"


ACK: Final = Ack()


@dataclass(frozen=True)
class DeviceReport:
    """A line in which the gauge reports a condition instead of a reading (an error symbol, an
    overload). ``code`` is what the gauge sent; ``text`` says it for a user."""

    code: str
    text: str


@dataclass(frozen=True)
class StreamPlan:
    """How a dialect streams: the commands that start it, the rate they set, the stop command."""

    rate_hz: float
    start: tuple[bytes, ...]
    stop: bytes


class LineHealth:
    """:class:`~drivers.gcl_poll.PollHealth`'s counts and judgement, in a dialect's words.

    PollHealth counts device errors only as Mark-10 ``*NN`` replies and its timeout hint names
    the Mark-10's baud rate; this keeps PollHealth for everything else and adds both: device
    reports in the dialect's own terms, and the dialect's baud/cable hint.
    """

    def __init__(self, device: str, limit_s: float, start: float, baud_hint: str) -> None:
        self._poll = PollHealth(device, limit_s, start)
        self._device = device
        self._limit_s = limit_s
        self._baud_hint = baud_hint
        self._reports = 0
        self._last_report: DeviceReport | None = None
        self._only_reports = True  # since the last reading

    @property
    def stats(self) -> LinkStats:
        return replace(self._poll.stats, errors=self._reports)

    def request(self) -> None:
        self._poll.request()

    def reading(self, t: float) -> None:
        self._poll.reading(t)
        self._last_report, self._only_reports = None, True

    def missed(self) -> None:
        self._poll.missed()
        self._only_reports = False

    def garbage(self) -> None:
        self._poll.garbage()
        self._only_reports = False

    def report(self, report: DeviceReport) -> None:
        self._reports += 1
        self._last_report = report

    def dropped(self) -> None:
        self._poll.dropped()

    def failure(self, now: float) -> DeviceError | None:
        """The error to raise if no valid reading came for the limit, else None."""
        failure = self._poll.failure(now)
        if failure is None:
            return None
        report = self._last_report
        if report is not None and self._only_reports:
            message = f"for {self._limit_s:g} s the gauge only reported: {report.text}"
            return DeviceFault(self._device, message, code=report.code)
        return DeviceTimeout(self._device, failure.message, hint=self._baud_hint)


class LineGauge(ForceSensor, Generic[R]):
    """A line-based ASCII gauge; see the module notes for the conversation.

    Subclasses set :attr:`model_name`, :attr:`baud_hint` and :attr:`unit_hint`, and implement
    :meth:`_new_decoder`, :meth:`_poll_request` and :meth:`_meaning`; they override
    :meth:`_tare_request` if the dialect can zero, and :meth:`_stream_plan` if it streams.
    """

    model_name: ClassVar[str]  # DeviceInfo.model: none of these dialects can be asked
    baud_hint: ClassVar[str]  # the DeviceTimeout hint: which baud rates this gauge uses
    unit_hint: ClassVar[str]  # the DeviceMisconfigured hint when a reading's unit is unknown

    def __init__(
        self,
        transport: Transport,
        *,
        rate_hz: float = 50.0,
        invert: bool = False,
        no_reply_limit_s: float = 2.0,
        default_unit: Mark10Unit | None = None,
        clock: Callable[[], float] = time.monotonic,
        label: str | None = None,
        simulated: bool = False,
    ) -> None:
        """As :class:`~drivers.mark10.Mark10`'s; ``label`` defaults to the class name in
        lower case (``imada``)."""
        label = type(self).__name__.lower() if label is None else label
        self._transport = transport
        self._rate_hz = rate_hz
        self._sign = -1.0 if invert else 1.0
        self._default_unit = default_unit
        self._clock = clock
        self._label = label
        self._simulated = simulated
        self._no_reply_limit_s = no_reply_limit_s
        # Both validate their arguments now rather than at connect; connect restarts them.
        self._pacer = Pacer(rate_hz, clock())
        self._health = LineHealth(label, no_reply_limit_s, clock(), self.baud_hint)
        self._reply_timeout_s = max(2.0 * self._pacer.period_s, _MIN_REPLY_TIMEOUT_S)
        self._plan = self._stream_plan(rate_hz)
        self._stream_gap_s = self._reply_timeout_s
        self._fallback_s = STREAM_FALLBACK_S
        if self._plan is not None:
            period_s = 1.0 / self._plan.rate_hz
            self._stream_gap_s = max(2.0 * period_s, _MIN_REPLY_TIMEOUT_S)
            # Half the limit at most, so polling still gets its chance before the timeout.
            slowest_s = max(STREAM_FALLBACK_S, _STREAM_FALLBACK_PERIODS * period_s)
            self._fallback_s = min(slowest_s, no_reply_limit_s / 2)
        self._link = LineLink(transport, self._new_decoder(), clock)
        # Late-bound: connect() replaces the health.
        self._samples = SampleStream(on_drop=lambda: self._health.dropped())
        self._tares = TareQueue()
        self._runner: asyncio.Task[None] | None = None
        self._info: DeviceInfo | None = None
        self._failure: DeviceError | None = None
        self._closed = False
        self._streaming = False  # listening to a stream (not polling)
        self._stream_begun = False  # the start commands went out and no stop since
        self._heard_t = 0.0  # the last reading, or the stream's start

    # ------------------------------------------------------------------ the dialect's hooks

    @abc.abstractmethod
    def _new_decoder(self) -> LineDecoder[R]:
        """The dialect's host-side reply decoder."""

    @abc.abstractmethod
    def _poll_request(self) -> bytes:
        """The bytes that ask for one reading."""

    @abc.abstractmethod
    def _meaning(self, reply: R) -> float | Ack | DeviceReport:
        """What a decoded line means: the force in newtons as the dialect's sign convention
        gives it (compression positive), an acknowledgement, or a device report. Use
        :meth:`_newtons` for the unit."""

    def _tare_request(self) -> bytes | None:
        """The zero command; None when the dialect documents none."""
        return None

    def _stream_plan(self, rate_hz: float) -> StreamPlan | None:
        """How to stream near ``rate_hz``; None for a dialect that is only polled."""
        return None

    def _newtons(self, value: float, unit_n: float | None, raw: str) -> float:
        """``value`` in newtons: ``unit_n`` is the printed unit's size in N, or None when the
        line names no unit the driver can read, and then ``default_unit`` applies."""
        if unit_n is not None:
            return value * unit_n
        if self._default_unit is None:
            message = (
                f"the gauge sends readings without a unit the driver can read ({raw.strip()!r}), "
                "so their force in newtons is unknown"
            )
            raise DeviceMisconfigured(self._label, message, hint=self.unit_hint)
        return value * self._default_unit.newtons

    # ------------------------------------------------------------------ ForceSensor

    @property
    def info(self) -> DeviceInfo | None:
        return self._info

    @property
    def stats(self) -> LinkStats:
        return self._health.stats

    @property
    def streaming(self) -> bool:
        """True while readings come from the device's own stream, False while polling."""
        return self._streaming

    async def connect(self) -> DeviceInfo:
        if self._info is not None or self._closed:
            raise RuntimeError(f"{self._label}: connect() is called once per driver")
        await self._transport.open()
        self._link = LineLink(self._transport, self._new_decoder(), self._clock)
        try:
            self._link.start()
            self._restart_clocks()
            await self._begin_stream()
            while self.stats.readings == 0:
                await self._step()
                if self.stats.readings == 0:
                    await self._pause()
        except BaseException:
            await self._quiet_device()
            await self._shut_link()
            raise
        if self._closed:  # closed while connecting: start nothing that nobody would stop
            await self._shut_link()
            raise DeviceDisconnected(self._label, "closed while connecting")
        self._info = DeviceInfo(
            model=self.model_name, address=self._transport.name, simulated=self._simulated
        )
        name = f"{type(self).__name__.lower()}-link {self._label}"
        self._runner = asyncio.create_task(self._run_forever(), name=name)
        return self._info

    async def samples(self) -> AsyncIterator[ForceSample]:
        if self._info is None and not self._closed:
            raise RuntimeError(f"{self._label}: call connect() before samples()")
        async for sample in self._samples:
            yield sample

    async def tare(self) -> None:
        if self._tare_request() is None:
            message = f"the {self.model_name} protocol documents no zero (tare) command"
            raise UnsupportedCommand(self._label, message, hint="zero the gauge on its keypad")
        runner = self._runner
        if runner is None or runner.done():
            raise self._failure or DeviceDisconnected(self._label, "not connected")
        await self._tares.wait_for_tare()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        await self._quiet_device()
        await self._shut_link()
        self._tares.fail(DeviceDisconnected(self._label, "closed"))
        self._emit(None)

    # ------------------------------------------------------------------ the link task

    def _restart_clocks(self) -> None:
        now = self._clock()
        self._pacer = Pacer(self._rate_hz, now)
        self._health = LineHealth(self._label, self._no_reply_limit_s, now, self.baud_hint)

    async def _run_forever(self) -> None:
        try:
            while True:
                await self._step()
                await self._pause()
        except DeviceError as exc:
            self._fail(exc)
        except Exception as exc:
            # A bug here must still end the stream, or a consumer would wait for ever.
            failure = DeviceDisconnected(self._label, f"driver failed: {exc!r}")
            failure.__cause__ = exc
            self._fail(failure)
            raise

    async def _step(self) -> None:
        """Queued tares, then one poll or one wait on the stream; raises if the link is stale."""
        await self._send_tares()
        if self._streaming:
            await self._listen_once()
        else:
            await self._poll_once()
        self._raise_if_stale()

    async def _pause(self) -> None:
        """Until the next poll slot; a stream paces itself."""
        if not self._streaming:
            await asyncio.sleep(self._pacer.delay_after(self._clock()))

    async def _send_tares(self) -> None:
        request = self._tare_request()
        if request is not None:
            await self._tares.send_pending(lambda: self._link.send(request))

    async def _poll_once(self) -> None:
        self._take_late()
        self._health.request()
        await self._link.send(self._poll_request())
        try:
            async with asyncio.timeout(self._reply_timeout_s):
                while not self._take(await self._link.next_line()):
                    pass  # an acknowledgement: the data line is still to come
        except TimeoutError:
            self._health.missed()

    async def _begin_stream(self) -> None:
        if self._plan is None:
            return
        self._stream_begun = True
        for command in self._plan.start:
            await self._link.send(command)
        self._streaming = True
        self._heard_t = self._clock()

    async def _listen_once(self) -> None:
        try:
            async with asyncio.timeout(self._stream_gap_s):
                self._take(await self._link.next_line())
        except TimeoutError:
            self._health.missed()
        self._take_late()
        if self._clock() - self._heard_t >= self._fallback_s:
            await self._fall_back_to_polling()

    async def _fall_back_to_polling(self) -> None:
        """The stream is silent: stop it on the device (if it runs after all) and poll."""
        self._streaming = False
        if self._plan is not None:
            await self._link.send(self._plan.stop)
        self._stream_begun = False

    def _take_late(self) -> None:
        for timed in self._link.drain():
            self._take(timed)

    def _take(self, timed: Timed[R]) -> bool:
        """Count and emit one line; True unless it only acknowledged a command."""
        reply = timed.reply
        if isinstance(reply, Garbage):
            self._health.garbage()  # it still ends the wait for a reply
            return True
        meaning = self._meaning(reply)
        if isinstance(meaning, Ack):
            return False
        if isinstance(meaning, DeviceReport):
            self._health.report(meaning)
            return True
        self._health.reading(timed.t)
        self._heard_t = max(self._heard_t, timed.t)
        self._emit(ForceSample(timed.t, self._sign * meaning))
        return True

    def _raise_if_stale(self) -> None:
        failure = self._health.failure(self._clock())
        if failure is not None:
            raise failure

    def _fail(self, exc: DeviceError) -> None:
        self._failure = exc
        self._tares.fail(exc)
        self._emit(exc)

    def _emit(self, item: ForceSample | DeviceError | None) -> None:
        self._samples.put(item)

    async def _quiet_device(self) -> None:
        """Send the stream's stop command if a stream was begun; a dead link is ignored."""
        if self._plan is None or not self._stream_begun:
            return
        self._stream_begun = self._streaming = False
        with contextlib.suppress(DeviceError, TimeoutError):
            async with asyncio.timeout(_CLOSE_WRITE_TIMEOUT_S):
                await self._link.send(self._plan.stop)

    async def _shut_link(self) -> None:
        await self._link.close()
        await self._transport.close()
