"""Recording snapshots and reading their history.

The poller calls, inside the transaction that ends its poll:

    change = await record_snapshot(session, tenant_id, snapshot, settings=settings)
    await session.commit()

`record_snapshot` stores the snapshot as the next of its history (tenant, source, subject,
season), applies that history's retention, and, when the data differs from the previous
snapshot, queues the change for trackd's bus and the subscribed channels in the same
transaction: committed together, or not at all.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain import jsonpolicy
from trackd.domain.changes import SnapshotChange
from trackd.domain.history import (
    FieldChange,
    Retention,
    canonical_many,
    diff,
    digest,
    normalize,
)
from trackd.notify.service import enqueue_change, enqueue_events
from trackd.settings import Settings
from trackd.sources.base import Snapshot
from trackd.store.models import SnapshotRow, utcnow
from trackd.store.repos import snapshots as repo
from trackd.store.repos.snapshots import HistoryKey
from trackd.store.types import JsonText

ALL_SEASONS: Final = "*"
MAX_PAGE = 500


def retention_for(source: str, settings: Settings) -> Retention:
    """The retention of `source`'s histories: its own setting, else the global defaults."""
    own = settings.snapshot_retention.get(source)
    keep = own.keep if own and own.keep else settings.snapshot_keep
    days = own.days if own and own.days else settings.snapshot_keep_days
    return Retention(keep=keep, max_age=timedelta(days=days))


