"""What each command does, once the CLI has parsed its arguments."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import stat
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devicectl import opener
from devicectl.builtin import builtin_names, builtin_plan, builtin_text, describe_plan, resolve_plan
from devicectl.calibrate import calibration_record
from devicectl.console import dose_table
from devicectl.errors import DevicectlError, PlanError
from devicectl.export import export_csv, export_json
from devicectl.plan import Plan
from devicectl.planfile import load_plan
from devicectl.records import DeviceRecord, Records, SessionSummary, SessionWriter
from devicectl.session import EXIT_BAD_INPUT, SessionResult, SessionRunner
from devicectl.sinks import ConsoleSink, JsonSink
from devicectl.summary import dose_summary
from devicectl.timing.types import Command
from drivers.calibration import CalibratedSensor, CalibrationError, CalibrationStore
from drivers.force import DeviceInfo
from drivers.supervisor import DEFAULT_GIVE_UP_S

DEMO_PLAN = "demo"
DEMO_SENSOR = "mark10@sim"
_KEYS = {
    "": Command.CONFIRM,
    "p": Command.PAUSE,
    "r": Command.RESUME,
    "n": Command.NEXT,
    "s": Command.STOP,
}
KEY_HELP = (
    "keys, then Enter: (Enter) continue  p pause  r resume  n next step  t tare  "
    "+ raise band  - lower band  f N client feedback 0-10  s STOP"
)


# -- sessions ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    plan = resolve_plan(args.plan)
    spec = opener.parse_sensor(args.tbar)
    options = opener.OpenOptions(
        rate_hz=args.rate,
        calibrations=calibrations_store(args.calibrations),
        capture=args.capture,
        reconnect_for_s=args.reconnect_for or None,
    )
    return asyncio.run(run_session(plan, spec, db=args.db, json_out=args.json, options=options))


def demo(args: argparse.Namespace) -> int:
    plan = builtin_plan(DEMO_PLAN)
    spec = opener.parse_sensor(DEMO_SENSOR)
    options = opener.OpenOptions(reconnect_for_s=DEFAULT_GIVE_UP_S)
    return asyncio.run(run_session(plan, spec, db=args.db, json_out=args.json, options=options))


def calibrations_store(path: Path | None) -> CalibrationStore:
    """The calibrations store, read now: a corrupt file is bad input (exit 2) before anything
    is opened, not a device failure mid-connect."""
    store = CalibrationStore(path)
    try:
        store.all()
    except CalibrationError as exc:
        raise DevicectlError(str(exc)) from exc
    return store


def plan_text(plan: Plan) -> str:
    """The plan as written, for the records."""
    if plan.source.startswith("builtin:"):
        return builtin_text(plan.source.removeprefix("builtin:"))
    try:
        return Path(plan.source).read_text(encoding="utf-8")
    except OSError:
        return ""


def device_line(info: DeviceInfo) -> str:
    label = " (SIMULATED)" if info.simulated else ""
    ident = " ".join(
        x
        for x in (
            info.model,
            info.serial,
            info.firmware and f"fw {info.firmware}",
            info.battery and f"battery {info.battery}",
        )
        if x
    )
    return f"T-bar: {ident} on {info.address}{label}"


@dataclass(frozen=True)
class SessionDevices:
    """An opened, connected T-bar and the session record begun for it."""

    sensor: CalibratedSensor
    info: DeviceInfo
    writer: SessionWriter


@asynccontextmanager
async def session_devices(
    plan: Plan,
    spec: opener.SensorSpec,
    *,
    db: Path | None,
    options: opener.OpenOptions,
    say: Callable[[str], None],
) -> AsyncIterator[SessionDevices]:
    """Open the records and the T-bar, connect it and begin the session's record; ``say`` gets
    what the user should read first (crash recoveries, the device, its calibration). Everything
    is closed on exit. Shared by the headless and the terminal-UI sessions."""
    records = Records.open(db)
    try:
        for session_id in records.recovered:
            say(f"session {session_id} was left running by a crash: marked interrupted")
        options = dataclasses.replace(
            options, on_capture_error=lambda exc: say(f"capture stopped: {exc}")
        )
        async with opener.open_force_sensor(spec, plan=plan, options=options) as sensor:
            info = await sensor.connect()
            say(device_line(info))
            if sensor.calibration is not None:
                cal = sensor.calibration
                say(f"calibration {cal.id} of {cal.created_at} applied (scale {cal.scale:.4f})")
            writer = records.begin(
                plan_name=plan.name,
                plan_source=plan.source,
                plan_text=plan_text(plan),
                devices=[_device_record(spec.text, info, calibration_record(sensor.calibration))],
            )
            yield SessionDevices(sensor, info, writer)
    finally:
        records.close()


async def run_session(
    plan: Plan,
    spec: opener.SensorSpec,
    *,
    db: Path | None,
    json_out: bool,
    options: opener.OpenOptions,
) -> int:
    sink: ConsoleSink | JsonSink = JsonSink() if json_out else ConsoleSink(plan)
    async with session_devices(plan, spec, db=db, options=options, say=sink.message) as opened:
        runner = SessionRunner(plan, opened.sensor, opened.writer, sink)
        sink.message(f"plan: {plan.name} ({len(plan.steps)} steps); {KEY_HELP}")
        async with _keyboard(runner):
            with signals_stop(runner.interrupt):
                result = await runner.run()
    report_result(result, plan, sink)
    return result.exit_code


def _device_record(address: str, info: DeviceInfo, calibration: str) -> DeviceRecord:
    return DeviceRecord(
        role="tbar",
        address=address,
        model=info.model,
        serial=info.serial,
        firmware=info.firmware,
        simulated=info.simulated,
        calibration=calibration,
    )


def report_result(result: SessionResult, plan: Plan, sink: ConsoleSink | JsonSink) -> None:
    if isinstance(sink, JsonSink):
        summary = dose_summary(result.dose, plan, result.error or "")
        sink.emit(
            {
                "type": "summary",
                "session_id": result.session_id,
                "status": result.status,
                "exit_code": result.exit_code,
                "error": result.error,
                "dose": summary,
            }
        )
    else:
        sink.message("")
        sink.message(dose_table(result.dose, plan))
        sink.message(f"session {result.session_id}: {result.status}")
    if result.error:
        print(f"devicectl: error: {result.error}", file=sys.stderr)


# The signals that stop a session: every actuator first, then a clean close of the record.
STOP_SIGNALS = {
    signal.SIGINT: "interrupted (Ctrl-C)",
    signal.SIGTERM: "terminated (SIGTERM)",
    signal.SIGHUP: "the terminal closed (SIGHUP)",
}


@contextmanager
def signals_stop(
    interrupt: Callable[[str], None], signals: Iterable[signal.Signals] = tuple(STOP_SIGNALS)
) -> Iterator[None]:
    """While inside, each of ``signals`` calls ``interrupt(reason)``: an emergency stop (the
    live screen leaves out SIGINT, which is its Ctrl-C key)."""
    loop = asyncio.get_running_loop()
    chosen = list(signals)
    # asyncio.run's own Ctrl-C handling must come back afterwards (remove_signal_handler would
    # put Python's default back, raising KeyboardInterrupt wherever the closing code happens to be).
    before = {sig: signal.getsignal(sig) for sig in chosen}
    for sig in chosen:
        loop.add_signal_handler(sig, interrupt, STOP_SIGNALS[sig])
    try:
        yield
    finally:
        for sig, handler in before.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)


@asynccontextmanager
async def _keyboard(runner: SessionRunner) -> AsyncIterator[None]:
    """Line commands on stdin, read without blocking the loop. Without a readable stdin (a file,
    or closed), nobody can confirm an untimed pause, so those are confirmed at once."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    if not _stdin_can_be_watched():
        runner.auto_confirm = True
        yield
        return
    fd = _own_stdin()
    was_blocking = os.get_blocking(fd)
    pipe = os.fdopen(fd, "rb", buffering=0)
    try:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
    except (OSError, ValueError):
        pipe.close()
        runner.auto_confirm = True
        yield
        return
    task = asyncio.create_task(_read_keys(reader, runner), name="keyboard")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # The pipe transport made its file non-blocking; whoever reads it after us expects blocking.
        with contextlib.suppress(OSError):
            os.set_blocking(pipe.fileno(), was_blocking)
        transport.close()


