"""Who may do what: roles and the principal a bearer token stands for."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # everything in its tenant, including configuration
    USER = "user"  # a person: reads, and publishes events of their own
    SERVICE = "service"  # a producer or bot: publishes events, calls internal routes
    READER = "reader"  # read-only dashboards and queries


PUBLISHERS = frozenset({Role.ADMIN, Role.USER, Role.SERVICE})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant, user and role a token was issued for."""

    tenant_id: str
    user_id: str | None
    role: Role

    @property
    def may_publish(self) -> bool:
        return self.role in PUBLISHERS
