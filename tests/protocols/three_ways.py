"""Feed a line decoder three ways (whole, byte by byte, wrapped in garbage); all must agree."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocols.lines import LineDecoder


@dataclass(frozen=True)
class Decoded:
    replies: list[Any]
    lines: int
    garbage: int


def decode(make: Callable[[], LineDecoder[Any]], chunks: list[bytes]) -> Decoded:
    decoder = make()
    replies = [reply for chunk in chunks for reply in decoder.feed(chunk)]
    return Decoded(replies, decoder.lines, decoder.garbage)


def decode_three_ways(
    make: Callable[[], LineDecoder[Any]], data: bytes, terminator: bytes = b"\r\n"
) -> Decoded:
    """Two garbage lines (control and non-ASCII bytes) around ``data`` add exactly 2 garbage."""
    whole = decode(make, [data])
    bytewise = decode(make, [data[i : i + 1] for i in range(len(data))])
    wrapped = decode(make, [b"\xff\xfe\x00junk" + terminator + data, b"\x80\x81\x82" + terminator])
    assert bytewise == whole
    assert wrapped.replies == whole.replies
    assert wrapped.lines == whole.lines
    assert wrapped.garbage == whole.garbage + 2
    return whole
