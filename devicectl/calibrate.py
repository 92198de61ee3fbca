"""``devicectl calibrate ADDRESS --known 10kg``: a two-point calibration against a known weight.

The user takes all load off the gauge and presses Enter; readings are averaged; the user puts
the known weight on and presses Enter; readings are averaged again. :func:`drivers.calibration.
two_point` turns the two means into an offset and a scale, and the command stores the result
per device identity (:class:`~drivers.calibration.CalibrationStore`), where the session opener
finds it. See docs/calibration.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from devicectl import opener
from devicectl.builtin import builtin_plan
from devicectl.errors import DevicectlError
from devicectl.units import KGF_N, LBF_N
from drivers.calibration import (
    CalibratedSensor,
    Calibration,
    CalibrationError,
    CalibrationStore,
    device_identity,
    steady_mean,
    two_point,
)
from drivers.force import DeviceInfo, ForceSample, ForceSensor

__all__ = [
    "COLLECT_S",
    "SETTLE_S",
    "EnterPrompt",
    "add_parser",
    "calibrate",
    "calibrate_command",
    "calibrate_device",
    "calibration_record",
    "parse_known",
]

# Three seconds is 30-240 readings at the 10-80 Hz gauges stream: the mean's noise falls well
# under the gauge's resolution, and a weight can be left still that long.
COLLECT_S = 3.0
# After Enter, the hand leaving the gauge and the weight's swing die down within about a second.
SETTLE_S = 1.0
# A streaming sensor fills a window in its own length; 5 s more is beyond every driver's own
# stale-data timeout (Mark-10: 2 s), so this only catches a driver that goes silent without one.
WINDOW_GRACE_S = 5.0
# A simulated gauge follows a plan's therapist; the demo plan's is as good as any for this.
SIM_PLAN = "demo"

# kg and lb are the weight of that mass under standard gravity, i.e. kgf and lbf.
_KNOWN_UNITS = {"n": 1.0, "kg": KGF_N, "kgf": KGF_N, "lb": LBF_N, "lbf": LBF_N}
_KNOWN_FORMS = '"10kg", "10 kg", "10kgf", "22lb", "22 lbf" or "98N"'
# A number (digits, point, exponent, sign) then a unit of letters, spaces allowed between.
_KNOWN_TEXT = re.compile(r"\s*([0-9.eE+-]+?)\s*([A-Za-z]+)\s*")

Prompt = Callable[[str], Awaitable[None]]
Say = Callable[[str], None]


def parse_known(text: str) -> float:
    """The known weight in newtons, from ``"10kg"``, ``"22 lbf"``, ``"98N"`` and the like.

    ``kg`` and ``lb`` mean the weight of that mass under standard gravity (9.80665 m/s^2).

    Raises:
        DevicectlError: an unknown unit, or not a positive finite number; lists the accepted forms.
    """
    match = _KNOWN_TEXT.fullmatch(text)
    if match is None:
        raise DevicectlError(f"--known {text!r} is not a weight; write it as {_KNOWN_FORMS}")
    number, unit = match.groups()
    factor = _KNOWN_UNITS.get(unit.lower())
    if factor is None:
        raise DevicectlError(
            f"--known {text!r}: unknown unit {unit!r}; use N, kg, kgf, lb or lbf, as in "
            f"{_KNOWN_FORMS}"
        )
    try:
        value = float(number)
    except ValueError:
        value = math.nan
        problem = f"{number!r} is not a number"
    else:
        problem = "the weight must be a positive finite number"
    if not (math.isfinite(value) and value > 0):
        raise DevicectlError(f"--known {text!r}: {problem}; write it as {_KNOWN_FORMS}")
    return value * factor


def calibration_record(calibration: Calibration | None) -> str:
    """What the records keep about the calibration a session used (``DeviceRecord.calibration``):
    compact JSON of its id, device, date and numbers, or ``""`` for none."""
    if calibration is None:
        return ""
    fields = ("id", "device_id", "created_at", "known_n", "offset_n", "scale")
    data = {name: getattr(calibration, name) for name in fields}
    return json.dumps(data, separators=(",", ":"))


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def calibrate(
    sensor: ForceSensor,
    known_n: float,
    *,
    prompt: Prompt,
    say: Say,
    collect_s: float = COLLECT_S,
    settle_s: float = SETTLE_S,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = _utc_now,
) -> Calibration:
    """Measure a connected sensor with no load and with ``known_n`` on it; the calibration.

    Each window starts ``settle_s`` after ``prompt`` returns (on ``clock``, the clock of the
    samples' times) and lasts ``collect_s``: samples are read until one is stamped past its end;
    samples from before it (buffered while the user was busy) are skipped. A
    :class:`~drivers.calibration.CalibratedSensor` is measured through to its raw driver, so an
    old calibration does not skew the new one. Storing the result is the caller's business.

    Raises:
        DevicectlError: the measurement is unusable (the message says why and what to do), or the
            sensor stopped sending readings.
    """
    raw = sensor.inner if isinstance(sensor, CalibratedSensor) else sensor
    info = raw.info
    if info is None:
        raise DevicectlError("connect the sensor before calibrating it")
    readings = raw.samples()
    windows = _Windows(readings, clock, settle_s, collect_s, info)
    try:
        await prompt("Take all load off the gauge (nothing on the tip, hands off)")
        say(f"measuring with no load: {settle_s:g} s to settle, then {collect_s:g} s of readings")
        zero = await windows.next()
        say(f"no load: {_checked_mean(zero, known_n, 'with no load'):.2f} N, {len(zero)} readings")
        await prompt(
            f"Put the known weight ({_weight_text(known_n)}) on the gauge so that it presses the "
            "tip (compression), and let go"
        )
        say(f"measuring with the weight: {settle_s:g} s to settle, then {collect_s:g} s")
        loaded = await windows.next()
    finally:
        if isinstance(readings, AsyncGenerator):  # close it now, not when garbage collected
            await readings.aclose()
    try:
        calibration = two_point(
            zero, loaded, known_n, device_id=device_identity(info), model=info.model, now=now()
        )
    except CalibrationError as exc:
        raise DevicectlError(f"calibration failed: {exc}") from exc
    say(_result_text(calibration))
    return calibration


class _Windows:
    """Successive measuring windows over one sample iterator (a driver has one consumer)."""

    def __init__(
        self,
        readings: AsyncIterator[ForceSample],
        clock: Callable[[], float],
        settle_s: float,
        collect_s: float,
        info: DeviceInfo,
    ) -> None:
        self._readings = readings
        self._clock = clock
        self._settle_s = settle_s
        self._collect_s = collect_s
        self._info = info

    async def next(self) -> list[float]:
        """Raw readings stamped in [now + settle_s, now + settle_s + collect_s)."""
        start = self._clock() + self._settle_s
        end = start + self._collect_s
        values: list[float] = []
        try:
            async with asyncio.timeout(self._settle_s + self._collect_s + WINDOW_GRACE_S):
                async for sample in self._readings:
                    if sample.t >= end:
                        return values
                    if sample.t >= start:
                        values.append(sample.force_n)
        except TimeoutError:
            raise DevicectlError(
                f"{self._info.address}: no readings for {WINDOW_GRACE_S:g} s past the "
                "measuring window; check the connection and calibrate again"
            ) from None
        raise DevicectlError(f"{self._info.address}: the readings ended during calibration")


def _checked_mean(readings: list[float], known_n: float, when: str) -> float:
    """Checks a window at once, so the user hears of a problem before fetching the weight."""
    try:
        return steady_mean(readings, known_n, when)
    except CalibrationError as exc:
        raise DevicectlError(f"calibration failed: {exc}") from exc


def _weight_text(force_n: float) -> str:
    return f"{force_n / KGF_N:.3g} kg, {force_n:.2f} N"


def _result_text(c: Calibration) -> str:
    before_n = c.loaded_n - c.zero_n  # what the gauge showed for the weight, zeroed but unscaled
    after_n = c.apply(c.loaded_n)
    return "\n".join(
        (
            f"calibration {c.id} for {c.device_id}:",
            f"  no load {c.zero_n:.3f} N ({c.zero_samples} readings), with the weight "
            f"{c.loaded_n:.3f} N ({c.loaded_samples} readings)",
            f"  offset {c.offset_n:.3f} N, scale {c.scale:.5f}",
            f"  the known weight ({c.known_n:.2f} N) read {before_n:.2f} N before calibration, "
            f"{after_n:.2f} N after",
        )
    )


# -- the command ---------------------------------------------------------------------------------


class EnterPrompt:
    """Prints a request and waits for Enter on a file descriptor without blocking the event loop.

    A terminal, pipe or socket is watched by the loop; a regular file or /dev/null (which the
    loop cannot watch, and which never blocks) is read directly. Lines typed ahead are kept for
    the next request.
    """

    def __init__(self, fd: int, say: Say = print) -> None:
        self._fd = fd
        self._say = say
        self._buffer = b""

    async def __call__(self, text: str) -> None:
        self._say(f"{text}, then press Enter.")
        while b"\n" not in self._buffer:
            chunk = await self._read()
            if not chunk:
                raise DevicectlError(
                    "standard input closed before Enter was pressed: calibrating needs someone "
                    "at the gauge"
                )
            self._buffer += chunk
        _, self._buffer = self._buffer.split(b"\n", 1)

    async def _read(self) -> bytes:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not ready.done():
                ready.set_result(None)

        try:
            loop.add_reader(self._fd, readable)
        except (OSError, ValueError):  # a regular file or /dev/null: reading never blocks
            return os.read(self._fd, 4096)
        try:
            await ready
        finally:
            loop.remove_reader(self._fd)
        return os.read(self._fd, 4096)


async def calibrate_device(
    spec: opener.SensorSpec,
    known_n: float,
    *,
    prompt: Prompt,
    say: Say,
    clock: Callable[[], float] = time.monotonic,
) -> Calibration:
    """Open and connect the sensor ``spec`` names, calibrate it (``clock``: its samples' clock),
    close it."""
    async with opener.open_force_sensor(spec, plan=builtin_plan(SIM_PLAN)) as sensor:
        info = await sensor.connect()
        label = " (SIMULATED)" if info.simulated else ""
        say(f"calibrating {device_identity(info)} on {info.address}{label}")
        return await calibrate(sensor, known_n, prompt=prompt, say=say, clock=clock)


def calibrate_command(args: argparse.Namespace) -> int:
    """``devicectl calibrate ADDRESS --known W [--calibrations FILE]``."""
    known_n = parse_known(args.known)
    spec = opener.parse_sensor(args.address)
    store = CalibrationStore(args.calibrations)
    if sys.stdin is None or sys.stdin.closed:
        raise DevicectlError("calibrating needs a keyboard: standard input is closed")
    try:
        store.all()  # a corrupt file fails now, not after the user has done the work
        fd = sys.stdin.fileno()
    except CalibrationError as exc:
        raise DevicectlError(str(exc)) from exc
    except (AttributeError, ValueError, OSError) as exc:
        raise DevicectlError(f"calibrating needs standard input for Enter: {exc}") from exc
    calibration = asyncio.run(calibrate_device(spec, known_n, prompt=EnterPrompt(fd), say=print))
    try:
        store.put(calibration)
    except CalibrationError as exc:
        raise DevicectlError(str(exc)) from exc
    print(f"saved calibration {calibration.id} for {calibration.device_id} in {store.path}")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``calibrate`` subcommand, for cli.build_parser."""
    p = sub.add_parser(
        "calibrate", help="two-point calibration of a force sensor against a known weight"
    )
    p.add_argument(
        "address", metavar="ADDRESS", help="the force sensor, e.g. mark10@serial:///dev/ttyUSB0"
    )
    p.add_argument(
        "--known",
        required=True,
        metavar="W",
        help=f"the known weight: {_KNOWN_FORMS} (kg and lb: that mass under standard gravity)",
    )
    p.add_argument(
        "--calibrations",
        type=Path,
        default=None,
        metavar="FILE",
        help="the calibrations file (default: calibrations.json in the user's config dir)",
    )
    p.set_defaults(handler=calibrate_command)
