"""`BaseTaskTracking`: the mixin for an application's `{domain}_task_tracking` tables.

    class Base(DeclarativeBase): ...

    class ETFPriceUpdateTracking(BaseTaskTracking, Base):
        __domain__ = "etf_price_update"          # table etf_price_update_task_tracking
        etf_id: Mapped[str] = mapped_column(String(12))

    task_tracking_aggregates(Base.metadata)      # the daily aggregates retention keeps

The tables live in the application's database and its metadata, so the application's own
Alembic autogenerate creates them, with the indexes every tracking table needs; trackd's own
migrations never touch them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, synonym

from trackd.domain.jobs import JobFacts
from trackd.domain.states import TaskState
from trackd.store.types import JSONType, UTCDateTime

DEFAULT_TENANT = "default"
DEFAULT_MAX_ATTEMPTS = 3
AGGREGATES_TABLE = "trackd_task_tracking_daily"
TABLE_SUFFIX = "_task_tracking"
# PostgreSQL cuts names at 63 bytes; the longest index name is idx_{domain}_task_job_id.
DOMAIN_MAX = 40
_DOMAIN = re.compile(r"^[a-z][a-z0-9_]*$")
# SQLite only auto-increments an INTEGER PRIMARY KEY; elsewhere ids get 64 bits.
_ID = BigInteger().with_variant(Integer(), "sqlite")
# The standard columns come before a domain's own in CREATE TABLE.
_FIRST = -1


def utcnow() -> datetime:
    return datetime.now(UTC)


def check_domain(domain: str) -> str:
    """`domain` if it can name a table, an index and a URL path segment; else ValueError."""
    if not _DOMAIN.match(domain) or len(domain) > DOMAIN_MAX:
        raise ValueError(
            f"a tracking domain is 1 to {DOMAIN_MAX} characters of a-z, 0-9 and _, starting "
            f"with a letter (e.g. 'etf_price_update'), not {domain!r}"
        )
    return domain


class BaseTaskTracking:
    """The standard fields and indexes of a task tracking table; mix into a declarative model.

    Set `__domain__` (the table becomes `{domain}_task_tracking`) or `__tablename__` (the
    domain is the table name without `_task_tracking`). Extra constraints and indexes of a
    domain go in `__domain_args__`, a tuple appended to the standard ones.

    Every timestamp is timezone-aware UTC. `status` holds trackd's states (pending, running,
    waiting, delegated, completed, failed, cancelled); `attempts` counts the attempts made.
    `job_id` is the runner's id (e.g. the Celery task id). `task_metadata` (column
    `metadata`) is free JSON; trackd keeps the dependencies there under `depends_on` and
    `parent_id`. `tenant_id` keeps tenants apart when the table serves several; a
    single-tenant application leaves it at "default".
    """

    __domain__: ClassVar[str]
    __table__: ClassVar[Table]  # set by the declarative base of the application
    __domain_args__: ClassVar[tuple[Any, ...]] = ()

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True, sort_order=_FIRST)
    tenant_id: Mapped[str] = mapped_column(String(100), default=DEFAULT_TENANT, sort_order=_FIRST)
    status: Mapped[str] = mapped_column(
        String(20), default=TaskState.PENDING.value, sort_order=_FIRST
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, sort_order=_FIRST)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, sort_order=_FIRST)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, sort_order=_FIRST)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, sort_order=_FIRST)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, sort_order=_FIRST)
    error_message: Mapped[str | None] = mapped_column(Text, sort_order=_FIRST)
    attempts: Mapped[int] = mapped_column(Integer, default=0, sort_order=_FIRST)
    max_attempts: Mapped[int] = mapped_column(
        Integer, default=DEFAULT_MAX_ATTEMPTS, sort_order=_FIRST
    )
    job_id: Mapped[str | None] = mapped_column(String(255), sort_order=_FIRST)
    # `metadata` is the declarative base's own attribute, so the column has another name here.
    task_metadata: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONType, default=dict, sort_order=_FIRST
    )

    @declared_attr
    def celery_task_id(cls) -> Mapped[str | None]:
        """The seed's name for `job_id`, kept so code written against it reads the same."""
        return synonym("job_id")

    @declared_attr.directive
    def __tablename__(cls) -> str:
        domain = getattr(cls, "__domain__", None)
        if not domain:
            raise TypeError(
                f"{cast('type[Any]', cls).__name__}: set __domain__ "
                "(e.g. 'etf_price_update') or __tablename__"
            )
        return check_domain(domain) + TABLE_SUFFIX

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        domain = tracking_domain(cast("type[Any]", cls))
        return (
            Index(f"idx_{domain}_task_status", "status"),
            Index(f"idx_{domain}_task_dates", "created_at", "completed_at"),
            Index(f"idx_{domain}_task_job_id", "job_id"),
            *cls.__domain_args__,
            # Ids are never reused, even after retention deletes the newest rows: trackd
            # knows each task by its id for good.
            {"sqlite_autoincrement": True},
        )

    @classmethod
    def tracking_domain(cls) -> str:
        """The domain this table tracks: `__domain__`, or the table name less the suffix."""
        return tracking_domain(cls)

    def facts(self) -> JobFacts:
        """The row as the status flow sees it."""
        return JobFacts(
            status=TaskState(self.status),
            attempts=self.attempts,
            max_attempts=self.max_attempts,
            updated_at=self.updated_at,
            started_at=self.started_at,
            completed_at=self.completed_at,
            error_message=self.error_message,
            next_attempt_at=self.next_attempt_at,
        )

    def apply(self, facts: JobFacts) -> None:
        """Write what the status flow decided back onto the row."""
        self.status = facts.status.value
        self.attempts = facts.attempts
        self.max_attempts = facts.max_attempts
        self.updated_at = facts.updated_at
        self.started_at = facts.started_at
        self.completed_at = facts.completed_at
        self.error_message = facts.error_message
        self.next_attempt_at = facts.next_attempt_at

    @property
    def depends_on(self) -> list[int]:
        """Ids of the prerequisites: tasks of the same domain that must complete first."""
        raw = (self.task_metadata or {}).get("depends_on") or []
        return [int(x) for x in raw if isinstance(x, int) and not isinstance(x, bool)]

    @property
    def parent_id(self) -> int | None:
        raw = (self.task_metadata or {}).get("parent_id")
        return raw if isinstance(raw, int) and not isinstance(raw, bool) else None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id={self.id} status={self.status}>"


