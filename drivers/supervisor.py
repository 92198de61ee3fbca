"""The reconnection supervisor: one force sensor whose link may drop and come back mid-session.

:class:`SupervisedSensor` wraps a *factory* of drivers. A driver object is used for one
connection only (``connect()`` is called once per driver), so each reconnection attempt builds a
fresh one, as unplugging a USB gauge and plugging it back gives a fresh device.

What is retried, and why (an error's class says whether waiting can help):

========================  =======  ============================================================
error                     retried  why
========================  =======  ============================================================
DeviceDisconnected        yes      the link dropped: a cable pulled, a peripheral out of range
DeviceTimeout             yes      the device went silent (a hung USB chip, a BLE link dying)
DeviceNotFound            yes      the device is not back yet (the port has not reappeared, the
                                   peripheral does not advertise yet)
DevicePermissionDenied    yes      a replugged port appears before udev has set its permissions
DeviceMisconfigured       no       the device answers wrongly: waiting will not fix a setting
DeviceFault               no       the device reports an error of its own: a person must look
UnsupportedCommand        no       a driver bug or the wrong model: retrying repeats it
anything else             no       a bug: raised at once, never hidden behind retries
========================  =======  ============================================================

Timeouts are never nested (DESIGN.md, "Session runner, supervisor and safety"): each attempt is
bounded by the driver's own timeouts (the serial transport's open, the gauge's no-reply limit,
the BLE scan and connect timeouts) and is never cut short by another timeout wrapped around it.
So ``give_up_after_s`` is checked *between* attempts: the last attempt starts at the latest at
the deadline, and giving up may come up to one attempt's own timeout after it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from drivers.errors import (
    DeviceDisconnected,
    DeviceError,
    DeviceMisconfigured,
    DeviceNotFound,
    DevicePermissionDenied,
    DeviceTimeout,
)
from drivers.force import DeviceInfo, ForceSample, ForceSensor, LinkListener, LinkStats
from drivers.sample_stream import close_stream

__all__ = [
    "DEFAULT_GIVE_UP_S",
    "RETRYABLE",
    "STEADY_S",
    "Backoff",
    "LinkState",
    "SupervisedSensor",
    "is_retryable",
]

# A replugged gauge or a peripheral back in range returns within seconds; half a minute with no
# data (the hold timer frozen all along) means a person must look, so the session ends then.
DEFAULT_GIVE_UP_S = 30.0

# Errors that waiting can cure; see the module docstring's table for each one's reason.
RETRYABLE: tuple[type[DeviceError], ...] = (
    DeviceDisconnected,
    DeviceTimeout,
    DeviceNotFound,
    DevicePermissionDenied,
)

_GAVE_UP_HINT = (
    "check that the device is switched on and charged, plugged in (USB) or in range "
    "(Bluetooth), then start a new session"
)


def is_retryable(exc: BaseException) -> bool:
    """True for the device errors a reconnection can cure (the table in the module docstring)."""
    return isinstance(exc, RETRYABLE)


class LinkState(StrEnum):
    """A supervised link's state, as told to the listener."""

    CONNECTED = "connected"  # connected (again): samples flow
    RECONNECTING = "reconnecting"  # the link dropped; attempts are under way
    LOST = "lost"  # given up (or a non-retryable error while reconnecting): samples() raises


