"""The OpenAPI document: every error status a route can answer, with trackd's error schema.

FastAPI documents only a 422 of its own shape. trackd's errors all leave as
`{"error": {"code", "message"}}` (trackd.api.errors), and which ones an operation can answer
follows from what it takes (`_statuses`); a status a route declares itself gets the error
body too. The document is completed when FastAPI builds it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from trackd.domain.events import (
    ActionResultData,
    EventEnvelope,
    PlanEventData,
    TaskProgressEvent,
    TaskStateChanged,
)

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_MEANINGS = {
    400: "A rule was broken; the message says which and what to change.",
    401: "No bearer token, or an unknown or revoked one.",
    403: "The token's role or user may not do this.",
    404: "No such object in the token's tenant.",
    409: "The request conflicts with the object's current state.",
    415: "The content type is neither JSON (`application/json`, CloudEvents structured or "
    "batched) nor a binary-mode event (`ce-*` headers).",
    413: "The request body is over the size limit (TRACKD_MAX_REQUEST_BYTES).",
    422: "Malformed: a parameter or the body does not validate, or its JSON breaks the JSON "
    "policy (NaN or Infinity, a lone surrogate, NUL, an integer past 64 bits, deeper than "
    "TRACKD_JSON_MAX_DEPTH); the message names where.",
    503: "Not available just now (the database is busy or the bus is down); send it again.",
}


class ErrorBody(BaseModel):
    code: str = Field(description="A machine-readable code, e.g. `not_found`.")
    message: str = Field(description="What went wrong and what to do about it.")
    details: Any = Field(default=None, description="Per-item results, where a route has them.")


class ErrorOut(BaseModel):
    """Every error trackd answers."""

    error: ErrorBody


def self_contained(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` put in place, to document a field that a route
    validates by hand (so that it can answer in its own words) as precisely as a model."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    result: dict[str, Any] = inline(schema)
    return result


def event_body(max_events: int, example: dict[str, Any]) -> dict[str, Any]:
    """The documented body of POST /v1/events in every mode: one envelope or a batch of them
    as JSON or as CloudEvents (structured, batched), or binary mode (`ce-*` headers, the data
    as the body), with the payloads trackd folds spelled out so a client (or a fuzzer) can
    reach their fields.

    The route reads the body itself and judges each event (a batch may be partly accepted),
    so this is documentation, derived from the models that validate.
    """
    envelope = EventEnvelope.model_json_schema()
    payloads = (TaskProgressEvent, TaskStateChanged, PlanEventData, ActionResultData)
    data = {
        "anyOf": [
            *(model.model_json_schema() for model in payloads),
            {"type": "object", "additionalProperties": True},
        ]
    }
    envelope["properties"]["data"] = {"anyOf": [*data["anyOf"], {"type": "null"}], "default": None}
    events = {"type": "array", "items": envelope, "minItems": 1, "maxItems": max_events}
    batch = {"type": "object", "properties": {"events": events}, "required": ["events"]}
    binary = "Binary mode: the event's data, its attributes in `ce-*` headers."
    return {
        "parameters": [
            {
                "name": f"ce-{name}",
                "in": "header",
                "required": False,
                "description": f"Binary mode: the event's `{name}` attribute, percent-encoded.",
                "schema": {"type": "string"},
            }
            for name in _BINARY_ATTRIBUTES
        ],
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {"anyOf": [envelope, batch]},
                    "examples": {
                        "one": {"summary": "One envelope", "value": example},
                        "batch": {"summary": "A batch", "value": {"events": [example]}},
                    },
                },
                "application/cloudevents+json": {
                    "schema": envelope,
                    "example": example,
                },
                "application/cloudevents-batch+json": {"schema": events, "example": [example]},
                "text/plain": {"schema": {"type": "string"}, "example": binary},
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                },
            }
        },
    }


# The attributes binary mode is documented with; any other `ce-<name>` header is read too.
_BINARY_ATTRIBUTES = (
    "id",
    "source",
    "type",
    "specversion",
    "time",
    "topic",
    "subject",
    "correlationid",
    "traceid",
    "parenteventid",
    "planid",
)


def install(app: FastAPI) -> None:
    """Complete the app's OpenAPI document with its routes' error statuses."""
    generate = app.openapi
    documented: set[int] = set()

    def openapi() -> dict[str, Any]:
        schema = generate()
        # FastAPI builds the document again when routes change; complete each build once.
        if id(schema) not in documented:
            document_errors(schema)
            documented.add(id(schema))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_errors(schema: dict[str, Any]) -> None:
    """Add each operation's error statuses to `schema`, in place, with trackd's error body
    (replacing FastAPI's own 422)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorBody, ErrorOut):
        components[model.__name__] = model.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
    reference = {"$ref": "#/components/schemas/ErrorOut"}
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            declared = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
            for status in sorted(_statuses(method.upper(), operation) | declared):
                documented = responses.get(str(status), {})
                responses[str(status)] = {
                    "description": documented.get("description") or _MEANINGS[status],
                    "content": {"application/json": {"schema": reference}},
                }
    # FastAPI's validation error shapes are not what trackd answers.
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def _statuses(method: str, operation: dict[str, Any]) -> set[int]:
    """What an operation can answer, from what it takes: a token (401, 403, and 503 when the
    database that resolves it is busy), path parameters (404), parameters (422), a body or a
    write (400, 409 for a token's writes, 413, 422)."""
    parameters = operation.get("parameters", [])
    writes = method in _WRITES
    statuses: set[int] = set()
    if operation.get("security"):
        statuses |= {400, 401, 403, 503}
        if writes:
            statuses.add(409)
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if parameters or writes or "requestBody" in operation:
        statuses.add(422)
    if writes or "requestBody" in operation:
        statuses |= {400, 413}
    return statuses
