"""Reading a few samples from a real driver in tests, with a bound on the wait."""

from __future__ import annotations

import asyncio

from drivers.force import ForceSample, ForceSensor
from drivers.sample_stream import close_stream

WAIT_S = 10.0


async def take(sensor: ForceSensor, n: int, timeout_s: float = WAIT_S) -> list[ForceSample]:
    """The next ``n`` samples, within ``timeout_s``; the iterator is closed after."""

    async def collect() -> list[ForceSample]:
        got: list[ForceSample] = []
        stream = sensor.samples()
        try:
            async for sample in stream:
                got.append(sample)
                if len(got) == n:
                    break
        finally:
            await close_stream(stream)
        return got

    return await asyncio.wait_for(collect(), timeout_s)
