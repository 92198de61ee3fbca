"""Dose as plain JSON-ready data, for the records, ``--json`` output and exports."""

from __future__ import annotations

import dataclasses
from typing import Any

from devicectl.dose import DoseTotals, HoldDose, SessionDose
from devicectl.plan import Plan


def totals_dict(t: DoseTotals) -> dict[str, Any]:
    d = dataclasses.asdict(t)
    d["gun_s_by_level"] = {str(level): s for level, s in t.gun_s_by_level}
    return d


def hold_dict(h: HoldDose) -> dict[str, Any]:
    d = dataclasses.asdict(h)
    d["wall_s"] = h.wall_s
    return d


def dose_summary(dose: SessionDose, plan: Plan, reason: str = "") -> dict[str, Any]:
    """Planned against delivered, per step, per site and for the session."""
    return {
        "plan": plan.name,
        "units": plan.units.value,
        "reason": reason,
        "total": totals_dict(dose.total),
        "steps": [totals_dict(t) for t in dose.steps],
        "sites": [totals_dict(t) for t in dose.sites],
        "holds": [hold_dict(h) for h in dose.holds],
    }
