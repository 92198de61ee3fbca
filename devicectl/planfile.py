"""Plan files: TOML in, a validated :class:`~devicectl.plan.Plan` out (forces in newtons).

Validation stops at the first problem and raises one :class:`PlanError` naming the file, the step
(1-based) and the field, and saying what is allowed. First-problem-only is deliberate: later checks
depend on earlier values being sane, and a plan is short enough to fix one line at a time.
The format, defaults and limits are documented in ``docs/plans.md``.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from devicectl.errors import PlanError
from devicectl.limits import GUN_SESSION_DEFAULT_S, HARD_LIMITS, HardLimits, check_totals
from devicectl.plan import ChairStep, GunStep, HoldStep, Limits, PauseStep, Plan, Step
from devicectl.units import ForceUnit, parse_unit, to_newtons

__all__ = [
    "CEILING_FACTOR",
    "GUN_SESSION_DEFAULT_S",
    "HARD_LIMITS",
    "RAMP_ROOM_S",
    "HardLimits",
    "load_plan",
    "parse_plan",
]

HARD = HARD_LIMITS  # re-exported above (defined in devicectl.limits); short name for this module

# A hold with no ceiling alarms at 1.5x the band's top: far enough above the band that normal
# overshoot while settling does not ring, close enough to catch a slip (never above the hard limit).
CEILING_FACTOR = 1.5
# hold_s must be at most max_hold_s - this: the hold cap counts from first contact, so a hold needs
# a few seconds to ramp into the band, or it is over-held before it can complete.
RAMP_ROOM_S = 5.0
_DEFAULTS = HoldStep(site="", low_n=0.0, high_n=0.0, ceiling_n=0.0)  # the model's defaults, once

_TOP_KEYS = ("name", "units", "description", "ceiling", "limits", "steps")
_LIMIT_KEYS = (
    "contact",
    "stale_s",
    "max_reps_per_site",
    "max_site_in_band_s",
    "max_gun_area_s",
    "max_session_s",
)
_HOLD_KEYS = ("site", "target", "hold_s", "rest_s", "repeat", "ceiling", "grace_s", "max_hold_s")
_STEP_KEYS: dict[str, tuple[str, ...]] = {
    "hold": ("type", *_HOLD_KEYS, "ramp_rate", "tip_area_cm2", "note"),
    "pause": ("type", "duration_s", "note"),
    "gun": ("type", "area", "level", "duration_s", "note"),
    "chair": ("type", "program", "duration_s", "note"),
}


def load_plan(path: Path) -> Plan:
    """Read and validate a plan file. Raises :class:`PlanError` on any problem, reading included."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(str(path), f"cannot read the plan file: {_reason(exc)}") from exc
    return parse_plan(text, str(path))


