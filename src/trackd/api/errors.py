"""Every error leaves as `{"error": {"code": ..., "message": ...}}` with the right status.

trackd's shared errors (`trackd.errors`: RuleBroken 400, Forbidden 403, NotFound 404,
Conflict 409) are mapped here, once: routes let a feature's error through instead of
mapping it by hand.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from trackd.errors import BusUnavailableError, TrackdError, status_of
from trackd.http_errors import code_for, describe_invalid, error_body

log = logging.getLogger(__name__)


class ApiError(HTTPException):
    """An HTTP error with a machine-readable code and a message a client can act on."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(status, message, headers=headers)
        self.code = code or code_for(status)
        self.details = details


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = getattr(exc, "code", None) or code_for(exc.status_code)
        return JSONResponse(
            error_body(code, str(exc.detail), getattr(exc, "details", None)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("invalid", describe_invalid(exc)), status_code=422)

    @app.exception_handler(TrackdError)
    async def _refused(request: Request, exc: TrackdError) -> JSONResponse:
        status = status_of(exc)
        if status is None:  # one of trackd's own (a setting, a missing extra): not the caller's
            return await _unexpected(request, exc)
        return JSONResponse(error_body(code_for(status), str(exc)), status_code=status)

    @app.exception_handler(BusUnavailableError)
    async def _bus_down(_: Request, exc: BusUnavailableError) -> JSONResponse:
        return JSONResponse(
            error_body("unavailable", f"{exc}; send the events again (ids are idempotent)"),
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(OperationalError)
    async def _database_busy(request: Request, exc: OperationalError) -> JSONResponse:
        # SQLite lets one writer in at a time; one that waited past busy_timeout gets
        # "database is locked". Nothing the client sent was wrong: it may send it again.
        if "database is locked" not in str(exc.orig):
            return await _unexpected(request, exc)
        log.warning("database busy on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body("unavailable", "the database is busy with other writes; try again"),
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body("internal", "internal error; see the server log"), status_code=500
        )
