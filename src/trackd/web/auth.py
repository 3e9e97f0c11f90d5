"""Dashboard logins: the API token in a cookie, resolved as the API resolves a bearer token.

A browser cannot add an `Authorization` header when it follows a link, so the login form takes
a token once and keeps it in a cookie that scripts cannot read (HttpOnly) and that is never sent
with a request another site starts (SameSite=Strict). Only the token's digest is stored on the
server, as for the API; a revoked token logs the browser out on its next page.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from starlette.responses import Response

from trackd.api.deps import SessionDep
from trackd.domain.access import Principal
from trackd.store.repos import tokens

COOKIE = "trackd_token"
COOKIE_PATH = "/ui"
MAX_TOKEN_CHARS = 200  # trackd's tokens are 47 characters; anything far longer is not one


class LoginRequired(Exception):
    """No cookie, or one whose token is unknown or revoked."""


async def viewer(request: Request, session: SessionDep) -> Principal:
    """The principal of the cookie's token; any role may read the dashboard."""
    token = request.cookies.get(COOKIE)
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise LoginRequired
    principal = await tokens.resolve(session, token)
    if principal is None:
        raise LoginRequired
    return principal


Viewer = Annotated[Principal, Depends(viewer)]


def same_origin(request: Request) -> bool:
    """Whether a form post came from a page of this server (or from a client that sends no
    Origin header, which no browser posting a form from another site does)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def set_login(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_login(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