@dataclass(frozen=True)
class Backoff:
    """Capped, jittered exponential backoff: the wait before reconnection attempt ``n`` (0-based)
    is ``initial_s * factor**n``, capped at ``max_s``, times a random factor in
    ``[1 - jitter, 1 + jitter]``, and never above ``max_s``.

    Defaults: waits of about 0.5, 1, 2, 4, 8, 8, ... s, so 30 s allows six or seven attempts.
    """

    # A USB gauge re-enumerates and a BLE peripheral re-advertises in about half a second to two;
    # an attempt sooner mostly finds nothing, and a BLE scan is not free.
    initial_s: float = 0.5
    # Doubling: quick tries for a blip, then quickly fewer for a longer outage.
    factor: float = 2.0
    # A device back in place is noticed within 8 s, short against a 30-90 s hold, while a device
    # that stays away costs one attempt per 8 s at most.
    max_s: float = 8.0
    # +-25 %: several sensors dropped at once (a USB hub reset, a power blip) do not retry in
    # lockstep against one adapter, and each wait stays within a predictable range.
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if not (math.isfinite(self.initial_s) and self.initial_s > 0):
            raise ValueError(f"initial_s must be a finite number > 0, not {self.initial_s!r}")
        if not (math.isfinite(self.factor) and self.factor >= 1):
            raise ValueError(f"factor must be a finite number >= 1, not {self.factor!r}")
        if not (math.isfinite(self.max_s) and self.max_s >= self.initial_s):
            raise ValueError(f"max_s must be finite and >= initial_s, not {self.max_s!r}")
        if not (0 <= self.jitter < 1):
            raise ValueError(f"jitter must be in [0, 1), not {self.jitter!r}")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempt`` (0 for the first after the loss)."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, not {attempt!r}")
        try:
            base = min(self.max_s, self.initial_s * self.factor**attempt)
        except OverflowError:  # attempt in the thousands: long past the cap
            base = self.max_s
        return min(self.max_s, base * (1 + self.jitter * rng.uniform(-1.0, 1.0)))


def _sum_stats(stats: list[LinkStats]) -> LinkStats:
    names = [f.name for f in dataclasses.fields(LinkStats)]
    return LinkStats(**{n: sum(getattr(s, n) for s in stats) for n in names})


# A new link must carry samples this long before it counts as restored: a device that drops
# again at once is one outage, not a string of short ones. Half a second is 25 Mark-10 polls or
# 40 Progressor samples, and costs at most that much hold time (samples while the link is not
# restored are not counted).
STEADY_S = 0.5


@dataclass
class _Outage:
    lost_at: float
    attempts: int = 0
    steady_since: float | None = None  # the new link's first sample time


