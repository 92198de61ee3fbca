"""Moving a hold step's target band while it runs: the step size and the limits of a move.

The client says "too much" or "too little" and the therapist lowers or raises the band by one
band step. The band keeps its planned width and moves by whole steps from the planned band, so a
raise and a lower bring it back to the plan exactly. A move that would leave the limits below is
refused whole (never clamped): the band is then always a band the plan reader could have accepted.
"""

from __future__ import annotations

from devicectl.limits import HARD_LIMITS
from devicectl.plan import HoldStep, Limits
from devicectl.timing.types import BandDirection

# One band step is a tenth of the planned band's low edge: 20-40 N moves by 2 N. Coarse enough that
# one press is a change the client can feel (the smallest real change in pressure-pain threshold is
# a few newtons on a 1 cm2 tip: MDC 28.7-50.6 kPa, device-protocols.md 5.2), fine enough to settle
# on "tolerably painful" (5.3) in a few presses; it scales with the plan, so kgf bands move alike.
BAND_STEP_FRACTION = 0.10
# ... but never less than 1 N: below that a step is lost in hand tremor and gauge noise on a light
# band (a 3-8 N band would otherwise move by 0.3 N, under what a hand can hold steady).
BAND_STEP_MIN_N = 1.0


def band_step_n(planned: HoldStep) -> float:
    """The size of one band step for this hold step (constant for the step: from its plan)."""
    return max(BAND_STEP_MIN_N, BAND_STEP_FRACTION * planned.low_n)


def shifted_band(planned: HoldStep, steps: int) -> tuple[float, float]:
    """The planned band moved by ``steps`` band steps (negative: lowered), width unchanged."""
    shift = steps * band_step_n(planned)
    return planned.low_n + shift, planned.high_n + shift


def band_refusal(
    band: tuple[float, float],
    current: tuple[float, float],
    planned: HoldStep,
    limits: Limits,
    direction: BandDirection,
) -> str | None:
    """Why the band may not become ``band`` (None: it may).

    The low edge stays above the contact level (the plan reader's rule: a band at contact would
    count a resting tip as a hold); the high edge stays below the step's ceiling (force in the band
    must never be an alarm) and within the hard force limit.
    """
    low, high = band
    verb = "raise" if direction is BandDirection.UP else "lower"
    now = f"band {current[0]:g}-{current[1]:g} N"
    if low <= limits.contact_n:
        return (
            f"cannot {verb} the {now}: its low edge must stay above the contact level "
            f"{limits.contact_n:g} N"
        )
    if high >= planned.ceiling_n:
        return (
            f"cannot {verb} the {now}: its high edge must stay below the ceiling "
            f"{planned.ceiling_n:g} N"
        )
    if high > HARD_LIMITS.force_n:
        return (
            f"cannot {verb} the {now}: its high edge must stay within the hard limit "
            f"{HARD_LIMITS.force_n:g} N"
        )
    return None
