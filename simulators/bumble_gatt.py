"""Simulated BLE peripherals served as real GATT servers on an in-process Bumble link.

Where :mod:`simulators.ble_backend` fakes the whole radio at the level of bleak's API, this
module runs Google's Bumble Bluetooth stack twice over: every :class:`~simulators.ble_backend.
SimPeripheral` becomes a ``bumble.device.Device`` on its own virtual ``Controller``, and every
central (see :mod:`simulators.bumble_backend`) another one, all attached to one
``bumble.link.LocalLink``. What travels between them is real: HCI to each controller,
advertising PDUs, LL connection set-up and termination, L2CAP, and ATT with real handles, so a
central discovers the table, enables notifications by writing the CCCD, and gets ATT
Handle Value Notifications only after that write::

    async with BumbleWorld() as world:
        server = await world.add(progressor_peripheral(device, address=ADDRESS))
        client_backend, scanner_backend = world.backends()
        driver = Progressor(client_backend=client_backend, scanner_backend=scanner_backend)

What each :class:`BumblePeripheral` does:

* advertises (connectable, every :data:`ADVERTISING_INTERVAL_MS`) the flags, the complete lists
  of its service UUIDs and its complete local name, and stops while a central is connected;
  Bumble's ``auto_restart`` starts advertising again when the link goes down;
* builds its GATT table from ``device.services``: a characteristic gets the properties asked
  for, a notify/indicate one gets a CCCD (Bumble adds it), a write one routes each ATT write
  (request or command) to ``device.write(uuid, data)``; a readable one reads as empty (the
  :class:`~simulators.ble_backend.GattDevice` protocol has no reads); a read or write the
  properties do not allow is answered with the ATT error "read/write not permitted";
* runs one pump task per connection: at each of the device's deadlines (on ``loop.time()``; give
  the device ``clock=loop.time``), or at once after a write, it takes what the device sends and
  notifies the central *only if that central's CCCD for the characteristic has notifications
  on*, counting what it sent and what it withheld (:class:`ServerStats`);
* drops the link (LL terminate, "remote user terminated") when ``device.should_disconnect``
  says so, which is how the disconnect fault and ENTER_SLEEP reach the central.

The virtual controller carries the whole advertising payload in each advertising PDU and echoes
it as the scan response, so, unlike a real adapter, it does not hold legacy advertising to
31 bytes; a Progressor's 128-bit service UUID and name (37 bytes with the flags) go out whole.
Bumble's link delivers everything with ``call_soon``: connecting and discovery take a few ms.

Only ``simulators`` import bumble; it is a test dependency (the ``test`` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Self

from bumble import att
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData, BaseBumbleError
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.hci import Address, Role
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from .ble_backend import GattDevice, SimPeripheral, SimService

if TYPE_CHECKING:
    from .bumble_backend import BumbleBleakClient, BumbleBleakScanner

__all__ = [
    "ADVERTISING_INTERVAL_MS",
    "BumblePeripheral",
    "BumbleWorld",
    "ServerStats",
    "address_text",
    "bleak_uuid",
]

_log = logging.getLogger(__name__)

# The shortest interval the spec allows for connectable advertising (Vol 6, Part B, 4.4.2.2):
# a scan or a connection request hears the peripheral within 20 ms of real time.
ADVERTISING_INTERVAL_MS = 20.0
# AD flags: LE General Discoverable (0x02) | BR/EDR Not Supported (0x04), as a BLE-only
# peripheral advertises them (Core Supplement, Part A, 1.3).
_AD_FLAGS = bytes([0x06])
# Centrals get random static addresses (top two bits 11, Vol 6, Part B, 1.3.2.1) in this block,
# far from the peripherals' usual ones.
_CENTRAL_ADDRESS_BASE = 0xC0_5E_00_00_00_00
# How long stop() waits for a link to go down before it powers the devices off regardless:
# the virtual link answers within a few event-loop turns.
_STOP_TIMEOUT_S = 1.0

_PROPERTY_FLAGS = {
    "read": Characteristic.Properties.READ,
    "write": Characteristic.Properties.WRITE,
    "write-without-response": Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
    "notify": Characteristic.Properties.NOTIFY,
    "indicate": Characteristic.Properties.INDICATE,
}


def bleak_uuid(uuid: UUID) -> str:
    """A Bumble UUID as bleak spells every UUID: 128-bit, lower case, with dashes."""
    text = bytes(reversed(uuid.to_bytes(force_128=True))).hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _key(uuid: str) -> str:
    return bleak_uuid(UUID(uuid))


def address_text(address: Address) -> str:
    """``AA:BB:CC:DD:EE:FF``, without Bumble's address-type suffix."""
    return address.to_string(with_type_qualifier=False)


