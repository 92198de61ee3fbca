"""``sim exec``: an unmodified bleak program finds, connects to and streams from simulated
peripherals; the runner passes exit codes and signals through; the hook fails loudly."""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import math
import os
import signal
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bleak
import pytest
from bleak import BleakAdapter, BleakClient, BleakScanner

from protocols.progressor import (
    ADVERTISED_NAME_PREFIX,
    CONTROL_POINT_UUID,
    DATA_POINT_UUID,
    KGF_N,
    NotificationDecoder,
    Opcode,
    WeightSamples,
    encode_command,
)
from simulators import exec as sim_exec
from simulators.exec import ENV_VAR, ExecSpec, SimModel

ROOT = Path(__file__).resolve().parents[2]
LIMIT_S = 30.0  # an upper bound for a child process; each finishes in about a second
WAIT_S = 5.0  # an upper bound for awaiting an event in-process
# A simulated link ends within a few loop turns; far longer means its pump is stuck.
DISCONNECT_S = 0.5
WEIGHTS = 24  # weight samples the script collects: 0.3 s of the simulator's 80 Hz stream
LABEL = "devicectl sim exec: simulated peripherals: Progressor SIM (F0:0D:5E:ED:00:01)"
HAS_SYSTEM_DBUS = any(
    os.path.exists(p) for p in ("/run/dbus/system_bus_socket", "/var/run/dbus/system_bus_socket")
)

# A user's program: bleak's public API only. It knows nothing of devicectl or simulators.
SCRIPT = """\
import asyncio, json, struct, sys
from bleak import BleakClient, BleakScanner

DATA_POINT = {data!r}
CONTROL_POINT = {control!r}
START_WEIGHT_MEAS = bytes.fromhex({start!r})
WANTED = int(sys.argv[1])

async def main():
    device = await BleakScanner.find_device_by_filter(
        lambda d, adv: (adv.local_name or "").startswith({prefix!r}), timeout=10.0
    )
    if device is None:
        sys.exit("no Progressor found")
    weights, enough = [], asyncio.Event()

    def on_data(_, data):
        if data[0] == 1:  # a batch of weight samples: float32 kg, uint32 us each
            weights.extend(kg for kg, _ in struct.iter_unpack("<fI", data[2 : 2 + data[1]]))
        if len(weights) >= WANTED:
            enough.set()

    async with BleakClient(device) as client:
        await client.start_notify(DATA_POINT, on_data)
        await client.write_gatt_char(CONTROL_POINT, START_WEIGHT_MEAS, response=True)
        await asyncio.wait_for(enough.wait(), 10.0)
        backend = client.backend_id
    print(json.dumps(dict(name=device.name, address=device.address, backend=backend,
                          weights=weights[:WANTED])))

asyncio.run(main())
"""

# Runs simulators.exec.run in a child, as ``devicectl sim exec`` does: argv[1] is the spec.
RUNNER = (
    "import sys; from simulators.exec import ExecSpec, run; "
    "sys.exit(run(ExecSpec.from_json(sys.argv[1]), sys.argv[2:]))"
)


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str


def write_script(tmp_path: Path) -> Path:
    script = tmp_path / "read_weights.py"
    script.write_text(
        SCRIPT.format(
            data=DATA_POINT_UUID,
            control=CONTROL_POINT_UUID,
            start=encode_command(Opcode.START_WEIGHT_MEAS).hex(),
            prefix=ADVERTISED_NAME_PREFIX,
        )
    )
    return script


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (ENV_VAR, "PYTHONPATH")}
    return env | {"PYTHONUNBUFFERED": "1"} | extra


async def spawn(*argv: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    """A session of its own: no controlling terminal (a SIGINT is one sent to the runner alone),
    and a process group :func:`finish` can end as a whole."""
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )


async def finish(proc: asyncio.subprocess.Process) -> Done:
    try:
        out, err = await asyncio.wait_for(proc.communicate(), LIMIT_S)
    except TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and the command it started
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Done(proc.returncode, out.decode(), err.decode())


