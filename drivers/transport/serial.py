"""The serial transport: device paths, ``/dev/pts/N`` pty slaves and ``socket://HOST:PORT``.

This is the only module that imports pyserial. Its errors (and the OS errors under them) are
translated into :mod:`drivers.errors` exactly once, here.

pyserial-asyncio-fast reports a write that finds the port gone (``SerialTransport._write_data``
→ ``_fatal_error``, "Fatal write error on serial transport") through the event loop's exception
handler, which prints a traceback, and then drops the write silently. :class:`_QuietSerialLink`
ends the link instead, as a failed read does, and :meth:`SerialTransport.write` raises
:class:`~drivers.errors.DeviceDisconnected` from the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import urllib.parse
from functools import partial
from typing import Any, Literal

import serial
import serial_asyncio_fast

from drivers.errors import (
    DeviceDisconnected,
    DeviceError,
    DeviceNotFound,
    DevicePermissionDenied,
    DeviceTimeout,
)

__all__ = [
    "CLOSE_TIMEOUT_S",
    "WRITE_TIMEOUT_S",
    "SerialTransport",
    "translate_open_error",
    "translate_read_error",
]

Parity = Literal["N", "E", "O", "M", "S"]

# Enough for any burst a serial gauge sends between two polls; StreamReader returns less.
_READ_CHUNK = 4096

# A write waits only while more than the transport's high-water mark (64 KiB) is queued, which a
# device that reads never causes: GCL2 commands are a few bytes. So a wait this long means the
# device stopped taking bytes (flow control held, a hung peer); it is long enough for a slow
# USB-serial adapter at 9600 baud and short enough to fail well inside a session's limits.
WRITE_TIMEOUT_S = 1.0
# Closing normally flushes what is queued; a device that stopped reading would make that wait
# for ever, so after this long the link is aborted and the rest dropped.
CLOSE_TIMEOUT_S = 1.0

_WRITE_TIMEOUT_HINT = (
    "the device stopped reading: check the cable, that it is on, and its flow-control setting"
)
_NOT_FOUND_HINT = "check the port with `devicectl scan`; for a simulator, check that it is running"
_PERMISSION_HINT = (
    "on Linux, join the dialout group: `sudo usermod -aG dialout $USER`, then log out and in"
)
_NOT_FOUND_ERRNOS = {
    errno.ENOENT,
    errno.ENODEV,
    errno.ENXIO,
    errno.ECONNREFUSED,
    errno.EHOSTUNREACH,
}
_PERMISSION_ERRNOS = {errno.EACCES, errno.EPERM}


def _errno_of(exc: BaseException) -> int | None:
    """The errno of an OSError or SerialException, also when pyserial wrapped the OSError."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        code = getattr(candidate, "errno", None)
        if isinstance(code, int):
            return code
    return None


def translate_open_error(name: str, exc: BaseException) -> DeviceError:
    """The DeviceError for a failure to open ``name`` (pyserial's or the OS's)."""
    code = _errno_of(exc)
    if isinstance(exc, PermissionError) or code in _PERMISSION_ERRNOS:
        return DevicePermissionDenied(name, f"permission denied: {exc}", hint=_PERMISSION_HINT)
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError) or code in _NOT_FOUND_ERRNOS:
        return DeviceNotFound(name, f"cannot open: {exc}", hint=_NOT_FOUND_HINT)
    # Anything else (pyserial's ValueError for a malformed URL or setting, an unreachable host)
    # also means there is no device to talk to at this address.
    return DeviceNotFound(name, f"cannot open: {exc}", hint=_NOT_FOUND_HINT)


def translate_read_error(name: str, exc: BaseException | None) -> DeviceDisconnected:
    """The DeviceDisconnected for a link that closed (``exc`` None: end of file) or failed."""
    if exc is None:
        return DeviceDisconnected(name, "the link was closed by the other end")
    return DeviceDisconnected(name, f"the link failed: {exc}", hint="check the cable and power")


class _QuietSerialLink(serial_asyncio_fast.SerialTransport):
    """pyserial-asyncio-fast's transport, but a port that fails under a write ends the link.

    The library reports that through the loop's exception handler (a traceback on stderr) and
    then aborts. Here an I/O error only aborts: the protocol gets ``connection_lost(exc)``, as
    for a failed read, and :attr:`failure` keeps the error for the next write to raise. Any
    other exception is a bug and is still reported.
    """

    failure: BaseException | None = None

    def _fatal_error(
        self, exc: BaseException, message: str = "Fatal error on serial transport"
    ) -> None:
        if not isinstance(exc, serial.SerialException | OSError):
            super()._fatal_error(exc, message)
            return
        if self.failure is None:
            self.failure = exc
        self._abort(exc)