class SupervisedSensor(ForceSensor):
    """A force sensor that reconnects by itself when its link drops mid-session.

    :meth:`connect` connects the first driver from ``factory``; its errors go straight to the
    caller (nothing has started yet, so there is nothing to keep alive: a wrong address must fail
    at once). :meth:`samples` yields the current driver's samples. When they end with a retryable
    error (module docstring), the dead driver is closed, the listener is told
    ``RECONNECTING`` with the reason, and fresh drivers are connected with :class:`Backoff`
    waits until one connects (listener: ``CONNECTED``, "restored ...", and samples continue) or
    ``give_up_after_s`` has passed since the loss (listener: ``LOST``; :meth:`samples` raises
    :class:`~drivers.errors.DeviceDisconnected`). Samples read before the loss are never given
    again; the new driver's come from its own connection on. A non-retryable error is raised at
    once (after ``LOST`` if it came while reconnecting).

    :meth:`tare` goes to the current driver; while reconnecting it raises DeviceDisconnected.
    :meth:`close` closes the current driver and ends any reconnection (:meth:`samples` then
    ends); idempotent, never raises. :attr:`info` is the connected driver's (the first one's
    until a reconnection). :attr:`stats` sums every driver's counters; :attr:`reconnects` counts
    the reconnections that succeeded.

    ``clock`` measures the give-up time and ``sleep`` waits between attempts: inject both (and a
    seeded ``rng`` for the jitter) to run it in virtual time.
    """

    def __init__(
        self,
        factory: Callable[[], ForceSensor],
        *,
        label: str,
        give_up_after_s: float = DEFAULT_GIVE_UP_S,
        backoff: Backoff = Backoff(),  # frozen: one shared default is safe
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        steady_s: float = STEADY_S,
    ) -> None:
        if not (math.isfinite(steady_s) and steady_s >= 0):
            raise ValueError(f"steady_s must be a finite number >= 0, not {steady_s!r}")
        if not (math.isfinite(give_up_after_s) and give_up_after_s > 0):
            raise ValueError(
                f"give_up_after_s must be a finite number > 0, not {give_up_after_s!r}"
            )
        self._factory = factory
        self._label = label
        self._steady_s = steady_s
        self._outage: _Outage | None = None  # from a loss until the link is steady again
        self._identity = ""  # the first device's: a reconnection must find the same one
        self._give_up_s = give_up_after_s
        self._backoff = backoff
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # unseeded: jitter must differ between processes
        self._driver: ForceSensor | None = None  # the connected one, or the one being tried
        self._info: DeviceInfo | None = None
        self._state = LinkState.CONNECTED
        self._listener: LinkListener | None = None
        self._retired: list[LinkStats] = []  # counters of the drivers already closed
        self._reconnects = 0
        self._connecting: asyncio.Future[DeviceInfo] | None = None  # a connect() in flight
        self._closed = False
        self._closing = asyncio.Event()

    # ------------------------------------------------------------------ public

    @property
    def info(self) -> DeviceInfo | None:
        return self._info

    @property
    def stats(self) -> LinkStats:
        current = self._driver.stats if self._driver is not None else None
        return _sum_stats([*self._retired, *([current] if current is not None else [])])

    @property
    def reconnects(self) -> int:
        """Reconnections that succeeded since :meth:`connect`."""
        return self._reconnects

    @property
    def state(self) -> LinkState:
        return self._state

    def watch_link(self, listener: LinkListener) -> None:
        """Tell ``listener`` every change of :class:`LinkState` (one listener; a later call
        replaces it). It is called from :meth:`samples`' task, and must not block."""
        self._listener = listener

    async def connect(self) -> DeviceInfo:
        if self._driver is not None or self._closed:
            raise RuntimeError(f"{self._label}: connect() is called once")
        self._info = await self._attempt()
        self._identity = self._info.identity
        return self._info

    async def samples(self) -> AsyncIterator[ForceSample]:
        if self._info is None and not self._closed:
            raise RuntimeError(f"{self._label}: call connect() before samples()")
        while not self._closed and self._driver is not None:
            stream = self._driver.samples()
            try:
                async for sample in stream:
                    if self._outage is not None:
                        self._settle(self._outage, sample.t)
                    yield sample
                return  # the driver's stream ended: it was closed
            except DeviceError as exc:
                if self._closed:
                    return  # closed by its owner: a failure after that is nobody's concern
                if not is_retryable(exc):
                    raise
                cause = exc
            finally:
                await close_stream(stream)  # when the consumer stops early, now rather than by GC
            if not await self._reconnect(cause):
                return  # closed while reconnecting

    async def tare(self) -> None:
        driver = self._driver
        if self._state is not LinkState.CONNECTED or driver is None or self._closed:
            raise DeviceDisconnected(self._label, f"cannot tare: the link is {self._state.value}")
        await driver.tare()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing.set()  # ends a backoff wait
        connecting = self._connecting
        if connecting is not None:  # an attempt in flight: cancelling is how it is aborted
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
        driver, self._driver = self._driver, None
        if driver is not None:
            await self._retire(driver)

    # ------------------------------------------------------------------ reconnecting

    async def _reconnect(self, cause: DeviceError) -> bool:
        """Connect a fresh driver; False if closed meanwhile. Raises when giving up.

        One outage lasts from the loss until the new link has carried samples for ``steady_s``:
        a device that connects and drops again at once stays in the same outage (the same
        give-up clock, the backoff going on), so a flapping link cannot keep a session alive."""
        outage = self._outage
        if outage is None:
            outage = self._outage = _Outage(self._clock())
            self._tell(LinkState.RECONNECTING, cause.message)
        outage.steady_since = None
        dead, self._driver = self._driver, None
        if dead is not None:
            await self._retire(dead)
        last: DeviceError = cause
        while outage.attempts < _MAX_ATTEMPTS:
            if outage.attempts and self._clock() - outage.lost_at >= self._give_up_s:
                break
            attempt = outage.attempts
            outage.attempts += 1
            left = outage.lost_at + self._give_up_s - self._clock()
            await self._pause(min(self._backoff.delay(attempt, self._rng), max(0.0, left)))
            if self._closed:
                return False
            try:
                info = await self._attempt()
            except asyncio.CancelledError:
                if self._closed and not _being_cancelled():
                    return False  # close() aborted the attempt
                raise
            except DeviceError as exc:
                if self._closed:
                    return False
                if not is_retryable(exc):
                    self._tell(LinkState.LOST, exc.message)
                    raise
                last = exc
            except Exception:
                if self._closed:
                    return False
                self._tell(LinkState.LOST, "reconnecting failed unexpectedly")
                raise
            else:
                if self._closed:
                    return False
                await self._check_same_device(info)
                self._info = info
                return True
        raise self._give_up(outage.lost_at, last)

    async def _check_same_device(self, info: DeviceInfo) -> None:
        """A reconnection must reach the device the session began with: another gauge on the
        same port, or another Progressor found first, would carry the first one's calibration
        and records. Not retried: a person must look."""
        if info.identity == self._identity:
            return
        driver, self._driver = self._driver, None
        if driver is not None:
            await self._retire(driver)
        message = (
            f"a different device answered after the link dropped ({info.identity}, "
            f"not {self._identity})"
        )
        self._tell(LinkState.LOST, message)
        raise DeviceMisconfigured(
            self._label, message, hint="reconnect the original device and start a new session"
        )

    def _settle(self, outage: _Outage, t: float) -> None:
        """A sample from the new link: restored once samples have flowed for ``steady_s``."""
        if outage.steady_since is None:
            outage.steady_since = t
        if t - outage.steady_since >= self._steady_s:
            self._restored(outage)

    async def _attempt(self) -> DeviceInfo:
        """Connect a fresh driver, bounded by the driver's own timeouts only. It becomes the
        current driver at once, so that :meth:`close` can abort it."""
        driver = self._driver = self._factory()
        connecting = self._connecting = asyncio.ensure_future(driver.connect())
        try:
            return await connecting
        except BaseException:
            if self._driver is driver:  # else close() took it, and closes it
                self._driver = None
                await self._retire(driver)
            raise
        finally:
            self._connecting = None

    def _restored(self, outage: _Outage) -> None:
        self._outage = None
        self._reconnects += 1
        after = self._clock() - outage.lost_at
        tries = "1 attempt" if outage.attempts == 1 else f"{outage.attempts} attempts"
        self._tell(LinkState.CONNECTED, f"restored after {after:.1f} s ({tries})")

    def _give_up(self, lost_at: float, last: DeviceError) -> DeviceDisconnected:
        after = self._clock() - lost_at
        message = f"gave up reconnecting after {after:.1f} s: {last.message}"
        self._tell(LinkState.LOST, message)
        error = DeviceDisconnected(self._label, message, hint=last.hint or _GAVE_UP_HINT)
        error.__cause__ = last
        return error

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` with the injected sleep, cut short by :meth:`close`."""
        if seconds <= 0:
            return
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({sleeper, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            closing.cancel()
            await asyncio.gather(sleeper, closing, return_exceptions=True)

    async def _retire(self, driver: ForceSensor) -> None:
        """Close ``driver`` (never raises) and keep its counters. The caller has detached it
        from ``_driver`` first, so that each driver is retired once."""
        await driver.close()
        if driver.stats is not None:
            self._retired.append(driver.stats)

    def _tell(self, state: LinkState, message: str) -> None:
        self._state = state
        if self._listener is not None:
            self._listener(state, message)


def _being_cancelled() -> bool:
    """True when the running task itself was cancelled (not just a future it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


# A bound for the attempt loop (the give-up time ends it long before): 30 s at the shortest
# possible wait, 0.5 s * (1 - 0.25), is 80 attempts; 10 000 covers any sane give_up_after_s.
_MAX_ATTEMPTS = 10_000
