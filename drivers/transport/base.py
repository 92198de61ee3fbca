"""The transport seam: the one narrow interface every driver talks through.

A transport moves bytes; framing and meaning belong to the codecs in :mod:`protocols`.
"""

from __future__ import annotations

from typing import Protocol


class Transport(Protocol):
    """A byte link to one device.

    ``open`` and ``read``/``write`` raise :class:`drivers.errors.DeviceError` subclasses only.
    ``read`` returns at least one byte, or raises :class:`~drivers.errors.DeviceDisconnected`
    when the link is gone. ``close`` is idempotent and never raises.
    """

    @property
    def name(self) -> str:
        """A label for messages, such as ``/dev/ttyUSB0`` or ``socket://127.0.0.1:7001``."""
        ...

    @property
    def is_open(self) -> bool: ...

    async def open(self) -> None: ...

    async def write(self, data: bytes) -> None: ...

    async def read(self) -> bytes: ...

    async def close(self) -> None: ...
