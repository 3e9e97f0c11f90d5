"""Rendering pages: the Jinja2 environment, error pages and the headers every page carries."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from trackd.web.auth import CSRF_FIELD, csrf_of

# Pages show one tenant's data: no caching by proxies, no framing, and nothing loaded or run
# that does not come from trackd itself, so an escaping slip still could not run a script.
# same-origin, not no-referrer: with no-referrer browsers send `Origin: null` with the login
# form's post, which the same-origin check must refuse; other sites still learn nothing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


# The navigation of every page, in order: (label, path). A new page adds its line here.
NAV: list[tuple[str, str]] = [
    ("Plans", "/ui"),
    ("Tasks", "/ui/tasks"),
    ("Metrics", "/ui/metrics"),
    ("Trackers", "/ui/trackers"),
    ("Polls", "/ui/polls"),
    ("Schedules", "/ui/schedules"),
    ("Outbox", "/ui/outbox"),
    ("Jobs", "/ui/jobs"),
    ("Cosmic", "/ui/cosmic"),
    ("Observer", "/ui/observer"),
]


class PageError(Exception):
    """A page that cannot be shown, with the status and a message for the person reading it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def when(value: datetime | None) -> str:
    """A time as UTC to the second, or '-'."""
    if value is None:
        return "-"
    return value.strftime("%Y-%m-%d %H:%M:%S") + "Z"


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


MAX_LINE = 200


def first_line(value: str | None) -> str:
    """The first line of a message, cut at MAX_LINE characters: a traceback's first line
    says little, so its last line (the exception) is taken instead."""
    if not value:
        return ""
    lines = [line for line in value.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    line = line.strip()
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def event_message(data: dict[str, Any] | None) -> str:
    """What an event's payload says, in a few words: its message, state, progress or error."""
    if not data:
        return ""
    parts = []
    if data.get("new_state"):
        parts.append(f"→ {data['new_state']}")
    elif data.get("state"):
        parts.append(str(data["state"]))
    if isinstance(data.get("progress"), int | float):
        parts.append(percent(float(data["progress"])))
    for key in ("message", "reason"):
        if data.get(key):
            parts.append(str(data[key]))
    if data.get("success") is False:
        parts.append("failed: " + first_line(str(data.get("error") or "")))
    return first_line(" · ".join(parts))


def segment(value: str) -> str:
    """A value as one URL path segment (a '/' in a plan id included)."""
    return quote(value, safe="")


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("trackd.web", "templates"),
    # Every template is HTML: whatever a producer put in an id or a message is escaped.
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    when=when,
    seconds=seconds,
    percent=percent,
    segment=segment,
    first_line=first_line,
    event_message=event_message,
)
templates = Jinja2Templates(env=_env)


def page(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> Response:
    """Render a template as a page with the dashboard's security headers, its navigation and
    the CSRF value its forms post back."""
    full = {"nav": NAV, "csrf_field": CSRF_FIELD, "csrf": csrf_of(request), "principal": None}
    full.update(context or {})
    return templates.TemplateResponse(
        request, name, full, status_code=status, headers=SECURITY_HEADERS
    )


def error_page(request: Request, status: int, message: str) -> Response:
    """An error as a page of the dashboard: the same layout and navigation as the others."""
    return page(request, "error.html", {"status": status, "message": message}, status=status)
