"""The BLE transport: one link to one peripheral, over bleak 3.x.

BLE is not a byte stream: a device is reached through characteristics (write to one, get
notifications from another), so drivers talk to a :class:`BleLink` rather than to the
byte-stream :class:`~drivers.transport.base.Transport`. Each notification is one whole message.

This is the only module of the drivers that imports bleak. Its errors, and the plain
``FileNotFoundError`` bleak's BlueZ backend raises where there is no D-Bus system bus, are
translated into :mod:`drivers.errors` exactly once, here.

Tests and ``devicectl sim`` pass bleak backend classes (``client_backend``/``scanner_backend``,
e.g. :mod:`simulators.ble_backend`'s); by default bleak picks the platform's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakCharacteristicNotFoundError,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
)

from drivers.capture import CaptureLog
from drivers.errors import (
    BluetoothUnavailable,
    DeviceDisconnected,
    DeviceError,
    DeviceFault,
    DeviceNotFound,
    DeviceTimeout,
)

__all__ = [
    "CONNECT_TIMEOUT_S",
    "SCAN_TIMEOUT_S",
    "Advertisement",
    "BleLink",
    "BluetoothUnavailable",
    "scan",
    "translate_ble_error",
]

# A switched-on peripheral advertises at least every 1-2 s; 10 s is several chances to hear it
# and still short enough that a user is not left wondering.
SCAN_TIMEOUT_S = 10.0
# Connecting (and discovering services) takes well under 5 s with a peripheral in range;
# bleak's own default of 30 s is far too long to tell a user their device is not answering.
CONNECT_TIMEOUT_S = 15.0

_UNAVAILABLE_HINT = (
    "check that the machine has a Bluetooth adapter, that it is switched on, and (on Linux) "
    "that the bluetooth service and D-Bus are running"
)
_LOST_HINT = "check that the device is on, charged and in range"

NotificationCallback = Callable[[bytes], None]


@dataclass(frozen=True)
class Advertisement:
    """One peripheral heard during a scan."""

    address: str
    name: str | None
    service_uuids: tuple[str, ...]
    rssi: int


def translate_ble_error(name: str, exc: BaseException, *, connected: bool) -> DeviceError:
    """The DeviceError for what bleak (or the OS under it) raised; ``connected`` says whether
    the link was still up after the failure."""
    if isinstance(exc, FileNotFoundError | BleakBluetoothNotAvailableError):
        # No D-Bus system bus (BlueZ's backend raises a bare FileNotFoundError), no adapter,
        # or the adapter is off.
        return BluetoothUnavailable(
            name, f"Bluetooth is not available on this machine ({exc})", hint=_UNAVAILABLE_HINT
        )
    if isinstance(exc, BleakDeviceNotFoundError):
        return DeviceNotFound(name, "no such device in range", hint=_LOST_HINT)
    if isinstance(exc, BleakCharacteristicNotFoundError):
        message = f"the device has no characteristic {exc.char_specifier}"
        return DeviceError(name, message, hint="is this really the model it claims to be?")
    if not connected:
        return DeviceDisconnected(name, f"the Bluetooth link was lost: {exc}", hint=_LOST_HINT)
    if isinstance(exc, BleakGATTProtocolError):
        return DeviceFault(name, f"the device refused the request: {exc}", code=exc.code.name)
    return DeviceError(name, f"Bluetooth error: {exc}")


def _matches(
    adv: AdvertisementData, device: BLEDevice, name_prefix: str | None, service_uuid: str | None
) -> bool:
    if service_uuid is not None and service_uuid.lower() not in adv.service_uuids:
        return False
    if name_prefix is None:
        return True
    name = adv.local_name or device.name or ""
    return name.startswith(name_prefix)


async def scan(
    *,
    timeout_s: float = 5.0,
    name_prefix: str | None = None,
    service_uuids: Sequence[str] = (),
    scanner_backend: type[BaseBleakScanner] | None = None,
) -> list[Advertisement]:
    """Every peripheral heard within ``timeout_s`` that matches the filters, by address."""
    heard: dict[str, Advertisement] = {}

    def on_advertisement(device: BLEDevice, adv: AdvertisementData) -> None:
        if _matches(adv, device, name_prefix, None):
            name = adv.local_name or device.name
            uuids = tuple(adv.service_uuids)
            heard[device.address] = Advertisement(device.address, name, uuids, adv.rssi)

    try:
        scanner = BleakScanner(
            on_advertisement, list(service_uuids) or None, backend=scanner_backend
        )
        async with scanner:
            await asyncio.sleep(timeout_s)  # scanning *is* waiting: collect for this long
    except (OSError, BleakError) as exc:
        raise translate_ble_error("bluetooth", exc, connected=False) from exc
    return sorted(heard.values(), key=lambda a: a.address)


class BleLink:
    """A link to one BLE peripheral, by address or by the first one matching a filter.

    Args:
        address: connect to this address; without it, scan for the first peripheral whose
            local name starts with ``name_prefix`` and/or that advertises ``service_uuid``.
        model: the model's name for messages ("no Progressor found within 10 s ...").
        scan_timeout_s, connect_timeout_s: how long to look for and to connect to the device.
        disconnected_callback: called (no arguments) when the link is lost without
            :meth:`disconnect` having been called.
        client_backend, scanner_backend: bleak backend classes; bleak's own by default.
        capture: a :class:`~drivers.capture.CaptureLog` that records every write and
            notification with its characteristic, and the link's open/close/disconnect.

    Every method raises :class:`~drivers.errors.DeviceError` subclasses only.
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        name_prefix: str | None = None,
        service_uuid: str | None = None,
        model: str = "device",
        scan_timeout_s: float = SCAN_TIMEOUT_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        disconnected_callback: Callable[[], None] | None = None,
        client_backend: type[BaseBleakClient] | None = None,
        scanner_backend: type[BaseBleakScanner] | None = None,
        capture: CaptureLog | None = None,
    ) -> None:
        for label, value in (("scan", scan_timeout_s), ("connect", connect_timeout_s)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{label}_timeout_s must be a positive number, not {value!r}")
        self._address = address
        self._name_prefix = name_prefix
        self._service_uuid = service_uuid
        self._model = model
        self._scan_timeout_s = scan_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._on_lost = disconnected_callback
        self._client_backend = client_backend
        self._scanner_backend = scanner_backend
        self._capture = capture
        self._client: BleakClient | None = None
        self._closing = False

    @property
    def name(self) -> str:
        """A label for messages: the model and address, such as ``Progressor@ble:AA:BB:...``."""
        return f"{self._model}@ble" + (f":{self._address}" if self._address else "")

    @property
    def address(self) -> str | None:
        """The peripheral's address: as given, or once a scan found it."""
        return self._address

    @property
    def is_connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    async def connect(self) -> None:
        if self._client is not None:
            raise RuntimeError(f"{self.name}: already connected")
        target: BLEDevice | str = self._address or await self._find()
        try:
            client = BleakClient(
                target,
                self._lost,
                timeout=self._connect_timeout_s,
                backend=self._client_backend,
            )
            await client.connect()
        except TimeoutError as exc:
            message = f"did not answer the connection within {self._connect_timeout_s:g} s"
            raise DeviceTimeout(self.name, message, hint=_LOST_HINT) from exc
        except (OSError, BleakError) as exc:
            raise translate_ble_error(self.name, exc, connected=False) from exc
        self._client, self._closing = client, False
        self._log_event("open", self.name)

    async def _find(self) -> BLEDevice:
        prefix, uuid = self._name_prefix, self._service_uuid

        def wanted(device: BLEDevice, adv: AdvertisementData) -> bool:
            return _matches(adv, device, prefix, uuid)

        extra: BleakScanner.ExtraArgs = {}
        if uuid is not None:
            extra["service_uuids"] = [uuid]
        if self._scanner_backend is not None:
            extra["backend"] = self._scanner_backend
        try:
            device = await BleakScanner.find_device_by_filter(
                wanted, timeout=self._scan_timeout_s, **extra
            )
        except (OSError, BleakError) as exc:
            raise translate_ble_error(self.name, exc, connected=False) from exc
        if device is None:
            message = (
                f"no {self._model} found within {self._scan_timeout_s:g} s; "
                "is it switched on and not connected to a phone?"
            )
            raise DeviceNotFound(self.name, message)
        self._address = device.address
        return device

    async def subscribe(self, char_uuid: str, callback: NotificationCallback) -> None:
        """Deliver each notification of ``char_uuid`` (as bytes) to ``callback``."""
        client = self._connected()

        def on_notify(_: BleakGATTCharacteristic, data: bytearray) -> None:
            if self._capture is not None:
                self._capture.device_to_host(bytes(data), char=char_uuid)
            callback(bytes(data))

        try:
            await client.start_notify(char_uuid, on_notify)
        except (OSError, BleakError) as exc:
            raise translate_ble_error(self.name, exc, connected=client.is_connected) from exc

    async def write(self, char_uuid: str, data: bytes, *, response: bool) -> None:
        """Write ``data`` to ``char_uuid``, with or without the peripheral's acknowledgement."""
        client = self._connected()
        if self._capture is not None:  # before the write: an answer may arrive during it
            self._capture.host_to_device(data, char=char_uuid)
        try:
            await client.write_gatt_char(char_uuid, data, response=response)
        except (OSError, BleakError) as exc:
            self._log_event("error", f"write: {exc}")
            raise translate_ble_error(self.name, exc, connected=client.is_connected) from exc

    async def disconnect(self) -> None:
        """Release the link (so another central, such as the vendor's app, can connect).
        Idempotent; never raises."""
        client, self._client = self._client, None
        if client is None:
            return
        self._closing = True
        self._log_event("close")
        # The link is gone either way, which is what disconnecting wants.
        with contextlib.suppress(OSError, BleakError):
            await client.disconnect()

    def _connected(self) -> BleakClient:
        client = self._client
        if client is None or not client.is_connected:
            raise DeviceDisconnected(self.name, "the Bluetooth link is not connected")
        return client

    def _lost(self, client: BleakClient) -> None:
        if self._closing or client is not self._client:
            return  # our own disconnect, or an old link
        self._log_event("disconnect", "the Bluetooth link was lost")
        if self._on_lost is not None:
            self._on_lost()

    def _log_event(self, name: str, detail: str = "") -> None:
        if self._capture is not None:
            self._capture.event(name, detail)

    def __repr__(self) -> str:
        return f"BleLink({self.name!r})"
