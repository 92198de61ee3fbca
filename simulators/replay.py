"""A capture played back as a device: :class:`ReplayDevice` (serial) and :class:`ReplayGatt` (BLE).

A capture (``protocols.capture``, recorded by ``drivers.capture``) is cut into *steps*: each
recorded host message with the device's bytes that followed it, up to the next host message
(bytes before the first one are a *preamble*, sent on connecting). When the host sends the next
expected message, its step's replies are sent in order, either at once (``timing="immediate"``)
or after the same delays as recorded, counted from the host's message (``timing="recorded"``).
A recorded ``disconnect`` event drops the link at that point.

A host message that differs from the expected one is a *mismatch*, kept in ``mismatches``
(expected and got bytes). In ``strict`` mode (the default) it is answered with nothing and the
replay waits for the expected message; otherwise it is answered as if it had matched. Once the
capture is used up, host messages are counted in ``past_end`` and answered with nothing, or,
for a serial replay with ``at_end="loop"``, answered with the replies recorded for the same
message, in turn (so a polled gauge goes on cycling through its recorded readings).

Serial input is a byte stream, so a host message may arrive in pieces or several at once. When
every recorded host message ends with the same byte (CR for GCL2 gauges), input is cut into
messages at that byte; otherwise it is matched byte by byte as it comes.

Known limits: notifications are attributed to the last host message before them, so in a BLE
capture a stream that runs across a later write (weights streaming across a tare) is replayed
in two parts, each timed from its own write. Reconnections inside one capture are replayed as
one conversation.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from protocols.capture import (
    DEVICE_TO_HOST,
    EVENT_DISCONNECT,
    EVENT_OPEN,
    HOST_TO_DEVICE,
    Capture,
    CaptureRecord,
    normalize_uuid,
)

from .ble_backend import Property, SimCharacteristic, SimService

__all__ = [
    "MAX_MISMATCHES_KEPT",
    "REPLAY_SERVICE_UUID",
    "AtEnd",
    "Conversation",
    "Mismatch",
    "ReplayDevice",
    "ReplayGatt",
    "Reply",
    "Step",
    "Timing",
]

Timing = Literal["recorded", "immediate"]
AtEnd = Literal["silent", "loop"]

# A capture does not record the GATT table. Without one given, a replay serves the recorded
# characteristics under this made-up service: a central finds characteristics by their UUID.
REPLAY_SERVICE_UUID: Final = "d5c0f1e2-7265-4f70-8c61-792d63617074"
# A host that never matches (wrong driver, wrong capture) at 50 Hz for an hour must not grow
# memory without bound: the first this many mismatches are kept, all are counted.
MAX_MISMATCHES_KEPT = 1000
# Serial input without the recorded terminator is matched once this much has piled up, so a
# host sending a stream of noise is reported rather than buffered for ever.
_MAX_PENDING = 4096


@dataclass(frozen=True)
class Reply:
    """Device bytes ``offset_s`` after their host message (or the connection, for the
    preamble). ``data`` None: the device drops the link here."""

    offset_s: float
    data: bytes | None
    char: str | None = None


@dataclass(frozen=True)
class Step:
    """One recorded host message (on ``char`` for BLE) and the replies that followed it."""

    host: bytes
    char: str | None
    replies: tuple[Reply, ...]


@dataclass(frozen=True)
class Mismatch:
    """A host message that was not the one recorded at ``step`` (0-based)."""

    step: int
    expected: bytes
    got: bytes
    expected_char: str | None = None
    got_char: str | None = None


@dataclass(frozen=True)
class Conversation:
    """A capture cut into a preamble and steps."""

    preamble: tuple[Reply, ...]
    steps: tuple[Step, ...]

    @classmethod
    def from_capture(cls, capture: Capture) -> Conversation:
        return cls.from_records(capture.records)

    @classmethod
    def from_records(cls, records: Iterable[CaptureRecord]) -> Conversation:
        preamble: list[Reply] = []
        steps: list[tuple[CaptureRecord, list[Reply]]] = []
        anchor = 0.0  # the preamble counts from the last ``open`` before the first message
        for record in records:
            if record.direction == HOST_TO_DEVICE:
                steps.append((record, []))
                continue
            base = steps[-1][0].t if steps else anchor
            replies = steps[-1][1] if steps else preamble
            if record.direction == DEVICE_TO_HOST:
                replies.append(Reply(max(0.0, record.t - base), record.data, record.char))
            elif record.event == EVENT_DISCONNECT:
                replies.append(Reply(max(0.0, record.t - base), None))
            elif record.event == EVENT_OPEN and not steps:
                anchor = record.t
        return cls(
            tuple(preamble),
            tuple(Step(r.data, r.char, tuple(replies)) for r, replies in steps),
        )


@dataclass(order=True)
class _Due:
    deadline: float
    seq: int
    reply: Reply = field(compare=False)


class _Player:
    """The cursor over the steps and the replies scheduled but not yet sent."""

    def __init__(
        self,
        conversation: Conversation,
        *,
        clock: Callable[[], float],
        timing: Timing,
        strict: bool,
    ) -> None:
        if timing not in ("recorded", "immediate"):
            raise ValueError(f'timing must be "recorded" or "immediate", not {timing!r}')
        self.conversation = conversation
        self.clock = clock
        self._timing = timing
        self._strict = strict
        self._index = 0
        self._queue: list[_Due] = []
        self._seq = itertools.count()
        self.mismatches: list[Mismatch] = []
        self.mismatch_count = 0
        self.past_end = 0
        self.dropped = False

    @property
    def position(self) -> int:
        """How many steps have been played."""
        return self._index

    @property
    def finished(self) -> bool:
        """Every step played and every reply sent."""
        return self._index >= len(self.conversation.steps) and not self._queue

    def expected(self) -> Step | None:
        steps = self.conversation.steps
        return steps[self._index] if self._index < len(steps) else None

    def matched(self, now: float) -> None:
        """The expected step's message came: schedule its replies and move on."""
        step = self.conversation.steps[self._index]
        self._index += 1
        self.schedule(step.replies, now)

    def mismatch(self, mismatch: Mismatch, now: float) -> None:
        self.mismatch_count += 1
        if len(self.mismatches) < MAX_MISMATCHES_KEPT:
            self.mismatches.append(mismatch)
        if not self._strict:
            self.matched(now)

    def schedule(self, replies: Sequence[Reply], now: float) -> None:
        for reply in replies:
            delay = reply.offset_s if self._timing == "recorded" else 0.0
            heapq.heappush(self._queue, _Due(now + delay, next(self._seq), reply))

    def due(self, now: float) -> list[Reply]:
        """Data replies whose time has come, in order; a due disconnect sets ``dropped``."""
        out: list[Reply] = []
        while self._queue and self._queue[0].deadline <= now and not self.dropped:
            reply = heapq.heappop(self._queue).reply
            if reply.data is None:
                self.dropped = True
            else:
                out.append(reply)
        return out

    def next_deadline(self) -> float | None:
        return self._queue[0].deadline if self._queue else None

    def link_lost(self) -> None:
        """The link is gone: nothing scheduled will be sent; a new link starts clean."""
        self._queue.clear()
        self.dropped = False


