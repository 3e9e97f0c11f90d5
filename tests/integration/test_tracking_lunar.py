"""The lunar module end to end on SQLite and PostgreSQL: the `lunar` source computes the Moon
in a real poll (no network), the history keeps it, and a read takes the slow parts (next
phases, ingress, void of course) from the stored reading and only the phase from `now`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from poll_fakes import Clock
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.domain.astronomy import moon_phase, moon_state
from trackd.modules import service as modules
from trackd.modules.tracking import history_policy
from trackd.scheduling import Poller, PollerOptions, request_poll
from trackd.settings import Settings
from trackd.snapshots.service import latest_snapshot
from trackd.sources import registry
from trackd.sources.base import InvalidTarget
from trackd.sources.lunar import LunarSource

Sessions = async_sessionmaker[AsyncSession]
TENANT = "acme"
NOW = datetime(2026, 9, 6, 17, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[Clock]:
    clock = Clock(NOW)
    registry.registry.register(LunarSource(clock=clock), replace=True)
    try:
        yield clock
    finally:
        registry.registry.unregister("lunar")


def refuse_network() -> httpx.AsyncClient:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"the lunar source asked the network for {request.url}")

    return httpx.AsyncClient(transport=httpx.MockTransport(refuse))


async def test_a_lunar_poll_stores_the_moon_and_reads_use_it(
    sessions: Sessions, clock: Clock
) -> None:
    async with sessions() as session, session.begin():
        await request_poll(session, TENANT, "lunar", {"bodies": ["sun", "mars"]}, now=NOW)
    worker = Poller(
        None,
        sessions,
        PollerOptions(consumer="worker-1"),
        client_factory=refuse_network,
        policies=history_policy,
        clock=clock,
        settings=Settings(),
    )
    assert await worker.run_due() == 1

    async with sessions() as session:
        stored = await latest_snapshot(session, TENANT, "lunar", "moon")
    assert stored is not None and stored.taken_at == NOW
    expected = moon_state(NOW, ("sun", "mars"))
    assert stored.data["phase"]["phase_angle"] == pytest.approx(expected.phase.phase_angle)
    assert stored.data["next_phases"]["full_moon"] == expected.next_phases["full_moon"].isoformat()
    assert stored.data["void_of_course"]["bodies"] == ["sun", "mars"]

    later = NOW + timedelta(minutes=40)
    async with sessions() as session, session.begin():
        await modules.write_config(
            session, TENANT, "lunar", config={"void_of_course_bodies": ["sun", "mars"]}, version=0
        )
    async with sessions() as session:
        [lunar] = [
            c for c in await modules.synthesis(session, TENANT, None, later) if c.module == "lunar"
        ]
    assert lunar.data["polled_at"] == NOW.isoformat()
    assert lunar.data["stale"] is False and lunar.data["age_seconds"] == 2400.0
    assert lunar.data["next_phases"] == stored.data["next_phases"]
    assert lunar.data["phase"]["phase_angle"] == pytest.approx(moon_phase(later).phase_angle)
    assert lunar.metadata.as_of == later


async def test_a_reading_for_other_bodies_is_not_used(sessions: Sessions, clock: Clock) -> None:
    # The tenant's config names Sun … Saturn (the default); the stored reading only the Sun.
    async with sessions() as session, session.begin():
        await request_poll(session, TENANT, "lunar", {"bodies": ["sun"]}, now=NOW)
    worker = Poller(None, sessions, PollerOptions(consumer="w"), clock=clock, settings=Settings())
    assert await worker.run_due() == 1
    async with sessions() as session:
        [lunar] = [
            c for c in await modules.synthesis(session, TENANT, None, NOW) if c.module == "lunar"
        ]
    assert lunar.data["polled_at"] is None
    assert lunar.data["void_of_course"]["bodies"][-1] == "saturn"


def test_the_lunar_target_is_checked() -> None:
    source = LunarSource()
    assert source.validate({}) == {
        "bodies": ["sun", "mercury", "venus", "mars", "jupiter", "saturn"]
    }
    for bad in ({"bodies": []}, {"bodies": ["moon"]}, {"planet": "x"}, []):
        with pytest.raises(InvalidTarget):
            source.validate(bad)  # type: ignore[arg-type]
