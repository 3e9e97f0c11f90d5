"""Request dependencies: the runtime, a session per request, and the calling principal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.api.errors import ApiError
from trackd.domain.access import Principal
from trackd.league.service import League
from trackd.runtime import Runtime
from trackd.store.repos import tokens

_bearer = HTTPBearer(auto_error=False, description="A token from `trackd token create`.")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_league(runtime: RuntimeDep) -> League:
    """The league trackers feature over the runtime's settings and bus."""
    return League(runtime.settings, runtime.bus, wake_workers=runtime.poll_requests_heard)


LeagueDep = Annotated[League, Depends(get_league)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_principal(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            401,
            "missing bearer token: send 'Authorization: Bearer <token>' "
            "(create one with `trackd token create --tenant T`)",
            headers=challenge,
        )
    principal = await tokens.resolve(session, credentials.credentials)
    if principal is None:
        raise ApiError(401, "unknown or revoked token", headers=challenge)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_publisher(principal: CurrentPrincipal) -> Principal:
    if not principal.may_publish:
        raise ApiError(
            403,
            f"role {principal.role} may not publish events; "
            "use a token with role service, user or admin",
        )
    return principal


Publisher = Annotated[Principal, Depends(get_publisher)]
