"""The hand-over of readings from a driver's I/O side to its one consumer.

Bounded: when the consumer stalls, the oldest reading is dropped (and counted through
``on_drop``) so memory cannot grow. The stream ends when the driver closes, or fails with a
DeviceError; every later iteration ends (or fails) the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from drivers.errors import DeviceError
from drivers.force import ForceSample

# About 12 s at 80 Hz, 20 s at 50 Hz: far more than any consumer pause worth waiting out.
DEFAULT_BUFFER = 1024

_Item = ForceSample | DeviceError | None  # None: closed, the stream ends


class SampleStream:
    def __init__(
        self, *, on_drop: Callable[[], None] | None = None, maxsize: int = DEFAULT_BUFFER
    ) -> None:
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=maxsize)
        self._on_drop = on_drop

    def put(self, item: _Item) -> None:
        """A reading, a failure, or None for the end of the stream."""
        if self._queue.full():
            self._queue.get_nowait()  # the consumer stalled: drop the oldest
            if self._on_drop is not None:
                self._on_drop()
        self._queue.put_nowait(item)

    async def __aiter__(self) -> AsyncIterator[ForceSample]:
        while True:
            item = await self._queue.get()
            if item is None or isinstance(item, DeviceError):
                self._queue.put_nowait(item)  # later iterations end the same way
                if item is None:
                    return
                raise item
            yield item


async def close_stream(stream: AsyncIterator[ForceSample]) -> None:
    """Close a consumer's sample iterator now, when it stops early, rather than whenever the
    garbage collector finalises it (a driver's generator may hold a link or a task)."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
