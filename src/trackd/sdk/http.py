"""The HTTP sink: batches go to a trackd server's `POST /v1/events`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from trackd.sdk.sinks import RefusedError, RetryableError, SendResult
from trackd.sdk.wire import Wire

MAX_EVENTS_PER_REQUEST = 500  # the server's limit (trackd.api.routers.events.MAX_EVENTS)
MAX_REQUEST_BYTES = 5 * 1024 * 1024  # the server's default TRACKD_MAX_REQUEST_BYTES
_FRAME = len(b'{"events":[]}')
_RETRYABLE = frozenset({408, 425, 429})


class HttpSink:
    """Posts `{"events": [...]}` with the bearer token; the server stamps the tenant.

    A batch goes out in requests the server takes: at most `max_events` events and
    `max_request_bytes` bytes each (the server's limits; a server set to take less answers
    413, and the request is halved). The answer is read per event: those accepted are
    delivered, those refused are rejected with the server's reason.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        max_events: int = MAX_EVENTS_PER_REQUEST,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self._max_events = max_events
        self._max_bytes = max_request_bytes
        self._url = base_url.rstrip("/") + "/v1/events"
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        # Made here, in the delivery's event loop, because a client's connections belong to
        # the loop that opened them.
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout)

    async def send(self, batch: Sequence[Wire]) -> SendResult:
        result = SendResult()
        for request in requests(batch, self._max_events, self._max_bytes):
            await self._post(request, result)
        return result

    async def _post(self, events: Sequence[Wire], result: SendResult) -> None:
        body = b'{"events":[' + b",".join(e[2] for e in events) + b"]}"
        try:
            response = await self._client.post(self._url, content=body, headers=self._headers)
        except httpx.TransportError as exc:
            raise RetryableError(f"POST {self._url} failed: {exc!r}") from exc
        status = response.status_code
        if status == 202:
            result.delivered += len(events)
            return
        body_json = _json(response)
        if status == 207:
            _count_results(body_json, result)
            return
        message = _message(body_json) or response.text[:200]
        if status == 422 and _code(body_json) == "invalid_event":
            # Nothing in the batch was accepted; each event was refused for its own reason.
            details = _error(body_json).get("details")
            if isinstance(details, list):
                _count_results({"results": details}, result)
            else:
                result.rejected.extend((e[0], message) for e in events)
            return
        if status == 413:
            if len(events) == 1:  # alone over the server's limit: that event is refused
                result.rejected.append((events[0][0], f"too large for the server: {message}"))
                return
            middle = len(events) // 2
            await self._post(events[:middle], result)
            await self._post(events[middle:], result)
            return
        if status in _RETRYABLE or status >= 500:
            raise RetryableError(
                f"POST {self._url} answered {status}: {message}", _retry_after(response)
            )
        hint = " (pass token= a service token: `trackd token create --role service`)"
        raise RefusedError(
            f"POST {self._url} refused {len(events)} events with {status}: {message}"
            + (hint if status in (401, 403) else "")
        )

    async def close(self) -> None:
        await self._client.aclose()


def requests(batch: Sequence[Wire], max_events: int, max_bytes: int) -> Iterator[Sequence[Wire]]:
    """`batch` cut, in order, into requests of at most `max_events` events and `max_bytes`
    bytes; an event over `max_bytes` by itself goes alone (the server judges it)."""
    start, size = 0, _FRAME
    for index, event in enumerate(batch):
        grown = size + len(event[2]) + (index > start)  # a comma between events
        if index > start and (index - start >= max_events or grown > max_bytes):
            yield batch[start:index]
            start, grown = index, _FRAME + len(event[2])
        size = grown
    if start < len(batch):
        yield batch[start:]


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error(body: dict[str, Any]) -> dict[str, Any]:
    error = body.get("error")
    return error if isinstance(error, dict) else {}


def _code(body: dict[str, Any]) -> str | None:
    code = _error(body).get("code")
    return code if isinstance(code, str) else None


def _message(body: dict[str, Any]) -> str | None:
    message = _error(body).get("message")
    return message if isinstance(message, str) else None


def _count_results(body: dict[str, Any], out: SendResult) -> None:
    results = body.get("results")
    if not isinstance(results, list):
        out.delivered += int(body.get("accepted") or 0)
        return
    for item in results:
        if not isinstance(item, dict):
            continue
        if item.get("status") == "accepted":
            out.delivered += 1
            continue
        error = item.get("error")
        reason = error.get("message") if isinstance(error, dict) else None
        event_id = item.get("id")
        out.rejected.append(
            (event_id if isinstance(event_id, str) else None, str(reason or "rejected"))
        )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return min(float(value), 60.0)
    except ValueError:
        return None
