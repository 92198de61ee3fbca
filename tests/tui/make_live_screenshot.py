"""Save an SVG screenshot of the live screen mid-hold into docs/screenshots/live.svg.

Run by hand: ``python -m tests.tui.make_live_screenshot [--size COLSxROWS] [--out PATH]``. The
session is the built-in demo plan fed by the tests' scripted sensor on a fake clock: a therapist's
press (ramp, hold with a little tremor, release, rest) through the first site, and the second
repetition of site A stopped half-way through its hold, so every part of the screen has data.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
from pathlib import Path

from devicectl.builtin import builtin_plan
from devicectl.records import Records
from tests.tui.support import wait_until
from tests.tui.test_live import Rig, build_rig
from tui.live import CHART_INTERVAL_S

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "live.svg"
SIZE = (120, 40)  # the roomy layout: everything on screen, the chart large
RATE_HZ = 100  # the simulated gauge's rate: a Mark-10 streams about this fast
TIMEOUT_S = 10.0  # the whole scripted session is processed in well under a second


def press(rig: Rig, seconds: float, force: float, ramp_from: float | None = None) -> None:
    """``seconds`` of samples: ``force`` with a 1 N tremor, or a ramp from ``ramp_from`` to it."""
    count = round(seconds * RATE_HZ)
    for i in range(count):
        if ramp_from is not None:
            value = ramp_from + (force - ramp_from) * (i + 1) / count
        else:
            value = force + (math.sin(rig.clock.t * 7.0) if force > 0 else 0.0)
        rig.push(max(0.0, value), 1.0 / RATE_HZ)


def script(rig: Rig) -> None:
    press(rig, 3.2, 0.0)  # the plan's 3 s "get ready" pause
    press(rig, 1.5, 30.0, ramp_from=0.0)
    press(rig, 4.5, 31.0)  # rep 1 of site A: in band until the release cue
    press(rig, 0.6, 0.0, ramp_from=30.0)
    press(rig, 3.2, 0.0)  # rest
    press(rig, 1.2, 32.0, ramp_from=0.0)
    press(rig, 2.4, 33.0)  # rep 2, half-way through its hold


async def shoot(rig: Rig, size: tuple[int, int]) -> str:
    """The live screen mid-hold, as SVG."""
    async with rig.app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: rig.app.sink.latest is not None, TIMEOUT_S)
        script(rig)
        total = rig.sensor.queue.qsize()
        await wait_until(pilot, lambda: rig.app.sink.samples_seen >= total, TIMEOUT_S)
        drains = rig.screen.chart_drains
        await wait_until(pilot, lambda: rig.screen.chart_drains >= drains + 2, TIMEOUT_S)
        await pilot.pause(CHART_INTERVAL_S)
        return rig.app.export_screenshot(title="devicectl: live session")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default=f"{SIZE[0]}x{SIZE[1]}", help="COLSxROWS")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    cols, rows = (int(x) for x in args.size.split("x"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        records = Records.open(Path(tmp) / "live.db")
        try:
            rig = build_rig(builtin_plan("demo"), records, linger_s=None)
            svg = asyncio.run(shoot(rig, (cols, rows)))
        finally:
            records.close()
    args.out.write_text(svg, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
