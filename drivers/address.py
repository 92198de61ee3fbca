"""Device addresses: one string that names a device on the command line and in config.

Accepted forms (``MODEL`` is a key of the model table, e.g. ``mark10``)::

    MODEL@serial:///dev/ttyUSB0?baud=115200   a serial port (also serial:/dev/ttyUSB0, serial:COM3)
    MODEL@/dev/ttyUSB0                        a bare serial port path (or COM3)
    MODEL@socket://HOST:PORT                  a serial device over TCP (e.g. a simulator)
    MODEL@sim                                 this project's simulator, served on a pty
    MODEL@sim?garbage_every=5&stuck_n=20      ... with fault switches (checked by the opener)
    MODEL@ble                                 the first BLE device of that model found
    MODEL@ble:AA:BB:CC:DD:EE:FF               a BLE device by address (or a macOS UUID)
    MODEL@mqtt://HOST[:PORT]/TOPIC            a serial device behind a Tasmota MQTT bridge

Parameters: serial takes ``baud`` (a standard rate) and ``unit``; socket takes ``unit``; sim, ble
and mqtt pass theirs through to the code that opens them. ``unit`` is the unit a force gauge
prints without naming it (its unit output switched off): a Mark-10 reply spelling, any case
(``lbF``, ``ozF``, ``kgF``, ``gF``, ``N``, ``mN``, ``kN``); it is kept in that canonical spelling.
BLE and MQTT addresses parse, but opening them is the opener's business (it may say "not
supported yet").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from drivers.models import ModelEntry, load_models
from protocols.mark10 import Mark10Unit, parse_unit

__all__ = ["ACCEPTED_FORMS", "STANDARD_BAUDS", "AddressError", "DeviceAddress", "parse_address"]

Scheme = Literal["serial", "socket", "sim", "ble", "mqtt"]

ACCEPTED_FORMS = (
    "MODEL@serial:///dev/ttyUSB0?baud=115200",
    "MODEL@/dev/ttyUSB0",
    "MODEL@socket://HOST:PORT",
    "MODEL@sim",
    "MODEL@ble",
    "MODEL@ble:AA:BB:CC:DD:EE:FF",
    "MODEL@mqtt://HOST[:PORT]/TOPIC",
)

# The rates pyserial and common USB-serial chips accept; a typo like 11520 is caught here.
STANDARD_BAUDS = frozenset(
    {
        300, 600, 1200, 2400, 4800, 9600, 14400, 19200, 28800, 38400, 57600, 115200,
        230400, 460800, 500000, 576000, 921600, 1000000, 2000000,
    }
)  # fmt: skip
MQTT_DEFAULT_PORT = 1883

_MODEL = re.compile(r"[a-z0-9][a-z0-9_-]*")
_COM_PORT = re.compile(r"(\\\\\.\\)?COM\d+", re.IGNORECASE)
_MAC = re.compile(r"[0-9A-F]{2}(:[0-9A-F]{2}){5}")
_UUID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")
# Which model transports each address scheme can reach (sim reaches every model).
_REACHES: dict[str, frozenset[str]] = {
    "serial": frozenset({"serial"}),
    "socket": frozenset({"serial"}),
    "ble": frozenset({"ble"}),
    "mqtt": frozenset({"serial", "mqtt"}),  # a serial device behind an MQTT serial bridge
}


class AddressError(ValueError):
    """A device address that cannot be used; the message says why and shows the accepted forms."""

    def __init__(self, text: str, problem: str) -> None:
        self.text = text
        self.problem = problem
        # One line: the CLI prints it as a single error line.
        forms = " | ".join(ACCEPTED_FORMS)
        super().__init__(f"bad device address {text!r}: {problem} (accepted forms: {forms})")


@dataclass(frozen=True)
class DeviceAddress:
    """A parsed address. ``target`` is the port path, ``HOST:PORT``, BLE address (empty: the
    first found), ``HOST:PORT/TOPIC`` for MQTT, or empty for sim."""

    model: str
    scheme: Scheme
    target: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def serial_url(self) -> str:
        """What :class:`~drivers.transport.serial.SerialTransport` opens (serial and socket)."""
        if self.scheme == "serial":
            return self.target
        if self.scheme == "socket":
            return f"socket://{self.target}"
        raise AddressError(str(self), f"a {self.scheme} address has no serial URL")

    @property
    def baud(self) -> int | None:
        """The ``baud`` parameter, if given (already checked to be a standard rate)."""
        raw = self.params.get("baud")
        return None if raw is None else int(raw)

    @property
    def unit(self) -> Mark10Unit | None:
        """The ``unit`` parameter, if given: the unit of readings that carry none."""
        raw = self.params.get("unit")
        return None if raw is None else parse_unit(raw)

    def __str__(self) -> str:
        where = {"serial": "serial://", "socket": "socket://", "mqtt": "mqtt://"}.get(
            self.scheme, ""
        )
        text = f"{self.model}@{where}{self.target}"
        if self.scheme in ("sim", "ble"):
            text = f"{self.model}@{self.scheme}" + (f":{self.target}" if self.target else "")
        query = "&".join(f"{k}={v}" for k, v in self.params.items())
        return f"{text}?{query}" if query else text


def parse_address(text: str) -> DeviceAddress:
    """Parse and check ``text``; raises :class:`AddressError` saying what is wrong."""
    model_text, sep, rest = text.strip().partition("@")
    if not sep or not model_text or not rest:
        raise AddressError(text, "expected MODEL@WHERE, e.g. mark10@/dev/ttyUSB0")
    model = _check_model(text, model_text.lower())
    where, _, query = rest.partition("?")
    params = _parse_query(text, query)
    scheme, target = _parse_where(text, where)
    _check_reach(text, model, scheme)
    _check_params(text, scheme, params)
    if "unit" in params and scheme in ("serial", "socket"):
        params["unit"] = _check_unit(text, params["unit"]).value
    return DeviceAddress(model.key, scheme, target, params)


def _check_model(text: str, key: str) -> ModelEntry:
    models = load_models()
    if not _MODEL.fullmatch(key) or key not in models:
        known = ", ".join(sorted(models)) or "none"
        raise AddressError(text, f"unknown model {key!r} (known models: {known})")
    return models[key]


def _parse_query(text: str, query: str) -> dict[str, str]:
    if not query:
        return {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise AddressError(text, f"parameters {query!r} are not KEY=VALUE&KEY=VALUE") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise AddressError(text, f"parameter {key!r} is given twice")
        if not value:
            raise AddressError(text, f"parameter {key!r} has no value")
        params[key] = value
    return params


def _parse_where(text: str, where: str) -> tuple[Scheme, str]:
    if where.startswith("serial:"):
        return "serial", _serial_path(text, where.removeprefix("serial:"))
    if where.startswith("/") or _COM_PORT.fullmatch(where):
        return "serial", where
    if where.startswith("socket:"):
        return "socket", _host_port(text, where, default_port=None)
    if where.startswith("mqtt:"):
        return "mqtt", _mqtt_target(text, where)
    if where == "sim":
        return "sim", ""
    if where == "ble" or where.startswith("ble:"):
        return "ble", _ble_target(text, where.removeprefix("ble").removeprefix(":"))
    raise AddressError(text, f"{where!r} is not a port path or a known scheme")


def _serial_path(text: str, rest: str) -> str:
    path = rest[2:] if rest.startswith("//") else rest
    if not (path.startswith("/") or _COM_PORT.fullmatch(path)) or path == "/":
        raise AddressError(text, f"serial port {path!r} must be a path like /dev/ttyUSB0 or COM3")
    return path


def _host_port(text: str, where: str, default_port: int | None) -> str:
    scheme = where.partition(":")[0]
    if not where.startswith(f"{scheme}://"):
        raise AddressError(text, f"{scheme} addresses are written {scheme}://HOST:PORT")
    parts = urlsplit(where)
    try:
        port = parts.port if parts.port is not None else default_port
    except ValueError:
        raise AddressError(text, "the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise AddressError(text, f"no host in {where!r}")
    if port is None or not 1 <= port <= 65535:
        raise AddressError(text, "the port must be a number from 1 to 65535")
    if scheme == "socket" and parts.path not in ("", "/"):
        raise AddressError(text, f"a socket address has no path ({parts.path!r})")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}"


def _mqtt_target(text: str, where: str) -> str:
    host_port = _host_port(text, where, default_port=MQTT_DEFAULT_PORT)
    topic = urlsplit(where).path.strip("/")
    if not topic or "+" in topic or "#" in where:  # urlsplit takes "#..." as a fragment
        raise AddressError(
            text, "an MQTT address needs a topic without wildcards: mqtt://HOST/TOPIC"
        )
    return f"{host_port}/{topic}"


def _ble_target(text: str, address: str) -> str:
    normal = address.upper()
    if normal and not (_MAC.fullmatch(normal) or _UUID.fullmatch(normal)):
        raise AddressError(text, f"{address!r} is not a BLE address like AA:BB:CC:DD:EE:FF")
    return normal


def _check_reach(text: str, model: ModelEntry, scheme: Scheme) -> None:
    reach = _REACHES.get(scheme)
    if reach is not None and model.transport not in reach:
        raise AddressError(
            text, f"{model.key} is a {model.transport} device; it cannot be reached over {scheme}"
        )


def _check_params(text: str, scheme: Scheme, params: dict[str, str]) -> None:
    if scheme == "serial":
        _only(text, scheme, params, {"baud", "unit"})
        if "baud" in params:
            _check_baud(text, params["baud"])
    elif scheme == "socket":
        _only(text, scheme, params, {"unit"})


def _only(text: str, scheme: str, params: dict[str, str], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "no parameters"
        raise AddressError(text, f"unknown parameter {unknown[0]!r}: {scheme} takes {takes}")


def _check_baud(text: str, raw: str) -> None:
    if not raw.isdigit() or int(raw) not in STANDARD_BAUDS:
        rates = ", ".join(str(b) for b in sorted(STANDARD_BAUDS))
        raise AddressError(text, f"baud {raw!r} is not a standard rate ({rates})")


def _check_unit(text: str, raw: str) -> Mark10Unit:
    try:
        return parse_unit(raw)
    except ValueError:
        units = ", ".join(u.value for u in Mark10Unit)
        raise AddressError(text, f"unit {raw!r} is not a gauge unit ({units}; any case)") from None
