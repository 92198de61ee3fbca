"""Device addresses: the accepted forms, and messages that say what was wrong."""

from __future__ import annotations

import dataclasses

import pytest

import drivers.address
from drivers.address import AddressError, DeviceAddress, parse_address
from drivers.models import ModelEntry, get_model, load_models
from protocols.mark10 import Mark10Unit


@pytest.fixture(autouse=True)
def _with_ble_and_mqtt_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """A BLE model and an MQTT model next to the shipped ones, so their forms can be tested."""
    mark10 = get_model("mark10")
    ble = dataclasses.replace(mark10, key="progressor", transport="ble", baud=None)
    mqtt = dataclasses.replace(mark10, key="chair-remote", family="massage_chair", transport="mqtt")
    models: dict[str, ModelEntry] = {**load_models(), "progressor": ble, "chair-remote": mqtt}
    monkeypatch.setattr(drivers.address, "load_models", lambda: models)


GOOD = [
    ("mark10@serial:///dev/ttyUSB0?baud=115200", "serial", "/dev/ttyUSB0", {"baud": "115200"}),
    ("mark10@serial:/dev/ttyUSB0", "serial", "/dev/ttyUSB0", {}),
    ("mark10@/dev/ttyUSB0", "serial", "/dev/ttyUSB0", {}),
    ("mark10@/dev/pts/4?baud=9600", "serial", "/dev/pts/4", {"baud": "9600"}),
    ("MARK10@COM3", "serial", "COM3", {}),
    ("mark10@serial:COM12", "serial", "COM12", {}),
    ("mark10@socket://127.0.0.1:7001", "socket", "127.0.0.1:7001", {}),
    ("mark10@socket://localhost:1", "socket", "localhost:1", {}),
    ("mark10@socket://[::1]:65535", "socket", "[::1]:65535", {}),
    ("mark10@socket://h:7001?unit=lbF", "socket", "h:7001", {"unit": "lbF"}),
    (
        "mark10@serial:///dev/ttyUSB0?baud=9600&unit=kgf",
        "serial",
        "/dev/ttyUSB0",
        {"baud": "9600", "unit": "kgF"},
    ),
    ("mark10@sim", "sim", "", {}),
    ("mark10@sim?garbage_every=5&stuck_n=20", "sim", "", {"garbage_every": "5", "stuck_n": "20"}),
    ("mark10@mqtt://broker:1883/massage-chair", "mqtt", "broker:1883/massage-chair", {}),
    ("chair-remote@mqtt://broker/room1/chair", "mqtt", "broker:1883/room1/chair", {}),
    ("progressor@ble", "ble", "", {}),
    ("progressor@ble:aa:bb:cc:dd:ee:ff", "ble", "AA:BB:CC:DD:EE:FF", {}),
    ("progressor@sim", "sim", "", {}),
]


@pytest.mark.parametrize(("text", "scheme", "target", "params"), GOOD, ids=[g[0] for g in GOOD])
def test_good_addresses(text: str, scheme: str, target: str, params: dict[str, str]) -> None:
    address = parse_address(text)
    assert (address.scheme, address.target, address.params) == (scheme, target, params)
    assert address.model == text.partition("@")[0].lower()
    assert parse_address(str(address)) == address  # the canonical form reads back


def test_serial_urls() -> None:
    assert parse_address("mark10@serial:///dev/ttyUSB0?baud=9600").serial_url == "/dev/ttyUSB0"
    assert parse_address("mark10@serial:///dev/ttyUSB0?baud=9600").baud == 9600
    assert parse_address("mark10@/dev/ttyUSB0").baud is None
    assert parse_address("mark10@socket://h:7001").serial_url == "socket://h:7001"
    with pytest.raises(AddressError, match="has no serial URL"):
        _ = parse_address("mark10@sim").serial_url


