"""A person taking the simulated T-bar over from the scripted therapist (``devicectl demo``)."""

from __future__ import annotations

import pytest

from simulators.force_model import HAND_RAMP_S, HandOver, constant


def test_automatic_follows_the_script() -> None:
    hands = HandOver(constant(12.0), target_n=30.0)
    assert not hands.manual
    assert hands.force_at(5.0) == pytest.approx(12.0)


def test_press_ramps_from_the_current_force_to_the_target_and_holds() -> None:
    hands = HandOver(constant(12.0), target_n=30.0)
    hands.force_at(10.0)  # the device last asked at t = 10 s
    hands.press()
    assert hands.manual
    assert hands.force_at(10.0) == pytest.approx(12.0)  # nothing jumps
    assert hands.force_at(10.0 + HAND_RAMP_S / 2) == pytest.approx(21.0)
    assert hands.force_at(10.0 + HAND_RAMP_S) == pytest.approx(30.0)
    assert hands.force_at(60.0) == pytest.approx(30.0)


def test_release_mid_ramp_starts_from_where_the_hand_is() -> None:
    hands = HandOver(constant(0.0), target_n=30.0)
    hands.force_at(1.0)
    hands.press()
    halfway = hands.force_at(1.0 + HAND_RAMP_S / 2)
    hands.release()
    assert hands.force_at(1.0 + HAND_RAMP_S / 2) == pytest.approx(halfway)
    assert hands.force_at(1.0 + HAND_RAMP_S * 1.5) == pytest.approx(0.0)


def test_automatic_gives_the_force_back_to_the_script() -> None:
    hands = HandOver(constant(7.0), target_n=30.0)
    hands.press()
    hands.automatic()
    assert not hands.manual
    assert hands.force_at(3.0) == pytest.approx(7.0)


@pytest.mark.parametrize(("target", "ramp"), [(0.0, 0.7), (float("nan"), 0.7), (30.0, 0.0)])
def test_bad_settings_are_refused(target: float, ramp: float) -> None:
    with pytest.raises(ValueError, match="must be a finite number > 0"):
        HandOver(constant(0.0), target_n=target, ramp_s=ramp)
