"""`trackd observer ...`: a user's analysis run here and now, their findings, and the
tenant's nightly runs.

`analyze` runs the analysis in this process (the workers run the same code for the API's
runs and the nightly ones) and prints the run's summary and its findings' sentences.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from trackd.cli.common import DatabaseOpt, fail, load_settings, progress_bar, run
from trackd.modules import journal, observer_runs
from trackd.store.engine import create_engine, session_factory
from trackd.store.migrate import upgrade
from trackd.store.repos import observer as observer_repo

app = typer.Typer(help="The observer: a user's journal against what trackd tracked.")

UserOpt = Annotated[str, typer.Option("--user", help="Whose journal.")]
TenantOpt = Annotated[str, typer.Option("--tenant", help="The user's tenant.")]


def _check(user: str, tenant: str) -> None:
    if not user.strip() or not tenant.strip():
        raise fail("--user and --tenant must not be empty")


async def _analyze(database_url: str, tenant: str, user: str) -> dict[str, Any]:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        async with sessions() as session:
            if not await observer_repo.has_journal(session, tenant, user):
                raise fail(f"user {user!r} has no journal in tenant {tenant!r}: import one first")
            config = await journal.observer_config(session, tenant)
        with progress_bar(remaining=False) as bar:
            bar.add_task(f"analysing {user}'s journal", total=None)
            run_id = await observer_runs.run_for_user(
                sessions, tenant, user, config, now=datetime.now(UTC)
            )
        async with sessions() as session:
            row = await observer_runs.run(session, tenant, run_id)
            shown = observer_runs.run_view(row)
            shown["findings"] = await observer_runs.findings(
                session, tenant, user, history=False, min_q=None
            )
        return shown
    finally:
        await engine.dispose()


def _print_findings(found: list[dict[str, Any]]) -> None:
    for f in found:
        mark = "" if f["status"] == "holding" else f" [stopped {f['stopped_at'][:10]}]"
        also = "".join(f"; also {a['driver']} lag {a['lag']} q = {a['q']:.3g}" for a in f["also"])
        typer.echo(
            f"- {f['sentence']} (q = {f['q']:.3g}; first seen {f['first_seen'][:10]}, "
            f"confirmed {f['confirmations']}x{also}){mark}"
        )


@app.command("analyze")
def analyze(user: UserOpt, tenant: TenantOpt, database_url: DatabaseOpt = None) -> None:
    """Run the user's analysis now and print what it found (or that nothing passed)."""
    _check(user, tenant)
    settings = load_settings(database_url=database_url)
    shown = run(_analyze(settings.database_url, tenant, user))
    typer.echo(f"run {shown['id']} for {user} of {tenant}: {shown['summary']}")
    if shown["found"] == 0:
        typer.echo(shown["nothing_passed"])
    _print_findings([f for f in shown["findings"] if f["status"] == "holding"])


async def _findings(
    database_url: str, tenant: str, user: str, history: bool
) -> list[dict[str, Any]]:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            return await observer_runs.findings(session, tenant, user, history=history, min_q=None)
    finally:
        await engine.dispose()


@app.command("findings")
def findings(
    user: UserOpt,
    tenant: TenantOpt,
    history: Annotated[
        bool, typer.Option("--history", help="Also the findings that stopped holding.")
    ] = False,
    database_url: DatabaseOpt = None,
) -> None:
    """Print the user's findings, newest confirmed first."""
    _check(user, tenant)
    settings = load_settings(database_url=database_url)
    found = run(_findings(settings.database_url, tenant, user, history))
    if not found:
        typer.echo(f"no findings for {user} of {tenant}")
        return
    _print_findings(found)


async def _nightly(database_url: str, tenant: str) -> bool:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session, session.begin():
            return await observer_runs.ensure_nightly_schedule(session, tenant)
    finally:
        await engine.dispose()


@app.command("nightly")
def nightly(tenant: TenantOpt, database_url: DatabaseOpt = None) -> None:
    """Give the tenant its nightly runs (every user with a journal, 03:30 UTC)."""
    if not tenant.strip():
        raise fail("--tenant must not be empty")
    settings = load_settings(database_url=database_url)
    created = run(_nightly(settings.database_url, tenant))
    typer.echo(
        f"nightly observer runs {'scheduled' if created else 'already scheduled'} for {tenant}"
    )


__all__ = ["app"]