async def sim_exec_child(spec: ExecSpec, *command: str, env: dict[str, str] | None = None) -> Done:
    argv = (sys.executable, "-c", RUNNER, spec.to_json(), *command)
    return await finish(await spawn(*argv, env=env or clean_env()))


# ------------------------------------------------------------------ an unmodified bleak program


async def test_script_reads_weights_from_a_simulated_progressor(tmp_path: Path) -> None:
    script = write_script(tmp_path)
    done = await sim_exec_child(ExecSpec(), sys.executable, str(script), str(WEIGHTS))
    assert done.code == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["name"] == "Progressor SIM"
    assert result["address"] == "F0:0D:5E:ED:00:01"
    assert result["backend"] == "SimBleakClient"
    weights = result["weights"]
    assert len(weights) == WEIGHTS
    # The simulated therapist starts pressing at the first write: 0 up to 40 N (4.1 kg).
    assert all(isinstance(w, float) and math.isfinite(w) for w in weights)
    assert all(-0.1 < w < 45.0 / KGF_N for w in weights)
    assert len(set(weights)) > WEIGHTS // 2, "the weights should change"
    assert done.stderr.splitlines().count(LABEL) == 1


@pytest.mark.skipif(sys.platform != "linux", reason="the real backend checked here is BlueZ")
@pytest.mark.skipif(HAS_SYSTEM_DBUS, reason="this machine has a D-Bus system bus")
async def test_the_same_script_without_sim_exec_reaches_real_bleak(tmp_path: Path) -> None:
    script = write_script(tmp_path)
    done = await finish(await spawn(sys.executable, str(script), "1", env=clean_env()))
    assert done.code != 0
    assert "bleak/backends/bluezdbus" in done.stderr  # bleak's own backend raised
    assert "FileNotFoundError" in done.stderr  # no D-Bus system bus: no Bluetooth here
    assert "devicectl sim exec" not in done.stderr


async def test_hook_runs_the_users_sitecustomize_too(tmp_path: Path) -> None:
    theirs = tmp_path / "their_site"
    theirs.mkdir()
    (theirs / "sitecustomize.py").write_text(
        "import sys\nprint('their hook ran', file=sys.stderr)\n"
    )
    probe = "import bleak; print(bleak.BleakScanner(scanning_mode='passive').backend_id)"
    env = clean_env(PYTHONPATH=str(theirs))
    done = await sim_exec_child(ExecSpec(), sys.executable, "-c", probe, env=env)
    assert done.code == 0, done.stderr
    assert done.stdout.strip() == "SimBleakScanner"
    assert "their hook ran" in done.stderr.splitlines()
    assert LABEL in done.stderr.splitlines()


