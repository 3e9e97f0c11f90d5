"""Module configuration rows: the global row of a module (tenant NULL) and a tenant's override.

Writes are optimistic: the caller names the version it read (0: no row yet) and a write that
another came before is refused with `Conflict`, so two admins never overwrite each
other's change unseen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.errors import Conflict
from trackd.store.models import SystemConfiguration, new_id, utcnow


@dataclass(frozen=True, slots=True)
class ConfigRow:
    """One stored configuration; `tenant_id` None is the global row."""

    module: str
    tenant_id: str | None
    config: dict[str, Any]
    version: int
    is_active: bool
    updated_at: datetime


def _row(stored: SystemConfiguration) -> ConfigRow:
    return ConfigRow(
        stored.module_name,
        stored.tenant_id,
        dict(stored.config or {}),
        stored.version,
        stored.is_active,
        stored.updated_at,
    )


async def visible(
    session: AsyncSession, tenant_id: str, module: str | None = None
) -> list[ConfigRow]:
    """The global rows and `tenant_id`'s rows (of one module, or of all), globals first."""
    query = select(SystemConfiguration).where(
        or_(SystemConfiguration.tenant_id.is_(None), SystemConfiguration.tenant_id == tenant_id)
    )
    if module is not None:
        query = query.where(SystemConfiguration.module_name == module)
    rows = (await session.scalars(query)).all()
    return sorted((_row(r) for r in rows), key=lambda r: (r.module, r.tenant_id is not None))


async def write(
    session: AsyncSession,
    tenant_id: str | None,
    module: str,
    *,
    config: Mapping[str, Any],
    is_active: bool,
    expected_version: int,
) -> ConfigRow:
    """Store the configuration of `module` for `tenant_id` (None: the global row).

    Args:
        expected_version: the version the caller read; 0 when it saw no row.

    Raises:
        Conflict: the stored version is not `expected_version` (another write came
            first); read it again and reapply the change.
    """
    now = utcnow()
    owner = (
        SystemConfiguration.tenant_id.is_(None)
        if tenant_id is None
        else SystemConfiguration.tenant_id == tenant_id
    )
    if expected_version == 0:
        row = SystemConfiguration(
            id=new_id(),
            tenant_id=tenant_id,
            module_name=module,
            config=dict(config),
            version=1,
            is_active=is_active,
            created_at=now,
            updated_at=now,
        )
        try:
            async with session.begin_nested():
                session.add(row)
        except IntegrityError:
            raise _stale(module, tenant_id, expected_version) from None
        return _row(row)
    result = await session.execute(
        update(SystemConfiguration)
        .where(
            SystemConfiguration.module_name == module,
            owner,
            SystemConfiguration.version == expected_version,
        )
        .values(
            config=dict(config),
            is_active=is_active,
            version=expected_version + 1,
            updated_at=now,
        )
        .returning(SystemConfiguration)
        .execution_options(synchronize_session=False)
    )
    updated = result.scalar_one_or_none()
    if updated is None:
        raise _stale(module, tenant_id, expected_version)
    return _row(updated)


def _stale(module: str, tenant_id: str | None, expected: int) -> Conflict:
    whose = "the global" if tenant_id is None else f"tenant {tenant_id!r}'s"
    return Conflict(
        f"{whose} configuration of module {module!r} is no longer at version {expected}: "
        "another change came first; read it again (GET) and send your change with its version"
    )
