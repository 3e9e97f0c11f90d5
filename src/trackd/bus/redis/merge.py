"""The order in which a Redis consumer hands out what it read: by entry id across a
partition's topic streams. Pure: no Redis, no clock, no leases.

A task's events sit in one stream per topic, and a consumer reads each stream COUNT entries at
a time. A sparse topic's COUNT spans more time than a dense one's, so handing a read out as it
comes would fold a task's result before its progress. Entry ids are arrival times on one clock
(see `ordered`), so entries are handed out in id order up to the *horizon*: the smallest last
id among the streams whose read was cut short by COUNT (more may follow there). Newer entries
are held; a stream with entries held beyond the horizon is not read again until the horizon
reaches them, so at most about one COUNT per stream is held.

Order matters only among the streams of one partition (a key lives in one), so each
partition has a horizon of its own: a dense partition cut short early holds back its own
later entries, not every other partition's. With one horizon for all, a read of many
partitions handed out little more than the entries older than the densest stream's cut.

Entries still pending from an earlier read (a dead owner's, taken over, or nacked ones) join
the held entries and are merged by id with new ones, not handed out first: the dead owner may
have read one topic's stream further than another's, and its pending results would otherwise
overtake requests it never read.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence

from trackd.bus.base import Message

EntryId = tuple[int, int]


def id_key(entry_id: str) -> EntryId:
    """A stream id as numbers, for comparing ids."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class MergeOrder:
    """Entries read and not handed out yet: ready ones in order, held ones beyond the horizon."""

    def __init__(self, partition_of: Callable[[str], Hashable] | None = None) -> None:
        """`partition_of` names the partition of a stream (default: all are one)."""
        self._partition_of = partition_of or _one_partition
        # In the order to hand out: (stream, message).
        self._ready: deque[tuple[str, Message]] = deque()
        # Sorted by (id, stream) once a read is merged; newer than the horizon.
        self._held: list[tuple[EntryId, str, Message]] = []
        # Per stream whose last read returned a full COUNT (so more may follow): its last id.
        self._cut: dict[str, str] = {}

    @property
    def has_ready(self) -> bool:
        """Whether entries wait to be handed out."""
        return bool(self._ready)

    @property
    def holding(self) -> bool:
        """Whether entries are held beyond the horizon (the next read makes them ready)."""
        return bool(self._held)

    def horizon(self, stream: str | None = None) -> EntryId | None:
        """The newest id known to have nothing older left unread in the partition of
        `stream` (without one: the smallest over the partitions); None: everything is read."""
        horizons = self._horizons()
        if stream is None:
            return min(horizons.values(), default=None)
        return horizons.get(self._partition_of(stream))

    def _horizons(self) -> dict[Hashable, EntryId]:
        horizons: dict[Hashable, EntryId] = {}
        for stream, last in self._cut.items():
            part, at = self._partition_of(stream), id_key(last)
            if part not in horizons or at < horizons[part]:
                horizons[part] = at
        return horizons

    def readable(self, streams: Iterable[str]) -> list[str]:
        """Of `streams`, the ones to read new entries from now: those not cut short, or cut
        short no later than their partition's horizon."""
        horizons = self._horizons()
        return [
            s
            for s in streams
            if s not in self._cut or id_key(self._cut[s]) <= horizons[self._partition_of(s)]
        ]

    def add_pending(self, entries: Iterable[tuple[str, str, Message]]) -> None:
        """Hold `(stream, entry id, message)` entries read again from the pending list; the
        next `add_read` merges them with the new ones."""
        self._held.extend((id_key(entry_id), stream, msg) for stream, entry_id, msg in entries)

    def add_read(
        self,
        streams: Sequence[str],
        count: int,
        returned: Mapping[str, Sequence[tuple[str, Message | None]]],
    ) -> None:
        """Merge one read of `streams` (COUNT `count` each) and make ready what nothing
        unread can precede.

        Args:
            streams: every stream the read asked for.
            count: the COUNT it asked each for.
            returned: per stream, the `(entry id, message)` pairs it returned in id order; the
                message is None for an entry with nothing to deliver, which still counts
                towards COUNT and the stream's last id.
        """
        for stream in streams:
            entries = returned.get(stream, ())
            if len(entries) < count:
                self._cut.pop(stream, None)  # caught up: nothing older can follow
                continue
            self._cut[stream] = entries[-1][0]
        for stream, entries in returned.items():
            self._held.extend(
                (id_key(entry_id), stream, msg) for entry_id, msg in entries if msg is not None
            )
        self._held.sort(key=lambda held: held[:2])
        horizons = self._horizons()
        ready: list[tuple[EntryId, str, Message]] = []
        held: list[tuple[EntryId, str, Message]] = []
        for h in self._held:
            horizon = horizons.get(self._partition_of(h[1]))
            (ready if horizon is None or h[0] <= horizon else held).append(h)
        self._ready.extend((stream, msg) for _, stream, msg in ready)
        self._held = held

    def take(
        self, max_messages: int, usable: Callable[[str, Message], bool]
    ) -> list[tuple[str, Message]]:
        """Up to `max_messages` ready entries, in order, skipping those not `usable` now
        (they stay ready, in order, ahead of the rest)."""
        out: list[tuple[str, Message]] = []
        unusable: list[tuple[str, Message]] = []
        while self._ready and len(out) < max_messages:
            stream, msg = self._ready.popleft()
            if usable(stream, msg):
                out.append((stream, msg))
            else:
                unusable.append((stream, msg))
        self._ready.extendleft(reversed(unusable))
        return out

    def forget(self, streams: set[str] | None = None) -> list[Message]:
        """Drop what was read and not handed out (of `streams`, or all); returns it."""
        if streams is None:
            dropped = [m for _, m in self._ready] + [m for _, _, m in self._held]
            self._ready.clear()
            self._held.clear()
            self._cut.clear()
            return dropped
        dropped = [m for s, m in self._ready if s in streams]
        dropped += [m for _, s, m in self._held if s in streams]
        self._ready = deque((s, m) for s, m in self._ready if s not in streams)
        self._held = [h for h in self._held if h[1] not in streams]
        for stream in streams & self._cut.keys():
            del self._cut[stream]
        return dropped


def _one_partition(_stream: str) -> None:
    return None
