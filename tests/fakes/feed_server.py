"""A local stand-in for public JSON feed services (NOAA SWPC, GFZ Potsdam), on 127.0.0.1.

    with FakeFeeds() as noaa:
        noaa.serve_noaa()                                        # every feed from the fixtures
        noaa.serve("/json/rtsw/rtsw_wind_1m.json", Reply(404))   # replace one feed's answer
        noaa.script("/products/noaa-scales.json", Reply(500))    # used once, then the stored one
        ...fetch from noaa.url...
        noaa.paths  # what was asked, in order (query strings in noaa.queries)

A path nobody set answers 404, as a retired feed does.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fakes.trn_server import Reply
from trackd.testing_server import ServedFake

DATA = Path(__file__).parent / "data"

# Each feed path of the NOAA source and the fixture it replays by default: the current shapes
# (objects for Kp, rtsw for the wind) with the legacy solar-wind lists still answering.
NOAA_DEFAULTS = {
    "/products/noaa-planetary-k-index.json": "noaa-planetary-k-index.objects.json",
    "/json/planetary_k_index_1m.json": "planetary_k_index_1m.json",
    "/json/goes/primary/xrays-6-hour.json": "xrays-6-hour.json",
    "/json/goes/primary/xray-flares-latest.json": "xray-flares-latest.json",
    "/products/noaa-scales.json": "noaa-scales.json",
    "/json/rtsw/rtsw_wind_1m.json": "rtsw_wind_1m.json",
    "/json/rtsw/rtsw_mag_1m.json": "rtsw_mag_1m.json",
    "/products/solar-wind/plasma-2-hour.json": "plasma-7-day.json",
    "/products/solar-wind/mag-2-hour.json": "mag-7-day.json",
}


def noaa_fixture(name: str) -> Any:
    return json.loads((DATA / "noaa" / name).read_text())


def gfz_fixture(name: str) -> Any:
    return json.loads((DATA / "gfz" / name).read_text())


class FakeFeeds(ServedFake):
    """JSON feeds by path, served locally."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []
        self.queries: list[str] = []
        self._stored: dict[str, Reply] = {}
        self._scripts: dict[str, deque[Reply]] = {}
        self._lock = threading.Lock()

    def serve(self, path: str, reply: Reply | Any) -> None:
        """Answer `reply` (a Reply, or a JSON value for a 200) to every request for `path`."""
        with self._lock:
            self._stored[path] = reply if isinstance(reply, Reply) else Reply(body=reply)

    def serve_noaa(self, **fixtures: str) -> None:
        """Every NOAA feed from its default fixture; `fixtures` maps a feed's file name with
        `-` and `.` as `_` (e.g. `xray_flares_latest_json`) to another fixture."""
        for path, name in NOAA_DEFAULTS.items():
            key = path.rsplit("/", 1)[-1].replace("-", "_").replace(".", "_")
            self.serve(path, noaa_fixture(fixtures.get(key, name)))

    def script(self, path: str, *replies: Reply) -> None:
        """Answer these, in order, to the next requests for `path`."""
        with self._lock:
            self._scripts.setdefault(path, deque()).extend(replies)

    async def _answer(self, request: Request) -> Response:
        path = request.url.path
        with self._lock:
            self.paths.append(path)
            self.queries.append(request.url.query)
            scripted = self._scripts.get(path)
            reply = scripted.popleft() if scripted else self._stored.get(path, Reply(404))
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return Response(
            reply.text, reply.status, headers=reply.headers, media_type=reply.content_type
        )

    def asgi_app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._answer)])
