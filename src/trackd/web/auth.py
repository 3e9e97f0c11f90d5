"""Dashboard logins: the API token in a cookie, resolved as the API resolves a bearer token.

A browser cannot add an `Authorization` header when it follows a link, so the login form takes
a token once and keeps it in a cookie that scripts cannot read (HttpOnly) and that is never sent
with a request another site starts (SameSite=Strict). Only the token's digest is stored on the
server, as for the API; a revoked token logs the browser out on its next page.

Form posts (log in, log out) are refused unless they come from a page of this server, by two
checks that each stand on their own:

- a CSRF token: the login page sets a random value in a SameSite=Strict cookie and repeats it
  in the form; a post must carry both, equal. Another site can neither read the cookie nor
  make the browser send it, so it cannot forge the pair, whatever the browser does with
  Origin and Referer;
- Origin, then Referer: a foreign value is refused. Pages send `Referrer-Policy: same-origin`,
  so every current engine (Chromium, Firefox, WebKit) sends this server's own origin with its
  form posts; `Origin: null` (a sandboxed frame, a `data:` page, or a no-referrer policy) is
  judged by the Referer, and is refused when that is missing or foreign too.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from starlette.responses import Response

from trackd.access.deps import SessionDep
from trackd.access.tokens import principal_of
from trackd.domain.access import Principal

COOKIE = "trackd_token"
CSRF_COOKIE = "trackd_csrf"
CSRF_FIELD = "csrf"
COOKIE_PATH = "/ui"
MAX_CSRF_CHARS = 100


class LoginRequired(Exception):
    """No cookie, or one whose token is unknown or revoked."""


async def viewer(request: Request, session: SessionDep) -> Principal:
    """The principal of the cookie's token; any role may read the dashboard."""
    principal = await principal_of(session, request.cookies.get(COOKIE, ""))
    if principal is None:
        raise LoginRequired
    return principal


Viewer = Annotated[Principal, Depends(viewer)]


def _same_host(url: str, request: Request) -> bool:
    return urlsplit(url).netloc.lower() == request.headers.get("host", "").lower()


def same_origin(request: Request) -> bool:
    """Whether a form post's Origin (or, when that is `null` or absent, its Referer) names this
    server. With neither header there is nothing to judge by: the CSRF token decides alone."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        return _same_host(origin, request)
    referer = request.headers.get("referer")
    if referer is not None:
        return _same_host(referer, request)
    # `Origin: null` with no Referer is what a sandboxed or data: page sends: never ours.
    return origin is None


def csrf_matches(request: Request, sent: str | None) -> bool:
    """Whether the form's CSRF value equals the browser's CSRF cookie (both present)."""
    kept = request.cookies.get(CSRF_COOKIE)
    if not kept or not sent or len(sent) > MAX_CSRF_CHARS:
        return False
    return hmac.compare_digest(kept.encode(), sent.encode())


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def csrf_of(request: Request) -> str:
    """The browser's CSRF value, for the forms of the page being drawn ('' before login)."""
    value = request.cookies.get(CSRF_COOKIE, "")
    return value if len(value) <= MAX_CSRF_CHARS else ""


def _cookie(response: Response, request: Request, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _forget(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def set_csrf(response: Response, request: Request, value: str) -> None:
    _cookie(response, request, CSRF_COOKIE, value)


def set_login(response: Response, request: Request, token: str) -> None:
    _cookie(response, request, COOKIE, token)


def clear_login(response: Response, request: Request) -> None:
    _forget(response, request, COOKIE)
    _forget(response, request, CSRF_COOKIE)
