"""Transports: the byte links drivers talk through (see :mod:`drivers.transport.base`)."""

from drivers.transport.base import Transport
from drivers.transport.serial import SerialTransport

__all__ = ["SerialTransport", "Transport"]
