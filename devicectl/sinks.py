"""Where a headless session reports: a live console, or JSON lines for programs."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, TextIO

from devicectl.console import event_line, status_line
from devicectl.plan import Plan
from devicectl.timing.types import Alert, Cue, CueKind, Output, Severity, Status

BELL = "\a"
# The status line is redrawn at most this often: faster than the eye needs is wasted terminal I/O.
STATUS_INTERVAL_S = 0.2
_BELL_CUES = (CueKind.RELEASE, CueKind.REST_OVER)


def wants_bell(output: Output) -> bool:
    """The release cue, the end of rest and every alarm ring the terminal bell."""
    if isinstance(output, Cue):
        return output.kind in _BELL_CUES
    return isinstance(output, Alert) and output.severity is Severity.ALARM


class ConsoleSink:
    """Event lines as they happen; on a terminal also a live status line redrawn in place."""

    def __init__(self, plan: Plan, out: TextIO | None = None) -> None:
        self.plan = plan
        self.out = out or sys.stdout
        self.live = self.out.isatty()
        self._last_status = float("-inf")
        self._status_shown = False

    def outputs(self, outputs: Sequence[Output], elapsed_s: float) -> None:
        self._clear_status()
        for out in outputs:
            line = event_line(out, elapsed_s, self.plan)
            if line is not None:
                self.out.write(line + "\n")
            if wants_bell(out):
                self.out.write(BELL)
        self.out.flush()

    def status(self, status: Status) -> None:
        if not self.live or status.elapsed_s - self._last_status < STATUS_INTERVAL_S:
            return
        self._last_status = status.elapsed_s
        # Cut to the terminal's width: a wrapped line cannot be redrawn in place with \r.
        width = shutil.get_terminal_size().columns - 1
        self.out.write("\r" + status_line(status, self.plan.units)[:width] + "\x1b[K")
        self.out.flush()
        self._status_shown = True

    def sample(self, t_s: float, force_n: float) -> None:
        return None  # the status line shows the latest force; every sample is in the records

    def message(self, text: str) -> None:
        self._clear_status()
        self.out.write(text + "\n")
        self.out.flush()

    def _clear_status(self) -> None:
        if self._status_shown:
            self.out.write("\r\x1b[K")
            self._status_shown = False


def output_record(output: Output, elapsed_s: float) -> dict[str, Any]:
    """An output of the core as a JSON object with a ``type`` field (enums are str: no encoder)."""
    return {"type": type(output).__name__, "elapsed_s": round(elapsed_s, 3), **asdict(output)}


class JsonSink:
    """One JSON object per line on stdout: every output of the core, then the summary."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def emit(self, record: dict[str, Any]) -> None:
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    def outputs(self, outputs: Sequence[Output], elapsed_s: float) -> None:
        for out in outputs:
            self.emit(output_record(out, elapsed_s))

    def status(self, status: Status) -> None:
        return None

    def sample(self, t_s: float, force_n: float) -> None:
        return None  # samples are in the records (``devicectl export``), not on this stream

    def message(self, text: str) -> None:
        self.emit({"type": "message", "text": text})
