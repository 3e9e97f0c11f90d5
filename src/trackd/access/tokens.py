"""A token as the API (bearer header) and the dashboard (cookie) both resolve it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.access import Principal
from trackd.store.repos import tokens

MAX_TOKEN_CHARS = 200  # trackd's tokens are 47 characters; anything far longer is not one


async def principal_of(session: AsyncSession, token: str) -> Principal | None:
    """The principal of a live token; None for an unknown, revoked or implausibly long one."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    return await tokens.resolve(session, token)
