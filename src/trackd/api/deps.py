"""The API's request dependencies: the calling principal of a bearer token, and whether it may
send events (`EventSender`). The runtime and the session per request are `trackd.access.deps`,
shared with the dashboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from trackd.access.deps import RuntimeDep, SessionDep
from trackd.access.tokens import principal_of
from trackd.api.errors import ApiError
from trackd.domain.access import Principal
from trackd.league.service import League

_bearer = HTTPBearer(auto_error=False, description="A token from `trackd token create`.")


def get_league(runtime: RuntimeDep) -> League:
    """The league trackers feature over the runtime's settings and bus."""
    return League(runtime.settings, runtime.bus, wake_workers=runtime.poll_requests_heard)


LeagueDep = Annotated[League, Depends(get_league)]


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
    principal = await principal_of(session, credentials.credentials)
    if principal is None:
        raise ApiError(401, "unknown or revoked token", headers=challenge)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_event_sender(principal: CurrentPrincipal) -> Principal:
    """The calling principal, if its role may send events (`POST /v1/events`, `/v1/traces`)."""
    if not principal.may_publish:
        raise ApiError(
            403,
            f"role {principal.role} may not publish events; "
            "use a token with role service, user or admin",
        )
    return principal


# A principal allowed to send events; not to be confused with the SDK's delivery loop
# (`trackd.sdk.delivery`) or the jobs library's event publishers (`trackd.jobs.events`).
EventSender = Annotated[Principal, Depends(get_event_sender)]
