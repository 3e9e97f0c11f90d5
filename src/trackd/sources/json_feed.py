"""One GET of a public JSON feed, with every way it can fail turned into a source error.

Used by the space weather sources, which read many small feeds of one service each poll and
must tell "this feed is gone" (404, so fall back to another) from "the service is failing".
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from trackd.outbound.http import RefusedAddress, ResponseTooLarge, retry_after
from trackd.sources.base import InvalidTarget, SourceBlocked, SourceError


class FeedNotFound(SourceError):
    """The feed answered 404: it may have been retired in favour of another."""


async def get_json(client: httpx.AsyncClient, url: str) -> Any:
    """The JSON document at `url`.

    Raises:
        InvalidTarget: the host is a refused (private) address; retrying will not help.
        SourceBlocked: 403 or 429, with the host's Retry-After.
        FeedNotFound: 404.
        SourceError: network failure, time-out, another 4xx/5xx, or a body that is not JSON.
    """
    host = httpx.URL(url).host
    try:
        response = await client.get(url, headers={"Accept": "application/json"})
    except RefusedAddress as exc:
        raise InvalidTarget(str(exc)) from None
    except httpx.TimeoutException:
        raise SourceError(f"{host} did not answer {url} in time") from None
    except ResponseTooLarge as exc:
        raise SourceError(str(exc)) from None
    except httpx.HTTPError as exc:
        raise SourceError(f"cannot fetch {url}: {type(exc).__name__}: {exc}") from None
    if response.status_code in (403, 429):
        raise SourceBlocked(
            f"{host} refused {url} (HTTP {response.status_code})",
            host=host,
            retry_after=retry_after(response),
        )
    if response.status_code == 404:
        raise FeedNotFound(f"{url} answered 404")
    if response.status_code >= 400:
        raise SourceError(f"{url} answered HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise SourceError(f"{url} did not answer with JSON") from None


def base_url_setting(url: str, setting: str) -> str:
    """`url` without its trailing slash, checked to be an http(s) URL.

    Raises:
        ValueError: it is not; the message names the `setting` to fix.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{setting} must be an http(s) URL, got {url!r}")
    return url.rstrip("/")
