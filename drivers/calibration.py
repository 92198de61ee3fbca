"""Force calibration: a two-point fit against a known weight, kept per device, applied by a wrapper.

A calibration maps a raw reading ``r`` (newtons, as the driver reports it) to the force
``F = (r - offset_n) * scale``. It is measured at two points: the mean reading with no load
(the offset) and the mean reading with a known weight on the gauge
(``scale = known_n / (loaded - offset)``). The offset drifts (temperature, the way the gauge sits
on the T-bar) and is zeroed again by every tare; the scale is the lasting part.

Calibrations are stored in one JSON file, keyed by :func:`device_identity`, and applied by
:class:`CalibratedSensor`, which wraps any :class:`~drivers.force.ForceSensor`. The wrapper also
gives every model a tare: the device's own where it has one, else a software tare.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import statistics
import tempfile
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs

from drivers.errors import DeviceError, DeviceMisconfigured, UnsupportedCommand
from drivers.force import DeviceInfo, ForceSample, ForceSensor, LinkListener, LinkStats

__all__ = [
    "MAX_SCALE",
    "MAX_SPREAD_FRACTION",
    "MIN_RISE_FRACTION",
    "MIN_SAMPLES",
    "MIN_SCALE",
    "MIN_SPREAD_BOUND_N",
    "SOFT_TARE_READINGS",
    "CalibratedSensor",
    "Calibration",
    "CalibrationError",
    "CalibrationStore",
    "default_store_path",
    "device_identity",
    "steady_mean",
    "two_point",
]

# A mean of fewer readings than this says the sensor was barely streaming (a 3 s window at any
# supported gauge's 10-80 Hz holds 30-240); such a mean is not worth a lasting calibration.
MIN_SAMPLES = 10
# A standard deviation over 2 % of the known weight means the weight swung or someone touched the
# gauge; gauge noise is far below it (Mark-10: 0.1 % of capacity, Progressor: under 1 N).
MAX_SPREAD_FRACTION = 0.02
# ...but never demand steadier than 0.2 N: with a light known weight, 2 % is within gauge noise.
MIN_SPREAD_BOUND_N = 0.2
# The weight must move the reading by at least 5 % of its own size; less is noise and drift, so
# nothing was hung (a unit mix-up, kgf read as N, still moves it by 10 %: the scale check says so).
MIN_RISE_FRACTION = 0.05
# A working gauge is off by a few per cent, not by a factor of two: outside 0.5-2.0 the unit setting
# or the stated weight is wrong (lbf vs kgf is 2.2x, N vs kgf 9.8x, N vs lbf 4.4x).
MIN_SCALE = 0.5
MAX_SCALE = 2.0
# A software tare averages the last 10 readings: 0.1-0.2 s at the 50-80 Hz gauges stream (1 s at a
# 10 Hz one), recent enough to be the load now, and enough to average gauge noise down about 3x.
SOFT_TARE_READINGS = 10
# Hex digits of the content hash that names a calibration: 48 bits, short enough to read out, and
# no two calibrations a user ever makes will share one.
_ID_HEX_DIGITS = 12


class CalibrationError(ValueError):
    """A calibration that cannot be made, read or stored; the message says what to do."""


@dataclass(frozen=True)
class Calibration:
    """One two-point calibration of one device. ``id`` is a hash of everything else.

    ``offset_n`` is the offset applied (the no-load mean, ``zero_n``, when measured); ``zero_n``
    and ``loaded_n`` are the mean raw readings measured, from ``zero_samples`` and
    ``loaded_samples`` readings; ``known_n`` is the known weight's force; ``created_at`` is
    ISO 8601 in UTC.
    """

    device_id: str
    model: str
    offset_n: float
    scale: float
    known_n: float
    zero_n: float
    loaded_n: float
    created_at: str
    zero_samples: int
    loaded_samples: int
    id: str = field(init=False)

    def __post_init__(self) -> None:
        # Field by field: asdict() would read the id field, which is not set yet.
        content = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "id"}
        # JSON writes floats in their shortest round-trip form, so the id survives a round trip.
        text = json.dumps(content, sort_keys=True, separators=(",", ":"))
        object.__setattr__(self, "id", hashlib.sha256(text.encode()).hexdigest()[:_ID_HEX_DIGITS])

    def apply(self, raw_n: float) -> float:
        """The force for a raw reading."""
        return (raw_n - self.offset_n) * self.scale

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, ``id`` included (it is recomputed, not trusted, on reading)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: object) -> Calibration:
        """Read :meth:`to_dict`'s form back. Raises CalibrationError naming a bad field."""
        if not isinstance(data, Mapping):
            raise CalibrationError("a calibration must be a JSON object")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "id":
                continue
            if f.name not in data:
                raise CalibrationError(f"calibration field {f.name!r} is missing")
            values[f.name] = _checked(f.name, f.type, data[f.name])
        if not values["scale"] > 0:
            raise CalibrationError(f"calibration scale {values['scale']} is not positive")
        return cls(**values)


