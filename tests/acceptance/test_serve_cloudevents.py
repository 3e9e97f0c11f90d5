"""CloudEvents in every mode to a served trackd (issue 15): the documented curls as written,
and the CloudEvents Python SDK as the client of `trackd serve` and of `trackd serve --role api`
on a Redis bus with `trackd ingest` behind it, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from procs import (
    SERVED,
    Server,
    Spawn,
    StartApi,
    assert_stopped_cleanly,
    clean_env,
    create_token,
    eventually,
    ingest_args,
    recent_start,
    wait_until_consumed,
)
from research_reads import check_research_plan

from ce_client import MODES, batched, cloud_event
from trackd.testing import EventFactory, research_workflow

DOC = Path(__file__).resolve().parents[2] / "docs" / "plans-and-tasks.md"
SECTION = "## CloudEvents over HTTP"


def documented_curls() -> list[str]:
    """The curl commands of the docs' CloudEvents section, one per mode, as written."""
    text = DOC.read_text()
    section = text[text.index(SECTION) :]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    commands = re.split(r"\n(?=# )", block.group(1).strip())
    return [c.split("\n", 1)[1] for c in commands]


def sdk_requests(mode: str, events: list[dict[str, Any]]) -> list[tuple[dict[str, str], bytes]]:
    """The requests a producer using the SDK sends for `events` in `mode`."""
    if mode == "batched":
        message = batched([cloud_event(e) for e in events])
        return [(message.headers, message.body)]
    return [(m.headers, m.body) for m in (MODES[mode](cloud_event(e)) for e in events)]


ALL_MODES = [*MODES, "batched"]


def test_the_documented_curls_work_as_written(server: Server) -> None:
    curls = documented_curls()
    assert len(curls) == 3
    env = clean_env(TRACKD_URL=server.url, TOKEN=server.tokens["acme"])
    for command in curls:
        done = subprocess.run(
            ["bash", "-c", command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["accepted"] == 1, done.stdout
    headers = {"Authorization": f"Bearer {server.tokens['acme']}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as client:
        task = client.get("/v1/tracker/tasks/ce-task").json()["task"]
        assert (task["state"], task["progress"], task["plan_id"]) == ("completed", 1.0, "ce-plan")
        timeline = client.get("/v1/tracker/plans/ce-plan/timeline").json()
        assert [e["event_id"] for e in timeline["events"]] == ["ce-1", "ce-2", "ce-3"]
        assert timeline["trace_id"] == "trace-ce"


@pytest.mark.parametrize("mode", ALL_MODES)
def test_the_sdk_in_each_mode_to_trackd_serve(server: Server, mode: str) -> None:
    t0 = recent_start()
    plan_id, trace_id, prefix = f"plan-{mode}", f"trace-{mode}", f"{mode}-"
    events = research_workflow(
        EventFactory(now=t0, id_prefix=mode), plan_id, trace_id, task_prefix=prefix
    )
    auth = {"Authorization": f"Bearer {server.tokens['acme']}"}
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        for headers, body in sdk_requests(mode, events):
            response = client.post("/v1/events", content=body, headers={**headers, **auth})
            assert response.status_code == 202, response.text
        check_research_plan(
            client, auth, events, plan_id=plan_id, trace_id=trace_id, prefix=prefix, t0=t0
        )


async def test_the_api_role_publishes_what_each_mode_accepted(
    redis_url: str,
    database_url: str,
    redis_prefixes: list[str],
    redis_bus_url: str,
    spawn: Spawn,
    start_api: StartApi,
) -> None:
    bus = redis_bus_url
    token = await asyncio.to_thread(create_token, "acme", database=database_url)
    api, url = await start_api(database_url, bus)

    t0 = recent_start()
    auth = {"Authorization": f"Bearer {token}"}
    plans = {}
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        for mode in ALL_MODES:
            plan_id, trace_id, prefix = f"plan-{mode}", f"trace-{mode}", f"{mode}-"
            events = research_workflow(
                EventFactory(now=t0, id_prefix=mode), plan_id, trace_id, task_prefix=prefix
            )
            plans[mode] = (plan_id, trace_id, prefix, events)
            for headers, body in sdk_requests(mode, events):
                response = await client.post(
                    "/v1/events", content=body, headers={**headers, **auth}
                )
                # 202 once Redis holds the events: nothing ingests them yet.
                assert response.status_code == 202, response.text
        assert (await client.get("/v1/tracker/plans/plan-binary", headers=auth)).status_code == 404

        ingest = spawn("ingest", ingest_args(database_url, bus, "ingest-0"))
        for plan_id, *_ in plans.values():

            async def completed(plan_id: str = plan_id) -> bool:
                plan = await client.get(f"/v1/tracker/plans/{plan_id}", headers=auth)
                return plan.status_code == 200 and plan.json()["status"] == "completed"

            await eventually(completed, ingest)
        await wait_until_consumed(redis_url, redis_prefixes[0], [ingest])

    with httpx.Client(base_url=url, timeout=30.0) as sync_client:
        for plan_id, trace_id, prefix, events in plans.values():
            await asyncio.to_thread(
                check_research_plan,
                sync_client,
                auth,
                events,
                plan_id=plan_id,
                trace_id=trace_id,
                prefix=prefix,
                t0=t0,
            )
    assert_stopped_cleanly(ingest)
    assert_stopped_cleanly(api, SERVED)
