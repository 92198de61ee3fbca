"""Two pieces of the Progressor driver that are pure arithmetic, kept apart so they can be tested
with synthetic samples: mapping the device's µs clock onto local time, and the jump filter."""

from __future__ import annotations

import math
from collections.abc import Sequence

from protocols.progressor import unwrap_us

__all__ = ["MAX_DRIFT", "MAX_RATE_N_PER_S", "DeviceClock", "JumpFilter"]

# How fast the offset estimate may rise (s per device s). Crystals are good to ±50 ppm, so two
# clocks differ by at most ~100 ppm; 500 ppm follows a slow device clock with room to spare, yet
# lets a run of late (batched) notifications lift the estimate by only 0.5 ms a second.
MAX_DRIFT = 500e-6
# Nobody pressing a tool onto a sensor changes the force faster than this (hands load at a few
# hundred N/s); a faster change between two samples is a glitch, not a force.
MAX_RATE_N_PER_S = 2000.0


class DeviceClock:
    """Maps the device's wrapping uint32 µs timestamps onto the local monotonic clock.

    Rule: the device time is unwrapped (:func:`~protocols.progressor.unwrap_us`, so the wrap
    after ~71.6 minutes is a small forward step), then ``t = device_s + offset`` where
    ``offset`` estimates local - device time. Every sample's ``arrival - device_s`` is an upper
    bound of the true offset (the sample cannot arrive before it was taken), and BLE batching and
    connection intervals only ever *delay* arrival, so the smallest value seen is the best
    estimate: ``offset`` follows the minimum. So that a device clock running slower than ours
    does not make the mapping drift behind, the estimate may also rise, at most
    :data:`MAX_DRIFT` per device second, until the next minimum pulls it back down.

    Guarantees: ``t <= arrival`` (a mapped time never runs ahead of when the sample arrived)
    and ``t`` never decreases (when the estimate falls, times are held instead of stepping
    back). Between samples the mapping follows the device clock, so there is no jitter from
    batching.

    ``lost`` counts samples that never arrived, from gaps in device time: a step of more than
    1.5 sample periods (the shortest step seen; about 12.5 ms at 80 Hz) means
    ``round(step / period) - 1`` missing samples.
    """

    def __init__(self) -> None:
        self._last_us: int | None = None
        self._offset_s: float | None = None
        self._last_t = -math.inf
        self._period_us: int | None = None
        self.lost = 0

    @property
    def offset_s(self) -> float | None:
        return self._offset_s

    def map(self, raw_us: int, arrival: float) -> float:
        """The local time of a sample stamped ``raw_us`` that arrived at ``arrival``."""
        return self.map_batch([raw_us], arrival)[0]

    def map_batch(self, raw_us: Sequence[int], arrival: float) -> list[float]:
        """Local times of the samples of one notification (oldest first), which all arrived at
        ``arrival``: every sample's bound updates the offset before any is mapped, so the
        newest sample's small delay corrects the older ones' times too."""
        device_s: list[float] = []
        for raw in raw_us:
            previous = self._last_us
            device_us = unwrap_us(previous, raw)
            step_us = 0 if previous is None else device_us - previous
            if step_us > 0:
                self._count_gap(step_us)
            self._last_us = device_us if previous is None else max(device_us, previous)
            seconds = device_us / 1e6
            device_s.append(seconds)
            bound = arrival - seconds
            offset = self._offset_s
            if offset is None:
                offset = bound
            else:
                offset = min(bound, offset + MAX_DRIFT * max(step_us, 0) / 1e6)
            self._offset_s = offset
        mapped: list[float] = []
        for seconds in device_s:
            assert self._offset_s is not None
            t = min(arrival, max(self._last_t, seconds + self._offset_s))
            self._last_t = t
            mapped.append(t)
        return mapped

    def _count_gap(self, step_us: int) -> None:
        period = self._period_us
        if period is None or step_us < period:
            self._period_us = step_us
            return
        if step_us > 1.5 * period:
            self.lost += round(step_us / period) - 1


class JumpFilter:
    """Drops samples that change faster than a force can.

    A sample is an impossible jump when it differs from the last accepted one by more than
    ``max_jump_n + MAX_RATE_N_PER_S * dt`` (``dt`` the device time between them). So that a
    real, fast step (the tool slipping onto the sensor) is not refused for ever, a new level is
    accepted once ``confirm`` rejected samples in a row agree with each other within the same
    bound; the first of them stay dropped. :meth:`rearm` accepts whatever comes next (after a
    tare, whose step is expected).
    """

    def __init__(self, max_jump_n: float, *, confirm: int = 2) -> None:
        if not (math.isfinite(max_jump_n) and max_jump_n > 0):
            raise ValueError(f"max_jump_n must be a finite number > 0 N, not {max_jump_n!r}")
        if confirm < 2:
            raise ValueError(f"confirm must be >= 2, not {confirm!r}")
        self.max_jump_n = max_jump_n
        self._confirm = confirm
        self._last: tuple[float, float] | None = None  # (t, force) last accepted
        self._run: list[tuple[float, float]] = []  # rejected samples in a row that agree
        self.dropped = 0

    def rearm(self) -> None:
        self._last = None
        self._run.clear()

    def accept(self, t: float, force_n: float) -> bool:
        """True to keep the sample at device time ``t`` (s); False if it is dropped (counted)."""
        if self._last is None or self._within(self._last, t, force_n):
            self._last = (t, force_n)
            self._run.clear()
            return True
        if self._run and not self._within(self._run[-1], t, force_n):
            self._run.clear()
        self._run.append((t, force_n))
        if len(self._run) >= self._confirm:
            self._last = (t, force_n)
            self._run.clear()
            return True
        self.dropped += 1
        return False

    def _within(self, ref: tuple[float, float], t: float, force_n: float) -> bool:
        dt = max(0.0, t - ref[0])
        return abs(force_n - ref[1]) <= self.max_jump_n + MAX_RATE_N_PER_S * dt
