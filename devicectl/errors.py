"""The core's errors. One root, a few branches with fields; the CLI maps them to exit codes.

Device errors have their own root in :mod:`drivers.errors` (drivers may not import this package).
"""

from __future__ import annotations


class DevicectlError(Exception):
    """Root of every error the core raises on purpose."""


class PlanError(DevicectlError):
    """A plan file that cannot be used. Says where (file, step, field) and what is allowed."""

    def __init__(
        self, source: str, message: str, *, step: int | None = None, field: str | None = None
    ) -> None:
        self.source = source
        self.step = step
        self.field = field
        self.message = message
        where = source
        if step is not None:
            where += f": step {step}"
        if field is not None:
            where += f": {field}"
        super().__init__(f"{where}: {message}")


class AddressError(DevicectlError):
    """A device address that cannot be parsed or names an unknown model."""


class RecordsError(DevicectlError):
    """The session records cannot be read or written (missing session, unwritable database)."""


class SessionError(DevicectlError):
    """A command the timing core cannot carry out in its current state."""
