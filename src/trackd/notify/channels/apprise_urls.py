"""apprise URLs: one channel kind for the many services apprise speaks to (Telegram, Slack,
ntfy, email, ...). Needs the optional dependency: pip install 'trackd[apprise]'.

apprise makes its own connections, not through trackd's guarded client, so the URL's host
is checked with the same rule before apprise is called: a host that resolves must resolve to
public addresses only. (A host part that is not a DNS name — many apprise URLs put a token
there and talk to the service's fixed public host — is left to apprise.) The check and
apprise's own lookup are two lookups, so DNS rebinding is not excluded here as it is for
webhooks; deployments that need that should use webhook or discord channels.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from types import ModuleType
from urllib.parse import urlsplit

import httpx

from trackd.errors import ConfigError
from trackd.notify import render
from trackd.notify.channels.base import ChannelConfig, Delivery, DeliveryError
from trackd.sources.http import AddressGuard, RefusedAddress

log = logging.getLogger(__name__)

INSTALL_HINT = "apprise channels need the apprise package: pip install 'trackd[apprise]'"
SEND_TIMEOUT_S = 30.0


def load_apprise() -> ModuleType:
    """The apprise module. Raises ConfigError naming the extra to install."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # see `send`
            import apprise
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return apprise


async def check_host(url: str, guard: AddressGuard) -> None:
    """Refuse an apprise URL whose host resolves to a private address."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return  # not URL-shaped enough to have a host; apprise will judge it
    if not host:
        return
    try:
        await guard.addresses(host, port or 443)
    except httpx.ConnectError:
        return  # not a resolvable host name: a token for a fixed service host


class AppriseSender:
    kind = "apprise"

    async def send(
        self,
        channel: ChannelConfig,
        delivery: Delivery,
        client: httpx.AsyncClient,
        guard: AddressGuard,
    ) -> None:
        what = f"apprise {channel.name!r}"
        try:
            apprise = load_apprise()
        except ConfigError as exc:
            raise DeliveryError(f"{what}: {exc}", permanent=True) from None
        try:
            await check_host(channel.url, guard)
        except RefusedAddress as exc:
            raise DeliveryError(
                f"{what}: refused {exc.address} ({exc.reason}); "
                "set TRACKD_ALLOW_PRIVATE_FETCH=true to allow private addresses",
                permanent=True,
            ) from None
        notifier = apprise.Apprise()
        with warnings.catch_warnings():
            # apprise loads its plugins on first use, some importing modules Python
            # deprecates (imghdr): their warnings must not stop a notification.
            warnings.simplefilter("ignore", DeprecationWarning)
            added = notifier.add(channel.url)
        if not added:
            raise DeliveryError(f"{what}: apprise does not recognise this URL", permanent=True)
        title = render.title(delivery.event_type, delivery.payload)
        body = render.plain_text(delivery.event_type, delivery.payload)
        # apprise blocks while it sends; a thread keeps the notifier's loop responsive.
        try:
            delivered = await asyncio.wait_for(
                asyncio.to_thread(notifier.notify, body=body, title=title), SEND_TIMEOUT_S
            )
        except TimeoutError:
            raise DeliveryError(f"{what}: no answer in time") from None
        if not delivered:
            raise DeliveryError(f"{what}: apprise could not deliver (its log says why)")
