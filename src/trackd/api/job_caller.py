"""The job-tracking router's caller in trackd's own app: who asks is the bearer token's."""

from __future__ import annotations

from fastapi import Depends

from trackd.api.deps import get_principal
from trackd.domain.access import Principal
from trackd.jobs.api import Caller, CallerDependency


def trackd_bearer() -> CallerDependency:
    """trackd's bearer tokens: the tenant comes from the token; readers may not write.

    Only for a router mounted in trackd's own app (it needs the app's runtime):
    `tasks_router(registry, caller=trackd_bearer())`.
    """

    async def caller(principal: Principal = Depends(get_principal)) -> Caller:  # noqa: B008
        return Caller(principal.tenant_id, principal.may_publish, principal.role.value)

    return caller
