"""Invariants of the timing core over random plans, force traces, sample gaps and commands.

A small simulated world drives the core: force samples with random gaps (some longer than
stale_s), a tick every TICK seconds, random user commands, and actuators that confirm starts and
stops shortly after being told. Then the session is driven to its end (NEXT, CONFIRM, RESUME).
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devicectl.plan import ChairStep, GunStep, HoldStep, Limits, PauseStep, Plan
from devicectl.timing.core import TimingCore
from devicectl.timing.types import (
    Actuator,
    ActuatorCommand,
    AlertKind,
    Command,
    DeviceEvent,
    DeviceEventKind,
    HoldDone,
    Output,
    Phase,
    PhaseChange,
    SessionEnded,
    SessionState,
    StateChange,
)
from tests.core.timing_support import linear, make_plan

TICK = 0.1
EPS = 1e-6
DEVICE_DELAY = 0.05
TRACE_S = 40.0

# --- strategies -----------------------------------------------------------------------------


@st.composite
def hold_steps(draw: st.DrawFn) -> HoldStep:
    low = draw(st.sampled_from([8.0, 15.0, 20.0]))
    hold_s = draw(st.sampled_from([1.0, 2.0, 4.0]))
    return HoldStep(
        site=draw(st.sampled_from(["trap", "neck"])),
        low_n=low,
        high_n=low + 15.0,
        ceiling_n=low + 30.0,
        hold_s=hold_s,
        rest_s=draw(st.sampled_from([0.5, 1.0, 3.0])),
        repeat=draw(st.integers(1, 3)),
        grace_s=draw(st.sampled_from([0.2, 0.5, 1.0])),
        max_hold_s=hold_s + draw(st.sampled_from([0.5, 2.0, 6.0])),
        ramp_rate_n_s=draw(st.sampled_from([None, 20.0])),
    )


STEP = st.one_of(
    hold_steps(),
    hold_steps(),
    st.builds(PauseStep, duration_s=st.sampled_from([None, 0.5, 2.0])),
    st.builds(
        GunStep,
        area=st.sampled_from(["trap", "calf"]),
        level=st.integers(1, 5),
        duration_s=st.sampled_from([1.0, 3.0]),
    ),
    st.builds(ChairStep, program=st.just("relax"), duration_s=st.sampled_from([1.0, 3.0])),
)

LIMITS = st.builds(
    Limits,
    stale_s=st.just(0.5),
    max_reps_per_site=st.integers(1, 3),
    max_site_in_band_s=st.sampled_from([3.0, 10.0, 120.0]),
    max_gun_area_s=st.sampled_from([2.0, 120.0]),
    max_session_s=st.sampled_from([None, None, 15.0, 30.0]),
)

PLANS = st.builds(
    lambda steps, limits: make_plan(*steps, limits=limits),
    st.lists(STEP, min_size=1, max_size=4),
    LIMITS,
)

FORCES = st.lists(
    st.tuples(st.sampled_from([0.2, 0.5, 1.0, 3.0, 8.0]), st.sampled_from([0, 1, 5, 12, 25, 50])),
    min_size=1,
    max_size=20,
)
GAPS = st.lists(st.sampled_from([0.02, 0.02, 0.05, 0.1, 0.3, 0.7, 2.0]), min_size=1, max_size=30)
DEVICE_EVENTS = [
    DeviceEvent(DeviceEventKind.LINK_LOST, "tbar", "gone"),
    DeviceEvent(DeviceEventKind.LINK_RESTORED, "tbar"),
    DeviceEvent(DeviceEventKind.ERROR, "gun", "fault"),
    DeviceEvent(DeviceEventKind.LINK_LOST, "gun"),
    DeviceEvent(DeviceEventKind.ACTUATOR_STOPPED, "chair"),
]
COMMANDS = st.lists(
    st.tuples(
        st.floats(0.0, TRACE_S),
        st.sampled_from(
            [Command.PAUSE, Command.RESUME, Command.NEXT, Command.CONFIRM, *DEVICE_EVENTS]
        ),
    ),
    max_size=12,
)
ACTUATORS = st.frozensets(st.sampled_from(list(Actuator)))


# --- the simulated world --------------------------------------------------------------------


@dataclass(order=True)
class Event:
    t: float
    order: int
    what: object = field(compare=False)


@dataclass
class World:
    core: TimingCore
    actuators: frozenset[Actuator]
    out: list[tuple[float, Output]] = field(default_factory=list)
    calls: list[tuple[float, str, list[Output]]] = field(default_factory=list)
    queue: list[Event] = field(default_factory=list)
    pauses: list[list[float]] = field(default_factory=list)  # [start, end] in caller time
    stop_at: float | None = None
    n: int = 0

    def push(self, t: float, what: object) -> None:
        self.n += 1
        heapq.heappush(self.queue, Event(t, self.n, what))

    def run_until(self, until: float) -> None:
        while self.queue and self.queue[0].t <= until:
            event = heapq.heappop(self.queue)
            self.call(event.t, event.what)

    def call(self, t: float, what: object) -> None:
        before = self.core.state
        if isinstance(what, float):
            name, outputs = "sample", self.core.sample(t, what)
        elif isinstance(what, Command):
            name, outputs = what.value, self.core.command(t, what)
            if what is Command.STOP and self.stop_at is None:
                self.stop_at = t
        elif isinstance(what, DeviceEvent):
            name, outputs = what.kind.value, self.core.device_event(t, what)
        else:
            name, outputs = "tick", self.core.tick(t)
        self.calls.append((t, name, outputs))
        self.out += [(o.t, o) for o in outputs]  # o.t: a rule fires at its moment, maybe < t
        self._track_pause(t, before, self.core.state)
        for o in outputs:
            if isinstance(o, ActuatorCommand):  # the device confirms shortly after
                kind = DeviceEventKind.ACTUATOR_STOPPED if o.is_stop else (
                    DeviceEventKind.ACTUATOR_STARTED)  # fmt: skip
                self.push(t + DEVICE_DELAY, DeviceEvent(kind, o.actuator.value))

    def _track_pause(self, t: float, before: SessionState, after: SessionState) -> None:
        if after is SessionState.PAUSED and before is not SessionState.PAUSED:
            self.pauses.append([t, float("inf")])
        elif before is SessionState.PAUSED and after is not SessionState.PAUSED:
            self.pauses[-1][1] = t

    def announced_pauses(self) -> list[tuple[float, float]]:
        """The pauses as the core's StateChange outputs tell them: [start, end) in caller time."""
        spans: list[tuple[float, float]] = []
        start: float | None = None
        for t, o in self.out:
            if isinstance(o, StateChange) and o.state is SessionState.PAUSED:
                start = t
            elif start is not None and isinstance(o, StateChange | SessionEnded):
                spans.append((start, t))
                start = None
        return spans + ([(start, float("inf"))] if start is not None else [])

    def active_between(self, a: float, b: float) -> float:
        paused = sum(max(0.0, min(b, e) - max(a, s)) for s, e in self.pauses)
        return (b - a) - paused


