"""Notifications' entry for other features: where a channel's URL will send to, checked when
the channel is set up.

The address rule is the outbound one (`trackd.sources.addresses`): a channel whose host is,
or resolves to, a private, loopback, link-local or metadata address is refused with the
reason, unless the deployment allows private addresses. A URL that cannot be read is refused
whatever the setting: nothing can be said of where it goes (fail closed). A host that does
not resolve yet is accepted: delivery checks every address again before each send.
"""

from __future__ import annotations

import httpx

from trackd.domain.channels import ChannelKind, InvalidChannel, validate_url
from trackd.notify.channels.apprise_urls import connect_hosts
from trackd.notify.channels.base import unresolved
from trackd.sources.http import AddressGuard, RefusedAddress


async def check_destination(kind: ChannelKind, url: str, guard: AddressGuard) -> None:
    """Refuse a channel URL that cannot be read or whose host is not allowed.

    Raises:
        InvalidChannel: the message says why, without the URL (it is a credential).
    """
    url = validate_url(kind, url)
    hosts = connect_hosts(url) if kind is ChannelKind.APPRISE else [http_host(kind, url)]
    try:
        # A host not resolvable now is checked again at each delivery.
        await unresolved(hosts, guard)
    except RefusedAddress as exc:
        raise InvalidChannel(
            f"the {kind} URL's host is refused: {exc.address} is {exc.reason}; "
            "set TRACKD_ALLOW_PRIVATE_FETCH=true to allow private addresses"
        ) from None


def http_host(kind: ChannelKind, url: str) -> tuple[str, int]:
    """The host and port an http(s) channel connects to, read by the client that sends."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InvalidChannel(f"the {kind} URL cannot be read: {exc}") from None
    if not parsed.host:
        raise InvalidChannel(f"the {kind} URL names no host")
    return parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)
