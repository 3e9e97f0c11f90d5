"""A local stand-in for the stats site's profile API, on 127.0.0.1 in a background thread.

    with FakeStatsSite() as site:
        site.add_profile("psn", "nssbali_", recorded())          # the current season
        site.add_profile("psn", "nssbali_", older, season=33)     # answers ?season=33
        site.script("psn", "nssbali_", Reply(429, headers={"Retry-After": "30"}))
        ...fetch from site.url...
        site.requests  # what was asked, raw path included

`proxy=True` answers as a FlareSolverr-style proxy does: status 200 and a JSON whose
`solution.response` is the page with the API's answer HTML-escaped inside `<pre>`.
Scripted replies are used once each, before the stored profiles; an unknown player is a 404
with the API's NotFound error.
"""

from __future__ import annotations

import asyncio
import html
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fakes.trn_payloads import not_found_payload
from trackd.testing_server import ServedFake

PROFILE_PATH = "/api/v2/rocket-league/standard/profile/{platform}/{player_id}"


@dataclass(frozen=True)
class Reply:
    """One scripted answer; `delay` seconds pass before it is sent."""

    status: int = 200
    body: str | dict[str, Any] | list[Any] = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @property
    def text(self) -> str:
        return self.body if isinstance(self.body, str) else json.dumps(self.body)

    @property
    def content_type(self) -> str:
        if "content-type" in {k.lower() for k in self.headers}:
            return self.headers.get("content-type", self.headers.get("Content-Type", ""))
        return "text/html" if isinstance(self.body, str) else "application/json"


@dataclass(frozen=True)
class Seen:
    """One request the fake received."""

    raw_path: str
    platform: str
    player_id: str
    season: str | None
    headers: dict[str, str]


class FakeStatsSite(ServedFake):
    """The profile API of the stats site (or a proxy in front of it), served locally."""

    def __init__(self, *, proxy: bool = False) -> None:
        super().__init__()
        self.proxy = proxy
        self.requests: list[Seen] = []
        self._profiles: dict[tuple[str, str], dict[int | None, Reply]] = {}
        self._scripts: dict[tuple[str, str], deque[Reply]] = {}
        self._lock = threading.Lock()

    def add_profile(
        self, platform: str, player_id: str, payload: dict[str, Any], *, season: int | None = None
    ) -> None:
        """Answer `payload` for this player (for `?season=N` when `season` is given)."""
        with self._lock:
            self._profiles.setdefault(_key(platform, player_id), {})[season] = Reply(body=payload)

    def script(self, platform: str, player_id: str, *replies: Reply) -> None:
        """Answer these, in order, to the next requests for this player, whatever the season."""
        with self._lock:
            self._scripts.setdefault(_key(platform, player_id), deque()).extend(replies)

    def seasons_asked(self, platform: str, player_id: str) -> list[str | None]:
        key = _key(platform, player_id)
        return [seen.season for seen in self.requests if _key(seen.platform, seen.player_id) == key]

    async def _profile(self, request: Request) -> Response:
        platform = request.path_params["platform"]
        player_id = request.path_params["player_id"]
        season = request.query_params.get("season")
        raw_path = request.scope.get("raw_path", b"").decode("latin-1")
        with self._lock:
            self.requests.append(Seen(raw_path, platform, player_id, season, dict(request.headers)))
            key = _key(platform, player_id)
            scripted = self._scripts.get(key)
            if scripted:
                reply = scripted.popleft()
            else:
                stored = self._profiles.get(key, {})
                chosen = (
                    stored.get(int(season)) if season and season.isdigit() else stored.get(None)
                )
                reply = chosen or Reply(404, not_found_payload())
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if self.proxy:
            return self._as_proxy(str(request.url), reply)
        return Response(
            reply.text, reply.status, headers=reply.headers, media_type=reply.content_type
        )

    @staticmethod
    def _as_proxy(url: str, reply: Reply) -> Response:
        page = reply.text
        if not isinstance(reply.body, str):
            page = (
                '<html><head><meta name="color-scheme" content="light dark"><meta charset="utf-8">'
                f"</head><body><pre>{html.escape(page, quote=False)}</pre></body></html>"
            )
        answer = {
            "status": "ok",
            "message": "Challenge not detected!",
            "solution": {
                "url": url.replace("127.0.0.1", "api.tracker.gg", 1),
                "status": reply.status,
                "headers": reply.headers,
                "response": page,
            },
        }
        return Response(json.dumps(answer), 200, media_type="application/json")

    def asgi_app(self) -> Starlette:
        return Starlette(routes=[Route(PROFILE_PATH, self._profile)])


def _key(platform: str, player_id: str) -> tuple[str, str]:
    return platform.lower(), player_id.casefold()
