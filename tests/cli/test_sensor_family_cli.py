"""Whole sessions against every simulated sensor model, and the simulator commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from devicectl.records import Records
from drivers.models import load_models
from simulators.catalog import simulated_protocols
from tests.cli.helpers import FAST_PLAN, devicectl


async def test_a_whole_session_against_a_simulated_progressor_is_recorded(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    plan_file = tmp_path / "fast.toml"
    plan_file.write_text(FAST_PLAN)
    done = await devicectl(
        "run", str(plan_file), "--tbar", "progressor@sim", "--db", str(db), "--json"
    )
    assert done.code == 0, done.stderr
    lines = done.json_lines()
    assert lines[-1]["type"] == "summary"
    assert lines[-1]["status"] == "completed"
    assert lines[-1]["dose"]["total"]["holds_done"] == 3
    store = Records.open(db)
    try:
        [session] = store.sessions()
        assert session.status == "completed"
        [device] = session.devices
        assert (device.role, device.address) == ("tbar", "progressor@sim")
        assert device.model == "Tindeq Progressor"
        assert device.simulated
        assert device.firmware  # read from the device at connect
        # The Progressor streams about 80 samples a second; over several seconds that is
        # far more than a polled gauge's count would be by accident.
        assert session.samples > 300
    finally:
        store.close()


@pytest.mark.parametrize("model", ["imada", "shimpo", "wagner"])
async def test_a_whole_session_against_each_simulated_serial_dialect(
    tmp_path: Path, model: str
) -> None:
    plan_file = tmp_path / "fast.toml"
    plan_file.write_text(FAST_PLAN)
    done = await devicectl(
        "run", str(plan_file), "--tbar", f"{model}@sim", "--db", str(tmp_path / "s.db"), "--json"
    )
    assert done.code == 0, done.stderr
    summary = done.json_lines()[-1]
    assert summary["status"] == "completed"
    assert summary["dose"]["total"]["holds_done"] == 3


async def test_text_output_and_history_label_a_simulated_progressor(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    plan_file = tmp_path / "fast.toml"
    plan_file.write_text(FAST_PLAN)
    done = await devicectl("run", str(plan_file), "--tbar", "progressor@sim", "--db", str(db))
    assert done.code == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("T-bar: Tindeq Progressor")
    assert "(SIMULATED)" in first
    assert "battery 3.90 V" in first
    history = await devicectl("history", "--db", str(db), "--json")
    [listed] = json.loads(history.stdout)
    assert listed["devices"] == [
        {"role": "tbar", "address": "progressor@sim", "model": "Tindeq Progressor",
         "simulated": True, "calibration": None}
    ]  # fmt: skip
    text = await devicectl("history", "--db", str(db))
    assert "(simulated)" in text.stdout


async def test_a_real_progressor_without_bluetooth_is_a_one_line_device_error(
    tmp_path: Path,
) -> None:
    done = await devicectl(
        "run", "demo", "--tbar", "progressor@ble", "--db", str(tmp_path / "s.db"), limit_s=60
    )
    assert done.code == 1
    [line] = done.stderr.strip().splitlines()
    # On this project's machines there is no Bluetooth stack; with one, no Progressor is in
    # range. Either way the user is told in one line, with no traceback.
    assert "Bluetooth is not available" in line or "no Progressor found" in line
    assert "Traceback" not in done.stderr


async def test_bad_simulator_settings_are_refused_before_anything_opens(tmp_path: Path) -> None:
    done = await devicectl(
        "run", "demo", "--tbar", "progressor@sim?garbage_every=3", "--db", str(tmp_path / "s.db")
    )
    assert done.code == 2
    assert "unknown simulator setting 'garbage_every'" in done.stderr
    assert "drop_every" in done.stderr  # the switches this simulator has
    done = await devicectl(
        "run", "demo", "--tbar", "progressor@sim?drop_every=0", "--db", str(tmp_path / "s.db")
    )
    assert done.code == 2
    assert "drop_every" in done.stderr


async def test_sim_list_names_every_simulated_model_and_its_faults() -> None:
    done = await devicectl("sim", "list")
    assert done.code == 0, done.stderr
    simulated = {
        key
        for key, entry in load_models().items()
        if entry.protocol_module in simulated_protocols()
    }
    assert {"mark10", "progressor"} <= simulated
    for key in simulated:
        assert any(line.startswith(key) for line in done.stdout.splitlines()), key
    assert "low_battery" in done.stdout
    assert "garbage_every" in done.stdout


async def test_sim_refuses_to_serve_a_ble_model_and_says_what_to_do() -> None:
    done = await devicectl("sim", "progressor")
    assert done.code == 2
    assert "progressor@sim" in done.stderr
    assert "sim exec" in done.stderr


async def test_sim_refuses_unknown_faults_and_profiles() -> None:
    done = await devicectl("sim", "mark10", "--fault", "bogus=1")
    assert done.code == 2
    assert "unknown simulator setting 'bogus'" in done.stderr
    done = await devicectl("sim", "mark10", "--profile", "constant:lots")
    assert done.code == 2
    assert "constant:N" in done.stderr
    done = await devicectl("sim", "mark10", "--fault", "garbage_every")
    assert done.code == 2
    assert "KEY=VALUE" in done.stderr
    done = await devicectl("sim", "mark10", "--tcp", "70000")
    assert done.code == 2
    assert "70000 is not a port" in done.stderr


# A user's own bleak program, unmodified: finds a Progressor by name, starts the weight stream
# (opcode 0x65, device-protocols.md §1.1), prints the first sample's kg, stops (0x66).
BLEAK_SCRIPT = """
import asyncio, struct
from bleak import BleakClient, BleakScanner
DATA = "7e4e1702-1ea6-40c9-9dcc-13d34ffead57"
CONTROL = "7e4e1703-1ea6-40c9-9dcc-13d34ffead57"
async def main():
    device = await BleakScanner.find_device_by_filter(
        lambda d, adv: (adv.local_name or "").startswith("Progressor"), timeout=10)
    first = asyncio.get_running_loop().create_future()
    def on_data(_, data):
        if data[0] == 1 and not first.done():
            first.set_result(struct.unpack_from("<f", data, 2)[0])
    async with BleakClient(device) as client:
        await client.start_notify(DATA, on_data)
        await client.write_gatt_char(CONTROL, bytes([0x65]))
        print("kg", await asyncio.wait_for(first, 10))
        await client.write_gatt_char(CONTROL, bytes([0x66]))
asyncio.run(main())
"""


async def test_sim_exec_runs_a_users_bleak_program_against_a_simulated_progressor(
    tmp_path: Path,
) -> None:
    script = tmp_path / "mine.py"
    script.write_text(BLEAK_SCRIPT)
    done = await devicectl(
        "sim", "exec", "--profile", "constant:49.03325", "--", sys.executable, str(script)
    )
    assert done.code == 0, done.stderr
    assert "simulated peripherals: Progressor SIM" in done.stderr
    [line] = [x for x in done.stdout.splitlines() if x.startswith("kg ")]
    assert float(line.split()[1]) == pytest.approx(5.0, abs=0.2)  # 49.03 N is 5 kg


async def test_sim_exec_without_a_command_is_a_usage_error() -> None:
    done = await devicectl("sim", "exec")
    assert done.code == 2
    assert "COMMAND" in done.stderr