def _checked(name: str, annotation: object, value: object) -> object:
    """A field's value from JSON, checked against the field's (string) annotation."""
    kind = str(annotation)
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "float" and isinstance(value, int | float) and is_number and math.isfinite(value):
        return float(value)
    raise CalibrationError(f"calibration field {name!r} is {value!r}, not a finite {kind}")


def device_identity(info: DeviceInfo) -> str:
    """The key a calibration is stored under: :attr:`DeviceInfo.identity
    <drivers.force.DeviceInfo.identity>` (``"<model>#<serial>"``, else ``"<model>@<address>"``)."""
    return info.identity


def two_point(
    zero: Sequence[float],
    loaded: Sequence[float],
    known_n: float,
    *,
    device_id: str,
    model: str,
    now: datetime,
) -> Calibration:
    """The calibration from raw readings with no load and with the known weight on.

    Raises:
        CalibrationError: too few readings, unsteady readings, no rise (or a fall) with the
            weight on, or a scale outside MIN_SCALE..MAX_SCALE; the message says what to do.
    """
    zero_n = steady_mean(zero, known_n, "with no load")
    loaded_n = steady_mean(loaded, known_n, "with the weight on")
    rise_n = loaded_n - zero_n
    if rise_n <= -MIN_RISE_FRACTION * known_n:
        raise CalibrationError(
            f"the reading fell by {-rise_n:.2f} N with the weight on (expected a rise of about "
            f"{known_n:.2f} N): is the weight loading the gauge in its compression (pushing) "
            "direction? Rest it on the tip rather than pulling on the gauge"
        )
    if rise_n < MIN_RISE_FRACTION * known_n:
        raise CalibrationError(
            f"the reading rose by only {rise_n:.2f} N with the weight on (expected about "
            f"{known_n:.2f} N): did you put the weight on the tip?"
        )
    scale = known_n / rise_n
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise CalibrationError(
            f"the gauge reads {rise_n / known_n:.3g}x the known weight ({rise_n:.2f} N for "
            f"{known_n:.2f} N): check the gauge's unit setting and the weight you gave"
        )
    return Calibration(
        device_id=device_id,
        model=model,
        offset_n=zero_n,
        scale=scale,
        known_n=known_n,
        zero_n=zero_n,
        loaded_n=loaded_n,
        created_at=now.astimezone(UTC).isoformat(timespec="seconds"),
        zero_samples=len(zero),
        loaded_samples=len(loaded),
    )


def steady_mean(readings: Sequence[float], known_n: float, when: str) -> float:
    """The mean of one window's raw readings, checked (``when`` says which window, for messages).

    Raises:
        CalibrationError: ``known_n`` is not a positive force, fewer than MIN_SAMPLES readings,
            a non-finite one, or a standard deviation above MAX_SPREAD_FRACTION of ``known_n``
            (at least MIN_SPREAD_BOUND_N).
    """
    if not (math.isfinite(known_n) and known_n > 0):
        raise CalibrationError(f"the known weight must be a positive force, not {known_n} N")
    bound_n = max(MAX_SPREAD_FRACTION * known_n, MIN_SPREAD_BOUND_N)
    if len(readings) < MIN_SAMPLES:
        raise CalibrationError(
            f"only {len(readings)} readings {when} (at least {MIN_SAMPLES} are needed): "
            "is the sensor streaming?"
        )
    if not all(math.isfinite(r) for r in readings):
        raise CalibrationError(f"the gauge sent a reading that is not a number {when}")
    spread_n = statistics.pstdev(readings)
    if spread_n > bound_n:
        raise CalibrationError(
            f"the readings {when} were unsteady (standard deviation {spread_n:.2f} N, at most "
            f"{bound_n:.2f} N allowed): hold the weight still and keep hands off the gauge"
        )
    return statistics.fmean(readings)


def default_store_path() -> Path:
    """Where calibrations are kept unless told otherwise: the user's config directory."""
    return platformdirs.user_config_path("devicectl") / "calibrations.json"


