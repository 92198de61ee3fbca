"""Device errors. One root with a few branches; each carries the device and a hint a user can
act on.

Library errors (pyserial's, bleak's, OSError) are translated into these exactly once, at the
transport.
"""

from __future__ import annotations


class DeviceError(Exception):
    """Root of every device error. ``hint`` says what the user can do about it."""

    def __init__(self, device: str, message: str, *, hint: str = "") -> None:
        self.device = device
        self.message = message
        self.hint = hint
        text = f"{device}: {message}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class DeviceNotFound(DeviceError):
    """The port, host or peripheral does not exist or does not answer a connection."""


class BluetoothUnavailable(DeviceNotFound):
    """There is no usable Bluetooth stack or adapter on this machine (raised by the BLE
    transport, which alone imports bleak)."""


class DevicePermissionDenied(DeviceError):
    """The OS refused access to the device (on Linux: not in the ``dialout`` group)."""


class DeviceTimeout(DeviceError):
    """The device is connected but gives no valid replies in time."""


class DeviceDisconnected(DeviceError):
    """The link was lost while in use."""


class DeviceFault(DeviceError):
    """The device reported an error of its own (``code`` as the device gives it)."""

    def __init__(self, device: str, message: str, *, code: str, hint: str = "") -> None:
        self.code = code
        super().__init__(device, message, hint=hint)


class DeviceMisconfigured(DeviceError):
    """The device answers, but a setting (on the device or in the address) keeps the driver
    from reading it correctly, e.g. a gauge that prints readings without their unit."""


class UnsupportedCommand(DeviceError):
    """The model lacks this capability."""
