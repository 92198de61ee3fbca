"""A pty whose master end the test plays by hand: it records what the driver wrote, and
answers each CR-terminated request through a function the test supplies (or never answers).

It uses loop reader callbacks rather than tasks, so it cannot leak a task.
"""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import Callable

Responder = Callable[[bytes], bytes | None]


def silent(_request: bytes) -> bytes | None:
    return None


class PtyPeer:
    """The device side of a pty pair. ``path`` is what a driver opens (``/dev/pts/N``)."""

    def __init__(self, respond: Responder = silent) -> None:
        self.respond = respond
        self.requests: list[bytes] = []  # each request without its CR
        self._buffer = bytearray()
        self._changed = asyncio.Event()
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        # Keeping the slave open means the master never sees EIO between client opens.
        self._master: int | None = master
        self._slave: int | None = slave
        self.path = os.ttyname(slave)
        asyncio.get_running_loop().add_reader(master, self._on_readable)

    async def wait_requests(self, count: int, timeout_s: float = 5.0) -> list[bytes]:
        """The first ``count`` requests, once they have arrived."""
        async with asyncio.timeout(timeout_s):
            while len(self.requests) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.requests[:count]

    def send(self, data: bytes) -> None:
        if self._master is not None and data:
            os.write(self._master, data)

    def close(self) -> None:
        """Close both ends, as unplugging the device does. Safe to call twice."""
        master, slave = self._master, self._slave
        self._master = self._slave = None
        if master is not None:
            asyncio.get_running_loop().remove_reader(master)
            os.close(master)
        if slave is not None:
            os.close(slave)

    def _on_readable(self) -> None:
        if self._master is None:
            return
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, OSError):
            return
        self._buffer += data
        while b"\r" in self._buffer:
            line, _, rest = bytes(self._buffer).partition(b"\r")
            self._buffer[:] = rest
            self.requests.append(line)
            self.send(self.respond(line) or b"")
        self._changed.set()
