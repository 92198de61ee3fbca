"""Capturing a device conversation to a file (``devicectl run --capture FILE``), and reading one.

:class:`CaptureLog` writes the ``devicectl/1`` JSON-lines format of :mod:`protocols.capture`,
one flushed line per record, so a crash keeps everything up to the last byte moved.
:class:`CapturingTransport` wraps any serial-style :class:`~drivers.transport.base.Transport`;
:class:`~drivers.transport.ble.BleLink` takes a ``capture=`` log for BLE.

Capturing must never break the session it watches: once a write to the file fails, the log
disables itself, keeps the error in :attr:`CaptureLog.failure` and reports it once through
``on_error``; the I/O it was recording goes on untouched.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self, TextIO

from drivers.errors import DeviceDisconnected, DeviceError
from drivers.transport.base import Transport
from protocols.capture import (
    DEVICE_TO_HOST,
    EVENT_CLOSE,
    EVENT_DISCONNECT,
    EVENT_ERROR,
    EVENT_OPEN,
    HOST_TO_DEVICE,
    Capture,
    CaptureError,
    CaptureHeader,
    CaptureRecord,
    CaptureTransport,
    Direction,
    format_header,
    format_record,
    parse_capture,
)

__all__ = ["CaptureError", "CaptureLog", "CapturingTransport", "read_capture"]

ErrorCallback = Callable[[Exception], None]


class CaptureLog:
    """An open capture: a header line, then one line per :meth:`data` or :meth:`event`.

    Use :meth:`open` for a file (it raises :class:`~protocols.capture.CaptureError` if the
    file cannot be created or the header cannot be written). ``clock`` is monotonic seconds
    (``t`` counts from construction); ``on_error`` is told once, if the file fails later.
    The log is not closed by the transports that write to it: its owner closes it.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        device: str,
        model: str,
        transport: CaptureTransport,
        clock: Callable[[], float] = time.monotonic,
        on_error: ErrorCallback | None = None,
        started_at: datetime | None = None,
        name: str = "<capture>",
    ) -> None:
        self._stream: TextIO | None = stream
        self._transport: CaptureTransport = transport
        self._clock = clock
        self._on_error = on_error
        self._name = name
        self._failure: Exception | None = None
        self._written = 0
        self._start = clock()
        when = (started_at or datetime.now(UTC)).astimezone(UTC)
        header = CaptureHeader(device, model, transport, when.isoformat(timespec="milliseconds"))
        try:
            _put(stream, format_header(header))
        except (OSError, ValueError) as exc:
            raise CaptureError(f"{name}: cannot write the capture: {exc}") from exc

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        device: str,
        model: str,
        transport: CaptureTransport,
        clock: Callable[[], float] = time.monotonic,
        on_error: ErrorCallback | None = None,
    ) -> CaptureLog:
        """Create (or replace) the file ``path`` and write the header."""
        try:
            # The log owns the file until close(), so no `with` here.
            stream = Path(path).open("w", encoding="utf-8", newline="\n")  # noqa: SIM115
        except OSError as exc:
            raise CaptureError(f"{path}: cannot create the capture: {exc.strerror}") from exc
        try:
            return cls(
                stream,
                device=device,
                model=model,
                transport=transport,
                clock=clock,
                on_error=on_error,
                name=str(path),
            )
        except BaseException:
            stream.close()
            raise

    @property
    def name(self) -> str:
        return self._name

    @property
    def transport(self) -> CaptureTransport:
        return self._transport

    @property
    def enabled(self) -> bool:
        """True while records are still written (not closed, no failure)."""
        return self._stream is not None

    @property
    def failure(self) -> Exception | None:
        """The error that disabled the log, if one did."""
        return self._failure

    @property
    def records_written(self) -> int:
        """Lines written after the header."""
        return self._written

    def data(self, direction: Direction, data: bytes, *, char: str | None = None) -> None:
        """Record bytes moved in ``direction`` (on characteristic ``char`` for BLE)."""
        self._record(CaptureRecord(self._elapsed(), direction, bytes(data), char=char))

    def host_to_device(self, data: bytes, *, char: str | None = None) -> None:
        self.data(HOST_TO_DEVICE, data, char=char)

    def device_to_host(self, data: bytes, *, char: str | None = None) -> None:
        self.data(DEVICE_TO_HOST, data, char=char)

    def event(self, name: str, detail: str = "") -> None:
        """Record a non-data event (``open``, ``close``, ``disconnect``, ``error``, ...)."""
        self._record(CaptureRecord(self._elapsed(), event=name, detail=detail))

    def close(self) -> None:
        """Close the file. Idempotent; never raises."""
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _elapsed(self) -> float:
        # max(): a clock that steps back (a fake one in a test) must not make t go backwards.
        return max(0.0, self._clock() - self._start)

    def _record(self, record: CaptureRecord) -> None:
        if self._stream is None:
            return
        try:
            _put(self._stream, format_record(record, self._transport))
        except (OSError, ValueError) as exc:  # ValueError: the stream was closed under us
            self._disable(exc)
            return
        self._written += 1

    def _disable(self, exc: Exception) -> None:
        self._failure = exc
        self.close()
        if self._on_error is not None:
            with contextlib.suppress(Exception):  # a broken reporter must not break the I/O
                self._on_error(exc)

    def __repr__(self) -> str:
        return f"CaptureLog({self._name!r}, transport={self._transport!r})"


