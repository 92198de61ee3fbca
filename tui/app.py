"""The terminal UI's live session app: runs a session and shows it on the live screen.

``LiveApp`` builds the session runner with a :class:`tui.sink.TuiSink` (through the caller's
``make_runner``), runs ``runner.run()`` as an asyncio task in the app's loop (the runner is async
I/O, not a thread), and exits with the :class:`devicectl.session.SessionResult`.

Keys, in the footer: ``s`` EMERGENCY STOP (a priority binding: it works in every state and in
every modal), ``space`` confirm, ``p`` pause/resume, ``n`` next step, ``t`` tare, ``+``/``=`` and
``-`` raise/lower the band ("too little" / "too much"), ``f`` client feedback, ``q`` quit (asks
while the session runs), and with simulated hands ``h`` press/release and ``a`` automatic.
Ctrl-C (and Ctrl-Q) stop the session first, then quit.

When the session ends by itself the end state stays on screen until ``q``/Enter/Escape, or
``linger_s`` seconds (default 5 s: long enough to read the result, short enough that a demo or a
script ends by itself; None waits for the key). Quitting ends without lingering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.timer import Timer

from devicectl.dose import SessionDose
from devicectl.plan import Plan
from devicectl.session import DeviceInfo, SessionResult, SessionRunner, SessionSink
from devicectl.timing.types import Command, SessionState
from tui.hands import Hands
from tui.live import FeedbackModal, LiveScreen, QuitModal
from tui.sink import TuiSink

__all__ = ["END_LINGER_S", "SHUTDOWN_TIMEOUT_S", "LiveApp"]

# The end state stays this long before the app closes by itself (a key closes it at once).
END_LINGER_S = 5.0
# Closing the app while the session still runs: how long to wait for the runner to stop every
# actuator and close the record. The runner's own close is bounded; this only guards a hang.
SHUTDOWN_TIMEOUT_S = 5.0
# The actions that act on the running session (disabled once it has ended).
_SESSION_ACTIONS = frozenset(
    {"stop", "confirm", "pause", "next", "tare", "band", "feedback", "hands_press", "hands_auto"}
)


class LiveApp(App[SessionResult | None]):
    """Runs one session on the live screen. ``devices``: the T-bar first, then any others.

    ``hands``: simulated hands on the T-bar (``devicectl demo``); the ``h``/``a`` keys show only
    when given. After ``run_async()``, ``session_error`` holds an exception the runner raised
    (the runner has stopped every actuator and closed the record before raising).
    """

    CSS_PATH = Path(__file__).with_name("live.tcss")
    TITLE = "devicectl"
    # The command palette's footer entry would push the session keys off an 80-column footer.
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [  # noqa: RUF012
        # Most important first: an 80-column footer cuts the last ones.
        Binding("s", "stop", "STOP", priority=True),
        Binding("space", "confirm", "go"),
        Binding("p", "pause", "pause"),
        Binding("q", "quit_session", "quit"),
        Binding("n", "next", "next"),
        Binding("t", "tare", "tare"),
        Binding("plus,equals_sign", "band('up')", "more", key_display="+"),
        Binding("minus", "band('down')", "less", key_display="-"),
        Binding("f", "feedback", "feedback"),
        Binding("h", "hands_press", "press"),
        Binding("a", "hands_auto", "auto"),
        Binding("enter,escape", "leave", show=False),
        Binding("ctrl+c", "interrupt", show=False, priority=True),
    ]

    def __init__(
        self,
        plan: Plan,
        make_runner: Callable[[SessionSink], SessionRunner],
        devices: Sequence[DeviceInfo],
        hands: Hands | None = None,
        *,
        linger_s: float | None = END_LINGER_S,
    ) -> None:
        super().__init__()
        self.plan = plan
        self.make_runner = make_runner
        self.devices = tuple(devices)
        self.hands = hands
        self.linger_s = linger_s
        self.sink = TuiSink(bell=lambda: self.bell())
        self.runner: SessionRunner | None = None
        self.result: SessionResult | None = None
        self.session_error: BaseException | None = None
        self._session: asyncio.Task[None] | None = None
        self._closing = False
        self._quitting = False
        self._pressing = False
        self._linger: Timer | None = None

    # -- the session ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """The session has started and not ended."""
        return self.runner is not None and self.result is None and self.session_error is None

    @property
    def live(self) -> LiveScreen:
        screen = self.get_screen("live")
        assert isinstance(screen, LiveScreen)
        return screen

    def on_mount(self) -> None:
        runner = self.make_runner(self.sink)
        self.runner = runner
        self.install_screen(
            LiveScreen(
                self.plan,
                self.sink,
                self.devices,
                self._dose_now,
                tbar_now=lambda: runner.sensor.info,
            ),
            name="live",
        )
        self.push_screen("live")
        # A task of our own rather than a Textual worker: Textual cancels its workers before the
        # app unmounts, and a cancelled runner records "interrupted" without the stop command.
        self._session = asyncio.create_task(self._run_session(runner), name="session")

    def _dose_now(self) -> SessionDose:
        assert self.runner is not None
        return self.runner.core.dose(self.runner.clock())

    async def _run_session(self, runner: SessionRunner) -> None:
        try:
            result = await runner.run()
        except Exception as exc:  # the runner stopped every actuator and closed the record
            self.session_error = exc
            self.exit(None, return_code=1)
            return
        self._ended(runner, result)

    def _ended(self, runner: SessionRunner, result: SessionResult) -> None:
        self.result = result
        if self._closing:
            return
        if isinstance(self.screen, QuitModal):  # "stop the session?" no longer means anything
            self.pop_screen()
        self.refresh_bindings()
        if self._quitting:
            self.exit(result)
            return
        # The runner reports no status after its end: the final one, so the end state shows.
        self.sink.status(runner.core.status(runner.clock()))
        self.live.show_end(result, self.linger_s)
        if self.linger_s is not None:
            self._linger = self.set_timer(self.linger_s, self.action_leave)

    async def on_unmount(self) -> None:
        """The app closes with the session still running (an error elsewhere, a closed terminal,
        a test's end): stop every actuator first, then let the runner close the record."""
        self._closing = True
        task = self._session
        if task is None or task.done():
            return
        if self.running and self.runner is not None:
            if self._exception is not None:  # the screen crashed: not a stop anyone chose
                self.runner.abort(f"the terminal UI failed: {self._exception!r}")
            else:
                self.runner.command(Command.STOP, reason="the terminal UI closed")
        try:
            async with asyncio.timeout(SHUTDOWN_TIMEOUT_S):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The session keys only while it runs (dimmed after); ``h``/``a`` only with hands."""
        if action.startswith("hands_") and self.hands is None:
            return False
        if action in _SESSION_ACTIONS and not self.running:
            return None
        return True

    # -- keys -------------------------------------------------------------------------------------

    def _command(self, command: Command, reason: str = "") -> None:
        if self.runner is not None and self.running:
            self.runner.command(command, reason=reason)

    def action_stop(self) -> None:
        """The emergency stop: every actuator is stopped at once (the runner's first action)."""
        self._command(Command.STOP, "stop key")

    def action_confirm(self) -> None:
        self._command(Command.CONFIRM)

    def action_pause(self) -> None:
        status = self.sink.latest
        paused = status is not None and status.state is SessionState.PAUSED
        self._command(Command.RESUME if paused else Command.PAUSE)

    def action_next(self) -> None:
        self._command(Command.NEXT)

    def action_tare(self) -> None:
        """Tare as a side task, so the stop key never waits behind it; a refusal is logged."""
        runner = self.runner
        if runner is None or not self.running:
            return
        refusal = runner.tare_refusal()
        if refusal is not None:
            self.live.note(refusal, "warning")
            return
        runner.keep(asyncio.create_task(runner.tare(), name="tare"))

    def action_band(self, direction: str) -> None:
        """Raise (the client says "too little") or lower ("too much") the target band."""
        if self.runner is None or not self.running:
            return
        if direction == "up":
            self.runner.adjust_band("up", "too little")
        else:
            self.runner.adjust_band("down", "too much")

    def action_feedback(self) -> None:
        if self.running:
            self.push_screen(FeedbackModal(), self._feedback)

    def _feedback(self, answer: tuple[int, str] | None) -> None:
        if answer is None or self.runner is None or not self.running:
            return
        score, note = answer
        self.runner.feedback(score, note)  # recorded with the time, and told to the alert log

    def action_quit_session(self) -> None:
        """Quit: while the session runs, ask first (then stop it); after its end, leave."""
        if not self.running:
            self.action_leave()
        elif not isinstance(self.screen, QuitModal):
            self.push_screen(QuitModal(), self._quit_answer)

    def _quit_answer(self, stop: bool | None) -> None:
        if stop and self.running:
            self._quitting = True
            self._command(Command.STOP, "quit")
        elif stop:
            self.action_leave()

    def action_interrupt(self) -> None:
        """Ctrl-C: stop the session first (every actuator), then quit."""
        self.interrupt("interrupted (Ctrl-C)")

    def interrupt(self, reason: str) -> None:
        """Ctrl-C or SIGTERM: stop the session first (every actuator), then quit."""
        if self.runner is not None and self.running:
            self._quitting = True
            self.runner.interrupt(reason)
        else:
            self.action_leave()

    async def action_quit(self) -> None:
        """Textual's own quit (Ctrl-Q) behaves as Ctrl-C: the session is stopped first."""
        self.action_interrupt()

    def action_leave(self) -> None:
        """Leave once the session has ended (a no-op while it runs)."""
        if not self.running:
            self.exit(self.result)

    def action_hands_press(self) -> None:
        """The person at the keyboard presses or lifts the simulated T-bar."""
        if self.hands is None:
            return
        if self._pressing:
            self.hands.release()
            self.live.note("keyboard: T-bar released")
        else:
            self.hands.press()
            self.live.note("keyboard: T-bar pressed")
        self._pressing = not self._pressing

    def action_hands_auto(self) -> None:
        """Give the T-bar back to the simulated therapist."""
        if self.hands is None:
            return
        self.hands.automatic()
        self._pressing = False
        self.live.note("the simulated therapist has the T-bar again")
