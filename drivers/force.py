"""The force-sensor family facade: what every T-bar sensor driver offers the core."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass


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

    async def __aenter__(self) -> ForceSensor:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