def _own_stdin() -> int:
    """A descriptor for the keys that shares no file state with stdout. A terminal is opened
    afresh: stdin, stdout and stderr usually share one open terminal file, and the pipe reader
    makes its file non-blocking, which would make status writes fail on a stalled terminal."""
    fd = sys.stdin.fileno()
    if os.isatty(fd):
        return os.open(os.ttyname(fd), os.O_RDONLY | os.O_NOCTTY)
    return os.dup(fd)  # a pipe: its read end is ours alone


def _stdin_can_be_watched() -> bool:
    """A terminal, pipe or socket: the event loop can watch it. Not /dev/null or a file."""
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
        return os.isatty(fd) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
    except (OSError, ValueError, AttributeError):
        return False


async def _read_keys(reader: asyncio.StreamReader, runner: SessionRunner) -> None:
    """One command per line (KEY_HELP): its first character, except ``f N [note]``, the client's
    feedback N (0-10) with an optional note; ``+`` / ``-`` move the target band."""
    while line := await reader.readline():
        text = line.decode(errors="replace").strip()
        key = text.lower()[:1]
        if key == "t":  # a side task: the stop key must never wait behind a tare
            runner.keep(asyncio.create_task(runner.tare(), name="tare"))
        elif key in ("+", "-"):  # raise: the client says "too little"; lower: "too much"
            runner.adjust_band("up" if key == "+" else "down")
        elif key == "f":
            score, _, note = text[1:].strip().partition(" ")
            try:
                runner.feedback(int(score), note.strip())
            except ValueError:  # not a whole number, or outside 0-10 (the runner checks)
                runner.sink.message(
                    f"feedback not recorded: {score or 'no score'} is not 0-10; e.g. f 7 sore"
                )
        elif key in _KEYS:
            runner.command(_KEYS[key], reason="stop key" if key == "s" else "")
    runner.auto_confirm = True  # end of input: nobody can confirm a pause any more


