"""The OpenAPI document lists every error status a route answers, with trackd's error body."""

from __future__ import annotations

from typing import Any

from trackd.app import create_app
from trackd.runtime import Runtime
from trackd.settings import Settings


def document() -> dict[str, Any]:
    app = create_app(Runtime.build(Settings(database_url="sqlite+aiosqlite:///:memory:")))
    schema: dict[str, Any] = app.openapi()
    return schema


def test_every_error_status_is_documented_with_the_error_body() -> None:
    schema = document()
    error = {"$ref": "#/components/schemas/ErrorOut"}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            expected = set()
            if operation.get("security"):
                expected |= {"401", "403"}
            if "{" in path:
                expected.add("404")
            if "requestBody" in operation:
                expected |= {"413", "422"}
            assert expected <= set(responses), (method, path, sorted(responses))
            for status, response in responses.items():
                if int(status) >= 400:
                    content = response["content"]["application/json"]["schema"]
                    assert content == error, (method, path, status)
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert set(schema["components"]["schemas"]["ErrorOut"]["required"]) == {"error"}


def test_bodies_are_typed_down_to_their_fields() -> None:
    schema = document()
    events = schema["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    envelope, batch = events["schema"]["anyOf"]
    payloads = envelope["properties"]["data"]["anyOf"]
    assert {"task_id", "state", "progress"} <= set(payloads[0]["properties"])
    assert batch["properties"]["events"]["maxItems"] == 500
    guild = schema["components"]["schemas"]["GuildSettingsIn"]["properties"]["mmr"]["anyOf"][0]
    assert "algorithm" in guild["properties"]
    assert "$ref" not in str(guild)


def test_events_document_every_cloudevents_mode() -> None:
    operation = document()["paths"]["/v1/events"]["post"]
    content = operation["requestBody"]["content"]
    assert {
        "application/json",
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
        "text/plain",
        "application/octet-stream",
    } <= set(content)
    assert content["application/cloudevents-batch+json"]["schema"]["maxItems"] == 500
    assert "id" in content["application/cloudevents+json"]["schema"]["properties"]
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert {"ce-id", "ce-source", "ce-type", "ce-time", "ce-specversion", "ce-traceid"} <= headers
    assert {"202", "207", "400", "413", "415", "422"} <= set(operation["responses"])