def _put(stream: TextIO, line: str) -> None:
    stream.write(line + "\n")
    stream.flush()  # a crash must keep every whole line


class CapturingTransport:
    """A :class:`~drivers.transport.base.Transport` that records what passes through ``inner``.

    A write is recorded before it is handed on, so that a reply read during the write is never
    recorded ahead of the request that caused it; a failed write is followed by an ``error``
    event. A read that finds the link gone records ``disconnect`` (unless the host was closing
    it); ``open``/``close`` are recorded too. Errors pass through unchanged.
    """

    def __init__(self, inner: Transport, log: CaptureLog) -> None:
        self._inner = inner
        self._log = log
        self._closing = False

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def is_open(self) -> bool:
        return self._inner.is_open

    @property
    def inner(self) -> Transport:
        return self._inner

    @property
    def log(self) -> CaptureLog:
        return self._log

    async def open(self) -> None:
        try:
            await self._inner.open()
        except DeviceError as exc:
            self._log.event(EVENT_ERROR, f"open: {exc}")
            raise
        self._closing = False
        self._log.event(EVENT_OPEN, self._inner.name)

    async def write(self, data: bytes) -> None:
        self._log.host_to_device(data)
        try:
            await self._inner.write(data)
        except DeviceError as exc:
            self._log.event(EVENT_ERROR, f"write: {exc}")
            raise

    async def read(self) -> bytes:
        try:
            data = await self._inner.read()
        except DeviceDisconnected as exc:
            if not self._closing:
                self._log.event(EVENT_DISCONNECT, exc.message)
            raise
        except DeviceError as exc:
            self._log.event(EVENT_ERROR, f"read: {exc}")
            raise
        self._log.device_to_host(data)
        return data

    async def close(self) -> None:
        was_open, self._closing = self._inner.is_open, True
        await self._inner.close()
        if was_open:
            self._log.event(EVENT_CLOSE)

    def __repr__(self) -> str:
        return f"CapturingTransport({self._inner!r}, {self._log!r})"


def read_capture(path: str | os.PathLike[str]) -> Capture:
    """Read a capture file. Raises :class:`~protocols.capture.CaptureError` (a
    :class:`~protocols.capture.CaptureFormatError` naming the line, for malformed text)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CaptureError(f"{path}: cannot read the capture: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise CaptureError(f"{path}: not a capture (not UTF-8 text: {exc.reason})") from exc
    return parse_capture(text, source=str(path))
