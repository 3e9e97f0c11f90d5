"""The SDK's events between a producer's call and the bus: a bare tuple, then JSON.

A tracked call leaves only tuples in the buffer, `(time, handle, kind, sequence, detail)`;
the delivery loop turns each into an envelope on its own thread. Building dictionaries and
running `json.dumps` on every call cost several times what the rest of the call does, and
these events always have the same shape, so they are written from templates here instead.
Every string that comes from a producer (names, ids, messages) is escaped by the json
module's own C function; the producer's `data` goes through the json encoder.

The bytes are exactly those of `trackd.domain.lifecycle`, the builder every other producer
uses (a property test holds them to it): the templates are a faster way to the same JSON.
"""

from __future__ import annotations

import json
import time
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any, Final

from trackd.domain.events import SYSTEM_EVENTS, TASK_PROGRESS, TASK_STATE_CHANGED
from trackd.domain.lifecycle import ENCODER, RESERVED

if TYPE_CHECKING:
    from trackd.sdk.handle import TaskHandle

KIND_PENDING: Final = 0  # detail: the producer's data for the first event, or None
KIND_RUNNING: Final = 1  # detail: None
KIND_END: Final = 2  # detail: (new, previous, duration, reason, error type, error message)
KIND_PROGRESS: Final = 3  # detail: (state, fraction or None, message or None)

# (wall-clock time, task, kind, sequence number, detail); see KIND_*.
Pending = tuple[float, "TaskHandle", int, int, Any]
# (event id, partition key, JSON body): an event ready for any sink.
Wire = tuple[str, str, bytes]

TOPIC: Final = SYSTEM_EVENTS


class _Static:
    """The parts of a task's envelopes that are the same in every event, as JSON."""

    __slots__ = ("data", "envelope", "name", "start")

    def __init__(self, h: TaskHandle) -> None:
        tracker = h._tracker
        env = f',"source":{encode_basestring(tracker.source)}'
        env += f',"trace_id":{encode_basestring(h.trace_id or "")},"attempt":{h.attempt:d}'
        data = f'"task_id":{encode_basestring(h.task_id)}'
        if h.plan_id:
            plan = encode_basestring(h.plan_id)
            env += f',"plan_id":{plan}'
            data += f',"plan_id":{plan}'
        if tracker.tenant_id:
            env += f',"tenant_id":{encode_basestring(tracker.tenant_id)}'
        if h.max_attempts is not None:
            data += f',"max_attempts":{h.max_attempts:d}'
        self.envelope = env
        self.data = data
        self.name = f',"event_type":{encode_basestring(h.name)}'
        self.start = f',"parent_event_id":{encode_basestring(h.event_id)}'


class _Clock:
    """Event times as `lifecycle.format_time(lifecycle.epoch_time(t))` writes them; the part
    up to the second is formatted once per second, and a time equal to the last one (a task's
    pending and running events share theirs) is not formatted again.

    Each cache is one tuple, replaced whole, so delivery threads of several trackers sharing
    the clock never pair one time's key with another's text.
    """

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")
        self._last: tuple[float, str] = (-1.0, "")

    def iso(self, when: float) -> str:
        last = self._last
        if when == last[0]:
            return last[1]
        second, prefix = self._second
        if int(when) != second:
            second = int(when)
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, prefix)
        text = f"{prefix}.{int((when - second) * 1_000_000):06d}Z"
        self._last = (when, text)
        return text


_clock = _Clock()  # used by delivery threads only


def encode(item: Pending) -> Wire:
    """The event's id, partition key and JSON.

    Raises:
        ValueError: the producer's data holds a NaN, an infinity, a lone surrogate or a
            circular structure.
    """
    when, h, kind, seq, detail = item
    static: _Static | None = h._wire
    if static is None:
        static = h._wire = _Static(h)
    # The first event's id is the task's start id; the others add their sequence number.
    # Ids fixed by the event itself mean a batch encoded again (after its delivery loop was
    # cancelled) carries the same ids, which ingest deduplicates.
    start = h.event_id
    if kind == KIND_PENDING:
        event_id = start
        parent = (
            f',"parent_event_id":{encode_basestring(h.parent_event_id)}'
            if h.parent_event_id
            else ""
        )
        data = static.data + static.name + ',"new_state":"pending"'
        if detail:
            extra = ENCODER.encode({k: v for k, v in detail.items() if k not in RESERVED})
            if len(extra) > 2:
                data = extra[1:-1] + "," + data
        event_type = TASK_STATE_CHANGED
    else:
        event_id = f"{start}.{seq:d}"
        parent = static.start
        if kind == KIND_RUNNING:
            data = static.data + static.name + ',"previous_state":"pending","new_state":"running"'
            event_type = TASK_STATE_CHANGED
        elif kind == KIND_END:
            new, previous, duration, reason, error_type, error_message = detail
            data = (
                f'{static.data}{static.name},"previous_state":"{previous}","new_state":"{new}"'
                f',"duration_seconds":{duration!r}'
            )
            if reason is not None:
                data += f',"reason":{encode_basestring(reason)}'
            if error_type is not None:
                data += f',"error_type":{encode_basestring(error_type)}'
                data += f',"error_message":{encode_basestring(error_message)}'
            event_type = TASK_STATE_CHANGED
        else:
            state, fraction, message = detail
            data = f'{static.data},"state":"{state}"'
            if fraction is not None:
                data += f',"progress":{fraction!r}'
            if message is not None:
                data += f',"message":{encode_basestring(message)}'
            event_type = TASK_PROGRESS
    body = (
        f'{{"id":"{event_id}","type":"{event_type}","topic":"{TOPIC}",'
        f'"time":"{_clock.iso(when)}","sequence":{seq:d}{parent}{static.envelope},'
        f'"data":{{{data}}}}}'
    )
    return event_id, h.task_id, body.encode()


def to_envelope(item: Pending) -> dict[str, Any]:
    """The event as a dict, as a consumer would decode it (for tests and debugging)."""
    envelope: dict[str, Any] = json.loads(encode(item)[2])
    return envelope
