"""Per-host backoff in a worker: a host that refused us is left alone for a while.

The poller records each refusal (`SourceBlocked`) here and installs `guard` on its outbound
client, so that while a host backs off no request reaches it at all: every poll that would
call it is blocked at once, without a request, and waits for the host's backoff to end.
Each worker keeps its own record; a host that refuses one worker is learned by the others on
their next request to it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from trackd.domain.polls import HOST_BACKOFF, block_delay
from trackd.domain.retry import Backoff
from trackd.sources.base import SourceBlocked


class HostBackingOff(SourceBlocked):
    """A request was not sent: its host is still backing off from an earlier refusal."""


@dataclass(slots=True)
class _Host:
    strikes: int
    until: datetime


class HostBackoffs:
    """Hosts that refused us, until when each is left alone, and how often in a row."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        backoff: Backoff = HOST_BACKOFF,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._backoff = backoff
        self._rng = rng
        self._hosts: dict[str, _Host] = {}

    def strike(self, host: str, retry_after: float | None) -> datetime:
        """Record a refusal by `host`; returns when it may be asked again."""
        entry = self._hosts.get(host)
        strikes = (entry.strikes if entry else 0) + 1
        delay = block_delay(strikes, retry_after, backoff=self._backoff, rng=self._rng)
        until = self._clock() + timedelta(seconds=delay)
        if entry is not None and entry.until > until:
            until = entry.until
        self._hosts[host] = _Host(strikes, until)
        return until

    def until(self, host: str) -> datetime | None:
        """When `host` may be asked again, or None when it may be now."""
        entry = self._hosts.get(host)
        if entry is None or entry.until <= self._clock():
            return None
        return entry.until

    def clear(self, host: str) -> None:
        """`host` answered: its next refusal starts the backoff from the beginning."""
        self._hosts.pop(host, None)

    def install(self, client: httpx.AsyncClient) -> None:
        """Refuse requests to backing-off hosts on `client`, and forget a host's strikes once
        it answers normally."""
        hooks = client.event_hooks
        hooks["request"] = [*hooks.get("request", []), self._guard]
        hooks["response"] = [*hooks.get("response", []), self._answered]
        client.event_hooks = hooks

    async def _guard(self, request: httpx.Request) -> None:
        host = request.url.host
        until = self.until(host)
        if until is not None:
            left = (until - self._clock()).total_seconds()
            raise HostBackingOff(
                f"{host} refused an earlier request; left alone for {left:.0f} s more",
                host=host,
                retry_after=left,
            )

    async def _answered(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            self.clear(response.request.url.host)
