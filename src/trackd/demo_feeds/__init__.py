"""What `trackd demo` serves in place of NOAA SWPC: synthetic payloads in NOAA's exact shapes
(the test fixtures' defaults), answered on 127.0.0.1 at NOAA's paths. Nothing is fetched from
the internet by the demo."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

NOAA: Final = Path(__file__).parent / "noaa"

# NOAA's path -> the file answered; the retired `products/solar-wind/*` lists answer 404.
NOAA_FEEDS: Final = {
    "/products/noaa-planetary-k-index.json": "noaa-planetary-k-index.objects.json",
    "/json/planetary_k_index_1m.json": "planetary_k_index_1m.json",
    "/json/goes/primary/xrays-6-hour.json": "xrays-6-hour.json",
    "/json/goes/primary/xray-flares-latest.json": "xray-flares-latest.json",
    "/products/noaa-scales.json": "noaa-scales.json",
    "/json/rtsw/rtsw_wind_1m.json": "rtsw_wind_1m.json",
    "/json/rtsw/rtsw_mag_1m.json": "rtsw_mag_1m.json",
}


# The instant the payloads were made at: the demo moves their times so that it is "now".
RECORDED_AT: Final = datetime(2026, 9, 6, 17, 21, tzinfo=UTC)
TIME_KEYS: Final = ("time_tag", "begin_time", "max_time", "end_time", "max_ratio_time")


def _moved(text: Any, offset: timedelta) -> Any:
    if not isinstance(text, str):
        return text
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        return text  # "Unk" while a flare runs
    zone = "Z" if text.endswith("Z") else ""
    moved = (moment.replace(tzinfo=UTC) + offset).replace(tzinfo=None)
    return moved.isoformat(timespec="seconds") + zone


def shifted(payload: Any, offset: timedelta) -> Any:
    """`payload` with the time of every row moved by `offset`."""
    if isinstance(payload, list):
        return [shifted(row, offset) for row in payload]
    if isinstance(payload, dict):
        return {k: _moved(v, offset) if k in TIME_KEYS else v for k, v in payload.items()}
    return payload


def noaa_payload(path: str, now: datetime | None = None) -> Any:
    """The payload of NOAA `path`, its times moved so that its newest minute is `now`."""
    payload = json.loads((NOAA / NOAA_FEEDS[path]).read_text())
    if now is None:
        return payload
    return shifted(payload, now.replace(second=0, microsecond=0) - RECORDED_AT)


def noaa_app(clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Starlette:
    """An ASGI app answering NOAA's feed paths with the packaged payloads, as of `clock()`."""

    async def feed(request: Request) -> Response:
        path = request.url.path
        if path not in NOAA_FEEDS:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(noaa_payload(path, clock()))

    return Starlette(routes=[Route("/{path:path}", feed)])
