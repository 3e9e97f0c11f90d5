"""`trackd notify`: notification channels, subscriptions, a test send, and the outbox.

Channel URLs are credentials: they are only ever printed masked. A webhook's signing secret
is read from an environment variable (`--secret-env`), never from the command line, where it
would stay in shell history and be visible in the process list.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from trackd.cli.common import DatabaseOpt, fail, load_settings, run
from trackd.domain.channels import parse_kind
from trackd.notify.channels import (
    ChannelConfig,
    Delivery,
    DeliveryError,
    default_senders,
)
from trackd.notify.render import TEST_EVENT
from trackd.notify.service import check_destination
from trackd.outbound.http import AddressGuard, outbound_client
from trackd.settings import Settings
from trackd.store.engine import create_engine, session_factory
from trackd.store.migrate import upgrade
from trackd.store.repos import channels as channels_repo
from trackd.store.repos import outbox as outbox_repo
from trackd.store.repos.channels import ChannelView

app = typer.Typer(help="Notification channels and the outbox.", no_args_is_help=True)

T = TypeVar("T")
TenantOpt = Annotated[str, typer.Option(help="The tenant the channel belongs to.")]


def _channel_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise fail(
            f"{text!r} is not a channel id (a UUID, as `trackd notify channels` shows)"
        ) from None


async def _with_session(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


def _show(view: ChannelView) -> str:
    signed = ", signed" if view.signed else ""
    state = "" if view.enabled else ", disabled"
    owner = f", owner {view.owner_user_id}" if view.owner_user_id else ""
    return f"{view.id}  {view.kind}  {view.name!r}  {view.url}{signed}{owner}{state}"


@app.command("add-channel")
def add_channel(
    tenant: TenantOpt,
    kind: Annotated[str, typer.Option(help="webhook, discord or apprise.")],
    url: Annotated[str, typer.Option(help="Where to send (stored, shown masked).")],
    name: Annotated[str | None, typer.Option(help="A label.")] = None,
    owner: Annotated[str | None, typer.Option(help="The user it belongs to.")] = None,
    secret_env: Annotated[
        str | None,
        typer.Option(help="Webhooks: the environment variable holding the signing secret."),
    ] = None,
    field: Annotated[
        list[str] | None, typer.Option(help="Notify only when this field path changes.")
    ] = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Add a channel; its id is printed alone on the last line."""
    secret = None
    if secret_env:
        secret = os.environ.get(secret_env)
        if not secret:
            raise fail(f"--secret-env {secret_env}: that environment variable is not set")
    options = {"fields": field} if field else None
    settings = load_settings(database_url=database_url)

    async def work(session: Any) -> ChannelView:
        guard = AddressGuard(allow_private=settings.allow_private_fetch)
        await check_destination(parse_kind(kind), url, guard)
        row = await channels_repo.create_channel(
            session,
            tenant,
            kind=kind,
            url=url,
            name=name,
            owner_user_id=owner,
            secret=secret,
            options=options,
        )
        return ChannelView.of(row)

    view = run(_with_session(settings, work))
    typer.echo(f"added {_show(view)}", err=True)
    typer.echo(str(view.id))


@app.command("channels")
def list_channels(
    tenant: TenantOpt,
    owner: Annotated[str | None, typer.Option(help="Only this user's channels.")] = None,
    database_url: DatabaseOpt = None,
) -> None:
    """List a tenant's channels and what each is subscribed to (URLs masked)."""
    settings = load_settings(database_url=database_url)

    async def work(session: Any) -> list[tuple[ChannelView, list[str]]]:
        shown = []
        for row in await channels_repo.list_channels(session, tenant, owner_user_id=owner):
            subs = await channels_repo.subscriptions(session, tenant, row.id)
            shown.append(
                (
                    ChannelView.of(row),
                    [f"{s.source or '*'}/{s.subject or '*'}" for s in subs],
                )
            )
        return shown

    for view, subscriptions in run(_with_session(settings, work)):
        typer.echo(_show(view))
        typer.echo(f"    subscribed to: {', '.join(subscriptions) or 'nothing yet'}")


@app.command("subscribe")
def subscribe(
    channel: Annotated[str, typer.Argument(help="The channel id.")],
    tenant: TenantOpt,
    source: Annotated[str | None, typer.Option(help="Only changes of this source.")] = None,
    subject: Annotated[str | None, typer.Option(help="Only changes of this subject.")] = None,
    user: Annotated[str | None, typer.Option(help="Who subscribes.")] = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Send changes of a source and/or subject (default: all) to a channel."""
    channel_id = _channel_id(channel)
    settings = load_settings(database_url=database_url)

    async def work(session: Any) -> None:
        await channels_repo.subscribe(
            session, tenant, channel_id, source=source, subject=subject, user_id=user
        )

    run(_with_session(settings, work))
    typer.echo(f"channel {channel_id} gets changes of {source or '*'}/{subject or '*'}")


@app.command("test-channel")
def test_channel(
    channel: Annotated[str, typer.Argument(help="The channel id.")],
    tenant: TenantOpt,
    message: Annotated[str, typer.Option(help="The text to send.")] = "This channel works.",
    database_url: DatabaseOpt = None,
) -> None:
    """Send a test message to a channel now (not through the outbox) and say how it went."""
    channel_id = _channel_id(channel)
    settings = load_settings(database_url=database_url)

    async def load(session: Any) -> ChannelConfig:
        return ChannelConfig.of(await channels_repo.require_channel(session, tenant, channel_id))

    async def send() -> None:
        config = await _with_session(settings, load)
        guard = AddressGuard(allow_private=settings.allow_private_fetch)
        delivery = Delivery(f"test:{uuid.uuid4()}", TEST_EVENT, {"message": message})
        async with outbound_client(settings, guard=guard) as client:
            await default_senders()[config.kind].send(config, delivery, client, guard)

    try:
        run(send())
    except DeliveryError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"sent a test message to channel {channel_id}")


@app.command("outbox")
def outbox(
    tenant: TenantOpt,
    database_url: DatabaseOpt = None,
) -> None:
    """How many of a tenant's notifications are pending, sent and dead; the latest dead ones."""
    settings = load_settings(database_url=database_url)

    async def work(session: Any) -> tuple[dict[str, int], list[Any]]:
        counts = await outbox_repo.counts(session, tenant)
        dead = await outbox_repo.recent(session, tenant, status=outbox_repo.DEAD, limit=10)
        return counts, dead

    counts, dead = run(_with_session(settings, work))
    typer.echo("  ".join(f"{s}={counts.get(s, 0)}" for s in outbox_repo.STATUSES))
    for row in dead:
        typer.echo(f"dead {row.idempotency_key} after {row.attempts} tries: {row.last_error}")
