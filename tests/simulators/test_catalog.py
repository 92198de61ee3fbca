"""The simulator catalogue: one simulator per protocol, fault switches parsed from text."""

from __future__ import annotations

import pytest

from drivers.models import load_models
from simulators import catalog
from simulators.force_model import constant
from simulators.mark10 import Mark10Faults
from simulators.progressor import ProgressorFaults


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# A request each serial protocol answers with a reading (device-protocols.md §2).
_REQUESTS = {
    "protocols.mark10": b"?C\r",
    "protocols.imada": b"D\r",
    "protocols.shimpo": b"BA\r",  # single output
    "protocols.wagner": b"F\r",  # the polling fallback
}


def test_every_model_with_a_simulated_protocol_is_in_the_model_table() -> None:
    modules = {entry.protocol_module for entry in load_models().values()}
    assert {"protocols.mark10", "protocols.progressor"} <= modules
    kinds = catalog.simulated_protocols()
    assert kinds["protocols.progressor"] == "ble"
    assert all(kinds[m] == "serial" for m in _REQUESTS)


@pytest.mark.parametrize("module", sorted(_REQUESTS))
def test_each_serial_simulator_answers_a_reading_request(module: str) -> None:
    device = catalog.serial_device(module, constant(4.0), clock=FakeClock())
    reply = device.receive(_REQUESTS[module])
    assert any(ch.isdigit() for ch in reply.decode("ascii", "replace")), reply


def test_an_unknown_protocol_has_no_simulator() -> None:
    with pytest.raises(KeyError, match=r"no serial simulator speaks protocols\.nope"):
        catalog.serial_device("protocols.nope", constant(1.0), clock=FakeClock())


def test_serial_fault_switches_from_text() -> None:
    faults = catalog.serial_faults(
        {"disconnect_after_s": "2.5", "garbage_every": "5", "no_reply_every": "3", "stuck_n": "-1"}
    )
    assert faults == Mark10Faults(
        disconnect_after_s=2.5, garbage_every=5, no_reply_every=3, stuck_value_n=-1.0
    )
    assert catalog.serial_faults({}) == Mark10Faults()


def test_ble_fault_switches_from_text() -> None:
    faults = catalog.ble_faults({"drop_every": "4", "low_battery": "yes", "stuck_n": "12"})
    assert faults.drop_every == 4
    assert faults.low_battery is True
    assert faults.stuck_value_n == 12.0
    assert catalog.ble_faults({"low_battery": "off"}) == ProgressorFaults()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"garbage_every": "x"}, "garbage_every='x' is not a whole number"),
        ({"garbage_every": "2.5"}, "is not a whole number"),
        ({"disconnect_after_s": "inf"}, "must be finite"),
        ({"disconnect_after_s": "soon"}, "is not a number"),
        ({"drop_every": "2"}, "unknown simulator setting 'drop_every'"),
        ({"garbage_every": "0"}, "garbage_every"),  # the faults class checks the range
    ],
)
def test_bad_serial_fault_switches_say_what_is_wrong(params: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        catalog.serial_faults(params)


def test_a_flag_takes_only_yes_or_no_words() -> None:
    with pytest.raises(ValueError, match="use true or false"):
        catalog.ble_faults({"low_battery": "maybe"})
