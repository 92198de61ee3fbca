"""The Mark-10 force gauge driver (Series 4 / Series 5 / TT03, GCL2 over serial or USB-CDC)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from drivers.errors import DeviceDisconnected, DeviceError, DeviceMisconfigured
from drivers.force import DeviceInfo, ForceSample, ForceSensor, LinkStats
from drivers.gcl_link import Garbage, GclLink, Timed
from drivers.gcl_poll import Pacer, PollHealth
from drivers.sample_stream import SampleStream
from drivers.tare_queue import TareQueue
from drivers.transport.base import Transport
from protocols.mark10 import ErrorReply, Mark10Unit, Reading, Request, TextReply

__all__ = ["UNITLESS_HINT", "Mark10"]

# A gauge answers within a few ms; two poll periods leaves room for a busy host, and the floor
# keeps fast rates from timing out on USB latency.
_MIN_REPLY_TIMEOUT_S = 0.05
# Identity is read once, and an old gauge may simply not answer RM/RV/RS: wait a little longer
# than a poll, but not so long that such a gauge takes seconds to connect.
_IDENTITY_TIMEOUT_S = 0.25

UNITLESS_HINT = (
    "enable the unit in the gauge's Serial/USB data-format settings, or give the unit in the "
    "address, e.g. `mark10@serial:///dev/ttyUSB0?unit=lbF`"
)


class Mark10(ForceSensor):
    """A Mark-10 gauge, polled for its current reading.

    Wire protocol used (GCL2; ASCII, commands end in CR, replies end in CR LF):

    ==========  =====================================  ===========================================
    request     reply                                  use
    ==========  =====================================  ===========================================
    ``?C``      ``<value> <unit>``, e.g. ``4.285 N``   the current (real-time) reading, polled
    ``Z``       none expected                          tare: zero the display (between polls)
    ``RM``      model text, e.g. ``M5-100``            identity at connect (``*10`` tolerated)
    ``RV``      firmware text, e.g. ``1.04``           identity at connect (``*10`` tolerated)
    ``RS``      serial number text                     identity at connect (``*10`` tolerated)
    (any)       ``*10`` / ``*11`` / ``*12`` / ``*22``  device errors: counted, see below
    ==========  =====================================  ===========================================

    Units: each reply's own unit is converted to newtons, so a unit changed on the gauge
    mid-stream is followed. A reading without a unit (the unit output is off in the gauge's
    data-format menu) is read in ``default_unit``; without ``default_unit`` it raises
    :class:`~drivers.errors.DeviceMisconfigured` (from :meth:`connect`, or from :meth:`samples`
    if the unit output is switched off later), because guessing newtons for a gauge set to lbF
    would be 4.45x off. The driver never sends unit commands: they would change the gauge's
    display. Compression is positive as the gauge prints it by default; ``invert=True``
    is for a gauge set to the other polarity.

    Verification: written from the Mark-10 Series 4/5 manuals (GCL2) and tested against this
    project's simulator only; **not checked on hardware**. Whether ``Z`` is acknowledged is not
    documented; any line it causes is tolerated.

    Polling: one task owns the link. It sends ``?C`` at ``rate_hz`` on a fixed grid of deadlines,
    with one request outstanding and a reply timeout of two periods (at least 50 ms); a missed
    reply is counted and polling goes on. Tare requests are queued to the same task and sent
    before the next poll. Garbage lines are counted and skipped. No valid reading for
    ``no_reply_limit_s`` raises :class:`~drivers.errors.DeviceTimeout` from :meth:`samples`
    (:class:`~drivers.errors.DeviceFault` if every reply in that time was a device error). A
    sample's time is the local monotonic time its reply was read. :attr:`stats` counts the polls
    (identity requests at connect are not counted). Samples are buffered for one consumer; if it
    stalls, the oldest are dropped and counted.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        rate_hz: float = 50.0,
        invert: bool = False,
        no_reply_limit_s: float = 2.0,
        default_unit: Mark10Unit | None = None,
        clock: Callable[[], float] = time.monotonic,
        label: str = "mark10",
        simulated: bool = False,
    ) -> None:
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
        self._health = PollHealth(label, no_reply_limit_s, clock())
        self._reply_timeout_s = max(2.0 * self._pacer.period_s, _MIN_REPLY_TIMEOUT_S)
        self._link = GclLink(transport, clock)
        # Late-bound: connect() replaces the PollHealth.
        self._samples = SampleStream(on_drop=lambda: self._health.dropped())
        self._tares = TareQueue()
        self._poller: asyncio.Task[None] | None = None
        self._info: DeviceInfo | None = None
        self._failure: DeviceError | None = None
        self._closed = False

    @property
    def info(self) -> DeviceInfo | None:
        return self._info

    @property
    def stats(self) -> LinkStats:
        return self._health.stats

    async def connect(self) -> DeviceInfo:
        if self._info is not None or self._closed:
            raise RuntimeError(f"{self._label}: connect() is called once per driver")
        await self._transport.open()
        self._link = GclLink(self._transport, self._clock)  # fresh after a failed attempt
        try:
            self._link.start()
            self._restart_clocks()
            await self._first_reading()
            self._info = await self._identity()
        except BaseException:
            await self._shut_link()
            raise
        if self._closed:  # closed while connecting: start nothing that nobody would stop
            await self._shut_link()
            raise DeviceDisconnected(self._label, "closed while connecting")
        self._poller = asyncio.create_task(self._poll_forever(), name=f"mark10-poll {self._label}")
        return self._info

    async def samples(self) -> AsyncIterator[ForceSample]:
        if self._info is None and not self._closed:
            raise RuntimeError(f"{self._label}: call connect() before samples()")
        async for sample in self._samples:
            yield sample

    async def tare(self) -> None:
        poller = self._poller
        if poller is None or poller.done():
            raise self._failure or DeviceDisconnected(self._label, "not connected")
        await self._tares.wait_for_tare()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
        await self._shut_link()
        self._tares.fail(DeviceDisconnected(self._label, "closed"))
        self._emit(None)

    # ------------------------------------------------------------------ connect

    def _restart_clocks(self) -> None:
        now = self._clock()
        self._pacer = Pacer(self._rate_hz, now)
        self._health = PollHealth(self._label, self._no_reply_limit_s, now)

    async def _first_reading(self) -> None:
        """Poll until a valid reading, or raise DeviceTimeout after ``no_reply_limit_s``."""
        while self.stats.readings == 0:
            await self._poll_once()
            self._raise_if_stale()
            if self.stats.readings == 0:
                await asyncio.sleep(self._pacer.delay_after(self._clock()))

    async def _identity(self) -> DeviceInfo:
        model = await self._ask_text(Request.MODEL)
        firmware = await self._ask_text(Request.FIRMWARE)
        serial = await self._ask_text(Request.SERIAL)
        return DeviceInfo(
            model=f"Mark-10 {model}".strip(),
            address=self._transport.name,
            serial=serial,
            firmware=firmware,
            simulated=self._simulated,
        )

    async def _ask_text(self, request: Request) -> str:
        """The text reply to an identity request; empty for ``*NN`` or no reply (old gauges)."""
        self._take_late()
        timed = await self._link.exchange(request, max(self._reply_timeout_s, _IDENTITY_TIMEOUT_S))
        reply = None if timed is None else timed.reply
        if isinstance(reply, TextReply):
            return reply.text
        if isinstance(reply, Reading) and reply.unit is None:
            return reply.raw.strip()  # "1.04" parses as a number but was asked for as text
        if timed is not None and not isinstance(reply, ErrorReply):
            self._take(timed)  # a late reading, or garbage: count it as the poller would
        return ""

    # ------------------------------------------------------------------ polling

    async def _poll_forever(self) -> None:
        try:
            while True:
                await self._send_tares()
                await self._poll_once()
                self._raise_if_stale()
                await asyncio.sleep(self._pacer.delay_after(self._clock()))
        except DeviceError as exc:
            self._fail(exc)
        except Exception as exc:
            # A bug here must still end the stream, or a consumer would wait for ever.
            failure = DeviceDisconnected(self._label, f"driver failed: {exc!r}")
            failure.__cause__ = exc
            self._fail(failure)
            raise

    def _fail(self, exc: DeviceError) -> None:
        self._failure = exc
        self._tares.fail(exc)
        self._emit(exc)

    async def _send_tares(self) -> None:
        await self._tares.send_pending(lambda: self._link.request(Request.ZERO))

    async def _poll_once(self) -> None:
        self._take_late()
        self._health.request()
        timed = await self._link.exchange(Request.READ_CURRENT, self._reply_timeout_s)
        if timed is None:
            self._health.missed()
        else:
            self._take(timed)

    def _take_late(self) -> None:
        for timed in self._link.drain():
            self._take(timed)

    def _take(self, timed: Timed) -> None:
        reply = timed.reply
        if isinstance(reply, Reading):
            force_n = self._sign * reply.newtons(self._unit_of(reply))
            self._health.reading(timed.t)
            self._emit(ForceSample(timed.t, force_n))
        elif isinstance(reply, ErrorReply):
            self._health.error(reply)
        elif isinstance(reply, TextReply | Garbage):
            self._health.garbage()  # text where a reading was expected is garbage too

    def _unit_of(self, reading: Reading) -> Mark10Unit:
        """The reading's own unit, else ``default_unit``; raises if there is neither."""
        unit = reading.unit or self._default_unit
        if unit is None:
            message = (
                f"the gauge sends readings without a unit ({reading.raw.strip()!r}), "
                "so their force in newtons is unknown"
            )
            raise DeviceMisconfigured(self._label, message, hint=UNITLESS_HINT)
        return unit

    def _raise_if_stale(self) -> None:
        failure = self._health.failure(self._clock())
        if failure is not None:
            raise failure

    def _emit(self, item: ForceSample | DeviceError | None) -> None:
        self._samples.put(item)

    async def _shut_link(self) -> None:
        await self._link.close()
        await self._transport.close()
