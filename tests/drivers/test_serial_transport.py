"""SerialTransport over a real pty and a real TCP socket, and its one-place error translation."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import serial

from drivers.errors import DeviceDisconnected, DeviceNotFound, DevicePermissionDenied
from drivers.transport.serial import SerialTransport, translate_open_error, translate_read_error
from tests.drivers.pty_peer import PtyPeer

TIMEOUT_S = 5.0


def _echo(request: bytes) -> bytes:
    return request.upper() + b"\r\n"


@pytest.fixture
async def peer() -> AsyncIterator[PtyPeer]:
    peer = PtyPeer(_echo)
    yield peer
    peer.close()


async def _read_until(transport: SerialTransport, end: bytes) -> bytes:
    data = b""
    async with asyncio.timeout(TIMEOUT_S):
        while not data.endswith(end):
            data += await transport.read()
    return data


async def test_pty_round_trip(peer: PtyPeer) -> None:
    transport = SerialTransport(peer.path, name="gauge")
    await transport.open()
    assert transport.is_open
    assert transport.name == "gauge"
    await transport.write(b"rm\r")
    assert await _read_until(transport, b"\r\n") == b"RM\r\n"
    await transport.close()
    assert not transport.is_open


async def test_close_is_idempotent_and_never_raises(peer: PtyPeer) -> None:
    transport = SerialTransport(peer.path)
    await transport.close()  # never opened
    await transport.open()
    await transport.close()
    await transport.close()


async def test_socket_round_trip() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write((await reader.readuntil(b"\r")).upper() + b"\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = SerialTransport(f"socket://127.0.0.1:{port}")
    try:
        await transport.open()
        await transport.write(b"rv\r")
        assert await _read_until(transport, b"\n") == b"RV\r\n"
        with pytest.raises(DeviceDisconnected, match="closed by the other end"):
            async with asyncio.timeout(TIMEOUT_S):
                await transport.read()  # the server closed after its reply
    finally:
        await transport.close()
        server.close()
        await server.wait_closed()


async def test_unplugged_pty_raises_disconnected(peer: PtyPeer) -> None:
    transport = SerialTransport(peer.path)
    await transport.open()
    try:
        peer.close()
        with pytest.raises(DeviceDisconnected) as caught:
            async with asyncio.timeout(TIMEOUT_S):
                await transport.read()
        assert caught.value.__cause__ is not None  # raised from pyserial's error
        with pytest.raises(DeviceDisconnected):
            await transport.write(b"?C\r")
    finally:
        await transport.close()


async def test_read_and_write_before_open_raise_disconnected() -> None:
    transport = SerialTransport("/dev/ttyUSB-never-opened")
    with pytest.raises(DeviceDisconnected):
        await transport.read()
    with pytest.raises(DeviceDisconnected):
        await transport.write(b"?\r")


async def test_missing_port_is_not_found(tmp_path: Path) -> None:
    transport = SerialTransport(str(tmp_path / "ttyUSB9"))
    with pytest.raises(DeviceNotFound, match="devicectl scan") as caught:
        await transport.open()
    assert isinstance(caught.value.__cause__, serial.SerialException)
    assert not transport.is_open


async def test_refused_socket_is_not_found() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = SerialTransport(f"socket://127.0.0.1:{port}")
    with pytest.raises(DeviceNotFound, match="simulator"):
        await transport.open()


@pytest.mark.parametrize(
    "exc",
    [
        serial.SerialException(
            errno.EACCES,
            "could not open port /dev/ttyUSB0: [Errno 13] Permission denied: '/dev/ttyUSB0'",
        ),
        PermissionError(errno.EACCES, "Permission denied"),
    ],
    ids=["pyserial", "os"],
)
def test_permission_errors_translate_with_the_dialout_hint(exc: Exception) -> None:
    error = translate_open_error("/dev/ttyUSB0", exc)
    assert isinstance(error, DevicePermissionDenied)
    assert error.device == "/dev/ttyUSB0"
    assert "sudo usermod -aG dialout $USER" in error.hint
    assert "log out and in" in error.hint


@pytest.mark.parametrize(
    "exc",
    [
        serial.SerialException(errno.ENOENT, "could not open port /dev/ttyUSB0: [Errno 2] ..."),
        FileNotFoundError(errno.ENOENT, "No such file or directory"),
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
        ValueError("invalid address"),
    ],
    ids=["pyserial", "os", "refused", "bad-url"],
)
def test_missing_devices_translate_to_not_found(exc: Exception) -> None:
    error = translate_open_error("/dev/ttyUSB0", exc)
    assert isinstance(error, DeviceNotFound)
    assert "devicectl scan" in error.hint


def test_read_errors_translate_to_disconnected() -> None:
    lost = serial.SerialException("device reports readiness to read but returned no data")
    assert "readiness" in translate_read_error("/dev/pts/3", lost).message
    assert "closed" in translate_read_error("/dev/pts/3", None).message
    assert isinstance(translate_read_error("x", OSError(errno.EIO, "EIO")), DeviceDisconnected)
