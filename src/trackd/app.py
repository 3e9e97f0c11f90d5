"""trackd's HTTP application: the API and the dashboard, side by side in one app.

`trackd.api` and `trackd.web` never import each other; this module is the one place that
puts them together.
"""

from __future__ import annotations

from fastapi import FastAPI

from trackd import web
from trackd.api.app import create_api
from trackd.jobs.api import DomainRegistry
from trackd.runtime import Runtime


def create_app(
    runtime: Runtime, *, manage: bool = True, jobs: DomainRegistry | None = None
) -> FastAPI:
    """The app over a runtime; with `manage`, the app starts and stops the runtime.

    `jobs` are `trackd.jobs` domains to serve under `/v1/tasks/{domain}` with trackd's tokens
    (tenants kept apart) and to show on the dashboard under `/ui/jobs`.
    """
    app = create_api(runtime, manage=manage, jobs=jobs)
    for router in web.ROUTERS:
        app.include_router(router)
    return app
