"""A bleak backend whose radio is a Bumble central on a :class:`~simulators.bumble_gatt.
BumbleWorld`'s virtual link, so the real ``BleakClient``/``BleakScanner`` talk ATT to the
simulated peripherals' real GATT servers::

    async with BumbleWorld() as world:
        await world.add(progressor_peripheral(device))
        client_backend, scanner_backend = world.backends()
        found = await BleakScanner.find_device_by_name("Progressor SIM", backend=scanner_backend)
        async with BleakClient(found, backend=client_backend) as client: ...

Every scanner and every client gets its own central (its own controller on the link), as if each
had an adapter of its own, and gives it back when it stops or disconnects.

* Scanning is active and reports every advertisement (no duplicate filter): bleak's
  ``AdvertisementData`` carries the local name, the service UUIDs (16-, 32- and 128-bit lists,
  normalised by bleak's rules), manufacturer and service data, the TX power and the RSSI; the
  scanner's ``service_uuids`` filter is bleak's ``is_allowed_uuid``.
* Connecting needs the address to be on the link (else ``BleakDeviceNotFoundError``, as BlueZ
  raises for a device it never saw), then an LL connection (which waits for the peripheral to
  advertise: one connected elsewhere does not, so the client's ``timeout`` ends it with
  ``TimeoutError``), then a full ATT discovery of services, characteristics and descriptors
  into a ``BleakGATTServiceCollection`` with the server's handles (a characteristic's handle is
  its *value* handle, the one ATT reads and writes use), and a read of the GAP Device Name.
* ``start_notify`` writes ``01 00`` to the characteristic's CCCD (an ATT Write Request), and
  ``stop_notify`` writes ``00 00``; bleak 3 refuses direct CCCD writes itself.
* ``write_gatt_char`` sends an ATT Write Request (``response=True``) or Write Command. A Write
  Command to a characteristic without *write-without-response* is refused here, since the server
  would drop it silently. ATT error responses become ``BleakGATTProtocolError`` with the code.
* A link the peripheral drops calls bleak's disconnected callback; a request it interrupts fails
  with ``BleakError`` (Bumble cancels the pending response, which must not look like a task
  cancellation to the caller).

The ATT_MTU stays at the default 23: the Progressor simulator batches its samples for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, ClassVar, TypeVar

from bleak.assigned_numbers import gatt_char_props_to_strs
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bumble import att
from bumble.core import UUID, AdvertisingData, BaseBumbleError
from bumble.core import TimeoutError as BumbleTimeoutError
from bumble.device import Advertisement, Connection, Device
from bumble.gatt_client import CharacteristicProxy
from bumble.hci import Address

from .bumble_gatt import BumbleWorld, address_text, bleak_uuid

__all__ = ["BumbleBleakClient", "BumbleBleakScanner", "bound_backends"]

_T = TypeVar("_T")

# GAP Device Name (Assigned Numbers, 3.8): read once after discovery for the client's name.
_DEVICE_NAME_UUID = UUID.from_16_bits(0x2A00)
# bleak's default connection timeout (BleakClient's ``timeout``), used when none is given.
_DEFAULT_TIMEOUT_S = 10.0
# Scan interval and window in ms: scanning continuously (window = interval) hears every
# advertisement; the virtual controller delivers them at once whatever the values.
_SCAN_INTERVAL_MS = 20.0

_UUID_LISTS = (
    AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)
_SERVICE_DATA = (
    AdvertisingData.Type.SERVICE_DATA_16_BIT_UUID,
    AdvertisingData.Type.SERVICE_DATA_32_BIT_UUID,
    AdvertisingData.Type.SERVICE_DATA_128_BIT_UUID,
)


def bound_backends(
    world: BumbleWorld,
) -> tuple[type[BumbleBleakClient], type[BumbleBleakScanner]]:
    """Client and scanner backend classes bound to ``world``, for bleak's ``backend=``."""

    class BoundClient(BumbleBleakClient):
        default_world: ClassVar[BumbleWorld | None] = world

    class BoundScanner(BumbleBleakScanner):
        default_world: ClassVar[BumbleWorld | None] = world

    # bleak reports a custom backend by its class name (``backend_id``).
    BoundClient.__name__ = BoundClient.__qualname__ = "BumbleBleakClient"
    BoundScanner.__name__ = BoundScanner.__qualname__ = "BumbleBleakScanner"
    return BoundClient, BoundScanner


