"""The ``devicectl/1`` capture format: rendering, formatting then parsing, and clear errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.capture import (
    DEVICE_TO_HOST,
    HOST_TO_DEVICE,
    CaptureFormatError,
    CaptureHeader,
    CaptureRecord,
    format_header,
    format_record,
    normalize_uuid,
    parse_capture,
    render_text,
)

SERIAL = CaptureHeader("mark10@sim", "Mark-10", "serial", "2025-01-01T00:00:00.000+00:00")
BLE = CaptureHeader("progressor@ble", "Tindeq Progressor", "ble", "2025-01-01T00:00:00+00:00")
CHAR = "7e4e1703-1ea6-40c9-9dcc-13d34ffead57"
HEADER_LINE = format_header(SERIAL)


def capture_text(header: CaptureHeader, *lines: str) -> str:
    return "\n".join([format_header(header), *lines]) + "\n"


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"?C\r", "?C\\r"),
        (b"4.285 N\r\n", "4.285 N\\r\\n"),
        (b"a\\b\tc", "a\\\\b\\tc"),
        (b"\x00\x7f\x9a\xa0\xad", "\\x00\\x7f\\x9a\\xa0\\xad"),  # controls, NBSP, soft hyphen
        (b"\xf3\xe1", "\u00f3\u00e1"),  # printable Latin-1 is shown as it is
    ],
)
def test_render_text(data: bytes, text: str) -> None:
    assert render_text(data) == text


def test_a_serial_record_line_has_hex_and_text() -> None:
    line = format_record(CaptureRecord(0.0123456789, HOST_TO_DEVICE, b"?C\r"), "serial")
    assert json.loads(line) == {"t": 0.012346, "dir": "host>dev", "data": "3f430d", "text": "?C\\r"}


def test_a_ble_record_line_has_its_characteristic_and_no_text() -> None:
    line = format_record(CaptureRecord(1.0, DEVICE_TO_HOST, b"\x00\x01", char="2A19"), "ble")
    assert json.loads(line) == {
        "t": 1.0,
        "dir": "dev>host",
        "char": "00002a19-0000-1000-8000-00805f9b34fb",
        "data": "0001",
    }


def test_an_event_line() -> None:
    line = format_record(CaptureRecord(2.5, event="disconnect", detail="gone"), "serial")
    assert json.loads(line) == {"t": 2.5, "event": "disconnect", "detail": "gone"}


def test_normalize_uuid() -> None:
    assert normalize_uuid("2A19") == "00002a19-0000-1000-8000-00805f9b34fb"
    assert normalize_uuid("0000FE59") == "0000fe59-0000-1000-8000-00805f9b34fb"
    assert normalize_uuid(CHAR.upper()) == CHAR


records = st.one_of(
    st.builds(
        CaptureRecord,
        t=st.just(0.0),
        direction=st.sampled_from([HOST_TO_DEVICE, DEVICE_TO_HOST]),
        data=st.binary(max_size=40),
    ),
    st.builds(
        CaptureRecord,
        t=st.just(0.0),
        event=st.text(min_size=1, max_size=10),
        detail=st.text(max_size=20),
    ),
)


@given(st.lists(records, max_size=10), st.sampled_from(["serial", "ble"]))
def test_format_then_parse_is_the_identity(items: list[CaptureRecord], transport: str) -> None:
    header = SERIAL if transport == "serial" else BLE
    timed = [
        CaptureRecord(
            i / 1000,  # a time the format writes exactly (to the microsecond)
            r.direction,
            r.data,
            char=CHAR if r.is_data and transport == "ble" else None,
            event=r.event,
            detail=r.detail,
        )
        for i, r in enumerate(items)
    ]
    text = capture_text(header, *(format_record(r, header.transport) for r in timed))
    capture = parse_capture(text)
    assert capture.header == header
    assert list(capture.records) == timed
    assert not capture.truncated


def test_blank_lines_and_notes_are_allowed() -> None:
    text = capture_text(
        SERIAL,
        "",
        '{"t": 0, "dir": "host>dev", "data": "3f430d", "note": "section 2.1"}',
        "   ",
    )
    (record,) = parse_capture(text).records
    assert (record.data, record.note) == (b"?C\r", "section 2.1")


def test_a_last_line_cut_short_by_a_crash_is_dropped_and_reported() -> None:
    whole = format_record(CaptureRecord(0.1, HOST_TO_DEVICE, b"?C\r"), "serial")
    text = f"{HEADER_LINE}\n{whole}\n" + '{"t": 0.2, "dir": "dev>h'
    capture = parse_capture(text)
    assert capture.truncated
    assert [r.data for r in capture.records] == [b"?C\r"]


@pytest.mark.parametrize(
    ("lines", "line", "words"),
    [
        ([], 1, "empty"),
        (["[1, 2]"], 1, "not a JSON object"),
        (['{"capture": "devicectl/2"}'], 1, "not a devicectl/1 header"),
        ([HEADER_LINE.replace('"serial"', '"usb"')], 1, '"transport"'),
        ([HEADER_LINE.replace("2025-01-01", "yesterday")], 1, "ISO 8601"),
        ([HEADER_LINE, "{oops"], 2, "not JSON"),
        ([HEADER_LINE, '{"t": -1, "event": "open"}'], 2, '"t"'),
        ([HEADER_LINE, '{"t": 1, "event": "open"}', '{"t": 0.5, "event": "x"}'], 3, "backwards"),
        ([HEADER_LINE, '{"t": 0, "dir": "host>dev", "event": "x", "data": ""}'], 2, "either"),
        ([HEADER_LINE, '{"t": 0, "dir": "sideways", "data": ""}'], 2, '"dir"'),
        ([HEADER_LINE, '{"t": 0, "dir": "host>dev", "data": "3f4"}'], 2, "hex"),
        ([HEADER_LINE, '{"t": 0, "dir": "host>dev"}'], 2, '"data" is missing'),
        ([HEADER_LINE, '{"t": 0, "dir": "host>dev", "data": "3f", "text": "!"}'], 2, "match"),
        ([HEADER_LINE, '{"t": 0, "dir": "host>dev", "data": "", "char": "2a19"}'], 2, "BLE"),
        ([HEADER_LINE, '{"t": 0, "dirr": "host>dev", "event": "x"}'], 2, "'dirr'"),
        ([format_header(BLE), '{"t": 0, "dir": "host>dev", "data": "6b"}'], 2, '"char"'),
    ],
)
def test_malformed_captures_name_the_line(lines: list[str], line: int, words: str) -> None:
    text = "\n".join(lines) + "\n" if lines else ""
    with pytest.raises(CaptureFormatError) as caught:
        parse_capture(text, source="run.jsonl")
    assert caught.value.line == line
    assert str(caught.value).startswith(f"run.jsonl: line {line}: ")
    assert words in str(caught.value)
