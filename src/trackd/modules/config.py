"""A module's effective configuration, and the per-process cache that follows its changes.

Effective config = the module's defaults, overridden by the global row, overridden by the
tenant's row (key by key), validated by the module's model. Each process caches it per
(tenant, module); a change is announced on the bus (`module.config_changed` on topic
`module-config`) and every process's `ConfigListener` drops what it cached, so the next read
sees the change. A process that missed the message (the bus was down) re-reads after `ttl`
seconds anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.bus.base import Bus
from trackd.errors import TrackdError
from trackd.modules.base import ConfigT, Module
from trackd.modules.registry import AnyModule, ModuleRegistry
from trackd.store.repos import module_config as repo
from trackd.store.repos.module_config import ConfigRow

log = logging.getLogger(__name__)

TOPIC: Final = "module-config"
CHANGED: Final = "module.config_changed"

Origin = Literal["default", "global", "tenant"]


class InvalidModuleConfig(TrackdError):
    """A configuration does not validate against its module's model."""

    def __init__(self, module: str, error: ValidationError) -> None:
        self.problems = [
            (".".join(str(p) for p in e["loc"]) or "config", e["msg"]) for e in error.errors()
        ]
        described = "; ".join(f"config.{where}: {what}" for where, what in self.problems)
        super().__init__(f"invalid configuration for module {module!r}: {described}")


@dataclass(frozen=True, slots=True)
class EffectiveConfig:
    """What a module runs with for one tenant, and where each part came from.

    Attributes:
        config: the full configuration, validated (defaults filled in).
        overrides: the tenant's own row's keys ({} without one).
        version: the tenant row's version, 0 without one: what a write must name.
        origin: the most specific row in force.
    """

    module: str
    tenant_id: str
    config: dict[str, Any]
    overrides: dict[str, Any]
    global_config: dict[str, Any]
    version: int
    global_version: int
    is_active: bool
    origin: Origin
    updated_at: datetime | None


def merge(module: AnyModule, rows: list[ConfigRow], tenant_id: str) -> EffectiveConfig:
    """The effective configuration from a module's visible rows (`repo.visible`).

    A stored configuration that no longer validates (a module changed its model) is not
    lost: it stays in the database, is logged, and the module runs on what still validates.
    """
    global_row = next((r for r in rows if r.tenant_id is None), None)
    tenant_row = next((r for r in rows if r.tenant_id == tenant_id), None)
    layers = [r for r in (global_row, tenant_row) if r is not None]
    config = module.default_config()
    for keep in range(len(layers), -1, -1):
        merged: dict[str, Any] = {}
        for row in layers[:keep]:
            merged.update(row.config)
        try:
            config = module.parse_config(merged)
            break
        except ValidationError as exc:
            log.error(
                "stored config no longer validates module=%s tenant=%s: %s",
                module.name,
                tenant_id,
                InvalidModuleConfig(module.name, exc),
            )
    newest = tenant_row or global_row
    origin: Origin = "tenant" if tenant_row else "global" if global_row else "default"
    return EffectiveConfig(
        module=module.name,
        tenant_id=tenant_id,
        config=config.model_dump(mode="json"),
        overrides=dict(tenant_row.config) if tenant_row else {},
        global_config=dict(global_row.config) if global_row else {},
        version=tenant_row.version if tenant_row else 0,
        global_version=global_row.version if global_row else 0,
        is_active=newest.is_active if newest else True,
        origin=origin,
        updated_at=newest.updated_at if newest else None,
    )


async def load(
    session: AsyncSession, registry: ModuleRegistry, tenant_id: str, name: str
) -> EffectiveConfig:
    """Read the effective configuration of module `name` for `tenant_id` from the store.

    Raises:
        UnknownModule: no module has that name.
    """
    module = registry.get(name)
    return merge(module, await repo.visible(session, tenant_id, name), tenant_id)


def encode_change(module: str, tenant_id: str | None, version: int) -> bytes:
    """The body of a `module.config_changed` message (`tenant_id` None: the global row)."""
    return json.dumps(
        {"type": CHANGED, "module": module, "tenant_id": tenant_id, "version": version}
    ).encode()


def decode_change(body: bytes) -> tuple[str, str | None] | None:
    """(module, tenant) a change message names, or None for a body that is not one."""
    try:
        message = json.loads(body)
        if message.get("type") != CHANGED or not isinstance(message.get("module"), str):
            return None
        tenant = message.get("tenant_id")
        return message["module"], tenant if isinstance(tenant, str) else None
    except (ValueError, AttributeError):
        return None


class ModuleConfigCache:
    """Effective configurations of one process, each kept at most `ttl` seconds."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        registry: ModuleRegistry,
        *,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._registry = registry
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[float, EffectiveConfig]] = {}

    async def get(self, tenant_id: str, name: str) -> EffectiveConfig:
        key = (tenant_id, name)
        entry = self._entries.get(key)
        if entry is not None and self._clock() < entry[0]:
            return entry[1]
        async with self._sessions() as session:
            loaded = await load(session, self._registry, tenant_id, name)
        self._entries[key] = (self._clock() + self._ttl, loaded)
        return loaded

    async def config(self, tenant_id: str, module: Module[ConfigT]) -> ConfigT:
        """The typed configuration `module` runs with for `tenant_id`."""
        return module.parse_config((await self.get(tenant_id, module.name)).config)

    def invalidate(self, module: str, tenant_id: str | None = None) -> None:
        """Forget `module`'s config for `tenant_id`, or for every tenant (None: the global
        row changed, which every tenant inherits)."""
        for key in [k for k in self._entries if k[1] == module]:
            if tenant_id is None or key[0] == tenant_id:
                del self._entries[key]


class ConfigListener:
    """Drops a process's cached configs when any process announces a change.

    Each process listens in a consumer group of its own (`trackd-module-config-<consumer>`),
    so every process hears every change.
    """

    def __init__(self, bus: Bus, cache: ModuleConfigCache, consumer: str) -> None:
        self._bus = bus
        self._cache = cache
        self._group = f"trackd-module-config-{consumer}"
        self._consumer = consumer
        self._stopping = asyncio.Event()
        self.ready = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The TTL keeps configs fresh meanwhile; listening again is enough.
                log.exception("module config listener failed; listening again in 1 s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 1.0)

    async def _listen(self) -> None:
        subscription = await self._bus.subscribe([TOPIC], self._group, self._consumer)
        self.ready.set()
        try:
            while not self._stopping.is_set():
                messages = await subscription.fetch(100, 0.2)
                for message in messages:
                    change = decode_change(message.body)
                    if change is not None:
                        log.info("module config changed module=%s tenant=%s", *change)
                        self._cache.invalidate(*change)
                if messages:
                    await subscription.ack(messages)
        finally:
            await subscription.close()


async def announce(bus: Bus, row: ConfigRow, *, within: float) -> bool:
    """Tell every process that `row` changed; False when the bus did not take it in time
    (the processes then see the change within their cache's TTL)."""
    try:
        await asyncio.wait_for(
            bus.publish(TOPIC, [encode_change(row.module, row.tenant_id, row.version)], [None]),
            within,
        )
    except Exception as exc:
        log.warning("could not announce module config change module=%s: %s", row.module, exc)
        return False
    return True
