"""apprise URLs: one channel kind for the many services apprise speaks to (Telegram, Slack,
ntfy, email, ...). Needs the optional dependency: pip install 'trackd[apprise]'.

apprise makes its own connections, not through trackd's guarded client, so the host it will
connect to is checked with the same rule before apprise is called. That host is read by
apprise's own parser (`connect_hosts`), so a URL trackd and apprise would read differently
(a `+` before the port, say) cannot slip past: a URL apprise does not recognise, or whose
host cannot be told, is refused (fail closed). A plugin whose URL holds a token where the host
would be (Telegram, Discord, ntfy's cloud) talks to its service's fixed public host. The check
and apprise's own lookup are two lookups, so DNS rebinding is not excluded here as it is for
webhooks; deployments that need that should use webhook or discord channels.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from types import ModuleType
from typing import Final

import httpx

from trackd.domain.channels import InvalidChannel
from trackd.errors import ConfigError
from trackd.notify import render
from trackd.notify.channels.base import (
    ChannelConfig,
    Delivery,
    DeliveryError,
    refused,
    unresolved,
)
from trackd.outbound.http import AddressGuard, RefusedAddress

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


# Class attributes of apprise plugins that hold the fixed address of their service.
_FIXED_SERVICE_URLS: Final = ("notify_url", "cloud_notify_url")


def connect_hosts(url: str) -> list[tuple[str, int]]:
    """The hosts (and ports) apprise will connect to for `url`, as apprise reads it; empty
    when its plugin talks only to its service's fixed host.

    Raises:
        InvalidChannel: apprise is missing, does not recognise the URL, or which host it
            would connect to cannot be told.
    """
    try:
        apprise = load_apprise()
    except ConfigError as exc:
        raise InvalidChannel(str(exc)) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # see `send`
            plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    except Exception:
        # A plugin's own parser failing means a URL apprise cannot use: refused, not a crash.
        plugin = None
    if plugin is None:
        raise InvalidChannel("apprise does not recognise this URL (see apprise's docs)")
    hosts: list[tuple[str, int]] = []
    port = plugin.port if isinstance(plugin.port, int) else 443
    if "host" in getattr(plugin, "template_tokens", {}):
        # The URL's host is where this plugin connects (a self-hosted service)...
        if isinstance(plugin.host, str) and plugin.host:
            hosts.append((plugin.host, port))
        elif not any(_is_http_url(getattr(plugin, a, None)) for a in _FIXED_SERVICE_URLS):
            # ...unless it is left out for the service's own public host.
            raise InvalidChannel("the apprise URL names no host apprise could connect to")
    # E-mail's SMTP server may be named apart from the address (?smtp=...).
    smtp_host = getattr(plugin, "smtp_host", None)
    if isinstance(smtp_host, str) and smtp_host:
        hosts.append((smtp_host, port))
    return hosts


def _is_http_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))


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
            hosts = connect_hosts(channel.url)
        except InvalidChannel as exc:
            raise DeliveryError(f"{what}: {exc}", permanent=True) from None
        try:
            missing = await unresolved(hosts, guard)
        except RefusedAddress as exc:
            raise refused(what, exc) from None
        if missing:
            # Unchecked, apprise is not called: its own lookup might find what ours could
            # not. The name may resolve on a later attempt.
            raise DeliveryError(f"{what}: its host does not resolve")
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
