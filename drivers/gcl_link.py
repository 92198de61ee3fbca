"""A GCL2 request/reply link: one reader task turns bytes into timed replies; one caller asks.

The caller (the Mark-10 driver's poll task) is the only writer, and keeps one request
outstanding at a time: :meth:`GclLink.exchange` writes a request and waits for the next reply
or a timeout. Replies that arrive after their timeout are kept, not lost: :meth:`GclLink.drain`
hands them over before the next request, with the time they arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from drivers.errors import DeviceDisconnected, DeviceError
from drivers.transport.base import Transport
from protocols.mark10 import Reply, ReplyDecoder, Request, SetUnit, encode_request

__all__ = ["GARBAGE", "Garbage", "GclLink", "Timed"]


class Garbage:
    """A line the decoder skipped (noise, wrong baud); it still ends the wait for a reply."""

    def __repr__(self) -> str:
        return "GARBAGE"


GARBAGE: Final = Garbage()


@dataclass(frozen=True)
class Timed:
    """A reply (or a garbage line) and the local monotonic time its bytes were read."""

    t: float
    reply: Reply | Garbage


class GclLink:
    """Owns the transport's read side; :meth:`exchange` is for the single writer only."""

    def __init__(self, transport: Transport, clock: Callable[[], float]) -> None:
        self._transport = transport
        self._clock = clock
        self._decoder = ReplyDecoder()
        self._replies: asyncio.Queue[Timed | DeviceError] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start reading; the transport must be open."""
        if self._reader is None:
            name = f"gcl-reader {self._transport.name}"
            self._reader = asyncio.create_task(self._read_forever(), name=name)

    async def exchange(self, request: Request | SetUnit, timeout_s: float) -> Timed | None:
        """Send ``request``; its reply, or None if none came within ``timeout_s``."""
        await self.send(request)
        return await self.next_reply(timeout_s)

    async def send(self, request: Request | SetUnit) -> None:
        await self._transport.write(encode_request(request))

    async def next_reply(self, timeout_s: float) -> Timed | None:
        """The next reply within ``timeout_s``, else None. Raises the link's error."""
        try:
            item = await asyncio.wait_for(self._replies.get(), max(timeout_s, 0.0))
        except TimeoutError:
            return None
        if isinstance(item, DeviceError):
            self._replies.put_nowait(item)  # every later call sees the failure too
            raise item
        return item

    def drain(self) -> list[Timed]:
        """Replies that arrived since the last wait (late ones). Raises the link's error."""
        late: list[Timed] = []
        while not self._replies.empty():
            item = self._replies.get_nowait()
            if isinstance(item, DeviceError):
                self._replies.put_nowait(item)
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
            self._replies.put_nowait(exc)
        except Exception as exc:  # a transport that breaks the seam's contract
            failure = DeviceDisconnected(self._transport.name, f"the link failed: {exc!r}")
            failure.__cause__ = exc
            self._replies.put_nowait(failure)

    def _feed(self, data: bytes) -> None:
        t = self._clock()
        garbage_before = self._decoder.garbage
        replies = self._decoder.feed(data)
        for _ in range(self._decoder.garbage - garbage_before):
            # Where a garbage line fell among the replies is lost; before them is close enough.
            self._replies.put_nowait(Timed(t, GARBAGE))
        for reply in replies:
            self._replies.put_nowait(Timed(t, reply))
