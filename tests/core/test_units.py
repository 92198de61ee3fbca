"""Units: exact factors, round trips, and one truth shared with the gauge codec."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devicectl.units import (
    KGF_N,
    LBF_N,
    ForceUnit,
    format_force,
    from_newtons,
    parse_unit,
    pressure_kpa,
    to_newtons,
)
from protocols.mark10 import Mark10Unit


def test_factors_are_the_exact_definitions() -> None:
    assert KGF_N == 9.80665
    assert LBF_N == 4.4482216152605
    assert to_newtons(1.0, ForceUnit.LBF) == pytest.approx(0.45359237 * 9.80665, rel=1e-15)


def test_the_gauge_codec_uses_the_same_factors() -> None:
    assert Mark10Unit.KGF.newtons == KGF_N
    assert Mark10Unit.LBF.newtons == LBF_N
    assert Mark10Unit.N.newtons == 1.0


@given(st.floats(-1e4, 1e4, allow_nan=False), st.sampled_from(list(ForceUnit)))
def test_to_and_from_newtons_round_trip(value: float, unit: ForceUnit) -> None:
    assert math.isclose(from_newtons(to_newtons(value, unit), unit), value, abs_tol=1e-9)


@pytest.mark.parametrize(("text", "unit"), [("N", ForceUnit.N), ("KGF", ForceUnit.KGF),
                                            (" lbf ", ForceUnit.LBF)])  # fmt: skip
def test_parse_unit_is_case_insensitive(text: str, unit: ForceUnit) -> None:
    assert parse_unit(text) is unit


def test_parse_unit_names_the_allowed_units() -> None:
    with pytest.raises(ValueError, match="N, kgf, lbf"):
        parse_unit("stone")


def test_pressure_and_formatting() -> None:
    assert pressure_kpa(30.0, 1.0) == pytest.approx(300.0)  # 1 N/cm^2 = 10 kPa
    assert format_force(KGF_N * 3, ForceUnit.KGF, 2) == "3.00 kgf"