async def test_hook_fails_loudly_where_the_simulators_cannot_load(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    (shadow / "simulators").mkdir(parents=True)
    (shadow / "simulators" / "__init__.py").write_text("raise ImportError('a stranger')\n")
    # The program's Python finds this package, not devicectl's, where it looks for simulators.
    program = f"import sys; sys.path.insert(0, {str(shadow)!r}); import bleak"
    done = await sim_exec_child(ExecSpec(), sys.executable, "-c", program)
    assert done.code == 1
    assert "ImportError: devicectl sim exec: this Python" in done.stderr
    assert "cannot load devicectl's simulators (a stranger)" in done.stderr
    assert LABEL not in done.stderr


async def test_a_process_that_never_imports_bleak_is_left_alone() -> None:
    probe = "import sys; print('bleak' in sys.modules)"
    done = await sim_exec_child(ExecSpec(), sys.executable, "-c", probe)
    assert (done.code, done.stdout.strip(), done.stderr) == (0, "False", "")


# ------------------------------------------------------------------ exit codes and signals


@pytest.mark.parametrize("code", [0, 3, 255])
def test_exit_code_is_the_commands(code: int) -> None:
    assert sim_exec.run(ExecSpec(), [sys.executable, "-c", f"raise SystemExit({code})"]) == code


def test_death_by_signal_is_128_plus_n() -> None:
    suicide = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    assert sim_exec.run(ExecSpec(), [sys.executable, "-c", suicide]) == 128 + signal.SIGKILL


def test_command_not_found(capfd: pytest.CaptureFixture[str]) -> None:
    assert sim_exec.run(ExecSpec(), ["no-such-command-here", "--help"]) == 127
    assert "devicectl sim exec: command not found: no-such-command-here" in capfd.readouterr().err


def test_command_not_executable(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "not_executable.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    assert sim_exec.run(ExecSpec(), [str(script)]) == 126
    assert f"devicectl sim exec: permission denied: {script}" in capfd.readouterr().err


def test_empty_command_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match=r"no command to run; usage: devicectl sim exec"):
        sim_exec.run(ExecSpec(), [])


def test_signal_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert sim_exec.run(ExecSpec(), [sys.executable, "-c", "pass"]) == 0
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
async def test_signals_are_forwarded_to_the_command(signum: signal.Signals) -> None:
    waits = "import signal; print('ready', flush=True); signal.pause()"
    argv = (sys.executable, "-c", RUNNER, ExecSpec().to_json(), sys.executable, "-c", waits)
    proc = await spawn(*argv, env=clean_env())
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), LIMIT_S)
        assert line == b"ready\n"  # the command runs, so the runner's handlers are in place
        proc.send_signal(signum)
    finally:
        done = await finish(proc)
    assert done.code == 128 + signum, done.stderr


# Counts the SIGINTs it gets; on SIGTERM says how many and exits 0.
COUNTS_SIGINTS = """\
import signal, sys
count = 0
def on_int(*_):
    global count
    count += 1
    print("interrupted", flush=True)
def on_term(*_):
    print(f"SIGINTs: {count}", flush=True)
    sys.exit(0)
signal.signal(signal.SIGINT, on_int)
signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
while True:
    signal.pause()
"""

# Runs the runner on a new pseudo-terminal, types Ctrl-C at it, then sends the runner SIGTERM.
# Signals pending together are handled in number order, by the runner and by the command, so a
# SIGINT the runner forwarded would reach the command before the SIGTERM does.
ON_A_TERMINAL = """\
import os, pty, signal, sys
runner, spec, program = sys.argv[1:4]
pid, tty = pty.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-c", runner, spec, sys.executable, "-c", program])
seen = b""
def read_until(marker):
    global seen
    while marker not in seen:
        try:
            chunk = os.read(tty, 1024)
        except OSError:  # EIO: the terminal's last user has gone
            chunk = b""
        if not chunk:
            sys.exit(f"the terminal closed before {marker!r}: {seen!r}")
        seen += chunk
read_until(b"ready")
os.write(tty, b"\\x03")
read_until(b"interrupted")
os.kill(pid, signal.SIGTERM)
read_until(b"SIGINTs: ")
read_until(b"\\n")
_, status = os.waitpid(pid, 0)
print(seen.decode().split("SIGINTs: ")[1].strip(), os.waitstatus_to_exitcode(status))
"""


async def test_ctrl_c_at_a_terminal_reaches_the_command_once() -> None:
    argv = (sys.executable, "-c", ON_A_TERMINAL, RUNNER, ExecSpec().to_json(), COUNTS_SIGINTS)
    done = await finish(await spawn(*argv, env=clean_env()))
    assert done.code == 0, done.stderr
    assert done.stdout.split() == ["1", "0"]  # one SIGINT (the terminal's); the runner exited 0


# ------------------------------------------------------------------ the hook's patch, in-process


