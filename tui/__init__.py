"""The Textual terminal UI: the live session screen, the start screen and the history.

Imports point one way: ``devicectl.cli`` → ``tui`` → ``devicectl`` (the core) → ``drivers`` →
``protocols``. Nothing in the core imports this package, and it never imports simulators.
"""
