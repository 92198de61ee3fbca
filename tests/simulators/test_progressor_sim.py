"""The simulated Progressor: the device conversation (sans-I/O), its clock and fault switches,
and the same device served as a bleak backend to the real BleakClient and BleakScanner."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable
from typing import Any

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakDeviceNotFoundError, BleakError

from protocols.progressor import (
    CONTROL_POINT_UUID,
    DATA_POINT_UUID,
    KGF_N,
    SERVICE_UUID,
    US_WRAP,
    CommandResponse,
    Event,
    LowPowerWarning,
    NotificationDecoder,
    NotificationDrop,
    Opcode,
    WeightSample,
    WeightSamples,
    encode_command,
    unwrap_us,
)
from simulators.ble_backend import (
    CCCD_UUID,
    SimBleakClient,
    SimCharacteristic,
    SimPeripheral,
    SimRegistry,
    SimService,
    progressor_peripheral,
)
from simulators.force_model import TherapistModel, constant, hold_segments
from simulators.progressor import ProgressorDevice, ProgressorFaults

START = encode_command(Opcode.START_WEIGHT_MEAS)
STOP = encode_command(Opcode.STOP_WEIGHT_MEAS)
WAIT_S = 5.0  # an upper bound for awaiting an event; tests finish long before it


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_device(force_n: float = 0.0, **kwargs: Any) -> tuple[ProgressorDevice, FakeClock]:
    clock = FakeClock()
    device = ProgressorDevice(constant(force_n), clock=clock, **kwargs)
    device.connect()
    return device, clock


def decode_all(decoder: NotificationDecoder, notifications: list[bytes]) -> list[Event]:
    return [event for data in notifications for event in decoder.feed(data)]


def samples_of(events: list[Event]) -> list[WeightSample]:
    return [s for e in events if isinstance(e, WeightSamples) for s in e.samples]


# ------------------------------------------------------------------ conversations


@pytest.mark.parametrize(
    ("opcode", "check"),
    [
        (Opcode.GET_APP_VERSION, lambda r: r.text() == "1.2.3"),
        (Opcode.GET_BATTERY_VOLTAGE, lambda r: r.battery_mv() == 3900),
        (Opcode.GET_PROGRESSOR_ID, lambda r: r.progressor_id() == 0x5EED_0001),
        (Opcode.GET_ERROR_INFORMATION, lambda r: r.text() == ""),
    ],
    ids=lambda v: v.name if isinstance(v, Opcode) else "",
)
def test_command_responses(opcode: Opcode, check: Callable[[CommandResponse], bool]) -> None:
    device, clock = make_device()
    decoder = NotificationDecoder()
    device.write(encode_command(opcode))
    decoder.expect(opcode)
    events = decode_all(decoder, device.notifications(clock.now))
    assert len(events) == 1
    response = events[0]
    assert isinstance(response, CommandResponse)
    assert response.opcode is opcode
    assert check(response)
    assert device.state.commands == [opcode]


def test_identity_is_configurable() -> None:
    device, clock = make_device(firmware="9.9", battery_mv=3650, progressor_id=0x0102)
    for opcode in (Opcode.GET_APP_VERSION, Opcode.GET_BATTERY_VOLTAGE, Opcode.GET_PROGRESSOR_ID):
        device.write(encode_command(opcode))
    assert device.notifications(clock.now) == [
        b"\x00\x039.9",
        b"\x00\x04" + (3650).to_bytes(4, "little"),
        b"\x00\x02\x02\x01",  # u64 LE with the trailing zero bytes left out
    ]


@pytest.mark.parametrize(
    "write",
    [
        encode_command(Opcode.TARE_SCALE),
        encode_command(Opcode.CLR_ERROR_INFORMATION),
        bytes([Opcode.TARE_SCALE, 0]),  # PyTindeq's two-byte form
        b"\x75\x00\x01",  # undocumented reboot: recorded, ignored
        b"",
    ],
)
def test_commands_without_response(write: bytes) -> None:
    device, clock = make_device()
    device.write(write)
    assert device.notifications(clock.now + 1) == []


def test_unknown_command_is_recorded_raw() -> None:
    device, _ = make_device()
    device.write(b"\x75\x00\x01")
    assert device.state.commands == [b"\x75\x00\x01"]


# ------------------------------------------------------------------ weight stream


def test_weights_follow_the_model_at_the_rate() -> None:
    model = TherapistModel(hold_segments(50.0, 5.0, 5.0, 1), seed=7)
    clock = FakeClock()
    device = ProgressorDevice(model, clock=clock, rate_hz=80.0)
    device.connect()
    device.write(START)
    started = clock.now
    samples = samples_of(decode_all(NotificationDecoder(), device.notifications(started + 2.0)))
    # 161 samples are due (t = 0 … 2 s inclusive); the last, odd one waits for its batch-mate.
    assert len(samples) == 160
    for k, sample in enumerate(samples):
        expected_kg = model.force_at(k / 80.0) / KGF_N
        assert sample.kg == pytest.approx(expected_kg, rel=1e-6, abs=1e-6)
        assert sample.device_us == round(k * 12_500)
    assert max(s.kg for s in samples) > 1.0  # the ramp is under way: a real signal


def test_batches_fill_the_att_payload() -> None:
    device, clock = make_device(10.0, att_payload=100)
    device.write(START)
    notifications = device.notifications(clock.now + 1.0)
    assert device.batch_size == 12
    assert {len(n) for n in notifications} == {2 + 12 * 8}
    assert len(notifications) == 81 // 12


def test_stop_flushes_the_last_partial_batch_then_nothing() -> None:
    device, clock = make_device(9.80665)
    device.write(START)
    clock.now += 0.0125 * 4  # samples 0-4 are due: two full batches and one left over
    device.write(STOP)
    samples = samples_of(decode_all(NotificationDecoder(), device.notifications(clock.now)))
    assert [s.kg for s in samples] == pytest.approx([1.0] * 5)
    assert device.notifications(clock.now + 10) == []
    assert device.next_deadline() is None


def test_next_deadline_is_the_sample_that_completes_a_batch() -> None:
    device, clock = make_device()
    device.write(START)
    start = clock.now
    assert device.next_deadline() == pytest.approx(start + 1 / 80)
    device.notifications(start + 1 / 80)
    assert device.next_deadline() == pytest.approx(start + 3 / 80)


def test_device_clock_wraps() -> None:
    device, clock = make_device(boot_us=US_WRAP - 30_000)
    device.write(START)
    samples = samples_of(decode_all(NotificationDecoder(), device.notifications(clock.now + 0.1)))
    raw = [s.device_us for s in samples]
    assert raw[0] == US_WRAP - 30_000
    assert min(raw) < 30_000  # the counter went past 2**32 and started again
    unwrapped: list[int] = []
    for value in raw:
        unwrapped.append(unwrap_us(unwrapped[-1] if unwrapped else None, value))
    assert {b - a for a, b in itertools.pairwise(unwrapped)} == {12_500}


def test_tare_zeroes_and_signed_values_survive() -> None:
    device, clock = make_device(98.0665)
    device.write(encode_command(Opcode.TARE_SCALE))
    device.write(START)
    samples = samples_of(decode_all(NotificationDecoder(), device.notifications(clock.now + 0.1)))
    assert device.state.tare_offset_kg == pytest.approx(10.0)
    assert samples
    assert all(s.kg == pytest.approx(0.0, abs=1e-9) for s in samples)


def test_sleep_stops_and_drops_the_link() -> None:
    device, clock = make_device()
    device.write(START)
    device.write(encode_command(Opcode.ENTER_SLEEP))
    assert not device.state.measuring
    assert device.should_disconnect(clock.now)


def test_a_new_link_starts_quiet() -> None:
    device, clock = make_device()
    device.write(START)
    device.disconnect()
    device.connect()
    assert device.notifications(clock.now + 1) == []


# ------------------------------------------------------------------ fault switches


def test_drop_every() -> None:
    device, clock = make_device(faults=ProgressorFaults(drop_every=3))
    device.write(START)
    sent = device.notifications(clock.now + 1.0)  # 40 notifications made
    assert device.state.notifications_made == 40
    assert device.state.notifications_dropped == 13
    assert len(sent) == 27
    stamps = [s.device_us for s in samples_of(decode_all(NotificationDecoder(), sent))]
    assert 4 * 12_500 not in stamps  # samples 4 and 5 rode in the 3rd notification
    assert 3 * 12_500 in stamps


def test_truncate_every() -> None:
    device, clock = make_device(faults=ProgressorFaults(truncate_every=2))
    device.write(START)
    decoder = NotificationDecoder()
    events = decode_all(decoder, device.notifications(clock.now + 1.0))
    assert device.state.notifications_truncated == 20
    assert decoder.drops[NotificationDrop.TRUNCATED] == 20
    assert len(events) == 20


def test_stuck_value_ignores_model_and_tare() -> None:
    clock = FakeClock()
    model = TherapistModel(hold_segments(80.0, 5.0, 5.0, 1))
    device = ProgressorDevice(model, clock=clock, faults=ProgressorFaults(stuck_value_n=19.6133))
    device.connect()
    device.write(encode_command(Opcode.TARE_SCALE))
    device.write(START)
    samples = samples_of(decode_all(NotificationDecoder(), device.notifications(clock.now + 3)))
    assert {round(s.kg, 5) for s in samples} == {2.0}


def test_low_battery_warns_once_per_link() -> None:
    device, clock = make_device(faults=ProgressorFaults(low_battery=True))
    decoder = NotificationDecoder()
    for _ in range(2):
        device.write(encode_command(Opcode.GET_BATTERY_VOLTAGE))
        decoder.expect(Opcode.GET_BATTERY_VOLTAGE)
    events = decode_all(decoder, device.notifications(clock.now))
    assert [type(e) for e in events] == [CommandResponse, LowPowerWarning, CommandResponse]
    device.disconnect()
    device.connect()
    device.write(START)
    assert device.notifications(clock.now) == [b"\x04\x00"]
    assert device.state.low_power_warnings == 2


def test_disconnect_after() -> None:
    device, clock = make_device(faults=ProgressorFaults(disconnect_after_s=2.0))
    assert device.disconnect_at() == clock.now + 2.0
    assert device.next_deadline() == clock.now + 2.0
    assert not device.should_disconnect(clock.now + 1.999)
    assert device.should_disconnect(clock.now + 2.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"drop_every": 0},
        {"truncate_every": True},
        {"drop_every": 1.5},
        {"disconnect_after_s": 0.0},
        {"disconnect_after_s": math.inf},
        {"stuck_value_n": math.nan},
        {"low_battery": 1},
    ],
)
def test_faults_are_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ProgressorFaults(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"rate_hz": 0.0}, {"att_payload": 9}, {"battery_mv": -1}, {"boot_us": US_WRAP}],
)
def test_device_settings_are_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ProgressorDevice(constant(0.0), clock=FakeClock(), **kwargs)


# ------------------------------------------------------------------ the real bleak over the sim


ADDRESS = "F0:0D:5E:ED:00:01"


def served(
    faults: ProgressorFaults | None = None, model: TherapistModel | None = None
) -> tuple[SimRegistry, ProgressorDevice]:
    loop = asyncio.get_running_loop()
    device = ProgressorDevice(model or constant(49.03325), clock=loop.time, faults=faults)
    registry = SimRegistry()
    registry.add(progressor_peripheral(device, address=ADDRESS))
    other = SimPeripheral("0A:0B:0C:0D:0E:0F", "Thermometer", _Silent(), ["181a"])
    registry.add(other)
    return registry, device


class _Silent:
    """A peripheral that exists and never says anything."""

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


class Collector:
    """Decodes notifications and wakes a waiter once enough samples arrived."""

    def __init__(self, want_samples: int = 0) -> None:
        self.decoder = NotificationDecoder()
        self.events: list[Event] = []
        self.want = want_samples
        self.enough = asyncio.Event()
        self.response = asyncio.Event()

    def __call__(self, _: BleakGATTCharacteristic, data: bytearray) -> None:
        new = self.decoder.feed(bytes(data))
        self.events += new
        if any(isinstance(e, CommandResponse) for e in new):
            self.response.set()
        if self.want and len(samples_of(self.events)) >= self.want:
            self.enough.set()


async def test_scan_finds_it_by_name_prefix() -> None:
    registry, _ = served()
    _, scanner_backend = registry.backends()
    device = await BleakScanner.find_device_by_filter(
        lambda d, ad: (ad.local_name or "").startswith("Progressor"),
        timeout=WAIT_S,
        backend=scanner_backend,
    )
    assert device is not None
    assert device.address == ADDRESS


async def test_scan_filters_by_service_uuid() -> None:
    registry, _ = served()
    _, scanner_backend = registry.backends()
    heard = asyncio.Event()
    scanner = BleakScanner(lambda d, ad: heard.set(), [SERVICE_UUID], backend=scanner_backend)
    async with scanner:
        await asyncio.wait_for(heard.wait(), WAIT_S)
    assert scanner.backend_id == "SimBleakScanner"
    found = scanner.discovered_devices_and_advertisement_data
    assert list(found) == [ADDRESS]
    assert found[ADDRESS][1].service_uuids == [SERVICE_UUID]


async def test_connect_subscribe_and_stream() -> None:
    model = TherapistModel(hold_segments(60.0, 5.0, 5.0, 1), seed=3)
    registry, device = served(model=model)
    client_backend, _ = registry.backends()
    collector = Collector(want_samples=20)
    async with BleakClient(ADDRESS, backend=client_backend) as client:
        assert client.backend_id == "SimBleakClient"
        data_point = client.services.get_characteristic(DATA_POINT_UUID)
        assert data_point is not None
        assert [d.uuid for d in data_point.descriptors] == [CCCD_UUID]
        await client.start_notify(DATA_POINT_UUID, collector)
        await client.write_gatt_char(CONTROL_POINT_UUID, START, response=True)
        await asyncio.wait_for(collector.enough.wait(), WAIT_S)
        assert registry.get(ADDRESS) is not None
    samples = samples_of(collector.events)
    steps = {b.device_us - a.device_us for a, b in itertools.pairwise(samples)}
    assert steps == {12_500}  # 80 Hz on the device's clock
    started = device.state.started_at
    assert started is not None
    first_t = (samples[0].device_us - device.device_us(started)) / 1e6
    for k, sample in enumerate(samples):
        expected = model.force_at(first_t + k / 80) / KGF_N
        assert sample.kg == pytest.approx(expected, rel=1e-5, abs=1e-5)
    assert not device.state.measuring  # the link went down, so did the stream


async def test_command_with_response_over_bleak() -> None:
    registry, _ = served()
    client_backend, _ = registry.backends()
    collector = Collector()
    async with BleakClient(ADDRESS, backend=client_backend) as client:
        await client.start_notify(DATA_POINT_UUID, collector)
        collector.decoder.expect(Opcode.GET_APP_VERSION)
        await client.write_gatt_char(
            CONTROL_POINT_UUID, encode_command(Opcode.GET_APP_VERSION), response=True
        )
        await asyncio.wait_for(collector.response.wait(), WAIT_S)
    assert collector.events == [CommandResponse(Opcode.GET_APP_VERSION, b"1.2.3")]


async def test_disconnect_fault_fires_the_callback() -> None:
    registry, device = served(ProgressorFaults(disconnect_after_s=0.05))
    client_backend, _scanner_backend = registry.backends()
    lost = asyncio.Event()
    client = BleakClient(ADDRESS, lambda _: lost.set(), backend=client_backend)
    await client.connect()
    await asyncio.wait_for(lost.wait(), WAIT_S)
    assert not client.is_connected
    with pytest.raises(BleakError, match="Not connected"):
        await client.start_notify(DATA_POINT_UUID, Collector())
    await client.disconnect()  # harmless after a loss
    peripheral = registry.get(ADDRESS)
    assert peripheral is not None
    assert not peripheral.connected  # advertising again
    assert device.state.connected_at is None


async def test_one_central_at_a_time_and_not_advertising_meanwhile() -> None:
    registry, _ = served()
    client_backend, scanner_backend = registry.backends()
    async with BleakClient(ADDRESS, backend=client_backend):
        with pytest.raises(BleakError, match="another central"):
            await BleakClient(ADDRESS, backend=client_backend).connect()
        heard = asyncio.Event()
        scanner = BleakScanner(lambda d, ad: heard.set(), backend=scanner_backend)
        async with scanner:
            await asyncio.wait_for(heard.wait(), WAIT_S)  # the thermometer
        assert ADDRESS not in scanner.discovered_devices_and_advertisement_data


async def test_backend_errors() -> None:
    registry, _ = served()
    client_backend, _ = registry.backends()
    with pytest.raises(BleakDeviceNotFoundError):
        await BleakClient("00:00:00:00:00:00", backend=client_backend).connect()
    async with BleakClient(ADDRESS, backend=client_backend) as client:
        with pytest.raises(BleakError, match="does not allow write"):
            await client.write_gatt_char(DATA_POINT_UUID, b"\x01", response=True)
        with pytest.raises(BleakError, match="does not notify"):
            await client.start_notify(CONTROL_POINT_UUID, Collector())
        # Write without response is allowed on the control point, as on the device.
        await client.write_gatt_char(CONTROL_POINT_UUID, STOP, response=False)


async def test_registry_passed_as_extra_argument() -> None:
    registry, _ = served()
    async with BleakClient(ADDRESS, backend=SimBleakClient, registry=registry) as client:
        assert client.name == "Progressor SIM"
        assert client.mtu_size == 23
