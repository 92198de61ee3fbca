"""The session runner's sink for the terminal UI: it only stores, and the screen drains it.

The runner calls the sink from the app's event loop: ``sample`` for every reading (up to 1,000 a
second), ``status`` at 20 Hz, ``outputs`` and ``message`` as things happen. Touching a widget at
those rates would redraw per sample, so the sink never does: it keeps the latest status, queues
outputs and messages, and folds samples into fixed time buckets (min, max, last, count). The live
screen takes what is new on its own timers (the digits at ~10 Hz, the chart at a few Hz).

Every buffer is bounded, so a screen that stops draining (say, while the app is closing) never
makes memory grow. The only thing done at once is the terminal bell, so an alarm is never late.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from devicectl.sinks import wants_bell
from devicectl.timing.types import Output, Status

__all__ = ["BUCKET_S", "RATE_WINDOW_S", "Bucket", "TuiSink"]

# Samples are folded into buckets this long: 20 per second is finer than the chart's dot columns
# over a 60 s window (about 150 on a wide terminal), so the chart loses nothing it could show.
BUCKET_S = 0.05
# The measured sample rate counts the samples of the last second, as a person reads "Hz".
RATE_WINDOW_S = 1.0
# Closed buckets kept until the screen takes them: 2 minutes, twice the chart's window.
MAX_BUCKETS = 2400
# Outputs and messages kept until the screen takes them; far more than arrive between two drains.
MAX_PENDING = 1000


@dataclass
class Bucket:
    """The samples of one ``BUCKET_S`` slot: times are session seconds, forces newtons."""

    index: int  # floor(t / BUCKET_S)
    first_t_s: float
    last_t_s: float
    min_t_s: float
    min_n: float
    max_t_s: float
    max_n: float
    last_n: float
    count: int

    @classmethod
    def start(cls, index: int, t_s: float, force_n: float) -> Bucket:
        return cls(index, t_s, t_s, t_s, force_n, t_s, force_n, force_n, 1)

    def add(self, t_s: float, force_n: float) -> None:
        self.last_t_s, self.last_n = t_s, force_n
        self.count += 1
        if force_n < self.min_n:
            self.min_t_s, self.min_n = t_s, force_n
        if force_n > self.max_n:
            self.max_t_s, self.max_n = t_s, force_n

    def points(self) -> list[tuple[float, float]]:
        """The bucket as chart points: its minimum and maximum in time order (one when equal), so
        a spike shorter than a bucket still reaches the chart."""
        low, high = (self.min_t_s, self.min_n), (self.max_t_s, self.max_n)
        if low == high:
            return [low]
        return sorted((low, high))


class TuiSink:
    """A :class:`devicectl.session.SessionSink` that stores what the runner reports.

    ``bell`` is called at once for every output that rings the terminal bell
    (:func:`devicectl.sinks.wants_bell`: alarms, the release cue, the end of rest).
    """

    def __init__(self, *, bell: Callable[[], None], bucket_s: float = BUCKET_S) -> None:
        self._bell = bell
        self.bucket_s = bucket_s
        self.latest: Status | None = None
        self.samples_seen = 0
        self.last_sample_t_s: float | None = None
        self._outputs: deque[tuple[Output, float]] = deque(maxlen=MAX_PENDING)
        self._messages: deque[str] = deque(maxlen=MAX_PENDING)
        self._closed: deque[Bucket] = deque(maxlen=MAX_BUCKETS)
        self._open: Bucket | None = None
        # Buckets of about the last second (closed and open), for the measured rate.
        self._recent: deque[Bucket] = deque()

    # -- SessionSink ----------------------------------------------------------------------------

    def outputs(self, outputs: Sequence[Output], elapsed_s: float) -> None:
        for out in outputs:
            self._outputs.append((out, elapsed_s))
            if wants_bell(out):
                self._bell()

    def status(self, status: Status) -> None:
        self.latest = status

    def message(self, text: str) -> None:
        self._messages.append(text)

    def sample(self, t_s: float, force_n: float) -> None:
        """One reading (session seconds, newtons): folded into the current bucket. O(1)."""
        self.samples_seen += 1
        self.last_sample_t_s = t_s
        index = int(t_s // self.bucket_s)
        current = self._open
        if current is not None and current.index == index:
            current.add(t_s, force_n)
            return
        if current is not None:
            self._closed.append(current)
        self._open = Bucket.start(index, t_s, force_n)
        self._recent.append(self._open)
        while self._recent and self._recent[0].last_t_s < t_s - RATE_WINDOW_S - self.bucket_s:
            self._recent.popleft()

    # -- for the screen -------------------------------------------------------------------------

    def take_outputs(self) -> list[tuple[Output, float]]:
        """Outputs since the last call, with the session time each was reported at."""
        taken = list(self._outputs)
        self._outputs.clear()
        return taken

    def take_messages(self) -> list[str]:
        taken = list(self._messages)
        self._messages.clear()
        return taken

    def take_buckets(self) -> list[Bucket]:
        """Buckets completed since the last call (the one still filling is kept back)."""
        taken = list(self._closed)
        self._closed.clear()
        return taken

    def rate_hz(self, now_s: float) -> float:
        """Samples per second over the last ``RATE_WINDOW_S`` before ``now_s`` (session seconds):
        the span from the first to the last sample in the window over the samples in it, so a
        steady stream reads its true rate; 0 when fewer than two samples are that recent."""
        window = [b for b in self._recent if b.last_t_s >= now_s - RATE_WINDOW_S]
        if not window:
            return 0.0
        count = sum(b.count for b in window)
        span = window[-1].last_t_s - window[0].first_t_s
        return (count - 1) / span if count > 1 and span > 0 else 0.0
