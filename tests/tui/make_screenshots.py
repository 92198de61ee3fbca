"""Save SVG screenshots of the history and session screens (a demo-like session) into docs/.

Run by hand: ``python -m tests.tui.make_screenshots``. The data are the deterministic demo session
the history tests build, in a temporary database.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from tests.tui.support import HostApp, wait_until
from tests.tui.test_history import build_history_db
from tui.history import HistoryScreen, SessionScreen

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SIZE = (100, 30)  # between the compact 80x24 and the roomy 120x40 layouts
TIMEOUT_S = 10.0  # loading a small session takes well under a second


async def shoot(db: Path) -> list[Path]:
    app = HostApp(screen=lambda: HistoryScreen(db))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), TIMEOUT_S)
        await pilot.pause(0.1)
        history = OUT / "history.svg"
        history.write_text(app.export_screenshot(title="devicectl: history"), encoding="utf-8")
        await pilot.press("enter")
        await wait_until(pilot, lambda: getattr(app.screen, "data", None) is not None, TIMEOUT_S)
        assert isinstance(app.screen, SessionScreen)
        await pilot.pause(0.1)
        session = OUT / "session.svg"
        session.write_text(app.export_screenshot(title="devicectl: session"), encoding="utf-8")
    return [history, session]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "sessions.db"
        build_history_db(db)
        for path in asyncio.run(shoot(db)):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
