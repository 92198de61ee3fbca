"""What is attached to this machine, and which model each thing is: ``devicectl models`` and
``devicectl scan``, and the device sections of ``devicectl diagnose``.

Serial ports come from pyserial's ``list_ports`` and are matched to models by USB VID:PID. Many
gauges sit behind a generic USB-serial chip, so one VID:PID can match several models: all of
them are listed as candidates, and a VID:PID no source confirmed is marked unverified. BLE
advertisements are matched by the model table's ``ble_name_prefix`` / ``ble_service_uuid``.

Nothing here opens a device. A machine without Bluetooth is the normal case for a serial-only
user: the BLE scan then reports why, and the serial ports are listed all the same. The scan
takes a bleak scanner backend only for the simulator (``devicectl scan --sim``), so whatever
such a scan hears is labelled SIMULATED.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from serial.tools import list_ports

from drivers.errors import BluetoothUnavailable, DeviceError
from drivers.models import ModelEntry
from drivers.transport import ble
from drivers.transport.ble import Advertisement

__all__ = [
    "DEFAULT_SCAN_TIMEOUT_S",
    "AccessCheck",
    "BleScanResult",
    "PortInfo",
    "advertisement_dict",
    "ble_address",
    "ble_result_dict",
    "list_serial_ports",
    "match_advertisement",
    "match_port",
    "model_dict",
    "models_table",
    "port_dict",
    "render_scan",
    "scan_ble",
    "serial_address",
]

# Long enough to hear a peripheral advertising every 1-2 s a few times; `--timeout` changes it.
DEFAULT_SCAN_TIMEOUT_S = 5.0
# A BLE stack that neither answers nor fails (a hung D-Bus) must not hang `scan`: after the scan
# time plus this long it is reported as not answering.
_BLE_SAFETY_MARGIN_S = 5.0

AccessCheck = Callable[[str, int], bool]
"""``os.access``'s shape: may this user open ``path`` with ``mode`` (R_OK, W_OK)?"""


@dataclass(frozen=True)
class PortInfo:
    """One serial port, and whether this user may open it.

    ``readable``/``writable`` are None where the OS has no file to check (Windows COM ports);
    ``permission_hint`` says what to do when the port is not accessible, else it is empty.
    """

    device: str
    description: str
    vid_pid: str | None  # "VVVV:PPPP" in upper-case hex; None for a port that is not USB
    serial_number: str | None
    manufacturer: str | None
    readable: bool | None
    writable: bool | None
    group: str | None  # the port's owning group (e.g. dialout), when the OS has one
    permission_hint: str = ""


@dataclass(frozen=True)
class BleScanResult:
    """What one BLE scan heard, or why it could not scan (reported, never raised)."""

    timeout_s: float
    advertisements: tuple[Advertisement, ...] = ()
    simulated: bool = False  # the scanner was the simulator's: everything heard is simulated
    unavailable: bool = False  # no usable Bluetooth on this machine; ``reason`` says why
    reason: str = ""  # why Bluetooth is unavailable or the scan failed; empty when it worked
    hint: str = ""  # what the user can do about it

    @property
    def ok(self) -> bool:
        return not self.reason


# -- serial ports ------------------------------------------------------------------------------


def list_serial_ports(
    comports: Callable[[], Iterable[Any]] = list_ports.comports,
    *,
    access: AccessCheck = os.access,
) -> list[PortInfo]:
    """Every serial port pyserial finds, by device path, with its USB identity and permissions.

    ``comports`` and ``access`` are injectable so that tests need neither hardware nor an
    unprivileged user.
    """
    ports = [_port_info(p, access) for p in comports()]
    return sorted(ports, key=lambda p: p.device)


def _port_info(port: Any, access: AccessCheck) -> PortInfo:
    device = str(port.device)
    vid, pid = port.vid, port.pid
    readable, writable, group, hint = _permissions(device, access)
    return PortInfo(
        device=device,
        description=str(port.description or ""),
        vid_pid=f"{vid:04X}:{pid:04X}" if vid is not None and pid is not None else None,
        serial_number=port.serial_number,
        manufacturer=port.manufacturer,
        readable=readable,
        writable=writable,
        group=group,
        permission_hint=hint,
    )


