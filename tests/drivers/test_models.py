"""The model table: shipped data loads, and malformed data is refused with a useful message."""

from __future__ import annotations

import pytest

from drivers.models import ModelTableError, get_model, load_models, parse_models

GOOD = """
[gauge-x]
family = "force_sensor"
name = "Gauge X"
transport = "serial"
baud = 9600
framing = "8N1"
usb_vid_pid = ["1234:ABCD"]
protocol_module = "protocols.gauge_x"
provenance = "reverse-engineered (somebody/repo)"
verified_on_hardware = false
sources = ["somebody/repo README"]
ble_name_prefix = "GX"
"""


def test_the_mark10_entry() -> None:
    entry = get_model("mark10")
    assert entry.family == "force_sensor"
    assert (entry.transport, entry.baud, entry.framing) == ("serial", 115200, "8N1")
    assert entry.usb_vid_pid == ("0483:A1AD",)
    assert not entry.usb_vid_pid_verified
    assert entry.provenance == "vendor-documented (Mark-10 Series 4/5 manuals, GCL2)"
    assert entry.verified_on_hardware is False
    assert entry.protocol_module == "protocols.mark10"
    assert any("Opentrons" in source for source in entry.sources)


def test_the_progressor_entry() -> None:
    from protocols.progressor import CONTROL_POINT_UUID, DATA_POINT_UUID, SERVICE_UUID

    entry = get_model("progressor")
    assert (entry.family, entry.transport, entry.baud) == ("force_sensor", "ble", None)
    assert entry.provenance == ("vendor-documented (Tindeq Progressor API page and sample client)")
    assert entry.verified_on_hardware is False
    assert entry.protocol_module == "protocols.progressor"
    assert entry.extra["ble_name_prefix"] == "Progressor"  # clones advertising so match too
    assert entry.extra["ble_service_uuid"] == SERVICE_UUID
    assert entry.extra["ble_notify_uuid"] == DATA_POINT_UUID
    assert entry.extra["ble_write_uuid"] == CONTROL_POINT_UUID
    assert any("tindeq.com" in source for source in entry.sources)


def test_every_shipped_model_names_an_importable_protocol() -> None:
    import importlib

    models = load_models()
    assert "mark10" in models
    for entry in models.values():
        importlib.import_module(entry.protocol_module)


def test_lookup_is_case_insensitive_and_lists_known_models() -> None:
    assert get_model("MARK10").key == "mark10"
    with pytest.raises(KeyError, match=r"known models: .*mark10"):
        get_model("nope")


def test_load_models_returns_a_copy() -> None:
    load_models().clear()
    assert "mark10" in load_models()


def test_unknown_fields_are_kept_as_extra() -> None:
    entry = parse_models(GOOD, "x.toml")["gauge-x"]
    assert entry.extra == {"ble_name_prefix": "GX"}
    assert entry.baud == 9600


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('family = "force_sensor"', 'family = "toaster"', "field 'family'.*not one of"),
        ("baud = 9600", 'baud = "fast"', "field 'baud': expected int"),
        ("baud = 9600", "baud = true", "field 'baud': expected int"),
        ("baud = 9600", "baud = -1", "positive"),
        ("baud = 9600", "", "serial model needs a baud"),
        ('framing = "8N1"', 'framing = "8X1"', "not like 8N1"),
        ('"1234:ABCD"', '"1234-ABCD"', "VVVV:PPPP"),
        ("reverse-engineered (somebody/repo)", "folklore", "provenance.*must start with"),
        ('sources = ["somebody/repo README"]', "sources = []", "cites"),
        ('name = "Gauge X"', "", "field 'name': missing"),
    ],
)
def test_malformed_entries_name_the_file_model_and_field(old: str, new: str, message: str) -> None:
    assert old in GOOD
    with pytest.raises(ModelTableError, match=message) as caught:
        parse_models(GOOD.replace(old, new), "gauge_x.toml")
    assert "gauge_x.toml, model 'gauge-x'" in str(caught.value)


def test_broken_toml_names_the_file() -> None:
    with pytest.raises(ModelTableError, match=r"bad\.toml: not valid TOML"):
        parse_models("[x", "bad.toml")
