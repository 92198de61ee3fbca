"""``devicectl sim exec``: run an unmodified bleak program against simulated peripherals.

The parent side (:func:`run`) starts the command as a child process with two additions to its
environment: :data:`ENV_VAR` holds the :class:`ExecSpec` as JSON, and ``PYTHONPATH`` starts with
the directory of ``exec_hook/sitecustomize.py``. Every Python interpreter in the child's process
tree runs that ``sitecustomize`` at startup; it waits for the program to import bleak and then
calls :func:`install`, which makes bleak's default backend the simulated radio of
:mod:`simulators.ble_backend`. Nothing else in the program changes: ``BleakScanner()`` and
``BleakClient()`` without ``backend=`` find, connect to and stream from the simulated
peripherals, whose advertised names end in `` SIM``; a line on stderr lists them.

The peripherals live in the child (bleak's objects run there), one simulated neighbourhood per
process that uses bleak. Each is built on first use by a scanner or client, because no event
loop exists when the interpreter starts; its clock is the running loop's.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import importlib.resources
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, MappingProxyType, ModuleType, TracebackType
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode

from bleak.backends.adapter import BaseBleakAdapter

from protocols.progressor import ADVERTISED_NAME_PREFIX

from . import catalog
from .ble_backend import SimRegistry, progressor_peripheral
from .force_model import TherapistModel
from .progressor import ProgressorDevice, ProgressorFaults

__all__ = [
    "ENV_VAR",
    "EXIT_CANNOT_EXECUTE",
    "EXIT_NOT_FOUND",
    "MODELS",
    "USAGE",
    "ExecSpec",
    "SimModel",
    "build_registry",
    "check_bleak",
    "exec_environment",
    "hook_dir",
    "install",
    "install_from_environment",
    "run",
]

# The child's switch: the hook does nothing unless this holds a spec.
ENV_VAR = "DEVICECTL_SIM_EXEC"
# Bumped when the JSON spec changes, so a child with another devicectl fails instead of guessing.
SPEC_FORMAT = 1
# Models served as BLE peripherals; the serial simulators are reached through ptys instead.
MODELS = ("progressor",)
# A shell's codes for a command it cannot find or cannot execute (POSIX "Command Search and
# Execution"), so scripts wrapping ``sim exec`` can tell them from the program's own failures.
EXIT_NOT_FOUND = 127
EXIT_CANNOT_EXECUTE = 126
# A child killed by signal N exits 128+N, as a shell reports it.
_SIGNAL_EXIT_BASE = 128
# What the command line takes (the CLI's parser is the lead's; this is for errors from run()).
USAGE = (
    "usage: devicectl sim exec [--model MODEL[?KEY=VALUE&...]]... [--fault KEY=VALUE]... "
    "[--profile PROFILE] [--seed N] -- COMMAND [ARG]..."
)
# Every line the hook or the runner writes starts with this, so it is never taken for the program's.
_LABEL = "devicectl sim exec"

# Addresses count up from the simulator's usual one (ble_backend.progressor_peripheral's default)
# in the last byte, which bounds the neighbourhood at 255 peripherals.
_ADDRESS_PREFIX = "F0:0D:5E:ED:00:"
_MAX_PERIPHERALS = 0xFF
# "Progressor SIM": the name a real client filters on, marked as simulated (ble_backend).
_SIM_NAME = f"{ADVERTISED_NAME_PREFIX} SIM"
# The simulator's default Progressor id; the n-th peripheral gets this + n, so each is distinct.
_PROGRESSOR_ID = 0x5EED_0001

# By default the simulated therapist presses and holds, then rests, for ever, so a program
# sees changing weights.
DEFAULT_PROFILE = "holds"
# The one per-model setting that is not a fault switch.
_PROFILE_KEY = "profile"

# The signals a terminal or a supervisor uses to stop a program; both go on to the child.
_FORWARDED = (signal.SIGINT, signal.SIGTERM)


# ---------------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class SimModel:
    """One simulated peripheral: its model, fault switches (as ``catalog.BLE_FAULTS`` names
    them, values as text) and the simulated therapist's profile. Checked when made."""

    kind: str = "progressor"
    faults: Mapping[str, str] = field(default_factory=dict)
    profile: str = DEFAULT_PROFILE

    def __post_init__(self) -> None:
        if self.kind not in MODELS:
            raise ValueError(
                f"sim exec has no simulated {self.kind!r} peripheral; use {', '.join(MODELS)}"
            )
        object.__setattr__(self, "faults", MappingProxyType(dict(self.faults)))
        self.progressor_faults()
        self.therapist(0)

    @classmethod
    def parse(cls, text: str, defaults: Mapping[str, str] | None = None) -> SimModel:
        """``progressor`` or ``progressor?drop_every=3&profile=constant:50``; ValueError.
        ``defaults`` (fault switches and ``profile``) apply where ``text`` sets nothing else."""
        kind, _, query = text.partition("?")
        settings: dict[str, str] = {}
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
        except ValueError:
            raise ValueError(f"{text!r}: write settings as NAME=VALUE joined by &") from None
        for name, value in pairs:
            if name in settings:
                raise ValueError(f"{text!r}: {name} is given twice")
            settings[name] = value
        settings = {**(defaults or {}), **settings}
        profile = settings.pop(_PROFILE_KEY, DEFAULT_PROFILE)
        return cls(kind.strip().lower(), settings, profile)

    def text(self) -> str:
        """The form :meth:`parse` reads."""
        settings = dict(self.faults)
        if self.profile != DEFAULT_PROFILE:
            settings[_PROFILE_KEY] = self.profile
        return f"{self.kind}?{urlencode(settings)}" if settings else self.kind

    def progressor_faults(self) -> ProgressorFaults:
        """The fault switches, checked by the catalog (ValueError says what is allowed)."""
        return catalog.ble_faults(self.faults)

    def therapist(self, seed: int) -> TherapistModel:
        """The simulated therapist: pressing and holding in a loop, or a constant force."""
        return catalog.therapist(self.profile, seed=seed)


