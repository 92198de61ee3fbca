"""Tares handed to a driver's link task: answered once sent, failed (never hung) otherwise."""

from __future__ import annotations

import asyncio

import pytest

from drivers.errors import DeviceDisconnected
from drivers.mark10 import Mark10
from drivers.tare_queue import TareQueue

WAIT_S = 5.0


async def test_a_tare_is_answered_once_sent() -> None:
    queue = TareQueue()
    sent: list[str] = []
    waiter = asyncio.create_task(queue.wait_for_tare())
    await asyncio.sleep(0)  # let the waiter queue its request

    async def send() -> None:
        sent.append("Z")

    await queue.send_pending(send)
    await asyncio.wait_for(waiter, WAIT_S)
    assert sent == ["Z"]


async def test_a_send_that_fails_leaves_the_request_for_fail_to_answer() -> None:
    queue = TareQueue()
    waiter = asyncio.create_task(queue.wait_for_tare())
    await asyncio.sleep(0)

    async def send() -> None:
        raise DeviceDisconnected("gauge", "unplugged while taring")

    with pytest.raises(DeviceDisconnected):
        await queue.send_pending(send)
    assert not waiter.done()  # still queued: the link task's failure path answers it
    queue.fail(DeviceDisconnected("gauge", "the link failed"))
    with pytest.raises(DeviceDisconnected, match="the link failed"):
        await asyncio.wait_for(waiter, WAIT_S)


async def test_a_caller_that_gave_up_is_skipped() -> None:
    queue = TareQueue()
    waiter = asyncio.create_task(queue.wait_for_tare())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    sent: list[str] = []

    async def send() -> None:
        sent.append("Z")

    await queue.send_pending(send)
    assert sent == []


class _UnplugOnTare:
    """A Mark-10 on a fake link: answers polls and identity; the tare write finds it unplugged."""

    name = "fake-gauge"

    def __init__(self) -> None:
        self.is_open = False
        self._replies: asyncio.Queue[bytes] = asyncio.Queue()
        self._gone = asyncio.Event()

    async def open(self) -> None:
        self.is_open = True

    async def write(self, data: bytes) -> None:
        if data == b"Z\r":
            self._gone.set()
            raise DeviceDisconnected(self.name, "unplugged")
        if data == b"?C\r":
            self._replies.put_nowait(b"1.00 N\r\n")
        else:
            self._replies.put_nowait(b"*10\r\n")

    async def read(self) -> bytes:
        getter = asyncio.ensure_future(self._replies.get())
        gone = asyncio.ensure_future(self._gone.wait())
        await asyncio.wait({getter, gone}, return_when=asyncio.FIRST_COMPLETED)
        getter.cancel()
        gone.cancel()
        if self._gone.is_set():
            raise DeviceDisconnected(self.name, "unplugged")
        return getter.result()

    async def close(self) -> None:
        self.is_open = False
        self._gone.set()


async def test_a_gauge_unplugged_during_a_tare_fails_the_tare_instead_of_hanging() -> None:
    sensor = Mark10(_UnplugOnTare(), rate_hz=50.0)
    try:
        await asyncio.wait_for(sensor.connect(), WAIT_S)
        with pytest.raises(DeviceDisconnected):
            await asyncio.wait_for(sensor.tare(), WAIT_S)
    finally:
        await sensor.close()
