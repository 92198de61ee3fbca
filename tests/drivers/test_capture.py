"""Recording a conversation: the capture file, a write error that must not break the I/O,
:class:`CapturingTransport` around a scripted transport, and reading a capture back."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from drivers.capture import CaptureLog, CapturingTransport, read_capture
from drivers.errors import DeviceDisconnected, DeviceTimeout
from protocols.capture import CaptureError, CaptureFormatError

WAIT_S = 5.0  # an upper bound for awaiting an event; tests finish long before it


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ScriptedTransport:
    """A Transport whose reads come from a queue: bytes, or an error to raise."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.incoming: asyncio.Queue[bytes | Exception] = asyncio.Queue()
        self.fail_writes: Exception | None = None
        self._open = False

    @property
    def name(self) -> str:
        return "scripted"

    @property
    def is_open(self) -> bool:
        return self._open

    async def open(self) -> None:
        self._open = True

    async def write(self, data: bytes) -> None:
        if self.fail_writes is not None:
            raise self.fail_writes
        self.written.append(data)

    async def read(self) -> bytes:
        item = await self.incoming.get()
        if isinstance(item, Exception):
            raise item
        return item

    async def close(self) -> None:
        self._open = False


class BreakingStream(io.StringIO):
    """A text stream that fails (disk full) once ``broken`` is set."""

    broken = False

    def write(self, s: str) -> int:
        if self.broken:
            raise OSError(28, "No space left on device")
        return super().write(s)


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_the_file_has_a_header_then_one_flushed_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    clock = FakeClock()
    log = CaptureLog.open(
        path, device="mark10@sim", model="Mark-10", transport="serial", clock=clock
    )
    clock.now += 0.25
    log.host_to_device(b"?C\r")
    # Flushed per line: the file holds the record while the log is still open.
    assert lines(path)[1] == {"t": 0.25, "dir": "host>dev", "data": "3f430d", "text": "?C\\r"}
    clock.now += 0.25
    log.event("disconnect", "gone")
    log.close()
    header, _, event = lines(path)
    assert header["capture"] == "devicectl/1"
    assert (header["device"], header["model"], header["transport"]) == (
        "mark10@sim",
        "Mark-10",
        "serial",
    )
    started = datetime.fromisoformat(str(header["started_at"]))
    assert started.utcoffset() == timedelta(0)  # UTC
    assert event == {"t": 0.5, "event": "disconnect", "detail": "gone"}
    assert log.records_written == 2


def test_a_file_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="cannot create the capture"):
        CaptureLog.open(
            tmp_path / "no" / "such" / "dir.jsonl", device="d", model="m", transport="ble"
        )


def test_a_write_error_disables_the_log_once_and_is_reported() -> None:
    stream = BreakingStream()
    reported: list[Exception] = []
    log = CaptureLog(stream, device="d", model="m", transport="serial", on_error=reported.append)
    log.host_to_device(b"A\r")
    stream.broken = True
    log.host_to_device(b"B\r")  # fails: no exception reaches the caller
    log.device_to_host(b"C\r\n")  # ignored: the log is off
    log.event("close")
    assert len(reported) == 1
    assert isinstance(log.failure, OSError)
    assert not log.enabled
    assert log.records_written == 1


def test_a_broken_error_reporter_does_not_break_the_caller() -> None:
    stream = BreakingStream()

    def reporter(_exc: Exception) -> None:
        raise RuntimeError("the reporter itself fails")

    log = CaptureLog(stream, device="d", model="m", transport="serial", on_error=reporter)
    stream.broken = True
    log.host_to_device(b"x")
    assert log.failure is not None


async def test_the_transport_records_both_directions_and_the_link_events() -> None:
    stream = io.StringIO()
    inner = ScriptedTransport()
    log = CaptureLog(stream, device="scripted", model="m", transport="serial")
    link = CapturingTransport(inner, log)
    await link.open()
    await link.write(b"?C\r")
    inner.incoming.put_nowait(b"4.285 N\r\n")
    assert await asyncio.wait_for(link.read(), WAIT_S) == b"4.285 N\r\n"
    inner.incoming.put_nowait(DeviceDisconnected("scripted", "the link was closed"))
    with pytest.raises(DeviceDisconnected):
        await asyncio.wait_for(link.read(), WAIT_S)
    await link.close()
    records = [json.loads(line) for line in stream.getvalue().splitlines()[1:]]
    assert [(r.get("dir") or r["event"], r.get("text")) for r in records] == [
        ("open", None),
        ("host>dev", "?C\\r"),
        ("dev>host", "4.285 N\\r\\n"),
        ("disconnect", None),
        ("close", None),
    ]
    assert inner.written == [b"?C\r"]


async def test_a_failed_write_is_recorded_and_raised_unchanged() -> None:
    stream = io.StringIO()
    inner = ScriptedTransport()
    link = CapturingTransport(inner, CaptureLog(stream, device="d", model="m", transport="serial"))
    await link.open()
    inner.fail_writes = DeviceTimeout("scripted", "a write was not taken")
    with pytest.raises(DeviceTimeout):
        await link.write(b"?C\r")
    events = [json.loads(line).get("event") for line in stream.getvalue().splitlines()[1:]]
    assert events == ["open", None, "error"]


async def test_io_goes_on_after_the_capture_file_fails() -> None:
    stream = BreakingStream()
    inner = ScriptedTransport()
    log = CaptureLog(stream, device="d", model="m", transport="serial")
    link = CapturingTransport(inner, log)
    await link.open()
    stream.broken = True
    await link.write(b"?C\r")
    inner.incoming.put_nowait(b"1.00 N\r\n")
    assert await asyncio.wait_for(link.read(), WAIT_S) == b"1.00 N\r\n"
    assert inner.written == [b"?C\r"]
    assert log.failure is not None


def test_read_capture_round_trips_a_written_file(tmp_path: Path) -> None:
    path = tmp_path / "ble.jsonl"
    with CaptureLog.open(path, device="progressor@ble", model="P", transport="ble") as log:
        log.host_to_device(b"\x6b", char="7E4E1703-1EA6-40C9-9DCC-13D34FFEAD57")
        log.device_to_host(b"\x00\x01x", char="7e4e1702-1ea6-40c9-9dcc-13d34ffead57")
    capture = read_capture(path)
    assert capture.header.transport == "ble"
    assert [(r.direction, r.char, r.data) for r in capture.records] == [
        ("host>dev", "7e4e1703-1ea6-40c9-9dcc-13d34ffead57", b"\x6b"),
        ("dev>host", "7e4e1702-1ea6-40c9-9dcc-13d34ffead57", b"\x00\x01x"),
    ]


def test_read_capture_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match=r"missing\.jsonl: cannot read"):
        read_capture(tmp_path / "missing.jsonl")
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(CaptureError, match="not UTF-8"):
        read_capture(binary)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"capture": "devicectl/1"}\n', encoding="utf-8")
    with pytest.raises(CaptureFormatError, match=r'bad\.jsonl: line 1: "transport" is missing'):
        read_capture(bad)
