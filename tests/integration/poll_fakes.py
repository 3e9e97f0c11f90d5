"""A scriptable source and a settable clock for the scheduler and poller tests.

The source is a real Source (registered under its name for the test); what a fetch does is
decided by its target: `{"subject": "a", "fail": 2, "block": 1, "sleep": 0.5}` fails its
first two fetches, is then refused once, and sleeps half a second in each fetch.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from trackd.sources import registry
from trackd.sources.base import InvalidTarget, Snapshot, SourceBlocked, SourceError

T0 = datetime(2026, 1, 11, 10, 0, tzinfo=UTC)


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class ScriptedSource:
    name = "scripted"

    def __init__(self, name: str = "scripted", clock: Clock | None = None) -> None:
        self.name = name
        self.calls: Counter[str] = Counter()
        self.clock = clock
        self.running = 0
        self.started = asyncio.Event()

    def validate(self, target: Mapping[str, Any]) -> Mapping[str, Any]:
        subject = target.get("subject")
        if not isinstance(subject, str) or not subject:
            raise InvalidTarget("the target needs a subject, e.g. {'subject': 'a'}")
        return {k: target[k] for k in sorted(target)}

    async def fetch(self, target: Mapping[str, Any], client: httpx.AsyncClient) -> list[Snapshot]:
        subject = str(target["subject"])
        self.calls[subject] += 1
        n = self.calls[subject]
        self.running += 1
        self.started.set()
        try:
            if target.get("sleep"):
                await asyncio.sleep(float(target["sleep"]))
            fail = int(target.get("fail", 0))
            block = int(target.get("block", 0))
            if target.get("invalid"):
                raise InvalidTarget(f"{subject} does not exist")
            if n <= fail:
                raise SourceError(f"{subject}: upstream answered 502 (call {n})")
            if n <= fail + block:
                raise SourceBlocked(
                    f"{subject}: bot protection page",
                    host=str(target.get("host", "stats.example")),
                    retry_after=target.get("retry_after"),
                )
            taken = self.clock() if self.clock else datetime.now(UTC)
            return [
                Snapshot(
                    subject=subject,
                    source=self.name,
                    data={"rating": int(target.get("rating", 1000)) + n},
                    taken_at=taken,
                )
            ]
        finally:
            self.running -= 1


@contextmanager
def registered(source: ScriptedSource) -> Iterator[ScriptedSource]:
    registry.registry.register(source, replace=True)
    try:
        yield source
    finally:
        registry.registry.unregister(source.name)


def offline_client() -> httpx.AsyncClient:
    """A client for sources that make no request; one that did would get a 599."""
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(599)))
