"""The module system over HTTP: `/v1/modules` and `/v1/modules/{name}/config`.

Any token of the tenant reads; only an admin token writes its tenant's override. The global
configuration every tenant inherits is written with `trackd modules config NAME --set ...`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from trackd.access.deps import RuntimeDep, SessionDep
from trackd.api.deps import CurrentPrincipal
from trackd.api.errors import ApiError
from trackd.bus.urls import in_process
from trackd.domain.access import Role
from trackd.modules import service
from trackd.modules.config import InvalidModuleConfig
from trackd.modules.service import ModuleView
from trackd.runtime import Runtime
from trackd.store.engine import transaction
from trackd.store.repos.module_config import ConfigRow

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/modules", tags=["modules"])

ModuleName = Annotated[str, Path(min_length=1, max_length=255)]


class ConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any] = Field(
        description="The keys to override for this tenant; the rest come from the global "
        "configuration and the module's defaults. Validated against the module's model."
    )
    version: int = Field(
        ge=0,
        # The column is a 32-bit integer on PostgreSQL.
        le=2**31 - 1,
        description="The `version` last read (0 when the tenant has no override yet).",
    )
    is_active: bool | None = Field(
        default=None, description="Switch the module on or off; omitted keeps what is in force."
    )


def module_json(view: ModuleView, *, schema: bool = False) -> dict[str, Any]:
    effective = view.config
    shown: dict[str, Any] = {
        "name": view.name,
        "layer": view.layer,
        "version": view.version,
        "description": view.description,
        "subscriptions": list(view.subscriptions),
        "is_active": effective.is_active,
        "config": effective.config,
        "config_version": effective.version,
        "config_origin": effective.origin,
        "overrides": effective.overrides,
        "updated_at": effective.updated_at.isoformat() if effective.updated_at else None,
    }
    if schema:
        shown["config_schema"] = view.config_schema
    return shown


@router.get("")
async def list_modules(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """Every module with its layer, version, active flag and effective configuration."""
    views = await service.list_modules(session, principal.tenant_id)
    return {"modules": [module_json(view) for view in views]}


@router.get("/{name}/config")
async def read_config(
    name: ModuleName, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    """A module's effective configuration for the token's tenant, its `config_version` (send
    it back with a change) and the JSON schema a change must satisfy."""
    view = await service.read_config(session, principal.tenant_id, name)
    return module_json(view, schema=True)


@router.put(
    "/{name}/config",
    responses={
        409: {"description": "`version` is stale: another change came first; read it again."},
        422: {"description": "The configuration does not validate; the message names the field."},
    },
)
async def write_config(
    name: ModuleName,
    body: ConfigIn,
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Set the tenant's override of a module's configuration (admin tokens only). Every
    running process uses it from its next read."""
    if principal.role is not Role.ADMIN:
        raise ApiError(403, f"only an admin token may configure modules, not a {principal.role}")
    try:
        async with transaction(session):
            row = await service.write_config(
                session,
                principal.tenant_id,
                name,
                config=body.config,
                version=body.version,
                is_active=body.is_active,
            )
    except InvalidModuleConfig as exc:
        raise ApiError(422, str(exc), code="invalid") from None
    _announce(runtime, row)
    view = await service.read_config(session, principal.tenant_id, name)
    return module_json(view, schema=True)


_announcing: set[asyncio.Task[bool]] = set()


def _announce(runtime: Runtime, row: ConfigRow) -> None:
    """Drop this process's cached copy now and tell the others in the background: the
    answer does not wait for the bus, and a process that misses it re-reads within the TTL."""
    if runtime.module_configs is not None:
        runtime.module_configs.invalidate(row.module, row.tenant_id)
    if in_process(runtime.settings.bus_url):
        # No other process hears the in-process bus, and this one has just dropped its copy.
        return
    task = asyncio.create_task(
        service.announce_change(runtime.bus, row, within=runtime.settings.publish_timeout_s),
        name="trackd-announce-module-config",
    )
    _announcing.add(task)
    task.add_done_callback(_announcing.discard)
