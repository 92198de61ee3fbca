"""What goes into the timing core and what comes out of it. Plain frozen data, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from devicectl.dose import HoldDose


class Phase(StrEnum):
    """Where the current step is. Hold steps: ARMED, RAMP, HOLD, RELEASE, REST.
    Pause steps: WAITING (untimed, needs CONFIRM) or RUNNING (timed).
    Actuator steps: STARTING, RUNNING, STOPPING. Every step ends in DONE."""

    ARMED = "ARMED"  # waiting for the tip to touch (force below contact)
    RAMP = "RAMP"  # touching, below the band
    HOLD = "HOLD"  # in the band (or in a dip shorter than grace)
    RELEASE = "RELEASE"  # dose delivered (or cap reached): release now
    REST = "REST"  # released; rest counts down
    WAITING = "WAITING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    DONE = "DONE"


class SessionState(StrEnum):
    READY = "ready"  # built, not started
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    STOPPED = "stopped"  # emergency stop; terminal


class Command(StrEnum):
    """A user's command."""

    CONFIRM = "confirm"  # continue past an untimed pause
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"  # emergency stop: every actuator stopped at once; terminal
    NEXT = "next"  # finish this step early (never shortens a rest)


class BandDirection(StrEnum):
    """Which way :meth:`~devicectl.timing.core.TimingCore.adjust_band` moves a hold's band."""

    UP = "up"  # raise: the client says "too little"
    DOWN = "down"  # lower: the client says "too much"


class CueKind(StrEnum):
    RELEASE = "release"  # the hold is done: release now (bell)
    REST_OVER = "rest_over"  # rest has elapsed (bell)
    STEP_START = "step_start"
    SESSION_DONE = "session_done"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ALARM = "alarm"  # screen and terminal bell


class AlertKind(StrEnum):
    CEILING = "ceiling"
    OVER_HELD = "over_held"
    PRESSURE_DURING_REST = "pressure_during_rest"
    STALE_DATA = "stale_data"
    DATA_RESUMED = "data_resumed"
    HOLD_BROKEN = "hold_broken"
    RAMP_TOO_FAST = "ramp_too_fast"
    RAMP_TOO_SLOW = "ramp_too_slow"
    SITE_CAP = "site_cap"
    GUN_AREA_CAP = "gun_area_cap"
    SESSION_CAP = "session_cap"
    REFUSED = "refused"  # a command the core would not carry out, and why
    DEVICE_ERROR = "device_error"


class Actuator(StrEnum):
    GUN = "gun"
    CHAIR = "chair"


class DeviceEventKind(StrEnum):
    ACTUATOR_STARTED = "actuator_started"
    ACTUATOR_STOPPED = "actuator_stopped"
    LINK_LOST = "link_lost"
    LINK_RESTORED = "link_restored"
    ERROR = "error"


@dataclass(frozen=True)
class DeviceEvent:
    kind: DeviceEventKind
    device: str  # "tbar", "gun", "chair"
    message: str = ""


@dataclass(frozen=True)
class PhaseChange:
    t: float
    step_index: int  # 0-based index into plan.steps
    rep: int  # 1-based repetition (1 for steps without repeats)
    phase: Phase
    previous: Phase | None


@dataclass(frozen=True)
class Cue:
    t: float
    kind: CueKind
    step_index: int
    # Why, for RELEASE: "complete", "over_held", "site_cap", "next", "session_cap".
    # SESSION_DONE: "complete" or "session_cap". Other cues: "".
    reason: str = ""


@dataclass(frozen=True)
class Alert:
    t: float
    kind: AlertKind
    severity: Severity
    message: str
    step_index: int | None = None
    device: str | None = None


@dataclass(frozen=True)
class ActuatorCommand:
    t: float
    actuator: Actuator
    action: str  # "start" | "stop"
    level: int | None = None  # gun speed level
    program: str | None = None  # chair program

    @property
    def is_stop(self) -> bool:
        return self.action == "stop"


@dataclass(frozen=True)
class HoldDone:
    t: float
    dose: HoldDose


@dataclass(frozen=True)
class SessionEnded:
    t: float
    state: SessionState  # COMPLETED or STOPPED


@dataclass(frozen=True)
class StateChange:
    """RUNNING -> PAUSED or PAUSED -> RUNNING (the end of a session is a SessionEnded instead).

    ``reason``: "pause" or "resume" for the commands; when the core pauses by itself, why:
    "ceiling", "actuator_stopped", "actuator_link_lost".
    """

    t: float
    state: SessionState
    previous: SessionState
    reason: str


@dataclass(frozen=True)
class BandChanged:
    """A hold step's target band moved one band step (``adjust_band``).

    The new band holds for the current repetition, from ``t`` on, and for the step's remaining
    repetitions; the next step starts with its own planned band. ``reason`` is the caller's
    (the runner passes the client's words: "too little", "too much").
    """

    t: float
    step_index: int
    rep: int
    band_n: tuple[float, float]  # (low, high) now in force
    previous_n: tuple[float, float]
    direction: BandDirection
    reason: str = ""


Output = (
    PhaseChange
    | Cue
    | Alert
    | ActuatorCommand
    | HoldDone
    | SessionEnded
    | StateChange
    | BandChanged
)


@dataclass(frozen=True)
class Status:
    """A snapshot for status lines and screens. Times are seconds; forces newtons."""

    state: SessionState
    step_index: int
    step_count: int
    step_kind: str
    label: str  # site, area, program or note
    rep: int
    repeats: int
    phase: Phase
    force_n: float | None
    band_n: tuple[float, float] | None
    ceiling_n: float | None
    in_band_s: float
    hold_s: float | None
    countdown_s: float | None  # rest left, pause left, actuator step left
    frozen: bool  # stale data: the hold timer is not counting
    elapsed_s: float
    # The T-bar's link when it is not plainly connected ("reconnecting", "lost"). The core does
    # not know about reconnection; the session runner sets it for status lines.
    link: str = ""
