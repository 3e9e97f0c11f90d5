"""`http_json`: any JSON document over HTTP(S), whole or as picked fields.

A target:

    {"url": "https://api.example.com/status",   # required, http or https
     "subject": "example-status",               # optional; default: the URL
     "fields": {"state": "/status/indicator",   # optional: name → JSON pointer (RFC 6901)
                "updated": "/page/updated_at"},
     "season": "2026"}                           # optional partition of the history

`fields` may also be a list of pointers, each then named by its dotted path ("/a/b" → "a.b").
Without `fields` the snapshot is the whole document (wrapped as {"value": ...} when it is not
an object). A pointer the document lacks gives None, and its name is listed in the snapshot's
`meta["missing"]`, so a change of the remote format shows up instead of failing every poll.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from trackd.outbound.http import RefusedAddress, ResponseTooLarge, retry_after
from trackd.sources.base import InvalidTarget, Snapshot, SourceBlocked, SourceError

MAX_URL = 2000
MAX_FIELDS = 100
_KEYS: Final = frozenset({"url", "subject", "fields", "season"})
# Phrases of bot-protection and challenge pages (Cloudflare, DataDome, Akamai, hCaptcha).
_CHALLENGE_MARKERS: Final = (
    "just a moment",
    "cf-chl",
    "challenge-platform",
    "attention required",
    "captcha",
    "access denied",
    "datadome",
)

_MISSING: Final = object()


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value at JSON pointer `pointer` (RFC 6901) in `document`, or `_MISSING`.

    Small enough to keep here rather than take a dependency for: "" is the whole document,
    "/a/0/b" walks object keys and array indices, "~1" is "/" and "~0" is "~".
    """
    if pointer == "":
        return document
    current = document
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, Mapping):
            if token not in current:
                return _MISSING
            current = current[token]
        elif isinstance(current, list):
            if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
                return _MISSING
            index = int(token)
            if index >= len(current):
                return _MISSING
            current = current[index]
        else:
            return _MISSING
    return current


def _check_pointer(pointer: object, where: str) -> str:
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise InvalidTarget(f"{where}: a JSON pointer is '' or starts with '/', got {pointer!r}")
    if "~" in pointer.replace("~0", "").replace("~1", ""):
        raise InvalidTarget(f"{where}: '~' in a JSON pointer must be written ~0 (or ~1 for '/')")
    return pointer


def _field_name(pointer: str) -> str:
    name = ".".join(t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/"))
    return name or "value"


def _looks_like_challenge(response: httpx.Response) -> bool:
    if "html" not in response.headers.get("content-type", ""):
        return False
    head = response.text[:5000].lower()
    return any(marker in head for marker in _CHALLENGE_MARKERS)


class HttpJsonSource:
    """Fetches one JSON document per target."""

    name = "http_json"

    def validate(self, target: Mapping[str, Any]) -> Mapping[str, Any]:
        unknown = set(target) - _KEYS
        if unknown:
            raise InvalidTarget(
                f"unknown target keys {sorted(unknown)}; http_json takes {sorted(_KEYS)}"
            )
        url = target.get("url")
        if not isinstance(url, str) or not url:
            raise InvalidTarget("target.url is required: the http(s) URL of a JSON document")
        if len(url) > MAX_URL:
            raise InvalidTarget(f"target.url is longer than {MAX_URL} characters")
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise InvalidTarget(f"target.url is not a valid URL: {exc}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise InvalidTarget(f"target.url must be an http(s) URL with a host, got {url!r}")
        # httpx reads any number as a port; one no connection can use is refused here, not
        # found out at each poll.
        if parsed.port is not None and not 1 <= parsed.port <= 65535:
            raise InvalidTarget(f"target.url's port {parsed.port} is not from 1 to 65535")
        canonical: dict[str, Any] = {"url": str(parsed)}

        subject = target.get("subject", str(parsed))
        if not isinstance(subject, str) or not 1 <= len(subject) <= 255:
            raise InvalidTarget("target.subject must be a string of 1 to 255 characters")
        canonical["subject"] = subject

        fields = target.get("fields")
        if fields is not None:
            if isinstance(fields, list):
                fields = {_field_name(_check_pointer(p, "target.fields")): p for p in fields}
            if not isinstance(fields, Mapping) or not fields:
                raise InvalidTarget("target.fields must be a non-empty {name: pointer} or list")
            if len(fields) > MAX_FIELDS:
                raise InvalidTarget(f"target.fields may pick at most {MAX_FIELDS} fields")
            for name, pointer in fields.items():
                if not isinstance(name, str) or not 1 <= len(name) <= 100:
                    raise InvalidTarget("target.fields names must be 1 to 100 characters")
                _check_pointer(pointer, f"target.fields.{name}")
            canonical["fields"] = dict(fields)

        season = target.get("season")
        if season is not None:
            if not isinstance(season, str | int) or not 1 <= len(str(season)) <= 100:
                raise InvalidTarget("target.season must be a string of 1 to 100 characters")
            canonical["season"] = str(season)
        return canonical

    async def fetch(self, target: Mapping[str, Any], client: httpx.AsyncClient) -> list[Snapshot]:
        target = self.validate(target)
        url = target["url"]
        host = httpx.URL(url).host
        try:
            response = await client.get(url, headers={"Accept": "application/json"})
        except RefusedAddress as exc:
            raise InvalidTarget(str(exc)) from None
        except httpx.TimeoutException:
            raise SourceError(f"{host} did not answer in time") from None
        except httpx.TooManyRedirects:
            raise SourceError(f"{host} redirected too many times") from None
        except ResponseTooLarge as exc:
            raise SourceError(str(exc)) from None
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot fetch from {host}: {exc}") from None

        if response.status_code in (403, 429) or _looks_like_challenge(response):
            raise SourceBlocked(
                f"{host} refused the request (HTTP {response.status_code})",
                host=host,
                retry_after=retry_after(response),
            )
        if response.status_code >= 400:
            raise SourceError(f"{host} answered HTTP {response.status_code}")
        try:
            document = response.json()
        except ValueError:
            raise SourceError(f"{host} did not answer with JSON") from None

        meta: dict[str, Any] = {"status": response.status_code}
        data: dict[str, Any]
        if "fields" in target:
            data, missing = {}, []
            for name, pointer in target["fields"].items():
                value = resolve_pointer(document, pointer)
                if value is _MISSING:
                    missing.append(name)
                    value = None
                data[name] = value
            if missing:
                meta["missing"] = missing
        else:
            data = document if isinstance(document, dict) else {"value": document}
        return [
            Snapshot(
                subject=target["subject"],
                source=self.name,
                data=data,
                taken_at=datetime.now(UTC),
                season=target.get("season"),
                meta=meta,
            )
        ]
