"""Line framing shared by the ASCII gauge dialects (Mark-10, Imada, Shimpo, Wagner).

Host side: bytes from the gauge in, in any chunking; parsed lines out. A CR or an LF ends a line,
so CR LF leaves an empty line between them, which is ignored. A line longer than ``max_line`` is
dropped with everything up to its terminator (so garbage without a terminator cannot grow
memory) and counted once, as garbage, when the terminator arrives. A line the dialect's ``parse``
rejects is garbage too. ``feed`` never raises.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")

_TERMINATORS = (0x0D, 0x0A)


class LineDecoder(Generic[T]):
    """Splits and counts; a dialect subclasses it and says how one line parses."""

    def __init__(self, max_line: int) -> None:
        self._buffer = bytearray()
        self._max_line = max_line
        self._overflowed = False
        self.garbage = 0
        self.lines = 0

    def parse(self, line: bytes) -> T | None:
        """One complete, non-empty line without its terminator; None when it is garbage."""
        raise NotImplementedError

    def feed(self, data: bytes) -> list[T]:
        parsed: list[T] = []
        start = 0
        for index, byte in enumerate(data):
            if byte in _TERMINATORS:
                self._append(data[start:index])
                item = self._end_line()
                if item is not None:
                    parsed.append(item)
                start = index + 1
        self._append(data[start:])
        return parsed

    def _append(self, chunk: bytes) -> None:
        if self._overflowed:
            return
        if len(self._buffer) + len(chunk) > self._max_line:
            self._overflowed = True
            self._buffer.clear()
            return
        self._buffer += chunk

    def _end_line(self) -> T | None:
        line, overflowed = bytes(self._buffer), self._overflowed
        self._buffer.clear()
        self._overflowed = False
        if overflowed:
            self.garbage += 1
            return None
        if not line:
            return None
        item = self.parse(line)
        if item is None:
            self.garbage += 1
            return None
        self.lines += 1
        return item