def parse_plan(text: str, source: str) -> Plan:
    """Validate plan TOML. ``source`` (a path or ``builtin:NAME``) goes into messages and Plan."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message carries the line and column
        raise PlanError(source, f"not valid TOML: {exc}") from exc
    except RecursionError as exc:  # tomllib recurses on nested arrays and inline tables
        raise PlanError(source, "not valid TOML: nested too deeply") from exc
    return _Reader(source).plan(doc)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


# --- reading one table -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Range:
    """What a numeric field allows. ``cap`` names where ``high`` comes from, for the message."""

    low: float
    high: float
    unit: str = ""  # " s", " N", "" for counts
    low_open: bool = True  # True: value must be > low; False: >= low
    cap: str = "the hard limit"
    high_text: str | None = None  # how to show ``high`` when it is not just "<high><unit>"
    hint: str = ""  # how to allow more, when ``high`` is a plan's own limit

    def shown_high(self) -> str:
        return self.high_text or f"{self.high:g}{self.unit}"

    def allowed(self) -> str:
        low = f"more than {self.low:g}" if self.low_open else f"{self.low:g}"
        return f"allowed: {low} to {self.shown_high()}"


def _seconds(high: float, *, zero_ok: bool = False) -> _Range:
    return _Range(0.0, high, " s", low_open=not zero_ok)


def _count(low: int, high: int) -> _Range:
    return _Range(low, high, "", low_open=False)


def _under(rng: _Range, own: float, own_name: str, cap: str | None = None) -> _Range:
    """Tighten ``rng`` to a plan's own limit when that is lower, saying how to raise it. ``cap``
    says where the limit comes from when it is not simply ``own_name``."""
    if own >= rng.high:
        return rng
    hint = f"; a plan may raise {own_name} up to {rng.shown_high()}"
    return replace(rng, high=own, cap=cap or own_name, high_text=None, hint=hint)


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"{value!r} ({type(value).__name__})"


class _Table:
    """One TOML table being read. Knows where it sits, so every error names file, step and field."""

    def __init__(
        self, data: Mapping[str, Any], source: str, *, step: int | None = None, prefix: str = ""
    ) -> None:
        self.data = data
        self.source = source
        self.step = step
        self.prefix = prefix

    def fail(self, key: str | None, message: str) -> PlanError:
        field = None if key is None else self.prefix + key
        return PlanError(self.source, message, step=self.step, field=field)

    def check_keys(self, known: Iterable[str], what: str) -> None:
        known = list(known)
        for key in self.data:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.fail(
                    key, f"unknown key {key!r} in {what}; {hint}known: {', '.join(known)}"
                )

    def require(self, key: str, hint: str) -> object:
        if key not in self.data:
            raise self.fail(key, f"missing required key {key!r} ({hint})")
        return self.data[key]

    def text(self, key: str, *, required: bool = False, hint: str = "text") -> str:
        value = self.require(key, hint) if required else self.data.get(key, "")
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string ({hint}), got {_describe(value)}")
        if required and not value.strip():
            raise self.fail(key, f"must not be empty ({hint})")
        return value.strip()

    def number(self, key: str, rng: _Range, default: float | None = None) -> float | None:
        """The value (or ``default``), checked against ``rng``; None when absent with no default."""
        if key not in self.data:
            if default is not None:
                self.check_range(key, default, rng, note=" (the default)")
            return default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"must be a number, got {_describe(value)}; {rng.allowed()}")
        if not math.isfinite(value):
            raise self.fail(key, f"{key} = {value} is not a finite number; {rng.allowed()}")
        self.check_range(key, float(value), rng)
        return float(value)

    def must_number(self, key: str, rng: _Range, default: float | None = None) -> float:
        value = self.number(key, rng, default)
        if value is None:
            raise self.fail(key, f"missing required key {key!r} ({rng.allowed()})")
        return value

    def integer(self, key: str, rng: _Range, default: int | None = None) -> int:
        if key not in self.data and default is not None:
            self.check_range(key, default, rng, note=" (the default)")
            return default
        value = self.require(key, f"a whole number, {rng.allowed()}")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be a whole number, got {_describe(value)}; {rng.allowed()}")
        self.check_range(key, value, rng)
        return value

    def check_range(self, key: str, value: float, rng: _Range, note: str = "") -> None:
        shown = f"{key} = {value:g}{rng.unit}{note}"
        if value > rng.high:
            raise self.fail(
                key, f"{shown} exceeds {rng.cap} of {rng.shown_high()}; {rng.allowed()}{rng.hint}"
            )
        if value < rng.low or (rng.low_open and value == rng.low):
            raise self.fail(key, f"{shown} is too small; {rng.allowed()}")


# --- the plan ----------------------------------------------------------------------------------


class _Reader:
    """Reads one plan document top-down: header, limits, steps, then the cross-step caps."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.unit = ForceUnit.N
        self.limits = Limits()
        self.plan_ceiling: float | None = None  # plan units

    def plan(self, doc: dict[str, Any]) -> Plan:
        top = _Table(doc, self.source)
        top.check_keys(_TOP_KEYS, "the plan")
        name = top.text("name", required=True, hint="the plan's name")
        self.unit = self._units(top)
        description = top.text("description")
        self.plan_ceiling = top.number("ceiling", self._force_range())
        self.limits = self._limits(top)
        steps = self._steps(top)
        if self.limits.max_session_s is None and any(isinstance(s, GunStep) for s in steps):
            self.limits = replace(self.limits, max_session_s=GUN_SESSION_DEFAULT_S)
        check_totals(steps, self.limits, self.source)
        return Plan(name, self.unit, steps, self.limits, self.source, description)

    def _units(self, top: _Table) -> ForceUnit:
        hint = "force unit: " + ", ".join(u.value for u in ForceUnit)
        try:
            return parse_unit(top.text("units", required=True, hint=hint))
        except ValueError as exc:
            raise top.fail("units", str(exc)) from exc

    def _force_range(self, per_s: bool = False) -> _Range:
        """A force (or loading rate) in plan units; the hard limit is newtons, shown in both."""
        hard_n, unit = (
            (HARD.ramp_rate_n_s, f" {self.unit}/s") if per_s else (HARD.force_n, f" {self.unit}")
        )
        high = hard_n / self.unit.newtons
        shown = f"{high:.4g}{unit}"
        if self.unit is not ForceUnit.N:
            shown += f" ({hard_n:g} N{unit[len(self.unit) + 1 :]})"
        return _Range(0.0, high, unit, high_text=shown)

    def _limits(self, top: _Table) -> Limits:
        raw = top.data.get("limits", {})
        if not isinstance(raw, dict):
            raise top.fail("limits", f"must be a table ([limits]), got {_describe(raw)}")
        table = _Table(raw, self.source, prefix="limits.")
        table.check_keys(_LIMIT_KEYS, "[limits]")
        d = Limits()
        contact = table.number("contact", self._force_range())
        stale = _Range(HARD.stale_min_s, HARD.stale_max_s, " s", low_open=False)
        return Limits(
            contact_n=d.contact_n if contact is None else to_newtons(contact, self.unit),
            stale_s=table.must_number("stale_s", stale, d.stale_s),
            max_reps_per_site=table.integer(
                "max_reps_per_site", _count(1, HARD.max_reps_per_site), d.max_reps_per_site
            ),
            max_site_in_band_s=table.must_number(
                "max_site_in_band_s", _seconds(HARD.max_site_in_band_s), d.max_site_in_band_s
            ),
            max_gun_area_s=table.must_number(
                "max_gun_area_s", _seconds(HARD.max_gun_area_s), d.max_gun_area_s
            ),
            max_session_s=table.number("max_session_s", _seconds(HARD.max_session_s)),
        )

    def _steps(self, top: _Table) -> tuple[Step, ...]:
        raw = top.require("steps", "at least one [[steps]] table")
        if not isinstance(raw, list) or not raw:
            raise top.fail("steps", "must be one or more [[steps]] tables")
        return tuple(self._step(i, item) for i, item in enumerate(raw, start=1))

    def _step(self, number: int, item: object) -> Step:
        if not isinstance(item, dict):
            raise PlanError(
                self.source, f"must be a [[steps]] table, got {_describe(item)}", step=number
            )
        table = _Table(item, self.source, step=number)
        kinds = ", ".join(_STEP_KEYS)
        kind = table.text("type", required=True, hint=f"one of {kinds}")
        if kind not in _STEP_KEYS:
            close = difflib.get_close_matches(kind, list(_STEP_KEYS), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise table.fail("type", f"unknown step type {kind!r}; {hint}use one of {kinds}")
        table.check_keys(_STEP_KEYS[kind], f"a {kind} step")
        readers: dict[str, Callable[[_Table], Step]] = {
            "hold": self._hold,
            "pause": _pause,
            "gun": self._gun,
            "chair": _chair,
        }
        return readers[kind](table)

    def _hold(self, t: _Table) -> HoldStep:
        site = t.text("site", required=True, hint="where the tip goes, e.g. 'upper trapezius L'")
        low, high = self._band(t)
        ceiling = self._ceiling(t, high)
        max_hold = t.must_number(
            "max_hold_s", _Range(RAMP_ROOM_S, HARD.max_hold_s, " s"), _DEFAULTS.max_hold_s
        )
        reps = _under(
            _count(1, HARD.repeat), self.limits.max_reps_per_site, "limits.max_reps_per_site"
        )
        hold = _under(
            _seconds(HARD.hold_s),
            max_hold - RAMP_ROOM_S,
            "max_hold_s",
            f"max_hold_s - {RAMP_ROOM_S:g} s (time to ramp into the band: the hold cap counts "
            "from first contact)",
        )
        ramp = t.number("ramp_rate", self._force_range(per_s=True))
        area = _Range(HARD.tip_area_min_cm2, HARD.tip_area_max_cm2, " cm2", low_open=False)
        return HoldStep(
            site=site,
            low_n=to_newtons(low, self.unit),
            high_n=to_newtons(high, self.unit),
            ceiling_n=ceiling,
            hold_s=t.must_number("hold_s", hold, _DEFAULTS.hold_s),
            rest_s=t.must_number("rest_s", _seconds(HARD.rest_s), _DEFAULTS.rest_s),
            repeat=t.integer("repeat", reps, _DEFAULTS.repeat),
            grace_s=t.must_number(
                "grace_s", _seconds(HARD.grace_s, zero_ok=True), _DEFAULTS.grace_s
            ),
            max_hold_s=max_hold,
            ramp_rate_n_s=None if ramp is None else to_newtons(ramp, self.unit),
            tip_area_cm2=t.number("tip_area_cm2", area),
            note=t.text("note"),
        )

    def _band(self, t: _Table) -> tuple[float, float]:
        """The target band ``[low, high]`` in plan units, above contact and below the hard limit."""
        value = t.require("target", f"the band as [low, high] in {self.unit}")
        if not isinstance(value, list) or len(value) != 2:
            raise t.fail("target", f"must be [low, high] in {self.unit}, got {_describe(value)}")
        low = self._band_end(t, "low", value[0])
        high = self._band_end(t, "high", value[1])
        if low >= high:
            raise t.fail(
                "target",
                f"the low end {low:g} {self.unit} must be below the high end {high:g} "
                f"{self.unit}; write target = [low, high]",
            )
        contact = self.limits.contact_n / self.unit.newtons
        if low <= contact:
            raise t.fail(
                "target",
                f"the low end {low:g} {self.unit} must be above the contact threshold "
                f"limits.contact = {contact:g} {self.unit}",
            )
        return low, high

    def _band_end(self, t: _Table, end: str, value: object) -> float:
        label = f"target {end} end"
        try:
            return _Table({label: value}, t.source).must_number(label, self._force_range())
        except PlanError as exc:  # re-home the message on the real field, saying which end
            message = exc.message if exc.message.startswith(label) else f"{label} {exc.message}"
            raise t.fail("target", message) from None

    def _ceiling(self, t: _Table, high: float) -> float:
        """The alarm force in newtons: the step's, else the plan's, else 1.5x the band's top."""
        given = t.number("ceiling", self._force_range())
        ceiling = self.plan_ceiling if given is None else given
        if ceiling is None:
            return min(to_newtons(high * CEILING_FACTOR, self.unit), HARD.force_n)
        if ceiling < high:
            which = "ceiling =" if given is not None else "the plan-level ceiling"
            allowed = replace(self._force_range(), low=high, low_open=False).allowed()
            raise t.fail(
                "ceiling",
                f"{which} {ceiling:g} {self.unit} is below the band's high end {high:g} "
                f"{self.unit}; {allowed}",
            )
        return to_newtons(ceiling, self.unit)

    def _gun(self, t: _Table) -> GunStep:
        duration = _under(
            _seconds(HARD.max_gun_area_s), self.limits.max_gun_area_s, "limits.max_gun_area_s"
        )
        lvl = _count(HARD.gun_level_min, HARD.gun_level_max)
        return GunStep(
            area=t.text("area", required=True, hint="the muscle group, e.g. 'quadriceps L'"),
            level=t.integer("level", lvl),
            duration_s=t.must_number("duration_s", duration),
            note=t.text("note"),
        )


def _pause(t: _Table) -> PauseStep:
    duration = t.number("duration_s", _seconds(HARD.step_duration_s))
    return PauseStep(duration_s=duration, note=t.text("note"))


def _chair(t: _Table) -> ChairStep:
    return ChairStep(
        program=t.text("program", required=True, hint="the chair's program name, e.g. 'classic'"),
        duration_s=t.must_number("duration_s", _seconds(HARD.step_duration_s)),
        note=t.text("note"),
    )
