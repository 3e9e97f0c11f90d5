from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from trackd.api import errors


def _app(message: str) -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.get("/write")
    async def write() -> None:
        raise OperationalError("INSERT ...", {}, Exception(message))

    return app


async def _get(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/write")


async def test_a_busy_sqlite_database_is_a_503_to_retry() -> None:
    response = await _get(_app("database is locked"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "unavailable"


async def test_other_operational_errors_stay_internal_errors() -> None:
    response = await _get(_app("disk I/O error"))
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal"