class _Replay:
    """What both replays show a test: the cursor, the mismatches and the count past the end."""

    _player: _Player

    @property
    def conversation(self) -> Conversation:
        return self._player.conversation

    @property
    def mismatches(self) -> list[Mismatch]:
        """The first :data:`MAX_MISMATCHES_KEPT` mismatches (``mismatch_count`` counts all)."""
        return self._player.mismatches

    @property
    def mismatch_count(self) -> int:
        return self._player.mismatch_count

    @property
    def past_end(self) -> int:
        """Host messages that came after the capture was used up and got no recorded reply."""
        return self._player.past_end

    @property
    def position(self) -> int:
        return self._player.position

    @property
    def finished(self) -> bool:
        return self._player.finished


class ReplayDevice(_Replay):
    """A serial capture as a :class:`~simulators.serve.ByteDevice` (serve it on a pty or TCP).

    Args:
        capture: a capture with ``transport="serial"``.
        clock: monotonic seconds; the preamble counts from construction.
        timing: ``"recorded"`` keeps the recorded delays; ``"immediate"`` answers at once.
        strict: a mismatch is answered with nothing (True) or as if it had matched (False).
        at_end: ``"silent"``, or ``"loop"`` to answer each later message with the replies
            recorded for the same message, in turn.
    """

    def __init__(
        self,
        capture: Capture,
        *,
        clock: Callable[[], float] = time.monotonic,
        timing: Timing = "recorded",
        strict: bool = True,
        at_end: AtEnd = "silent",
    ) -> None:
        if capture.header.transport != "serial":
            raise ValueError("ReplayDevice replays serial captures; use ReplayGatt for BLE")
        if at_end not in ("silent", "loop"):
            raise ValueError(f'at_end must be "silent" or "loop", not {at_end!r}')
        conversation = Conversation.from_capture(capture)
        self._player = _Player(conversation, clock=clock, timing=timing, strict=strict)
        self._at_end = at_end
        self._terminator = _common_last_byte(s.host for s in conversation.steps)
        self._pending = bytearray()
        self._offset = 0  # bytes of the expected message already received
        self._loop_steps: dict[bytes, list[Step]] = {}
        for step in conversation.steps:
            self._loop_steps.setdefault(step.host, []).append(step)
        self._loop_turns: Counter[bytes] = Counter()
        self._player.schedule(conversation.preamble, clock())

    def receive(self, data: bytes) -> bytes:
        """Bytes from the host; the replies due at once."""
        now = self._player.clock()
        for message in self._messages(data):
            self._take(message, now)
        return self._send(now)

    def due(self) -> bytes:
        return self._send(self._player.clock())

    def should_disconnect(self) -> bool:
        return self._player.dropped

    def _messages(self, data: bytes) -> list[bytes]:
        if self._terminator is None:
            return [data] if data else []
        self._pending += data
        messages: list[bytes] = []
        while (end := self._pending.find(self._terminator)) >= 0:
            messages.append(bytes(self._pending[: end + 1]))
            del self._pending[: end + 1]
        if len(self._pending) > _MAX_PENDING:
            messages.append(bytes(self._pending))
            self._pending.clear()
        return messages

    def _take(self, message: bytes, now: float) -> None:
        rest = message
        while rest:
            step = self._player.expected()
            if step is None:
                self._past_end(rest, now)
                return
            want = step.host[self._offset :]
            n = min(len(want), len(rest))
            if rest[:n] != want[:n]:
                self._offset = 0
                self._player.mismatch(Mismatch(self.position, step.host, message), now)
                return
            self._offset += n
            rest = rest[n:]
            if self._offset == len(step.host):
                self._offset = 0
                self._player.matched(now)

    def _past_end(self, message: bytes, now: float) -> None:
        steps = self._loop_steps.get(message) if self._at_end == "loop" else None
        if not steps:
            self._player.past_end += 1
            return
        turn = self._loop_turns[message]
        self._loop_turns[message] += 1
        self._player.schedule(steps[turn % len(steps)].replies, now)

    def _send(self, now: float) -> bytes:
        return b"".join(r.data for r in self._player.due(now) if r.data is not None)


