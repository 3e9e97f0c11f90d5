"""The dashboard under /ui: server-rendered pages over the tracker's read models.

A browser logs in once with an API token (kept in an HttpOnly cookie); every page reads the
token's tenant only. Templates are Jinja2 with autoescaping, the CSS and JS are two small
static files served from the package, and nothing is fetched from anywhere else.
"""

from __future__ import annotations

from trackd.web.pages import router

__all__ = ["router"]
