"""`trackd modules` run as a subprocess: listing, showing and changing a module's config, and
a change made by that other process reaching a running runtime over Redis."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from procs import trackd

from trackd.runtime import Runtime
from trackd.settings import Settings

pytestmark = pytest.mark.timeout(120)


def test_list_show_set_and_refuse(database_file: str) -> None:
    listed = trackd("modules", "list", "--database-url", database_file)
    assert listed.returncode == 0, listed.stderr
    names = {m["name"]: m for m in json.loads(listed.stdout)}
    assert names["solar"]["layer"] == "tracking" and names["solar"]["is_active"] is True

    changed = trackd(
        "modules", "config", "solar", "--tenant", "acme", "--set", "bz_south_nt=-6",
        "--set", 'flare_classes=["X"]', "--database-url", database_file,
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    shown = json.loads(changed.stdout)
    assert (shown["version"], shown["config"]["bz_south_nt"]) == (1, -6)
    assert shown["config"]["flare_classes"] == ["X"]

    again = trackd(
        "modules", "config", "solar", "--tenant", "acme", "--set", "storm_kp=official_3h",
        "--inactive", "--database-url", database_file,
    )  # fmt: skip
    shown = json.loads(again.stdout)
    assert (shown["version"], shown["is_active"]) == (2, False)
    assert (shown["config"]["bz_south_nt"], shown["config"]["storm_kp"]) == (-6, "official_3h")
    glob = json.loads(trackd("modules", "config", "solar", "--database-url", database_file).stdout)
    assert (glob["version"], glob["config"]["bz_south_nt"]) == (0, -10)

    bad = trackd(
        "modules", "config", "solar", "--set", "wind_speed_kms=-1", "--database-url", database_file
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: invalid configuration")
    assert "config.wind_speed_kms" in bad.stderr
    unknown = trackd("modules", "config", "tides", "--database-url", database_file)
    assert unknown.returncode == 2
    assert "known modules: lunar, natal, observer, solar, transits" in unknown.stderr


async def test_a_change_from_another_process_reaches_a_running_runtime(
    database_file: str, redis_url: str
) -> None:
    bus_url = f"{redis_url}?partitions=2&prefix=trackd-test-{uuid.uuid4().hex[:12]}"
    settings = Settings(database_url=database_file, bus_url=bus_url, module_config_ttl_s=3600)
    runtime = Runtime.build(settings, ingest=False, consumer="server")
    await runtime.start()
    try:
        assert runtime.module_config_listener and runtime.module_configs
        await asyncio.wait_for(runtime.module_config_listener.ready.wait(), 30)
        cache = runtime.module_configs
        assert (await cache.get("acme", "lunar")).config["void_of_course_bodies"][0] == "sun"
        changed = await asyncio.to_thread(
            trackd, "modules", "config", "lunar", "--set", 'void_of_course_bodies=["mars"]',
            "--database-url", database_file, "--bus-url", bus_url,
        )  # fmt: skip
        assert changed.returncode == 0, changed.stderr
        assert "not announced" not in changed.stderr
        # A global change: every tenant's cached copy goes.
        while (await cache.get("acme", "lunar")).config["void_of_course_bodies"] != ["mars"]:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    finally:
        await runtime.stop()
