"""``devicectl calibrate``: reading the known weight, the measuring dialogue on a fake gauge in
virtual time, waiting for Enter, and the command storing what it measured."""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devicectl import calibrate as calibrate_module
from devicectl import opener
from devicectl.calibrate import (
    EnterPrompt,
    add_parser,
    calibrate,
    calibrate_command,
    calibration_record,
    parse_known,
)
from devicectl.errors import DevicectlError
from devicectl.units import KGF_N, LBF_N
from drivers.calibration import CalibratedSensor, Calibration, CalibrationStore
from drivers.force import DeviceInfo, ForceSample, ForceSensor

KNOWN_N = 10 * KGF_N  # a 10 kg weight
OFFSET_N = 0.3  # the gauge's raw reading with no load
GAIN = 0.98  # the gauge reads 2 % low
PERIOD_S = 0.02  # 50 Hz
INFO = DeviceInfo("Mark-10 M5-100", "/dev/ttyUSB0", serial="SN42")


# -- the known weight ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "newtons"),
    [
        ("10kg", 10 * KGF_N),
        ("10 kg", 10 * KGF_N),
        ("10kgf", 10 * KGF_N),
        (" 2.5 KG ", 2.5 * KGF_N),
        ("22lb", 22 * LBF_N),
        ("22 lbf", 22 * LBF_N),
        ("98N", 98.0),
        ("98 n", 98.0),
        ("1e1kg", 10 * KGF_N),
        ("0.5kg", 0.5 * KGF_N),
    ],
)
def test_known_weights_in_newtons(text: str, newtons: float) -> None:
    assert parse_known(text) == pytest.approx(newtons, rel=1e-12)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is not a weight; write it as"),
        ("kg", "is not a weight; write it as"),
        ("10", "is not a weight; write it as"),
        ("ten kg", "is not a weight; write it as"),
        ("nan kg", "is not a weight; write it as"),
        ("10 stone", "unknown unit 'stone'; use N, kg, kgf, lb or lbf"),
        ("10 g", "unknown unit 'g'"),
        ("1.2.3kg", "'1.2.3' is not a number"),
        ("0kg", "must be a positive finite number"),
        ("-5 kg", "must be a positive finite number"),
        ("1e999kg", "must be a positive finite number"),
    ],
)
def test_bad_known_weights_say_what_is_accepted(text: str, message: str) -> None:
    with pytest.raises(DevicectlError, match=message) as caught:
        parse_known(text)
    assert '"10kg"' in str(caught.value)  # every message lists the accepted forms


