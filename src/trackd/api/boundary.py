"""The request boundary: every body is size-limited while it is read and judged by the JSON
policy before any route sees it.

One ASGI middleware rather than a check per route, so a route added later is covered too.
The size is counted as the stream arrives: a chunked body has no Content-Length to trust.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trackd.api.responses import FastJSONResponse
from trackd.domain.jsonpolicy import JsonPolicy, JsonRefused, check, parse
from trackd.http_errors import code_for, error_body


class RequestBoundary:
    """Refuse a body over `max_bytes` (413) or holding JSON the policy refuses (422).

    Args:
        app: the application behind the boundary.
        max_bytes: the largest body accepted, on every route.
        policy: the JSON policy request bodies must meet.
        batches: path → key of routes that take a batch under that key (`{"events": [...]}`)
            or as a JSON array (CloudEvents' batched mode), and accept or refuse its items
            one by one; the boundary leaves those items to the route, which judges each by
            the same policy.
        inflating: paths of routes that decode a `Content-Encoding` (gzip) themselves and
            judge the inflated body by the same policy and size limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        policy: JsonPolicy,
        batches: Mapping[str, str] | None = None,
        inflating: Collection[str] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.policy = policy
        self.batches = dict(batches or {})
        self.inflating = frozenset(inflating)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _refusal(413, self._too_large())(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _refusal(413, self._too_large())(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        # A compressed body (OTLP exporters gzip theirs) is judged by the route that inflates
        # it, which bounds its inflated size too. Elsewhere the header changes nothing: those
        # routes read the body as sent, so it is judged as sent.
        encoded = headers.get("content-encoding", "identity").strip().lower() != "identity"
        inflated_later = encoded and scope["path"] in self.inflating
        if body and not inflated_later and is_json(headers.get("content-type")):
            try:
                self._judge(parse(body), scope["path"])
            except JsonRefused as exc:
                await _refusal(422, str(exc))(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _judge(self, value: Any, path: str) -> None:
        batch_key = self.batches.get(path)
        if batch_key is not None and isinstance(value, dict) and batch_key not in value:
            return  # a batch route's single item: the route judges it as it judges items
        if batch_key is not None and isinstance(value, list):
            return  # a batch route's array of items: the route judges each
        check(value, self.policy, skip=batch_key)

    def _too_large(self) -> str:
        return (
            f"request body over the limit of {self.max_bytes} bytes "
            f"({self.max_bytes / (1024 * 1024):g} MiB); send less, or smaller batches"
        )


def _refusal(status: int, message: str) -> FastJSONResponse:
    return FastJSONResponse(error_body(code_for(status), message), status_code=status)


def is_json(content_type: str | None) -> bool:
    """Whether a body of this content type is JSON: the test FastAPI applies before parsing
    a body as JSON (none given, `application/json`, or a `+json` type)."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")
