"""The Source protocol and what a fetch returns (DESIGN §9).

A source never decides when it runs or what happens to its result: the scheduler and the
poller do. It validates a target once, when it is registered, and fetches it when polled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from trackd.errors import RuleBroken

if TYPE_CHECKING:
    import httpx


class SourceError(Exception):
    """A fetch failed in a way worth retrying later (network, 5xx, a malformed answer)."""


class InvalidTarget(SourceError, RuleBroken):
    """The target can never be fetched as given; retrying will not help. The message says
    what to fix."""


class SourceBlocked(SourceError):
    """The remote side refused us (bot protection, 403, 429): the poll is `blocked`, not
    `failed`, and the host backs off. `retry_after` is its hint, in seconds, when it gave one."""

    def __init__(self, message: str, *, host: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.host = host
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one fetch saw of one subject: immutable once stored.

    Attributes:
        subject: what was observed, unique within the source (a tracker id, a station).
        source: the source's registered name.
        data: the typed payload as plain JSON-compatible values (the source's own schema).
        taken_at: when it was observed (UTC, timezone-aware).
        season: the partition of history it belongs to (a game season), or None.
    """

    subject: str
    source: str
    data: Mapping[str, Any]
    taken_at: datetime
    season: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Source(Protocol):
    """An adapter for one kind of remote data. Implementations live in `trackd.sources.*`
    and are registered by name (`trackd.sources.registry`)."""

    name: str

    def validate(self, target: Mapping[str, Any]) -> Mapping[str, Any]:
        """The target in canonical form; raises InvalidTarget with what to fix."""
        ...

    async def fetch(self, target: Mapping[str, Any], client: httpx.AsyncClient) -> list[Snapshot]:
        """Snapshots of the target, using `client` for every outbound request (it carries the
        timeouts, rate limits and the private-address guard). Raises SourceError,
        SourceBlocked or InvalidTarget."""
        ...
