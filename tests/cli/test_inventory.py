"""``devicectl models`` and ``devicectl scan``: the model table, serial ports matched by VID:PID
with permissions, BLE advertisements matched by name and service, no Bluetooth, simulated
peripherals labelled SIMULATED."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import pwd
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bleak.backends.scanner import BaseBleakScanner
from bleak.exc import BleakError

from devicectl.inventory import (
    BleScanResult,
    list_serial_ports,
    match_advertisement,
    match_port,
    models_table,
    render_scan,
    scan_ble,
)
from devicectl.inventory_cli import MAX_SCAN_TIMEOUT_S, add_parsers
from drivers.models import ModelEntry, load_models
from drivers.transport.ble import Advertisement
from simulators.ble_backend import SimRegistry, progressor_peripheral
from simulators.force_model import constant
from simulators.progressor import ProgressorDevice
from tests.cli.helpers import devicectl

SIM_ADDRESS = "F0:0D:5E:ED:00:01"
_HAS_SYSTEM_DBUS = any(
    os.path.exists(p) for p in ("/run/dbus/system_bus_socket", "/var/run/dbus/system_bus_socket")
)
no_bluetooth_here = pytest.mark.skipif(
    _HAS_SYSTEM_DBUS, reason="this machine has a D-Bus system bus"
)


@dataclass
class FakePort:
    """What pyserial's ``comports()`` yields, as far as the inventory reads it."""

    device: str
    description: str = "USB Serial"
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    manufacturer: str | None = None


def models() -> list[ModelEntry]:
    return sorted(load_models().values(), key=lambda m: m.key)


def mark10_vid_pid() -> tuple[int, int]:
    vid, pid = load_models()["mark10"].usb_vid_pid[0].split(":")
    return int(vid, 16), int(pid, 16)


def allow_all(path: str, mode: int) -> bool:
    return True


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="devicectl")
    add_parsers(p.add_subparsers(dest="command", required=True))
    return p


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    args = parser().parse_args(argv)
    code: int = args.handler(args)
    return code, capsys.readouterr().out


# -- models -------------------------------------------------------------------------------------


def test_models_table_lists_every_model() -> None:
    text = models_table(models())
    lines = text.splitlines()
    assert lines[0].split() == [
        "KEY",
        "FAMILY",
        "NAME",
        "TRANSPORT",
        "PROVENANCE",
        "HARDWARE-VERIFIED",
    ]
    for model in models():
        [line] = [x for x in lines if x.startswith(f"{model.key} ")]
        assert model.name in line
        assert model.provenance in line
        assert line.endswith("yes" if model.verified_on_hardware else "no")


def test_models_command_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run(capsys, "models")
    assert code == 0
    assert all(m.key in text for m in models())
    code, out = run(capsys, "models", "--json")
    assert code == 0
    document = json.loads(out)
    assert [d["key"] for d in document] == [m.key for m in models()]
    for entry, model in zip(document, models(), strict=True):
        assert entry["extra"] == dict(model.extra)  # BLE identification and the like
        assert entry["sources"] == list(model.sources)
        assert entry["usb_vid_pid_verified"] == model.usb_vid_pid_verified


# -- serial ports -------------------------------------------------------------------------------


def test_a_known_vid_pid_names_its_model_and_address(tmp_path: Path) -> None:
    device = tmp_path / "ttyUSB0"
    device.touch()
    vid, pid = mark10_vid_pid()
    fake = FakePort(str(device), vid=vid, pid=pid, serial_number="S1", manufacturer="Mark-10")
    [port] = list_serial_ports(lambda: [fake], access=allow_all)
    assert port.vid_pid == f"{vid:04X}:{pid:04X}"
    assert (port.readable, port.writable, port.permission_hint) == (True, True, "")
    assert [m.key for m in match_port(port, models())] == ["mark10"]
    text = render_scan([port], [], models())
    assert f"mark10@serial://{device}" in text
    assert "not accessible" not in text
    if not load_models()["mark10"].usb_vid_pid_verified:
        assert "unverified" in text


