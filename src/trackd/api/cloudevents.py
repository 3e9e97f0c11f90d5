"""The CloudEvents HTTP protocol binding: a request to `POST /v1/events` as raw events.

Four shapes come in, told apart by the content type and the `ce-` headers:
- batched mode (`application/cloudevents-batch+json`): a JSON array of structured events;
- structured mode (`application/cloudevents+json`): one event, attributes and data in the body;
- binary mode (any other content type, with `ce-*` headers): the attributes in `ce-<name>`
  headers, percent-decoded; the body is the data, its content type the `content-type` header;
- trackd's own JSON forms (`application/json`, no `ce-` header): one envelope or
  `{"events": [...]}`.
What comes out is what a structured body would have held, so every mode goes through the
same validation (`intake.check`) and answers in the same words.

Binary-mode data whose content type is JSON (`application/json`, `*/*+json`, or none) is parsed
as JSON; any other data is kept exactly, base64-encoded, in `data_base64` with its
`datacontenttype`, as the CloudEvents JSON format carries data that is not JSON.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

from trackd.api.boundary import is_json
from trackd.domain.jsonpolicy import parse

STRUCTURED: Final = "application/cloudevents+json"
BATCHED: Final = "application/cloudevents-batch+json"
HEADER_PREFIX: Final = "ce-"
# Extension attributes whose CloudEvents type is Integer or Boolean: a header carries them
# as text, which the envelope (strict about numbers) would refuse.
_INTEGERS: Final = frozenset({"sequence", "attempt"})
_BOOLEANS: Final = {"true": True, "false": False}
_NOT_AN_OBJECT: Final = "{what} must be a JSON object"


class UnreadableRequest(ValueError):
    """A request that is not an event in any mode; `status` says how to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Received:
    """The raw events of one request, and whether they came as a batch (one result each)."""

    items: list[Any]
    batch: bool


def media_type(content_type: str | None) -> str:
    """The media type of a content-type header, lowercased, without its parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def read(headers: Mapping[str, str], body: bytes, batch_key: str) -> Received:
    """The raw events of a request to `POST /v1/events`.

    Args:
        headers: the request's headers (names in any case).
        body: the request's body.
        batch_key: the key of trackd's own batch form (`{"events": [...]}`).

    Raises:
        UnreadableRequest: the body is not an event or a batch in any mode (422), or is in a
            CloudEvents format other than JSON (415).
    """
    content_type = headers.get("content-type")
    media = media_type(content_type)
    if media == BATCHED:
        items = _json(body)
        if not isinstance(items, list):
            raise UnreadableRequest(422, f"a {BATCHED} body must be a JSON array of events")
        return Received(items, batch=True)
    if media == STRUCTURED:
        return Received([_object(body, "a structured event")], batch=False)
    if media.startswith("application/cloudevents"):
        raise UnreadableRequest(
            415,
            f"{media} is not a CloudEvents format trackd reads; send {STRUCTURED}, "
            f"{BATCHED}, or binary mode (ce-* headers)",
        )
    attributes = {
        name.lower().removeprefix(HEADER_PREFIX): unquote(value)
        for name, value in headers.items()
        if name.lower().startswith(HEADER_PREFIX)
    }
    if attributes:
        return Received([_binary(attributes, content_type, body)], batch=False)
    if not is_json(content_type):
        raise UnreadableRequest(
            415,
            f"{media} is not JSON; send application/json, {STRUCTURED}, {BATCHED}, "
            "or binary mode (ce-* headers, the data in the body)",
        )
    value = _json(body)
    if isinstance(value, dict) and batch_key in value:
        items = value[batch_key]
        if not isinstance(items, list):
            raise UnreadableRequest(422, f"{batch_key} must be a list of event objects")
        return Received(items, batch=True)
    if isinstance(value, list):
        raise UnreadableRequest(
            422,
            f"a JSON array of events is a batch: send it as {BATCHED}, "
            f'or as {{"{batch_key}": [...]}}',
        )
    if not isinstance(value, dict):
        raise UnreadableRequest(422, _NOT_AN_OBJECT.format(what="an event"))
    return Received([value], batch=False)


def _binary(attributes: dict[str, Any], content_type: str | None, body: bytes) -> dict[str, Any]:
    """A binary-mode event as its structured equivalent."""
    for name in _INTEGERS & attributes.keys():
        if attributes[name].isascii() and attributes[name].isdigit():
            attributes[name] = int(attributes[name])
    flag = attributes.get("success", "").lower()
    if flag in _BOOLEANS:
        attributes["success"] = _BOOLEANS[flag]
    # The body is the data: headers named like the data members do not stand in for it.
    attributes.pop("data", None)
    attributes.pop("data_base64", None)
    if content_type is not None:
        attributes["datacontenttype"] = content_type
    if body:
        if is_json(content_type):
            attributes["data"] = _json(body)
        else:
            attributes["data_base64"] = base64.b64encode(body).decode("ascii")
    return attributes


def _object(body: bytes, what: str) -> dict[str, Any]:
    value = _json(body)
    if not isinstance(value, dict):
        raise UnreadableRequest(422, _NOT_AN_OBJECT.format(what=what))
    return value


def _json(body: bytes) -> Any:
    if not body:
        raise UnreadableRequest(422, "the body is empty; send an event or a batch of events")
    try:
        return parse(body)
    except ValueError as exc:
        raise UnreadableRequest(422, str(exc)) from None
