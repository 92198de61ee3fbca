"""SerialTransport when the other end misbehaves: unplugged mid-write, never reading, or a port
the user may not open."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import tempfile
import time
import tty
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.errors import DeviceDisconnected, DeviceError, DeviceTimeout
from drivers.mark10 import Mark10
from drivers.transport.serial import SerialTransport
from simulators.force_model import constant
from simulators.mark10 import Mark10Device, Mark10Faults
from simulators.serve import PtyServer, TcpServer
from tests.drivers.pty_peer import PtyPeer

TIMEOUT_S = 5.0
UNPLUGS = 20


async def _unplug_while_polling(link: str) -> None:
    """Poll fast while the simulator's disconnect fault closes the link under the driver."""
    faults = Mark10Faults(disconnect_after_s=0.05)

    def gauge() -> Mark10Device:
        return Mark10Device(constant(1.0), clock=time.monotonic, faults=faults)

    server: PtyServer | TcpServer
    if link == "pty":
        server = PtyServer(gauge, check_interval_s=0.001)
        url = await server.start()
    else:
        server = TcpServer(gauge, check_interval_s=0.001)
        host, port = await server.start()
        url = f"socket://{host}:{port}"
    try:
        async with Mark10(SerialTransport(url), rate_hz=1000) as sensor:
            with pytest.raises(DeviceDisconnected):
                await _drain(sensor)
    finally:
        await server.stop()


async def _drain(sensor: Mark10) -> None:
    async with asyncio.timeout(TIMEOUT_S):
        async for _ in sensor.samples():
            pass


@pytest.mark.parametrize("link", ["pty", "socket"])
async def test_an_unplugged_gauge_never_reaches_the_loops_exception_handler(link: str) -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        for _ in range(UNPLUGS):
            await _unplug_while_polling(link)
    finally:
        loop.set_exception_handler(previous)
    assert [c.get("message") for c in reported] == []


# Far more than the OS buffers of a pty or a loopback socket plus the transport's 64 KiB
# high-water mark, so the write has to wait for a reader that never comes.
FLOOD = b"?C\r" * (8 * 1024 * 1024)
WRITE_TIMEOUT_S = 0.2


@contextlib.contextmanager
def _pty_nobody_reads() -> Iterator[str]:
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        yield os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


@contextlib.asynccontextmanager
async def _socket_nobody_reads() -> AsyncIterator[str]:
    async def never_read(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    accepted: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    try:
        yield f"socket://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for writer in accepted:
            writer.transport.abort()
        server.close()
        await server.wait_closed()


async def _flood(url: str) -> DeviceTimeout:
    transport = SerialTransport(url, write_timeout_s=WRITE_TIMEOUT_S)
    await transport.open()
    try:
        with pytest.raises(DeviceTimeout) as caught:
            async with asyncio.timeout(TIMEOUT_S):
                await transport.write(FLOOD)
    finally:
        async with asyncio.timeout(TIMEOUT_S):  # closing must not wait to flush the flood
            await transport.close()
    assert not transport.is_open
    return caught.value


async def test_a_write_nobody_reads_times_out_on_a_pty() -> None:
    with _pty_nobody_reads() as path:
        error = await _flood(path)
    assert "within 0.2 s" in error.message
    assert "stopped reading" in error.hint


async def test_a_write_nobody_reads_times_out_on_a_socket() -> None:
    async with _socket_nobody_reads() as url:
        error = await _flood(url)
    assert "flow-control" in error.hint


def test_the_write_timeout_must_be_positive() -> None:
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="write_timeout_s"):
            SerialTransport("/dev/null", write_timeout_s=bad)


def _unprivileged_ids() -> tuple[int, int]:
    """The uid and gid of ``nobody``; skip without it on a developer's machine, fail in CI."""
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        if os.environ.get("CI") == "true":
            pytest.fail("running as root in CI, but there is no user 'nobody' to drop to")
        pytest.skip("running as root and there is no user 'nobody' to drop to")
    return entry.pw_uid, entry.pw_gid


def _child_opens(path: str, ids: tuple[int, int] | None, report: int) -> None:
    """In a forked child: drop to ``ids``, open ``path``, write "Class|hint" to ``report``."""
    try:
        # Once dropped, the user may not read the interpreter's files: open a missing port first,
        # so every module the open path imports lazily is loaded.
        with contextlib.suppress(DeviceError):
            asyncio.run(SerialTransport(path + "-missing").open())
        if ids is not None:
            os.setgroups([])
            os.setgid(ids[1])
            os.setuid(ids[0])
        try:
            asyncio.run(SerialTransport(path).open())
            line = "opened|"
        except DeviceError as exc:
            line = f"{type(exc).__name__}|{exc.hint}"
        except BaseException as exc:  # shown in the parent's assertion
            line = f"{type(exc).__name__}|{exc!r}"
        os.write(report, line.encode())
    finally:
        os._exit(0)  # never return into pytest


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX fork and setuid")
def test_a_port_the_user_may_not_open_is_permission_denied() -> None:
    """A root-owned mode-600 port, opened as an ordinary user (as root: dropped to nobody).

    The child is forked rather than started with ``user=``: it keeps the interpreter it has,
    which an unprivileged user may not be allowed to run from its installed path.
    """
    ids = _unprivileged_ids() if os.geteuid() == 0 else None
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)  # the user may look in the folder, just not open the port
        port = Path(folder) / "ttyS9"
        port.touch()
        port.chmod(0o600)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            _child_opens(str(port), ids, write_end)
        os.close(write_end)
        with os.fdopen(read_end) as report:
            line = report.read()
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    kind, _, hint = line.partition("|")
    assert kind == "DevicePermissionDenied", line
    assert "sudo usermod -aG dialout $USER" in hint


async def test_a_write_that_finds_the_port_gone_raises_disconnected_quietly() -> None:
    """The write itself meets the unplugged port (no read has noticed yet)."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    peer = PtyPeer()
    transport = SerialTransport(peer.path)
    try:
        await transport.open()
        peer.close()
        with pytest.raises(DeviceDisconnected, match="the link failed") as caught:
            await transport.write(b"?C\r")
        assert caught.value.__cause__ is not None  # raised from pyserial's error
        with pytest.raises(DeviceDisconnected):  # and every later write
            await transport.write(b"?C\r")
    finally:
        await transport.close()
        peer.close()
        loop.set_exception_handler(previous)
    assert reported == []
