"""The simulated Progressor as a real GATT server on Bumble's in-process virtual link: the real
Progressor driver and the real BleakClient/BleakScanner reach it through a bleak backend that
drives a Bumble central, so advertising, ATT handles, the CCCD and notifications are real."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import (
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)
from bleak.uuids import normalize_uuid_str

from drivers.errors import DeviceDisconnected
from drivers.force import ForceSample
from drivers.progressor import MODEL_NAME, Progressor
from protocols.progressor import (
    CONTROL_POINT_UUID,
    DATA_POINT_UUID,
    KGF_N,
    SERVICE_UUID,
    CommandResponse,
    NotificationDecoder,
    Opcode,
    encode_command,
)
from simulators.ble_backend import (
    CCCD_UUID,
    SimCharacteristic,
    SimPeripheral,
    SimService,
    progressor_peripheral,
)
from simulators.bumble_gatt import BumblePeripheral, BumbleWorld
from simulators.force_model import Segment, TherapistModel, constant
from simulators.progressor import ProgressorDevice, ProgressorFaults

ADDRESS = "F0:0D:5E:ED:00:01"
THERMOMETER = "C4:0B:0C:0D:0E:0F"
WAIT_S = 5.0  # an upper bound for awaiting an event; tests finish long before it
NOTIFY_ON = b"\x01\x00"  # CCCD value: notifications enabled (Core Vol 3, Part G, 3.3.3.3)


@pytest.fixture
async def world() -> AsyncIterator[BumbleWorld]:
    async with BumbleWorld() as w:
        yield w
    assert not w.link.controllers  # every controller left the link


async def serve(
    world: BumbleWorld,
    model: TherapistModel | None = None,
    faults: ProgressorFaults | None = None,
    *,
    by_address: bool = False,
    **device_kwargs: object,
) -> tuple[Progressor, ProgressorDevice, BumblePeripheral]:
    loop = asyncio.get_running_loop()
    device = ProgressorDevice(
        model or constant(4.0),
        clock=loop.time,
        faults=faults,
        **device_kwargs,  # type: ignore[arg-type]
    )
    server = await world.add(progressor_peripheral(device, address=ADDRESS))
    await world.add(SimPeripheral(THERMOMETER, "Thermometer", _Silent(), ["181a"]))
    return driver_for(world, by_address=by_address), device, server


def driver_for(world: BumbleWorld, *, by_address: bool = False) -> Progressor:
    client_backend, scanner_backend = world.backends()
    return Progressor(
        address=ADDRESS if by_address else None,
        clock=asyncio.get_running_loop().time,
        simulated=True,
        command_timeout_s=1.0,
        scan_timeout_s=2.0,
        connect_timeout_s=2.0,
        client_backend=client_backend,
        scanner_backend=scanner_backend,
    )


class _Silent:
    """A peripheral that exists and never says anything; its characteristic reads as empty."""

    services = (SimService("181a", (SimCharacteristic("2a6e", ("read",)),)),)

    def connect(self) -> None: ...

    def disconnect(self) -> None: ...

    def write(self, char_uuid: str, data: bytes) -> None: ...

    def notifications(self, now: float) -> list[tuple[str, bytes]]:
        return []

    def next_deadline(self) -> float | None:
        return None

    def should_disconnect(self, now: float) -> bool:
        return False


async def take(driver: Progressor, n: int) -> list[ForceSample]:
    return await take_until(driver, lambda _: False, n)


async def take_until(
    driver: Progressor, wanted: Callable[[ForceSample], bool], limit: int = 10_000
) -> list[ForceSample]:
    async def collect() -> list[ForceSample]:
        got: list[ForceSample] = []
        stream = driver.samples()
        try:
            async for sample in stream:
                got.append(sample)
                if wanted(sample) or len(got) >= limit:
                    break
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        return got

    return await asyncio.wait_for(collect(), WAIT_S)


# ------------------------------------------------------------------ the driver over Bumble


@pytest.mark.parametrize("by_address", [False, True], ids=["name prefix", "address"])
async def test_connect_reads_identity_and_streams(world: BumbleWorld, by_address: bool) -> None:
    driver, device, server = await serve(
        world, constant(4.0), by_address=by_address, firmware="1.2.7"
    )
    async with driver:
        info = driver.info
        assert info is not None
        assert (info.model, info.address) == (MODEL_NAME, ADDRESS)
        assert (info.firmware, info.battery, info.simulated) == ("1.2.7", "3.90 V", True)
        assert device.state.commands[:3] == [
            Opcode.GET_APP_VERSION,
            Opcode.GET_BATTERY_VOLTAGE,
            Opcode.START_WEIGHT_MEAS,
        ]
        got = await take(driver, 40)
        # The driver enabled notifications by writing the CCCD, a real attribute right after
        # the data point's value in the server's table.
        assert server.stats.cccd_writes == 1
        assert server.cccd_value(DATA_POINT_UUID) == NOTIFY_ON
        assert server.cccd_handle(DATA_POINT_UUID) == server.value_handle(DATA_POINT_UUID) + 1
    assert [s.force_n for s in got] == pytest.approx([4.0] * 40, abs=1e-5)
    assert driver.stats.garbage == 0
    assert server.stats.notifications_sent >= 20 + 2  # 40 samples in pairs, and two answers
    assert server.stats.notifications_withheld == 0


async def test_samples_follow_the_force_model(world: BumbleWorld) -> None:
    ramp = TherapistModel(
        [Segment("ramp", 0.5, 40.0), Segment("hold", math.inf, 40.0)],
        tremor_n=0.0,
        drift_n_per_s=0.0,
    )
    driver, device, _ = await serve(world, ramp)
    async with driver:
        got = await take_until(driver, lambda s: s.force_n > 39.9)
        started = device.state.started_at
        assert started is not None
    # Each sample is the model's force at a moment between the device taking it (mapped time
    # minus the link's delay, at most a couple of sample periods here) and the mapped time.
    for sample in got:
        expected = [ramp.force_at(sample.t - started - d) for d in (0.0, 0.05)]
        assert min(expected) - 0.01 <= sample.force_n <= max(expected) + 0.01
    assert got[0].force_n < 20.0 < got[-1].force_n


async def test_tare_zeroes_the_reading(world: BumbleWorld) -> None:
    driver, device, _ = await serve(world, constant(20.0))
    async with driver:
        await take(driver, 2)
        await driver.tare()
        got = await take_until(driver, lambda s: abs(s.force_n) < 0.01)
        assert device.state.tare_offset_kg == pytest.approx(20.0 / KGF_N)
    assert Opcode.TARE_SCALE in device.state.commands
    assert got[-1].force_n == pytest.approx(0.0, abs=1e-5)


async def test_close_stops_the_stream_then_the_peripheral_advertises_again(
    world: BumbleWorld,
) -> None:
    driver, device, server = await serve(world)
    await driver.connect()
    await take(driver, 4)
    await driver.close()
    assert device.state.commands[-1] is Opcode.STOP_WEIGHT_MEAS
    assert not device.state.measuring
    assert server.connection is None
    assert not server.sim.connected
    # Found by a scan again: it advertises once the link is down.
    again = driver_for(world)
    async with again:
        assert again.info is not None
        await take(again, 2)
    assert server.stats.connections == 2


async def test_dropped_notifications_are_counted_as_lost(world: BumbleWorld) -> None:
    driver, device, _ = await serve(world, faults=ProgressorFaults(drop_every=4))
    async with driver:
        await take(driver, 40)
        assert device.state.notifications_dropped >= 1
        assert driver.info is not None
        assert driver.info.firmware == "1.2.3"  # the 1st-3rd notifications got through
        lost = driver.drop_counts.get("lost on air", 0)
        assert lost >= 2  # a weight notification carries two samples
        assert driver.stats.missed >= lost


async def test_truncated_notifications_are_counted_as_garbage(world: BumbleWorld) -> None:
    driver, device, _ = await serve(world, faults=ProgressorFaults(truncate_every=5))
    async with driver:
        got = await take(driver, 40)
        # Counted by the driver as they arrive; the device may have cut one more meanwhile.
        truncated = driver.drop_counts.get("truncated", 0)
        assert 1 <= truncated <= device.state.notifications_truncated
        assert driver.stats.garbage >= truncated
    assert [s.force_n for s in got] == pytest.approx([4.0] * 40, abs=1e-5)


async def test_low_battery_is_visible(world: BumbleWorld) -> None:
    driver, _, _ = await serve(world, faults=ProgressorFaults(low_battery=True), battery_mv=3300)
    async with driver:
        await take(driver, 2)
        assert driver.low_battery
        assert driver.info is not None
        assert driver.info.battery == "3.30 V (low)"
        assert driver.stats.errors == 1


async def test_the_peripheral_dropping_the_link_raises_from_samples(world: BumbleWorld) -> None:
    driver, _, server = await serve(world, faults=ProgressorFaults(disconnect_after_s=0.5))
    async with driver:

        async def drain() -> None:
            async for _ in driver.samples():
                pass

        with pytest.raises(DeviceDisconnected, match="link was lost"):
            await asyncio.wait_for(drain(), WAIT_S)
    assert server.stats.links_dropped == 1
    assert server.connection is None
    assert not server.sim.connected
    # It advertises again after dropping the link: a new connection by address works.
    again = driver_for(world, by_address=True)
    async with again:
        assert again.info is not None
    assert server.stats.connections == 2


# ------------------------------------------------------------------ plain bleak over Bumble


async def test_bleak_scanner_discovers_both_peripherals(world: BumbleWorld) -> None:
    await serve(world)
    _, scanner_backend = world.backends()
    found = await BleakScanner.discover(timeout=0.2, return_adv=True, backend=scanner_backend)
    assert set(found) == {ADDRESS, THERMOMETER}
    device, adv = found[ADDRESS]
    assert (device.address, device.name, adv.local_name) == (
        ADDRESS,
        "Progressor SIM",
        "Progressor SIM",
    )
    assert adv.service_uuids == [SERVICE_UUID]
    assert found[THERMOMETER][1].service_uuids == [normalize_uuid_str("181a")]


async def test_bleak_scanner_filters_by_service_uuid(world: BumbleWorld) -> None:
    await serve(world)
    _, scanner_backend = world.backends()
    heard = asyncio.Event()
    scanner = BleakScanner(lambda d, ad: heard.set(), [SERVICE_UUID], backend=scanner_backend)
    async with scanner:
        await asyncio.wait_for(heard.wait(), WAIT_S)
    assert scanner.backend_id == "BumbleBleakScanner"
    assert list(scanner.discovered_devices_and_advertisement_data) == [ADDRESS]


async def test_bleak_client_sees_the_real_gatt_table(world: BumbleWorld) -> None:
    _, _, server = await serve(world)
    client_backend, _ = world.backends()
    responses: list[CommandResponse] = []
    answered = asyncio.Event()
    decoder = NotificationDecoder()

    def on_notify(_: BleakGATTCharacteristic, data: bytearray) -> None:
        for event in decoder.feed(bytes(data)):
            if isinstance(event, CommandResponse):
                responses.append(event)
                answered.set()

    async with BleakClient(ADDRESS, backend=client_backend) as client:
        assert client.backend_id == "BumbleBleakClient"
        assert client.name == "Progressor SIM"  # read from the GAP Device Name characteristic
        service = client.services.get_service(SERVICE_UUID)
        assert service is not None
        data_point = client.services.get_characteristic(DATA_POINT_UUID)
        control_point = client.services.get_characteristic(CONTROL_POINT_UUID)
        assert data_point is not None
        assert control_point is not None
        assert data_point.properties == ["notify"]
        assert sorted(control_point.properties) == ["write", "write-without-response"]
        assert data_point.handle == server.value_handle(DATA_POINT_UUID)
        assert control_point.handle == server.value_handle(CONTROL_POINT_UUID)
        (cccd,) = data_point.descriptors
        assert (cccd.uuid, cccd.handle) == (CCCD_UUID, server.cccd_handle(DATA_POINT_UUID))
        assert client.services.get_service(normalize_uuid_str("1800")) is not None  # GAP

        # No notification reaches a central that has not enabled them through the CCCD.
        assert await client.read_gatt_descriptor(cccd.handle) == bytearray(2)
        await client.write_gatt_char(
            CONTROL_POINT_UUID, encode_command(Opcode.GET_APP_VERSION), response=True
        )
        await asyncio.wait_for(server.wait_until(lambda s: s.notifications_withheld == 1), WAIT_S)
        await client.start_notify(DATA_POINT_UUID, on_notify)
        assert await client.read_gatt_descriptor(cccd.handle) == bytearray(NOTIFY_ON)
        assert server.stats.cccd_writes == 1
        decoder.expect(Opcode.GET_APP_VERSION)
        await client.write_gatt_char(
            CONTROL_POINT_UUID, encode_command(Opcode.GET_APP_VERSION), response=False
        )
        await asyncio.wait_for(answered.wait(), WAIT_S)
        assert responses == [CommandResponse(Opcode.GET_APP_VERSION, b"1.2.3")]
        assert server.stats.notifications_sent == 1

        await client.stop_notify(DATA_POINT_UUID)
        assert server.cccd_value(DATA_POINT_UUID) == bytes(2)
        assert server.stats.cccd_writes == 2


async def test_bleak_client_errors(world: BumbleWorld) -> None:
    await serve(world)
    client_backend, _ = world.backends()
    with pytest.raises(BleakDeviceNotFoundError):
        await BleakClient("00:00:00:00:00:00", backend=client_backend).connect()
    async with BleakClient(ADDRESS, backend=client_backend) as client:
        # The server refuses a write to the notify-only data point with an ATT error.
        with pytest.raises(BleakGATTProtocolError) as refused:
            await client.write_gatt_char(DATA_POINT_UUID, b"\x01", response=True)
        assert refused.value.code is BleakGATTProtocolErrorCode.WRITE_NOT_PERMITTED
        with pytest.raises(BleakError, match="write-without-response"):
            await client.write_gatt_char(DATA_POINT_UUID, b"\x01", response=False)
        with pytest.raises(BleakError, match="does not notify"):
            await client.start_notify(CONTROL_POINT_UUID, lambda _c, _d: None)
        data_point = client.services.get_characteristic(DATA_POINT_UUID)
        assert data_point is not None
        with pytest.raises(ValueError, match="CCCD"):  # bleak 3 itself guards the CCCD
            await client.write_gatt_descriptor(data_point.descriptors[0].handle, NOTIFY_ON)
        with pytest.raises(BleakGATTProtocolError) as refused:
            await client.read_gatt_char(DATA_POINT_UUID)
        assert refused.value.code is BleakGATTProtocolErrorCode.READ_NOT_PERMITTED
    async with BleakClient(THERMOMETER, backend=client_backend) as client:
        assert await client.read_gatt_char("2a6e") == bytearray()  # readable: empty


async def test_bleak_disconnected_callback_when_the_peripheral_drops_the_link(
    world: BumbleWorld,
) -> None:
    _, device, server = await serve(world, faults=ProgressorFaults(disconnect_after_s=0.5))
    client_backend, _ = world.backends()
    lost = asyncio.Event()
    client = BleakClient(ADDRESS, lambda _: lost.set(), backend=client_backend)
    await client.connect()
    await asyncio.wait_for(lost.wait(), WAIT_S)
    assert not client.is_connected
    with pytest.raises(BleakError, match="Not connected"):
        await client.start_notify(DATA_POINT_UUID, lambda _c, _d: None)
    await client.disconnect()  # harmless after a loss
    assert server.stats.links_dropped == 1
    assert device.state.connected_at is None


async def test_one_central_at_a_time_and_not_advertising_meanwhile(world: BumbleWorld) -> None:
    await serve(world)
    client_backend, scanner_backend = world.backends()
    async with BleakClient(ADDRESS, backend=client_backend):
        # The peripheral does not advertise while connected, so a second central waits in vain.
        with pytest.raises(TimeoutError):
            await BleakClient(ADDRESS, timeout=0.3, backend=client_backend).connect()
        heard: list[str] = []
        enough = asyncio.Event()

        def on_advertisement(device: BLEDevice, _: AdvertisementData) -> None:
            heard.append(device.address)
            if len(heard) >= 3:  # the thermometer, over at least two advertising intervals
                enough.set()

        async with BleakScanner(on_advertisement, backend=scanner_backend):
            await asyncio.wait_for(enough.wait(), WAIT_S)
        assert set(heard) == {THERMOMETER}
