"""The SDK against a real trackd app: in-process (ASGI) from async code, and a served app on
a free port from sync code and from a process that exits without closing its tracker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from runtime_support import quick_ingest, running, started

from trackd.app import create_app
from trackd.domain.access import Role
from trackd.runtime import Runtime
from trackd.sdk import Tracker, TrackerDeliveryFailed, TrackerStats, current_task, tracked
from trackd.settings import Settings
from trackd.store.engine import create_engine, session_factory
from trackd.store.repos import tokens
from trackd.testing_server import LocalServer

TENANT = "acme"


async def service_token(database_url: str) -> str:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as s, s.begin():
            return await tokens.create(s, TENANT, user_id=None, role=Role.SERVICE)
    finally:
        await engine.dispose()


def tree_of(timeline: dict[str, Any]) -> dict[str, tuple[int, list[str]]]:
    """event id -> (depth, ids of its children), from a timeline response's tree."""
    out: dict[str, tuple[int, list[str]]] = {}

    def visit(node: dict[str, Any], depth: int) -> None:
        out[node["event_id"]] = (depth, [c["event_id"] for c in node["children"]])
        for child in node["children"]:
            visit(child, depth + 1)

    for root in timeline["tree"]:
        visit(root, 0)
    return out


# -- in-process, async ------------------------------------------------------------------------


@pytest_asyncio.fixture
async def app_client(database_url: str) -> AsyncIterator[tuple[httpx.AsyncBaseTransport, str]]:
    runtime = Runtime.build(Settings(database_url=database_url, publish_timeout_s=15))
    quick_ingest(runtime, default_tenant=TENANT)
    async with running(runtime):  # the fixture's database is migrated already
        token = await service_token(database_url)
        yield httpx.ASGITransport(app=create_app(runtime, manage=False)), token


async def test_async_code_tracks_into_a_trackd_server(
    app_client: tuple[httpx.AsyncBaseTransport, str],
) -> None:
    transport, token = app_client
    # The tenant comes from the token; what the tracker claims is overwritten.
    async with Tracker(
        "http://trackd.test", token=token, transport=transport, tenant_id="someone-else"
    ) as tracker:

        @tracked(tracker=tracker, name="web.search")
        async def search(query: str) -> tuple[str, str]:
            task = current_task()
            assert task is not None
            task.progress(0.5, f"searching {query}")
            return task.task_id, task.event_id

        async with tracker.track("research.goal", plan_id="plan-http") as goal:
            children = await asyncio.gather(search("moths"), search("bats"))
        await tracker.aflush()
        assert tracker.stats.rejected == tracker.stats.dropped == 0

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://trackd.test") as client:
        timeline = (
            await client.get("/v1/tracker/plans/plan-http/timeline", headers=headers)
        ).json()
        records = [
            (await client.get(f"/v1/tracker/tasks/{task_id}", headers=headers)).json()
            for task_id in (goal.task_id, *(child for child, _ in children))
        ]
    assert len(timeline["events"]) == 3 + 2 * 4
    tree = tree_of(timeline)
    assert [n["event_id"] for n in timeline["tree"]] == [goal.event_id]
    assert len(tree) == 11
    goal_depth, goal_children = tree[goal.event_id]
    assert goal_depth == 0
    for task_id, start in children:
        depth, below = tree[start]
        assert depth == 1 and start in goal_children
        # the child's running, progress and completed events, under its first event
        assert len(below) == 3
        assert {e["task_id"] for e in timeline["events"] if e["event_id"] in below} == {task_id}
    for record in records:
        assert record["task"]["state"] == "completed"
        assert record["task"]["duration_seconds"] is not None
        assert [t["to_state"] for t in record["transitions"]] == ["pending", "running", "completed"]


async def test_a_bad_token_is_reported_by_aflush(
    app_client: tuple[httpx.AsyncBaseTransport, str],
) -> None:
    transport, _ = app_client
    async with Tracker("http://trackd.test", token="trk_wrong", transport=transport) as tracker:
        async with tracker.track("job"):
            pass
        with pytest.raises(TrackerDeliveryFailed, match="401"):
            await tracker.aflush()
    assert tracker.stats.dropped == 3


class Counting(httpx.AsyncBaseTransport):
    """Passes requests to `inner` and keeps the status of each answer."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.seen.append(response.status_code)
        return response


async def in_one_batch(
    transport: httpx.AsyncBaseTransport,
    token: str,
    tasks: list[tuple[str, dict[str, Any]]],
    max_request_bytes: int | None = None,
) -> TrackerStats:
    """Track `(task id, data)`s, three events each, all sent as one batch; the tracker's stats."""
    async with Tracker(
        "http://trackd.test",
        token=token,
        transport=transport,
        batch_size=10_000,
        flush_interval=60,
        max_request_bytes=max_request_bytes,
    ) as tracker:
        for task_id, data in tasks:
            async with tracker.track("bulk", task_id=task_id, data=data):
                pass
        await tracker.aflush()
        return tracker.stats