@dataclass
class ServerStats:
    """What the GATT server did, for tests to inspect."""

    connections: int = 0  # centrals that connected
    links_dropped: int = 0  # links the peripheral ended (disconnect fault, sleep)
    writes: int = 0  # ATT writes (requests and commands) routed to the device
    write_errors: int = 0  # writes the device refused: answered with an ATT error
    cccd_writes: int = 0  # CCCD writes by centrals, whatever the value
    notifications_sent: int = 0  # ATT Handle Value Notifications sent
    notifications_withheld: int = 0  # made by the device while the central's CCCD was off


class BumblePeripheral:
    """One :class:`SimPeripheral` as a Bumble GATT server; made by :meth:`BumbleWorld.add`."""

    def __init__(self, link: LocalLink, sim: SimPeripheral, controller_name: str) -> None:
        self.sim = sim
        self.stats = ServerStats()
        self.address = Address(sim.address)
        self.controller = Controller(controller_name, link=link)
        self.device = Device(
            name=sim.name or "",
            address=self.address,
            host=Host(self.controller, AsyncPipeSink(self.controller)),
        )
        self._characteristics: dict[str, Characteristic[bytes]] = {}
        self.device.add_services(self._services(sim.device.services))
        self.device.on(Device.EVENT_CONNECTION, self._on_connection)
        self._connection: Connection | None = None
        self._pump: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._failure: BaseException | None = None
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ inspection

    @property
    def connection(self) -> Connection | None:
        """The connected central's link, if any."""
        return self._connection

    async def wait_until(self, predicate: Callable[[ServerStats], bool]) -> None:
        """Return once ``predicate(stats)`` holds; it is checked at every change of the
        stats. Wrap it in a timeout (``asyncio.wait_for``)."""
        while not predicate(self.stats):
            self._changed.clear()
            await self._changed.wait()

    def _counted(self) -> None:
        self._changed.set()  # wake wait_until()

    def value_handle(self, char_uuid: str) -> int:
        """The ATT handle of a characteristic's value."""
        return self._characteristic(char_uuid).handle

    def cccd_handle(self, char_uuid: str) -> int:
        """The ATT handle of a characteristic's CCCD (it follows the value in Bumble's table)."""
        characteristic = self._characteristic(char_uuid)
        if not characteristic.properties & (
            Characteristic.Properties.NOTIFY | Characteristic.Properties.INDICATE
        ):
            raise KeyError(f"characteristic {char_uuid} has no CCCD")
        return characteristic.end_group_handle

    def cccd_value(self, char_uuid: str) -> bytes:
        """The connected central's CCCD for ``char_uuid`` as the server holds it
        (``01 00``: notifications on); ``00 00`` with no central."""
        characteristic = self._characteristic(char_uuid)
        connection = self._connection
        if connection is None:
            return bytes(2)
        return self.device.gatt_server.read_cccd(connection, characteristic)

    def _characteristic(self, char_uuid: str) -> Characteristic[bytes]:
        try:
            return self._characteristics[_key(char_uuid)]
        except KeyError:
            raise KeyError(f"no characteristic {char_uuid} on {self.sim.address}") from None

    # ------------------------------------------------------------------ GATT table

    def _services(self, services: Sequence[SimService]) -> Iterator[Service]:
        for sim_service in services:
            characteristics: list[Characteristic[bytes]] = []
            for sim_char in sim_service.characteristics:
                properties = Characteristic.Properties(0)
                for name in sim_char.properties:
                    properties |= _PROPERTY_FLAGS[name]
                writable = bool(
                    properties
                    & (
                        Characteristic.Properties.WRITE
                        | Characteristic.Properties.WRITE_WITHOUT_RESPONSE
                    )
                )
                permissions = att.Attribute.Permissions(0)
                if properties & Characteristic.Properties.READ:
                    permissions |= att.Attribute.Permissions.READABLE
                if writable:
                    permissions |= att.Attribute.Permissions.WRITEABLE
                uuid = _key(sim_char.uuid)  # as bleak and SimBleakClient spell it
                value: CharacteristicValue[bytes] = CharacteristicValue(
                    read=_read_empty
                    if permissions & att.Attribute.Permissions.READABLE
                    else _refuse_read,
                    write=self._writer(uuid) if writable else _refuse_write,
                )
                characteristic: Characteristic[bytes] = Characteristic(
                    uuid, properties, permissions, value
                )
                characteristic.on(Characteristic.EVENT_SUBSCRIPTION, self._on_subscription)
                self._characteristics[uuid] = characteristic
                characteristics.append(characteristic)
            yield Service(sim_service.uuid, characteristics)

    def _writer(self, uuid: str) -> Callable[[Connection, bytes], None]:
        def write(_connection: Connection, value: bytes) -> None:
            self._on_write(uuid, value)

        return write

    def _on_write(self, uuid: str, data: bytes) -> None:
        self.stats.writes += 1
        self._counted()
        try:
            self.sim.device.write(uuid, bytes(data))
        except Exception as exc:
            # A device refusing a write answers it as a server would, not by breaking the stack.
            self.stats.write_errors += 1
            self._counted()
            _log.warning("%s refused a write to %s: %s", self.sim.address, uuid, exc)
            raise att.ATT_Error(att.ATT_UNLIKELY_ERROR_ERROR) from exc
        self._wake.set()  # an answer may be due now, before the next sample

    def _on_subscription(self, _bearer: object, _notify: bool, _indicate: bool) -> None:
        self.stats.cccd_writes += 1
        self._counted()

    # ------------------------------------------------------------------ advertising

    def advertising_data(self) -> bytes:
        """Flags, the complete service UUID lists (by size) and the complete local name."""
        structures: list[tuple[int, bytes]] = [(AdvertisingData.Type.FLAGS, _AD_FLAGS)]
        by_size: dict[int, bytes] = {}
        for text in self.sim.service_uuids:
            raw = UUID(text).to_bytes()
            by_size[len(raw)] = by_size.get(len(raw), b"") + raw
        list_types = {
            2: AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            4: AdvertisingData.Type.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
            16: AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        }
        structures += [(list_types[size], raw) for size, raw in sorted(by_size.items())]
        if self.sim.name:
            structures.append((AdvertisingData.Type.COMPLETE_LOCAL_NAME, self.sim.name.encode()))
        return bytes(AdvertisingData(structures))

    async def start(self) -> None:
        """Power on and advertise."""
        await self.device.power_on()
        await self.device.start_advertising(
            auto_restart=True,  # advertise again whenever a link goes down
            advertising_data=self.advertising_data(),
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )

    async def stop(self) -> None:
        """Drop any link, stop advertising, stop the pump and power off. Raises what a pump
        task failed with, if one did."""
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(BaseBumbleError, TimeoutError):
                await asyncio.wait_for(connection.disconnect(), _STOP_TIMEOUT_S)
        await self._stop_pump()
        await self.device.stop_advertising()
        await self.device.power_off()
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    # ------------------------------------------------------------------ links

    def _on_connection(self, connection: Connection) -> None:
        if connection.role != Role.PERIPHERAL:
            return
        self.stats.connections += 1
        self._counted()
        self._connection = connection
        self.sim.connected = True
        self.sim.device.connect()
        connection.on(Connection.EVENT_DISCONNECTION, lambda _reason: self._on_lost(connection))
        self._pump = asyncio.create_task(self._run_pump(connection), name="bumble-gatt-pump")
        self._pump.add_done_callback(self._pump_done)

    def _on_lost(self, connection: Connection) -> None:
        if connection is not self._connection:
            return
        self._connection = None
        self.sim.connected = False
        self.sim.device.disconnect()
        pump = self._pump
        if pump is not None and pump is not asyncio.current_task():
            pump.cancel()

    def _pump_done(self, task: asyncio.Task[None]) -> None:
        if self._pump is task:
            self._pump = None
        if not task.cancelled() and (error := task.exception()) is not None:
            _log.error("%s: the notification pump failed: %r", self.sim.address, error)
            self._failure = self._failure or error

    async def _stop_pump(self) -> None:
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def _run_pump(self, connection: Connection) -> None:
        """Send the device's notifications when due, until the device drops the link."""
        loop = asyncio.get_running_loop()
        device: GattDevice = self.sim.device
        while True:
            now = loop.time()
            for uuid, data in device.notifications(now):
                await self._notify(connection, uuid, data)
            if device.should_disconnect(now):
                self.stats.links_dropped += 1
                self._counted()
                # The central may have gone meanwhile; either way the link is down.
                with contextlib.suppress(BaseBumbleError):
                    await connection.disconnect()
                return
            await self._sleep_until(device.next_deadline())

    async def _notify(self, connection: Connection, uuid: str, data: bytes) -> None:
        characteristic = self._characteristic(uuid)
        cccd = self.device.gatt_server.read_cccd(connection, characteristic)
        if not cccd[0] & 0x01:
            # Notifications off for this central: a server sends none (Vol 3, Part G, 3.3.3.3).
            self.stats.notifications_withheld += 1
            self._counted()
            return
        await self.device.notify_subscriber(connection, characteristic, data)
        self.stats.notifications_sent += 1
        self._counted()

    async def _sleep_until(self, deadline: float | None) -> None:
        """Wait for ``deadline`` (loop time), or until the central writes something."""
        self._wake.clear()
        delay = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)