# -- the dialogue, on a fake gauge in virtual time -------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeGauge(ForceSensor):
    """A gauge on a virtual clock: every sample advances it by PERIOD_S.

    Reads ``OFFSET_N + GAIN * load`` with ±0.05 N of noise; while ``swing_until`` is ahead, ±20 N
    more (a weight just hung, still swinging). ``pending`` samples (a driver's backlog) come
    first. ``end_at`` ends the stream; ``stall_at`` stops it without ending it.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.load = 0.0
        self.swing_until = -1.0
        self.pending: list[ForceSample] = []
        self.end_at = float("inf")
        self.stall_at = float("inf")
        self.connected = False
        self.closed = False

    def reading(self, t: float, sign: int) -> float:
        swing = 20.0 if t < self.swing_until else 0.0
        return OFFSET_N + GAIN * self.load + sign * (0.05 + swing)

    async def samples(self) -> AsyncIterator[ForceSample]:
        sign = 1
        for _ in range(100_000):  # bounded: far more than any test needs
            if self.pending:
                yield self.pending.pop(0)
                continue
            self.clock.now += PERIOD_S
            if self.clock.now >= self.end_at:
                return
            if self.clock.now >= self.stall_at:
                await asyncio.Event().wait()
            sign = -sign
            yield ForceSample(self.clock.now, self.reading(self.clock.now, sign))

    async def connect(self) -> DeviceInfo:
        self.connected = True
        return INFO

    @property
    def info(self) -> DeviceInfo | None:
        return INFO if self.connected else None

    async def tare(self) -> None:
        return None

    async def close(self) -> None:
        self.closed = True


class User:
    """Answers the prompts: nothing to do for the first; for the second, hangs the weight.

    Fetching the weight takes 20 s, during which the driver buffered readings with no load; the
    weight swings for half a second once hung.
    """

    def __init__(self, gauge: FakeGauge, *, hang: float = KNOWN_N) -> None:
        self.gauge = gauge
        self.hang = hang
        self.prompts: list[str] = []
        self.said: list[str] = []

    async def prompt(self, text: str) -> None:
        self.prompts.append(text)
        if len(self.prompts) == 2:
            clock = self.gauge.clock
            self.gauge.pending = [
                ForceSample(clock.now + i * PERIOD_S, OFFSET_N) for i in range(1000)
            ]
            clock.now += 20.0
            self.gauge.load = self.hang
            self.gauge.swing_until = clock.now + 0.5

    def say(self, text: str) -> None:
        self.said.append(text)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gauge(clock: Clock) -> FakeGauge:
    g = FakeGauge(clock)
    g.connected = True
    return g


async def run(gauge: FakeGauge, user: User, sensor: ForceSensor | None = None) -> Calibration:
    return await calibrate(
        sensor or gauge,
        KNOWN_N,
        prompt=user.prompt,
        say=user.say,
        collect_s=3.0,
        settle_s=1.0,
        clock=gauge.clock,
        now=lambda: datetime(2026, 5, 4, tzinfo=UTC),
    )


async def test_calibrate_measures_the_offset_and_the_scale(gauge: FakeGauge) -> None:
    user = User(gauge)
    cal = await run(gauge, user)

    assert cal.offset_n == pytest.approx(OFFSET_N, abs=1e-3)
    assert cal.scale == pytest.approx(1 / GAIN, rel=1e-4)
    assert cal.apply(OFFSET_N + GAIN * KNOWN_N) == pytest.approx(KNOWN_N, rel=1e-4)
    assert (cal.device_id, cal.model, cal.known_n) == ("Mark-10 M5-100#SN42", INFO.model, KNOWN_N)
    assert cal.created_at == "2026-05-04T00:00:00+00:00"
    # 3 s at 50 Hz in each window: the settling second, the swing and the backlog were skipped.
    assert 149 <= cal.zero_samples <= 151
    assert 149 <= cal.loaded_samples <= 151
    assert "Take all load off" in user.prompts[0]
    assert "10 kg, 98.07 N" in user.prompts[1]


async def test_calibrate_shows_the_result(gauge: FakeGauge) -> None:
    user = User(gauge)
    cal = await run(gauge, user)
    result = user.said[-1]
    assert f"calibration {cal.id} for Mark-10 M5-100#SN42" in result
    assert "offset 0.300 N, scale 1.02041" in result
    assert "the known weight (98.07 N) read 96.11 N before calibration, 98.07 N after" in result
    assert "no load: 0.30 N" in user.said[1]


async def test_a_calibrated_sensor_is_measured_raw(gauge: FakeGauge) -> None:
    old = Calibration(
        device_id="Mark-10 M5-100#SN42", model=INFO.model, offset_n=5.0, scale=2.0,
        known_n=KNOWN_N, zero_n=5.0, loaded_n=54.0, created_at="2025-01-01T00:00:00+00:00",
        zero_samples=150, loaded_samples=150,
    )  # fmt: skip
    cal = await run(gauge, User(gauge), CalibratedSensor(gauge, old))
    assert cal.scale == pytest.approx(1 / GAIN, rel=1e-4)
    assert cal.offset_n == pytest.approx(OFFSET_N, abs=1e-3)


async def test_no_weight_hung_fails_with_the_reason(gauge: FakeGauge) -> None:
    with pytest.raises(DevicectlError, match=r"calibration failed: .*weight on the tip"):
        await run(gauge, User(gauge, hang=0.0))


async def test_a_unit_mix_up_fails_with_the_ratio(gauge: FakeGauge) -> None:
    with pytest.raises(DevicectlError, match=r"reads 10x the known weight"):
        await run(gauge, User(gauge, hang=KNOWN_N * 10 / GAIN))


async def test_an_unsteady_zero_fails_before_asking_for_the_weight(gauge: FakeGauge) -> None:
    gauge.swing_until = float("inf")
    user = User(gauge)
    with pytest.raises(DevicectlError, match="with no load were unsteady"):
        await run(gauge, user)
    assert len(user.prompts) == 1


async def test_readings_that_end_mid_window_are_an_error(gauge: FakeGauge, clock: Clock) -> None:
    gauge.end_at = clock.now + 2.0
    with pytest.raises(DevicectlError, match="the readings ended during calibration"):
        await run(gauge, User(gauge))


async def test_a_silent_sensor_times_out(
    gauge: FakeGauge, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(calibrate_module, "WINDOW_GRACE_S", 0.05)
    gauge.stall_at = clock.now + 0.05
    user = User(gauge)
    with pytest.raises(DevicectlError, match=r"/dev/ttyUSB0: no readings for 0\.05 s"):
        await calibrate(
            gauge, KNOWN_N, prompt=user.prompt, say=user.say, collect_s=0.1, settle_s=0.0,
            clock=clock,
        )  # fmt: skip


async def test_an_unconnected_sensor_is_refused(clock: Clock) -> None:
    gauge = FakeGauge(clock)
    user = User(gauge)
    with pytest.raises(DevicectlError, match="connect the sensor"):
        await run(gauge, user)
    assert user.prompts == []


def test_the_record_of_a_calibration_is_compact_json() -> None:
    assert calibration_record(None) == ""
    cal = Calibration(
        device_id="d#1", model="m", offset_n=0.25, scale=1.5, known_n=98.0665, zero_n=0.25,
        loaded_n=65.6, created_at="2026-05-04T00:00:00+00:00", zero_samples=150,
        loaded_samples=150,
    )  # fmt: skip
    text = calibration_record(cal)
    assert " " not in text
    assert json.loads(text) == {
        "id": cal.id, "device_id": "d#1", "created_at": "2026-05-04T00:00:00+00:00",
        "known_n": 98.0665, "offset_n": 0.25, "scale": 1.5,
    }  # fmt: skip


# -- waiting for Enter -----------------------------------------------------------------------------


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        with suppress(OSError):
            os.close(fd)


async def test_enter_prompt_waits_for_a_line(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    said: list[str] = []
    prompt = EnterPrompt(read_fd, said.append)
    waiting = asyncio.create_task(prompt("Take all load off"))
    await asyncio.sleep(0)  # let it start waiting (a yield to the loop, not a timed wait)
    assert not waiting.done()
    os.write(write_fd, b"\n")
    await asyncio.wait_for(waiting, 5)
    assert said == ["Take all load off, then press Enter."]


async def test_enter_prompt_keeps_lines_typed_ahead(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    os.write(write_fd, b"ok\n\n")
    prompt = EnterPrompt(read_fd, lambda _: None)
    await asyncio.wait_for(prompt("one"), 5)
    await asyncio.wait_for(prompt("two"), 5)


async def test_enter_prompt_on_closed_input_is_an_error(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    os.close(write_fd)
    with pytest.raises(DevicectlError, match="standard input closed before Enter"):
        await asyncio.wait_for(EnterPrompt(read_fd, lambda _: None)("go"), 5)


async def test_enter_prompt_reads_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_bytes(b"\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        prompt = EnterPrompt(fd, lambda _: None)
        await asyncio.wait_for(prompt("one"), 5)
        with pytest.raises(DevicectlError, match="standard input closed"):
            await asyncio.wait_for(prompt("two"), 5)
    finally:
        os.close(fd)


# -- the command -----------------------------------------------------------------------------------


class Opened:
    """Stands in for opener.open_force_sensor: a fake gauge whose weight goes on at 4.5 s."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.specs: list[opener.SensorSpec] = []
        self.gauge: FakeGauge | None = None

    @asynccontextmanager
    async def __call__(self, spec: opener.SensorSpec, **kwargs: Any) -> AsyncIterator[ForceSensor]:
        self.specs.append(spec)
        start = self.clock.now
        # The first window is [start + 1, start + 4) (Enter at once); the second starts at 5.
        gauge = LoadedAfter(self.clock, start + 4.5)
        self.gauge = gauge
        try:
            yield gauge
        finally:
            await gauge.close()


