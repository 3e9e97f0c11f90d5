"""A small application's tracking tables for the trackd.jobs tests, and a clock to steer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Date, Integer, Numeric, String
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from trackd.jobs.models import BaseTaskTracking, task_tracking_aggregates


class AppBase(DeclarativeBase):
    """The application's own declarative base: its tables are not trackd's."""


class ReportTracking(BaseTaskTracking, AppBase):
    __domain__ = "report"

    title: Mapped[str] = mapped_column(String(100))
    pages: Mapped[int | None] = mapped_column(Integer)


class InvoiceTracking(BaseTaskTracking, AppBase):
    __tablename__ = "invoice_task_tracking"

    customer: Mapped[str] = mapped_column(String(40))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    due: Mapped[date | None] = mapped_column(Date)


AGGREGATES = task_tracking_aggregates(AppBase.metadata)


class OtherBase(DeclarativeBase):
    """An application that forgot the aggregates table."""


class LonelyTracking(BaseTaskTracking, OtherBase):
    __domain__ = "lonely"

    note: Mapped[str] = mapped_column(String(10))


async def create_app_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(AppBase.metadata.create_all)


@dataclass
class Clock:
    """The service's time, moved by hand."""

    now: datetime = field(default_factory=lambda: datetime(2026, 3, 2, 8, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 0, *, days: float = 0) -> datetime:
        self.now += timedelta(seconds=seconds, days=days)
        return self.now


class ClashingTracking(BaseTaskTracking, OtherBase):
    """A domain column named like a field of the task API."""

    __domain__ = "clashing"

    blocked_by: Mapped[str] = mapped_column(String(10))
