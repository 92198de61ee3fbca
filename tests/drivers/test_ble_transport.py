"""The BLE transport: BleLink over the simulator's bleak backend, and error translation."""

from __future__ import annotations

import asyncio
import os

import pytest
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakError,
    BleakGATTProtocolError,
)

from drivers.errors import (
    DeviceDisconnected,
    DeviceError,
    DeviceFault,
    DeviceNotFound,
)
from drivers.transport.ble import BleLink, BluetoothUnavailable, scan, translate_ble_error
from protocols.progressor import (
    ADVERTISED_NAME_PREFIX,
    CONTROL_POINT_UUID,
    DATA_POINT_UUID,
    SERVICE_UUID,
    CommandResponse,
    NotificationDecoder,
    Opcode,
    WeightSamples,
    encode_command,
)
from simulators.ble_backend import SimRegistry, progressor_peripheral
from simulators.force_model import constant
from simulators.progressor import ProgressorDevice, ProgressorFaults

ADDRESS = "F0:0D:5E:ED:00:01"
WAIT_S = 5.0
_HAS_SYSTEM_DBUS = any(
    os.path.exists(p) for p in ("/run/dbus/system_bus_socket", "/var/run/dbus/system_bus_socket")
)


def sim_link(
    faults: ProgressorFaults | None = None, /, **kwargs: object
) -> tuple[BleLink, ProgressorDevice, SimRegistry]:
    loop = asyncio.get_running_loop()
    device = ProgressorDevice(constant(98.0665), clock=loop.time, faults=faults)
    registry = SimRegistry()
    registry.add(progressor_peripheral(device, address=ADDRESS))
    client_backend, scanner_backend = registry.backends()
    link = BleLink(
        model="Progressor",
        client_backend=client_backend,
        scanner_backend=scanner_backend,
        **kwargs,  # type: ignore[arg-type]
    )
    return link, device, registry


class Inbox:
    def __init__(self, want_samples: int = 1) -> None:
        self.decoder = NotificationDecoder()
        self.kg: list[float] = []
        self.responses: list[CommandResponse] = []
        self.want = want_samples
        self.arrived = asyncio.Event()

    def __call__(self, data: bytes) -> None:
        for event in self.decoder.feed(data):
            if isinstance(event, WeightSamples):
                self.kg += [s.kg for s in event.samples]
            elif isinstance(event, CommandResponse):
                self.responses.append(event)
        if len(self.kg) >= self.want or self.responses:
            self.arrived.set()


# ------------------------------------------------------------------ over the simulator


@pytest.mark.parametrize(
    "find",
    [
        {"name_prefix": ADVERTISED_NAME_PREFIX},
        {"service_uuid": SERVICE_UUID},
        {"name_prefix": ADVERTISED_NAME_PREFIX, "service_uuid": SERVICE_UUID.upper()},
        {"address": ADDRESS},
    ],
    ids=["name prefix", "service", "both", "address"],
)
async def test_find_connect_subscribe_stream(find: dict[str, str]) -> None:
    link, device, _ = sim_link(**find)
    inbox = Inbox(want_samples=10)
    await link.connect()
    try:
        assert link.is_connected
        assert link.address == ADDRESS
        await link.subscribe(DATA_POINT_UUID, inbox)
        await link.write(
            CONTROL_POINT_UUID, encode_command(Opcode.START_WEIGHT_MEAS), response=True
        )
        await asyncio.wait_for(inbox.arrived.wait(), WAIT_S)
    finally:
        await link.disconnect()
    assert inbox.kg[:10] == pytest.approx([10.0] * 10)
    assert not link.is_connected
    assert not device.state.measuring


async def test_command_and_response_without_ack() -> None:
    link, _, _ = sim_link(address=ADDRESS)
    inbox = Inbox()
    await link.connect()
    try:
        await link.subscribe(DATA_POINT_UUID, inbox)
        inbox.decoder.expect(Opcode.GET_BATTERY_VOLTAGE)
        command = encode_command(Opcode.GET_BATTERY_VOLTAGE)
        await link.write(CONTROL_POINT_UUID, command, response=False)
        await asyncio.wait_for(inbox.arrived.wait(), WAIT_S)
    finally:
        await link.disconnect()
    assert inbox.responses[0].battery_mv() == 3900


async def test_link_loss_fires_the_callback_and_writes_fail() -> None:
    lost = asyncio.Event()
    faults = ProgressorFaults(disconnect_after_s=0.05)
    link, _, _ = sim_link(faults, address=ADDRESS, disconnected_callback=lost.set)
    await link.connect()
    await asyncio.wait_for(lost.wait(), WAIT_S)
    assert not link.is_connected
    with pytest.raises(DeviceDisconnected, match="not connected"):
        await link.write(CONTROL_POINT_UUID, b"\x65", response=True)
    await link.disconnect()
    await link.disconnect()  # idempotent


