"""`trackd tracking` run as a subprocess, as printed: backfill of the solar history from a local
fake of GFZ Potsdam (refused beyond retention, idempotent on re-run), show, and schedule."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from procs import clean_env, trackd

from fakes.feed_server import FakeFeeds, gfz_fixture

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def gfz() -> Iterator[FakeFeeds]:
    with FakeFeeds() as fake:
        fake.serve("/app/json/", gfz_fixture("kp-2024-05-09.json"))
        yield fake


def test_backfill_solar_from_gfz_then_again(database_file: str, gfz: FakeFeeds) -> None:
    env = clean_env(
        TRACKD_ALLOW_PRIVATE_FETCH="1",
        TRACKD_SNAPSHOT_RETENTION='{"noaa_swpc": {"days": 36500}}',
        TRACKD_GFZ_KP_URL=gfz.url,
    )
    command = (
        "tracking", "backfill", "solar", "--since", "2024-05-09", "--until", "2024-05-11",
        "--tenant", "acme", "--database-url", database_file,
    )  # fmt: skip

    refused = trackd(*command, env=env)
    assert refused.returncode == 2
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the solar history keeps 180 days")
    assert "--set history_days=" in last

    keep = trackd(
        "modules", "config", "solar", "--tenant", "acme", "--set", "history_days=36500",
        "--database-url", database_file,
    )  # fmt: skip
    assert keep.returncode == 0, keep.stderr

    done = trackd(*command, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "solar history of acme: 24 Kp readings stored, 0 already there"
    assert "start=2024-05-09T00%3A00%3A00Z" in gfz.queries[-1]
    again = trackd(*command, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "solar history of acme: 0 Kp readings stored, 24 already there"

    bad = trackd("tracking", "backfill", "solar", "--since", "May 9", env=env)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == (
        "error: --since is a date, YYYY-MM-DD, not 'May 9'"
    )
    down = trackd(*command, "--gfz-url", "http://127.0.0.1:9", env=env)
    assert down.returncode == 2 and "GFZ failed" in down.stderr.strip().splitlines()[-1]


def test_show_and_schedule(database_file: str) -> None:
    lunar = trackd("tracking", "show", "lunar", "--tenant", "acme", "--database-url", database_file)
    assert lunar.returncode == 0, lunar.stderr
    shown = json.loads(lunar.stdout)
    assert shown["module"] == "lunar" and shown["stale"] is False
    assert 0 <= shown["data"]["phase"]["illumination"] <= 1

    solar = trackd("tracking", "show", "solar", "--tenant", "acme", "--database-url", database_file)
    shown = json.loads(solar.stdout)
    assert shown["data"] == {"reading": None} and shown["stale"] is True

    unknown = trackd("tracking", "show", "tides", "--database-url", database_file)
    assert unknown.returncode == 2
    assert (
        unknown.stderr.strip()
        .splitlines()[-1]
        .startswith("error: unknown tracking module 'tides'; known: lunar, solar")
    )

    first = trackd("tracking", "schedule", "--tenant", "acme", "--database-url", database_file)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["lunar", "solar"]
    assert all(line.endswith("created") for line in lines)
    again = trackd("tracking", "schedule", "--tenant", "acme", "--database-url", database_file)
    assert all(line.endswith("already there") for line in again.stdout.strip().splitlines())


def test_show_transits_for_a_user_and_all(database_file: str) -> None:
    db = ("--tenant", "acme", "--database-url", database_file)
    stored = trackd(
        "natal", "set", "--user", "ada", "--birth", "1990-05-01T12:00:00",
        "--timezone", "Europe/Paris", "--latitude", "48.85", "--longitude", "2.35", *db,
    )  # fmt: skip
    assert stored.returncode == 0, stored.stderr

    shown = trackd("tracking", "show", "transits", "--user", "ada", *db)
    assert shown.returncode == 0, shown.stderr
    reading = json.loads(shown.stdout)
    assert (reading["module"], reading["stale"]) == ("transits", False)
    assert set(reading["data"]["positions"]) >= {"sun", "moon", "pluto"}
    aspects = reading["data"]["aspects"]
    assert aspects, "a chart always has some planet in orb of some natal point"
    assert set(aspects[0]) == {"transiting", "natal", "aspect", "orb", "exact", "applying"}

    everything = trackd("tracking", "show", "all", "--user", "ada", *db)
    assert everything.returncode == 0, everything.stderr
    modules = json.loads(everything.stdout)["modules"]
    assert set(modules) == {"lunar", "solar", "transits"}
    assert modules["transits"]["data"]["aspects"] and modules["transits"]["stale"] is False

    nobody = trackd("tracking", "show", "transits", *db)
    assert nobody.returncode == 2
    assert nobody.stderr.strip().splitlines()[-1] == (
        "error: transits is kept per user: add --user USER"
    )
    chartless = trackd("tracking", "show", "transits", "--user", "bob", *db)
    assert chartless.returncode == 2
    assert "`trackd natal set`" in chartless.stderr.strip().splitlines()[-1]
