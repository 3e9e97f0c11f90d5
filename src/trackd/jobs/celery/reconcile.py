"""Catching up from Celery's result backend with what happened while no one listened.

Celery's events are not kept for a receiver that is away (on Redis they are pub/sub), so
after a restart, or a lost broker connection, the tasks that ended meanwhile are read back
from the result backend:

- a Redis result backend is scanned (its task keys, a page at a time), so even tasks trackd
  never heard of are found; only results from the last `window` are taken;
- any other backend is asked about the tasks the store still has as unfinished (this needs
  the database).

A task the store has unfinished is corrected when the backend says it ended: its end takes
the attempt the backend keeps (`result_extended`), else the later of the store's and the
receiver's, so a retry whose live events were missed still ends where the store has it.

Ended states become envelopes with the ids of the live events they stand for
(`results.from_result`), so whatever trackd already had is dropped by ingest as a duplicate;
with the database at hand, tasks the store already has as ended are not sent at all. Memory
stays bounded by the page size.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.domain.events import EventEnvelope
from trackd.domain.states import TERMINAL_STATES
from trackd.domain.tasks import TaskRecord
from trackd.jobs.celery.book import TaskBook
from trackd.jobs.celery.results import done_at, from_result
from trackd.store.models import TaskExecution
from trackd.store.repos import tasks

log = logging.getLogger(__name__)

PAGE = 500
Publish = Callable[[Sequence[EventEnvelope]], Awaitable[None]]


@dataclass(slots=True)
class ReconcileStats:
    examined: int = 0
    published: int = 0
    already_known: int = 0


@dataclass(frozen=True, slots=True)
class Store:
    """Read access to trackd's store: which tasks it already has as ended."""

    sessions: async_sessionmaker[AsyncSession]
    tenant_id: str


async def reconcile(
    backend: Any,
    book: TaskBook,
    publish: Publish,
    *,
    window: timedelta,
    store: Store | None = None,
    tenant_id: str | None = None,
) -> ReconcileStats:
    """Publish the ended tasks the backend has and trackd may have missed.

    Args:
        backend: the Celery app's result backend (`app.backend`).
        book: what the receiver remembers (the attempt of tasks the backend does not say).
        publish: sends envelopes to trackd's bus.
        window: how far back a Redis scan looks (by the results' `date_done`).
        store: trackd's store, when this process can read it.
        tenant_id: the tenant the envelopes name.
    """
    stats = ReconcileStats()
    since: datetime | None = None
    pages: AsyncIterator[list[Mapping[str, Any]]]
    if _is_redis(backend):
        pages = _redis_pages(backend)
        since = datetime.now(UTC) - window
    elif store is not None:
        pages = _store_pages(backend, store)
    else:
        log.warning(
            "cannot reconcile from a %s result backend without trackd's database "
            "(--database-url); tasks that ended while trackd celery was away stay unfinished",
            type(backend).__name__,
        )
        return stats
    async for metas in pages:
        stats.examined += len(metas)
        if since is not None:
            metas = [m for m in metas if done_at(m.get("date_done")) >= since]
        ids = [m["task_id"] for m in metas if isinstance(m.get("task_id"), str)]
        stored = await _records(store, ids) if store is not None else {}
        envelopes = []
        for meta in metas:
            task_id = meta.get("task_id")
            if not isinstance(task_id, str):
                continue
            env = from_result(
                meta,
                known_attempt=_known_attempt(book, stored.get(task_id), task_id),
                limit=book.task_limit(meta.get("name")),
                tenant_id=tenant_id,
            )
            if env is None:
                continue
            rec = stored.get(task_id)
            if rec is not None and rec.terminal and rec.attempt >= (env.attempt or 1):
                stats.already_known += 1
                continue
            envelopes.append(env)
        if envelopes:
            await publish(envelopes)
            stats.published += len(envelopes)
    log.info(
        "reconciled from the result backend examined=%d published=%d already_known=%d",
        stats.examined,
        stats.published,
        stats.already_known,
    )
    return stats


def _is_redis(backend: Any) -> bool:
    return any(cls.__name__ == "RedisBackend" for cls in type(backend).__mro__)


async def _redis_pages(backend: Any) -> AsyncIterator[list[Mapping[str, Any]]]:
    """The task results in a Redis backend, a page at a time."""
    cursor = 0
    while True:
        cursor, metas = await asyncio.to_thread(_redis_page, backend, cursor)
        if metas:
            yield metas
        if cursor == 0:
            return


def _redis_page(backend: Any, cursor: int) -> tuple[int, list[Mapping[str, Any]]]:
    """One SCAN step over the backend's task keys and their values (blocking)."""
    client = backend.client
    prefix = backend.task_keyprefix
    prefix = prefix.decode() if isinstance(prefix, bytes) else prefix
    cursor, keys = client.scan(cursor, match=f"{prefix}*", count=PAGE)
    metas: list[Mapping[str, Any]] = []
    for raw in client.mget(keys) if keys else ():
        if raw is None:  # expired between the scan and the read
            continue
        meta = backend.decode_result(raw)
        if isinstance(meta, Mapping):
            metas.append(meta)
    return int(cursor), metas


async def _store_pages(backend: Any, store: Store) -> AsyncIterator[list[Mapping[str, Any]]]:
    """The backend's results for the tasks the store has as unfinished, a page at a time."""
    after = ""
    while True:
        ids = await _unfinished_ids(store, after)
        if not ids:
            return
        after = ids[-1]
        yield await asyncio.to_thread(_metas_of, backend, ids)


def _metas_of(backend: Any, ids: list[str]) -> list[Mapping[str, Any]]:
    metas: list[Mapping[str, Any]] = []
    for task_id in ids:
        meta = dict(backend.get_task_meta(task_id))
        meta.setdefault("task_id", task_id)
        metas.append(meta)
    return metas


async def _unfinished_ids(store: Store, after: str) -> list[str]:
    t = TaskExecution
    async with store.sessions() as session:
        rows = await session.scalars(
            select(t.task_id)
            .where(
                t.tenant_id == store.tenant_id,
                t.state.not_in([s.value for s in TERMINAL_STATES]),
                t.task_id > after,
            )
            .order_by(t.task_id)
            .limit(PAGE)
        )
        return list(rows)


async def _records(store: Store, ids: list[str]) -> dict[str, TaskRecord]:
    """The store's records of `ids`, by task id."""
    async with store.sessions() as session:
        found = await tasks.load_many(session, {(store.tenant_id, i) for i in ids})
    return {task_id: rec for (_, task_id), rec in found.items()}


def _known_attempt(book: TaskBook, rec: TaskRecord | None, task_id: str) -> int | None:
    """The attempt trackd has for a task, for a backend that does not keep `retries`.

    The later of the receiver's and the store's: a task the store has unfinished in attempt 2
    (its retry's events were missed) ends in attempt 2, where a restarted receiver
    remembers nothing. A backend that keeps `retries` (result_extended) is exact and wins.
    """
    info = book.info(task_id)
    known = [a for a in (info.attempt if info else None, rec.attempt if rec else None) if a]
    return max(known) if known else None
