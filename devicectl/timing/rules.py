"""Rule constants and small pure decisions of the timing core."""

from __future__ import annotations

from devicectl.plan import HoldStep, Plan
from devicectl.timing.types import AlertKind, Severity

# Loading-rate feedback fires beyond +/-25 % of the target: computerized algometers guide the
# operator along a target rate (device-protocols.md 5.1), and hand-held loading varies by about
# that much between trials, so a tighter band would nag on every hold.
RAMP_TOLERANCE = 0.25

# How long a present actuator may take to confirm a stop before the core moves on (with a
# DEVICE_ERROR alert) rather than hang in STOPPING; the stop command itself was already sent.
STOP_CONFIRM_S = 10.0


def ramp_feedback(rate_n_s: float | None, target_n_s: float | None) -> AlertKind | None:
    """RAMP_TOO_FAST / RAMP_TOO_SLOW outside the tolerance, else None.

    ``rate_n_s`` None means contact and band came in the same sample: faster than we can measure,
    which counts as too fast when a target is set.
    """
    if target_n_s is None:
        return None
    if rate_n_s is None or rate_n_s > target_n_s * (1 + RAMP_TOLERANCE):
        return AlertKind.RAMP_TOO_FAST
    if rate_n_s < target_n_s * (1 - RAMP_TOLERANCE):
        return AlertKind.RAMP_TOO_SLOW
    return None


def ramp_message(kind: AlertKind, rate_n_s: float | None, target_n_s: float) -> str:
    what = "too fast" if kind is AlertKind.RAMP_TOO_FAST else "too slow"
    measured = "in one sample" if rate_n_s is None else f"{rate_n_s:.1f} N/s"
    return f"loading {what}: {measured}, target {target_n_s:.1f} N/s"


# A wrong loading rate is advice for the next press, not a hazard.
RAMP_SEVERITY = Severity.WARNING


def ceiling_for(plan: Plan, index: int) -> float | None:
    """The force ceiling in force at step ``index``.

    A hold step uses its own. Any other step uses the nearest hold step before it, else the plan's
    first hold step: a T-bar pressed during a gun or pause step is still bounded by the plan's
    ceiling, and an alarm there also stops a running actuator. A plan without holds has none.
    """
    steps = plan.steps
    for i in range(min(index, len(steps) - 1), -1, -1):
        step = steps[i]
        if isinstance(step, HoldStep):
            return step.ceiling_n
    holds = plan.hold_steps
    return holds[0].ceiling_n if holds else None


def reps_allowed(step: HoldStep, reps_used_on_site: int, max_reps_per_site: int) -> int:
    """How many of the step's repetitions may run, counting holds already done on the site."""
    return max(0, min(step.repeat, max_reps_per_site - reps_used_on_site))
