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


def publishing_user(principal: Principal) -> str | None:
    """Whom an event is published as, for task ownership: the user of a `user` token, or
    None for `service` and `admin` tokens (producers, trusted with every task of the tenant).

    A `user` token issued without a user id publishes as "" and so owns only what it started.
    """
    return (principal.user_id or "") if principal.role is Role.USER else None


def may_publish_about(publisher: str | None, owner: str | None) -> bool:
    """Whether an event published as `publisher` may change an existing task owned by `owner`
    (None: a producer's task). The first principal to publish a task owns it."""
    return publisher is None or publisher == owner


def not_owner_message(task_id: str) -> str:
    """Why an event about someone else's task was refused."""
    return (
        f"task {task_id!r} belongs to another principal; a user token may only publish events "
        "about tasks it started (producers use a service token)"
    )
