"""`trackd natal set|show|delete`: a user's birth chart, for operators (straight to the store).

`trackd natal transits` shows the user's current transits as the API answers them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.cli.common import DatabaseOpt, fail, load_settings, run
from trackd.modules import natal, transits
from trackd.settings import Settings
from trackd.store.engine import create_engine, session_factory
from trackd.store.migrate import upgrade

app = typer.Typer(help="Users' natal charts and their transits.", no_args_is_help=True)

T = TypeVar("T")

TenantOpt = Annotated[str, typer.Option(help="The user's tenant.")]
UserOpt = Annotated[str, typer.Option(help="The user id.")]


async def _with_session(
    settings: Settings, work: Callable[[AsyncSession], Awaitable[T]], *, write: bool = False
) -> T:
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            if not write:
                return await work(session)
            async with session.begin():
                return await work(session)
    finally:
        await engine.dispose()


def _echo(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))


@app.command("set")
def set_chart(
    tenant: TenantOpt,
    user: UserOpt,
    birth: Annotated[
        str,
        typer.Option(
            help="Birth instant: '1990-05-01T10:00:00Z', or local '1990-05-01T12:00:00' with "
            "--timezone."
        ),
    ],
    latitude: Annotated[float, typer.Option(help="Degrees north (south negative).")],
    longitude: Annotated[float, typer.Option(help="Degrees east (west negative).")],
    timezone: Annotated[
        str | None, typer.Option(help="IANA zone of a local birth time, e.g. Europe/Paris.")
    ] = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Store a user's chart (replacing theirs) and print it; schedules the daily refresh."""
    try:
        when = datetime.fromisoformat(birth.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"--birth must be an ISO 8601 date and time, got {birth!r}") from None
    settings = load_settings(database_url=database_url)

    async def work(session: AsyncSession) -> dict[str, Any]:
        chart = await natal.set_chart(
            session,
            tenant,
            user,
            birth=when,
            timezone=timezone,
            latitude=latitude,
            longitude=longitude,
        )
        config = await transits.config_of(session, tenant)
        await transits.ensure_refresh_schedule(session, tenant, config)
        return natal.chart_view(chart)

    _echo(run(_with_session(settings, work, write=True)))


@app.command("show")
def show(tenant: TenantOpt, user: UserOpt, database_url: DatabaseOpt = None) -> None:
    """Print a user's chart (JSON)."""
    settings = load_settings(database_url=database_url)
    chart = run(_with_session(settings, lambda s: natal.get_chart(s, tenant, user)))
    if chart is None:
        raise fail(f"user {user!r} has no natal chart in tenant {tenant!r}; use `trackd natal set`")
    _echo(natal.chart_view(chart))


@app.command("delete")
def delete(tenant: TenantOpt, user: UserOpt, database_url: DatabaseOpt = None) -> None:
    """Delete a user's chart."""
    settings = load_settings(database_url=database_url)
    if not run(_with_session(settings, lambda s: natal.delete_chart(s, tenant, user), write=True)):
        raise fail(f"user {user!r} has no natal chart in tenant {tenant!r}")
    typer.echo(f"deleted the natal chart of {user!r} in {tenant!r}")


@app.command("transits")
def show_transits(tenant: TenantOpt, user: UserOpt, database_url: DatabaseOpt = None) -> None:
    """Print a user's current transits (the latest daily reading, or computed now)."""
    settings = load_settings(database_url=database_url)
    _echo(run(_with_session(settings, lambda s: transits.transits_of(s, tenant, user))))
