"""Fuzzing every route of a served trackd from its own OpenAPI document (schemathesis).

Each generated request, valid or deliberately malformed, is sent as an admin, a user and a
reader of one tenant to trackd served over HTTP on a migrated SQLite database. Every answer
must be below 500 and match the document (status documented, content type, body schema).
After the run, every list route of the tenant must still answer: nothing accepted broke a
later read. Generation is derandomized with a fixed number of examples, so a run is
reproducible and bounded whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import HealthCheck
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from trackd.app import create_app
from trackd.domain.access import Role
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.store.engine import create_engine, session_factory
from trackd.store.repos import tokens
from trackd.testing import EventFactory
from trackd.testing_server import LocalServer

pytestmark = pytest.mark.timeout(600)

TENANT = "acme"
PROFILE = (
    "https://rocketleague.tracker.network/rocket-league/profile/steam/76561198000000101/overview"
)
ROLES = {"admin": Role.ADMIN, "user": Role.USER, "reader": Role.READER}
# Examples per operation and generation mode; each is sent once per role.
MAX_EXAMPLES = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Every list route of a tenant, and which of the roles may list it (the bot's routes are for
# service and admin tokens).
LISTS = [
    ("/v1/tracker/plans/plan-1/tasks", set(ROLES)),
    ("/v1/tracker/plans/plan-1/timeline", set(ROLES)),
    ("/v1/tracker/metrics", set(ROLES)),
    ("/api/trackers", set(ROLES)),
    ("/api/trackers/me", set(ROLES)),
    ("/v1/me/channels", set(ROLES)),
    ("/v1/me/journal", set(ROLES)),
    ("/v1/me/settings", set(ROLES)),
    ("/v1/modules", set(ROLES)),
    ("/v1/tracking/all", set(ROLES)),
    ("/v1/tracking/history/solar_tracking", set(ROLES)),
    ("/v1/observer/runs", set(ROLES)),
    ("/v1/observer/findings", set(ROLES)),
    ("/internal/trackers/schedule/guild/g1", {"admin"}),
    ("/internal/trackers/guilds/g1", {"admin"}),
]


@dataclass(frozen=True)
class Target:
    url: str
    auth: dict[str, dict[str, str]]


async def _issue_tokens(database_url: str) -> dict[str, str]:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as s, s.begin():
            return {
                who: await tokens.create(s, TENANT, user_id=f"{who}-1", role=role)
                for who, role in ROLES.items()
            }
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def target(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    path = tmp_path_factory.mktemp("fuzz") / "trackd.db"
    shutil.copy(sqlite_template, path)
    database_url = f"sqlite+aiosqlite:///{path}"
    # Its own loop in its own thread: the test session's loop is pytest-asyncio's.
    with ThreadPoolExecutor(1) as pool:
        issued = pool.submit(asyncio.run, _issue_tokens(database_url)).result()
    settings = Settings(
        database_url=database_url,
        scheduler_enabled=False,
        worker_enabled=False,
        notifier_enabled=False,
        publish_timeout_s=10,
    )
    with LocalServer(create_app(Runtime.build(settings)), lifespan="on") as server:
        target = Target(
            server.url, {who: {"Authorization": f"Bearer {t}"} for who, t in issued.items()}
        )
        _seed(target)
        yield target


def _seed(target: Target) -> None:
    """Objects of each kind in the tenant, so that the reads after the fuzz render real rows."""
    admin = target.auth["admin"]
    with httpx.Client(base_url=target.url, headers=admin) as client:
        registered = client.post(
            "/internal/trackers/register-multiple",
            json={"userId": "user-1", "guildId": "g1", "urls": [PROFILE]},
        )
        assert registered.status_code == 201, registered.text
        f = EventFactory(now=datetime.now(UTC) - timedelta(minutes=5), plan_id="plan-1")
        events = [f.request("task-1", "job.requested"), f.progress("task-1", "running", 0.5)]
        posted = client.post("/v1/events", json={"events": events})
        assert posted.status_code == 202, posted.text


def _schema() -> schemathesis.BaseSchema:
    # The document does not depend on the database: an app that never starts gives it.
    app = create_app(Runtime.build(Settings(database_url="sqlite+aiosqlite:///:memory:")))
    loaded = schemathesis.openapi.from_dict(app.openapi())
    # Hypothesis must not fail a run for being slow: the machine may be busy.
    loaded.config.update(suppress_health_check=[HealthCheck.too_slow])
    # The coverage phase's boundary cases are not bounded by max_examples: off keeps the
    # run's size fixed (the positive and negative fuzzing still reach the boundaries).
    loaded.config.phases.coverage.enabled = False
    loaded.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=MAX_EXAMPLES,
        deterministic=True,
        database="none",
        # The fuzz sends each role's token itself.
        with_security_parameters=False,
    )
    return loaded


schema = _schema()


@schema.parametrize()
def test_every_route_as_every_role(case: schemathesis.Case, target: Target) -> None:
    for who in ROLES:
        response = case.call(base_url=target.url, headers=target.auth[who])
        case.validate_response(response, checks=CHECKS)


def test_every_list_route_still_answers_after_the_fuzz(target: Target) -> None:
    for path, allowed in LISTS:
        for who in ROLES:
            response = httpx.get(f"{target.url}{path}", headers=target.auth[who])
            expected = 200 if who in allowed else 403
            assert response.status_code == expected, (path, who, response.text)