BAD = [
    ("mark10", "expected MODEL@WHERE"),
    ("@/dev/ttyUSB0", "expected MODEL@WHERE"),
    ("mark10@", "expected MODEL@WHERE"),
    ("tindeq@/dev/ttyUSB0", "unknown model 'tindeq' \\(known models: chair-remote, imada, mark10"),
    ("mark10@serial://dev/ttyUSB0", "must be a path like /dev/ttyUSB0"),
    ("mark10@serial:ttyUSB0", "must be a path like /dev/ttyUSB0"),
    ("mark10@ttyUSB0", "not a port path or a known scheme"),
    ("mark10@tcp://127.0.0.1:7001", "not a port path or a known scheme"),
    ("mark10@/dev/ttyUSB0?baud=11520", "baud '11520' is not a standard rate"),
    ("mark10@/dev/ttyUSB0?baud=-9600", "baud '-9600' is not a standard rate"),
    ("mark10@/dev/ttyUSB0?baud=fast", "baud 'fast' is not a standard rate"),
    ("mark10@/dev/ttyUSB0?speed=9600", "unknown parameter 'speed': serial takes baud"),
    ("mark10@/dev/ttyUSB0?baud=9600&baud=4800", "given twice"),
    ("mark10@/dev/ttyUSB0?baud", "not KEY=VALUE"),
    ("mark10@socket://127.0.0.1", "port must be a number from 1 to 65535"),
    ("mark10@socket://127.0.0.1:0", "port must be a number from 1 to 65535"),
    ("mark10@socket://127.0.0.1:70000", "port must be a number from 1 to 65535"),
    ("mark10@socket://127.0.0.1:http", "port must be a number from 1 to 65535"),
    ("mark10@socket:127.0.0.1:7001", "written socket://HOST:PORT"),
    ("mark10@socket://:7001", "no host"),
    ("mark10@socket://h:7001/x", "has no path"),
    ("mark10@socket://h:7001?baud=9600", "unknown parameter 'baud': socket takes unit"),
    ("mark10@/dev/ttyUSB0?unit=lbs", r"unit 'lbs' is not a gauge unit \(lbF, ozF, kgF, gF, N,"),
    ("mark10@socket://h:7001?unit=", "parameter 'unit' has no value"),
    ("mark10@/dev/ttyUSB0?baud=", "parameter 'baud' has no value"),
    ("mark10@socket://h:7001?unit=psi", "unit 'psi' is not a gauge unit .*mN, kN; any case"),
    ("mark10@mqtt://broker:1883", "needs a topic"),
    ("mark10@mqtt://broker/room/#", "needs a topic without wildcards"),
    ("mark10@ble", "mark10 is a serial device; it cannot be reached over ble"),
    ("progressor@/dev/ttyUSB0", "progressor is a ble device; it cannot be reached over serial"),
    ("progressor@ble:not-a-mac", "not a BLE address"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_addresses_say_what_is_wrong_and_show_the_forms(text: str, message: str) -> None:
    with pytest.raises(AddressError, match=message) as caught:
        parse_address(text)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.text == text
    assert repr(text) in str(error)
    assert "MODEL@serial:///dev/ttyUSB0?baud=115200" in str(error)
    assert "MODEL@socket://HOST:PORT" in str(error)


def test_the_address_is_a_plain_value() -> None:
    address = DeviceAddress("mark10", "serial", "/dev/ttyUSB0", {"baud": "9600"})
    assert address == parse_address("mark10@/dev/ttyUSB0?baud=9600")
    assert str(address) == "mark10@serial:///dev/ttyUSB0?baud=9600"


@pytest.mark.parametrize(
    ("spelling", "unit"),
    [("lbF", Mark10Unit.LBF), ("LBF", Mark10Unit.LBF), ("n", Mark10Unit.N), ("mN", Mark10Unit.MN)],
)
def test_the_unit_parameter_reads_in_any_case(spelling: str, unit: Mark10Unit) -> None:
    for where in ("/dev/ttyUSB0", "socket://127.0.0.1:7001"):
        address = parse_address(f"mark10@{where}?unit={spelling}")
        assert address.unit is unit
        assert address.params["unit"] == unit.value  # canonical, so it prints as the gauge does


def test_no_unit_parameter_means_none() -> None:
    assert parse_address("mark10@/dev/ttyUSB0?baud=9600").unit is None
    assert parse_address("mark10@socket://h:1").unit is None
