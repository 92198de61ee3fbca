"""The hands on a simulated T-bar: who presses it, the simulated therapist or the keyboard.

The live screen only needs this much; the composition root implements it for simulated devices
(``devicectl demo``), so the terminal UI never imports a simulator.
"""

from __future__ import annotations

from typing import Protocol


class Hands(Protocol):
    """Who presses a simulated T-bar.

    ``press``/``release`` take over from the simulated therapist (``manual`` becomes True) and
    press or lift the tip; ``automatic`` gives the T-bar back to the simulated therapist.
    """

    def press(self) -> None: ...

    def release(self) -> None: ...

    def automatic(self) -> None: ...

    @property
    def manual(self) -> bool: ...
