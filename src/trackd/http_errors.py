"""The JSON shape of trackd's HTTP errors, `{"error": {"code", "message"}}`: the code for each
status, the body, and how a request that did not validate is described.

Below both trackd's API and the job-tracking router that applications mount (`trackd.jobs`),
so that each answers errors alike without the library importing trackd's app.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    503: "unavailable",
}


def code_for(status: int) -> str:
    """The error code trackd's JSON errors carry for an HTTP status."""
    return _CODES.get(status, "error")


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return {"error": body}


def describe_invalid(exc: RequestValidationError) -> str:
    """One `where: what` per problem of a request that did not validate."""
    problems = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            problems.append("request body is not valid JSON")
            continue
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(problems)
