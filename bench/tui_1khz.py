"""Benchmark: the live session screen fed by a sensor delivering 1,000 samples per second.

Measures, in one run (the machines are shared and noisy: compare medians and ratios of one run):

- sample-to-screen latency: the force steps (between 20 N and 35 N, in the band) at a known
  moment; the time until the big digits show the new force, read from the widget. Median, p95
  and max over the steps.
- frame rate: screen updates the app's driver is asked to draw per second (Textual renders
  only what changed), and the chart's redraws per second;
- event-loop lag: how late a 10 ms heartbeat runs while the samples flow (median, p99, max);
- CPU: process CPU seconds per wall second over the run.

Each is measured at 1 kHz and, for comparison, at 50 Hz (a polled gauge's rate). The screen runs
headless (Textual's ``run_test``) at 120x40, with a real SessionRunner, timing core and SQLite
records. Run: ``.venv/bin/python -m bench.tui_1khz [--seconds S] [--out docs/bench-tui.md]``.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devicectl.plan import Plan
from devicectl.planfile import parse_plan
from devicectl.records import Records
from devicectl.session import SessionRunner, SessionSink
from drivers.force import DeviceInfo, ForceSample, ForceSensor
from tui.app import LiveApp

# A plan with one long hold, so the whole run happens inside one HOLD phase.
PLAN_TEXT = """
name = "bench"
units = "N"
[[steps]]
type = "hold"
site = "bench"
target = [15, 45]
hold_s = 120
rest_s = 10
repeat = 1
ceiling = 80
max_hold_s = 180
"""
# The force alternates between these (both in the band) every STEP_EVERY_S.
LOW_N, HIGH_N = 20.0, 35.0
STEP_EVERY_S = 0.5
# Samples are delivered in batches, as a USB or BLE link delivers them (a 1 kHz gauge over USB
# sends a packet about every 10 ms).
BATCH_S = 0.01
HEARTBEAT_S = 0.01


@dataclass
class Result:
    rate_hz: float
    seconds: float
    samples: int
    latencies_s: list[float]
    frames: int
    chart_redraws: int
    lags_s: list[float]
    cpu_s: float


class SteppingSensor(ForceSensor):
    """``rate_hz`` samples a second on a deadline grid, stepping between LOW_N and HIGH_N; the
    time each step was first delivered is kept for the latency."""

    def __init__(self, rate_hz: float) -> None:
        self.rate_hz = rate_hz
        self.steps: list[tuple[float, float]] = []  # (perf_counter at delivery, new force)
        self.delivered = 0
        self._info = DeviceInfo("bench sensor", "bench://", simulated=True)
        self._stop = asyncio.Event()

    async def connect(self) -> DeviceInfo:
        return self._info

    async def samples(self) -> AsyncIterator[ForceSample]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        k = 0
        force = LOW_N
        while not self._stop.is_set():
            batch_end = loop.time()
            while (t := start + k / self.rate_hz) <= batch_end:
                level = HIGH_N if int((t - start) / STEP_EVERY_S) % 2 else LOW_N
                if level != force:
                    force = level
                    self.steps.append((time.perf_counter(), force))
                self.delivered += 1
                yield ForceSample(t, force)
                k += 1
            await asyncio.sleep(BATCH_S)

    async def tare(self) -> None:
        return None

    async def close(self) -> None:
        self._stop.set()

    @property
    def info(self) -> DeviceInfo | None:
        return self._info


async def measure(rate_hz: float, seconds: float, db: Path) -> Result:
    plan: Plan = parse_plan(PLAN_TEXT, "bench")
    sensor = SteppingSensor(rate_hz)
    records = Records.open(db)
    writer = records.begin(plan_name=plan.name, plan_source="bench", plan_text=PLAN_TEXT,
                           devices=[])  # fmt: skip

    def make_runner(sink: SessionSink) -> SessionRunner:
        return SessionRunner(plan, sensor, writer, sink)

    app = LiveApp(plan, make_runner, [sensor._info], linger_s=None)
    frames = 0
    original_display = app._display

    def counting_display(screen: Any, renderable: Any) -> None:
        nonlocal frames
        frames += 1
        original_display(screen, renderable)

    app._display = counting_display  # type: ignore[method-assign]
    latencies: list[float] = []
    lags: list[float] = []
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            loop = asyncio.get_running_loop()
            digits = app.live.query_one("#force-value")
            cpu0, wall0 = time.process_time(), time.perf_counter()
            frames0 = frames
            delivered0 = sensor.delivered
            chart = app.live.query_one("ForceChart")
            redraws0 = getattr(chart, "redraws", 0)
            seen = 0
            deadline = wall0 + seconds
            next_beat = loop.time() + HEARTBEAT_S
            while time.perf_counter() < deadline:
                await asyncio.sleep(max(0.0, next_beat - loop.time()))
                lags.append(max(0.0, loop.time() - next_beat))
                next_beat += HEARTBEAT_S
                # A step is on screen once the digits show its force (one decimal, in N).
                while seen < len(sensor.steps):
                    at, force = sensor.steps[seen]
                    if f"{force:.1f}" in str(getattr(digits, "value", "")):
                        latencies.append(time.perf_counter() - at)
                        seen += 1
                    elif time.perf_counter() - at > 2.0:
                        seen += 1  # never shown (superseded): not a latency
                    else:
                        break
            cpu = time.process_time() - cpu0
            elapsed = time.perf_counter() - wall0
            delivered = sensor.delivered - delivered0
            frame_count = frames - frames0
            chart_redraws = getattr(chart, "redraws", 0) - redraws0
            await pilot.press("s")
            await pilot.press("q")
    finally:
        records.close()
    return Result(rate_hz, elapsed, delivered, latencies, frame_count, chart_redraws,
                  lags, cpu)  # fmt: skip


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _row(r: Result) -> str:
    ms = 1000.0
    return (
        f"| {r.rate_hz:.0f} Hz | {r.samples / r.seconds:.0f} | "
        f"{statistics.median(r.latencies_s) * ms:.0f} / {_pct(r.latencies_s, 0.95) * ms:.0f} / "
        f"{max(r.latencies_s) * ms:.0f} ({len(r.latencies_s)}) | "
        f"{r.frames / r.seconds:.1f} | {r.chart_redraws / r.seconds:.1f} | "
        f"{statistics.median(r.lags_s) * ms:.1f} / {_pct(r.lags_s, 0.99) * ms:.1f} / "
        f"{max(r.lags_s) * ms:.1f} | {100 * r.cpu_s / r.seconds:.0f} % |"
    )


async def main_async(seconds: float) -> str:
    with tempfile.TemporaryDirectory() as folder:
        fast = await measure(1000.0, seconds, Path(folder) / "fast.db")
        slow = await measure(50.0, seconds, Path(folder) / "slow.db")
    header = (
        "| input | samples/s delivered | sample-to-digits latency ms: median / p95 / max (steps) "
        "| screen updates/s | chart redraws/s | loop lag ms: median / p99 / max | CPU |\n"
        "|---|---|---|---|---|---|---|"
    )
    ratio = statistics.median(fast.latencies_s) / statistics.median(slow.latencies_s)
    text = "\n".join(
        [
            header,
            _row(fast),
            _row(slow),
            "",
            f"Median latency at 1 kHz is {ratio:.2f}x that at 50 Hz; CPU "
            f"{fast.cpu_s / max(slow.cpu_s, 1e-9):.2f}x.",
            f"Run: {seconds:.0f} s each, Python {platform.python_version()}, "
            f"{platform.machine()}, {time.strftime('%Y-%m-%d')}.",
        ]
    )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="per rate (default 20)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    text = asyncio.run(main_async(args.seconds))
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
