"""Serving the HTTP API over a runtime: shared by `trackd serve` and `trackd demo`."""

from __future__ import annotations

from trackd.runtime import Runtime
from trackd.settings import Settings


async def serve_runtime(runtime: Runtime, settings: Settings) -> None:
    """Serve the API over a runtime until interrupted."""
    # Imported here so that commands which do not serve start quickly.
    import uvicorn

    from trackd.app import create_app

    config = uvicorn.Config(
        create_app(runtime),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
    await uvicorn.Server(config).serve()
