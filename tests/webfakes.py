"""Local HTTP servers for outbound-fetch and notification tests: a Starlette app served by
uvicorn on 127.0.0.1, in the test's own event loop, on a free port.

    async with serve(app) as base_url: ...

`Receiver` is a webhook endpoint that records what it was sent, answers from a script
(e.g. two 500s, then 200s), and counts deliveries the way a careful receiver would: once per
`Idempotency-Key`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp


@asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 until the block ends; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    # uvicorn would take over SIGINT/SIGTERM of the test process; the test owns them.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        # Do not wait for handlers still sleeping (a "slow" endpoint the client gave up on).
        server.should_exit = server.force_exit = True
        await asyncio.wait_for(task, 10)


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver. `script` holds the status codes of the next answers (then 200)."""

    script: list[int] = field(default_factory=list)
    retry_after: str | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    accepted: dict[str, Delivery] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: Request) -> Response:
        delivery = Delivery(request.url.path, dict(request.headers), await request.body())
        self.deliveries.append(delivery)
        self.arrived.set()
        status = self.script.pop(0) if self.script else 200
        if status >= 300:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return JSONResponse({"error": status}, status_code=status, headers=headers)
        key = delivery.headers.get("idempotency-key", "")
        # A careful receiver acts once per key, however often a sender repeats it.
        self.accepted.setdefault(key, delivery)
        return JSONResponse({"ok": True})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.handle, methods=["POST"])])
