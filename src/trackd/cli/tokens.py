"""`trackd token create`."""

from __future__ import annotations

from typing import Annotated

import typer

from trackd.cli.common import DatabaseOpt, fail, load_settings, run
from trackd.domain.access import Role
from trackd.store.engine import create_engine, session_factory
from trackd.store.migrate import upgrade
from trackd.store.repos import tokens

app = typer.Typer(help="API tokens.", no_args_is_help=True)

_ROLES = ", ".join(r.value for r in Role)


async def create_token(database_url: str, tenant: str, user: str | None, role: Role) -> str:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session, session.begin():
            return await tokens.create(session, tenant, user_id=user, role=role)
    finally:
        await engine.dispose()


@app.command("create")
def create(
    tenant: Annotated[str, typer.Option(help="Tenant the token acts for.", min=1)],
    user: Annotated[str | None, typer.Option(help="User within the tenant.")] = None,
    # A plain string, checked below, so that a wrong role is one line on stderr rather than
    # click's usage box.
    role: Annotated[str, typer.Option(help=f"What the token may do: {_ROLES}.")] = Role.SERVICE,
    database_url: DatabaseOpt = None,
) -> None:
    """Create a bearer token; it is printed once, alone on the last line."""
    try:
        chosen = Role(role.strip().lower())
    except ValueError:
        raise fail(f"--role must be one of {_ROLES}, not {role!r}") from None
    if not tenant.strip() or len(tenant) > 100:
        raise fail("--tenant must be 1-100 characters")
    settings = load_settings(database_url=database_url)
    token = run(create_token(settings.database_url, tenant, user, chosen))
    typer.echo(
        f"created a {chosen} token for tenant {tenant}" + (f", user {user}" if user else ""),
        err=True,
    )
    typer.echo(token)
