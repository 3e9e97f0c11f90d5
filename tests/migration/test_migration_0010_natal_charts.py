"""0010 adds natal charts: a database filled at 0009 is upgraded and read back, and the new
table holds one chart per user of a tenant."""

from __future__ import annotations

from datetime import UTC, datetime

from old_database import DatabaseAt

from trackd.store.repos import module_config, natal_charts

BIRTH = datetime(1990, 5, 1, 10, 0, tzinfo=UTC)
POINTS = {"sun": {"longitude": 40.5, "sign": "taurus", "degree": 10.5, "retrograde": False}}


async def test_data_at_0009_reads_back_and_charts_are_stored(database_at: DatabaseAt) -> None:
    old = await database_at("0009")
    async with old.sessions() as session, session.begin():
        await module_config.write(
            session, "acme", "lunar", config={}, is_active=False, expected_version=0
        )

    await old.upgrade()

    async with old.sessions() as session, session.begin():
        for tenant in ("acme", "globex"):
            await natal_charts.put(
                session,
                tenant,
                "ann",
                birth_at=BIRTH,
                birth_zone=None,
                birth_local=None,
                latitude=48.85,
                longitude=2.35 if tenant == "acme" else -3.0,
                points=POINTS,
            )
    async with old.sessions() as session:
        configs = await module_config.visible(session, "acme", "lunar")
        chart = await natal_charts.get(session, "acme", "ann")
        other = await natal_charts.get(session, "globex", "ann")
        missing = await natal_charts.get(session, "acme", "bob")
        buckets = await natal_charts.points_in_buckets(session, "acme", range(0, 1024))
    assert [(c.tenant_id, c.is_active) for c in configs] == [("acme", False)]
    assert chart is not None and other is not None and missing is None
    assert (chart.birth_at, chart.latitude, chart.longitude, chart.points) == (
        BIRTH,
        48.85,
        2.35,
        POINTS,
    )
    assert other.longitude == -3.0
    assert buckets == [("ann", POINTS)]