def simulate(
    plan: Plan,
    actuators: frozenset[Actuator],
    forces: list[tuple[float, int]],
    gaps: list[float],
    commands: list[tuple[float, Command | DeviceEvent]],
    stop: float | None,
) -> World:
    world = World(TimingCore(plan, actuators=actuators), actuators)
    world.out += [(0.0, o) for o in world.core.start(0.0)]
    points, t = [(0.0, 0.0)], 0.0
    for duration, level in forces:
        points += [(t + 0.05, float(level)), (t + duration, float(level))]
        t += duration
    force = linear(points)
    t, i = 0.0, 0
    while t < TRACE_S:
        t = round(t + gaps[i % len(gaps)], 6)
        i += 1
        world.push(t, force(t))
    for k in range(1, round(TRACE_S / TICK) + 1):
        world.push(round(k * TICK, 6), None)
    for at, command in commands:
        world.push(at, command)
    if stop is not None:
        world.push(stop, Command.STOP)
    world.run_until(TRACE_S)
    finish(world)
    return world


def finish(world: World) -> None:
    """Release the tip and push the session to its end, as a person pressing on would."""
    t = TRACE_S
    while not world.core.finished and t < TRACE_S + 2000.0:
        t = round(t + TICK, 6)
        world.push(t, 0.0)
        if round(t * 10) % 10 == 0:
            for command in (Command.RESUME, Command.CONFIRM, Command.NEXT):
                world.push(t, command)
        world.run_until(t)
    world.run_until(t + 1.0)  # late device confirmations
    assert world.core.finished, "the session never ended"


# --- the invariants -------------------------------------------------------------------------


def check_rest_never_shortened(plan: Plan, world: World) -> None:
    changes = [(t, o) for t, o in world.out if isinstance(o, PhaseChange)]
    ends = {t for t, o in world.out if isinstance(o, SessionEnded)}
    for (t, pc), (t_next, _) in itertools.pairwise(changes):
        if pc.phase is Phase.REST and t_next not in ends:
            step = plan.steps[pc.step_index]
            assert isinstance(step, HoldStep)
            assert t_next - t >= step.rest_s - EPS, f"rest at {t} ended at {t_next}"


