"""The therapist force model: deterministic, and shaped like a real press."""

from __future__ import annotations

import itertools
import math

import pytest

from simulators.force_model import Segment, TherapistModel, constant, hold_segments

TARGET_N = 40.0
RAMP_S, HOLD_S, RELEASE_S, REST_S, MARGIN_S = 2.0, 30.0, 1.0, 30.0, 2.0


def _model(seed: int = 0, repeat: int = 3, loop: bool = False) -> TherapistModel:
    segments = hold_segments(TARGET_N, HOLD_S, REST_S, repeat, ramp_s=RAMP_S)
    return TherapistModel(segments, seed=seed, loop=loop)


def _samples(model: TherapistModel, start: float, end: float, step: float = 0.01) -> list[float]:
    count = round((end - start) / step)
    return [model.force_at(start + i * step) for i in range(count)]


def test_same_seed_same_force_and_pure_in_t() -> None:
    a, b = _model(seed=7), _model(seed=7)
    times = [0.0, 1.3, 10.0, 33.3, 34.5, 50.0, 12.0, 1.3]
    assert [a.force_at(t) for t in times] == [b.force_at(t) for t in times]
    assert a.force_at(12.0) == a.force_at(12.0)


def test_different_seeds_differ() -> None:
    assert _samples(_model(seed=1), 5, 6) != _samples(_model(seed=2), 5, 6)


def test_duration_is_the_sum_of_segments() -> None:
    one = RAMP_S + HOLD_S + MARGIN_S + RELEASE_S + REST_S + MARGIN_S
    assert _model(repeat=3).duration_s == pytest.approx(3 * one)


def test_ramp_starts_at_zero_and_reaches_target() -> None:
    model = _model()
    assert model.force_at(0.0) == 0.0
    ramp = _samples(model, 0, RAMP_S)
    assert ramp[len(ramp) // 4] < ramp[len(ramp) // 2] < ramp[3 * len(ramp) // 4]
    assert model.force_at(RAMP_S) == pytest.approx(TARGET_N, abs=0.5)


def test_hold_stays_within_tremor_and_drift_of_target() -> None:
    model = _model()
    hold = _samples(model, RAMP_S, RAMP_S + HOLD_S + MARGIN_S)
    bound = 0.5 + model.drift_amplitude_n + 1e-9
    assert all(abs(f - TARGET_N) <= bound for f in hold)
    assert max(hold) - min(hold) > 0.5  # the tremor is really there


def test_tremor_is_near_nine_hertz() -> None:
    # Count sign changes of the tremor (the slow drift is negligible over one second).
    model = TherapistModel([Segment("hold", 10, 20.0)], tremor_n=1.0, drift_n_per_s=0.0)
    wave = [f - 20.0 for f in _samples(model, 2, 3, step=0.001)]
    crossings = sum(1 for a, b in itertools.pairwise(wave) if (a < 0) != (b < 0))
    assert 14 <= crossings <= 22  # 8-10 Hz, two crossings a cycle, noise adds a few


def test_release_goes_to_zero_and_rest_stays_near_zero() -> None:
    model = _model()
    release_end = RAMP_S + HOLD_S + MARGIN_S + RELEASE_S
    assert model.force_at(release_end - 0.001) < 0.5
    rest = _samples(model, release_end, release_end + REST_S + MARGIN_S)
    assert all(0.0 <= f <= 0.3 for f in rest)


def test_never_negative_and_zero_after_the_end() -> None:
    model = _model(repeat=2)
    assert min(_samples(model, 0, model.duration_s, step=0.005)) >= 0.0
    assert model.force_at(model.duration_s) == 0.0
    assert model.force_at(model.duration_s + 100) == 0.0
    assert model.force_at(-1.0) == 0.0


def test_loop_repeats_the_profile() -> None:
    model = _model(repeat=1, loop=True)
    for t in (0.5, 3.0, 20.0, 35.5):
        assert model.force_at(t + 2 * model.duration_s) == pytest.approx(model.force_at(t))


def test_a_ramp_starts_from_the_current_force() -> None:
    segments = [Segment("ramp", 1, 10.0), Segment("ramp", 1, 30.0)]
    model = TherapistModel(segments, tremor_n=0.0)
    assert model.force_at(1.0) == pytest.approx(10.0)
    assert model.force_at(1.5) == pytest.approx(20.0)
    assert model.force_at(1.999) == pytest.approx(30.0, abs=0.01)


def test_hold_segments_pad_hold_and_rest_by_the_margin() -> None:
    segments = hold_segments(25.0, 30, 20, 2, ramp_s=3, release_s=1.5, margin_s=4)
    assert segments == 2 * [
        Segment("ramp", 3, 25.0),
        Segment("hold", 34, 25.0),
        Segment("release", 1.5),
        Segment("rest", 24),
    ]


@pytest.mark.parametrize("force_n", [0.0, 12.5, -83.54])
def test_constant_is_flat_for_ever(force_n: float) -> None:
    model = constant(force_n)
    assert model.duration_s == math.inf
    assert {model.force_at(t) for t in (0, 0.01, 5, 1e6)} == {force_n}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "press", "duration_s": 1.0},
        {"kind": "hold", "duration_s": -1.0},
        {"kind": "hold", "duration_s": math.nan},
        {"kind": "hold", "duration_s": 1.0, "target_n": math.inf},
    ],
)
def test_segment_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="segment"):
        Segment(**kwargs)  # type: ignore[arg-type]


def test_a_looping_model_needs_a_finite_duration() -> None:
    with pytest.raises(ValueError, match="looping"):
        TherapistModel([Segment("hold", math.inf, 1.0)], loop=True)