# -- plans -------------------------------------------------------------------------------------


def plans_list(args: argparse.Namespace) -> int:
    for name in builtin_names():
        plan = builtin_plan(name)
        print(f"{name:16} {plan.name}: {plan.description}")
    return 0


def plans_show(args: argparse.Namespace) -> int:
    print(describe_plan(resolve_plan(args.name)))
    return 0


def plans_validate(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        try:
            plan = load_plan(path)
        except PlanError as exc:
            print(f"devicectl: error: {exc}", file=sys.stderr)
            failed += 1
        else:
            print(f"{path}: ok ({plan.name}, {len(plan.steps)} steps)")
    return EXIT_BAD_INPUT if failed else 0


# -- records -----------------------------------------------------------------------------------


def _summary_dict(s: SessionSummary) -> dict[str, Any]:
    return {
        "id": s.id,
        "plan": s.plan_name,
        "status": s.status,
        "started_at": s.started_at,
        "ended_at": s.ended_at,
        "duration_s": s.duration_s,
        "holds": s.holds,
        "samples": s.samples,
        "devices": [
            {
                "role": d.role,
                "address": d.address,
                "model": d.model,
                "simulated": d.simulated,
                "calibration": d.calibration_data,
            }
            for d in s.devices
        ],
    }


def history(args: argparse.Namespace) -> int:
    records = Records.open(args.db)
    try:
        sessions = records.sessions()
    finally:
        records.close()
    if args.json:
        print(json.dumps([_summary_dict(s) for s in sessions], indent=2))
        return 0
    if not sessions:
        print("no sessions recorded yet")
    for s in sessions:
        duration = "" if s.duration_s is None else f"{s.duration_s:6.0f} s"
        sim = " (simulated)" if any(d.simulated for d in s.devices) else ""
        holds = f"{s.holds:3} hold" + ("" if s.holds == 1 else "s")
        print(
            f"{s.id:5}  {s.started_at}  {s.status:11}  {duration:>8}  {holds:9}  {s.plan_name}{sim}"
        )
    return 0


def export(args: argparse.Namespace) -> int:
    records = Records.open(args.db)
    try:
        if args.format == "json":
            text = json.dumps(export_json(records, args.id), indent=2)
            if args.out is None:
                print(text)
            else:
                args.out.write_text(text + "\n", encoding="utf-8")
                print(f"wrote {args.out}", file=sys.stderr)
        else:
            for path in export_csv(records, args.id, args.out or Path.cwd()):
                print(path)
    except OSError as exc:
        raise DevicectlError(f"cannot write the export: {exc}") from exc
    finally:
        records.close()
    return 0


# -- simulators --------------------------------------------------------------------------------


def sim_keys() -> list[str]:
    """The models with a simulator (``devicectl sim MODEL`` serves the serial ones; for a BLE
    one it says how to use it instead)."""
    return [entry.key for entry, _ in opener.sim_models()]


def sim_list(args: argparse.Namespace) -> int:
    for entry, kind in opener.sim_models():
        if kind == "serial":
            how = f"devicectl sim {entry.key} [--pty | --tcp PORT], or {entry.key}@sim"
        else:
            how = f"{entry.key}@sim in a session (a simulated Bluetooth peripheral)"
        print(f"{entry.key:12} {entry.name}")
        print(f"{'':12} served: {how}")
        switches = opener.fault_switches(kind)
        print(f"{'':12} faults: " + ", ".join(f"{s.name} ({s.help})" for s in switches))
    return 0


def sim_exec(args: argparse.Namespace) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    return opener.sim_exec(args.model, dict(args.fault), args.profile, args.seed, argv)


def sim_replay(args: argparse.Namespace) -> int:
    return asyncio.run(opener.serve_replay(args.file, tcp_port=args.tcp))


def sim(args: argparse.Namespace) -> int:
    plan = resolve_plan(args.plan)
    faults = dict(args.fault)
    return asyncio.run(
        opener.serve_simulator(
            args.model,
            plan,
            tcp_port=args.tcp,
            loop=args.loop,
            profile=args.profile,
            faults=faults,
        )
    )
