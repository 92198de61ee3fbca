"""Device conversations as data: the test plays the gauge from ``cases/mark10.json`` over a real
pty, and checks every byte the real driver writes. The table is written from the manuals, not
from our encoder, so the driver and the simulator cannot share a bug through it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from drivers.force import ForceSample
from drivers.mark10 import Mark10
from drivers.transport.serial import SerialTransport
from protocols.mark10 import Mark10Unit
from tests.drivers.pty_peer import PtyPeer

TIMEOUT_S = 10.0  # the slowest case waits out a few reply timeouts
RATE_HZ = 10.0  # slow enough that a tare queued after a sample lands before the next poll
CASES = json.loads((Path(__file__).parent / "cases" / "mark10.json").read_text("utf-8"))


@dataclass(frozen=True)
class Step:
    expect: bytes
    reply: bytes | None


@dataclass(frozen=True)
class Case:
    name: str
    steps: list[Step]
    forces_n: list[float]
    driver: dict[str, Any] = field(default_factory=dict)
    info: dict[str, str] | None = None
    stats: dict[str, int] = field(default_factory=dict)
    tare_after_samples: int | None = None
    note: str = ""

    @classmethod
    def load(cls, raw: dict[str, Any]) -> Case:
        steps = [Step(s["expect"].encode("ascii"), _bytes(s["reply"])) for s in raw.pop("steps")]
        driver = dict(raw.pop("driver", {}))
        if "default_unit" in driver:
            driver["default_unit"] = Mark10Unit(driver["default_unit"])
        return cls(steps=steps, driver=driver, **raw)


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode("latin-1")


def _play(steps: list[Step]) -> PtyPeer:
    peer = PtyPeer()

    def respond(_request: bytes) -> bytes | None:
        index = len(peer.requests) - 1  # the request was recorded before this call
        return steps[index].reply if index < len(steps) else None  # then silence

    peer.respond = respond
    return peer


async def _converse(case: Case, sensor: Mark10) -> list[ForceSample]:
    samples: list[ForceSample] = []
    async with asyncio.timeout(TIMEOUT_S):
        async for sample in sensor.samples():
            samples.append(sample)
            if len(samples) == case.tare_after_samples:
                await sensor.tare()
            if len(samples) == len(case.forces_n):
                break
    return samples


@pytest.mark.parametrize("case", [Case.load(dict(c)) for c in CASES["cases"]], ids=lambda c: c.name)
async def test_conversation(case: Case) -> None:
    peer = _play(case.steps)
    try:
        async with Mark10(SerialTransport(peer.path), rate_hz=RATE_HZ, **case.driver) as sensor:
            samples = await _converse(case, sensor)
            written = await peer.wait_requests(len(case.steps), TIMEOUT_S)
            info, stats = sensor.info, sensor.stats
    finally:
        peer.close()
    assert [w + b"\r" for w in written] == [s.expect for s in case.steps]
    assert [s.force_n for s in samples] == pytest.approx(case.forces_n, rel=1e-9)
    assert info is not None
    for key, value in (case.info or {}).items():
        assert getattr(info, key) == value, key
    for key, count in case.stats.items():
        assert getattr(stats, key) == count, key
