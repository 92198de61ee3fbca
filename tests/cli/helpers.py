"""Run ``devicectl`` in a subprocess, the way a user does, with bounded waits."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]


# Short holds so a whole session over a pty takes seconds, not the demo's minute.
FAST_PLAN = """
name = "fast"
units = "N"
[[steps]]
type = "pause"
duration_s = 1
note = "get ready"
[[steps]]
type = "hold"
site = "calf L"
target = [20, 40]
hold_s = 1.5
rest_s = 1
repeat = 2
ceiling = 80
[[steps]]
type = "hold"
site = "calf R"
target = [20, 40]
hold_s = 1.5
rest_s = 1
repeat = 1
ceiling = 80
"""


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONUNBUFFERED"] = "1"
    return e


async def spawn(*args: str, keyboard: bool = False) -> asyncio.subprocess.Process:
    """``keyboard``: stdin is a pipe the test writes key lines to; else /dev/null."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devicectl",
        *args,
        stdin=asyncio.subprocess.PIPE if keyboard else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=env(),
    )


async def devicectl(*args: str, limit_s: float = 90.0) -> Done:
    proc = await spawn(*args)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Done(proc.returncode, out.decode(), err.decode())


async def read_json_until(
    proc: asyncio.subprocess.Process, predicate: Any, limit_s: float
) -> list[dict[str, Any]]:
    """Read JSON lines from the process until one satisfies ``predicate``; return all read."""
    assert proc.stdout is not None
    seen: list[dict[str, Any]] = []

    async def _read() -> None:
        assert proc.stdout is not None
        while True:
            line = await proc.stdout.readline()
            if not line:
                raise AssertionError(f"process ended before the awaited line; saw {seen[-5:]}")
            if line.startswith(b"{"):
                seen.append(json.loads(line))
                if predicate(seen[-1]):
                    return

    await asyncio.wait_for(_read(), limit_s)
    return seen