def test_an_unknown_or_missing_vid_pid_matches_nothing() -> None:
    ports = list_serial_ports(
        lambda: [FakePort("/dev/ttyS0", "n/a"), FakePort("/dev/ttyUSB9", vid=0x1234, pid=0x5678)],
        access=allow_all,
    )
    assert [p.device for p in ports] == ["/dev/ttyS0", "/dev/ttyUSB9"]
    assert ports[0].vid_pid is None
    assert ports[1].vid_pid == "1234:5678"
    assert all(match_port(p, models()) == [] for p in ports)
    text = render_scan(ports, [], models())
    assert text.count("no known model") == 2
    assert "@serial:" not in text


def test_models_sharing_a_vid_pid_are_all_candidates() -> None:
    mark10 = load_models()["mark10"]
    twin = dataclasses.replace(mark10, key="twin", name="A gauge on the same USB chip")
    vid, pid = mark10_vid_pid()
    [port] = list_serial_ports(lambda: [FakePort("COM3", vid=vid, pid=pid)], access=allow_all)
    assert (port.readable, port.group) == (None, None)  # no file to check: the OS decides
    assert match_port(port, [mark10, twin]) == [mark10, twin]
    text = render_scan([port], [], [mark10, twin])
    assert "candidates" in text
    assert "mark10@serial:COM3" in text
    assert "twin@serial:COM3" in text


@pytest.mark.parametrize(("mode", "needle"), [(0o660, "sudo usermod -aG"), (0o000, "udev")])
def test_a_port_this_user_may_not_open_gets_a_hint(tmp_path: Path, mode: int, needle: str) -> None:
    device = tmp_path / "ttyACM0"
    device.touch()
    device.chmod(mode)
    [port] = list_serial_ports(lambda: [FakePort(str(device))], access=lambda p, m: False)
    assert (port.readable, port.writable) == (False, False)
    assert port.group is not None
    assert needle in port.permission_hint
    if mode == 0o660:
        assert f"usermod -aG {port.group} $USER" in port.permission_hint
    assert f"not accessible: {port.permission_hint}" in render_scan([port], [], models())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX fork and setuid")
