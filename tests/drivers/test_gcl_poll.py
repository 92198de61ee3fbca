"""Pacing and link health, in virtual time (no I/O)."""

from __future__ import annotations

import pytest

from drivers.errors import DeviceFault, DeviceTimeout
from drivers.gcl_poll import Pacer, PollHealth
from protocols.mark10 import ErrorReply


def test_pacer_keeps_a_fixed_grid_without_drift() -> None:
    pacer = Pacer(rate_hz=50, start=100.0)
    # Each poll takes 3 ms: the delays shrink to keep the slots at 100.02, 100.04, ...
    now = 100.003
    for k in range(1, 200):
        delay = pacer.delay_after(now)
        assert now + delay == pytest.approx(100.0 + k * 0.02)
        now += delay + 0.003


def test_pacer_skips_missed_slots_rather_than_bursting() -> None:
    pacer = Pacer(rate_hz=10, start=0.0)
    assert pacer.delay_after(0.35) == pytest.approx(0.05)  # slots 0.1-0.3 were missed
    assert pacer.delay_after(0.40) == pytest.approx(0.1)


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan"), float("inf")])
def test_pacer_rejects_bad_rates(rate: float) -> None:
    with pytest.raises(ValueError, match="rate_hz"):
        Pacer(rate, 0.0)


def test_health_counts_and_times_out_without_readings() -> None:
    health = PollHealth("gauge", limit_s=2.0, start=10.0)
    health.request()
    health.reading(10.5)
    health.request()
    health.missed()
    health.garbage()
    assert health.failure(12.4) is None
    failure = health.failure(12.5)
    assert isinstance(failure, DeviceTimeout)
    assert failure.message == "no valid replies within 2 s"
    assert "baud rate" in failure.hint
    assert health.stats.requests == 2
    assert (health.stats.readings, health.stats.missed, health.stats.garbage) == (1, 1, 1)


def test_health_blames_the_device_only_when_every_reply_was_an_error() -> None:
    health = PollHealth("gauge", limit_s=1.0, start=0.0)
    health.error(ErrorReply(12))
    failure = health.failure(1.0)
    assert isinstance(failure, DeviceFault)
    assert failure.code == "*12"
    health.missed()  # silence mixed in: no longer only errors
    assert isinstance(health.failure(1.0), DeviceTimeout)
    health.reading(1.0)
    assert health.failure(1.5) is None


def test_health_with_no_replies_at_all_is_a_timeout() -> None:
    health = PollHealth("gauge", limit_s=0.3, start=0.0)
    assert isinstance(health.failure(0.3), DeviceTimeout)


def test_health_rejects_bad_limits() -> None:
    with pytest.raises(ValueError, match="no_reply_limit_s"):
        PollHealth("gauge", limit_s=0.0, start=0.0)