Judge = Callable[[dict[str, Any], dict[str, Any]], list[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class HistoryPolicy:
    """What a history's owner (a tracking module) decides about it: its retention, instead
    of the settings', and `judge(previous data, new data)` -> the events between two
    consecutive snapshots (each `{"type", "summary", ...}`), queued like a change."""

    retention: Retention | None = None
    judge: Judge | None = None


def _key(tenant_id: str, snapshot: Snapshot) -> HistoryKey:
    if not tenant_id:
        raise ValueError("a snapshot needs a tenant")
    for what in ("source", "subject"):
        value = getattr(snapshot, what)
        if not isinstance(value, str) or not 0 < len(value) <= 255:
            raise ValueError(f"a snapshot's {what} is 1 to 255 characters, got {value!r}")
    if snapshot.season is not None and not 0 < len(snapshot.season) <= 100:
        raise ValueError("a snapshot's season is 1 to 100 characters, or None")
    return HistoryKey(tenant_id, snapshot.source, snapshot.subject, snapshot.season or "")


async def record_snapshot(
    session: AsyncSession,
    tenant_id: str,
    snapshot: Snapshot,
    *,
    settings: Settings,
    notify: bool = True,
    policy: HistoryPolicy | None = None,
) -> SnapshotChange | None:
    """Store `snapshot` and return the change it makes, if any; the caller commits.

    Args:
        session: the caller's session; nothing is committed here.
        tenant_id: whose history it is.
        snapshot: what a source fetched (data must be JSON-compatible).
        settings: the deployment's (retention, notification attempts).
        notify: queue messages for the subscribed channels (the bus event is always queued).
        policy: the history's own retention and event rules (None: the settings' retention).

    Returns:
        The change against the previous snapshot of the same history, or None for the first
        snapshot of a history or one with the same data as the previous.

    Raises:
        ValueError: the snapshot is malformed (naive `taken_at`, a bad subject, NaN in data).
        TypeError: its data holds something JSON cannot represent (a datetime, a set).
    """
    if snapshot.taken_at.tzinfo is None:
        raise ValueError("snapshot.taken_at must carry a time zone")
    key = _key(tenant_id, snapshot)
    data = normalize(snapshot.data)
    meta = normalize(snapshot.meta)
    fingerprint = digest(data)

    await repo.lock_history(session, key)
    previous = await repo.latest(session, key)
    changes: list[FieldChange] = []
    if previous is not None and previous.digest != fingerprint:
        changes = diff(previous.data, data)
    row = await repo.insert(
        session,
        key,
        seq=previous.seq + 1 if previous else 1,
        taken_at=snapshot.taken_at.astimezone(UTC),
        data=data,
        meta=meta,
        digest=fingerprint,
        changes=[c.as_dict() for c in changes] or None,
    )
    retention = (policy and policy.retention) or retention_for(key.source, settings)
    await repo.prune_history(
        session, key, newest_seq=row.seq, keep=retention.keep, cutoff=retention.cutoff(utcnow())
    )
    if previous is not None and changes and policy is not None and policy.judge is not None:
        events = policy.judge(previous.data, data)
        if events:
            await enqueue_events(
                session,
                tenant_id,
                {"source": key.source, "subject": key.subject, "snapshot_id": str(row.id)},
                row.taken_at,
                events,
                notify=notify,
                max_attempts=settings.notify_max_attempts,
            )
    if previous is None or not changes:
        return None
    change = SnapshotChange(
        id=row.id,
        tenant_id=tenant_id,
        source=key.source,
        subject=key.subject,
        season=snapshot.season,
        seq=row.seq,
        taken_at=row.taken_at,
        previous_id=previous.id,
        previous_taken_at=previous.taken_at,
        changes=tuple(changes),
    )
    await enqueue_change(session, change, notify=notify, max_attempts=settings.notify_max_attempts)
    return change


async def backfill_history(
    session: AsyncSession,
    tenant_id: str,
    snapshots: list[Snapshot],
    *,
    retention: Retention,
) -> int:
    """Store past readings into their histories, skipping those already stored (same
    history, same `taken_at`): a re-run stores nothing twice. No change events are raised:
    the past is not news. Returns how many were stored; the caller commits."""
    stored = 0
    by_key: dict[HistoryKey, list[Snapshot]] = {}
    for snapshot in snapshots:
        if snapshot.taken_at.tzinfo is None:
            raise ValueError("snapshot.taken_at must carry a time zone")
        by_key.setdefault(_key(tenant_id, snapshot), []).append(snapshot)
    for key, group in by_key.items():
        await repo.lock_history(session, key)
        times = [s.taken_at.astimezone(UTC) for s in group]
        present = {
            t.astimezone(UTC)
            for t in await repo.taken_between(session, key, min(times), max(times))
        }
        previous = await repo.latest(session, key)
        seq = previous.seq if previous else 0
        for snapshot in sorted(group, key=lambda s: s.taken_at):
            taken_at = snapshot.taken_at.astimezone(UTC)
            if taken_at in present:
                continue
            present.add(taken_at)
            seq += 1
            data = normalize(snapshot.data)
            await repo.insert(
                session,
                key,
                seq=seq,
                taken_at=taken_at,
                data=data,
                meta=normalize(snapshot.meta),
                digest=digest(data),
                changes=None,
            )
            stored += 1
        await repo.prune_history(
            session, key, newest_seq=seq, keep=retention.keep, cutoff=retention.cutoff(utcnow())
        )
    return stored


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    """A snapshot as stored: its place in its history and what changed with it."""

    id: uuid.UUID
    tenant_id: str
    source: str
    subject: str
    season: str | None
    seq: int
    taken_at: datetime
    recorded_at: datetime
    data: dict[str, Any]
    meta: dict[str, Any]
    changes: tuple[FieldChange, ...]

    @classmethod
    def of(cls, row: SnapshotRow) -> StoredSnapshot:
        return cls(
            row.id,
            row.tenant_id,
            row.source,
            row.subject,
            row.season or None,
            row.seq,
            row.taken_at,
            row.recorded_at,
            row.data,
            row.meta,
            tuple(FieldChange.from_dict(c) for c in row.changes or ()),
        )


@dataclass(frozen=True, slots=True)
class SnapshotPage:
    items: list[StoredSnapshot]
    next_before: uuid.UUID | None
    """Pass as `before` for the next (older) page; None on the last page."""


async def list_snapshots(
    session: AsyncSession,
    tenant_id: str,
    source: str,
    subject: str,
    *,
    season: str | None = ALL_SEASONS,
    limit: int = 50,
    before: uuid.UUID | None = None,
) -> SnapshotPage:
    """A subject's snapshots, newest first.

    Args:
        season: one season's history; None for the history without season; "*" (default)
            for every season, in the order they were recorded.
        limit: page size, 1 to 500.
        before: the `next_before` of the previous page.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    wanted = None if season == ALL_SEASONS else (season or "")
    rows = await repo.page(
        session, tenant_id, source, subject, season=wanted, limit=limit + 1, before=before
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return SnapshotPage(
        [StoredSnapshot.of(r) for r in rows], rows[-1].id if more and rows else None
    )


@dataclass(frozen=True, slots=True)
class HistoryEntries:
    items: list[StoredSnapshot]
    next_after: tuple[datetime, uuid.UUID] | None
    """(taken_at, id) of the last item, to pass as `after` for the next (older) page."""


async def history_entries(
    session: AsyncSession,
    tenant_id: str,
    source: str,
    subject: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> HistoryEntries:
    """A subject's snapshots of every season taken in [since, until), newest taken first
    (backfilled entries fall in place by the time they describe)."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    rows = await repo.in_range(
        session,
        tenant_id,
        source,
        subject,
        since=since,
        until=until,
        limit=limit + 1,
        after=after,
    )
    more = len(rows) > limit
    items = [StoredSnapshot.of(r) for r in rows[:limit]]
    last = items[-1] if more and items else None
    return HistoryEntries(items, (last.taken_at, last.id) if last else None)


async def latest_snapshot(
    session: AsyncSession, tenant_id: str, source: str, subject: str, season: str | None = None
) -> StoredSnapshot | None:
    """The newest snapshot of one history (`season` None: the one without season)."""
    row = await repo.latest(session, HistoryKey(tenant_id, source, subject, season or ""))
    return StoredSnapshot.of(row) if row else None


async def prune_snapshots(
    session: AsyncSession, settings: Settings, *, now: datetime | None = None
) -> int:
    """One batch of age retention over every source's histories, for those no longer
    receiving snapshots (recording applies retention to its own history). Returns how many
    snapshots were deleted; call again while it returns a full batch."""
    now = now or utcnow()
    deleted = 0
    for source in await repo.sources(session):
        deleted += await repo.prune_expired(
            session, source, retention_for(source, settings).cutoff(now)
        )
    return deleted


@dataclass(frozen=True, slots=True)
class BulkRecord:
    """What `record_bulk` stored: how many snapshots, how many differ from their previous
    one, and how many old ones retention removed."""

    stored: int
    changed: int
    pruned: int


async def record_bulk(
    session: AsyncSession,
    tenant_id: str,
    snapshots: Sequence[Snapshot],
    *,
    settings: Settings,
) -> BulkRecord:
    """Store many snapshots of one source, each the next of its own history; the caller
    commits. For sources that write one history per user at scale (the daily transits): a
    few statements per 500 subjects instead of several round trips per snapshot.

    Unlike `record_snapshot`, no field diff is kept and no change is queued for the bus or
    channels: these histories are read, not watched. Each subject appears at most once.

    Raises:
        ValueError: snapshots of several sources or seasons, a subject twice, or what
            `record_snapshot` refuses.
    """
    if not snapshots:
        return BulkRecord(0, 0, 0)
    first = snapshots[0]
    keys = [_key(tenant_id, s) for s in snapshots]
    if any((k.source, k.season) != (keys[0].source, keys[0].season) for k in keys):
        raise ValueError("a bulk record holds snapshots of one source and season")
    subjects = [k.subject for k in keys]
    if len(set(subjects)) != len(subjects):
        raise ValueError("a bulk record holds one snapshot per subject")
    season = keys[0].season
    for snapshot in snapshots:
        if snapshot.taken_at.tzinfo is None:
            raise ValueError("snapshot.taken_at must carry a time zone")
    # Written once per distinct part (the reading every user shares is one object), and
    # judged by the store's JSON policy from the text unless the text looks doubtful.
    texts = canonical_many([snapshot.data for snapshot in snapshots])
    for snapshot, text in zip(snapshots, texts, strict=True):
        if not jsonpolicy.text_passes(text, jsonpolicy.STORE_POLICY):
            jsonpolicy.check(snapshot.data, jsonpolicy.STORE_POLICY, where="snapshot data")
    previous = await repo.newest_seqs(session, tenant_id, first.source, season, subjects)
    rows = []
    changed = 0
    for snapshot, subject, text in zip(snapshots, subjects, texts, strict=True):
        fingerprint = hashlib.sha256(text.encode()).hexdigest()
        seq, before = previous.get(subject, (0, None))
        changed += before is not None and before != fingerprint
        rows.append(
            {
                "tenant_id": tenant_id,
                "source": first.source,
                "subject": subject,
                "season": season,
                "seq": seq + 1,
                "taken_at": snapshot.taken_at.astimezone(UTC),
                "data": JsonText(text),
                "meta": normalize(snapshot.meta) if snapshot.meta else {},
                "digest": fingerprint,
                "changes": None,
            }
        )
    await repo.insert_many(session, rows)
    # A history whose only snapshot is the one just stored has nothing to remove.
    grown = [subject for subject in subjects if subject in previous]
    retention = retention_for(first.source, settings)
    pruned = (
        await repo.prune_many(
            session,
            tenant_id,
            first.source,
            season,
            grown,
            keep=retention.keep,
            cutoff=retention.cutoff(utcnow()),
        )
        if grown
        else 0
    )
    return BulkRecord(len(rows), changed, pruned)
