"""API tokens: random bearer secrets of which only a SHA-256 digest is stored.

The tokens are 256-bit random values, so a fast digest is enough: there is no password to
guess, and lookups stay a single index probe.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.access import Principal, Role
from trackd.store.models import ApiToken, new_id

PREFIX = "trk_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create(session: AsyncSession, tenant_id: str, *, user_id: str | None, role: Role) -> str:
    """Store a new token and return it; it cannot be recovered later."""
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            id=new_id(),
            tenant_id=tenant_id,
            user_id=user_id,
            role=role.value,
            token_hash=digest(token),
            prefix=token[:10],
        )
    )
    await session.flush()
    return token


async def resolve(session: AsyncSession, token: str) -> Principal | None:
    """The principal of a live token, or None for an unknown or revoked one."""
    # Columns, not the ORM object: every API request runs this.
    row = (
        await session.execute(
            select(ApiToken.tenant_id, ApiToken.user_id, ApiToken.role).where(
                ApiToken.token_hash == digest(token), ApiToken.revoked_at.is_(None)
            )
        )
    ).first()
    if row is None:
        return None
    return Principal(row.tenant_id, row.user_id, Role(row.role))


async def user_exists(session: AsyncSession, tenant_id: str, user_id: str) -> bool:
    """Whether `tenant_id` has issued a token to `user_id` (trackd knows users by tokens)."""
    found = await session.scalar(
        select(ApiToken.id)
        .where(ApiToken.tenant_id == tenant_id, ApiToken.user_id == user_id)
        .limit(1)
    )
    return found is not None
