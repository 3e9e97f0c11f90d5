"""`trackd modules list` and `trackd modules config NAME [--set key=value ...]`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from trackd.bus.urls import from_url, in_process
from trackd.cli.common import BusOpt, DatabaseOpt, fail, load_settings, run
from trackd.modules import service
from trackd.settings import Settings
from trackd.store.engine import create_engine, session_factory
from trackd.store.migrate import upgrade

app = typer.Typer(help="Modules and their configuration.", no_args_is_help=True)

TenantOpt = Annotated[
    str | None,
    typer.Option(help="A tenant's view or override; without it, the global configuration."),
]


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """`key=value` pairs; a value that is JSON (`-8`, `["M","X"]`, `true`) is read as JSON,
    anything else as a string."""
    parsed: dict[str, Any] = {}
    for assignment in assignments:
        key, equals, text = assignment.partition("=")
        if not equals or not key.strip():
            raise fail(f"--set takes key=value, not {assignment!r}")
        try:
            parsed[key.strip()] = json.loads(text)
        except ValueError:
            parsed[key.strip()] = text
    return parsed


async def _list(settings: Settings, tenant: str) -> list[dict[str, Any]]:
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            views = await service.list_modules(session, tenant)
    finally:
        await engine.dispose()
    return [
        {
            "name": v.name,
            "layer": v.layer,
            "version": v.version,
            "is_active": v.config.is_active,
            "config": v.config.config,
        }
        for v in views
    ]


async def _configure(
    settings: Settings, name: str, tenant: str | None, changes: dict[str, Any], active: bool | None
) -> dict[str, Any]:
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            if changes or active is not None:
                async with session.begin():
                    current = await service.read_config(session, tenant or "", name)
                    own = current.config.overrides if tenant else current.config.global_config
                    version = current.config.version if tenant else current.config.global_version
                    row = await service.write_config(
                        session,
                        tenant,
                        name,
                        config={**own, **changes},
                        version=version,
                        is_active=active,
                    )
                # Only a shared bus reaches the processes that cache the config.
                if not in_process(settings.bus_url):
                    bus = from_url(settings.bus_url)
                    try:
                        if not await service.announce_change(
                            bus, row, within=settings.publish_timeout_s
                        ):
                            typer.echo(
                                "warning: the change is stored but was not announced; running "
                                f"processes see it within {settings.module_config_ttl_s:g} s",
                                err=True,
                            )
                    finally:
                        await bus.close()
            view = await service.read_config(session, tenant or "", name)
    finally:
        await engine.dispose()
    effective = view.config
    return {
        "name": view.name,
        "tenant": tenant,
        "is_active": effective.is_active,
        "config": effective.config,
        "version": effective.version if tenant else effective.global_version,
    }


@app.command("list")
def list_modules(
    tenant: TenantOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Every module with its layer, version, active flag and effective configuration (JSON)."""
    settings = load_settings(database_url=database_url)
    typer.echo(json.dumps(run(_list(settings, tenant or "")), indent=2))


@app.command("config")
def config(
    name: Annotated[str, typer.Argument(help="The module, e.g. solar.")],
    assignments: Annotated[
        list[str] | None,
        typer.Option("--set", help="key=value to store (repeatable); values are JSON or text."),
    ] = None,
    active: Annotated[
        bool | None, typer.Option("--active/--inactive", help="Switch the module on or off.")
    ] = None,
    tenant: TenantOpt = None,
    database_url: DatabaseOpt = None,
    bus_url: BusOpt = None,
) -> None:
    """Show a module's configuration, or change it (globally, or for --tenant)."""
    settings = load_settings(database_url=database_url, bus_url=bus_url)
    changes = parse_assignments(assignments or [])
    typer.echo(json.dumps(run(_configure(settings, name, tenant, changes, active)), indent=2))
