"""The tracking layer's histories: which module owns which history, their retention and
event rules when a poll stores a snapshot, and the hourly schedules that feed them.

Each tracking module declares its `history` (`trackd.modules.base.TrackingHistory`): the key
users know it by (`solar_tracking`), the snapshot source that fills it and its subject (one
shared subject, or the user's id for a personal history). This module maps between the three.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.history import Retention
from trackd.errors import Conflict, NotFound, TrackdError
from trackd.modules import config as configs
from trackd.modules.base import Contribution, SynthesisContext, TrackingConfig, TrackingHistory
from trackd.modules.registry import AnyModule, ModuleRegistry
from trackd.modules.registry import registry as default_registry
from trackd.scheduling.service import active_schedule, create_schedule
from trackd.snapshots.service import HistoryEntries, HistoryPolicy, history_entries
from trackd.sources.base import Snapshot
from trackd.store.repos import channels as channels_repo

SCHEDULE_LABEL = "tracking_module"


class UnknownHistory(NotFound):
    """No tracking module keeps a history under that key; the message lists the keys."""


class ModuleSwitchedOff(Conflict):
    """The module is not active for the tenant: nothing is tracked."""


def tracking_modules(registry: ModuleRegistry = default_registry) -> list[AnyModule]:
    """The modules of the tracking layer that keep a history, by name."""
    return [m for m in registry.all() if m.layer == "tracking" and m.history is not None]


def history_of(module: AnyModule) -> TrackingHistory:
    if module.history is None:
        raise ValueError(f"module {module.name!r} keeps no history")
    return module.history


def by_key(key: str, registry: ModuleRegistry = default_registry) -> AnyModule:
    """The module whose history is `key`.

    Raises:
        UnknownHistory: no such key; the message names the known ones.
    """
    modules = tracking_modules(registry)
    for module in modules:
        if history_of(module).key == key:
            return module
    known = ", ".join(history_of(m).key for m in modules) or "none"
    raise UnknownHistory(f"unknown history {key!r}; known histories: {known}")


def by_source(source: str, registry: ModuleRegistry = default_registry) -> AnyModule | None:
    return next((m for m in tracking_modules(registry) if history_of(m).source == source), None)


def retention(config: TrackingConfig) -> Retention:
    """A tracking config's retention."""
    return Retention(keep=config.history_keep, max_age=timedelta(days=config.history_days))


async def history_policy(
    session: AsyncSession,
    tenant_id: str,
    snapshot: Snapshot,
    registry: ModuleRegistry = default_registry,
) -> HistoryPolicy | None:
    """The policy of the history `snapshot` joins: its module's retention, and its module's
    event rules while the module is active for the tenant (None: not a tracking history)."""
    module = by_source(snapshot.source, registry)
    if module is None:
        return None
    history = history_of(module)
    if history.subject is not None and snapshot.subject != history.subject:
        return None
    effective = await configs.load(session, registry, tenant_id, module.name)
    config = module.parse_config(effective.config)

    def judge(previous: dict[str, Any], current: dict[str, Any]) -> list[dict[str, Any]]:
        return module.judge(previous, current, config)

    kept = retention(config) if isinstance(config, TrackingConfig) else None
    return HistoryPolicy(kept, judge if effective.is_active else None)


@dataclass(frozen=True, slots=True)
class ScheduledModule:
    module: str
    schedule_id: str
    created: bool


async def ensure_schedules(
    session: AsyncSession,
    tenant_id: str,
    *,
    now: datetime | None = None,
    registry: ModuleRegistry = default_registry,
) -> list[ScheduledModule]:
    """An active schedule polling each active, self-polling tracking module's source for
    `tenant_id` (every `poll_every` seconds, first run at once), created unless one exists.
    Idempotent; the caller commits."""
    done = []
    for module in tracking_modules(registry):
        if module.poll_every is None:
            continue
        effective = await configs.load(session, registry, tenant_id, module.name)
        if not effective.is_active:
            continue
        existing = await active_schedule(session, tenant_id, labels={SCHEDULE_LABEL: module.name})
        if existing is not None:
            done.append(ScheduledModule(module.name, str(existing.id), False))
            continue
        row = await create_schedule(
            session,
            tenant_id,
            name=f"tracking-{module.name}",
            source=history_of(module).source,
            target=module.poll_target(module.parse_config(effective.config)),
            interval_seconds=module.poll_every,
            labels={SCHEDULE_LABEL: module.name},
            now=now,
        )
        done.append(ScheduledModule(module.name, str(row.id), True))
    return done


