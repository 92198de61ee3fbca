"""Calibration: the two-point fit and its checks, the store, device identity, and the wrapper
that applies a calibration and gives every model a tare."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import platformdirs
import pytest

from drivers.calibration import (
    MAX_SCALE,
    MIN_RISE_FRACTION,
    MIN_SAMPLES,
    MIN_SCALE,
    MIN_SPREAD_BOUND_N,
    SOFT_TARE_READINGS,
    CalibratedSensor,
    Calibration,
    CalibrationError,
    CalibrationStore,
    default_store_path,
    device_identity,
    two_point,
)
from drivers.errors import DeviceError, DeviceMisconfigured, UnsupportedCommand
from drivers.force import DeviceInfo, ForceSample, ForceSensor, LinkListener, LinkStats

KNOWN_N = 98.0665  # 10 kg under standard gravity
NOW = datetime(2026, 5, 4, 12, 0, 0, tzinfo=UTC)
INFO = DeviceInfo("Mark-10 M5-100", "/dev/ttyUSB0", serial="SN42")


def steady(value: float, n: int = 50, wobble: float = 0.05) -> list[float]:
    """``n`` readings alternating ``value ± wobble``: a mean of exactly ``value``."""
    return [value + (wobble if i % 2 else -wobble) for i in range(n)]


def fit(zero: list[float], loaded: list[float], known_n: float = KNOWN_N) -> Calibration:
    return two_point(zero, loaded, known_n, device_id="dev#1", model="gauge", now=NOW)


def make_calibration(
    offset_n: float = 1.0, scale: float = 2.0, device_id: str = "dev#1"
) -> Calibration:
    return Calibration(
        device_id=device_id, model="gauge", offset_n=offset_n, scale=scale, known_n=KNOWN_N,
        zero_n=offset_n, loaded_n=offset_n + KNOWN_N / scale, created_at=NOW.isoformat(),
        zero_samples=150, loaded_samples=150,
    )  # fmt: skip


# -- the two-point fit -----------------------------------------------------------------------------


def test_offset_is_the_no_load_mean_and_scale_maps_the_rise_to_the_known_weight() -> None:
    cal = fit(steady(0.5), steady(0.5 + 96.0))
    assert cal.offset_n == pytest.approx(0.5)
    assert cal.scale == pytest.approx(KNOWN_N / 96.0)
    assert cal.scale != pytest.approx(1.0)
    assert cal.apply(0.5) == pytest.approx(0.0)
    assert cal.apply(96.5) == pytest.approx(KNOWN_N)
    assert cal.zero_n == pytest.approx(0.5)
    assert cal.loaded_n == pytest.approx(96.5)
    assert (cal.zero_samples, cal.loaded_samples) == (50, 50)
    assert (cal.device_id, cal.model, cal.known_n) == ("dev#1", "gauge", KNOWN_N)


def test_negative_raw_readings_fit_as_well() -> None:
    """A gauge zeroed under some load reads below 0 unloaded; only the rise matters."""
    cal = fit(steady(-12.0), steady(-12.0 + 100.0))
    assert cal.offset_n == pytest.approx(-12.0)
    assert cal.scale == pytest.approx(KNOWN_N / 100.0)
    assert cal.apply(-12.0) == pytest.approx(0.0)
    assert cal.apply(38.0) == pytest.approx(KNOWN_N / 2)


def test_created_at_is_iso_utc() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=-5)))
    cal = two_point(steady(0), steady(98), KNOWN_N, device_id="d", model="m", now=local)
    assert cal.created_at == "2026-05-04T12:00:00+00:00"


def test_the_id_is_a_stable_short_hash_of_the_content() -> None:
    a, b = make_calibration(), make_calibration()
    assert a.id == b.id
    assert len(a.id) == 12
    assert int(a.id, 16) >= 0  # hex
    assert make_calibration(scale=2.001).id != a.id
    assert make_calibration(device_id="other").id != a.id


def test_json_round_trip_keeps_every_field_and_the_id() -> None:
    cal = fit(steady(0.123456789), steady(97.1))
    back = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert back == cal
    assert back.id == cal.id
    assert cal.to_dict()["id"] == cal.id


def test_a_hand_edited_entry_gets_a_new_id() -> None:
    data = make_calibration().to_dict() | {"scale": 1.5, "id": "000000000000"}
    assert Calibration.from_dict(data).id == dataclasses.replace(make_calibration(), scale=1.5).id


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scale": "1.0"}, "'scale' is '1.0', not a finite float"),
        ({"scale": float("nan")}, "not a finite float"),
        ({"scale": -1.0}, "scale -1.0 is not positive"),
        ({"zero_samples": True}, "'zero_samples' is True"),
        ({"device_id": 7}, "'device_id' is 7, not a finite str"),
    ],
)
def test_from_dict_names_a_bad_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(CalibrationError, match=message.replace("(", r"\(")):
        Calibration.from_dict(make_calibration().to_dict() | change)


def test_from_dict_rejects_a_missing_field_and_a_non_object() -> None:
    data = make_calibration().to_dict()
    del data["known_n"]
    with pytest.raises(CalibrationError, match="'known_n' is missing"):
        Calibration.from_dict(data)
    with pytest.raises(CalibrationError, match="must be a JSON object"):
        Calibration.from_dict([1, 2])


# -- what cannot be calibrated, and what the user is told ----------------------------------------


def test_too_few_readings_in_either_window() -> None:
    few = steady(0.0, MIN_SAMPLES - 1)
    with pytest.raises(CalibrationError, match=r"only 9 readings with no load.*streaming"):
        fit(few, steady(98.0))
    with pytest.raises(CalibrationError, match="only 9 readings with the weight on"):
        fit(steady(0.0), steady(98.0, MIN_SAMPLES - 1))
    assert fit(steady(0.0, MIN_SAMPLES), steady(98.0, MIN_SAMPLES)).zero_samples == MIN_SAMPLES


def test_unsteady_readings_ask_to_hold_the_weight_still() -> None:
    # Standard deviation 3 N: over 2 % of 98 N (1.96 N).
    swinging = steady(98.0, wobble=3.0)
    with pytest.raises(
        CalibrationError, match=r"with the weight on were unsteady.*hold the weight"
    ):
        fit(steady(0.0), swinging)
    with pytest.raises(CalibrationError, match="with no load were unsteady"):
        fit(steady(0.0, wobble=3.0), steady(98.0))
    assert fit(steady(0.0), steady(98.0, wobble=1.9)).scale == pytest.approx(KNOWN_N / 98.0)


def test_a_light_weight_is_allowed_gauge_noise_of_the_floor_bound() -> None:
    """2 % of 1 N is 0.02 N, below gauge noise; the floor of 0.2 N applies instead."""
    cal = fit(steady(0.0, wobble=MIN_SPREAD_BOUND_N * 0.9), steady(1.0), known_n=1.0)
    assert cal.scale == pytest.approx(1.0)
    with pytest.raises(CalibrationError, match="unsteady"):
        fit(steady(0.0, wobble=MIN_SPREAD_BOUND_N * 1.1), steady(1.0), known_n=1.0)


def test_a_reading_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(CalibrationError, match="not a number with the weight on"):
        fit(steady(0.0), [*steady(98.0), math.nan])


def test_no_rise_asks_whether_the_weight_was_hung() -> None:
    with pytest.raises(CalibrationError, match=r"rose by only 0\.50 N.*weight on the tip\?"):
        fit(steady(0.0), steady(0.5))
    with pytest.raises(CalibrationError, match="did you put the weight on the tip"):
        fit(steady(5.0), steady(5.0 - 0.5 * MIN_RISE_FRACTION * KNOWN_N))  # a small dip: noise


def test_a_fall_asks_about_the_compression_direction() -> None:
    with pytest.raises(CalibrationError, match=r"fell by 98\.00 N.*compression"):
        fit(steady(0.0), steady(-98.0))


@pytest.mark.parametrize(
    ("rise_n", "text"),
    [(3.2 * KNOWN_N, "3.2x"), (0.102 * KNOWN_N, "0.102x"), (2.2 * KNOWN_N, "2.2x")],
)
def test_a_scale_out_of_range_points_at_the_unit_setting(rise_n: float, text: str) -> None:
    with pytest.raises(CalibrationError, match=rf"reads {re.escape(text)} the known weight.*unit"):
        fit(steady(0.0), steady(rise_n))


def test_the_scale_range_edges_are_accepted() -> None:
    inside = 1.0001  # just inside each end (exactly at it, rounding decides)
    assert fit(steady(0.0), steady(KNOWN_N / MAX_SCALE * inside)).scale < MAX_SCALE
    assert fit(steady(0.0), steady(KNOWN_N / MIN_SCALE / inside)).scale > MIN_SCALE


@pytest.mark.parametrize("known_n", [0.0, -9.8, math.inf, math.nan])
def test_the_known_weight_must_be_a_positive_force(known_n: float) -> None:
    with pytest.raises(CalibrationError, match="known weight must be a positive force"):
        fit(steady(0.0), steady(98.0), known_n=known_n)


def test_calibration_error_is_a_value_error() -> None:
    assert issubclass(CalibrationError, ValueError)
    assert not issubclass(CalibrationError, DeviceError)


# -- identity --------------------------------------------------------------------------------------


def test_identity_is_model_and_serial_when_the_device_has_one() -> None:
    assert device_identity(INFO) == "Mark-10 M5-100#SN42"
    moved = DeviceInfo("Mark-10 M5-100", "/dev/ttyUSB1", serial="SN42")
    assert device_identity(moved) == device_identity(INFO)  # the serial follows the gauge


def test_identity_falls_back_to_model_and_address() -> None:
    ble = DeviceInfo("Tindeq Progressor", "AA:BB:CC:DD:EE:FF")
    assert device_identity(ble) == "Tindeq Progressor@AA:BB:CC:DD:EE:FF"
    port = DeviceInfo("Imada DS2", "/dev/ttyUSB0")
    assert device_identity(port) == "Imada DS2@/dev/ttyUSB0"


# -- the store -------------------------------------------------------------------------------------


def test_default_store_path_is_in_the_user_config_dir() -> None:
    assert default_store_path() == platformdirs.user_config_path("devicectl") / "calibrations.json"
    assert CalibrationStore().path == default_store_path()


def test_a_missing_file_is_an_empty_store(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path / "none" / "calibrations.json")
    assert store.all() == {}
    assert store.get("dev#1") is None


def test_put_then_get_round_trips_and_replaces_per_device(tmp_path: Path) -> None:
    path = tmp_path / "config" / "calibrations.json"  # the directory is created
    store = CalibrationStore(path)
    first, other = make_calibration(), make_calibration(device_id="dev#2")
    store.put(first)
    store.put(other)
    newer = make_calibration(scale=1.9)
    store.put(newer)

    again = CalibrationStore(path)
    assert again.get("dev#1") == newer
    assert again.all() == {"dev#1": newer, "dev#2": other}
    on_disk = json.loads(path.read_text(encoding="utf-8"))
    assert set(on_disk) == {"dev#1", "dev#2"}
    assert on_disk["dev#1"]["scale"] == 1.9
    assert on_disk["dev#1"]["id"] == newer.id
    assert [p.name for p in path.parent.iterdir()] == ["calibrations.json"]  # no temp files left


def test_a_failed_write_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "calibrations.json"
    store = CalibrationStore(path)
    store.put(make_calibration())
    before = path.read_bytes()

    def refuse(src: str, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("drivers.calibration.os.replace", refuse)
    with pytest.raises(CalibrationError, match=f"cannot write calibrations file {path}.*disk full"):
        store.put(make_calibration(scale=1.5))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["calibrations.json"]  # temp file removed


def test_the_new_file_is_written_in_the_same_directory_then_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "calibrations.json"
    renames: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        renames.append((Path(src), Path(dst)))
        assert json.loads(Path(src).read_text(encoding="utf-8"))["dev#1"]["scale"] == 2.0
        real_replace(src, dst)

    monkeypatch.setattr("drivers.calibration.os.replace", spy)
    CalibrationStore(path).put(make_calibration())
    [(src, dst)] = renames
    assert (src.parent, dst) == (tmp_path, path)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "Expecting property name"),
        ("[1, 2]", "one JSON object"),
        ('{"dev#1": {"scale": 1}}', "missing"),
        ("MISMATCH", "holds device 'dev#1'"),
    ],
)
def test_a_corrupt_file_is_a_clear_error_naming_it(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "calibrations.json"
    if text == "MISMATCH":
        text = json.dumps({"dev#9": make_calibration().to_dict()})
    path.write_text(text, encoding="utf-8")
    store = CalibrationStore(path)
    with pytest.raises(CalibrationError, match=rf"calibrations file {path} is corrupt.*{why}"):
        store.all()
    with pytest.raises(CalibrationError, match="delete it and calibrate again"):
        store.put(make_calibration())  # never overwrites what it could not read
    assert path.read_text(encoding="utf-8") == text


def test_an_unreadable_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "calibrations.json"
    path.mkdir()  # a directory where the file should be
    with pytest.raises(CalibrationError, match=f"cannot read calibrations file {path}"):
        CalibrationStore(path).get("dev#1")


# -- the wrapper -----------------------------------------------------------------------------------


class FakeSensor(ForceSensor):
    """Raw readings ``load + zero`` on demand; ``tare()`` zeroes the device, or is unsupported."""

    def __init__(self, info: DeviceInfo = INFO, *, can_tare: bool = True) -> None:
        self.load = 0.0
        self.zero = 0.0  # what the device subtracts (its own tare)
        self.can_tare = can_tare
        self.tares = 0
        self.closed = False
        self.stream_closed = False
        self.listener: LinkListener | None = None
        self._info = info
        self._connected = False
        self._stats = LinkStats(readings=3)

    async def connect(self) -> DeviceInfo:
        self._connected = True
        return self._info

    @property
    def info(self) -> DeviceInfo | None:
        return self._info if self._connected else None

    @property
    def stats(self) -> LinkStats:
        return self._stats

    async def samples(self) -> AsyncIterator[ForceSample]:
        t = 0.0
        try:
            while True:
                t += 0.02
                yield ForceSample(t, self.load - self.zero)
        finally:
            self.stream_closed = True

    async def tare(self) -> None:
        if not self.can_tare:
            raise UnsupportedCommand("fake", "no tare command", hint="zero it on the keypad")
        self.tares += 1
        self.zero = self.load

    async def close(self) -> None:
        self.closed = True

    def watch_link(self, listener: LinkListener) -> None:
        self.listener = listener


async def take(stream: AsyncIterator[ForceSample], n: int) -> list[float]:
    return [(await anext(stream)).force_n for _ in range(n)]


async def close(stream: AsyncIterator[ForceSample]) -> None:
    assert isinstance(stream, AsyncGenerator)
    await stream.aclose()


async def test_samples_are_mapped_by_the_calibration() -> None:
    inner = FakeSensor()
    sensor = CalibratedSensor(inner, make_calibration(offset_n=1.0, scale=2.0, device_id="x"))
    assert sensor.calibration == make_calibration(device_id="x")
    inner.load = 6.0
    stream = sensor.samples()
    first = await anext(stream)
    assert (first.t, first.force_n) == (0.02, 10.0)  # (6 - 1) * 2, time untouched
    await close(stream)
    assert inner.stream_closed  # closing the wrapper's stream closes the driver's at once


async def test_without_a_calibration_readings_pass_unchanged() -> None:
    inner = FakeSensor()
    sensor = CalibratedSensor(inner)
    inner.load = 42.5
    assert sensor.calibration is None
    assert await take(sensor.samples(), 2) == [42.5, 42.5]


async def test_info_stats_close_and_link_watching_are_the_inner_sensors() -> None:
    inner = FakeSensor()
    sensor = CalibratedSensor(inner)
    assert sensor.info is None
    assert await sensor.connect() == INFO
    assert sensor.info is INFO
    assert sensor.stats == LinkStats(readings=3)

    def listener(state: str, message: str) -> None:
        return None

    sensor.watch_link(listener)
    assert inner.listener is listener
    await sensor.close()
    assert inner.closed


async def test_connect_looks_the_calibration_up_by_identity(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path / "c.json")
    mine = make_calibration(offset_n=0.5, scale=1.25, device_id=device_identity(INFO))
    store.put(mine)
    store.put(make_calibration(device_id="Mark-10 M5-100#OTHER"))
    inner = FakeSensor()
    sensor = CalibratedSensor(inner, store=store)
    await sensor.connect()
    assert sensor.calibration == mine
    inner.load = 8.5
    assert await take(sensor.samples(), 1) == [10.0]


async def test_connect_without_a_stored_calibration_applies_none(tmp_path: Path) -> None:
    sensor = CalibratedSensor(FakeSensor(), store=CalibrationStore(tmp_path / "missing.json"))
    await sensor.connect()
    assert sensor.calibration is None


async def test_a_corrupt_store_fails_connect_with_a_device_error(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("{", encoding="utf-8")
    sensor = CalibratedSensor(FakeSensor(), store=CalibrationStore(path))
    with pytest.raises(DeviceMisconfigured, match=f"calibrations file {path} is corrupt"):
        await sensor.connect()


async def test_another_devices_calibration_is_refused_at_connect() -> None:
    sensor = CalibratedSensor(FakeSensor(), make_calibration(device_id="Mark-10 M5-100#SN1"))
    with pytest.raises(DeviceMisconfigured, match=r"is for Mark-10 M5-100#SN1, not .*#SN42"):
        await sensor.connect()


async def test_a_device_tare_zeroes_the_offset_and_keeps_the_scale() -> None:
    inner = FakeSensor()
    sensor = CalibratedSensor(inner, make_calibration(offset_n=1.0, scale=2.0))
    stream = sensor.samples()
    inner.load = 3.0
    assert await take(stream, 1) == [4.0]
    await sensor.tare()
    assert (inner.tares, sensor.offset_n) == (1, 0.0)
    assert await take(stream, 1) == [0.0]  # the device reads 0 now
    inner.load = 8.0
    assert await take(stream, 1) == [10.0]  # 5 N more raw, scaled by 2
    await close(stream)


async def test_a_model_without_tare_gets_a_software_tare_from_recent_readings() -> None:
    inner = FakeSensor(can_tare=False)
    sensor = CalibratedSensor(inner, make_calibration(offset_n=1.0, scale=2.0))
    stream = sensor.samples()
    inner.load = 100.0
    await take(stream, 5)  # older readings drop out of the window
    inner.load = 4.0
    await take(stream, SOFT_TARE_READINGS)
    await sensor.tare()
    assert sensor.offset_n == pytest.approx(4.0)  # the mean of the last readings only
    assert await take(stream, 1) == [pytest.approx(0.0)]
    inner.load = 9.0
    assert await take(stream, 1) == [pytest.approx(10.0)]  # the scale still applies
    await close(stream)


async def test_software_tare_averages_the_last_readings() -> None:
    inner = FakeSensor(can_tare=False)
    sensor = CalibratedSensor(inner)
    stream = sensor.samples()
    for load in range(SOFT_TARE_READINGS):
        inner.load = float(load)
        await take(stream, 1)
    await sensor.tare()
    assert sensor.offset_n == pytest.approx((SOFT_TARE_READINGS - 1) / 2)
    await close(stream)


async def test_a_software_tare_before_any_reading_is_a_device_error() -> None:
    sensor = CalibratedSensor(FakeSensor(can_tare=False))
    await sensor.connect()
    with pytest.raises(DeviceError, match="before any reading has arrived"):
        await sensor.tare()


async def test_other_tare_failures_pass_through() -> None:
    class Broken(FakeSensor):
        async def tare(self) -> None:
            raise DeviceError("fake", "link lost")

    sensor = CalibratedSensor(Broken(), make_calibration(offset_n=1.0))
    with pytest.raises(DeviceError, match="link lost"):
        await sensor.tare()
    assert sensor.offset_n == 1.0
