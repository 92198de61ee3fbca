"""Simulated BLE peripherals served as a bleak backend, so the real ``BleakClient`` and
``BleakScanner`` code paths run against them.

A :class:`SimRegistry` maps addresses to :class:`SimPeripheral`s (name, advertised services, a
GATT device). Bind the backends to a registry and hand them to bleak::

    registry = SimRegistry()
    registry.add(progressor_peripheral(ProgressorDevice(model, clock=loop.time)))
    client_backend, scanner_backend = registry.backends()
    device = await BleakScanner.find_device_by_name("Progressor", backend=scanner_backend)
    async with BleakClient(device, backend=client_backend) as client: ...

Like a real peripheral, one accepts one central at a time and stops advertising while
connected. Notifications are pumped by one task per link at the device's pace (deadlines
against ``loop.time()``; give the device ``clock=loop.time``); the task ends with the link.
This module and ``drivers.transport.ble`` are the only ones that import bleak.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError
from bleak.uuids import normalize_uuid_str

from protocols.progressor import (
    ADVERTISED_NAME_PREFIX,
    CONTROL_POINT_UUID,
    DATA_POINT_UUID,
    DFU_SERVICE_UUID,
    SERVICE_UUID,
)

from .progressor import ProgressorDevice

__all__ = [
    "ADVERTISING_INTERVAL_S",
    "CCCD_UUID",
    "GattDevice",
    "ProgressorGatt",
    "SimBleakClient",
    "SimBleakScanner",
    "SimCharacteristic",
    "SimPeripheral",
    "SimRegistry",
    "SimService",
    "default_registry",
    "progressor_peripheral",
]

Property = Literal["read", "write", "write-without-response", "notify", "indicate"]

CCCD_UUID = normalize_uuid_str("2902")
# Real peripherals advertise every 20 ms to 10 s; 50 ms lets a scan find one at once in tests.
ADVERTISING_INTERVAL_S = 0.05
# The default ATT_MTU: simulated links do not negotiate a larger one.
_MTU = 23


@dataclass(frozen=True)
class SimCharacteristic:
    uuid: str
    properties: tuple[Property, ...]


@dataclass(frozen=True)
class SimService:
    uuid: str
    characteristics: tuple[SimCharacteristic, ...]


class GattDevice(Protocol):
    """A device-side model behind a GATT table. ``now`` is the event loop's clock."""

    @property
    def services(self) -> Sequence[SimService]: ...

    def connect(self) -> None: ...

    def disconnect(self) -> None: ...

    def write(self, char_uuid: str, data: bytes) -> None: ...

    def notifications(self, now: float) -> list[tuple[str, bytes]]: ...

    def next_deadline(self) -> float | None: ...

    def should_disconnect(self, now: float) -> bool: ...


@dataclass
class SimPeripheral:
    """One simulated peripheral; ``simulated`` is always True, so nobody mistakes it."""

    address: str
    name: str | None
    device: GattDevice
    service_uuids: list[str] = field(default_factory=list)
    rssi: int = -60
    connected: bool = False

    @property
    def simulated(self) -> bool:
        return True


class ProgressorGatt:
    """A :class:`~simulators.progressor.ProgressorDevice` behind the Progressor's GATT table."""

    services: Sequence[SimService] = (
        SimService(
            SERVICE_UUID,
            (
                SimCharacteristic(DATA_POINT_UUID, ("notify",)),
                SimCharacteristic(CONTROL_POINT_UUID, ("write", "write-without-response")),
            ),
        ),
        SimService(DFU_SERVICE_UUID, ()),
    )

    def __init__(self, device: ProgressorDevice) -> None:
        self.device = device

    def connect(self) -> None:
        self.device.connect()

    def disconnect(self) -> None:
        self.device.disconnect()

    def write(self, char_uuid: str, data: bytes) -> None:
        if char_uuid != CONTROL_POINT_UUID:
            raise BleakError(f"characteristic {char_uuid} is not writable")
        self.device.write(data)

    def notifications(self, now: float) -> list[tuple[str, bytes]]:
        return [(DATA_POINT_UUID, data) for data in self.device.notifications(now)]

    def next_deadline(self) -> float | None:
        return self.device.next_deadline()

    def should_disconnect(self, now: float) -> bool:
        return self.device.should_disconnect(now)