async def read_module(
    session: AsyncSession,
    tenant_id: str,
    user: str | None,
    name: str,
    now: datetime,
    registry: ModuleRegistry = default_registry,
) -> Contribution:
    """What tracking module `name` knows now for `user` of `tenant_id`.

    Raises:
        UnknownModule: no such module.
        ModuleSwitchedOff: the module is not active for the tenant.
    """
    module = registry.get(name)
    effective = await configs.load(session, registry, tenant_id, name)
    if not effective.is_active:
        raise ModuleSwitchedOff(
            f"the {name} module is switched off for your tenant; an admin switches it on "
            f"with PUT /v1/modules/{name}/config"
        )
    context = SynthesisContext(session, module.parse_config(effective.config), now)
    return await module.contribute_to_synthesis(tenant_id, user, context)


async def read_history(
    session: AsyncSession,
    tenant_id: str,
    key: str,
    user: str | None,
    *,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    after: tuple[datetime, Any] | None,
    registry: ModuleRegistry = default_registry,
) -> HistoryEntries:
    """One page of history `key` (for `user` when it is personal), newest first.

    Raises:
        UnknownHistory: no tracking module keeps that key.
        ValueError: a personal history asked for without a user; a bad limit.
    """
    history = history_of(by_key(key, registry))
    return await history_entries(
        session,
        tenant_id,
        history.source,
        history.subject_for(user),
        since=since,
        until=until,
        limit=limit,
        after=after,
    )


def reading_view(contribution: Contribution) -> dict[str, Any]:
    """A tracking module's reading as the routes and the CLI print it: `as_of` and `stale`
    first (no `as_of`: nothing known yet, which is stale)."""
    data = contribution.data
    as_of = contribution.metadata.as_of
    return {
        "module": contribution.module,
        "as_of": as_of.isoformat() if as_of else None,
        "stale": bool(data.get("stale", as_of is None)),
        "data": data,
        "insights": contribution.insights,
        "confidence": contribution.metadata.confidence,
    }


def readings_view(contributions: list[Contribution]) -> dict[str, Any]:
    """Every tracking module's reading by name; `as_of` the oldest known, `stale` if any is."""
    readings = [reading_view(c) for c in contributions]
    known = [r["as_of"] for r in readings if r["as_of"]]
    return {
        "as_of": min(known) if known else None,
        "stale": any(r["stale"] for r in readings),
        "modules": {r["module"]: r for r in readings},
    }


class NotYourChannel(TrackdError):
    """The channel is another user's, or the tenant's shared one."""


async def follow(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    name: str,
    channel_id: uuid.UUID,
    *,
    on: bool,
    registry: ModuleRegistry = default_registry,
) -> bool:
    """Send tracking module `name`'s events to the user's own channel (`on`), or stop; the
    caller commits. Returns whether anything changed.

    Raises:
        UnknownModule / UnknownHistory: no such tracking module.
        NotFound: the tenant has no such channel.
        NotYourChannel: the channel is not the user's.
    """
    module = registry.get(name)
    if module.layer != "tracking" or module.history is None:
        raise UnknownHistory(f"{name!r} is not a tracking module with a history")
    channel = await channels_repo.get_channel(session, tenant_id, channel_id)
    if channel is None:
        raise NotFound(f"no notification channel {channel_id}")
    if channel.owner_user_id != user_id:
        raise NotYourChannel(f"notification channel {channel_id} is not yours")
    history = module.history
    where = {"source": history.source, "subject": history.subject_for(user_id)}
    if not on:
        return await channels_repo.unsubscribe(session, tenant_id, channel_id, **where)
    before = await channels_repo.subscriptions(session, tenant_id, channel_id)
    await channels_repo.subscribe(session, tenant_id, channel_id, user_id=user_id, **where)
    return not any((s.source, s.subject) == (where["source"], where["subject"]) for s in before)
