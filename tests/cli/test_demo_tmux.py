"""`devicectl demo` for real, inside tmux: the live screen on a real terminal, read back with
``tmux capture-pane`` (docs: shared/reference/libraries.md, "tmux runs a Textual app for real")."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from devicectl.records import Records
from tests.cli.helpers import ROOT
from tests.conftest import require_tool

# Starting Python, Textual and the simulated gauge takes a few seconds on a busy machine.
SCREEN_TIMEOUT_S = 30.0
# The screen is read this often while waiting for something to show.
POLL_S = 0.1
# The demo plan's first hold starts after a 3 s pause and a ramp; its 4 s of in-band time follow.
HOLD_TIMEOUT_S = 40.0
_DOSE = re.compile(r"dose\s+\S*\s+(\d+\.\d)/4 s")


class Tmux:
    def __init__(self, tmux: str, socket: str) -> None:
        self.tmux = tmux
        self.socket = socket

    async def run(self, *args: str, timeout_s: float = 20.0) -> str:
        proc = await asyncio.create_subprocess_exec(
            self.tmux, "-L", self.socket, *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
        assert proc.returncode == 0, err.decode()
        return out.decode()

    async def screen(self) -> str:
        return await self.run("capture-pane", "-p", "-t", "demo")

    async def until(self, predicate: Callable[[str], bool], timeout_s: float) -> str:
        """The screen once ``predicate`` holds for it, read at most every POLL_S for
        ``timeout_s`` (a terminal's screen has no event to await)."""
        text = ""
        for _ in range(round(timeout_s / POLL_S)):
            text = await self.screen()
            if predicate(text):
                return text
            await asyncio.sleep(POLL_S)
        raise AssertionError(f"the screen never matched; last screen:\n{text}")


@pytest.fixture
async def tmux(tmp_path: Path) -> AsyncIterator[Tmux]:
    session = Tmux(require_tool("tmux"), f"devicectl-test-{os.getpid()}-{tmp_path.name}")
    try:
        yield session
    finally:
        proc = await asyncio.create_subprocess_exec(
            session.tmux, "-L", session.socket, "kill-server",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.wait_for(proc.wait(), 10)


def _digits(screen: str) -> list[str]:
    """The big force digits: the first columns of the screen's top three lines."""
    return [line[:14] for line in screen.splitlines()[:3]]


def _dose(screen: str) -> float | None:
    found = _DOSE.search(screen)
    return None if found is None else float(found.group(1))


async def test_demo_runs_for_real_in_a_terminal_and_stops_on_the_stop_key(
    tmux: Tmux, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    exit_file = tmp_path / "exit"
    command = (
        f"cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} -m devicectl demo "
        f"--db {shlex.quote(str(db))}; echo $? > {shlex.quote(str(exit_file))}; "
        f"{shlex.quote(tmux.tmux)} -L {tmux.socket} wait-for -S exited; sleep 60"
    )
    await tmux.run("new-session", "-d", "-s", "demo", "-x", "100", "-y", "35", command)

    first = await tmux.until(lambda s: "SIMULATED" in s and "STOP" in s, SCREEN_TIMEOUT_S)
    assert "demo site A" in first or "pause" in first
    # The hold timer counts: the dose progress of the first hold rises.
    counting = await tmux.until(lambda s: (_dose(s) or 0.0) > 0.5, HOLD_TIMEOUT_S)
    await tmux.until(lambda s: (_dose(s) or 0.0) > (_dose(counting) or 0.0), 10)
    # The force changes too: the big digits (the top-left corner of the screen).
    await tmux.until(lambda s: _digits(s) != _digits(counting), 10)

    await tmux.run("send-keys", "-t", "demo", "s")
    await tmux.until(lambda s: "session stopped" in s, SCREEN_TIMEOUT_S)
    await tmux.run("send-keys", "-t", "demo", "q")
    # Signalled by the shell once devicectl has exited (closing the session and its records
    # can take seconds on a machine running the suite in parallel).
    await tmux.run("wait-for", "exited", timeout_s=SCREEN_TIMEOUT_S)
    assert exit_file.read_text().strip() == "130"  # stopped by the stop key
    store = Records.open(db)
    try:
        [session] = store.sessions()
        assert session.status == "stopped"
        assert session.samples > 100
        assert [d.simulated for d in session.devices] == [True]
    finally:
        store.close()


async def test_closing_the_terminal_stops_and_records_the_session(
    tmux: Tmux, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    command = (
        f"cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} -m devicectl demo "
        f"--db {shlex.quote(str(db))}"
    )
    await tmux.run("new-session", "-d", "-s", "demo", "-x", "100", "-y", "35", command)
    await tmux.until(lambda s: "SIMULATED" in s and "STOP" in s, SCREEN_TIMEOUT_S)
    await tmux.run("kill-session", "-t", "demo")  # the terminal goes: SIGHUP
    status = "running"
    for _ in range(round(SCREEN_TIMEOUT_S / POLL_S)):
        status, reason = _ending(db)
        if status != "running":
            break
        await asyncio.sleep(POLL_S)  # the record has no event to await: read it again
    assert status == "stopped"
    assert reason == "the terminal closed (SIGHUP)"


def _ending(db: Path) -> tuple[str, str]:
    """The session's status and why it ended, read without recovery (which would mark a
    session still being closed as interrupted)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        [(status,)] = conn.execute("SELECT status FROM sessions").fetchall()
        reasons = conn.execute(
            "SELECT message FROM events WHERE kind = 'session.stopped'"
        ).fetchall()
    return status, reasons[0][0] if reasons else ""
