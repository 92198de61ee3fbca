"""The opener: addresses checked before anything opens, simulated therapists, driver choice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from devicectl import opener
from devicectl.builtin import builtin_plan
from devicectl.errors import AddressError
from drivers.force import ForceSample


def test_a_serial_and_a_ble_sensor_parse_with_their_model() -> None:
    spec = opener.parse_sensor("mark10@socket://127.0.0.1:7001")
    assert spec.model.key == "mark10"
    assert not spec.simulated
    spec = opener.parse_sensor("progressor@ble:AA:BB:CC:DD:EE:FF")
    assert spec.model.transport == "ble"
    assert spec.address.target == "AA:BB:CC:DD:EE:FF"
    assert opener.parse_sensor("progressor@sim?low_battery=1").simulated


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("progressor@serial:///dev/ttyUSB0", "bad device address"),
        ("mark10@mqtt://127.0.0.1/gauge", "MQTT bridge are not supported yet"),
        ("mark10@sim?drop_every=2", "unknown simulator setting 'drop_every'"),
        ("progressor@sim?stuck_n=heavy", "stuck_n='heavy' is not a number"),
        ("nosuch@sim", "unknown model|bad device address"),
    ],
)
def test_bad_sensor_addresses_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(AddressError, match=message):
        opener.parse_sensor(text)


def test_the_plan_profile_presses_through_the_plan() -> None:
    plan = builtin_plan("demo")
    therapist = opener.sim_therapist(plan, "plan", loop=False)
    assert therapist.force_at(0.0) < 1.0  # the lead-in: nothing pressed yet
    holds = list(plan.hold_steps)
    low, high = holds[0].low_n, holds[0].high_n
    pressed = [therapist.force_at(t / 10) for t in range(600)]
    assert any(low <= f <= high for f in pressed)


def test_the_constant_profile_and_bad_profiles() -> None:
    plan = builtin_plan("demo")
    therapist = opener.sim_therapist(plan, "constant:12.5", loop=False)
    assert therapist.force_at(3.0) == pytest.approx(12.5, abs=1.0)
    for bad in ("constant:", "constant:nan", "constant:heavy", "sine"):
        with pytest.raises(AddressError, match="use plan, holds"):
            opener.sim_therapist(plan, bad, loop=False)


def test_sim_models_cover_serial_and_ble_simulators() -> None:
    kinds = {entry.key: kind for entry, kind in opener.sim_models()}
    assert kinds["mark10"] == "serial"
    assert kinds["progressor"] == "ble"


async def test_a_reconnection_to_the_first_progressor_found_looks_for_that_one_only() -> None:
    spec = opener.parse_sensor("progressor@sim")
    factory = opener._ble_factory(spec, builtin_plan("demo"), None)
    first = factory()
    info = await first.connect()
    try:
        again = factory()
        assert again.link.address == info.address  # pinned, not "the first one found"
    finally:
        await first.close()


@pytest.mark.parametrize("address", ["mark10@sim", "progressor@sim"])
async def test_a_simulated_t_bar_can_be_pressed_by_hand(address: str) -> None:
    handed: list[opener.SimHands] = []
    options = opener.OpenOptions(on_hands=handed.append)
    plan = builtin_plan("demo")  # bands 20-40 N: a hand presses to 30 N

    async def force_reaches(stream: AsyncIterator[ForceSample], low: float, high: float) -> None:
        async for sample in stream:
            if low <= sample.force_n <= high:
                return

    async with opener.open_force_sensor(
        opener.parse_sensor(address), plan=plan, options=options
    ) as sensor:
        await sensor.connect()
        [hands] = handed
        stream = sensor.samples()
        await asyncio.wait_for(force_reaches(stream, -1.0, 1.0), 10)  # the lead-in: nothing yet
        hands.press()
        await asyncio.wait_for(force_reaches(stream, 29.0, 31.0), 10)
        hands.release()
        await asyncio.wait_for(force_reaches(stream, -1.0, 1.0), 10)
        assert hands.manual
