"""JSON columns: event data and session summaries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any


def dumps(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(dict(value), default=_jsonable)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _jsonable(value: object) -> object:
    """Whatever a caller put in a summary or event: data classes, enums, paths, times."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    # Never fail here: finish() runs on every exit path and must still record the status.
    return str(value)