@dataclass(frozen=True)
class ExecSpec:
    """The simulated neighbourhood a ``sim exec`` child gets: its peripherals, in address order,
    and the seed of their simulated therapists (the n-th peripheral's is ``seed + n``)."""

    models: tuple[SimModel, ...] = (SimModel(),)
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= len(self.models) <= _MAX_PERIPHERALS:
            raise ValueError(f"sim exec serves 1 to {_MAX_PERIPHERALS} peripherals")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"the seed must be a whole number, not {self.seed!r}")

    @classmethod
    def parse(
        cls,
        models: Sequence[str],
        *,
        seed: int = 0,
        faults: Mapping[str, str] | None = None,
        profile: str | None = None,
    ) -> ExecSpec:
        """From the command line: ``--model`` values (none: one Progressor), and ``--fault``
        switches and a ``--profile`` for every model that does not set its own."""
        defaults = dict(faults or {})
        if profile is not None:
            defaults[_PROFILE_KEY] = profile
        texts = models or ["progressor"]
        return cls(tuple(SimModel.parse(text, defaults) for text in texts), seed)

    def addresses(self) -> list[str]:
        return [f"{_ADDRESS_PREFIX}{n + 1:02X}" for n in range(len(self.models))]

    def label(self) -> str:
        """The one line that says the peripherals the program talks to are simulated."""
        names = ", ".join(f"{_SIM_NAME} ({address})" for address in self.addresses())
        return f"{_LABEL}: simulated peripherals: {names}"

    def to_json(self) -> str:
        models = [
            {"kind": m.kind, "faults": dict(m.faults), "profile": m.profile} for m in self.models
        ]
        return json.dumps({"format": SPEC_FORMAT, "seed": self.seed, "models": models})

    @classmethod
    def from_json(cls, text: str) -> ExecSpec:
        """The spec :meth:`to_json` wrote; ValueError for anything else."""
        try:
            data = json.loads(text)
            if data["format"] != SPEC_FORMAT:
                raise ValueError(f"spec format {data['format']!r}, expected {SPEC_FORMAT}")
            models = tuple(
                SimModel(m["kind"], _text_map(m["faults"]), m["profile"]) for m in data["models"]
            )
            return cls(models, data["seed"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{ENV_VAR} holds no spec this devicectl reads: {exc}") from None


def _text_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise TypeError(f"fault switches must map names to text, not {value!r}")
    return {str(k): v for k, v in value.items()}


# ---------------------------------------------------------------------------------- the parent


def hook_dir() -> Path:
    """The directory holding the startup hook; it must be on disk for ``PYTHONPATH``."""
    hook = importlib.resources.files("simulators") / "exec_hook"
    if not isinstance(hook, Path) or not (hook / "sitecustomize.py").is_file():
        raise RuntimeError(
            f"{_LABEL}: simulators/exec_hook/sitecustomize.py is not installed as a file "
            f"(found {hook}); reinstall devicectl from a wheel or a source checkout"
        )
    return hook


def exec_environment(spec: ExecSpec, base_env: Mapping[str, str]) -> dict[str, str]:
    """``base_env`` plus the spec and the hook, first on ``PYTHONPATH`` (the rest kept after it:
    the hook runs the ``sitecustomize`` it hides)."""
    env = dict(base_env)
    env[ENV_VAR] = spec.to_json()
    hook = str(hook_dir())
    rest = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = f"{hook}{os.pathsep}{rest}" if rest else hook
    return env


def run(spec: ExecSpec, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> int:
    """Run ``argv`` with the simulated peripherals in place of the radio and return its exit
    code (128+N if signal N killed it; 127 if there is no such command, 126 if it cannot be
    executed). stdin, stdout and stderr are the child's; SIGINT and SIGTERM go on to it.
    ``env`` defaults to this process's environment. ValueError (the usage) if ``argv`` is empty."""
    if not argv:
        raise ValueError(f"no command to run; {USAGE}")
    environment = exec_environment(spec, os.environ if env is None else env)
    with _SignalForwarder() as forwarder:
        try:
            child = subprocess.Popen(list(argv), env=environment)
        except FileNotFoundError:
            return _refuse(f"command not found: {argv[0]}", EXIT_NOT_FOUND)
        except PermissionError:
            return _refuse(f"permission denied: {argv[0]}", EXIT_CANNOT_EXECUTE)
        except OSError as exc:
            return _refuse(f"cannot execute {argv[0]}: {exc.strerror}", EXIT_CANNOT_EXECUTE)
        forwarder.follow(child)
        code = child.wait()
    return _SIGNAL_EXIT_BASE - code if code < 0 else code


def _refuse(message: str, code: int) -> int:
    print(f"{_LABEL}: {message}", file=sys.stderr, flush=True)
    return code


class _SignalForwarder:
    """While the child runs, SIGINT and SIGTERM sent to this process go on to it.

    A Ctrl-C typed at the terminal reaches the whole foreground process group, the child
    included, so that SIGINT is not sent again (a second one would cut short a program that
    handles the first gracefully); one sent to this process alone (``kill -INT``, a supervisor)
    is forwarded. This is the rule uv settled on for ``uv run`` (astral-sh/uv#11009, #13925).
    """

    def __init__(self) -> None:
        self._child: subprocess.Popen[bytes] | None = None
        self._pending: list[int] = []  # signals that came before the child existed
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _SignalForwarder:
        # Python runs signal handlers in the main thread only; elsewhere the child is on its own.
        if threading.current_thread() is threading.main_thread():
            for signum in _FORWARDED:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def follow(self, child: subprocess.Popen[bytes]) -> None:
        self._child = child
        pending, self._pending = self._pending, []
        for signum in pending:
            self._forward(child, signum)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._child is None:
            self._pending.append(signum)
        else:
            self._forward(self._child, signum)

    @staticmethod
    def _forward(child: subprocess.Popen[bytes], signum: int) -> None:
        if signum == signal.SIGINT and _terminal_interrupted(child.pid):
            return
        child.send_signal(signum)  # a no-op once the child has ended


def _terminal_interrupted(pid: int) -> bool:
    """True if a SIGINT came from the terminal to the foreground group, ``pid`` included."""
    try:
        tty = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False  # no controlling terminal: nobody typed Ctrl-C at one
    try:
        foreground = os.tcgetpgrp(tty)
        return os.getpgrp() == foreground and os.getpgid(pid) == foreground
    except OSError:
        return False
    finally:
        os.close(tty)


# ---------------------------------------------------------------------------------- the child

# bleak's default-backend selectors: (class, method, selector, the module defining it). The
# method looks the selector up in bleak's own namespace whenever no backend= is passed (bleak
# 3.1 bleak/__init__.py: BleakScanner.__init__, BleakClient.__init__, BleakAdapter.get).
_SELECTORS = (
    ("BleakScanner", "__init__", "get_platform_scanner_backend_type", "bleak.backends.scanner"),
    ("BleakClient", "__init__", "get_platform_client_backend_type", "bleak.backends.client"),
    ("BleakAdapter", "get", "get_platform_adapter_backend_type", "bleak.backends.adapter"),
)


def _loop_time() -> float:
    """The running loop's clock, as the backend's notification pump uses; outside a loop the
    clock asyncio's own loops use (``BaseEventLoop.time`` is ``time.monotonic``)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


def build_registry(spec: ExecSpec, *, clock: Callable[[], float] = _loop_time) -> SimRegistry:
    """The simulated neighbourhood ``spec`` describes."""
    registry = SimRegistry()
    for n, (model, address) in enumerate(zip(spec.models, spec.addresses(), strict=True)):
        seed = spec.seed + n
        device = ProgressorDevice(
            model.therapist(seed),
            clock=clock,
            faults=model.progressor_faults(),
            seed=seed,
            progressor_id=_PROGRESSOR_ID + n,
        )
        registry.add(progressor_peripheral(device, address=address, name=_SIM_NAME))
    return registry


class _Radio:
    """The registry's backends, the registry built on first use (in the program's loop)."""

    def __init__(self, spec: ExecSpec) -> None:
        self._spec = spec
        self._backends: tuple[type[Any], type[Any]] | None = None

    def client(self) -> tuple[type[Any], str]:
        # A custom backend's id is its class name, as bleak reports one given as backend=.
        backend = self._get()[0]
        return backend, backend.__name__

    def scanner(self) -> tuple[type[Any], str]:
        backend = self._get()[1]
        return backend, backend.__name__

    def _get(self) -> tuple[type[Any], type[Any]]:
        if self._backends is None:
            self._backends = build_registry(self._spec).backends()
        return self._backends


class _NoAdapter(BaseBleakAdapter):
    """The simulated radio has no adapter to ask for OS-level connections."""

    @classmethod
    async def get(cls, **kwargs: Any) -> _NoAdapter:
        # bleak documents NotImplementedError for a platform without the adapter API.
        raise NotImplementedError(f"{_LABEL}: the simulated radio has no BleakAdapter API")


def _adapter() -> tuple[type[Any], str]:
    return _NoAdapter, "SimBleakAdapter"


def check_bleak(bleak: ModuleType) -> None:
    """RuntimeError unless ``bleak`` still picks its default backends where :func:`install`
    replaces them (each selector looked up by name in bleak's namespace by its caller)."""
    for cls_name, method, selector, _ in _SELECTORS:
        caller = getattr(getattr(bleak, cls_name, None), method, None)
        func = getattr(caller, "__func__", caller)
        code = getattr(func, "__code__", None)
        if (
            code is None
            or selector not in code.co_names
            or getattr(func, "__globals__", None) is not vars(bleak)
            or not callable(getattr(bleak, selector, None))
        ):
            raise RuntimeError(
                f"{_LABEL}: bleak {_version()} no longer picks its default backend through "
                f"bleak.{selector} in {cls_name}.{method}; simulators/exec.py must be updated "
                "for this bleak before simulated peripherals can replace the radio"
            )


def _version() -> str:
    try:
        return importlib.metadata.version("bleak")
    except importlib.metadata.PackageNotFoundError:
        return "(unknown version)"


def install(spec: ExecSpec, *, stream: TextIO | None = None) -> None:
    """Make bleak's default backends the simulated radio of ``spec`` in this process and say so
    on ``stream`` (stderr). Raises RuntimeError, changing nothing, if bleak's internals moved."""
    import bleak

    check_bleak(bleak)
    radio = _Radio(spec)
    replacements: dict[str, Callable[[], tuple[type[Any], str]]] = {
        "get_platform_scanner_backend_type": radio.scanner,
        "get_platform_client_backend_type": radio.client,
        "get_platform_adapter_backend_type": _adapter,
    }
    for _, _, selector, home in _SELECTORS:
        # bleak's namespace is where its classes look; the defining module, for anyone else.
        for module in (bleak, importlib.import_module(home)):
            setattr(module, selector, replacements[selector])
    print(spec.label(), file=sys.stderr if stream is None else stream, flush=True)


def install_from_environment(environ: Mapping[str, str] | None = None) -> bool:
    """:func:`install` the spec in :data:`ENV_VAR`, if set; whether it was."""
    text = (os.environ if environ is None else environ).get(ENV_VAR)
    if text is None:
        return False
    install(ExecSpec.from_json(text))
    return True