def progressor_peripheral(
    device: ProgressorDevice,
    *,
    address: str = "F0:0D:5E:ED:00:01",
    name: str = f"{ADVERTISED_NAME_PREFIX} SIM",
) -> SimPeripheral:
    """A simulated Progressor advertising its name and service, as the real one does."""
    return SimPeripheral(address, name, ProgressorGatt(device), service_uuids=[SERVICE_UUID])


class SimRegistry:
    """The simulated radio neighbourhood: address → peripheral."""

    def __init__(self) -> None:
        self._peripherals: dict[str, SimPeripheral] = {}

    def add(self, peripheral: SimPeripheral) -> SimPeripheral:
        key = peripheral.address.upper()
        if key in self._peripherals:
            raise ValueError(f"a peripheral with address {peripheral.address} exists already")
        self._peripherals[key] = peripheral
        return peripheral

    def remove(self, address: str) -> None:
        self._peripherals.pop(address.upper(), None)

    def get(self, address: str) -> SimPeripheral | None:
        return self._peripherals.get(address.upper())

    def __iter__(self) -> Iterator[SimPeripheral]:
        return iter(list(self._peripherals.values()))

    def backends(self) -> tuple[type[SimBleakClient], type[SimBleakScanner]]:
        """Client and scanner backend classes bound to this registry, for bleak's ``backend=``."""
        registry = self

        class BoundClient(SimBleakClient):
            default_registry: ClassVar[SimRegistry] = registry

        class BoundScanner(SimBleakScanner):
            default_registry: ClassVar[SimRegistry] = registry

        # bleak reports a custom backend by its class name (``backend_id``).
        BoundClient.__name__ = BoundClient.__qualname__ = "SimBleakClient"
        BoundScanner.__name__ = BoundScanner.__qualname__ = "SimBleakScanner"
        return BoundClient, BoundScanner


default_registry = SimRegistry()
"""What the unbound backends serve; ``registry=`` (an extra bleak argument) overrides it."""


class SimBleakScanner(BaseBleakScanner):
    """Hears every advertising (unconnected) peripheral once per advertising interval."""

    default_registry: ClassVar[SimRegistry] = default_registry

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        *,
        registry: SimRegistry | None = None,
        advertising_interval_s: float = ADVERTISING_INTERVAL_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._registry = registry or self.default_registry
        self._interval_s = advertising_interval_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is not None:
            raise BleakError("the scanner is running already")
        self.seen_devices = {}
        self._task = asyncio.create_task(self._listen(), name="sim-ble-scanner")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self) -> None:
        # Advertisements arrive after start() returns, as from a radio, so callbacks that
        # bleak registers after starting (advertisement_data, find_device_*) hear them too.
        while True:
            await asyncio.sleep(0)
            for peripheral in self._registry:
                if not peripheral.connected:
                    self._hear(peripheral)
            await asyncio.sleep(self._interval_s)

    def _hear(self, peripheral: SimPeripheral) -> None:
        uuids = [normalize_uuid_str(u) for u in peripheral.service_uuids]
        if not self.is_allowed_uuid(uuids):
            return
        adv = AdvertisementData(
            local_name=peripheral.name,
            manufacturer_data={},
            service_data={},
            service_uuids=uuids,
            tx_power=None,
            rssi=peripheral.rssi,
            platform_data=(peripheral,),
        )
        address = peripheral.address
        device = self.create_or_update_device(address, address, peripheral.name, peripheral, adv)
        self.call_detection_callbacks(device, adv)


