"""Status changes of tracking rows as trackd events, and where they are sent.

Each change becomes a `task.state_changed` on `system-events`, the event trackd's SDK emits,
so the central tracker folds the application's jobs into its tasks, timelines and metrics.
The task id there is `{domain}-{id}` and the domain is the task's event type.

A publisher is anything with `async publish(envelopes)`: `BusEventPublisher` puts them on a
bus trackd ingests from, `HttpEventPublisher` posts them to a trackd server.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import httpx
from uuid_utils.compat import uuid7

from trackd.bus.base import Bus
from trackd.domain import lifecycle
from trackd.domain.events import SYSTEM_EVENTS, EventEnvelope
from trackd.domain.jobs import JobChange
from trackd.errors import TrackdError

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "trackd.jobs"


class PublishError(TrackdError):
    """trackd did not take the events; the message says what it answered."""


class JobEventPublisher(Protocol):
    async def publish(self, envelopes: Sequence[EventEnvelope]) -> None:
        """Deliver the events, or raise."""
        ...


def trackd_task_id(domain: str, tracking_id: int) -> str:
    """The id trackd knows a tracking row's task by."""
    return f"{domain}-{tracking_id}"


def state_changed(
    *,
    domain: str,
    tracking_id: int,
    tenant_id: str,
    source: str,
    change: JobChange,
    previous: str | None,
    job_id: str | None = None,
    parent_id: int | None = None,
) -> EventEnvelope:
    """The event for one status change (`previous` None: the task was just created)."""
    after = change.after
    extra: dict[str, Any] = {"domain": domain, "tracking_id": tracking_id}
    if job_id:
        extra["job_id"] = job_id
    if parent_id is not None:
        extra["parent_task_id"] = trackd_task_id(domain, parent_id)
    event = lifecycle.state_changed(
        event_id=str(uuid7()),
        time=after.updated_at,
        source=source,
        task_id=trackd_task_id(domain, tracking_id),
        new_state=after.status.value,
        previous_state=previous,
        event_type=domain,
        max_attempts=after.max_attempts,
        reason=change.reason or None,
        extra=extra,
        attempt=after.attempt,
        tenant_id=tenant_id,
    )
    return EventEnvelope.model_validate(event)


def _body(envelope: EventEnvelope) -> bytes:
    return envelope.model_dump_json(exclude_none=True).encode()


class BusEventPublisher:
    """Publishes onto a bus that trackd's ingest consumes, partitioned by task id."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def publish(self, envelopes: Sequence[EventEnvelope]) -> None:
        if not envelopes:
            return
        keys = [_key(e) for e in envelopes]
        await self._bus.publish(SYSTEM_EVENTS, [_body(e) for e in envelopes], keys)


class HttpEventPublisher:
    """Posts the events to a trackd server's `POST /v1/events` with a service token.

    The server takes the tenant from the token, whatever the events say.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            transport=transport,
            timeout=timeout,
        )

    async def publish(self, envelopes: Sequence[EventEnvelope]) -> None:
        if not envelopes:
            return
        events = [e.model_dump(mode="json", exclude_none=True) for e in envelopes]
        try:
            response = await self._client.post("/v1/events", json={"events": events})
        except httpx.HTTPError as exc:
            raise PublishError(f"trackd could not be reached: {exc!r}") from exc
        if response.status_code == 202:
            return
        raise PublishError(f"trackd answered {response.status_code}: {response.text[:500]}")

    async def aclose(self) -> None:
        await self._client.aclose()


def _key(envelope: EventEnvelope) -> str | None:
    task_id = (envelope.data or {}).get("task_id")
    return task_id if isinstance(task_id, str) else None
