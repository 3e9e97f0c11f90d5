"""A local stand-in for the stats site's profile API, serving the recorded profile to everyone.

    with StatsSite() as site:
        ...point TRACKD_TRN_API_URL at site.url...
        site.served  # answers sent

Every `GET /api/v2/rocket-league/standard/profile/{platform}/{id}` is answered with the
recorded answer (tests/fakes/data, a copy of the fixture in the shared fixtures: a real
profile, 45 KB, 23 segments) carrying the asked player's platform and id, so each tracker of
the benchmark gets a realistic answer of its own. The body is prepared once; each request only
fills the player in, so the fake stays cheap next to the worker it feeds. Anything else is a
404 in the API's NotFound form.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, Final

from trackd.testing_server import ServedFake

# The repository's copy of the shared fixture, which the tests' own fake serves too.
RECORDED: Final = (
    Path(__file__).resolve().parents[1] / "tests/fakes/data/trn-rocket-league-profile-psn.json"
)
PREFIX: Final = "/api/v2/rocket-league/standard/profile/"
_PLATFORM: Final = "@@platform@@"
_PLAYER: Final = "@@player@@"
_NOT_FOUND: Final = json.dumps(
    {
        "errors": [
            {
                "code": "CollectorResultStatus::NotFound",
                "message": "We could not find the player you were looking for.",
                "data": {},
            }
        ]
    }
).encode()

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def profile_template(path: Path = RECORDED) -> str:
    """The recorded answer as JSON text with placeholders for the platform and player id."""
    payload = json.loads(path.read_text())
    info = payload["data"]["platformInfo"]
    info.update(
        platformSlug=_PLATFORM,
        platformUserHandle=_PLAYER,
        platformUserIdentifier=_PLAYER,
        platformUserId=None,
    )
    return json.dumps(payload)


class StatsSite(ServedFake):
    """The profile API on 127.0.0.1 (trackd.testing_server.ServedFake: uvicorn in a thread)."""

    def __init__(self, path: Path = RECORDED) -> None:
        super().__init__()
        self._template = profile_template(path)
        self.served = 0
        self.not_found = 0

    def body(self, platform: str, player_id: str) -> bytes:
        # json.dumps escapes the id as it would inside the document; strip its quotes.
        return (
            self._template.replace(_PLATFORM, json.dumps(platform)[1:-1])
            .replace(_PLAYER, json.dumps(player_id)[1:-1])
            .encode()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # pragma: no cover - lifespan is off
            return
        path: str = scope["path"]
        parts = path[len(PREFIX) :].split("/") if path.startswith(PREFIX) else []
        if len(parts) == 2 and all(parts) and scope["method"] == "GET":
            status, body = 200, self.body(parts[0], parts[1])
            self.served += 1
        else:
            status, body = 404, _NOT_FOUND
            self.not_found += 1
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def asgi_app(self) -> StatsSite:
        return self  # the site is its own ASGI app
