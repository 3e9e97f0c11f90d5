"""Status changes of tracking rows as trackd events, and where they are sent.

Each change becomes a `task.state_changed` on `system-events`, the event trackd's SDK emits,
so the central tracker folds the application's jobs into its tasks, timelines and metrics.
The task id there is `{domain}-{id}` and the domain is the task's event type.

A publisher is anything with `async publish(envelopes)`: `BusEventPublisher` puts them on a
bus trackd ingests from, `HttpEventPublisher` posts them to a trackd server.
"""

from __future__ import annotations

import asyncio
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
from trackd.ingest import service
from trackd.sdk.http import MAX_REQUEST_BYTES, HttpSink
from trackd.sdk.sinks import RefusedError, RetryableError

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "trackd.jobs"
_FIRST_BACKOFF = 0.1


class PublishError(TrackdError):
    """trackd did not take the events; the message says what it answered.

    Attributes:
        failed: how many of the events trackd did not take (None: all of them).
    """

    def __init__(self, message: str, *, failed: int | None = None) -> None:
        super().__init__(message)
        self.failed = failed


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


class BusEventPublisher:
    """Publishes onto a bus that trackd's ingest consumes, partitioned by task id."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def publish(self, envelopes: Sequence[EventEnvelope]) -> None:
        if not envelopes:
            return
        await service.publish(
            self._bus, ((e.topic or SYSTEM_EVENTS, _key(e), e) for e in envelopes)
        )


class HttpEventPublisher:
    """Posts the events to a trackd server's `POST /v1/events` with a service token.

    It sends through the SDK's HTTP sink: in requests the server takes (at most its 500
    events and its request size each), every event judged on its own. Events the server
    accepted are done; those it refused are logged with its reason and counted in the
    `PublishError` raised after the others went through. When the server is away or busy
    (a transport error, 429, 5xx) the same events are sent again, ids unchanged, up to
    `retries` more times; the server drops what it already had. `max_request_bytes` is the
    server's `TRACKD_MAX_REQUEST_BYTES` when it is not the default.

    The server takes the tenant from the token, whatever the events say.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self._sink = HttpSink(
            url, token, transport=transport, timeout=timeout, max_request_bytes=max_request_bytes
        )
        self._retries = retries

    async def publish(self, envelopes: Sequence[EventEnvelope]) -> None:
        if not envelopes:
            return
        batch = [(e.id, _key(e) or "", service.encode(e)) for e in envelopes]
        delay = _FIRST_BACKOFF
        for tries_left in range(self._retries, -1, -1):
            try:
                result = await self._sink.send(batch)
            except RetryableError as exc:
                if not tries_left:
                    raise PublishError(f"trackd did not take the events: {exc}") from exc
                await asyncio.sleep(exc.retry_after or delay)
                delay *= 2
                continue
            except RefusedError as exc:
                raise PublishError(str(exc)) from exc
            break
        if result.rejected:
            for event_id, reason in result.rejected:
                log.error("trackd refused event id=%s: %s", event_id, reason)
            refused = len(result.rejected)
            raise PublishError(
                f"trackd refused {refused} of {len(batch)} events; the first because: "
                f"{result.rejected[0][1]}",
                failed=refused,
            )

    async def aclose(self) -> None:
        await self._sink.close()


def _key(envelope: EventEnvelope) -> str | None:
    task_id = (envelope.data or {}).get("task_id")
    return task_id if isinstance(task_id, str) else None
