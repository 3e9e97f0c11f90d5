"""The `trackd` command line, run as a subprocess the way people run it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from procs import (
    SERVED,
    Process,
    assert_stopped_cleanly,
    clean_env,
    free_port,
    recent_start,
    start,
    trackd,
    trackd_executable,
    wait_healthy,
)

from trackd.app import create_app
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.testing import EventFactory, research_workflow


def test_token_create_prints_the_token_alone_on_the_last_line(database_file: str) -> None:
    done = trackd(
        "token", "create", "--tenant", "acme", "--role", "reader", "--database-url", database_file
    )

    assert done.returncode == 0, done.stderr
    token = done.stdout.splitlines()[-1]
    assert re.fullmatch(r"trk_[A-Za-z0-9_-]{40,}", token), done.stdout
    assert done.stderr.strip() == "created a reader token for tenant acme"


def test_token_create_with_a_bad_role_fails_with_one_line(database_file: str) -> None:
    done = trackd(
        "token", "create", "--tenant", "acme", "--role", "overlord", "--database-url", database_file
    )

    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "--role" in lines[0]
    assert "admin, user, service, reader" in lines[0]


async def publish_through_the_api(database_url: str, token: str, events: list[Any]) -> None:
    """POST events to the HTTP API of a runtime on `database_url`, in this process."""
    runtime = Runtime.build(Settings(database_url=database_url))
    await runtime.start()
    try:
        transport = httpx.ASGITransport(app=create_app(runtime, manage=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://trackd") as client:
            response = await client.post(
                "/v1/events", json={"events": events}, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 202, response.text
    finally:
        await runtime.stop()


async def test_plans_show_prints_a_table(database_file: str) -> None:
    created = trackd("token", "create", "--tenant", "acme", "--database-url", database_file)
    assert created.returncode == 0, created.stderr
    t0 = recent_start()
    await publish_through_the_api(
        database_file, created.stdout.splitlines()[-1], research_workflow(EventFactory(now=t0))
    )

    done = trackd("plans", "show", "plan-123", "--tenant", "acme", "--database-url", database_file)

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "plan plan-123" in out
    assert "status=completed" in out
    assert "state=report ready" in out
    assert "tasks=3  completed=3  failed=0" in out
    for header in ("task", "type", "state", "progress", "attempts", "agent", "duration s"):
        assert header in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    assert set(rows) == {"goal-1", "task-1", "task-2"}
    for task_id, (event_type, agent, duration) in {
        "goal-1": ("research.goal", "research-planner", "255.00"),
        "task-1": ("web.search.requested", "web-search-worker", "90.00"),
        "task-2": ("analyze.text", "analysis-worker", "95.00"),
    }.items():
        cells = [c.strip() for c in rows[task_id].split("│")[1:-1]]
        assert cells[:6] == [task_id, event_type, "completed", "100%", "1", agent]
        assert cells[-1] == duration


def test_plans_show_an_unknown_plan_fails_with_one_line(database_file: str) -> None:
    assert trackd("migrate", "--database-url", database_file).returncode == 0

    done = trackd("plans", "show", "no-such-plan", "--database-url", database_file)

    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == ["error: plan 'no-such-plan' not found"]


# The demo polls NOAA's stand-in and computes the Moon at start; on a busy machine it can
# take a while.
READING_TIMEOUT_S = 120


def test_demo_serves_the_plans_it_lists(tmp_path: Path) -> None:
    port = free_port()
    # `make run` starts .venv/bin/trackd from a shell that has not activated the virtualenv.
    venv_bin = str(Path(trackd_executable()).parent)
    path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep) if d != venv_bin)
    env = clean_env(PATH=path)
    demo = start(
        "demo", ["demo", "--no-live", "--port", str(port)], tmp_path, env=env, cwd=tmp_path
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, demo)
        text = demo.output()
        assert f"{base}/docs" in text
        token = re.search(r"token\s+(trk_\S+)", text)
        assert token is not None, text
        plans = re.findall(
            r"^  ((?:research|data-pipeline|support-triage)-\d{3})\s+(\w+)",
            text,
            flags=re.MULTILINE,
        )
        assert len(plans) == 6, text
        user_token = re.search(
            r"^  user\s+(trk_\S+) \(user demo, with a natal chart\)$", text, re.M
        )
        assert user_token is not None, text
        curls = re.findall(r"curl -H \"Authorization: Bearer (\S+)\" (\S+)", text)
        user_curls = [url for bearer, url in curls if bearer == user_token.group(1)]
        curls = [(bearer, url) for bearer, url in curls if bearer != user_token.group(1)]
        assert len(curls) == 4, text
        assert user_curls == [
            f"{base}/v1/tracking/transits",
            f"{base}/v1/tracking/upcoming",
            f"{base}/v1/observer/findings",
        ]
        assert f"  {base}/ui/observer" in text
        show_transits = re.search(
            r"^  (\S+ tracking show transits --user demo --tenant default --database-url \S+)$",
            text,
            re.M,
        )
        assert show_transits is not None, text
        shown = re.search(r"^  (\S+ plans show data-pipeline-005 --database-url \S+)$", text, re.M)
        assert shown is not None, text
        assert (tmp_path / "trackd-demo.db").exists()
        # As a user pastes it, in a shell whose PATH does not have the virtualenv's bin.
        pasted = subprocess.run(  # noqa: S602 - the point is to run the line as printed
            shown.group(1),
            shell=True,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert pasted.returncode == 0, (shown.group(1), pasted.stderr)
        assert "data-pipeline-005" in pasted.stdout
        printed = subprocess.run(  # noqa: S602 - the point is to run the line as printed
            show_transits.group(1),
            shell=True,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert printed.returncode == 0, (show_transits.group(1), printed.stderr)
        shown_transits = json.loads(printed.stdout)
        assert shown_transits["module"] == "transits" and shown_transits["data"]["aspects"]

        headers = {"Authorization": f"Bearer {token.group(1)}"}
        with httpx.Client(timeout=30.0, headers=headers) as client:
            for bearer, url in curls:
                assert bearer == token.group(1)
                assert client.get(url).status_code == 200, url
            statuses = {}
            for plan_id, listed in plans:
                plan = client.get(f"{base}/v1/tracker/plans/{plan_id}")
                assert plan.status_code == 200, plan.text
                body = plan.json()
                assert body["status"] == listed
                assert body["task_count"] >= 4
                statuses[plan_id] = body["status"]
            assert set(statuses.values()) == {"completed", "failed", "running"}

            retried = client.get(f"{base}/v1/tracker/plans/data-pipeline-002/tasks").json()
            assert max(t["attempts"] for t in retried["tasks"]) == 2
            failed = client.get(f"{base}/v1/tracker/plans/data-pipeline-005").json()
            assert failed["failed_tasks"] >= 1
            assert failed["current_state"].startswith("failed at ")
            triage = client.get(f"{base}/v1/tracker/plans/support-triage-003/tasks").json()
            anomalies = [
                a
                for t in triage["tasks"]
                for a in client.get(f"{base}/v1/tracker/tasks/{t['task_id']}").json()["anomalies"]
            ]
            assert [a["kind"] for a in anomalies] == ["conflicting_terminal"]
            for period in ("1h", "24h"):
                metrics = client.get(f"{base}/v1/tracker/metrics", params={"period": period})
                assert metrics.json()["total_tasks"] > 10
                assert 0 < metrics.json()["success_rate"] < 1

            # Cosmic tracking: the demo's scheduler and worker poll the local NOAA stand-in
            # and compute the Moon at once.
            solar = wait_for_reading(client, f"{base}/v1/tracking/solar", demo)
            assert solar["stale"] is False and solar["data"]["storm"]["level"] == "quiet"
            assert solar["data"]["wind_speed"] == 340.9
            lunar = wait_for_reading(client, f"{base}/v1/tracking/lunar", demo)
            assert lunar["data"]["polled_at"] is not None
            assert client.get(f"{base}/ui/cosmic").status_code in (200, 303)

        # The demo user's transits: real aspects to their chart, computed for now.
        user_headers = {"Authorization": f"Bearer {user_token.group(1)}"}
        with httpx.Client(timeout=30.0, headers=user_headers) as client:
            answer = client.get(user_curls[0])
            assert answer.status_code == 200, answer.text
            found = answer.json()
            assert found["user_id"] == "demo" and found["stale"] is False
            assert set(found["positions"]) >= {"sun", "moon", "pluto"}
            assert found["aspects"], found
            for aspect in found["aspects"]:
                assert aspect["aspect"] in {
                    "conjunction",
                    "sextile",
                    "square",
                    "trine",
                    "opposition",
                }
                assert 0 <= aspect["orb"] <= 8
            ahead = client.get(user_curls[1])
            assert ahead.status_code == 200, ahead.text
            assert ahead.json()["chart"] is True and ahead.json()["exact_transits"]
            # The demo user's journal and observer run: mood follows the Moon's phase.
            observed = client.get(user_curls[2])
            assert observed.status_code == 200, observed.text
            drivers = {f["driver"] for f in observed.json()["findings"]}
            assert "lunar_phase" in drivers, observed.json()
    finally:
        demo.stop()
    assert_stopped_cleanly(demo, SERVED)


def wait_for_reading(client: httpx.Client, url: str, process: Process) -> dict[str, Any]:
    """The first answer of `url` whose reading was polled (the demo polls at start)."""
    deadline = time.monotonic() + READING_TIMEOUT_S
    while time.monotonic() < deadline:
        process.check_running()
        body: dict[str, Any] = client.get(url).json()
        if body["data"].get("storm") or body["data"].get("polled_at"):
            return body
        time.sleep(0.2)
    pytest.fail(f"{url} had no polled reading in {READING_TIMEOUT_S} s:\n{process.output()}")
