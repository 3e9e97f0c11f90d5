"""ORM models: one class per table. Every row carries its tenant."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from uuid_utils.compat import uuid7

from trackd.store.types import JSONType, UTCDateTime

# Named constraints keep migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = 100  # length of producer ids (task, plan, trace, event)
NAME = 255


def new_id() -> uuid.UUID:
    """A time-ordered id (UUIDv7): rows inserted together sit together in the index."""
    return uuid7()


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table_of(model: type[Base]) -> Table:
    """The Core table of a model, typed as one (repos write through Core for bulk speed)."""
    return cast(Table, model.__table__)


class _Row:
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(ID))


class TaskExecution(_Row, Base):
    __tablename__ = "task_executions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "task_id"),
        # A plan's tasks in the order they were first seen, without a sort.
        Index(None, "tenant_id", "plan_id", "first_seen_at", "task_id"),
        Index(None, "tenant_id", "trace_id"),
        Index(None, "tenant_id", "state"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress_range"),
    )

    task_id: Mapped[str] = mapped_column(String(ID))
    plan_id: Mapped[str | None] = mapped_column(String(ID))
    event_type: Mapped[str] = mapped_column(String(NAME))
    state: Mapped[str] = mapped_column(String(20))
    progress: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    max_attempts: Mapped[int | None] = mapped_column(Integer)
    head_key: Mapped[str] = mapped_column(String(250))
    message_key: Mapped[str] = mapped_column(String(250), default="")
    parent_key: Mapped[str] = mapped_column(String(250), default="")
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    trace_id: Mapped[str | None] = mapped_column(String(ID))
    parent_event_id: Mapped[str | None] = mapped_column(String(ID))
    agent_id: Mapped[str | None] = mapped_column(String(NAME))
    requester: Mapped[str | None] = mapped_column(String(NAME))
    # The user whose `user` token published the task's first event; NULL when a service,
    # an admin or a bus producer did. Other users' tokens may not publish about the task.
    owner_user_id: Mapped[str | None] = mapped_column(String(ID))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StateTransition(_Row, Base):
    __tablename__ = "state_transitions"
    __table_args__ = (Index(None, "tenant_id", "task_id", "transitioned_at"),)

    task_id: Mapped[str] = mapped_column(String(ID))
    plan_id: Mapped[str | None] = mapped_column(String(ID))
    event_id: Mapped[str] = mapped_column(String(ID))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    attempt: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    transitioned_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TimelineEvent(_Row, Base):
    """Every event trackd folded, as received: the trace tree and the source for replay."""

    __tablename__ = "event_timeline"
    __table_args__ = (
        UniqueConstraint("tenant_id", "event_id"),
        Index(None, "tenant_id", "trace_id", "occurred_at"),
        Index(None, "tenant_id", "plan_id", "occurred_at"),
        Index(None, "tenant_id", "correlation_id"),
        # A task's own events (late plan ids are written back through it).
        Index(None, "tenant_id", "task_id"),
        # Replay pages through a tenant's events in time order.
        Index(None, "tenant_id", "occurred_at", "event_id"),
    )

    event_id: Mapped[str] = mapped_column(String(ID))
    event_type: Mapped[str] = mapped_column(String(NAME))
    topic: Mapped[str | None] = mapped_column(String(ID))
    source: Mapped[str] = mapped_column(String(NAME))
    trace_id: Mapped[str | None] = mapped_column(String(ID))
    parent_event_id: Mapped[str | None] = mapped_column(String(ID))
    correlation_id: Mapped[str | None] = mapped_column(String(ID))
    plan_id: Mapped[str | None] = mapped_column(String(ID))
    task_id: Mapped[str | None] = mapped_column(String(ID))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Plan(_Row, Base):
    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("tenant_id", "plan_id"),)

    plan_id: Mapped[str] = mapped_column(String(ID))
    status: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    current_state: Mapped[str | None] = mapped_column(String(NAME))
    state_key: Mapped[str] = mapped_column(String(250), default="")
    status_key: Mapped[str] = mapped_column(String(250), default="")
    trace_id: Mapped[str | None] = mapped_column(String(ID))
    session_id: Mapped[str | None] = mapped_column(String(ID))
    goal: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)


class PlanTaskCount(_Row, Base):
    """A plan's tasks counted by state, kept by ingest in the transaction that writes the
    tasks (trackd.domain.plan_counts); a plan's status reads this row instead of its tasks.
    A row can exist before its plan's own row does (tasks may name a plan first)."""

    __tablename__ = "plan_task_counts"
    __table_args__ = (UniqueConstraint("tenant_id", "plan_id"),)

    plan_id: Mapped[str] = mapped_column(String(ID))
    pending: Mapped[int] = mapped_column(Integer, default=0)
    running: Mapped[int] = mapped_column(Integer, default=0)
    delegated: Mapped[int] = mapped_column(Integer, default=0)
    waiting: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[int] = mapped_column(Integer, default=0)
    # The earliest first event and the newest event of the plan's tasks.
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_event_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgentMetricBucket(_Row, Base):
    """One agent's tasks that ended within one hour; kept when raw rows are pruned."""

    __tablename__ = "agent_metrics"
    __table_args__ = (
        UniqueConstraint("tenant_id", "agent_id", "period_start"),
        Index(None, "tenant_id", "period_start"),
    )

    agent_id: Mapped[str] = mapped_column(String(NAME))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    total_tasks: Mapped[int] = mapped_column(Integer, default=0)
    completed_tasks: Mapped[int] = mapped_column(Integer, default=0)
    failed_tasks: Mapped[int] = mapped_column(Integer, default=0)
    cancelled_tasks: Mapped[int] = mapped_column(Integer, default=0)
    duration_sum: Mapped[float] = mapped_column(Float, default=0.0)
    duration_count: Mapped[int] = mapped_column(Integer, default=0)
    last_event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # GenAI token usage of those tasks (OpenTelemetry gen_ai.usage.*); sums outgrow 32 bits.
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class AnomalyRow(_Row, Base):
    __tablename__ = "anomalies"
    __table_args__ = (Index(None, "tenant_id", "task_id"),)

    task_id: Mapped[str] = mapped_column(String(ID))
    event_id: Mapped[str] = mapped_column(String(ID))
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    from_state: Mapped[str] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeadLetter(_Row, Base):
    """An event that could not be folded, with the reason; ingestion carried on without it."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index(None, "tenant_id", "received_at"),)

    topic: Mapped[str | None] = mapped_column(String(ID))
    message_id: Mapped[str | None] = mapped_column(String(NAME))
    event_id: Mapped[str | None] = mapped_column(String(NAME))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(_Row, Base):
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("token_hash"),)

    user_id: Mapped[str | None] = mapped_column(String(ID))
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SnapshotRow(_Row, Base):
    """What one fetch saw of one subject; never updated once written (DESIGN §9).

    A history is one (tenant, source, subject, season) key; `seq` numbers its snapshots from 1,
    so "the previous snapshot" is exact, and the unique key makes two pollers recording the
    same subject at once conflict instead of both diffing against the same predecessor.
    `season` is "" for a source without seasons, so that the unique key holds (NULLs are
    distinct in SQL).
    """

    __tablename__ = "snapshots"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source", "subject", "season", "seq"),
        # Age retention sweeps histories that stopped receiving snapshots.
        Index(None, "source", "taken_at"),
    )

    source: Mapped[str] = mapped_column(String(NAME))
    subject: Mapped[str] = mapped_column(String(NAME))
    season: Mapped[str] = mapped_column(String(ID), default="")
    seq: Mapped[int] = mapped_column(Integer)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    meta: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # SHA-256 of the canonical JSON of `data`: an unchanged poll is one string comparison.
    digest: Mapped[str] = mapped_column(String(64))
    # The fields that differ from the previous snapshot (path, old, new); None when it is the
    # first of its history or nothing changed. Kept so "what changed when" needs no re-diffing.
    changes: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)


class NotificationChannel(_Row, Base):
    """Where notifications go: a JSON webhook, a Discord webhook or an apprise URL.

    `url` (and `secret`) are credentials: stored as given because sending needs them, shown
    only masked. `url_digest` finds a channel by URL without comparing or logging the URL.
    """

    __tablename__ = "notification_channels"
    __table_args__ = (
        Index(None, "tenant_id", "owner_user_id"),
        Index(None, "tenant_id", "url_digest"),
    )

    owner_user_id: Mapped[str | None] = mapped_column(String(ID))
    name: Mapped[str] = mapped_column(String(NAME))
    kind: Mapped[str] = mapped_column(String(20))
    url: Mapped[str] = mapped_column(Text)
    url_digest: Mapped[str] = mapped_column(String(64))
    # HMAC-SHA256 key for webhook signatures; None sends unsigned.
    secret: Mapped[str | None] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NotificationSubscription(_Row, Base):
    """A channel's interest in changes of a source and/or subject; "" matches any."""

    __tablename__ = "notification_subscriptions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "channel_id", "source", "subject"),
        Index(None, "tenant_id", "source", "subject"),
    )

    channel_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("notification_channels.id", ondelete="CASCADE")
    )
    source: Mapped[str] = mapped_column(String(NAME), default="")
    subject: Mapped[str] = mapped_column(String(NAME), default="")
    user_id: Mapped[str | None] = mapped_column(String(ID))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxRow(_Row, Base):
    """One message to deliver once: to a channel, or (`kind` "bus") onto trackd's bus.

    Written in the transaction that decided to send it, so it is never lost; delivered with the
    `idempotency_key` (unique per tenant), so a redelivery can be recognised by the receiver.
    A row is due while `status` is "pending" and `next_attempt_at` has passed: claiming it moves
    `next_attempt_at` forward by a lease, so a notifier that dies holding it only delays it.
    """

    __tablename__ = "notification_outbox"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        # The notifier's claim: due rows of every tenant in order.
        Index(None, "status", "next_attempt_at"),
        Index(None, "tenant_id", "created_at"),
        Index(None, "channel_id"),
    )

    channel_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("notification_channels.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(20))
    idempotency_key: Mapped[str] = mapped_column(String(NAME))
    event_type: Mapped[str] = mapped_column(String(NAME))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(NAME))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ScheduleRow(_Row, Base):
    """When to poll a source, and what: one row per schedule (DESIGN §9).

    `next_run_at` is when the next run fires (its nominal time `next_nominal_at` plus jitter
    or a start-up delay); it is NULL once the schedule will not fire again, so the scheduler's
    index holds only live schedules. A name is unique among a tenant's active schedules: one
    that is cancelled or done frees it.
    """

    __tablename__ = "schedules"
    __table_args__ = (
        Index(
            "uq_schedules_tenant_id_name_active",
            "tenant_id",
            "name",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index(None, "next_run_at"),
        Index(None, "tenant_id", "status"),
    )

    name: Mapped[str] = mapped_column(String(NAME))
    source: Mapped[str] = mapped_column(String(NAME))
    targets: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    kind: Mapped[str] = mapped_column(String(10))
    interval_seconds: Mapped[float | None] = mapped_column(Float)
    cron: Mapped[str | None] = mapped_column(String(NAME))
    run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    jitter_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    misfire_grace_seconds: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20), default="active")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_nominal_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_missed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    missed_runs: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    timeout_seconds: Mapped[float | None] = mapped_column(Float)
    owner: Mapped[str | None] = mapped_column(String(ID))
    labels: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PollRow(_Row, Base):
    """One run of a source against one target, tracked as a task (task_id = the poll's id).

    `not_before` is when a worker may take the poll: for a pending or blocked poll the end of
    its backoff, for a running one the end of its worker's lease. It is NULL once the poll has
    finished, so the claim index holds only live polls. A scheduled run makes one poll per
    target (`item`), and the unique key makes a run fire once however many schedulers race.
    """

    __tablename__ = "polls"
    __table_args__ = (
        UniqueConstraint("schedule_id", "scheduled_for", "item"),
        Index(None, "not_before"),
        Index(None, "tenant_id", "status"),
        Index(None, "tenant_id", "created_at"),
    )

    schedule_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("schedules.id", ondelete="SET NULL")
    )
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    item: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(String(NAME))
    target: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    blocks: Mapped[int] = mapped_column(Integer, default=0)
    blocked_host: Mapped[str | None] = mapped_column(String(NAME))
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(NAME))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    timeout_seconds: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # The sequence number of the poll's last task event: events of one poll keep their order
    # whichever worker sends them.
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    requested_by: Mapped[str | None] = mapped_column(String(ID))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TrackerRow(_Row, Base):
    """A player's stats-site profile that a user registered for a league (seed 002).

    Soft-deleted rows keep `deleted_at`; only live rows (deleted_at NULL) must be unique per
    profile, so a deleted tracker's URL can be registered again. Scraping status, attempts and
    errors are read from the tracker's latest poll (the polls whose target names the tracker)
    and its seasons from the snapshots whose subject is the tracker's id: nothing here can be
    left stale by a crash.
    """

    __tablename__ = "trackers"
    __table_args__ = (
        Index(
            "uq_trackers_tenant_id_url_key_live",
            "tenant_id",
            "url_key",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index(None, "tenant_id", "user_id"),
        Index(None, "tenant_id", "guild_id"),
    )

    user_id: Mapped[str] = mapped_column(String(ID))
    guild_id: Mapped[str | None] = mapped_column(String(ID))
    platform: Mapped[str] = mapped_column(String(20))
    player_id: Mapped[str] = mapped_column(String(ID))
    url: Mapped[str] = mapped_column(Text)
    # Platform and casefolded id: what makes two URLs the same profile.
    url_key: Mapped[str] = mapped_column(String(NAME))
    display_name: Mapped[str | None] = mapped_column(String(NAME))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # What the league's bot knows of the user (name, avatar...): kept as it was given.
    user_data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_by: Mapped[str | None] = mapped_column(String(ID))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TrackerGuild(_Row, Base):
    """A league (guild) and its tracker settings: where changes go, how MMR is calculated."""

    __tablename__ = "tracker_guilds"
    __table_args__ = (UniqueConstraint("tenant_id", "guild_id"),)

    guild_id: Mapped[str] = mapped_column(String(ID))
    # The guild's webhook: rank and rating changes of its trackers are sent there.
    webhook_channel_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("notification_channels.id", ondelete="SET NULL")
    )
    mmr_config: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SystemConfiguration(_Row, Base):
    """A module's configuration (seed 001): global when `tenant_id` is NULL, else a tenant's
    override of it. `version` counts writes, for optimistic locking: a write names the version
    it read and is refused when another write came first."""

    __tablename__ = "system_configuration"
    __table_args__ = (
        # Two indexes, not one constraint: NULLs are distinct in a unique constraint, so one
        # over (module, tenant) would let two global rows of a module in.
        Index(
            "uq_system_configuration_module_tenant",
            "module_name",
            "tenant_id",
            unique=True,
            sqlite_where=text("tenant_id IS NOT NULL"),
            postgresql_where=text("tenant_id IS NOT NULL"),
        ),
        Index(
            "uq_system_configuration_module_global",
            "module_name",
            unique=True,
            sqlite_where=text("tenant_id IS NULL"),
            postgresql_where=text("tenant_id IS NULL"),
        ),
    )

    # NULL: the global row every tenant inherits.
    tenant_id: Mapped[str | None] = mapped_column(String(ID), nullable=True)  # type: ignore[assignment]
    module_name: Mapped[str] = mapped_column(String(NAME))
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JournalEntryRow(_Row, Base):
    """One entry of a user's journal: scores, sleep, symptom tags, text and custom metrics at
    a moment (UTC). `entry_id` is the entry's own id, unique per user: sending an entry
    again under it updates the one row instead of adding a second."""

    __tablename__ = "journal_entries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_id", "entry_id"),
        Index(None, "tenant_id", "user_id", "timestamp"),
        CheckConstraint("mood_score >= 1 AND mood_score <= 10", name="mood_range"),
        CheckConstraint("energy_score >= 1 AND energy_score <= 10", name="energy_range"),
        CheckConstraint("sleep_hours >= 0 AND sleep_hours <= 24", name="sleep_range"),
    )

    user_id: Mapped[str] = mapped_column(String(ID))
    entry_id: Mapped[str] = mapped_column(String(ID))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    mood_score: Mapped[int] = mapped_column(Integer)
    energy_score: Mapped[int] = mapped_column(Integer)
    sleep_hours: Mapped[float | None] = mapped_column(Float)
    symptoms: Mapped[list[str]] = mapped_column(JSONType, default=list)
    text: Mapped[str] = mapped_column(Text, default="")
    metrics: Mapped[dict[str, float]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserSettingsRow(_Row, Base):
    """A user's own settings; `timezone` (IANA) decides which day a journal entry is on."""

    __tablename__ = "user_settings"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)

    user_id: Mapped[str] = mapped_column(String(ID))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NatalChartRow(_Row, Base):
    """A user's birth chart: the birth instant and place, and the points computed from them.

    One per user of a tenant. `points` maps "sun" … "pluto", "ascendant", "midheaven" to
    `{longitude, sign, degree, retrograde}`; it is computed once, when the chart is stored.
    `birth_zone` and `birth_local` keep what the user gave when the instant was a local time.
    """

    __tablename__ = "natal_charts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_id"),
        # The daily refresh reads a tenant's charts a range of buckets at a time.
        Index(None, "tenant_id", "bucket"),
    )

    user_id: Mapped[str] = mapped_column(String(ID))
    # crc32(user_id) % 1024: a stable spread of the users over the refresh's shards.
    bucket: Mapped[int] = mapped_column(Integer)
    birth_at: Mapped[datetime] = mapped_column(UTCDateTime)
    birth_zone: Mapped[str | None] = mapped_column(String(ID))
    birth_local: Mapped[str | None] = mapped_column(String(40))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    points: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ObserverRunRow(_Row, Base):
    """One run of the observer's analysis for a user: when, what it tested, what passed.

    `task_id` is the tracked task that ran it (the poll's id) when it ran on demand;
    `status` is running, completed or failed. `options` are the analysis options in force,
    `skipped` the tests not run with their reasons, `summary` the run's one sentence.
    """

    __tablename__ = "observer_runs"
    __table_args__ = (
        Index(None, "tenant_id", "user_id", "started_at"),
        Index(None, "tenant_id", "task_id"),
    )

    user_id: Mapped[str] = mapped_column(String(ID))
    task_id: Mapped[str | None] = mapped_column(String(ID))
    status: Mapped[str] = mapped_column(String(20), default="running")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tests_run: Mapped[int] = mapped_column(Integer, default=0)
    tests_skipped: Mapped[int] = mapped_column(Integer, default=0)
    found: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    skipped: Mapped[list[Any]] = mapped_column(JSONType, default=list)


class ObserverFindingRow(_Row, Base):
    """A pattern the observer found for a user: one outcome x driver x lag, kept across runs.

    `status` is "holding" while the latest run confirms it and "stopped" once a run no longer
    does (the row stays). `details` holds the latest figures (effect, CI, p, q, n days...).
    """

    __tablename__ = "observer_findings"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_id", "outcome", "driver", "lag"),
        Index(None, "tenant_id", "user_id", "status"),
    )

    user_id: Mapped[str] = mapped_column(String(ID))
    outcome: Mapped[str] = mapped_column(String(NAME))
    driver: Mapped[str] = mapped_column(String(NAME))
    lag: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="holding")
    direction: Mapped[str] = mapped_column(String(20))
    effect: Mapped[float] = mapped_column(Float)
    ci_low: Mapped[float] = mapped_column(Float)
    ci_high: Mapped[float] = mapped_column(Float)
    p: Mapped[float] = mapped_column(Float)
    q: Mapped[float] = mapped_column(Float)
    n_days: Mapped[int] = mapped_column(Integer)
    sentence: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_confirmed: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_run_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    last_run_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # How many runs confirmed it (a finding that stopped and came back keeps counting).
    confirmations: Mapped[int] = mapped_column(Integer, default=1)