async def _open_link(
    url: str, *, baudrate: int, bytesize: int, parity: Parity, stopbits: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Like ``serial_asyncio_fast.open_serial_connection``, with :class:`_QuietSerialLink`.

    ``socket://`` URLs are left to the library: it uses asyncio's own socket transport, which
    does not report a reset connection through the exception handler.
    """
    settings: dict[str, Any] = {
        "baudrate": baudrate,
        "bytesize": bytesize,
        "parity": parity,
        "stopbits": stopbits,
    }
    if urllib.parse.urlparse(url).scheme == "socket":
        return await serial_asyncio_fast.open_serial_connection(url=url, **settings)
    loop = asyncio.get_running_loop()
    port = await loop.run_in_executor(None, partial(serial.serial_for_url, url, **settings))
    reader = asyncio.StreamReader(loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    link = _QuietSerialLink(loop, protocol, port)
    return reader, asyncio.StreamWriter(link, protocol, reader, loop)


class SerialTransport:
    """A :class:`~drivers.transport.base.Transport` over pyserial-asyncio-fast.

    Args:
        url: a device path (``/dev/ttyUSB0``, ``COM3``, ``/dev/pts/4``) or a pyserial URL such as
            ``socket://127.0.0.1:7001``. ``loop://`` is not supported (it has no file descriptor).
        baudrate, bytesize, parity, stopbits: the line settings (ignored for ``socket://``).
        name: a label for messages; the URL by default.
        write_timeout_s: how long one :meth:`write` may wait for the device to take the bytes
            before it raises :class:`~drivers.errors.DeviceTimeout` (see ``WRITE_TIMEOUT_S``).

    A write after the link failed raises :class:`~drivers.errors.DeviceDisconnected`.
    """

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 115200,
        bytesize: int = 8,
        parity: Parity = "N",
        stopbits: float = 1,
        name: str | None = None,
        write_timeout_s: float = WRITE_TIMEOUT_S,
    ) -> None:
        if not (math.isfinite(write_timeout_s) and write_timeout_s > 0):
            raise ValueError(f"write_timeout_s must be a positive number, not {write_timeout_s!r}")
        self._url = url
        self._baudrate = baudrate
        self._bytesize = bytesize
        self._parity = parity
        self._stopbits = stopbits
        self._name = name or url
        self._write_timeout_s = write_timeout_s
        self._stalled = False  # a write timed out: what is queued will never be flushed
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def url(self) -> str:
        return self._url

    @property
    def is_open(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def open(self) -> None:
        if self._writer is not None:
            raise RuntimeError(f"{self._name}: already open")
        try:
            reader, writer = await _open_link(
                self._url,
                baudrate=self._baudrate,
                bytesize=self._bytesize,
                parity=self._parity,
                stopbits=self._stopbits,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise translate_open_error(self._name, exc) from exc
        self._reader, self._writer = reader, writer

    async def write(self, data: bytes) -> None:
        writer = self._writable()
        try:
            writer.write(data)
            self._writable()  # the write itself may have found the port gone
            async with asyncio.timeout(self._write_timeout_s):
                await writer.drain()
        except TimeoutError:
            self._stalled = True
            message = f"a write was not taken within {self._write_timeout_s:g} s"
            raise DeviceTimeout(self._name, message, hint=_WRITE_TIMEOUT_HINT) from None
        except (serial.SerialException, OSError) as exc:
            raise translate_read_error(self._name, exc) from exc

    def _writable(self) -> asyncio.StreamWriter:
        """The open writer; raises DeviceDisconnected (from the cause) once the link is gone."""
        writer = self._writer
        link = None if writer is None else writer.transport
        failure = link.failure if isinstance(link, _QuietSerialLink) else None
        if failure is not None:
            raise translate_read_error(self._name, failure) from failure
        if writer is None or writer.is_closing():
            raise DeviceDisconnected(self._name, "the link is not open")
        return writer

    async def read(self) -> bytes:
        reader = self._reader
        if reader is None:
            raise DeviceDisconnected(self._name, "the link is not open")
        try:
            data = await reader.read(_READ_CHUNK)
        except (serial.SerialException, OSError) as exc:
            raise translate_read_error(self._name, exc) from exc
        if not data:
            raise translate_read_error(self._name, None)
        return data

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        if self._stalled:
            writer.transport.abort()  # the queued bytes would never be taken
        else:
            writer.close()
        # Waiting for pyserial-asyncio's close task means no task outlives the transport; a
        # link that already failed re-raises its error here, which closing must not do.
        closed = asyncio.ensure_future(writer.wait_closed())
        done, _ = await asyncio.wait({closed}, timeout=CLOSE_TIMEOUT_S)
        if not done:
            writer.transport.abort()  # flushing is stuck behind a device that does not read
        with contextlib.suppress(Exception):
            await closed

    def __repr__(self) -> str:
        return f"SerialTransport({self._url!r}, baudrate={self._baudrate})"