def test_the_real_access_check_as_an_unprivileged_user() -> None:
    """``os.access`` itself, as the user who runs it (as root: dropped to ``nobody``)."""
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("there is no user 'nobody' to drop to")
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)
        device = Path(folder) / "ttyS9"
        device.touch()
        device.chmod(0o600 if os.geteuid() == 0 else 0o000)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            try:
                list_serial_ports(lambda: [FakePort(str(device))])  # load lazy imports first
                if os.geteuid() == 0:
                    os.setgroups([])
                    os.setgid(nobody.pw_gid)
                    os.setuid(nobody.pw_uid)
                [port] = list_serial_ports(lambda: [FakePort(str(device))])
                os.write(write_end, f"{port.readable}|{port.permission_hint}".encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as report:
            line = report.read()
        os.waitpid(pid, 0)
    readable, _, hint = line.partition("|")
    assert readable == "False", line
    assert "you may not open this port" in hint


# -- BLE ----------------------------------------------------------------------------------------


def progressor_registry(loop: asyncio.AbstractEventLoop) -> SimRegistry:
    registry = SimRegistry()
    device = ProgressorDevice(constant(98.0665), clock=loop.time)
    registry.add(progressor_peripheral(device, address=SIM_ADDRESS))
    return registry


def test_advertisements_match_by_name_prefix_or_service() -> None:
    table = models()
    ble_models = [m for m in table if "ble_name_prefix" in m.extra or "ble_service_uuid" in m.extra]
    assert ble_models, "the table has BLE models"
    for model in ble_models:
        prefix = model.extra.get("ble_name_prefix")
        service = model.extra.get("ble_service_uuid")
        if isinstance(prefix, str):
            by_name = Advertisement("AA:BB:CC:DD:EE:01", f"{prefix} 42", (), -50)
            assert model in match_advertisement(by_name, table)
        if isinstance(service, str):
            by_uuid = Advertisement("AA:BB:CC:DD:EE:02", None, (service.upper(),), -50)
            assert model in match_advertisement(by_uuid, table)
    stranger = Advertisement(
        "AA:BB:CC:DD:EE:03", "Headphones", ("0000180f-0000-1000-8000-00805f9b34fb",), -70
    )
    assert match_advertisement(stranger, table) == []


@no_bluetooth_here
async def test_without_bluetooth_the_scan_says_so_and_still_lists_ports() -> None:
    result = await scan_ble(0.1)
    assert result.unavailable
    assert not result.simulated
    assert "Bluetooth is not available" in result.reason
    ports = list_serial_ports(
        lambda: [FakePort("/dev/ttyUSB0", vid=0x1234, pid=0x5678)], access=allow_all
    )
    text = render_scan(ports, [result], models())
    assert "Bluetooth is not available" in text
    assert result.hint in text
    assert "/dev/ttyUSB0" in text
    assert "SIMULATED" not in text


class _BrokenScanner(BaseBleakScanner):
    """A Bluetooth stack that fails to start scanning for a reason other than being absent."""

    def __init__(
        self, callback: Any, service_uuids: list[str] | None, mode: str = "active", **_: Any
    ) -> None:
        super().__init__(callback, service_uuids)

    async def start(self) -> None:
        raise BleakError("org.bluez.Error.InProgress")

    async def stop(self) -> None:
        return None


async def test_a_failing_scan_is_reported_not_raised() -> None:
    result = await scan_ble(0.1, _BrokenScanner)
    assert not result.ok
    assert not result.unavailable
    assert "InProgress" in result.reason
    assert "the scan failed" in render_scan([], [result], models())


async def test_the_simulated_progressor_is_listed_and_labelled_simulated() -> None:
    registry = progressor_registry(asyncio.get_running_loop())
    _, scanner_backend = registry.backends()
    result = await scan_ble(0.2, scanner_backend)
    assert result.ok
    assert result.simulated
    assert [a.address for a in result.advertisements] == [SIM_ADDRESS]
    text = render_scan(
        [], [BleScanResult(0.2, unavailable=True, reason="no adapter"), result], models()
    )
    [heard] = [line for line in text.splitlines() if line.strip().startswith(SIM_ADDRESS)]
    assert "SIMULATED" in heard
    [address] = [line for line in text.splitlines() if f"progressor@ble:{SIM_ADDRESS}" in line]
    assert "SIMULATED" in address
    assert "Bluetooth is not available: no adapter" in text


def test_scan_command_with_sim_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "scan", "--sim", "--json", "--timeout", "0.3")
    assert code == 0
    document = json.loads(out)
    assert isinstance(document["serial_ports"], list)
    real, simulated = document["ble"]
    assert not real["simulated"]
    assert simulated["simulated"]
    assert simulated["ok"]
    heard: list[dict[str, Any]] = simulated["advertisements"]
    assert heard
    assert all(a["simulated"] for a in heard)
    addresses = [c["address"] for a in heard for c in a["models"]]
    assert any(a.startswith("progressor@ble:") for a in addresses)


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "soon", str(MAX_SCAN_TIMEOUT_S + 1)])
def test_the_scan_timeout_must_be_positive_and_at_most_a_minute(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(["scan", "--timeout", bad])
    assert exited.value.code == 2
    assert "--timeout" in capsys.readouterr().err
    assert parser().parse_args(["scan", "--timeout", "60"]).timeout == MAX_SCAN_TIMEOUT_S


# -- as a user runs them ------------------------------------------------------------------------


async def test_models_in_a_subprocess() -> None:
    done = await devicectl("models")
    assert done.code == 0, done.stderr
    assert all(m.key in done.stdout for m in models())


@no_bluetooth_here
async def test_scan_in_a_subprocess_without_bluetooth() -> None:
    done = await devicectl("scan", "--timeout", "0.5")
    assert done.code == 0, done.stderr
    assert "Serial ports:" in done.stdout
    assert "Bluetooth is not available" in done.stdout


async def test_scan_sim_in_a_subprocess_labels_the_simulated_peripherals() -> None:
    done = await devicectl("scan", "--timeout", "0.5", "--sim")
    assert done.code == 0, done.stderr
    [line] = [x for x in done.stdout.splitlines() if "progressor@ble:" in x]
    assert "SIMULATED" in line


async def test_a_bad_scan_timeout_in_a_subprocess_exits_2() -> None:
    done = await devicectl("scan", "--timeout", "0")
    assert done.code == 2
    assert "--timeout" in done.stderr
    assert "Traceback" not in done.stderr