def _world(cls: type[Any], world: BumbleWorld | None) -> BumbleWorld:
    chosen = world or cls.default_world
    if not isinstance(chosen, BumbleWorld):
        raise BleakError("no Bumble world: use BumbleWorld.backends() or pass world=")
    return chosen


def _advertisement_data(advertisement: Advertisement) -> AdvertisementData:
    """bleak's view of one Bumble advertising report."""
    data = advertisement.data
    names = data.get_all(AdvertisingData.Type.COMPLETE_LOCAL_NAME) or data.get_all(
        AdvertisingData.Type.SHORTENED_LOCAL_NAME
    )
    uuids: list[str] = []
    service_data: dict[str, bytes] = {}
    for kind in (*_UUID_LISTS, *_SERVICE_DATA):
        for item in data.get_all(kind):
            # The types' parsers give a list of UUIDs, or a (UUID, bytes) pair for service data.
            if isinstance(item, list):
                uuids += [bleak_uuid(uuid) for uuid in item if isinstance(uuid, UUID)]
            elif isinstance(item, tuple) and isinstance(item[0], UUID):
                service_data[bleak_uuid(item[0])] = bytes(item[1])
    manufacturer = dict(data.get_all(AdvertisingData.Type.MANUFACTURER_SPECIFIC_DATA))
    tx_powers = data.get_all(AdvertisingData.Type.TX_POWER_LEVEL)
    return AdvertisementData(
        local_name=names[0] if names else None,
        manufacturer_data=manufacturer,
        service_data=service_data,
        # Bumble merges an advertisement with its scan response, and the virtual controller
        # echoes the one as the other: each UUID once, in order.
        service_uuids=list(dict.fromkeys(uuids)),
        tx_power=tx_powers[0] if tx_powers else None,
        rssi=advertisement.rssi,
        platform_data=(advertisement,),
    )


