"""The outbound client and the http_json source against a real HTTP server on 127.0.0.1.

Reaching the local server needs allow_private (as a trusted deployment would set it); with
the default the same server is refused, and is shown to receive nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from trackd.outbound.http import RefusedAddress, outbound_client
from trackd.settings import Settings
from trackd.sources.base import InvalidTarget, SourceError
from trackd.sources.http_json import HttpJsonSource
from webfakes import serve

hits: list[str] = []


async def status(request: Request) -> Response:
    hits.append(request.url.path)
    return JSONResponse({"status": {"indicator": "minor", "rank": 3}, "page": {"id": "x"}})


async def slow(request: Request) -> Response:
    await asyncio.sleep(3)
    return JSONResponse({})


async def drip(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" "
            await asyncio.sleep(0.05)

    return StreamingResponse(chunks(), media_type="application/json")


async def to_status(request: Request) -> Response:
    return RedirectResponse("/status", status_code=302)


APP = Starlette(
    routes=[
        Route("/status", status),
        Route("/slow", slow),
        Route("/drip", drip),
        Route("/redirect", to_status),
    ]
)


@pytest.fixture
async def server() -> AsyncIterator[str]:
    hits.clear()
    async with serve(APP) as base_url:
        yield base_url


async def test_http_json_fetches_picked_fields(server: str) -> None:
    source = HttpJsonSource()
    target = {"url": f"{server}/redirect", "subject": "status", "fields": ["/status/indicator"]}
    async with outbound_client(Settings(allow_private_fetch=True)) as client:
        [snapshot] = await source.fetch(target, client)

    assert snapshot.subject == "status"
    assert snapshot.source == "http_json"
    assert snapshot.data == {"status.indicator": "minor"}
    assert snapshot.taken_at.tzinfo is not None


async def test_the_local_server_is_refused_by_default(server: str) -> None:
    async with outbound_client(Settings()) as client:
        with pytest.raises(RefusedAddress, match="loopback"):
            await client.get(f"{server}/status")
        # A host name resolving to loopback, through the system's resolver.
        with pytest.raises(RefusedAddress, match="localhost"):
            await client.get(server.replace("127.0.0.1", "localhost") + "/status")
        # Spellings of 127.0.0.1 and 0.0.0.0 that the resolver turns into addresses.
        for other in ("2130706433", "127.1", "0"):
            with pytest.raises(RefusedAddress):
                await client.get(server.replace("127.0.0.1", other) + "/status")
        with pytest.raises(InvalidTarget, match="TRACKD_ALLOW_PRIVATE_FETCH"):
            await HttpJsonSource().fetch({"url": f"{server}/status"}, client)
    assert hits == []


async def test_a_slow_server_times_out(server: str) -> None:
    started = time.monotonic()
    async with outbound_client(Settings(allow_private_fetch=True, fetch_timeout_s=0.3)) as client:
        with pytest.raises(SourceError, match="did not answer in time"):
            await HttpJsonSource().fetch({"url": f"{server}/slow"}, client)
    assert time.monotonic() - started < 2


async def test_a_dripping_server_hits_the_total_deadline(server: str) -> None:
    # Each byte comes well within the read timeout; the whole body never would in time.
    started = time.monotonic()
    async with outbound_client(Settings(allow_private_fetch=True, fetch_timeout_s=0.5)) as client:
        with pytest.raises(SourceError, match="did not answer in time"):
            await HttpJsonSource().fetch({"url": f"{server}/drip"}, client)
    assert time.monotonic() - started < 2.5


async def test_requests_to_one_host_are_spaced_by_its_rate(server: str) -> None:
    settings = Settings(allow_private_fetch=True, fetch_rate_per_host=10, fetch_burst=1)
    async with outbound_client(settings) as client:
        started = time.monotonic()
        for _ in range(5):
            (await client.get(f"{server}/status")).raise_for_status()
        elapsed = time.monotonic() - started
    # Five requests at 10/s with no burst: four gaps of 0.1 s at least.
    assert elapsed >= 0.38, elapsed
    assert len(hits) == 5


async def test_concurrent_requests_share_the_rate(server: str) -> None:
    settings = Settings(allow_private_fetch=True, fetch_rate_per_host=20, fetch_burst=2)
    async with outbound_client(settings) as client:
        started = time.monotonic()
        await asyncio.gather(*(client.get(f"{server}/status") for _ in range(6)))
        elapsed = time.monotonic() - started
    # A burst of two, then four more at 20/s.
    assert elapsed >= 0.18, elapsed
