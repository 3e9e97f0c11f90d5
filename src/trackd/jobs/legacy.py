"""The legacy import (`trackd jobs import-legacy`): copy a generic status table into a domain
tracking table.

The seed's migration step: rows of a legacy table such as `task_status` (task_type, status,
created_at, error, task_metadata…) become rows of `{domain}_task_tracking`, statuses mapped
onto trackd's. Each copied row remembers where it came from (`legacy_source`, `legacy_id` in
its metadata), so running the import again copies only what is new. What cannot be imported
as asked (a missing table or column, an unknown status) is a ConfigError saying what to fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Table, func, inspect, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from trackd.domain.jobs import MAX_ATTEMPTS_LIMIT, clip_error
from trackd.domain.states import TaskState, UnknownStateError, parse_state
from trackd.errors import ConfigError
from trackd.jobs.models import DEFAULT_MAX_ATTEMPTS, STANDARD_COLUMNS
from trackd.store.engine import create_engine
from trackd.store.types import JSONType, UTCDateTime

# Where each standard field is looked for in a legacy table, first match wins (--map overrides).
CANDIDATES: Mapping[str, tuple[str, ...]] = {
    "status": ("status", "state"),
    "created_at": ("created_at", "created"),
    "updated_at": ("updated_at", "modified_at", "updated"),
    "started_at": ("started_at",),
    "completed_at": ("completed_at", "finished_at", "ended_at"),
    "error_message": ("error_message", "error"),
    "metadata": ("task_metadata", "metadata", "meta"),
    "job_id": ("celery_task_id", "job_id", "task_id"),
    "attempts": ("attempts", "retries"),
    "max_attempts": ("max_attempts",),
}
_RESERVED_METADATA = ("depends_on", "parent_id")


@dataclass
class Plan:
    """What the import will do, worked out and checked before anything is written."""

    source: Table
    target: Table
    source_id: Column[Any]
    mapping: dict[str, str]  # target column -> source column
    where: list[Any]
    status_map: dict[str, TaskState]
    tenant_id: str


@dataclass(frozen=True)
class Outcome:
    imported: int
    skipped: int
    total: int


def _reflect(conn: Connection, name: str, overrides: Sequence[Column[Any]] = ()) -> Table:
    if not inspect(conn).has_table(name):
        tables = ", ".join(sorted(inspect(conn).get_table_names())) or "none"
        raise ConfigError(f"no table {name!r} in the database (tables: {tables})")
    present = {c["name"] for c in inspect(conn).get_columns(name)}
    # The standard columns get trackd's types (UTC timestamps, JSON on both backends).
    kept = [c for c in overrides if c.name in present]
    return Table(name, MetaData(), *kept, autoload_with=conn)


def _target_overrides() -> list[Column[Any]]:
    stamps = ("created_at", "updated_at", "started_at", "completed_at", "next_attempt_at")
    return [Column(n, UTCDateTime) for n in stamps] + [Column("metadata", JSONType)]


async def _plan(
    conn: AsyncConnection,
    source_name: str,
    target_name: str,
    where: Mapping[str, str],
    maps: Mapping[str, str],
    status_map: Mapping[str, str],
    tenant_id: str,
) -> Plan:
    source = await conn.run_sync(_reflect, source_name)
    target = await conn.run_sync(_reflect, target_name, _target_overrides())
    missing = sorted(STANDARD_COLUMNS - set(target.c.keys()))
    if missing:
        raise ConfigError(
            f"{target_name} is not a tracking table (no {', '.join(missing)}); create it from a "
            "BaseTaskTracking model and migrate first"
        )
    columns = set(source.c.keys())

    def source_column(name: str, option: str) -> str:
        if name not in columns:
            raise ConfigError(
                f"{option}: table {source_name} has no column {name!r} "
                f"(columns: {', '.join(sorted(columns))})"
            )
        return name

    ids = list(source.primary_key.columns)
    if len(ids) != 1:
        raise ConfigError(f"{source_name} needs a one-column primary key to remember its rows by")
    mapping: dict[str, str] = {}
    for target_col, candidates in CANDIDATES.items():
        found = next((c for c in candidates if c in columns), None)
        if found is not None:
            mapping[target_col] = found
    for target_col, source_col in maps.items():
        if target_col not in target.c:
            raise ConfigError(f"--map: {target_name} has no column {target_col!r}")
        if target_col in ("id", "tenant_id"):
            raise ConfigError(f"--map: {target_col} is set by the import, not copied")
        mapping[target_col] = source_column(source_col, "--map")
    if "status" not in mapping:
        raise ConfigError(f"{source_name} has no status column; name it with --map status=COLUMN")
    for column in target.c:
        needed = not column.nullable and column.default is None and column.server_default is None
        if needed and column.name not in STANDARD_COLUMNS and column.name not in mapping:
            raise ConfigError(
                f"{target_name}.{column.name} is required and has no default: copy it from a "
                f"legacy column with --map {column.name}=COLUMN"
            )
    filters = []
    for name, value in where.items():
        col = source.c[source_column(name, "--where")]
        filters.append(col == _typed(col, value))
    parsed: dict[str, TaskState] = {}
    for old, new in status_map.items():
        try:
            parsed[old] = parse_state(new)[0]
        except UnknownStateError as exc:
            raise ConfigError(f"--status-map {old}={new}: {exc}") from None
    return Plan(source, target, ids[0], mapping, filters, parsed, tenant_id)


def _typed(column: Column[Any], value: str) -> Any:
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return value
    if kind is int:
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"--where {column.name}: {value!r} is not a whole number") from None
    return value


def _state(plan: Plan, raw: object) -> tuple[TaskState, bool]:
    word = "" if raw is None else str(raw)
    if word in plan.status_map:
        return plan.status_map[word], False
    return parse_state(word)


async def _check_statuses(conn: AsyncConnection, plan: Plan) -> None:
    """Refuse the import up front if any status has no trackd state."""
    status = plan.source.c[plan.mapping["status"]]
    stmt = select(status, func.count()).where(*plan.where).group_by(status)
    unknown = []
    for value, count in (await conn.execute(stmt)).all():
        try:
            _state(plan, value)
        except UnknownStateError:
            unknown.append(f"{value!r} ({count} rows)")
    if unknown:
        raise ConfigError(
            f"unknown statuses in {plan.source.name}: {', '.join(unknown)}; map them with "
            "--status-map OLD=pending|running|completed|failed|cancelled"
        )


async def _already_imported(conn: AsyncConnection, plan: Plan) -> set[str]:
    meta = plan.target.c.metadata
    stmt = select(meta["legacy_id"].as_string()).where(
        plan.target.c.tenant_id == plan.tenant_id,
        meta["legacy_source"].as_string() == plan.source.name,
    )
    return {str(v) for v in (await conn.execute(stmt)).scalars() if v is not None}


def _aware(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{value!r} is not a timestamp") from None
    if not isinstance(value, datetime):
        raise ConfigError(f"{value!r} is not a timestamp")
    # A legacy table without time zones held UTC (the seed wrote datetime.utcnow()).
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _metadata(raw: object, plan: Plan, legacy_id: str) -> dict[str, Any]:
    if isinstance(raw, str) and raw.strip():
        try:
            raw = json.loads(raw)
        except ValueError:
            pass
    meta: dict[str, Any]
    if isinstance(raw, dict):
        meta = {f"legacy_{k}" if k in _RESERVED_METADATA else str(k): v for k, v in raw.items()}
    else:
        meta = {} if raw is None or raw == "" else {"legacy_metadata": raw}
    meta["legacy_source"] = plan.source.name
    meta["legacy_id"] = legacy_id
    return meta


def _count(raw: object, default: int) -> int:
    if raw is None:
        return default
    try:
        return max(0, int(str(raw)))
    except ValueError:
        raise ConfigError(f"{raw!r} is not a whole number") from None


def convert(plan: Plan, row: Mapping[Any, Any], now: datetime) -> dict[str, Any]:
    """One legacy row as a row of the tracking table."""
    m = plan.mapping

    def get(name: str) -> Any:
        return row[m[name]] if name in m else None

    legacy_id = str(row[plan.source_id.name])
    state, retry = _state(plan, get("status"))
    created = _aware(get("created_at")) or now
    completed = _aware(get("completed_at"))
    updated = _aware(get("updated_at")) or completed or created
    attempts = _count(get("attempts"), 0 if state is TaskState.PENDING else 1)
    if state is not TaskState.PENDING or retry:
        attempts = max(attempts, 1)  # it ran (or, waiting for a retry, ran once at least)
    max_attempts = min(
        MAX_ATTEMPTS_LIMIT, max(_count(get("max_attempts"), DEFAULT_MAX_ATTEMPTS), attempts, 1)
    )
    error = get("error_message")
    job_id = get("job_id")
    out: dict[str, Any] = {
        "tenant_id": plan.tenant_id,
        "status": state.value,
        "created_at": created,
        "updated_at": updated,
        "started_at": _aware(get("started_at")),
        "completed_at": (completed or updated) if state.terminal else None,
        "next_attempt_at": None,
        "error_message": clip_error(None if error is None else str(error)),
        "attempts": attempts,
        "max_attempts": max_attempts,
        "job_id": None if job_id is None else str(job_id)[:255],
        "metadata": _metadata(get("metadata"), plan, legacy_id),
    }
    for target_col, source_col in m.items():
        if target_col not in STANDARD_COLUMNS:
            out[target_col] = row[source_col]
    return out


async def import_rows(
    database_url: str,
    *,
    source: str,
    target: str,
    where: Mapping[str, str],
    maps: Mapping[str, str],
    status_map: Mapping[str, str],
    tenant_id: str,
    dry_run: bool,
    batch_size: int,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Outcome:
    """Copy the rows; everything in one transaction, nothing written on a dry run."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            plan = await _plan(conn, source, target, where, maps, status_map, tenant_id)
            await _check_statuses(conn, plan)
            seen = await _already_imported(conn, plan)
            total = int(
                (
                    await conn.execute(
                        select(func.count()).select_from(plan.source).where(*plan.where)
                    )
                ).scalar_one()
            )
            now = datetime.now(UTC)
            imported = skipped = done = 0
            stmt = select(plan.source).where(*plan.where).order_by(plan.source_id)
            result = await conn.stream(stmt.execution_options(yield_per=batch_size))
            batch: list[dict[str, Any]] = []
            async for part in result.mappings().partitions(batch_size):
                batch.clear()
                for row in part:
                    if str(row[plan.source_id.name]) in seen:
                        skipped += 1
                    else:
                        batch.append(convert(plan, row, now))
                if batch and not dry_run:
                    try:
                        await conn.execute(plan.target.insert(), batch)
                    except DBAPIError as exc:
                        first = batch[0]["metadata"]["legacy_id"]
                        detail = str(exc.orig or exc).strip().splitlines()[0][:300]
                        raise ConfigError(
                            f"the database refused rows {first}… of {source}: {detail}"
                        ) from None
                imported += len(batch)
                done += len(part)
                progress(done, total)
            if dry_run:
                await conn.rollback()
            else:
                await conn.commit()
            return Outcome(imported, skipped, total)
    finally:
        await engine.dispose()