class BumbleBleakScanner(BaseBleakScanner):
    """Scans with a central of its own on the world's link."""

    default_world: ClassVar[BumbleWorld | None] = None

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        *,
        world: BumbleWorld | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._world = _world(type(self), world)
        self._active = scanning_mode != "passive"
        self._central: Device | None = None

    async def start(self) -> None:
        if self._central is not None:
            raise BleakError("the scanner is running already")
        self.seen_devices = {}
        central = await self._world.central()
        self._central = central
        central.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        await central.start_scanning(
            active=self._active,
            scan_interval=_SCAN_INTERVAL_MS,
            scan_window=_SCAN_INTERVAL_MS,
            filter_duplicates=False,
        )

    async def stop(self) -> None:
        central, self._central = self._central, None
        if central is not None:
            central.remove_listener(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
            await self._world.release(central)

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        adv = _advertisement_data(advertisement)
        if not self.is_allowed_uuid(adv.service_uuids):
            return
        address = address_text(advertisement.address)
        device = self.create_or_update_device(address, address, adv.local_name, advertisement, adv)
        self.call_detection_callbacks(device, adv)


class BumbleBleakClient(BaseBleakClient):
    """A central's link to one peripheral on the world's link, through Bumble's GATT client."""

    default_world: ClassVar[BumbleWorld | None] = None

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float = _DEFAULT_TIMEOUT_S,
        world: BumbleWorld | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._world = _world(type(self), world)
        self._name = (
            address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        )
        self._central: Device | None = None
        self._connection: Connection | None = None
        self._subscribers: dict[int, Callable[[bytes], None]] = {}
        self._closing = False

    @property
    def name(self) -> str:
        return self._name or self.address

    @property
    def mtu_size(self) -> int:
        connection = self._connection
        return connection.att_mtu if connection is not None else att.ATT_DEFAULT_MTU

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    # ------------------------------------------------------------------ link

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self._connection is not None:
            return
        if self._world.get(self.address) is None:
            raise BleakDeviceNotFoundError(self.address, f"Device {self.address} not found")
        central = await self._world.central()
        self._central, self._closing = central, False
        try:
            async with asyncio.timeout(self._timeout):
                address = Address(self.address)
                connection = await self._att(partial(central.connect, address), on_link=False)
                self._connection = connection
                connection.on(
                    Connection.EVENT_DISCONNECTION, lambda _reason: self._on_lost(connection)
                )
                self.services = await self._discover(connection)
        except BaseException:
            await self.disconnect()
            raise

    async def _discover(self, connection: Connection) -> BleakGATTServiceCollection:
        """The server's whole table, by ATT discovery, as bleak's collection."""
        client = connection.gatt_client
        collection = BleakGATTServiceCollection()
        for proxy in await self._att(client.discover_services):
            service = BleakGATTService(proxy, proxy.handle, bleak_uuid(proxy.uuid))
            collection.add_service(service)
            for char_proxy in await self._att(partial(client.discover_characteristics, (), proxy)):
                char = BleakGATTCharacteristic(
                    char_proxy,
                    char_proxy.handle,
                    bleak_uuid(char_proxy.uuid),
                    sorted(gatt_char_props_to_strs(char_proxy.properties)),
                    lambda: self.mtu_size - 3,  # the ATT Write Command header is 3 bytes
                    service,
                )
                collection.add_characteristic(char)
                for descriptor in await self._att(partial(client.discover_descriptors, char_proxy)):
                    uuid = bleak_uuid(descriptor.type)
                    collection.add_descriptor(
                        BleakGATTDescriptor(descriptor, descriptor.handle, uuid, char)
                    )
                if char_proxy.uuid == _DEVICE_NAME_UUID and self._name is None:
                    raw = await self._att(partial(client.read_value, char_proxy))
                    self._name = raw.decode("utf-8", "replace") or None
        return collection

    async def disconnect(self) -> None:
        """End the link (no disconnected callback for it) and give the central back."""
        self._closing = True
        connection, self._connection = self._connection, None
        central, self._central = self._central, None
        self._subscribers.clear()
        if connection is not None:
            # Already down (the peripheral dropped it meanwhile) is down all the same.
            with contextlib.suppress(BaseBumbleError):
                await connection.disconnect()
        if central is not None:
            await self._world.release(central)

    def _on_lost(self, connection: Connection) -> None:
        if connection is not self._connection:
            return  # an old link, or our own disconnect
        self._connection = None
        self._subscribers.clear()
        if not self._closing and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        return None  # the simulated peripherals need no pairing

    async def unpair(self) -> None:
        return None

    # ------------------------------------------------------------------ ATT

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        client = self._link().gatt_client
        return bytearray(await self._att(partial(client.read_value, characteristic.handle)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        client = self._link().gatt_client
        return bytearray(await self._att(partial(client.read_value, descriptor.handle)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        client = self._link().gatt_client
        if not response and "write-without-response" not in characteristic.properties:
            raise BleakError(
                f"characteristic {characteristic.uuid} does not allow write-without-response"
            )
        await self._att(partial(client.write_value, characteristic.handle, bytes(data), response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        client = self._link().gatt_client
        await self._att(partial(client.write_value, descriptor.handle, bytes(data), True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        client = self._link().gatt_client
        if not {"notify", "indicate"} & set(characteristic.properties):
            raise BleakError(f"characteristic {characteristic.uuid} does not notify")
        proxy = characteristic.obj
        assert isinstance(proxy, CharacteristicProxy)

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        await self._att(partial(client.subscribe, proxy, deliver))
        self._subscribers[characteristic.handle] = deliver

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        client = self._link().gatt_client
        proxy = characteristic.obj
        assert isinstance(proxy, CharacteristicProxy)
        subscriber = self._subscribers.pop(characteristic.handle, None)
        await self._att(partial(client.unsubscribe, proxy, subscriber))

    def _link(self) -> Connection:
        if self._connection is None:
            raise BleakError("Not connected")
        return self._connection

    async def _att(self, request: Callable[[], Awaitable[_T]], *, on_link: bool = True) -> _T:
        """Run one Bumble procedure; its errors, and a link lost meanwhile, become bleak's.

        With ``on_link``, a link already lost fails at once: a request sent on a dead link would
        only end with Bumble's 30 s ATT timeout."""
        if on_link:
            self._link()
        try:
            return await request()
        except att.ATT_Error as exc:
            raise BleakGATTProtocolError(exc.error_code) from exc
        except BumbleTimeoutError as exc:
            raise TimeoutError(str(exc)) from exc
        except BaseBumbleError as exc:
            raise BleakError(f"Bluetooth stack error: {exc}") from exc
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # a real cancellation of the caller
            # Bumble cancels the pending response when the link goes down.
            raise BleakError("Not connected: the link was lost during the request") from None
