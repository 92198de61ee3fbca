"""Driving the timing core in virtual time: scripted force traces, collected outputs, plans."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from devicectl.plan import HoldStep, Limits, Plan, Step
from devicectl.timing.core import TimingCore
from devicectl.timing.types import (
    Actuator,
    ActuatorCommand,
    Alert,
    AlertKind,
    Command,
    Cue,
    CueKind,
    DeviceEvent,
    DeviceEventKind,
    HoldDone,
    Output,
    Phase,
    PhaseChange,
)
from devicectl.units import ForceUnit

Force = Callable[[float], float]


def A(expected: object) -> Any:
    """pytest.approx typed as Any, so it can stand for a float inside tuples and dataclasses."""
    return pytest.approx(expected)


HZ = 50.0


def hold_step(**overrides: object) -> HoldStep:
    """The reference hold: band 20-40 N, ceiling 60 N, 30 s in band, 30 s rest, grace 2 s."""
    values: dict[str, object] = {
        "site": "trap",
        "low_n": 20.0,
        "high_n": 40.0,
        "ceiling_n": 60.0,
        "hold_s": 30.0,
        "rest_s": 30.0,
        "repeat": 1,
        "grace_s": 2.0,
        "max_hold_s": 90.0,
    }
    values.update(overrides)
    return HoldStep(**values)  # type: ignore[arg-type]


def make_plan(*steps: Step, limits: Limits | None = None) -> Plan:
    return Plan(name="test", units=ForceUnit.N, steps=tuple(steps), limits=limits or Limits())


def linear(points: Sequence[tuple[float, float]]) -> Force:
    """A piecewise-linear force through ``points`` (t, N); constant before the first and after
    the last point."""

    def force(t: float) -> float:
        if t <= points[0][0]:
            return points[0][1]
        for (t0, f0), (t1, f1) in itertools.pairwise(points):
            if t <= t1:
                return f0 + (f1 - f0) * (t - t0) / (t1 - t0) if t1 > t0 else f1
        return points[-1][1]

    return force


@dataclass
class Run:
    """A core plus everything it has said, in order."""

    core: TimingCore
    out: list[Output] = field(default_factory=list)
    now: float = 0.0

    @classmethod
    def started(
        cls, plan: Plan, actuators: frozenset[Actuator] = frozenset(), at: float = 0.0
    ) -> Run:
        run = cls(TimingCore(plan, actuators=actuators), now=at)
        run.out += run.core.start(at)
        return run

    def _got(self, t: float, outputs: list[Output]) -> list[Output]:
        self.now = max(self.now, t)
        self.out += outputs
        return outputs

    def sample(self, t: float, force_n: float) -> list[Output]:
        return self._got(t, self.core.sample(t, force_n))

    def tick(self, t: float) -> list[Output]:
        return self._got(t, self.core.tick(t))

    def command(self, t: float, command: Command) -> list[Output]:
        return self._got(t, self.core.command(t, command))

    def event(
        self, t: float, kind: DeviceEventKind, device: str, message: str = ""
    ) -> list[Output]:
        return self._got(t, self.core.device_event(t, DeviceEvent(kind, device, message)))

    def feed(self, force: Force, until: float, hz: float = HZ) -> None:
        """Samples of ``force`` on the grid k/hz, from just after now up to ``until``."""
        first = math.floor(self.now * hz + 1e-6) + 1
        for k in range(first, round(until * hz) + 1):
            self.sample(k / hz, force(k / hz))

    def ticks(self, until: float, step: float = 0.1) -> None:
        t0 = self.now
        n = round((until - t0) / step)
        for i in range(1, n + 1):
            self.tick(t0 + i * step)

    # --- reading the outputs ---

    def phases(self, step_index: int | None = None) -> list[tuple[float, Phase]]:
        return [
            (o.t, o.phase)
            for o in self.out
            if isinstance(o, PhaseChange) and (step_index is None or o.step_index == step_index)
        ]

    def phase_at(self, phase: Phase, nth: int = 0) -> float:
        return [t for t, p in self.phases() if p is phase][nth]

    def alerts(self, kind: AlertKind | None = None) -> list[Alert]:
        return [o for o in self.out if isinstance(o, Alert) and (kind is None or o.kind is kind)]

    def cues(self, kind: CueKind) -> list[Cue]:
        return [o for o in self.out if isinstance(o, Cue) and o.kind is kind]

    def holds(self) -> list[HoldDone]:
        return [o for o in self.out if isinstance(o, HoldDone)]

    def actuator_commands(self) -> list[ActuatorCommand]:
        return [o for o in self.out if isinstance(o, ActuatorCommand)]


def presses(*spans: tuple[float, float], level: float = 30.0) -> Force:
    """Presses on the reference band: for each (a, r), 0 N at a, 20 N at a + 0.5 (band entry),
    ``level`` at a + 1 until r, back to 0 N at r + 1. Contact (2 N) is first sampled at a + 0.06."""
    points: list[tuple[float, float]] = [(0.0, 0.0)]
    for a, r in spans:
        points += [(a, 0.0), (a + 0.5, 20.0), (a + 1.0, level), (r, level), (r + 1.0, 0.0)]
    return linear(points)
