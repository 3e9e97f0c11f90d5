"""Notification channel rules: the kinds, what a valid URL of each is, how URLs are shown, and
which changes a channel wants. Pure, no I/O.

A channel URL is a credential (a Discord webhook URL carries its token; an apprise URL its
service's keys), so it is shown only as `mask_url` gives it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit

from trackd.errors import RuleBroken

MAX_URL: Final = 2000
BUS: Final = "bus"
"""The outbox kind of a row that goes onto trackd's bus rather than to a channel."""


class ChannelKind(StrEnum):
    WEBHOOK = "webhook"  # JSON POST, optionally HMAC-signed
    DISCORD = "discord"  # a Discord channel webhook
    APPRISE = "apprise"  # any apprise URL (needs the `apprise` extra)


class InvalidChannel(RuleBroken):
    """The channel cannot work as given; the message says what to fix."""


_DISCORD = re.compile(
    r"^https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api(?:/v\d+)?/webhooks/\d{5,25}/[\w-]{20,}"
    r"(?:/threads/\d+)?/?(?:\?[^#]*)?$"
)
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]{0,30}://\S+$", re.IGNORECASE)
_OPTIONS: Final = {
    ChannelKind.WEBHOOK: frozenset({"fields"}),
    ChannelKind.DISCORD: frozenset({"fields", "username"}),
    ChannelKind.APPRISE: frozenset({"fields"}),
}


def parse_kind(kind: str) -> ChannelKind:
    try:
        return ChannelKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in ChannelKind)
        raise InvalidChannel(f"unknown channel kind {kind!r}; use one of {known}") from None


def validate_url(kind: ChannelKind, url: str) -> str:
    """`url` stripped, if it fits `kind`; never echoes the URL in the error (it is secret)."""
    url = url.strip()
    if not url or len(url) > MAX_URL or any(c.isspace() for c in url):
        raise InvalidChannel(f"a {kind} URL is 1 to {MAX_URL} characters without spaces")
    if kind is ChannelKind.WEBHOOK:
        try:
            parts = urlsplit(url)
            host, _ = parts.hostname, parts.port
        except ValueError as exc:  # a bracketed host that is no IPv6 address, a bad port
            raise InvalidChannel(f"the webhook URL cannot be read: {exc}") from None
        if parts.scheme not in ("http", "https") or not host:
            raise InvalidChannel("a webhook URL is http(s)://host/path")
    elif kind is ChannelKind.DISCORD:
        if not _DISCORD.match(url):
            raise InvalidChannel(
                "a Discord webhook URL looks like https://discord.com/api/webhooks/<id>/<token>"
            )
    elif not _SCHEME.match(url):
        raise InvalidChannel("an apprise URL looks like scheme://... (see apprise's docs)")
    else:
        # The port is apprise's to read (a token may sit where a port would); brackets are not.
        try:
            urlsplit(url)
        except ValueError as exc:
            raise InvalidChannel(f"the apprise URL cannot be read: {exc}") from None
    return url


def validate_options(kind: ChannelKind, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The channel options, checked: `fields` (path prefixes of the changes that notify) for
    every kind, `username` for Discord."""
    options = dict(options or {})
    unknown = set(options) - _OPTIONS[kind]
    if unknown:
        raise InvalidChannel(
            f"unknown options {sorted(unknown)} for a {kind} channel; "
            f"it takes {sorted(_OPTIONS[kind])}"
        )
    fields = options.get("fields")
    if fields is not None and (
        not isinstance(fields, list)
        or not fields
        or not all(isinstance(f, str) and 0 < len(f) <= 255 for f in fields)
    ):
        raise InvalidChannel("options.fields is a non-empty list of field paths, e.g. ['rank']")
    username = options.get("username")
    if username is not None and (not isinstance(username, str) or not 0 < len(username) <= 80):
        raise InvalidChannel("options.username is 1 to 80 characters")
    return options


def mask_url(url: str) -> str:
    """`url` with everything that may be a credential hidden: "https://discord.com/…".

    Only the scheme and, for http(s), the host name stay; an apprise URL's "host" is often
    a token, so it goes too.
    """
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme or "?", parts.hostname
    except ValueError:  # a malformed host: only the scheme can be shown
        scheme_only = _SCHEME.match(url)
        scheme, host = (url.partition("://")[0] if scheme_only else "?"), None
    if scheme in ("http", "https") and host:
        return f"{scheme}://{host}/…"
    return f"{scheme}://…"


def wants(options: Mapping[str, Any], paths: Iterable[str]) -> bool:
    """Whether a channel with `options` is notified of a change of the fields at `paths`:
    always without `fields`, else when a path is one of them or lies under one."""
    fields = options.get("fields")
    if not fields:
        return True
    return any(p == f or p.startswith(f"{f}.") for p in paths for f in fields)


_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")


def mask_urls(text: str) -> str:
    """`text` (a delivery error, say) with every URL in it masked as `mask_url` does."""
    return _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)
