"""The Mark-10's GCL2 request/reply link: a :class:`~drivers.line_link.LineLink` of GCL2
replies, with requests sent as typed GCL2 commands.

The caller (the Mark-10 driver's poll task) is the only writer, and keeps one request
outstanding at a time: :meth:`GclLink.exchange` writes a request and waits for the next reply
or a timeout. Replies that arrive after their timeout are kept, not lost: ``drain`` hands them
over before the next request, with the time they arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from drivers.line_link import GARBAGE, Garbage, LineLink
from drivers.line_link import Timed as _Timed
from drivers.transport.base import Transport
from protocols.mark10 import Reply, ReplyDecoder, Request, SetUnit, encode_request

__all__ = ["GARBAGE", "Garbage", "GclLink", "Timed"]

Timed = _Timed[Reply]


class GclLink(LineLink[Reply]):
    """Owns the transport's read side; :meth:`exchange` is for the single writer only."""

    def __init__(self, transport: Transport, clock: Callable[[], float]) -> None:
        super().__init__(transport, ReplyDecoder(), clock)

    async def exchange(self, request: Request | SetUnit, timeout_s: float) -> Timed | None:
        """Send ``request``; its reply, or None if none came within ``timeout_s``."""
        await self.request(request)
        return await self.next_reply(timeout_s)

    async def request(self, request: Request | SetUnit) -> None:
        await self.send(encode_request(request))

    async def next_reply(self, timeout_s: float) -> Timed | None:
        """The next reply within ``timeout_s``, else None. Raises the link's error."""
        try:
            return await asyncio.wait_for(self.next_line(), max(timeout_s, 0.0))
        except TimeoutError:
            return None
