"""`record_bulk` on SQLite and PostgreSQL: each snapshot the next of its own history, changes
counted by digest, retention by count and age, tenants apart, malformed batches refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.domain.jsonpolicy import JsonRefused
from trackd.settings import Settings
from trackd.snapshots.service import list_snapshots, record_bulk, record_snapshot
from trackd.sources.base import Snapshot

DAY = datetime(2026, 12, 1, tzinfo=UTC)


def _batch(day: int, users: range, value: int = 0) -> list[Snapshot]:
    return [
        Snapshot(f"u{i}", "transits", {"v": value, "i": i}, DAY + timedelta(days=day))
        for i in users
    ]


async def test_histories_grow_one_entry_per_subject(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    settings = Settings(snapshot_keep=2)
    async with sessions() as session, session.begin():
        # One history already started by the one-at-a-time path.
        await record_snapshot(session, "acme", _batch(0, range(1))[0], settings=settings)
        first = await record_bulk(session, "acme", _batch(1, range(600)), settings=settings)
        await record_bulk(session, "globex", _batch(1, range(3)), settings=settings)
    assert (first.stored, first.changed, first.pruned) == (600, 0, 0)
    async with sessions() as session, session.begin():
        second = await record_bulk(
            session, "acme", _batch(2, range(0, 600, 2), value=1), settings=settings
        )
    # u0 now has 3 entries: keep=2 drops its first; the others have 2.
    assert (second.stored, second.changed, second.pruned) == (300, 300, 1)
    async with sessions() as session:
        u0 = await list_snapshots(session, "acme", "transits", "u0")
        u1 = await list_snapshots(session, "acme", "transits", "u1")
        other = await list_snapshots(session, "globex", "transits", "u0")
    assert [(s.seq, s.data["v"]) for s in u0.items] == [(3, 1), (2, 0)]
    assert [s.seq for s in u1.items] == [1]
    assert [s.seq for s in other.items] == [1]


async def test_malformed_batches_are_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    settings = Settings()
    mixed = [*_batch(0, range(1)), Snapshot("u9", "other", {}, DAY)]
    twice = _batch(0, range(1)) * 2
    naive = [Snapshot("u1", "transits", {}, datetime(2026, 1, 1))]
    async with sessions() as session:
        assert (await record_bulk(session, "acme", [], settings=settings)).stored == 0
        for bad in (mixed, twice, naive):
            with pytest.raises(ValueError):
                await record_bulk(session, "acme", bad, settings=settings)


async def test_shared_readings_are_stored_whole_and_digested_as_one_at_a_time(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    settings = Settings()
    sky = {"sun": {"longitude": 250.1234, "sign": "sagittarius"}, "fields": ["a", "b"]}
    first = [Snapshot(f"u{i}", "transits", {"sky": sky, "own": [i, "é"]}, DAY) for i in range(3)]
    async with sessions() as session, session.begin():
        # One history started one at a time: its digest is the one the bulk path computes.
        await record_snapshot(session, "acme", first[0], settings=settings)
        await record_bulk(session, "acme", first[1:], settings=settings)
    later = [Snapshot(s.subject, "transits", dict(s.data), DAY + timedelta(days=1)) for s in first]
    async with sessions() as session, session.begin():
        again = await record_bulk(session, "acme", later, settings=settings)
    assert (again.stored, again.changed) == (3, 0)
    async with sessions() as session:
        u2 = await list_snapshots(session, "acme", "transits", "u2")
    assert [s.data for s in u2.items] == [{"sky": sky, "own": [2, "é"]}] * 2


@pytest.mark.parametrize(
    "bad", [{"s": "a\x00b"}, {"n": 2**64}, {"s": "\ud800"}], ids=["nul", "wide", "surrogate"]
)
async def test_data_the_store_cannot_read_back_is_refused_with_its_path(
    sessions: async_sessionmaker[AsyncSession], bad: dict[str, Any]
) -> None:
    batch = [*_batch(0, range(2)), Snapshot("u9", "transits", {"own": bad}, DAY)]
    async with sessions() as session:
        with pytest.raises(JsonRefused, match=r"snapshot data\.own\."):
            await record_bulk(session, "acme", batch, settings=Settings())