@pytest.fixture
def restore_bleak(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever install() replaces in bleak is put back after the test (by monkeypatch)."""
    for _, _, selector, home in sim_exec._SELECTORS:
        for module in (bleak, importlib.import_module(home)):
            monkeypatch.setattr(module, selector, getattr(module, selector))


@pytest.mark.usefixtures("restore_bleak")
async def test_installed_radio_serves_each_model_at_its_own_address() -> None:
    spec = ExecSpec.parse(["progressor", f"progressor?profile=constant:{2 * KGF_N}"], seed=7)
    label = io.StringIO()
    sim_exec.install(spec, stream=label)
    assert label.getvalue() == (
        "devicectl sim exec: simulated peripherals: Progressor SIM (F0:0D:5E:ED:00:01), "
        "Progressor SIM (F0:0D:5E:ED:00:02)\n"
    )
    device = await BleakScanner.find_device_by_address("F0:0D:5E:ED:00:02", timeout=WAIT_S)
    assert device is not None
    assert device.name == "Progressor SIM"
    decoder = NotificationDecoder()
    batch: asyncio.Future[WeightSamples] = asyncio.get_running_loop().create_future()

    def on_data(_: Any, data: bytearray) -> None:
        for event in decoder.feed(bytes(data)):
            if isinstance(event, WeightSamples) and not batch.done():
                batch.set_result(event)

    async with BleakClient(device) as client:
        assert client.backend_id == "SimBleakClient"
        await client.start_notify(DATA_POINT_UUID, on_data)
        await client.write_gatt_char(CONTROL_POINT_UUID, encode_command(Opcode.START_WEIGHT_MEAS))
        samples = (await asyncio.wait_for(batch, WAIT_S)).samples
    assert [s.kg for s in samples] == pytest.approx([2.0] * len(samples))  # the constant profile


async def test_a_program_may_stop_the_stream_then_disconnect() -> None:
    client_backend, scanner_backend = sim_exec.build_registry(ExecSpec()).backends()
    device = await BleakScanner.find_device_by_address(
        ExecSpec().addresses()[0], timeout=WAIT_S, backend=scanner_backend
    )
    assert device is not None
    streaming = asyncio.Event()
    client = BleakClient(device, backend=client_backend)
    await client.connect()
    await client.start_notify(DATA_POINT_UUID, lambda _, data: streaming.set())
    await client.write_gatt_char(CONTROL_POINT_UUID, encode_command(Opcode.START_WEIGHT_MEAS))
    await asyncio.wait_for(streaming.wait(), WAIT_S)
    stop = encode_command(Opcode.STOP_WEIGHT_MEAS)
    await client.write_gatt_char(CONTROL_POINT_UUID, stop, response=True)
    disconnecting = asyncio.create_task(client.disconnect())
    try:
        await asyncio.wait({disconnecting}, timeout=DISCONNECT_S)  # waits, cancels nothing
        assert disconnecting.done(), "disconnect() hangs: its pump ignored the cancellation"
    finally:
        # Cancelling the hung disconnect() cancels the pump it awaits a second time: both end.
        disconnecting.cancel()
        await asyncio.gather(disconnecting, return_exceptions=True)


@pytest.mark.usefixtures("restore_bleak")
async def test_installed_radio_has_no_adapter_api() -> None:
    sim_exec.install(ExecSpec(), stream=io.StringIO())
    with pytest.raises(NotImplementedError, match="simulated radio has no BleakAdapter API"):
        await BleakAdapter.get()


def test_a_changed_bleak_is_refused_before_anything_is_patched() -> None:
    fake = types.ModuleType("bleak")
    for name in ("BleakScanner", "BleakClient", "BleakAdapter"):
        setattr(fake, name, getattr(bleak, name))  # their code looks in the real bleak
    with pytest.raises(RuntimeError, match=r"no longer picks its default backend through bleak\."):
        sim_exec.check_bleak(fake)
    sim_exec.check_bleak(bleak)  # the installed bleak is the one install() was written for


def test_install_from_environment_needs_the_variable() -> None:
    assert sim_exec.install_from_environment({}) is False


# ------------------------------------------------------------------ the spec and the environment


def test_spec_survives_the_environment() -> None:
    spec = ExecSpec.parse(
        ["progressor?drop_every=3&low_battery=true", "progressor?profile=holds:25"], seed=4
    )
    assert ExecSpec.from_json(spec.to_json()) == spec
    assert [m.text() for m in spec.models] == [
        "progressor?drop_every=3&low_battery=true",
        "progressor?profile=holds%3A25",
    ]
    assert spec.models[0].progressor_faults().drop_every == 3
    assert spec.addresses() == ["F0:0D:5E:ED:00:01", "F0:0D:5E:ED:00:02"]


def test_command_line_faults_and_profile_apply_where_a_model_sets_none() -> None:
    spec = ExecSpec.parse(
        ["progressor", "progressor?drop_every=5&profile=holds"],
        faults={"drop_every": "2", "stuck_n": "3"},
        profile="constant:10",
    )
    first, second = spec.models
    assert (dict(first.faults), first.profile) == (
        {"drop_every": "2", "stuck_n": "3"},
        "constant:10",
    )
    assert (dict(second.faults), second.profile) == ({"drop_every": "5", "stuck_n": "3"}, "holds")
    assert ExecSpec.parse([], profile="constant:1").models == (SimModel(profile="constant:1"),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mark10", "no simulated 'mark10' peripheral; use progressor"),
        ("progressor?drop_every=0", "drop_every must be a whole number >= 1"),
        ("progressor?fly=1", "unknown simulator setting 'fly'"),
        ("progressor?profile=wobble", "unknown simulated therapist profile 'wobble'"),
        ("progressor?profile=constant:x", "unknown simulated therapist profile"),
        ("progressor?profile=holds:-5", "unknown simulated therapist profile"),
        ("progressor?drop_every=2&drop_every=3", "drop_every is given twice"),
        ("progressor?drop_every", "write settings as NAME=VALUE joined by &"),
    ],
)
def test_bad_models_are_refused_in_the_parent(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExecSpec.parse([text])


@pytest.mark.parametrize(
    "text", ["", "{}", '{"format": 2, "seed": 0, "models": []}', '{"format": 1, "models": 3}']
)
def test_a_spec_from_another_devicectl_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=f"{ENV_VAR} holds no spec this devicectl reads"):
        ExecSpec.from_json(text)


def test_spec_bounds() -> None:
    assert ExecSpec.parse([]) == ExecSpec((SimModel(),))
    with pytest.raises(ValueError, match="1 to 255 peripherals"):
        ExecSpec(())
    with pytest.raises(ValueError, match="seed must be a whole number"):
        ExecSpec(seed=True)


def test_environment_puts_the_hook_first_and_keeps_the_rest() -> None:
    hook = sim_exec.hook_dir()
    assert (hook / "sitecustomize.py").is_file()
    base = {"PYTHONPATH": f"/a{os.pathsep}/b", "HOME": "/home/x"}
    env = sim_exec.exec_environment(ExecSpec(), base)
    assert env["PYTHONPATH"] == os.pathsep.join([str(hook), "/a", "/b"])
    assert env["HOME"] == "/home/x"
    assert ExecSpec.from_json(env[ENV_VAR]) == ExecSpec()
    assert base == {"PYTHONPATH": f"/a{os.pathsep}/b", "HOME": "/home/x"}  # not modified
    assert sim_exec.exec_environment(ExecSpec(), {})["PYTHONPATH"] == str(hook)


def test_the_runner_never_hands_the_hook_to_a_program_it_does_not_start() -> None:
    # run() builds the child's environment only: this process stays as it was.
    assert sim_exec.run(ExecSpec(), [sys.executable, "-c", "pass"]) == 0
    assert ENV_VAR not in os.environ
    assert str(sim_exec.hook_dir()) not in os.environ.get("PYTHONPATH", "")
