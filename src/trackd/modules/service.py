"""The module system's entry for routers and commands: list modules, read and write their
configuration, and gather their contributions to a user's synthesis.

The caller owns the transaction: it commits a write, then calls `announce_change` so every
process drops its cached copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.bus.base import Bus
from trackd.modules import config as configs
from trackd.modules.base import Contribution, SynthesisContext
from trackd.modules.config import EffectiveConfig, InvalidModuleConfig
from trackd.modules.registry import AnyModule, ModuleRegistry
from trackd.modules.registry import registry as default_registry
from trackd.store.repos import module_config as repo
from trackd.store.repos.module_config import ConfigRow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModuleView:
    """A module as listed: who it is and what it runs with for the tenant."""

    name: str
    layer: str
    version: str
    description: str
    subscriptions: tuple[str, ...]
    config: EffectiveConfig
    config_schema: dict[str, Any]


def _view(module: AnyModule, config: EffectiveConfig) -> ModuleView:
    return ModuleView(
        module.name,
        module.layer,
        module.version,
        module.description,
        module.subscriptions,
        config,
        module.config_model.model_json_schema(),
    )


def _of(rows: list[ConfigRow], module: AnyModule) -> list[ConfigRow]:
    return [row for row in rows if row.module == module.name]


async def list_modules(
    session: AsyncSession, tenant_id: str, registry: ModuleRegistry = default_registry
) -> list[ModuleView]:
    """Every module with its effective configuration for `tenant_id`, by name."""
    rows = await repo.visible(session, tenant_id)
    return [
        _view(
            module, configs.merge(module, [r for r in rows if r.module == module.name], tenant_id)
        )
        for module in registry.all()
    ]


async def read_config(
    session: AsyncSession,
    tenant_id: str,
    name: str,
    registry: ModuleRegistry = default_registry,
) -> ModuleView:
    """One module with its effective configuration for `tenant_id`.

    Raises:
        UnknownModule: no module has that name (its message lists those there are).
    """
    module = registry.get(name)
    return _view(module, await configs.load(session, registry, tenant_id, name))


async def write_config(
    session: AsyncSession,
    tenant_id: str | None,
    name: str,
    *,
    config: dict[str, Any],
    version: int,
    is_active: bool | None = None,
    registry: ModuleRegistry = default_registry,
) -> ConfigRow:
    """Store `config` as `tenant_id`'s override of module `name` (None: the global row).

    `config` holds the keys to set (the rest come from the global row and the defaults);
    the whole effective result is validated before anything is stored. `is_active` None
    keeps what is in force.

    Raises:
        UnknownModule: no such module.
        InvalidModuleConfig: the result does not validate; the message names each field.
        Conflict: `version` is not the stored row's (0: no row): another write came first.
    """
    module = registry.get(name)
    rows = await repo.visible(session, tenant_id or "", name)
    global_row = next((r for r in rows if r.tenant_id is None), None)
    own = global_row if tenant_id is None else next((r for r in rows if r.tenant_id), None)
    base = {} if tenant_id is None or global_row is None else global_row.config
    try:
        module.parse_config({**base, **config})
    except ValidationError as exc:
        raise InvalidModuleConfig(name, exc) from None
    if is_active is None:
        inherited = own or global_row
        is_active = inherited.is_active if inherited else True
    return await repo.write(
        session, tenant_id, name, config=config, is_active=is_active, expected_version=version
    )


async def announce_change(bus: Bus, row: ConfigRow, *, within: float) -> bool:
    """After a write is committed, tell every process (this one too) to drop its cached copy;
    False when the bus did not take the message `within` seconds (the processes then see the
    change within their cache's TTL)."""
    return await configs.announce(bus, row, within=within)


async def synthesis(
    session: AsyncSession,
    tenant_id: str,
    user_id: str | None,
    now: datetime,
    registry: ModuleRegistry = default_registry,
    *,
    layer: str | None = None,
) -> list[Contribution]:
    """The contributions of every module active for `tenant_id` (of one `layer`, or all),
    by module name."""
    rows = await repo.visible(session, tenant_id)
    contributions = []
    for module in registry.all():
        if layer is not None and module.layer != layer:
            continue
        effective = configs.merge(module, _of(rows, module), tenant_id)
        if not effective.is_active:
            continue
        context = SynthesisContext(session, module.parse_config(effective.config), now)
        contributions.append(await module.contribute_to_synthesis(tenant_id, user_id, context))
    return contributions
