"""Natal chart rows: one per user of a tenant; every query names the tenant."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.store.models import NatalChartRow, new_id, table_of, utcnow
from trackd.store.upsert import upsert

BUCKETS = 1024


def bucket_of(user_id: str) -> int:
    """The user's bucket: a stable spread of the users over the daily refresh's shards."""
    return zlib.crc32(user_id.encode()) % BUCKETS


@dataclass(frozen=True, slots=True)
class StoredChart:
    tenant_id: str
    user_id: str
    birth_at: datetime
    birth_zone: str | None
    birth_local: str | None
    latitude: float
    longitude: float
    points: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: NatalChartRow) -> StoredChart:
        return cls(
            row.tenant_id,
            row.user_id,
            row.birth_at,
            row.birth_zone,
            row.birth_local,
            row.latitude,
            row.longitude,
            dict(row.points),
            row.created_at,
            row.updated_at,
        )


async def put(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    *,
    birth_at: datetime,
    birth_zone: str | None,
    birth_local: str | None,
    latitude: float,
    longitude: float,
    points: dict[str, Any],
) -> StoredChart:
    """Store the user's chart, replacing the one they had."""
    now = utcnow()
    values = {
        "birth_at": birth_at,
        "birth_zone": birth_zone,
        "birth_local": birth_local,
        "latitude": latitude,
        "longitude": longitude,
        "points": points,
        "updated_at": now,
    }
    statement = upsert(session, table_of(NatalChartRow), ["tenant_id", "user_id"], replace=values)
    await session.execute(
        statement,
        {
            "id": new_id(),
            "tenant_id": tenant_id,
            "user_id": user_id,
            "bucket": bucket_of(user_id),
            "created_at": now,
            **values,
        },
    )
    stored = await get(session, tenant_id, user_id)
    if stored is None:  # pragma: no cover - the upsert above wrote it in this transaction
        raise RuntimeError("the chart just stored cannot be read back")
    return stored


async def get(session: AsyncSession, tenant_id: str, user_id: str) -> StoredChart | None:
    row = await session.scalar(
        select(NatalChartRow).where(
            NatalChartRow.tenant_id == tenant_id, NatalChartRow.user_id == user_id
        )
    )
    return StoredChart.of(row) if row is not None else None


async def remove(session: AsyncSession, tenant_id: str, user_id: str) -> bool:
    """Delete the user's chart; False when there was none."""
    result = await session.execute(
        delete(NatalChartRow).where(
            NatalChartRow.tenant_id == tenant_id, NatalChartRow.user_id == user_id
        )
    )
    return bool(getattr(result, "rowcount", 0))


async def points_in_buckets(
    session: AsyncSession, tenant_id: str, buckets: range
) -> Sequence[tuple[str, dict[str, Any]]]:
    """(user id, points) of the tenant's charts whose bucket is in `buckets`, by user id."""
    rows = await session.execute(
        select(NatalChartRow.user_id, NatalChartRow.points)
        .where(
            NatalChartRow.tenant_id == tenant_id,
            NatalChartRow.bucket >= buckets.start,
            NatalChartRow.bucket < buckets.stop,
        )
        .order_by(NatalChartRow.user_id)
    )
    return [(user, dict(points)) for user, points in rows.all()]


async def count(session: AsyncSession, tenant_id: str) -> int:
    total = await session.scalar(
        select(func.count()).select_from(NatalChartRow).where(NatalChartRow.tenant_id == tenant_id)
    )
    return int(total or 0)


async def tenants(session: AsyncSession) -> list[str]:
    """The tenants with at least one chart."""
    return list(await session.scalars(select(NatalChartRow.tenant_id).distinct()))
