"""The model table: every supported device model as data (``drivers/models/*.toml``).

Each TOML file holds one or more ``[key]`` tables. Adding a variant of a known protocol is an
entry here, not code. ``devicectl models`` prints this table.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal, cast, get_args

__all__ = ["ModelEntry", "ModelTableError", "get_model", "load_models", "parse_models"]

Family = Literal["force_sensor", "massage_gun", "massage_chair"]
TransportKind = Literal["serial", "ble", "mqtt"]

_PROVENANCES = ("vendor-documented", "reverse-engineered", "open spec of this project")
_KEY = re.compile(r"[a-z0-9][a-z0-9_-]*")
_FRAMING = re.compile(r"[5-8][NEOMS](1|1\.5|2)")
_VID_PID = re.compile(r"[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}")


_KNOWN = frozenset(
    {
        "family",
        "name",
        "transport",
        "baud",
        "framing",
        "usb_vid_pid",
        "protocol_module",
        "provenance",
        "verified_on_hardware",
        "sources",
        "notes",
        "usb_vid_pid_verified",
    }
)


class ModelTableError(ValueError):
    """A model file is malformed; the message names the file, the model and the field."""


@dataclass(frozen=True)
class ModelEntry:
    """One supported model. ``provenance`` starts with one of the three kinds in DESIGN.md."""

    key: str
    family: Family
    name: str
    transport: TransportKind
    baud: int | None
    framing: str | None
    usb_vid_pid: tuple[str, ...]
    protocol_module: str
    provenance: str
    verified_on_hardware: bool
    sources: tuple[str, ...]
    notes: str = ""
    usb_vid_pid_verified: bool = False
    # Fields this schema does not know yet (BLE name prefixes, endpoints, feature ranges), kept
    # as read so that a new family's data can land before its typed fields do.
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


class _Fields:
    """Typed access to one model's TOML table, with errors that say where."""

    def __init__(self, where: str, table: Mapping[str, Any]) -> None:
        self.where = where
        self.table = table

    def fail(self, field: str, problem: str) -> ModelTableError:
        return ModelTableError(f"{self.where}, field {field!r}: {problem}")

    def get(self, field: str, kind: type[Any] | tuple[type[Any], ...], default: Any = ...) -> Any:
        if field not in self.table:
            if default is ...:
                raise self.fail(field, "missing")
            return default
        value = self.table[field]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(field, f"expected {_kind_name(kind)}, got {value!r}")
        return value

    def choice(self, field: str, allowed: tuple[str, ...]) -> str:
        value = cast(str, self.get(field, str))
        if value not in allowed:
            raise self.fail(field, f"{value!r} is not one of {', '.join(allowed)}")
        return value

    def strings(self, field: str) -> tuple[str, ...]:
        values = cast(list[Any], self.get(field, list, []))
        if not all(isinstance(v, str) for v in values):
            raise self.fail(field, "expected a list of strings")
        return tuple(values)


def _kind_name(kind: type[Any] | tuple[type[Any], ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _entry(key: str, fields: _Fields) -> ModelEntry:
    if not _KEY.fullmatch(key):
        raise ModelTableError(
            f"{fields.where}: model key must be lower-case letters, digits, - or _"
        )
    entry = ModelEntry(
        key=key,
        family=cast(Family, fields.choice("family", get_args(Family))),
        name=fields.get("name", str),
        transport=cast(TransportKind, fields.choice("transport", get_args(TransportKind))),
        baud=fields.get("baud", int, None),
        framing=fields.get("framing", str, None),
        usb_vid_pid=fields.strings("usb_vid_pid"),
        protocol_module=fields.get("protocol_module", str),
        provenance=fields.get("provenance", str),
        verified_on_hardware=fields.get("verified_on_hardware", bool),
        sources=fields.strings("sources"),
        notes=fields.get("notes", str, ""),
        usb_vid_pid_verified=fields.get("usb_vid_pid_verified", bool, False),
        extra=MappingProxyType({k: v for k, v in fields.table.items() if k not in _KNOWN}),
    )
    _check(entry, fields)
    return entry


def _check(entry: ModelEntry, fields: _Fields) -> None:
    if not entry.provenance.startswith(_PROVENANCES):
        raise fields.fail("provenance", f"must start with one of {', '.join(_PROVENANCES)}")
    if entry.baud is not None and entry.baud <= 0:
        raise fields.fail("baud", "must be a positive integer")
    if entry.framing is not None and not _FRAMING.fullmatch(entry.framing):
        raise fields.fail("framing", f"{entry.framing!r} is not like 8N1")
    bad = [v for v in entry.usb_vid_pid if not _VID_PID.fullmatch(v)]
    if bad:
        raise fields.fail("usb_vid_pid", f"{bad[0]!r} is not VVVV:PPPP in hex")
    if entry.transport == "serial" and entry.baud is None:
        raise fields.fail("baud", "a serial model needs a baud rate")
    if not entry.sources:
        raise fields.fail("sources", "every model cites where its bytes come from")


def parse_models(text: str, source: str) -> dict[str, ModelEntry]:
    """The entries in one TOML document; ``source`` names it in error messages."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelTableError(f"{source}: not valid TOML: {exc}") from exc
    entries: dict[str, ModelEntry] = {}
    for key, table in document.items():
        if not isinstance(table, dict):
            raise ModelTableError(f"{source}: top-level {key!r} must be a [table] per model")
        entries[key] = _entry(key, _Fields(f"{source}, model {key!r}", table))
    return entries


def _merge(parts: Iterable[tuple[str, dict[str, ModelEntry]]]) -> dict[str, ModelEntry]:
    merged: dict[str, ModelEntry] = {}
    seen_in: dict[str, str] = {}
    for source, entries in parts:
        for key, entry in entries.items():
            if key in merged:
                raise ModelTableError(f"{source}: model {key!r} is also defined in {seen_in[key]}")
            merged[key], seen_in[key] = entry, source
    return merged


@functools.cache
def _load_shipped() -> dict[str, ModelEntry]:
    folder = resources.files("drivers") / "models"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name)
    return _merge((f"models/{f.name}", parse_models(f.read_text("utf-8"), f.name)) for f in files)


def load_models() -> dict[str, ModelEntry]:
    """Every shipped model by key (a fresh dict; the entries are immutable)."""
    return dict(_load_shipped())


def get_model(key: str) -> ModelEntry:
    """The model ``key`` (case-insensitive); KeyError lists the known keys."""
    models = _load_shipped()
    try:
        return models[key.lower()]
    except KeyError:
        known = ", ".join(sorted(models)) or "none"
        raise KeyError(f"unknown model {key!r}; known models: {known}") from None
