"""`trackd tracking show|schedule|backfill`: the cosmic tracking modules from the command line."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.cli.common import DatabaseOpt, fail, load_settings, progress_bar, run
from trackd.modules import transits
from trackd.modules.service import synthesis
from trackd.modules.solar_backfill import BackfillResult, backfill_solar
from trackd.modules.tracking import (
    ensure_schedules,
    history_of,
    read_module,
    reading_view,
    readings_view,
    tracking_modules,
)
from trackd.outbound.http import outbound_client
from trackd.settings import Settings
from trackd.sources.base import SourceError
from trackd.sources.gfz_kp import GfzKpSource
from trackd.sources.registry import registry as source_registry
from trackd.store.engine import create_engine, session_factory
from trackd.store.migrate import upgrade

app = typer.Typer(help="Cosmic tracking: space weather, the Moon, transits.", no_args_is_help=True)

TenantOpt = Annotated[str, typer.Option(help="The tenant whose tracking to use.")]
T = TypeVar("T")


async def _with_store(
    settings: Settings, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]
) -> T:
    # Schedules check their targets against the sources, built from the settings.
    source_registry.configure(settings)
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        return await work(session_factory(engine))
    finally:
        await engine.dispose()


@app.command("show")
def show(
    module: Annotated[str, typer.Argument(help="solar, lunar, transits (with --user), or all.")],
    tenant: TenantOpt = "default",
    user: Annotated[
        str | None, typer.Option(help="The user, for a personal module (transits) or all.")
    ] = None,
    database_url: DatabaseOpt = None,
) -> None:
    """A tracking module's reading now, as JSON (`as_of` and `stale` first); `all`: every
    active tracking module's, by name, as `GET /v1/tracking/all` answers."""
    settings = load_settings(database_url=database_url)
    modules = {m.name: m for m in tracking_modules()}
    if module != "all" and module not in modules:
        raise fail(f"unknown tracking module {module!r}; known: {', '.join(modules)}, all")
    if module in modules and history_of(modules[module]).per_user and not user:
        raise fail(f"{module} is kept per user: add --user USER")

    async def read(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
        now = datetime.now(UTC)
        async with sessions() as session:
            if module == "all":
                found = await synthesis(session, tenant, user, now, layer="tracking")
                return readings_view(found)
            if module == transits.SOURCE and user:
                await transits.transits_of(session, tenant, user, now)  # NoChart: says what to do
            return reading_view(await read_module(session, tenant, user, module, now))

    typer.echo(json.dumps(run(_with_store(settings, read)), indent=2, ensure_ascii=False))


@app.command("schedule")
def schedule(tenant: TenantOpt = "default", database_url: DatabaseOpt = None) -> None:
    """Create the hourly polls of the tenant's active tracking modules (solar: NOAA SWPC;
    lunar: computed locally), unless they exist. Safe to run again."""
    settings = load_settings(database_url=database_url)

    async def ensure(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
        async with sessions() as session, session.begin():
            done = await ensure_schedules(session, tenant)
        return [
            f"{s.module}: schedule {s.schedule_id} {'created' if s.created else 'already there'}"
            for s in done
        ]

    lines = run(_with_store(settings, ensure))
    typer.echo("\n".join(lines) if lines else "no active tracking module polls on a schedule")


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"{option} is a date, YYYY-MM-DD, not {text!r}") from None


@app.command("backfill")
def backfill(
    module: Annotated[str, typer.Argument(help="solar (the only module with a past to fetch).")],
    since: Annotated[str, typer.Option(help="First day, YYYY-MM-DD (UTC).")],
    until: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD; default today.")] = None,
    tenant: TenantOpt = "default",
    gfz_url: Annotated[
        str | None, typer.Option(help="GFZ Kp API base URL; default TRACKD_GFZ_KP_URL.")
    ] = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Fill the solar history with GFZ Potsdam's 3-hourly Kp from --since; a re-run stores
    only what is missing."""
    if module != "solar":
        raise fail(f"only solar has a past to backfill, not {module!r}; lunar is computed")
    overrides: dict[str, Any] = {"database_url": database_url}
    if gfz_url:
        overrides["gfz_kp_url"] = gfz_url
    settings = load_settings(**overrides)
    first = _day(since, "--since")
    last = _day(until, "--until") if until else datetime.now(UTC).date()

    with progress_bar() as bar:
        task = bar.add_task(f"GFZ Kp {first} → {last}", total=None)

        async def fill(sessions: async_sessionmaker[AsyncSession]) -> BackfillResult:
            async with outbound_client(settings) as client:
                return await backfill_solar(
                    sessions,
                    tenant,
                    GfzKpSource.from_settings(settings),
                    client,
                    since=first,
                    until=last,
                    settings=settings,
                    progress=lambda done, total, _: bar.update(task, completed=done, total=total),
                )

        try:
            result = run(_with_store(settings, fill))
        except SourceError as exc:
            raise fail(f"GFZ failed: {exc}; what was stored stays, run again to go on") from None
    typer.echo(
        f"solar history of {tenant}: {result.stored} Kp readings stored, "
        f"{result.already_there} already there"
    )
