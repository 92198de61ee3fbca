"""Helpers for the TUI tests: wait for a condition under Pilot, and a tiny host app.

``pilot.pause()`` with no delay waits for the CPU to go idle, which with a live source can cost a
second each time; ``wait_until`` pauses briefly inside a bounded loop until its predicate holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widget import Widget

POLL_S = 0.02  # long enough for Textual to process a batch of messages, short for a test
# Generous: it bounds only a failing wait, and the suite runs in parallel workers on 2 cores.
WAIT_S = 15.0


async def wait_until(
    pilot: Pilot[Any], predicate: Callable[[], bool], timeout_s: float = WAIT_S
) -> None:
    """Pause the app until ``predicate()`` is true; fail with TimeoutError after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await pilot.pause(POLL_S)


class HostApp(App[object]):
    """Hosts widgets (composed on the default screen) and/or a screen pushed at mount.

    ``result`` keeps what the pushed screen dismissed with; ``dismissed`` says it did.
    """

    def __init__(
        self,
        widgets: Callable[[], Iterable[Widget]] | None = None,
        screen: Callable[[], Screen[Any]] | None = None,
    ) -> None:
        super().__init__()
        self._widgets = widgets
        self._screen = screen
        self.result: object = None
        self.dismissed = False

    def compose(self) -> ComposeResult:
        if self._widgets is not None:
            yield from self._widgets()

    def on_mount(self) -> None:
        if self._screen is not None:
            self.push_screen(self._screen(), self._on_dismiss)

    def _on_dismiss(self, result: object) -> None:
        self.result = result
        self.dismissed = True
