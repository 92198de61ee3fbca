"""The runner's hooks for the terminal UI: band moves and client feedback are recorded with their
data, every recorded sample reaches the sink, and the headless keys drive both."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from devicectl.commands import _read_keys
from devicectl.plan import HoldStep, Limits, PauseStep, Plan
from devicectl.records import Records
from devicectl.timing.types import Alert, AlertKind, BandChanged, BandDirection, Command
from devicectl.units import ForceUnit
from tests.core.test_session_runner import ScriptedSensor, _hold_plan, _runner

WAIT_S = 5.0  # generous for a loaded CI machine; every wait ends as soon as its event happens


def _long_hold_plan() -> Plan:
    """A hold that waits in ARMED (no force) while the test presses keys, then a pause step."""
    step = HoldStep("calf", low_n=20, high_n=40, ceiling_n=60, hold_s=30, rest_s=5)
    return Plan("long hold", ForceUnit.N, (step, PauseStep(note="stretch")), Limits(contact_n=2.0))


def _events(records: Records, session_id: int, *kinds: str) -> list[dict[str, Any]]:
    return [e for e in records.events(session_id) if e["kind"] in kinds]


async def test_band_moves_are_recorded_with_step_band_and_reason(tmp_path: Path) -> None:
    sensor = ScriptedSensor(lambda t: 0.0)
    runner, records, sink = _runner(tmp_path, _long_hold_plan(), sensor)
    run = asyncio.create_task(runner.run())
    await asyncio.wait_for(sensor.first_sample.wait(), WAIT_S)
    runner.adjust_band(BandDirection.UP)
    runner.adjust_band("up")
    runner.adjust_band("down", "the client winced")
    assert runner.core.status(runner.clock()).band_n == (22.0, 42.0)
    runner.command(Command.STOP)
    result = await asyncio.wait_for(run, WAIT_S)
    moves = _events(records, result.session_id, "band.raised", "band.lowered")
    assert [(e["kind"], e["data"]) for e in moves] == [
        ("band.raised", {"step": 1, "band_n": [22.0, 42.0], "reason": "too little"}),
        ("band.raised", {"step": 1, "band_n": [24.0, 44.0], "reason": "too little"}),
        ("band.lowered", {"step": 1, "band_n": [22.0, 42.0], "reason": "the client winced"}),
    ]
    assert all(e["t_s"] > 0.0 for e in moves)
    shown = [o for o in sink.seen if isinstance(o, BandChanged)]
    assert [o.reason for o in shown] == ["too little", "too little", "the client winced"]
    records.close()


async def test_a_refused_band_move_is_recorded_as_a_refusal(tmp_path: Path) -> None:
    sensor = ScriptedSensor(lambda t: 0.0)
    plan = Plan("pause", ForceUnit.N, (PauseStep(note="warm up"),))
    runner, records, sink = _runner(tmp_path, plan, sensor)
    run = asyncio.create_task(runner.run())
    await asyncio.wait_for(sensor.first_sample.wait(), WAIT_S)
    runner.adjust_band("down")
    runner.command(Command.STOP)
    result = await asyncio.wait_for(run, WAIT_S)
    [refused] = [o for o in sink.seen if isinstance(o, Alert) and o.kind is AlertKind.REFUSED]
    assert refused.message == "cannot move the band: step 1 is not a hold step"
    assert _events(records, result.session_id, "band.raised", "band.lowered") == []
    assert len(_events(records, result.session_id, "alert.refused")) == 1
    records.close()


async def test_a_band_direction_must_be_up_or_down(tmp_path: Path) -> None:
    runner, records, _ = _runner(tmp_path, _long_hold_plan(), ScriptedSensor(lambda t: 0.0))
    with pytest.raises(ValueError, match="sideways"):
        runner.adjust_band("sideways")
    records.close()


async def test_feedback_is_recorded_at_the_elapsed_time_and_shown(tmp_path: Path) -> None:
    sensor = ScriptedSensor(lambda t: 0.0)
    runner, records, sink = _runner(tmp_path, _long_hold_plan(), sensor)
    run = asyncio.create_task(runner.run())
    await asyncio.wait_for(sensor.first_sample.wait(), WAIT_S)
    runner.feedback(7, "sore but fine")
    runner.feedback(0)
    runner.command(Command.STOP)
    result = await asyncio.wait_for(run, WAIT_S)
    feedback = _events(records, result.session_id, "feedback")
    assert [e["data"] for e in feedback] == [
        {"score": 7, "note": "sore but fine"},
        {"score": 0, "note": ""},
    ]
    first_sample_t = records.samples(result.session_id)[0][0]
    stop_t = _events(records, result.session_id, "command.stop")[0]["t_s"]
    assert all(first_sample_t <= e["t_s"] <= stop_t for e in feedback)
    assert "client feedback 7/10 recorded: sore but fine" in sink.messages
    records.close()


@pytest.mark.parametrize("score", [-1, 11, 7.5, True, "7"])
async def test_feedback_outside_0_to_10_is_a_value_error(tmp_path: Path, score: Any) -> None:
    runner, records, _ = _runner(tmp_path, _long_hold_plan(), ScriptedSensor(lambda t: 0.0))
    with pytest.raises(ValueError, match="feedback"):
        runner.feedback(score)
    records.close()


async def test_the_sink_sees_every_recorded_sample(tmp_path: Path) -> None:
    sensor = ScriptedSensor(lambda t: 0.0 if t < 0.1 else 30.0 if t < 0.8 else 0.0)
    runner, records, sink = _runner(tmp_path, _hold_plan(), sensor)
    result = await asyncio.wait_for(runner.run(), 10)
    recorded = records.samples(result.session_id)
    assert len(recorded) >= 50
    assert sink.samples == recorded
    records.close()


async def test_headless_keys_move_the_band_and_record_feedback(tmp_path: Path) -> None:
    sensor = ScriptedSensor(lambda t: 0.0)
    runner, records, sink = _runner(tmp_path, _long_hold_plan(), sensor)
    run = asyncio.create_task(runner.run())
    await asyncio.wait_for(sensor.first_sample.wait(), WAIT_S)
    reader = asyncio.StreamReader()
    reader.feed_data(b"+\n+\n-\nf 8 Much Better\nf\nf 12\nf x\n")
    reader.feed_eof()
    await asyncio.wait_for(_read_keys(reader, runner), WAIT_S)
    runner.command(Command.STOP)
    result = await asyncio.wait_for(run, WAIT_S)
    moves = _events(records, result.session_id, "band.raised", "band.lowered")
    assert [(e["kind"], e["data"]["band_n"]) for e in moves] == [
        ("band.raised", [22.0, 42.0]),
        ("band.raised", [24.0, 44.0]),
        ("band.lowered", [22.0, 42.0]),
    ]
    feedback = _events(records, result.session_id, "feedback")
    assert [e["data"] for e in feedback] == [{"score": 8, "note": "Much Better"}]
    refused = [m for m in sink.messages if m.startswith("feedback not recorded")]
    assert len(refused) == 3  # "f", "f 12", "f x"
    records.close()
