"""Bulk statements for both backends: INSERT ... ON CONFLICT (SQLite and PostgreSQL speak the
same clause) and keyed loads."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, case, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert


def _insert(session: AsyncSession, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def insert_ignore(session: AsyncSession, table: Table, keys: Sequence[str]) -> Insert:
    """An insert that skips rows whose `keys` already exist."""
    stmt: Insert = _insert(session, table).on_conflict_do_nothing(index_elements=list(keys))
    return stmt


def upsert(
    session: AsyncSession,
    table: Table,
    keys: Sequence[str],
    *,
    replace: Iterable[str] = (),
    add: Iterable[str] = (),
    newest: Iterable[str] = (),
    oldest: Iterable[str] = (),
) -> Insert:
    """An insert that, on a key conflict, overwrites `replace` columns, adds to `add` ones,
    keeps the larger value of `newest` ones and the smaller value of `oldest` ones."""
    stmt = _insert(session, table)
    excluded = stmt.excluded
    values: dict[str, Any] = {c: excluded[c] for c in replace}
    values.update({c: table.c[c] + excluded[c] for c in add})
    values.update(
        {c: case((excluded[c] > table.c[c], excluded[c]), else_=table.c[c]) for c in newest}
    )
    values.update(
        {c: case((excluded[c] < table.c[c], excluded[c]), else_=table.c[c]) for c in oldest}
    )
    result: Insert = stmt.on_conflict_do_update(index_elements=list(keys), set_=values)
    return result


def chunked(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    """Slices small enough for one statement's bound parameters."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def rows_by_keys(
    session: AsyncSession,
    columns: Sequence[Any],
    table: Table,
    key: str,
    keys: Iterable[tuple[str, str]],
) -> list[Any]:
    """Rows whose (tenant_id, `key`) is among `keys`, one IN query per tenant and chunk."""
    by_tenant: dict[str, set[str]] = defaultdict(set)
    for tenant, value in keys:
        by_tenant[tenant].add(value)
    rows: list[Any] = []
    for tenant, values in by_tenant.items():
        for part in chunked(sorted(values)):
            result = await session.execute(
                select(*columns).where(table.c.tenant_id == tenant, table.c[key].in_(part))
            )
            rows.extend(result)
    return rows