class LoadedAfter(FakeGauge):
    def __init__(self, clock: Clock, when: float) -> None:
        super().__init__(clock)
        self.when = when

    def reading(self, t: float, sign: int) -> float:
        self.load = KNOWN_N if t >= self.when else 0.0
        return super().reading(t, sign)


def args(tmp_path: Path, known: str = "10kg", address: str = "mark10@sim") -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    return parser.parse_args(
        ["calibrate", address, "--known", known, "--calibrations", str(tmp_path / "cal.json")]
    )


@pytest.fixture
def opened(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Opened:
    fake = Opened(clock)
    monkeypatch.setattr(opener, "open_force_sensor", fake)
    real = calibrate_module.calibrate_device
    monkeypatch.setattr(calibrate_module, "calibrate_device", functools.partial(real, clock=clock))
    return fake


@pytest.fixture
def enter_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    keys = tmp_path / "keys"
    keys.write_text("\n\n", encoding="utf-8")
    stdin = keys.open("r", encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    yield
    stdin.close()


def test_the_parser(tmp_path: Path) -> None:
    parsed = args(tmp_path, known="22 lb", address="mark10@serial:///dev/ttyUSB0")
    assert parsed.handler is calibrate_command
    assert (parsed.address, parsed.known) == ("mark10@serial:///dev/ttyUSB0", "22 lb")
    assert parsed.calibrations == tmp_path / "cal.json"
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    assert parser.parse_args(["calibrate", "mark10@sim", "--known", "1kg"]).calibrations is None


@pytest.mark.usefixtures("enter_twice")
def test_the_command_calibrates_and_stores(
    tmp_path: Path, opened: Opened, capsys: pytest.CaptureFixture[str]
) -> None:
    code = calibrate_command(args(tmp_path))

    assert code == 0
    [spec] = opened.specs
    assert spec.text == "mark10@sim"
    assert opened.gauge is not None
    assert opened.gauge.closed
    stored = CalibrationStore(tmp_path / "cal.json").get("Mark-10 M5-100#SN42")
    assert stored is not None
    assert stored.scale == pytest.approx(1 / GAIN, rel=1e-4)
    out = capsys.readouterr().out
    assert "calibrating Mark-10 M5-100#SN42 on /dev/ttyUSB0" in out
    assert "then press Enter." in out
    assert (
        f"saved calibration {stored.id} for Mark-10 M5-100#SN42 in {tmp_path / 'cal.json'}" in out
    )


def test_a_bad_weight_fails_before_opening_the_device(tmp_path: Path, opened: Opened) -> None:
    with pytest.raises(DevicectlError, match="unknown unit"):
        calibrate_command(args(tmp_path, known="10 stone"))
    assert opened.specs == []


def test_a_corrupt_calibrations_file_fails_before_opening(tmp_path: Path, opened: Opened) -> None:
    (tmp_path / "cal.json").write_text("[", encoding="utf-8")
    with pytest.raises(DevicectlError, match=r"cal\.json is corrupt"):
        calibrate_command(args(tmp_path))
    assert opened.specs == []