async def test_own_disconnect_does_not_fire_the_callback() -> None:
    calls: list[None] = []
    link, _, registry = sim_link(address=ADDRESS, disconnected_callback=lambda: calls.append(None))
    await link.connect()
    await link.disconnect()
    assert calls == []
    peripheral = registry.get(ADDRESS)
    assert peripheral is not None
    assert not peripheral.connected  # released, so the vendor's app could connect


async def test_not_found_within_the_timeout() -> None:
    link, _, registry = sim_link(name_prefix=ADVERTISED_NAME_PREFIX, scan_timeout_s=0.2)
    registry.remove(ADDRESS)
    with pytest.raises(DeviceNotFound) as caught:
        await link.connect()
    assert caught.value.message == (
        "no Progressor found within 0.2 s; is it switched on and not connected to a phone?"
    )


async def test_busy_device_is_not_found_by_a_scan() -> None:
    first, _, registry = sim_link(address=ADDRESS)
    client_backend, scanner_backend = registry.backends()
    second = BleLink(
        name_prefix="Progressor",
        model="Progressor",
        scan_timeout_s=0.2,
        client_backend=client_backend,
        scanner_backend=scanner_backend,
    )
    await first.connect()
    try:
        with pytest.raises(DeviceNotFound, match="not connected to a phone"):
            await second.connect()
    finally:
        await first.disconnect()


async def test_unknown_address() -> None:
    link, _, _ = sim_link(address="00:11:22:33:44:55")
    with pytest.raises(DeviceNotFound) as caught:
        await link.connect()
    assert isinstance(caught.value.__cause__, BleakError)


async def test_bleak_errors_in_use_are_translated() -> None:
    link, _, _ = sim_link(address=ADDRESS)
    await link.connect()
    try:
        with pytest.raises(DeviceError, match="does not allow write") as caught:
            await link.write(DATA_POINT_UUID, b"\x01", response=True)
        assert type(caught.value) is DeviceError  # the link is still up: not a disconnect
        assert isinstance(caught.value.__cause__, BleakError)
        with pytest.raises(DeviceError, match="has no characteristic"):
            await link.subscribe("0000abcd-0000-1000-8000-00805f9b34fb", lambda _: None)
    finally:
        await link.disconnect()


async def test_operations_before_connect() -> None:
    link, _, _ = sim_link(address=ADDRESS)
    with pytest.raises(DeviceDisconnected):
        await link.subscribe(DATA_POINT_UUID, lambda _: None)


async def test_scan_lists_matching_advertisements() -> None:
    _, _, registry = sim_link()
    _, scanner_backend = registry.backends()
    found = await scan(timeout_s=0.1, name_prefix="Prog", scanner_backend=scanner_backend)
    assert [(a.address, a.name, a.service_uuids) for a in found] == [
        (ADDRESS, "Progressor SIM", (SERVICE_UUID,))
    ]
    assert await scan(timeout_s=0.1, name_prefix="Nope", scanner_backend=scanner_backend) == []


def test_timeouts_are_validated() -> None:
    with pytest.raises(ValueError, match="scan_timeout_s"):
        BleLink(name_prefix="P", scan_timeout_s=0)


# ------------------------------------------------------------------ no Bluetooth on this machine


@pytest.mark.skipif(_HAS_SYSTEM_DBUS, reason="this machine has a D-Bus system bus")
@pytest.mark.parametrize("how", [{"address": ADDRESS}, {"name_prefix": "Progressor"}])
async def test_default_backend_without_bluetooth(how: dict[str, str]) -> None:
    link = BleLink(model="Progressor", scan_timeout_s=0.5, **how)  # type: ignore[arg-type]
    with pytest.raises(BluetoothUnavailable, match="Bluetooth is not available on this machine"):
        await link.connect()


@pytest.mark.skipif(_HAS_SYSTEM_DBUS, reason="this machine has a D-Bus system bus")
async def test_default_backend_raises_file_not_found_here() -> None:
    link = BleLink(address=ADDRESS, model="Progressor")
    with pytest.raises(DeviceNotFound) as caught:
        await link.connect()
    assert isinstance(caught.value.__cause__, FileNotFoundError)  # what bleak really raises
    with pytest.raises(BluetoothUnavailable) as scanned:
        await scan(timeout_s=0.1)
    assert isinstance(scanned.value.__cause__, FileNotFoundError)


def test_translation_table() -> None:
    off = BleakBluetoothNotAvailableError("off", BleakBluetoothNotAvailableReason.POWERED_OFF)
    assert isinstance(translate_ble_error("d", off, connected=False), BluetoothUnavailable)
    lost = translate_ble_error("d", BleakError("gone"), connected=False)
    assert isinstance(lost, DeviceDisconnected)
    assert "the Bluetooth link was lost: gone" in str(lost)
    refused = translate_ble_error("d", BleakGATTProtocolError(0x03), connected=True)
    assert isinstance(refused, DeviceFault)
    assert refused.code == "WRITE_NOT_PERMITTED"
    assert isinstance(translate_ble_error("d", OSError("x"), connected=True), DeviceError)