def _permissions(
    path: str, access: AccessCheck
) -> tuple[bool | None, bool | None, str | None, str]:
    try:
        st = os.stat(path)
    except OSError:
        return None, None, None, ""  # no file to check (a COM port): the OS decides at open
    readable, writable = access(path, os.R_OK), access(path, os.W_OK)
    group = _group_name(st.st_gid)
    hint = "" if readable and writable else _permission_hint(group, st.st_mode)
    return readable, writable, group, hint


def _group_name(gid: int) -> str | None:
    if sys.platform == "win32":
        return None
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)  # a group with no name on this machine (e.g. inside a container)


def _permission_hint(group: str | None, st_mode: int) -> str:
    group_rw = stat.S_IRGRP | stat.S_IWGRP
    if group is not None and st_mode & group_rw == group_rw:
        return (
            f"you may not open this port; join its group: `sudo usermod -aG {group} $USER`, "
            "then log out and in"
        )
    return (
        f"you may not open this port, and its group {group or '?'} may not either "
        f"(mode {stat.S_IMODE(st_mode):03o}); ask an administrator for a udev rule"
    )


def match_port(port: PortInfo, models: Iterable[ModelEntry]) -> list[ModelEntry]:
    """Every model whose USB VID:PID the port has (all candidates, in the table's order)."""
    if port.vid_pid is None:
        return []
    return [m for m in models if port.vid_pid in (v.upper() for v in m.usb_vid_pid)]


def serial_address(model: ModelEntry, device: str) -> str:
    """The address a user passes for ``model`` on the port ``device``."""
    return (
        f"{model.key}@serial://{device}"
        if device.startswith("/")
        else f"{model.key}@serial:{device}"
    )


# -- BLE ---------------------------------------------------------------------------------------


async def scan_ble(timeout_s: float, scanner_backend: type[Any] | None = None) -> BleScanResult:
    """Listen for ``timeout_s``. Never raises a DeviceError: no Bluetooth, or any other failure
    of the scan, comes back in the result with the reason and a hint.

    ``scanner_backend`` is a bleak scanner backend class; devicectl passes one only for the
    simulator, so the result of a scan with one is marked simulated.
    """
    simulated = scanner_backend is not None
    try:
        async with asyncio.timeout(timeout_s + _BLE_SAFETY_MARGIN_S):
            found = await ble.scan(timeout_s=timeout_s, scanner_backend=scanner_backend)
    except BluetoothUnavailable as exc:
        return BleScanResult(
            timeout_s, simulated=simulated, unavailable=True, reason=exc.message, hint=exc.hint
        )
    except DeviceError as exc:
        return BleScanResult(timeout_s, simulated=simulated, reason=exc.message, hint=exc.hint)
    except TimeoutError:
        reason = f"the Bluetooth stack did not answer within {timeout_s + _BLE_SAFETY_MARGIN_S:g} s"
        return BleScanResult(timeout_s, simulated=simulated, reason=reason)
    return BleScanResult(timeout_s, tuple(found), simulated=simulated)


def _strings(value: Any) -> tuple[str, ...]:
    """A model-table field that may hold one string or a list of them."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def match_advertisement(adv: Advertisement, models: Iterable[ModelEntry]) -> list[ModelEntry]:
    """Every model whose ``ble_name_prefix`` starts the advertised name or whose
    ``ble_service_uuid`` is among the advertised services."""
    uuids = {u.lower() for u in adv.service_uuids}
    matches = []
    for model in models:
        prefixes = _strings(model.extra.get("ble_name_prefix"))
        services = {u.lower() for u in _strings(model.extra.get("ble_service_uuid"))}
        by_name = bool(prefixes) and adv.name is not None and adv.name.startswith(prefixes)
        if by_name or services & uuids:
            matches.append(model)
    return matches


def ble_address(model: ModelEntry, adv: Advertisement) -> str:
    """The address a user passes for ``model`` at the advertised address."""
    return f"{model.key}@ble:{adv.address}"


# -- data for --json and diagnose ---------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON-ready: mappings as dicts, tuples as lists, at any depth."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def model_dict(model: ModelEntry) -> dict[str, Any]:
    """Every field of the entry, ``extra`` included (``asdict`` cannot copy its mapping proxy)."""
    return {f.name: _plain(getattr(model, f.name)) for f in fields(model)}


def _candidate(model: ModelEntry, address: str, *, usb: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"model": model.key, "name": model.name, "address": address}
    if usb:
        entry["vid_pid_verified"] = model.usb_vid_pid_verified
    return entry


def port_dict(port: PortInfo, models: Sequence[ModelEntry]) -> dict[str, Any]:
    """The port's fields and its candidate models with their addresses."""
    matches = match_port(port, models)
    candidates = [_candidate(m, serial_address(m, port.device), usb=True) for m in matches]
    return {**asdict(port), "models": candidates}


