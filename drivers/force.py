"""The force-sensor family facade: what every T-bar sensor driver offers the core."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Self


@dataclass(frozen=True)
class ForceSample:
    """One reading: local monotonic time in seconds, force in newtons (compression positive)."""

    t: float
    force_n: float


@dataclass(frozen=True)
class DeviceInfo:
    """Identity as read from the device. ``simulated`` is always shown to the user."""

    model: str
    address: str
    serial: str = ""
    firmware: str = ""
    battery: str = ""
    simulated: bool = False

    @property
    def identity(self) -> str:
        """Which device this is: ``"<model>#<serial>"`` when it reports a serial number, else
        ``"<model>@<address>"``. The serial number follows the gauge to any port; a BLE address
        is stable; a serial port path is the weakest identity (another gauge plugged into the
        same port has the same one)."""
        return f"{self.model}#{self.serial}" if self.serial else f"{self.model}@{self.address}"


@dataclass(frozen=True)
class LinkStats:
    """Counters a driver keeps about its link, for the runner and ``devicectl diagnose``.

    ``requests`` sent; ``readings`` received; ``missed`` requests that got no reply in time;
    ``garbage`` lines that were not what was asked for; ``errors`` the device reported;
    ``dropped`` samples discarded because nobody consumed them.
    """

    requests: int = 0
    readings: int = 0
    missed: int = 0
    garbage: int = 0
    errors: int = 0
    dropped: int = 0


LinkListener = Callable[[str, str], None]
"""Told ``(state, message)`` when a sensor's link changes: ``state`` is a
:class:`drivers.supervisor.LinkState` value ("connected", "reconnecting", "lost"), ``message`` says
why in words for a person."""


class ForceSensor(abc.ABC):
    """A force sensor. Use as ``async with sensor:``; iterate :meth:`samples` for readings.

    Closing leaves the device quiet (streaming stopped) before the link is closed.
    """

    @abc.abstractmethod
    async def connect(self) -> DeviceInfo:
        """Open the link, check the device answers, and read its identity."""

    @abc.abstractmethod
    def samples(self) -> AsyncIterator[ForceSample]:
        """Readings as they arrive. Raises a DeviceError when the link fails."""

    @abc.abstractmethod
    async def tare(self) -> None:
        """Zero the reading at the current load."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop streaming and close the link. Idempotent; never raises."""

    @property
    @abc.abstractmethod
    def info(self) -> DeviceInfo | None:
        """Identity after :meth:`connect`, else None."""

    @property
    def stats(self) -> LinkStats | None:
        """Link counters, for drivers that keep them (None otherwise)."""
        return None

    def watch_link(self, listener: LinkListener) -> None:
        """Have ``listener`` told when the link goes down and comes back.

        A bare driver does not reconnect: its link failing ends :meth:`samples` with the error,
        so there is nothing to tell and this does nothing. A supervisor
        (:class:`drivers.supervisor.SupervisedSensor`) overrides it.
        """
        return None

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