def check_in_band_bounded(world: World, end: float) -> None:
    """Dose time never exceeds the hold's time, with paused time left out (paused time counts
    for nothing), both as the dose reports its pauses and as the world saw them."""
    holds = [o.dose for _, o in world.out if isinstance(o, HoldDone)]
    for dose in holds:
        active = dose.wall_s - dose.paused_s
        assert active == pytest.approx(world.active_between(dose.started_s, dose.ended_s))
        assert dose.in_band_s <= active + EPS, f"{dose} counted paused time in band"
        assert dose.contact_s <= active + EPS, f"{dose} counted paused time in contact"
        assert dose.in_band_s <= dose.planned_in_band_s + EPS  # never past hold_s
    assert sum(d.in_band_s for d in holds) <= end + EPS
    total = world.core.dose(end).total
    assert total.in_band_s <= end + EPS


def check_no_hold_past_its_cap_unflagged(plan: Plan, world: World) -> None:
    over = [(t, o) for t, o in world.out if getattr(o, "kind", None) is AlertKind.OVER_HELD]
    for _, done in [(t, o) for t, o in world.out if isinstance(o, HoldDone)]:
        d = done.dose
        step = plan.steps[d.step_index]
        assert isinstance(step, HoldStep)
        active = world.active_between(d.started_s, d.ended_s)
        if active <= step.max_hold_s + TICK + EPS:
            continue
        assert d.over_held, f"hold {d} ran {active:.2f} s active, unflagged"
        alerts = [t for t, a in over if d.started_s <= t <= d.ended_s + EPS]
        assert alerts, f"no OVER_HELD alert for {d}"
        assert world.active_between(d.started_s, alerts[0]) <= step.max_hold_s + TICK + EPS


def check_stop(world: World) -> None:
    if world.stop_at is None:
        return
    index = next(i for i, c in enumerate(world.calls) if c[1] == "stop")
    stops = {o.actuator for o in world.calls[index][2] if isinstance(o, ActuatorCommand)}
    assert stops == set(world.actuators)
    assert all(o.is_stop for o in world.calls[index][2] if isinstance(o, ActuatorCommand))
    for _, _, outputs in world.calls[index + 1 :]:
        assert all(isinstance(o, ActuatorCommand) and o.is_stop for o in outputs), outputs


def check_actuators_left_stopped(world: World) -> None:
    last: dict[Actuator, ActuatorCommand] = {}
    for _, o in world.out:
        if isinstance(o, ActuatorCommand):
            assert o.actuator in world.actuators
            last[o.actuator] = o
    assert all(c.is_stop for c in last.values()), last


def check_state_changes(world: World) -> None:
    """Every RUNNING <-> PAUSED move is announced, in the call that made it, and nothing else."""
    state = SessionState.RUNNING
    for _, _, outputs in world.calls:
        for o in outputs:
            if isinstance(o, StateChange):
                assert o.previous is state
                assert {o.state, o.previous} == {SessionState.RUNNING, SessionState.PAUSED}
                assert o.reason
                state = o.state
            elif isinstance(o, SessionEnded):
                state = o.state
    assert [(s, e) for s, e in world.pauses] == world.announced_pauses()


def check_phase_chain(world: World) -> None:
    changes = [o for _, o in world.out if isinstance(o, PhaseChange)]
    assert changes[0].previous is None
    for before, after in itertools.pairwise(changes):
        assert after.previous is before.phase


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    plan=PLANS,
    actuators=ACTUATORS,
    forces=FORCES,
    gaps=GAPS,
    commands=COMMANDS,
    stop=st.one_of(st.none(), st.floats(0.0, TRACE_S)),
)
def test_timing_invariants(
    plan: Plan,
    actuators: frozenset[Actuator],
    forces: list[tuple[float, int]],
    gaps: list[float],
    commands: list[tuple[float, Command | DeviceEvent]],
    stop: float | None,
) -> None:
    world = simulate(plan, actuators, forces, gaps, commands, stop)
    end = max(t for t, _, _ in world.calls)
    check_rest_never_shortened(plan, world)
    check_in_band_bounded(world, end)
    check_no_hold_past_its_cap_unflagged(plan, world)
    check_stop(world)
    check_actuators_left_stopped(world)
    check_state_changes(world)
    check_phase_chain(world)
