"""A therapist pressing a T-bar on a force gauge: ramp, hold with tremor and drift, release, rest.

The model is a pure function of time since it started (same t, same force), so that simulator
tests are deterministic; the "randomness" is a seeded hash of time, not a stateful generator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["ForceModel", "HandOver", "Segment", "TherapistModel", "constant", "hold_segments"]

SegmentKind = Literal["ramp", "hold", "release", "rest"]
_KINDS: frozenset[str] = frozenset({"ramp", "hold", "release", "rest"})

# Physiological hand tremor sits around 8-12 Hz; a T-bar press shows it at the low end.
_TREMOR_HZ_RANGE = (8.0, 10.0)
# Share of the tremor amplitude that is irregular rather than sinusoidal.
_TREMOR_NOISE_SHARE = 0.3
# Noise is sampled on this grid and interpolated, so it is smooth-ish and a pure function of t.
_NOISE_HZ = 50.0
# A person's slow wander during a hold: a sine with this period whose peak slope is the drift rate.
_DRIFT_PERIOD_S = 20.0
# At rest the sensor still reads a little (tool on skin, electronics noise); well under 0.3 N.
_REST_NOISE_N = 0.15


class ForceModel(Protocol):
    """What a simulated device reads its force from: the force ``t`` seconds after its start."""

    def force_at(self, t: float) -> float: ...


@dataclass(frozen=True)
class Segment:
    """One part of a press. ``ramp`` goes from the current force to ``target_n``; ``hold`` stays at
    ``target_n`` with tremor and drift; ``release`` goes down to 0; ``rest`` stays near 0.
    ``duration_s`` may be ``math.inf`` for a last segment that never ends."""

    kind: SegmentKind
    duration_s: float
    target_n: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown segment kind: {self.kind!r}")
        if math.isnan(self.duration_s) or self.duration_s < 0:
            raise ValueError(f"segment duration must be >= 0: {self.duration_s!r}")
        if not math.isfinite(self.target_n):
            raise ValueError(f"segment target must be finite: {self.target_n!r}")


@dataclass(frozen=True)
class _Placed:
    """A segment with its start time and the nominal force it starts from."""

    segment: Segment
    start_s: float
    start_level_n: float


def _splitmix64(x: int) -> int:
    # A well-mixed integer hash: seeded noise that depends only on (seed, index).
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def _unit_noise(seed: int, index: int) -> float:
    """A value in [-1, 1) fixed by (seed, index)."""
    mixed = _splitmix64((seed * 0x1000003) ^ (index & 0xFFFFFFFFFFFFFFFF))
    return (mixed >> 11) / float(1 << 52) - 1.0


def _smoothstep(p: float) -> float:
    # People load smoothly (no jerk at the start or end of a ramp), unlike a linear ramp.
    return p * p * (3.0 - 2.0 * p)


class TherapistModel:
    """Force (N, compression positive) over time for a scripted sequence of segments."""

    def __init__(
        self,
        segments: Sequence[Segment],
        *,
        seed: int = 0,
        tremor_n: float = 0.5,
        drift_n_per_s: float = 0.05,
        loop: bool = False,
    ) -> None:
        self._seed = seed
        self._tremor_n = abs(tremor_n)
        self._drift_amplitude_n = abs(drift_n_per_s) * _DRIFT_PERIOD_S / (2 * math.pi)
        self._loop = loop
        low, high = _TREMOR_HZ_RANGE
        self._tremor_hz = low + (high - low) * (_unit_noise(seed, -1) + 1) / 2
        self._tremor_phase = math.pi * _unit_noise(seed, -2)
        self._placed, self._duration_s = self._place(segments)
        if loop and not 0 < self._duration_s < math.inf:
            raise ValueError("a looping model needs a finite, non-zero total duration")

    @property
    def duration_s(self) -> float:
        return self._duration_s

    @property
    def drift_amplitude_n(self) -> float:
        """The largest distance the slow drift takes a hold from its target."""
        return self._drift_amplitude_n

    def force_at(self, t: float) -> float:
        """The force t seconds after the model started: 0 before the start and after the end."""
        if t < 0 or not self._placed:
            return 0.0
        if t >= self._duration_s:
            if not self._loop:
                return 0.0
            t = math.fmod(t, self._duration_s)
        placed = self._find(t)
        return self._segment_force(placed, t - placed.start_s, t)

    def _place(self, segments: Sequence[Segment]) -> tuple[list[_Placed], float]:
        placed: list[_Placed] = []
        start_s, level_n = 0.0, 0.0
        for segment in segments:
            placed.append(_Placed(segment, start_s, level_n))
            level_n = self._end_level(segment)
            start_s += segment.duration_s
        return placed, start_s

    def _end_level(self, segment: Segment) -> float:
        if segment.kind == "ramp":
            return segment.target_n
        if segment.kind != "hold":
            return 0.0
        # A hold that never ends has no end level (and sin(inf) is an error); its target will do.
        finite = math.isfinite(segment.duration_s)
        return segment.target_n + (self._drift(segment.duration_s) if finite else 0.0)

    def _find(self, t: float) -> _Placed:
        # Sessions have tens of segments and one lookup per sample: a scan is plenty.
        for placed in reversed(self._placed):
            if placed.start_s <= t:
                return placed
        return self._placed[0]

    def _segment_force(self, placed: _Placed, tau: float, t: float) -> float:
        segment = placed.segment
        p = 1.0 if segment.duration_s in (0, math.inf) else min(1.0, tau / segment.duration_s)
        if segment.kind == "rest":
            return _REST_NOISE_N * (self._noise(t) + 1) / 2
        if segment.kind == "hold":
            nominal, tremor_share = segment.target_n + self._drift(tau), 1.0
        elif segment.kind == "ramp":
            start = placed.start_level_n
            nominal = start + (segment.target_n - start) * _smoothstep(p)
            tremor_share = p
        else:
            nominal, tremor_share = placed.start_level_n * (1 - _smoothstep(p)), 1 - p
        force = nominal + tremor_share * self._tremor(t)
        # Pressing cannot pull: only a deliberately negative (tension) script goes below zero.
        return max(0.0, force) if nominal >= 0 else force

    def _drift(self, tau: float) -> float:
        return self._drift_amplitude_n * math.sin(2 * math.pi * tau / _DRIFT_PERIOD_S)

    def _tremor(self, t: float) -> float:
        sine = math.sin(2 * math.pi * self._tremor_hz * t + self._tremor_phase)
        mixed = (1 - _TREMOR_NOISE_SHARE) * sine + _TREMOR_NOISE_SHARE * self._noise(t)
        return self._tremor_n * mixed

    def _noise(self, t: float) -> float:
        """Seeded value noise in [-1, 1], linearly interpolated between grid points."""
        position = t * _NOISE_HZ
        index = math.floor(position)
        frac = position - index
        a, b = _unit_noise(self._seed, index), _unit_noise(self._seed, index + 1)
        return a + (b - a) * frac


def hold_segments(
    target_n: float,
    hold_s: float,
    rest_s: float,
    repeat: int,
    *,
    ramp_s: float = 2.0,
    release_s: float = 1.0,
    margin_s: float = 2.0,
) -> list[Segment]:
    """One site's holds. Holds and rests run ``margin_s`` longer than planned so that a session
    timer needing ``hold_s`` in-band seconds (and ``rest_s`` of rest) is satisfied."""
    one = [
        Segment("ramp", ramp_s, target_n),
        Segment("hold", hold_s + margin_s, target_n),
        Segment("release", release_s),
        Segment("rest", rest_s + margin_s),
    ]
    return one * repeat


def constant(force_n: float) -> TherapistModel:
    """A flat, noise-free force for ever: exact values for conversation tests."""
    return TherapistModel([Segment("hold", math.inf, force_n)], tremor_n=0.0, drift_n_per_s=0.0)


# A person pressing a T-bar by hand reaches the target in well under a second; 0.7 s is a
# deliberate, clinical ramp (about 40 N/s to 30 N), and so is the release.
HAND_RAMP_S = 0.7


class HandOver:
    """A force model a person can take over from the scripted therapist (``devicectl demo``'s
    keys): :meth:`press` ramps to ``target_n`` and holds it, :meth:`release` ramps to 0, and
    :meth:`automatic` gives the force back to ``script``. A change starts at the last time the
    device asked for a force (it asks at every poll or sample, so that is "now" to within a
    sample period) and ramps from the force it had then, so nothing jumps."""

    def __init__(self, script: ForceModel, *, target_n: float, ramp_s: float = HAND_RAMP_S):
        if not (math.isfinite(target_n) and target_n > 0):
            raise ValueError(f"target_n must be a finite number > 0, not {target_n!r}")
        if not (math.isfinite(ramp_s) and ramp_s > 0):
            raise ValueError(f"ramp_s must be a finite number > 0, not {ramp_s!r}")
        self._script = script
        self._target_n = target_n
        self._ramp_s = ramp_s
        self._last_t = 0.0
        self._manual = False
        self._from = (0.0, 0.0)  # (t, force) where the current hand movement began
        self._goal_n = 0.0

    @property
    def manual(self) -> bool:
        """True while the person, not the script, is pressing (or has released)."""
        return self._manual

    def force_at(self, t: float) -> float:
        self._last_t = max(self._last_t, t)
        if not self._manual:
            return self._script.force_at(t)
        t0, f0 = self._from
        share = min(1.0, max(0.0, (t - t0) / self._ramp_s))
        return f0 + (self._goal_n - f0) * share

    def press(self) -> None:
        self._move(self._target_n)

    def release(self) -> None:
        self._move(0.0)

    def automatic(self) -> None:
        self._manual = False

    def _move(self, goal_n: float) -> None:
        now = self._last_t
        self._from = (now, self.force_at(now))
        self._goal_n = goal_n
        self._manual = True
