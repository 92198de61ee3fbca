"""A line-oriented request/reply link: one reader task turns bytes into timed lines.

Shared by every ASCII gauge driver (the Mark-10's GCL2 in :mod:`drivers.gcl_link`, the Imada,
Shimpo and Wagner dialects in :mod:`drivers.line_gauge`). The driver's link task is the only
writer and keeps one request outstanding at a time. Lines that arrive while nobody waits (after
their timeout) are kept, not lost: :meth:`LineLink.drain` hands them over before the next
request, with the time they arrived. A link failure is handed to every later call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from drivers.errors import DeviceDisconnected, DeviceError
from drivers.transport.base import Transport
from protocols.lines import LineDecoder

__all__ = ["GARBAGE", "Garbage", "LineLink", "Timed"]

R = TypeVar("R")


class Garbage:
    """A line the decoder skipped (noise, wrong baud); it still ends the wait for a reply."""

    def __repr__(self) -> str:
        return "GARBAGE"


GARBAGE: Final = Garbage()


@dataclass(frozen=True)
class Timed(Generic[R]):
    """A decoded line (or a garbage line) and the local monotonic time its bytes were read."""

    t: float
    reply: R | Garbage


class LineLink(Generic[R]):
    """Owns the transport's read side: one reader task turns bytes into timed lines.

    The driver's link task is the only writer. Lines that arrive while nobody waits are kept,
    not lost, with the time they arrived; a link failure is handed to every later call.
    """

    def __init__(
        self, transport: Transport, decoder: LineDecoder[R], clock: Callable[[], float]
    ) -> None:
        self._transport = transport
        self._clock = clock
        self._decoder = decoder
        self._lines: asyncio.Queue[Timed[R] | DeviceError] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start reading; the transport must be open."""
        if self._reader is None:
            name = f"line-reader {self._transport.name}"
            self._reader = asyncio.create_task(self._read_forever(), name=name)

    async def send(self, data: bytes) -> None:
        await self._transport.write(data)

    async def next_line(self) -> Timed[R]:
        """The next line, waiting as long as it takes (callers bound it). Raises the link's
        error."""
        item = await self._lines.get()
        if isinstance(item, DeviceError):
            self._lines.put_nowait(item)  # every later call sees the failure too
            raise item
        return item

    def drain(self) -> list[Timed[R]]:
        """Lines that arrived since the last wait. Raises the link's error."""
        late: list[Timed[R]] = []
        while not self._lines.empty():
            item = self._lines.get_nowait()
            if isinstance(item, DeviceError):
                self._lines.put_nowait(item)
                raise item
            late.append(item)
        return late

    async def close(self) -> None:
        """Stop reading. Does not close the transport (its owner does)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _read_forever(self) -> None:
        try:
            while True:
                self._feed(await self._transport.read())
        except DeviceError as exc:
            self._lines.put_nowait(exc)
        except Exception as exc:  # a transport that breaks the seam's contract
            failure = DeviceDisconnected(self._transport.name, f"the link failed: {exc!r}")
            failure.__cause__ = exc
            self._lines.put_nowait(failure)

    def _feed(self, data: bytes) -> None:
        t = self._clock()
        garbage_before = self._decoder.garbage
        lines = self._decoder.feed(data)
        for _ in range(self._decoder.garbage - garbage_before):
            # Where a garbage line fell among the others is lost; before them is close enough.
            self._lines.put_nowait(Timed(t, GARBAGE))
        for line in lines:
            self._lines.put_nowait(Timed(t, line))
