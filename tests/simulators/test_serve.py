"""The simulated Mark-10 served as the real one is: over a real pty pair and a real TCP socket."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable

import pytest
import serial_asyncio_fast

from protocols.mark10 import Mark10Unit, Reading, ReplyDecoder
from simulators.force_model import constant
from simulators.mark10 import Mark10Device, Mark10Faults
from simulators.serve import PtyServer, TcpServer

TIMEOUT_S = 5.0  # generous: a loaded CI machine, never a wait for something to happen by itself


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _factory(clock: FakeClock, faults: Mark10Faults | None = None) -> Callable[[], Mark10Device]:
    return lambda: Mark10Device(constant(83.54), clock=clock, faults=faults)


class PtyClient:
    """The host end of a pty, opened like a serial port and read through the event loop."""

    def __init__(self, path: str) -> None:
        self._loop = asyncio.get_running_loop()
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self._buffer = bytearray()
        self._changed = asyncio.Event()
        self.eof = False
        self._loop.add_reader(self.fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: the other end of the pty has gone
        if data:
            self._buffer += data
        else:
            self.eof = True
            self._loop.remove_reader(self.fd)
        self._changed.set()

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    async def read_line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            if self.eof:
                raise EOFError
            await self._next_change()
        end = self._buffer.index(b"\r\n") + 2
        line = bytes(self._buffer[:end])
        del self._buffer[:end]
        return line

    async def wait_eof(self) -> None:
        while not self.eof:
            await self._next_change()

    async def _next_change(self) -> None:
        self._changed.clear()
        await asyncio.wait_for(self._changed.wait(), TIMEOUT_S)

    def close(self) -> None:
        self._loop.remove_reader(self.fd)
        os.close(self.fd)


@pytest.fixture
async def pty_server() -> AsyncIterator[tuple[PtyServer, FakeClock]]:
    clock = FakeClock()
    server = PtyServer(_factory(clock, Mark10Faults(disconnect_after_s=10.0)))
    await server.start()
    yield server, clock
    await server.stop()


async def test_pty_round_trip(pty_server: tuple[PtyServer, FakeClock]) -> None:
    server, _ = pty_server
    assert server.path.startswith("/dev/")
    client = PtyClient(server.path)
    try:
        client.write(b"LB\r?C\r")
        assert await client.read_line() == b"18.78 lbF\r\n"  # compression: no sign
        client.write(b"RM\r\n")
        assert await client.read_line() == b"M5-100\r\n"
    finally:
        client.close()
    device = server.device
    assert isinstance(device, Mark10Device)
    assert device.state.commands == ["LB", "?C", "RM"]


async def test_pty_client_may_reopen_the_port(pty_server: tuple[PtyServer, FakeClock]) -> None:
    server, _ = pty_server
    for _ in range(2):
        client = PtyClient(server.path)
        try:
            client.write(b"RS\r")
            assert await client.read_line() == b"SIM-0001\r\n"
        finally:
            client.close()


async def test_pty_disconnect_fault_is_seen_by_the_client(
    pty_server: tuple[PtyServer, FakeClock],
) -> None:
    server, clock = pty_server
    client = PtyClient(server.path)
    try:
        client.write(b"?C\r")
        assert await client.read_line() == b"83.54 N\r\n"
        clock.now += 10.0  # the server's timer notices; no further request is needed
        await client.wait_eof()
    finally:
        client.close()
    assert server.closed
    await server.stop()  # idempotent after the fault closed it


async def test_pty_with_the_serial_library_the_drivers_use(
    pty_server: tuple[PtyServer, FakeClock],
) -> None:
    server, _ = pty_server
    reader, writer = await serial_asyncio_fast.open_serial_connection(
        url=server.path, baudrate=115200
    )
    try:
        writer.write(b"KG\r?C\r")
        line = await asyncio.wait_for(reader.readuntil(b"\r\n"), TIMEOUT_S)
    finally:
        await _close(writer)
    assert ReplyDecoder().feed(line) == [Reading(8.52, Mark10Unit.KGF)]


async def test_pty_server_lifecycle() -> None:
    server = PtyServer(_factory(FakeClock()))
    with pytest.raises(RuntimeError, match="not been started"):
        _ = server.path
    await server.stop()  # stopping a server that never started is harmless
    async with server:
        assert server.path.startswith("/dev/")
        with pytest.raises(RuntimeError, match="starts once"):
            await server.start()
    assert server.closed


@pytest.fixture
async def tcp_server() -> AsyncIterator[tuple[TcpServer, FakeClock]]:
    clock = FakeClock()
    server = TcpServer(_factory(clock, Mark10Faults(disconnect_after_s=10.0)))
    await server.start()
    yield server, clock
    await server.stop()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sent: bytes
) -> bytes:
    writer.write(sent)
    return await asyncio.wait_for(reader.readuntil(b"\r\n"), TIMEOUT_S)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    await asyncio.wait_for(writer.wait_closed(), TIMEOUT_S)


async def test_tcp_round_trip_with_a_fresh_device_per_connection(
    tcp_server: tuple[TcpServer, FakeClock],
) -> None:
    server, _ = tcp_server
    host, port = server.address
    assert host == "127.0.0.1"
    assert port > 0
    for _ in range(2):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            assert await _exchange(reader, writer, b"?C\r") == b"83.54 N\r\n"
            assert await _exchange(reader, writer, b"LB\rXYZ\r") == b"*10\r\n"
            assert await _exchange(reader, writer, b"?\r") == b"18.78 lbF\r\n"
        finally:
            await _close(writer)
    assert len(server.devices) == 2


async def test_tcp_disconnect_fault_is_seen_by_the_client(
    tcp_server: tuple[TcpServer, FakeClock],
) -> None:
    server, clock = tcp_server
    reader, writer = await asyncio.open_connection(*server.address)
    try:
        assert await _exchange(reader, writer, b"RV\r") == b"1.04\r\n"
        clock.now += 10.0
        assert await asyncio.wait_for(reader.read(), TIMEOUT_S) == b""
    finally:
        await _close(writer)


async def test_tcp_stop_closes_live_connections() -> None:
    server = TcpServer(_factory(FakeClock()))
    async with server:
        reader, writer = await asyncio.open_connection(*server.address)
        assert await _exchange(reader, writer, b"RM\r") == b"M5-100\r\n"
    try:
        assert await asyncio.wait_for(reader.read(), TIMEOUT_S) == b""
    finally:
        await _close(writer)
    await server.stop()  # idempotent