def tracking_domain(cls: type[Any]) -> str:
    """The domain of a tracking model class."""
    domain = getattr(cls, "__domain__", None)
    if domain:
        return check_domain(domain)
    table = cls.__tablename__
    name: str = table[: -len(TABLE_SUFFIX)] if table.endswith(TABLE_SUFFIX) else table
    return check_domain(name)


STANDARD_COLUMNS = frozenset(
    {
        "id",
        "tenant_id",
        "status",
        "created_at",
        "updated_at",
        "started_at",
        "completed_at",
        "next_attempt_at",
        "error_message",
        "attempts",
        "max_attempts",
        "job_id",
        "metadata",
    }
)


def task_tracking_aggregates(metadata: MetaData) -> Table:
    """The per-day aggregates of finished tasks, in the application's `metadata`.

    Retention deletes old finished rows and adds them here first, so counts, attempts and
    durations per tenant, domain, day (of completion, UTC) and final status outlive them.
    Calling it again on the same metadata returns the same table.
    """
    existing = metadata.tables.get(AGGREGATES_TABLE)
    if existing is not None:
        return existing
    return Table(
        AGGREGATES_TABLE,
        metadata,
        Column("tenant_id", String(100), primary_key=True),
        Column("domain", String(DOMAIN_MAX), primary_key=True),
        Column("day", Date, primary_key=True),
        Column("status", String(20), primary_key=True),
        Column("task_count", BigInteger, nullable=False, default=0),
        Column("attempts_total", BigInteger, nullable=False, default=0),
        Column("duration_count", BigInteger, nullable=False, default=0),
        Column("duration_seconds_total", Float, nullable=False, default=0.0),
        Column("duration_seconds_max", Float, nullable=False, default=0.0),
    )
