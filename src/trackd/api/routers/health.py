"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from trackd import __version__
from trackd.access.deps import RuntimeDep, SessionDep
from trackd.api.errors import ApiError
from trackd.bus.urls import scheme

router = APIRouter(tags=["health"])


@router.get("/health", responses={503: {"description": "The database cannot be reached."}})
async def health(session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    """Whether trackd can reach its database; 503 when it cannot."""
    try:
        await session.execute(text("SELECT 1"))
    except Exception as exc:
        raise ApiError(503, f"database unreachable: {type(exc).__name__}") from None
    ingest = runtime.ingest
    return {
        "status": "ok",
        "version": __version__,
        "database": runtime.engine.dialect.name,
        "bus": scheme(runtime.settings.bus_url),
        "ingest": None
        if ingest is None
        else {
            "batches": ingest.stats.batches,
            "folded": ingest.stats.folded,
            "rejected": ingest.stats.rejected,
            "failures": ingest.stats.failures,
        },
    }
