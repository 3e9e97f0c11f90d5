"""`BaseTaskTrackingCRUD`: the queries over one tracking table, always within one tenant.

    crud = BaseTaskTrackingCRUD(ETFPriceUpdateTracking)          # tenant "default"
    failed = await crud.get_by_status(session, "FAILED", skip=0, limit=50)

Statuses may be given in any vocabulary trackd knows (PROCESSING, SUCCESS, REVOKED…).
Results come oldest first by id, so paging with skip/limit is stable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, exists, func, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.jobs import OPEN_STATES, STALE_STATES, parse_status
from trackd.domain.states import TERMINAL_STATES, TaskState
from trackd.jobs.models import DEFAULT_TENANT, BaseTaskTracking

M = TypeVar("M", bound=BaseTaskTracking)

MAX_PAGE = 1000


class BaseTaskTrackingCRUD(Generic[M]):
    """Reads of a tracking model's rows belonging to `tenant_id`.

    Subclass it to add a domain's own queries; build them on `self.query()` so that they
    stay within the tenant.
    """

    def __init__(self, model: type[M], tenant_id: str = DEFAULT_TENANT) -> None:
        self.model = model
        self.tenant_id = tenant_id

    def query(self) -> Select[M]:
        """A select of this tenant's rows, to refine."""
        return select(self.model).where(self.model.tenant_id == self.tenant_id)

    async def get(self, session: AsyncSession, tracking_id: int, *, lock: bool = False) -> M | None:
        """One row, or None; `lock` holds it (FOR UPDATE) until the transaction ends."""
        stmt = self.query().where(self.model.id == tracking_id)
        if lock:
            stmt = stmt.with_for_update()
        return (await session.execute(stmt)).scalar_one_or_none()

    async def get_many(
        self, session: AsyncSession, ids: Iterable[int], *, lock: bool = False
    ) -> dict[int, M]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        stmt = self.query().where(self.model.id.in_(wanted)).order_by(self.model.id)
        if lock:
            stmt = stmt.with_for_update()
        return {row.id: row for row in (await session.execute(stmt)).scalars()}

    async def get_by_status(
        self,
        session: AsyncSession,
        status: str | TaskState,
        *,
        skip: int = 0,
        limit: int = 100,
    ) -> list[M]:
        """Rows in `status`, oldest first."""
        state, _ = parse_status(status)
        stmt = self.query().where(self.model.status == state.value)
        return await self._page(session, stmt, skip, limit)

    async def get_active_tasks(
        self, session: AsyncSession, *, skip: int = 0, limit: int = 100
    ) -> list[M]:
        """Rows that have not ended: pending, running, waiting or delegated."""
        stmt = self.query().where(self.model.status.in_(_values(OPEN_STATES)))
        return await self._page(session, stmt, skip, limit)

    async def get_page(
        self,
        session: AsyncSession,
        *,
        status: str | TaskState | None = None,
        skip: int = 0,
        limit: int = 100,
    ) -> list[M]:
        """Rows, optionally in one status, oldest first."""
        if status is not None:
            return await self.get_by_status(session, status, skip=skip, limit=limit)
        return await self._page(session, self.query(), skip, limit)

    async def count(self, session: AsyncSession, *, status: str | TaskState | None = None) -> int:
        stmt = (
            select(func.count())
            .select_from(self.model)
            .where(self.model.tenant_id == self.tenant_id)
        )
        if status is not None:
            stmt = stmt.where(self.model.status == parse_status(status)[0].value)
        return int((await session.execute(stmt)).scalar_one())

    async def count_by_status(self, session: AsyncSession) -> dict[str, int]:
        stmt = (
            select(self.model.status, func.count())
            .where(self.model.tenant_id == self.tenant_id)
            .group_by(self.model.status)
        )
        return {status: int(n) for status, n in (await session.execute(stmt)).all()}

    async def get_due(self, session: AsyncSession, now: datetime, *, limit: int = 100) -> list[M]:
        """Pending rows whose retry delay (if any) has passed, oldest first."""
        m = self.model
        stmt = self.query().where(
            m.status == TaskState.PENDING.value,
            (m.next_attempt_at.is_(None)) | (m.next_attempt_at <= now),
        )
        return await self._page(session, stmt, 0, limit)

    async def get_stale(
        self, session: AsyncSession, updated_before: datetime, *, limit: int = 100
    ) -> list[M]:
        """Running rows not updated since `updated_before`, oldest update first."""
        m = self.model
        stmt = (
            self.query()
            .where(m.status.in_(_values(STALE_STATES)), m.updated_at < updated_before)
            .order_by(m.updated_at, m.id)
            .limit(_limit(limit))
        )
        return list((await session.execute(stmt)).scalars())

    async def get_open_after(
        self, session: AsyncSession, after_id: int, *, limit: int = 500
    ) -> list[M]:
        """Rows that have not ended with an id above `after_id`: a keyset page for scans."""
        m = self.model
        stmt = (
            self.query()
            .where(m.status.in_(_values(OPEN_STATES)), m.id > after_id)
            .order_by(m.id)
            .limit(_limit(limit))
        )
        return list((await session.execute(stmt)).scalars())

    async def get_finished_before(
        self, session: AsyncSession, cutoff: datetime, *, after_id: int = 0, limit: int = 500
    ) -> list[M]:
        """Ended rows that ended before `cutoff` (their last update, when the end is unknown),
        with ids above `after_id`."""
        m = self.model
        ended = func.coalesce(m.completed_at, m.updated_at)
        stmt = (
            self.query()
            .where(m.status.in_(_values(TERMINAL_STATES)), ended < cutoff, m.id > after_id)
            .order_by(m.id)
            .limit(_limit(limit))
        )
        return list((await session.execute(stmt)).scalars())

    async def get_newest(
        self,
        session: AsyncSession,
        *,
        status: str | TaskState | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[M]:
        """Rows, optionally in one status, newest first; `before_id` continues after the last
        row of the previous page (a keyset page: rows added meanwhile do not shift it)."""
        stmt = self.query()
        if status is not None:
            stmt = stmt.where(self.model.status == parse_status(status)[0].value)
        if before_id is not None:
            stmt = stmt.where(self.model.id < before_id)
        stmt = stmt.order_by(self.model.id.desc()).limit(_limit(limit))
        return list((await session.execute(stmt)).scalars())

    async def get_dependents(
        self, session: AsyncSession, tracking_id: int, *, limit: int = 100
    ) -> list[M]:
        """Rows that name `tracking_id` among their prerequisites, oldest first."""
        m = self.model
        names: ColumnElement[bool]
        if session.get_bind().dialect.name == "postgresql":
            names = m.task_metadata.op("@>")(type_coerce({"depends_on": [tracking_id]}, JSONB))
        else:
            each = func.json_each(m.task_metadata, "$.depends_on").table_valued("value")
            names = exists(select(1).select_from(each).where(each.c.value == tracking_id))
        # A prerequisite exists when its dependent is made, so dependents have higher ids.
        stmt = self.query().where(m.id > tracking_id, names).order_by(m.id).limit(_limit(limit))
        return list((await session.execute(stmt)).scalars())

    async def _page(
        self, session: AsyncSession, stmt: Select[Any], skip: int, limit: int
    ) -> list[M]:
        if skip < 0:
            raise ValueError(f"skip is not negative, got {skip}")
        stmt = stmt.order_by(self.model.id).offset(skip).limit(_limit(limit))
        return list((await session.execute(stmt)).scalars())


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit is from 1 to {MAX_PAGE}, got {limit}")
    return limit


def _values(states: Iterable[TaskState]) -> Sequence[str]:
    return sorted(s.value for s in states)