def _read_empty(_connection: Connection) -> bytes:
    return b""


# Bumble's server leaves permission checks to the attribute's value: without these, a request
# the table does not allow would get no answer at all and the central would wait for its
# 30 s ATT timeout.
def _refuse_read(_connection: Connection) -> bytes:
    raise att.ATT_Error(att.ATT_READ_NOT_PERMITTED_ERROR)


def _refuse_write(_connection: Connection, _value: bytes) -> None:
    raise att.ATT_Error(att.ATT_WRITE_NOT_PERMITTED_ERROR)


class BumbleWorld:
    """One virtual radio neighbourhood: a ``LocalLink``, the peripherals on it, and centrals
    handed out to the bleak backends. Use it as an async context manager (or call
    :meth:`start`/:meth:`stop`); :meth:`stop` ends every link and leaves nothing running."""

    def __init__(self) -> None:
        self.link = LocalLink()  # type: ignore[no-untyped-call]
        self._peripherals: dict[str, BumblePeripheral] = {}
        self._centrals: list[tuple[Device, Controller]] = []
        self._made = 0
        self._running = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        for peripheral in self._peripherals.values():
            await peripheral.start()

    async def stop(self) -> None:
        """Release every central, then stop every peripheral; raises a pump's failure."""
        self._running = False
        for device, controller in self._centrals:
            await self._power_down(device, controller)
        self._centrals.clear()
        failures: list[BaseException] = []
        for peripheral in self._peripherals.values():
            try:
                await peripheral.stop()
            except Exception as exc:
                failures.append(exc)
            self._remove_controller(peripheral.controller)
        self._peripherals.clear()
        if failures:
            raise failures[0]

    async def add(self, sim: SimPeripheral) -> BumblePeripheral:
        """Serve ``sim`` on the link (advertising at once if the world is running)."""
        key = sim.address.upper()
        if key in self._peripherals:
            raise ValueError(f"a peripheral with address {sim.address} exists already")
        self._made += 1
        peripheral = BumblePeripheral(self.link, sim, f"peripheral-{self._made}")
        self._peripherals[key] = peripheral
        if self._running:
            await peripheral.start()
        return peripheral

    def get(self, address: str) -> BumblePeripheral | None:
        return self._peripherals.get(address.upper())

    def __iter__(self) -> Iterator[BumblePeripheral]:
        return iter(list(self._peripherals.values()))

    async def central(self) -> Device:
        """A powered-on central on its own controller; give it back with :meth:`release`."""
        if not self._running:
            raise RuntimeError("the Bumble world is not running: use 'async with BumbleWorld()'")
        self._made += 1
        controller = Controller(f"central-{self._made}", link=self.link)
        device = Device(
            name=f"central-{self._made}",
            address=_central_address(self._made),
            host=Host(controller, AsyncPipeSink(controller)),
        )
        self._centrals.append((device, controller))
        await device.power_on()
        return device

    async def release(self, device: Device) -> None:
        """Power a central off and take its controller off the link."""
        for entry in self._centrals:
            if entry[0] is device:
                self._centrals.remove(entry)
                await self._power_down(*entry)
                return

    async def _power_down(self, device: Device, controller: Controller) -> None:
        for connection in list(device.connections.values()):
            with contextlib.suppress(BaseBumbleError, TimeoutError):
                await asyncio.wait_for(connection.disconnect(), _STOP_TIMEOUT_S)
        if device.is_scanning:
            await device.stop_scanning()
        await device.power_off()
        self._remove_controller(controller)

    def _remove_controller(self, controller: Controller) -> None:
        if controller in self.link.controllers:
            self.link.remove_controller(controller)

    def backends(self) -> tuple[type[BumbleBleakClient], type[BumbleBleakScanner]]:
        """bleak client and scanner backend classes whose centrals live in this world."""
        from .bumble_backend import bound_backends

        return bound_backends(self)


def _central_address(n: int) -> Address:
    value = (_CENTRAL_ADDRESS_BASE + n).to_bytes(6, "big")
    return Address(":".join(f"{b:02X}" for b in value))
