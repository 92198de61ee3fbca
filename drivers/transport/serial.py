"""The serial transport: device paths, ``/dev/pts/N`` pty slaves and ``socket://HOST:PORT``.

This is the only module that imports pyserial. Its errors (and the OS errors under them) are
translated into :mod:`drivers.errors` exactly once, here.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from typing import Literal

import serial
import serial_asyncio_fast

from drivers.errors import (
    DeviceDisconnected,
    DeviceError,
    DeviceNotFound,
    DevicePermissionDenied,
)

__all__ = ["SerialTransport", "translate_open_error", "translate_read_error"]

Parity = Literal["N", "E", "O", "M", "S"]

# Enough for any burst a serial gauge sends between two polls; StreamReader returns less.
_READ_CHUNK = 4096

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


class SerialTransport:
    """A :class:`~drivers.transport.base.Transport` over pyserial-asyncio-fast.

    Args:
        url: a device path (``/dev/ttyUSB0``, ``COM3``, ``/dev/pts/4``) or a pyserial URL such as
            ``socket://127.0.0.1:7001``. ``loop://`` is not supported (it has no file descriptor).
        baudrate, bytesize, parity, stopbits: the line settings (ignored for ``socket://``).
        name: a label for messages; the URL by default.
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
    ) -> None:
        self._url = url
        self._baudrate = baudrate
        self._bytesize = bytesize
        self._parity = parity
        self._stopbits = stopbits
        self._name = name or url
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
            reader, writer = await serial_asyncio_fast.open_serial_connection(
                url=self._url,
                baudrate=self._baudrate,
                bytesize=self._bytesize,
                parity=self._parity,
                stopbits=self._stopbits,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise translate_open_error(self._name, exc) from exc
        self._reader, self._writer = reader, writer

    async def write(self, data: bytes) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise DeviceDisconnected(self._name, "the link is not open")
        try:
            writer.write(data)
            await writer.drain()
        except (serial.SerialException, OSError) as exc:
            raise translate_read_error(self._name, exc) from exc

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
        writer.close()
        # Waiting for pyserial-asyncio's close task means no task outlives the transport; a
        # link that already failed re-raises its error here, which closing must not do.
        with contextlib.suppress(Exception):
            await writer.wait_closed()

    def __repr__(self) -> str:
        return f"SerialTransport({self._url!r}, baudrate={self._baudrate})"
