"""Serve a byte-level device the way the real one is reached: a pty pair or a TCP port.

Both servers are generic over ``ByteDevice`` so every serial-style simulator reuses them. They
use the event loop's reader callbacks and protocols rather than tasks, so there is nothing to
leak: ``stop()`` removes every callback and closes every descriptor.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import os
import tty
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self

__all__ = ["CHECK_INTERVAL_S", "ByteDevice", "PtyServer", "TcpServer"]

# How often a link asks its device for streamed output and whether the disconnect fault has
# fired. The device's clock may be fake, so the server polls rather than computing a deadline on
# the loop's clock; 20 ms batches a 100 Hz stream into pairs of lines, as a USB-serial chip would.
CHECK_INTERVAL_S = 0.02

_READ_SIZE = 4096


class ByteDevice(Protocol):
    """A sans-I/O device: bytes from the host in, reply bytes out."""

    def receive(self, data: bytes) -> bytes: ...

    def should_disconnect(self) -> bool: ...

    def due(self) -> bytes:
        """Bytes the device sends on its own by now (streamed output), or ``b""``."""
        ...


class _Link:
    """One device on one connection: feeds it, writes its replies, ends the link on its fault."""

    def __init__(
        self,
        device: ByteDevice,
        write: Callable[[bytes], None],
        close: Callable[[], None],
        check_interval_s: float,
    ) -> None:
        self.device = device
        self._write = write
        self._close = close
        self._interval = check_interval_s
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False
        self._schedule()

    def on_data(self, data: bytes) -> None:
        if self.closed:
            return
        reply = self.device.receive(data)
        if reply:
            self._write(reply)
        self._check()

    def close(self) -> None:
        """End the link once; safe to call again."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.closed:
            self.closed = True
            self._close()

    def _schedule(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self._interval, self._tick)

    def _tick(self) -> None:
        if not self.closed:
            streamed = self.device.due()
            if streamed:
                self._write(streamed)
        self._check()
        if not self.closed:
            self._schedule()

    def _check(self) -> None:
        if not self.closed and self.device.should_disconnect():
            self.close()