class ReplayGatt(_Replay):
    """A BLE capture as a :class:`~simulators.ble_backend.GattDevice` for a
    :class:`~simulators.ble_backend.SimPeripheral`: each write is matched to the capture
    (characteristic and bytes); notifications follow on their recorded schedule.

    Args:
        capture: a capture with ``transport="ble"``.
        clock: the event loop's clock (``loop.time``), as the backend's ``now``.
        services: the GATT table to serve; by default one made-up service
            (:data:`REPLAY_SERVICE_UUID`) holding every recorded characteristic, writable
            if written and notifying if it notified.
        timing, strict: as for :class:`ReplayDevice`. Past the end writes go unanswered.
    """

    def __init__(
        self,
        capture: Capture,
        *,
        clock: Callable[[], float],
        services: Sequence[SimService] | None = None,
        timing: Timing = "recorded",
        strict: bool = True,
    ) -> None:
        if capture.header.transport != "ble":
            raise ValueError("ReplayGatt replays BLE captures; use ReplayDevice for serial")
        conversation = Conversation.from_capture(capture)
        self._player = _Player(conversation, clock=clock, timing=timing, strict=strict)
        self._services = tuple(services) if services is not None else _derived(conversation)
        self._connected_once = False

    @property
    def services(self) -> Sequence[SimService]:
        return self._services

    def connect(self) -> None:
        if not self._connected_once:
            self._connected_once = True
            self._player.schedule(self.conversation.preamble, self._player.clock())

    def disconnect(self) -> None:
        self._player.link_lost()

    def write(self, char_uuid: str, data: bytes) -> None:
        now = self._player.clock()
        char = normalize_uuid(char_uuid)
        step = self._player.expected()
        if step is None:
            self._player.past_end += 1
        elif (step.char, step.host) == (char, bytes(data)):
            self._player.matched(now)
        else:
            found = Mismatch(self.position, step.host, bytes(data), step.char, char)
            self._player.mismatch(found, now)

    def notifications(self, now: float) -> list[tuple[str, bytes]]:
        return [(r.char or "", r.data) for r in self._player.due(now) if r.data is not None]

    def next_deadline(self) -> float | None:
        return self._player.next_deadline()

    def should_disconnect(self, now: float) -> bool:
        return self._player.dropped


def _common_last_byte(messages: Iterable[bytes]) -> bytes | None:
    """The byte every message ends with (a line protocol's terminator), if there is one."""
    last = {m[-1:] for m in messages}
    return last.pop() if len(last) == 1 and b"" not in last else None


def _derived(conversation: Conversation) -> tuple[SimService, ...]:
    written = {s.char for s in conversation.steps if s.char}
    replies = itertools.chain(conversation.preamble, *(s.replies for s in conversation.steps))
    notified = {r.char for r in replies if r.char and r.data is not None}
    chars: list[SimCharacteristic] = []
    for uuid in sorted(written | notified):
        props: tuple[Property, ...] = ()
        if uuid in written:
            props += ("write", "write-without-response")
        if uuid in notified:
            props += ("notify",)
        chars.append(SimCharacteristic(uuid, props))
    return (SimService(REPLAY_SERVICE_UUID, tuple(chars)),)