async def test_requests_fit_a_server_set_to_take_less_than_the_default(database_url: str) -> None:
    limit = 16_384
    settings = Settings(database_url=database_url, publish_timeout_s=15, max_request_bytes=limit)
    async with started(settings, default_tenant=TENANT) as runtime:
        token = await service_token(database_url)
        app = httpx.ASGITransport(app=create_app(runtime, manage=False))
        for told, refused_as_too_large in ((limit, False), (None, True)):
            counting = Counting(app)
            tasks = [(f"wordy-{told}-{n}", {"text": "z" * 300, "n": n}) for n in range(60)]
            stats = await in_one_batch(counting, token, tasks, max_request_bytes=told)
            assert (stats.delivered, stats.rejected, stats.dropped) == (180, 0, 0)
            # Told the server's limit, the sink cuts the batch to fit; not told, it learns
            # from the 413 and halves.
            assert (413 in counting.seen) is refused_as_too_large
            assert counting.seen.count(202) > 1


async def test_batches_over_the_servers_limits_go_out_in_requests_it_takes(
    app_client: tuple[httpx.AsyncBaseTransport, str],
) -> None:
    transport, token = app_client
    counting = Counting(transport)
    # One batch of 600 events, in which two tasks' first events carry an integer wider than
    # trackd stores: the server refuses those two alone (207), the rest are kept.
    tasks = [(f"bulk-{n}", {"n": 2**64} if n in (3, 150) else {"n": n}) for n in range(200)]
    stats = await in_one_batch(counting, token, tasks)
    assert (stats.delivered, stats.rejected, stats.dropped) == (598, 2, 0)
    assert len(counting.seen) == 2 and 207 in counting.seen
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://trackd.test") as client:
        last = await client.get("/v1/tracker/tasks/bulk-199", headers=headers)
        refused = await client.get("/v1/tracker/tasks/bulk-150", headers=headers)
    assert last.json()["task"]["state"] == "completed"
    # Its first event was refused; the others tell the rest of its story.
    assert refused.json()["task"]["state"] == "completed"


# -- served on a port, sync ---------------------------------------------------------------------


@pytest.fixture
def served(_sqlite_database: str) -> Iterator[tuple[str, str]]:
    """trackd serving on a free port from a thread of its own: (base URL, service token)."""
    token = asyncio.run(service_token(_sqlite_database))
    runtime = Runtime.build(Settings(database_url=_sqlite_database, publish_timeout_s=15))
    quick_ingest(runtime, default_tenant=TENANT)
    with LocalServer(create_app(runtime), lifespan="on") as server:
        yield server.url, token


def read(base_url: str, token: str, path: str) -> Any:
    response = httpx.get(base_url + path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


def test_sync_code_tracks_into_a_served_trackd(served: tuple[str, str]) -> None:
    base_url, token = served

    with Tracker(base_url, token=token, batch_size=50, source="batch-job") as tracker:

        @tracked(tracker=tracker)
        def step(n: int) -> None:
            task = current_task()
            assert task is not None
            task.progress(n / 10)

        with tracker.track("nightly", plan_id="plan-sync") as root:
            for n in range(10):
                step(n)
        tracker.flush()

    timeline = read(base_url, token, "/v1/tracker/plans/plan-sync/timeline")
    assert len(timeline["events"]) == 3 + 10 * 4
    assert [n["event_id"] for n in timeline["tree"]] == [root.event_id]
    tree = tree_of(timeline)
    assert len(tree) == 43
    depth, children = tree[root.event_id]
    assert depth == 0 and len(children) == 2 + 10  # its running and completed, ten steps
    tasks = read(base_url, token, "/v1/tracker/plans/plan-sync/tasks")["tasks"]
    assert len(tasks) == 11
    assert {t["state"] for t in tasks} == {"completed"}


def test_a_process_that_exits_without_closing_loses_nothing(served: tuple[str, str]) -> None:
    base_url, token = served
    script = textwrap.dedent(
        f"""
        from trackd.sdk import Tracker, configure, tracked

        from trackd.sdk import track

        configure(Tracker({base_url!r}, token={token!r}, flush_interval=60))

        @tracked(name="exit.job")
        def job(n):
            return n

        with track("exit.batch", plan_id="plan-exit"):
            for n in range(20):
                job(n)
        # no flush, no close: the interpreter's exit sends what is buffered
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    tasks = read(base_url, token, "/v1/tracker/plans/plan-exit/tasks")["tasks"]
    assert len(tasks) == 21
    assert {t["state"] for t in tasks} == {"completed"}