class SimBleakClient(BaseBleakClient):
    """A central's link to one simulated peripheral."""

    default_registry: ClassVar[SimRegistry] = default_registry

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float = 10.0,
        registry: SimRegistry | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._registry = registry or self.default_registry
        self._peripheral: SimPeripheral | None = None
        self._callbacks: dict[str, NotifyCallback] = {}
        self._pump: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def name(self) -> str:
        peripheral = self._peripheral or self._registry.get(self.address)
        return (peripheral.name if peripheral else None) or self.address

    @property
    def mtu_size(self) -> int:
        return _MTU

    @property
    def is_connected(self) -> bool:
        return self._peripheral is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self._peripheral is not None:
            return
        peripheral = self._registry.get(self.address)
        if peripheral is None:
            raise BleakDeviceNotFoundError(self.address, f"Device {self.address} not found")
        if peripheral.connected:
            raise BleakError(f"{self.address} is connected to another central")
        self.services = _service_collection(peripheral.device.services)
        peripheral.connected = True
        peripheral.device.connect()
        self._peripheral = peripheral
        self._pump = asyncio.create_task(self._run_pump(peripheral), name="sim-ble-pump")

    async def disconnect(self) -> None:
        pump, self._pump = self._pump, None
        self._drop_link()
        if pump is not None and pump is not asyncio.current_task():
            pump.cancel()
            try:
                await pump
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the caller itself is being cancelled, not just the pump

    def _drop_link(self) -> bool:
        """End the link on both sides; False if there was none."""
        peripheral, self._peripheral = self._peripheral, None
        self._callbacks.clear()
        if peripheral is None:
            return False
        peripheral.connected = False
        peripheral.device.disconnect()
        return True

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        return None  # simulated links need no pairing

    async def unpair(self) -> None:
        return None

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        self._link()
        raise BleakError(f"characteristic {characteristic.uuid} is not readable")

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        self._link()
        enabled = descriptor.characteristic_uuid in self._callbacks
        return bytearray(b"\x01\x00" if enabled else b"\x00\x00")

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        peripheral = self._link()
        wanted = "write" if response else "write-without-response"
        if wanted not in characteristic.properties:
            raise BleakError(f"characteristic {characteristic.uuid} does not allow {wanted}")
        peripheral.device.write(characteristic.uuid, bytes(data))
        self._wake.set()

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        self._link()
        raise BleakError(f"descriptor {descriptor.uuid} is not writable")

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        self._link()
        if "notify" not in characteristic.properties:
            raise BleakError(f"characteristic {characteristic.uuid} does not notify")
        self._callbacks[characteristic.uuid] = callback

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        self._link()
        self._callbacks.pop(characteristic.uuid, None)

    def _link(self) -> SimPeripheral:
        if self._peripheral is None:
            raise BleakError("Not connected")
        return self._peripheral

    async def _run_pump(self, peripheral: SimPeripheral) -> None:
        """Deliver the device's notifications when due, until the device drops the link."""
        loop = asyncio.get_running_loop()
        device = peripheral.device
        while True:
            now = loop.time()
            for uuid, data in device.notifications(now):
                self._deliver(uuid, data)
            if device.should_disconnect(now):
                self._lose_link()
                return
            await self._sleep_until(device.next_deadline())

    def _deliver(self, uuid: str, data: bytes) -> None:
        # A notification with notifications off (CCCD clear) is never sent, as on the air.
        callback = self._callbacks.get(uuid)
        if callback is not None:
            callback(bytearray(data))

    async def _sleep_until(self, deadline: float | None) -> None:
        """Wait for ``deadline`` (loop time), or until the host writes something."""
        self._wake.clear()
        delay = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns the wake-up's result
        # and drops a cancellation that arrived at the same moment (disconnect() right after a
        # write), leaving this task waiting for ever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()

    def _lose_link(self) -> None:
        self._pump = None  # this task is ending: disconnect() must not wait for it
        if self._drop_link() and self._disconnected_callback is not None:
            self._disconnected_callback()


def _service_collection(services: Sequence[SimService]) -> BleakGATTServiceCollection:
    """bleak's view of a GATT table, with handles numbered as a server would."""
    collection = BleakGATTServiceCollection()
    handle = 0
    for sim_service in services:
        handle += 1
        service = BleakGATTService(sim_service, handle, normalize_uuid_str(sim_service.uuid))
        collection.add_service(service)
        for sim_char in sim_service.characteristics:
            handle += 2  # the declaration, then the value handle bleak reports
            char = BleakGATTCharacteristic(
                sim_char,
                handle,
                normalize_uuid_str(sim_char.uuid),
                list(sim_char.properties),
                lambda: _MTU - 3,
                service,
            )
            collection.add_characteristic(char)
            if {"notify", "indicate"} & set(sim_char.properties):
                handle += 1
                collection.add_descriptor(BleakGATTDescriptor(None, handle, CCCD_UUID, char))
    return collection
