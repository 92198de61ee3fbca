"""Tare requests handed from any task to a driver's one link task, sent between polls.

A request stays queued until its command has been written, so a link that fails (or a driver
closed) while the command is being sent still fails the waiting caller: a tare never hangs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from drivers.errors import DeviceError

__all__ = ["TareQueue"]


class TareQueue:
    def __init__(self) -> None:
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def wait_for_tare(self) -> None:
        """Queue a tare and wait until the link task has sent it (or failed)."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append(done)
        await done

    async def send_pending(self, send: Callable[[], Awaitable[None]]) -> None:
        """On the link task: ``send`` once per waiting request, answering each caller. If
        ``send`` raises, the request stays queued for :meth:`fail` to answer."""
        while self._waiting:
            done = self._waiting[0]
            if not done.done():  # else the caller gave up waiting
                await send()
                if not done.done():
                    done.set_result(None)
            self._waiting.popleft()

    def fail(self, exc: DeviceError) -> None:
        """Answer every waiting caller with ``exc`` (the link failed, or the driver closed)."""
        while self._waiting:
            done = self._waiting.popleft()
            if not done.done():
                done.set_exception(exc)
