"""The dashboard under /ui: server-rendered pages over the tracker's read models.

A browser logs in once with an API token (kept in an HttpOnly cookie); every page reads the
token's tenant only. Templates are Jinja2 with autoescaping, the CSS and JS are two small
static files served from the package, and nothing is fetched from anywhere else.
"""

from __future__ import annotations

from fastapi import APIRouter

from trackd.web import (
    docs,
    pages,
    pages_cosmic,
    pages_jobs,
    pages_league,
    pages_observer,
    pages_sources,
)

ROUTERS: tuple[APIRouter, ...] = (
    pages.router,
    docs.router,
    pages_league.router,
    pages_sources.router,
    pages_jobs.router,
    pages_cosmic.router,
    pages_observer.router,
)
"""The dashboard's routes (and the API's /docs page), in the order they are mounted."""

__all__ = ["ROUTERS"]
