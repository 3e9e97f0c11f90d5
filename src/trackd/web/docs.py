"""`/docs`: Swagger UI served from the package (swagger-ui-dist, vendored under
static/swagger-ui/), so the API's docs render on a machine with no internet."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse, Response

from trackd.errors import NotFound

SWAGGER_UI_VERSION = "5.35.0"
ASSETS = "/docs/assets"
_MEDIA = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}

router = APIRouter(include_in_schema=False)


@cache
def _asset(name: str) -> bytes:
    # Read on first use: the bundle is 1.7 MB that a server never asked for /docs need not hold.
    return resources.files("trackd.web").joinpath("static", "swagger-ui", name).read_bytes()


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    """Swagger UI over this app's OpenAPI schema, with every file from this server."""
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}",
        swagger_css_url=f"{ASSETS}/swagger-ui.css?v={SWAGGER_UI_VERSION}",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
    )


@router.get(ASSETS + "/{name}")
async def asset(name: str) -> Response:
    """Swagger UI's script, stylesheet and icon."""
    if name not in _MEDIA:
        raise NotFound(f"no docs asset {name!r}")
    return Response(
        _asset(name), media_type=_MEDIA[name], headers={"Cache-Control": "public, max-age=86400"}
    )
