"""trackd's events sent as a CloudEvents producer sends them: with the CloudEvents Python SDK.

The SDK (2.x, `cloudevents.core`) writes structured and binary mode; it has no batched mode
yet, so a batch is the JSON array of the SDK's own structured encodings, which is what the
JSON batch format is (CloudEvents JSON format, section 4).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cloudevents.core.bindings.http import HTTPMessage, to_binary_event, to_structured_event
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"


def cloud_event(raw: dict[str, Any]) -> CloudEvent:
    """A trackd envelope (as `trackd.testing.EventFactory` builds it) as an SDK event, its
    extensions under their CloudEvents names (`trace_id` → `traceid`)."""
    attributes = {
        key.replace("_", ""): value
        for key, value in raw.items()
        if key != "data" and value is not None
    }
    if isinstance(attributes.get("time"), str):
        attributes["time"] = datetime.fromisoformat(attributes["time"])
    return CloudEvent(attributes=attributes, data=raw.get("data"))


def structured(event: CloudEvent) -> HTTPMessage:
    return to_structured_event(event)


def binary(event: CloudEvent) -> HTTPMessage:
    return to_binary_event(event)


def batched(events: list[CloudEvent]) -> HTTPMessage:
    json_format = JSONFormat()
    body = b"[" + b",".join(json_format.write(e) for e in events) + b"]"
    return HTTPMessage(headers={"content-type": BATCH_CONTENT_TYPE}, body=body)


MODES = {"structured": structured, "binary": binary}