class _ServerBase:
    async def stop(self) -> None:
        raise NotImplementedError

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class PtyServer(_ServerBase):
    """A device on a pseudo-terminal: any serial program can open ``path`` (``/dev/pts/N``).

    The server keeps the slave open too, so a client may close and reopen the port without the
    master seeing EIO. The disconnect fault closes both ends, as unplugging a USB gauge does.

    Replugging, as a real USB gauge comes back under the same ``/dev/serial/by-id/...`` name:
    with ``link_path`` the server keeps a symlink there to the current ``/dev/pts/N``; with
    ``replug_after_s``, after the device's disconnect fault a fresh device from the factory
    appears on a new pty pair that long later. Meanwhile the symlink is gone (as udev removes
    it on unplugging), so opening it fails with "not found"; it is then created again, pointing
    at the new pty (made under a temporary name and renamed over, so a reader never sees a
    half-made link). ``stop()`` ends everything: the pending replug, the pty, the symlink.
    """

    def __init__(
        self,
        device_factory: Callable[[], ByteDevice],
        *,
        check_interval_s: float = CHECK_INTERVAL_S,
        link_path: str | None = None,
        replug_after_s: float | None = None,
    ) -> None:
        if replug_after_s is not None and not (
            math.isfinite(replug_after_s) and replug_after_s >= 0
        ):
            raise ValueError(f"replug_after_s must be a finite number >= 0, not {replug_after_s!r}")
        self._factory = device_factory
        self._interval = check_interval_s
        self._link_path = link_path
        self._replug_after_s = replug_after_s
        self._replug: asyncio.TimerHandle | None = None
        self._stopped = False
        self._master: int | None = None
        self._slave: int | None = None
        self._path: str | None = None
        self._link: _Link | None = None
        self._pending = bytearray()
        self._plug_waiters: list[asyncio.Future[str]] = []
        self.plugs = 0  # pty pairs served so far: 1 after start(), one more per replug

    @property
    def path(self) -> str:
        """The current ``/dev/pts/N`` (the last one while unplugged)."""
        if self._path is None:
            raise RuntimeError("the pty server has not been started")
        return self._path

    @property
    def link_path(self) -> str | None:
        return self._link_path

    @property
    def device(self) -> ByteDevice:
        """The served device (the latest one), for inspecting its state in tests."""
        if self._link is None:
            raise RuntimeError("the pty server has not been started")
        return self._link.device

    @property
    def closed(self) -> bool:
        """True once stopped, and while unplugged by the device's fault."""
        return self._master is None

    async def start(self) -> str:
        if self._path is not None:
            raise RuntimeError("a PtyServer starts once")
        if self._link_path is not None:
            _refuse_non_symlink(self._link_path)
        return self._plug()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def next_plug(self) -> str:
        """Wait for the next replug; its ``/dev/pts/N``. For tests (await with a timeout)."""
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._plug_waiters.append(waiter)
        return await waiter

    async def stop(self) -> None:
        if self._path is None:
            return  # never started: nothing to stop (and it may still start)
        self._stopped = True
        if self._replug is not None:
            self._replug.cancel()
            self._replug = None
        if self._link is not None:
            self._link.close()
        self._remove_symlink()

    def _plug(self) -> str:
        """A new pty pair with a fresh device on it (and the symlink pointed at it)."""
        master, slave = os.openpty()
        # Raw: no echo, no line editing, no CR/LF translation; the bytes are the protocol.
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._path = os.ttyname(slave)
        asyncio.get_running_loop().add_reader(master, self._on_readable)
        self._link = _Link(self._factory(), self._write, self._unplugged, self._interval)
        self.plugs += 1
        if self._link_path is not None:
            temporary = f"{self._link_path}.{os.getpid()}.tmp"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            os.symlink(self._path, temporary)
            os.replace(temporary, self._link_path)
        waiters, self._plug_waiters = self._plug_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(self._path)
        return self._path

    def _unplugged(self) -> None:
        """The link ended (the device's fault, or stop()): close the pty; maybe come back."""
        self._close_fds()
        if self._stopped:
            return
        self._remove_symlink()
        if self._replug_after_s is not None:
            loop = asyncio.get_running_loop()
            self._replug = loop.call_later(self._replug_after_s, self._replugged)

    def _replugged(self) -> None:
        self._replug = None
        if not self._stopped:
            self._plug()

    def _remove_symlink(self) -> None:
        if self._link_path is not None and os.path.islink(self._link_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._link_path)

    def _on_readable(self) -> None:
        if self._master is None or self._link is None:
            return  # a callback already queued when the fds were closed
        try:
            data = os.read(self._master, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:
                return  # no slave open at this instant: nothing to read, not an error
            raise
        if data:
            self._link.on_data(data)

    def _write(self, data: bytes) -> None:
        self._pending += data
        self._flush()

    def _flush(self) -> None:
        if self._master is None:
            return
        try:
            written = os.write(self._master, self._pending)
        except BlockingIOError:
            written = 0
        del self._pending[:written]
        loop = asyncio.get_running_loop()
        if self._pending:
            # The client is not reading: wait for room rather than drop or block the loop.
            loop.add_writer(self._master, self._flush)
        else:
            loop.remove_writer(self._master)

    def _close_fds(self) -> None:
        master, slave = self._master, self._slave
        self._master = self._slave = None
        self._pending.clear()
        if master is not None:
            loop = asyncio.get_running_loop()
            loop.remove_reader(master)
            loop.remove_writer(master)
            os.close(master)
        if slave is not None:
            os.close(slave)


class _TcpConnection(asyncio.Protocol):
    def __init__(
        self,
        device_factory: Callable[[], ByteDevice],
        check_interval_s: float,
        live: set[_TcpConnection],
    ) -> None:
        self._factory = device_factory
        self._interval = check_interval_s
        self._live = live  # the server's set of open connections, to close them on stop
        self._link: _Link | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def device(self) -> ByteDevice | None:
        return None if self._link is None else self._link.device

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._live.add(self)
        self._link = _Link(self._factory(), transport.write, transport.close, self._interval)

    def data_received(self, data: bytes) -> None:
        if self._link is not None:
            self._link.on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._link is not None:
            self._link.close()  # stops the timer; closing a closed transport is a no-op
        self._live.discard(self)
        if not self.lost.done():
            self.lost.set_result(None)

    def close(self) -> None:
        if self._link is not None:
            self._link.close()


class TcpServer(_ServerBase):
    """A device on a TCP port (``socket://host:port``); each connection gets a fresh device."""

    def __init__(
        self,
        device_factory: Callable[[], ByteDevice],
        *,
        check_interval_s: float = CHECK_INTERVAL_S,
    ) -> None:
        self._factory = device_factory
        self._interval = check_interval_s
        self._server: asyncio.Server | None = None
        self._address: tuple[str, int] | None = None
        self._connections: set[_TcpConnection] = set()
        self._all: list[_TcpConnection] = []

    @property
    def address(self) -> tuple[str, int]:
        if self._address is None:
            raise RuntimeError("the TCP server has not been started")
        return self._address

    @property
    def devices(self) -> list[ByteDevice]:
        """Every device created so far, oldest first, for inspecting state in tests."""
        return [c.device for c in self._all if c.device is not None]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        if self._server is not None:
            raise RuntimeError("a TcpServer starts once")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._new_connection, host, port)
        bound = self._server.sockets[0].getsockname()
        self._address = (str(bound[0]), int(bound[1]))
        return self._address

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        connections = list(self._connections)
        for connection in connections:
            connection.close()
        await asyncio.gather(*(c.lost for c in connections))
        await server.wait_closed()

    def _new_connection(self) -> _TcpConnection:
        connection = _TcpConnection(self._factory, self._interval, self._connections)
        self._all.append(connection)
        return connection


def _refuse_non_symlink(path: str) -> None:
    """The server replaces and removes a symlink at ``path``; never a user's file."""
    if os.path.lexists(path) and not os.path.islink(path):
        raise FileExistsError(f"{path} exists and is not a symlink: not replacing it")
