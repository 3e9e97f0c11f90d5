"""The application's tables: its own data, its two tracking tables, and trackd's aggregates."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Integer, MetaData, Numeric, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from trackd.jobs.models import BaseTaskTracking, task_tracking_aggregates

# Named constraints, so that migrations read the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Etf(Base):
    __tablename__ = "etfs"

    id: Mapped[str] = mapped_column(String(12), primary_key=True)  # the ticker
    name: Mapped[str] = mapped_column(String(200))


class PensionEtf(Base):
    """A pension plan's holding of one ETF, which contributions buy into."""

    __tablename__ = "pension_etfs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    etf_id: Mapped[str] = mapped_column(ForeignKey("etfs.id"))
    owner: Mapped[str] = mapped_column(String(100))
    units: Mapped[Decimal] = mapped_column(Numeric(20, 6), default=Decimal(0))


class EtfPrice(Base):
    __tablename__ = "etf_prices"

    etf_id: Mapped[str] = mapped_column(ForeignKey("etfs.id"), primary_key=True)
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    price: Mapped[Decimal] = mapped_column(Numeric(20, 6))
    source: Mapped[str] = mapped_column(String(50))


class ETFPriceUpdateTracking(BaseTaskTracking, Base):
    """One price update of one ETF for one day (table etf_price_update_task_tracking)."""

    __domain__ = "etf_price_update"

    etf_id: Mapped[str] = mapped_column(ForeignKey("etfs.id"))
    date: Mapped[date] = mapped_column(Date)
    price: Mapped[Decimal | None] = mapped_column(Numeric(20, 6))
    source: Mapped[str | None] = mapped_column(String(50))


class ContributionRealizationTracking(BaseTaskTracking, Base):
    """One contribution to a pension plan, realized as ETF units (contribution_task_tracking)."""

    __domain__ = "contribution"

    pension_id: Mapped[int] = mapped_column(ForeignKey("pension_etfs.id"))
    contribution_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Numeric(20, 2))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    units: Mapped[Decimal | None] = mapped_column(Numeric(20, 6))


aggregates = task_tracking_aggregates(Base.metadata)