def advertisement_dict(
    adv: Advertisement, models: Sequence[ModelEntry], *, simulated: bool
) -> dict[str, Any]:
    """The advertisement, whether it is simulated, and its candidate models with addresses."""
    candidates = [
        _candidate(m, ble_address(m, adv), usb=False) for m in match_advertisement(adv, models)
    ]
    return {**_plain(asdict(adv)), "simulated": simulated, "models": candidates}


def ble_result_dict(result: BleScanResult, models: Sequence[ModelEntry]) -> dict[str, Any]:
    """One scan's outcome: available or why not, and what it heard."""
    heard = [
        advertisement_dict(a, models, simulated=result.simulated) for a in result.advertisements
    ]
    return {
        "simulated": result.simulated,
        "available": not result.unavailable,
        "ok": result.ok,
        "reason": result.reason,
        "hint": result.hint,
        "timeout_s": result.timeout_s,
        "advertisements": heard,
    }


# -- text --------------------------------------------------------------------------------------


def models_table(models: Iterable[ModelEntry]) -> str:
    """The model table as aligned text: key, family, name, transport, provenance, verified."""
    header = ("KEY", "FAMILY", "NAME", "TRANSPORT", "PROVENANCE", "HARDWARE-VERIFIED")
    rows = [header] + [
        (
            m.key,
            m.family,
            m.name,
            m.transport,
            m.provenance,
            "yes" if m.verified_on_hardware else "no",
        )
        for m in models
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


# Detail lines (addresses, hints) sit under their port or advertisement, past its first column.
_INDENT = "      "


def render_scan(
    ports: Sequence[PortInfo], ble_results: Sequence[BleScanResult], models: Sequence[ModelEntry]
) -> str:
    """``devicectl scan``'s text: a serial-port section, then one BLE section per scan."""
    lines = ["Serial ports:"]
    if not ports:
        lines.append("  none found")
    for port in ports:
        lines += _port_lines(port, models)
    for result in ble_results:
        lines.append("")
        lines += _ble_lines(result, models)
    return "\n".join(lines)


def _port_lines(port: PortInfo, models: Sequence[ModelEntry]) -> list[str]:
    ident = [f"USB {port.vid_pid}" if port.vid_pid else "not USB"]
    ident += [
        x for x in (port.manufacturer, port.serial_number and f"serial {port.serial_number}") if x
    ]
    lines = [f"  {port.device}  {port.description}  ({', '.join(ident)})"]
    matches = match_port(port, models)
    if len(matches) > 1:
        lines.append(f"{_INDENT}candidates (these models share this VID:PID):")
    for model in matches:
        unverified = "" if model.usb_vid_pid_verified else "  [VID:PID unverified]"
        lines.append(f"{_INDENT}{serial_address(model, port.device)}  {model.name}{unverified}")
    if not matches:
        lines.append(f"{_INDENT}no known model by USB id; see `devicectl models` for the keys")
    if port.permission_hint:
        lines.append(f"{_INDENT}not accessible: {port.permission_hint}")
    return lines


def _ble_lines(result: BleScanResult, models: Sequence[ModelEntry]) -> list[str]:
    lines = ["Bluetooth LE (SIMULATED peripherals):" if result.simulated else "Bluetooth LE:"]
    if result.unavailable:
        reason = result.reason
        if not reason.startswith("Bluetooth is not available"):
            reason = f"Bluetooth is not available: {reason}"
        lines.append(f"  {reason}")
    elif not result.ok:
        lines.append(f"  the scan failed: {result.reason}")
    elif not result.advertisements:
        lines.append(f"  no devices heard within {result.timeout_s:g} s")
    if result.hint:
        lines.append(f"{_INDENT}{result.hint}")
    for adv in result.advertisements:
        label = "  SIMULATED" if result.simulated else ""
        lines.append(f"  {adv.address}  {adv.name or '(no name)'}  {adv.rssi} dBm{label}")
        matches = match_advertisement(adv, models)
        for model in matches:
            lines.append(f"{_INDENT}{ble_address(model, adv)}  {model.name}{label}")
        if not matches:
            lines.append(f"{_INDENT}no known model")
    return lines