class CalibrationStore:
    """Calibrations in one JSON file, ``{device_id: calibration}``. A missing file is empty.

    Writes are atomic (a temporary file in the same directory, then ``os.replace``), so a crash
    leaves the old file or the new one, never half of one. Two processes writing at the same moment
    can lose one of the two writes (there is no lock); calibrating is done by hand, one at a time.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()

    def get(self, device_id: str) -> Calibration | None:
        return self._read().get(device_id)

    def all(self) -> dict[str, Calibration]:
        return self._read()

    def put(self, calibration: Calibration) -> None:
        """Store ``calibration`` under its device, replacing that device's previous one."""
        everything = self._read()
        everything[calibration.device_id] = calibration
        text = json.dumps({k: c.to_dict() for k, c in everything.items()}, indent=2) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._replace(text)
        except OSError as exc:
            raise CalibrationError(f"cannot write calibrations file {self.path}: {exc}") from exc

    def _replace(self, text: str) -> None:
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())  # the data is on disk before the name points at it
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def _read(self) -> dict[str, Calibration]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise CalibrationError(f"cannot read calibrations file {self.path}: {exc}") from exc
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise CalibrationError("the file must hold one JSON object")
            return {key: _keyed(key, value) for key, value in data.items()}
        except (ValueError, CalibrationError) as exc:  # json's errors are ValueErrors
            raise CalibrationError(
                f"calibrations file {self.path} is corrupt ({exc}): fix it, or delete it and "
                "calibrate again"
            ) from exc


def _keyed(key: str, value: object) -> Calibration:
    calibration = Calibration.from_dict(value)
    if calibration.device_id != key:
        raise CalibrationError(f"entry {key!r} holds device {calibration.device_id!r}")
    return calibration


class CalibratedSensor(ForceSensor):
    """Any force sensor, its readings mapped by a calibration, and a tare for every model.

    Samples are ``(raw - offset) * scale``: the calibration's offset and scale, or 0 and 1 without
    one. :attr:`info`, :attr:`stats` and :meth:`watch_link` are the wrapped sensor's. With
    ``store``, :meth:`connect` looks the device's calibration up by
    :func:`device_identity`; an explicit ``calibration`` must be this device's
    (:class:`~drivers.errors.DeviceMisconfigured` otherwise).

    :meth:`tare` asks the device to tare; the device then reads 0 unloaded, so the offset becomes
    0 and the scale still applies. A model without a tare raises
    :class:`~drivers.errors.UnsupportedCommand`; then the tare is done here: the offset becomes
    the mean of the last :data:`SOFT_TARE_READINGS` raw readings that passed through
    :meth:`samples`. Samples already buffered when a tare completes are mapped with the new offset.
    """

    def __init__(
        self,
        inner: ForceSensor,
        calibration: Calibration | None = None,
        *,
        store: CalibrationStore | None = None,
    ) -> None:
        self.inner = inner
        self._store = store
        self._calibration: Calibration | None = None
        self._offset_n = 0.0
        self._scale = 1.0
        self._recent: deque[float] = deque(maxlen=SOFT_TARE_READINGS)
        if calibration is not None:
            self._use(calibration)

    @property
    def calibration(self) -> Calibration | None:
        """The calibration applied, if any."""
        return self._calibration

    @property
    def offset_n(self) -> float:
        """The offset applied now: the calibration's until the first tare."""
        return self._offset_n

    @property
    def info(self) -> DeviceInfo | None:
        return self.inner.info

    @property
    def stats(self) -> LinkStats | None:
        return self.inner.stats

    def watch_link(self, listener: LinkListener) -> None:
        self.inner.watch_link(listener)  # link changes are the wrapped sensor's (its supervisor's)

    async def connect(self) -> DeviceInfo:
        info = await self.inner.connect()
        identity = device_identity(info)
        if self._calibration is None and self._store is not None:
            try:
                found = self._store.get(identity)
            except CalibrationError as exc:
                raise DeviceMisconfigured(info.address, str(exc)) from exc
            if found is not None:
                self._use(found)
        elif self._calibration is not None and self._calibration.device_id != identity:
            raise DeviceMisconfigured(
                info.address,
                f"calibration {self._calibration.id} is for {self._calibration.device_id}, "
                f"not {identity}",
                hint="calibrate this device",
            )
        return info

    async def samples(self) -> AsyncIterator[ForceSample]:
        readings = self.inner.samples()
        try:
            async for sample in readings:
                self._recent.append(sample.force_n)
                yield ForceSample(sample.t, (sample.force_n - self._offset_n) * self._scale)
        finally:
            if isinstance(readings, AsyncGenerator):  # close it now, not when garbage collected
                await readings.aclose()

    async def tare(self) -> None:
        try:
            await self.inner.tare()
        except UnsupportedCommand:
            self._software_tare()
        else:
            self._offset_n = 0.0
            self._recent.clear()  # readings from before the device's zero moved

    async def close(self) -> None:
        await self.inner.close()

    def _use(self, calibration: Calibration) -> None:
        self._calibration = calibration
        self._offset_n = calibration.offset_n
        self._scale = calibration.scale

    def _software_tare(self) -> None:
        if not self._recent:
            info = self.inner.info
            raise DeviceError(
                info.address if info is not None else "sensor",
                "cannot tare before any reading has arrived",
                hint="tare again once readings show",
            )
        self._offset_n = statistics.fmean(self._recent)
