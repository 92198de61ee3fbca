"""Force units: newtons inside the program; N, kgf and lbf in plans and output.

Conversion factors are exact by definition: 1 kgf = 9.80665 N (standard gravity, CGPM 1901),
1 lbf = 0.45359237 kg x 9.80665 m/s^2 = 4.4482216152605 N.
"""

from __future__ import annotations

from enum import StrEnum

from protocols.units import KGF_N, LBF_N

__all__ = [
    "KGF_N",
    "LBF_N",
    "ForceUnit",
    "format_force",
    "from_newtons",
    "parse_unit",
    "pressure_kpa",
    "to_newtons",
]


class ForceUnit(StrEnum):
    """A unit a plan or a screen may use for force."""

    N = "N"
    KGF = "kgf"
    LBF = "lbf"

    @property
    def newtons(self) -> float:
        """How many newtons one of this unit is."""
        return _FACTORS[self]


_FACTORS = {ForceUnit.N: 1.0, ForceUnit.KGF: KGF_N, ForceUnit.LBF: LBF_N}


def parse_unit(text: str) -> ForceUnit:
    """Read a unit name as written in a plan ("N", "kgf", "lbf"; case-insensitive).

    Raises:
        ValueError: naming the allowed units.
    """
    for unit in ForceUnit:
        if text.strip().lower() == unit.value.lower():
            return unit
    allowed = ", ".join(u.value for u in ForceUnit)
    raise ValueError(f"unknown force unit {text!r}; use one of {allowed}")


def to_newtons(value: float, unit: ForceUnit) -> float:
    """Convert a force in ``unit`` to newtons."""
    return value * unit.newtons


def from_newtons(value_n: float, unit: ForceUnit) -> float:
    """Convert a force in newtons to ``unit``."""
    return value_n / unit.newtons


def pressure_kpa(force_n: float, tip_area_cm2: float) -> float:
    """Pressure under a tip: 1 N/cm^2 = 10 kPa."""
    return force_n / tip_area_cm2 * 10.0


def format_force(value_n: float, unit: ForceUnit, digits: int = 1) -> str:
    """A force for people: ``"31.2 N"``, ``"3.18 kgf"``."""
    return f"{from_newtons(value_n, unit):.{digits}f} {unit.value}"
