"""The job task REST API: in an application's own FastAPI app and mounted in trackd's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from jobs_support import InvoiceTracking, ReportTracking, create_app_tables
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from trackd.api.job_caller import trackd_bearer
from trackd.app import create_app
from trackd.domain.access import Role
from trackd.jobs.api import DomainRegistry, JobDomain, tasks_router
from trackd.jobs.metrics import JobMetrics, metrics_router
from trackd.jobs.service import BaseTaskTrackingService
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.store.repos import tokens

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def metrics() -> JobMetrics:
    return JobMetrics(CollectorRegistry())


@pytest_asyncio.fixture
async def client(
    engine: AsyncEngine, sessions: Sessions, metrics: JobMetrics
) -> AsyncIterator[httpx.AsyncClient]:
    """An application's own FastAPI app serving two domains and its metrics."""
    await create_app_tables(engine)
    registry = DomainRegistry()
    registry.add(ReportTracking, sessions, metrics=metrics)
    registry.add(InvoiceTracking, sessions, metrics=metrics, on_prerequisite_failure="block")
    app = FastAPI()
    app.include_router(tasks_router(registry))
    app.include_router(metrics_router(metrics.registry))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as c:
        yield c


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    error: dict[str, Any] = body["error"]
    return error


async def test_create_read_and_list_tasks(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/v1/tasks/invoice",
        json={"customer": "acme", "amount": "120.50", "due": "2026-04-01", "job_id": "c-1"},
    )
    assert created.status_code == 201, created.text
    task = created.json()
    assert created.headers["location"] == f"/v1/tasks/invoice/{task['id']}"
    assert task["status"] == "pending"
    assert (task["customer"], task["amount"], task["due"]) == ("acme", "120.50", "2026-04-01")
    assert (task["attempts"], task["max_attempts"], task["job_id"]) == (0, 3, "c-1")
    assert task["created_at"].endswith("Z")
    assert task["trackd_task_id"] == f"invoice-{task['id']}"
    second = (
        await client.post(
            "/v1/tasks/invoice",
            json={"customer": "globex", "depends_on": [task["id"]], "metadata": {"batch": 7}},
        )
    ).json()
    assert (second["depends_on"], second["blocked_by"]) == ([task["id"]], [task["id"]])
    assert second["blocked_reason"] == f"waiting for prerequisites to complete: {task['id']}"
    assert second["metadata"] == {"batch": 7}

    got = await client.get(f"/v1/tasks/invoice/{task['id']}")
    assert got.status_code == 200 and got.json() == task
    page = (await client.get("/v1/tasks/invoice", params={"limit": 1, "offset": 1})).json()
    assert (page["total"], page["limit"], page["offset"]) == (2, 1, 1)
    assert [t["id"] for t in page["tasks"]] == [second["id"]]
    assert page["as_of"] == second["updated_at"]
    pending = (await client.get("/v1/tasks/invoice", params={"status": "PENDING"})).json()
    assert pending["total"] == 2 and pending["status"] == "pending"
    running = (await client.get("/v1/tasks/invoice", params={"status": "PROCESSING"})).json()
    assert (running["total"], running["tasks"]) == (0, [])


async def test_cancel_cascades_and_a_second_cancel_is_a_conflict(client: httpx.AsyncClient) -> None:
    a = (await client.post("/v1/tasks/report", json={"title": "a"})).json()
    b = (await client.post("/v1/tasks/report", json={"title": "b", "depends_on": [a["id"]]})).json()

    cancelled = await client.post(
        f"/v1/tasks/report/{a['id']}/cancel", json={"reason": "wrong month"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancelled"] == [a["id"], b["id"]]
    assert cancelled.json()["task"]["error_message"] == "wrong month"
    b_now = (await client.get(f"/v1/tasks/report/{b['id']}")).json()
    assert (b_now["status"], b_now["error_message"]) == (
        "cancelled",
        f"task {a['id']} was cancelled: wrong month",
    )

    again = await client.post(f"/v1/tasks/report/{a['id']}/cancel")
    assert again.status_code == 409
    assert error_of(again) == {
        "code": "conflict",
        "message": f"task {a['id']} is cancelled; only a task that has not ended can be cancelled",
    }


async def test_retry_of_a_failed_task_and_conflicts_for_others(
    client: httpx.AsyncClient, sessions: Sessions, metrics: JobMetrics
) -> None:
    task = (await client.post("/v1/tasks/report", json={"title": "t", "max_attempts": 2})).json()
    not_failed = await client.post(f"/v1/tasks/report/{task['id']}/retry")
    assert not_failed.status_code == 409
    assert "only a failed task can be retried" in error_of(not_failed)["message"]
    async with sessions() as db:
        svc = BaseTaskTrackingService(db, ReportTracking, metrics=metrics)
        await svc.start(task["id"])
        await svc.fail(task["id"], "printer on fire")

    retried = await client.post(f"/v1/tasks/report/{task['id']}/retry", json={"delay_seconds": 0})
    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert (body["status"], body["attempts"], body["error_message"]) == (
        "pending",
        1,
        "printer on fire",
    )
    assert body["next_attempt_at"] is not None
    async with sessions() as db:
        svc = BaseTaskTrackingService(db, ReportTracking, metrics=metrics)
        await svc.start(task["id"])
        await svc.fail(task["id"], "again")
    exhausted = await client.post(f"/v1/tasks/report/{task['id']}/retry")
    assert exhausted.status_code == 409
    assert "used 2 of its 2 attempts" in error_of(exhausted)["message"]


@pytest.mark.parametrize(
    ("path", "payload", "status", "fragment"),
    [
        (
            "/v1/tasks/nope",
            {"title": "x"},
            404,
            "no task domain 'nope'; known domains: invoice, report",
        ),
        ("/v1/tasks/report", {"title": "x", "colour": "red"}, 422, "colour: Extra inputs"),
        ("/v1/tasks/report", {}, 422, "title: Field required"),
        ("/v1/tasks/report", {"title": "x" * 101}, 422, "title: String should have at most 100"),
        ("/v1/tasks/report", {"title": "a\u0000b"}, 422, "title: String should match pattern"),
        ("/v1/tasks/report", {"title": "x", "pages": 2**40}, 422, "pages: Input should be less"),
        (
            "/v1/tasks/report",
            {"title": "x", "pages": "7"},
            422,
            "pages: Input should be a valid integer",
        ),
        (
            "/v1/tasks/report",
            {"title": "x", "max_attempts": 0},
            422,
            "max_attempts: Input should be greater",
        ),
        (
            "/v1/tasks/report",
            {"title": "x", "depends_on": [424242]},
            422,
            "depends_on: no report task 424242",
        ),
        (
            "/v1/tasks/report",
            {"title": "x", "parent_id": 0},
            422,
            "parent_id: Input should be greater",
        ),
        (
            "/v1/tasks/invoice",
            {"customer": "c", "amount": "1.234"},
            422,
            "amount: Decimal input should have no more than 2 decimal",
        ),
        (
            "/v1/tasks/invoice",
            {"customer": "c", "due": "soon"},
            422,
            "due: Input should be a valid date",
        ),
        ("/v1/tasks/report", ["not", "an", "object"], 422, "Input should be a valid dictionary"),
        ("/v1/tasks/report", {"title": "x", "metadata": {"k": "a\u0000b"}}, 422, "NUL"),
        ("/v1/tasks/report", {"title": "x", "metadata": [1]}, 422, "metadata: Input should be"),
    ],
)
async def test_bad_input_is_a_4xx_in_trackds_shape(
    client: httpx.AsyncClient, path: str, payload: Any, status: int, fragment: str
) -> None:
    response = await client.post(path, json=payload)

    assert response.status_code == status, response.text
    assert fragment in error_of(response)["message"]


@pytest.mark.parametrize(
    ("method", "path", "status", "fragment"),
    [
        ("GET", "/v1/tasks/report/abc", 422, "task_id: Input should be a valid integer"),
        ("GET", "/v1/tasks/report/0", 422, "task_id: Input should be greater than or equal to 1"),
        ("GET", f"/v1/tasks/report/{2**64}", 422, "task_id: Input should be less than"),
        ("GET", "/v1/tasks/report/999", 404, "no report task 999"),
        ("GET", "/v1/tasks/Bad-Name", 422, "domain: String should match pattern"),
        ("GET", "/v1/tasks/report?status=EXPLODED", 422, "status: unknown task state 'EXPLODED'"),
        ("GET", "/v1/tasks/report?limit=0", 422, "limit: Input should be greater"),
        ("GET", "/v1/tasks/report?offset=-1", 422, "offset: Input should be greater"),
        ("POST", "/v1/tasks/report/999/cancel", 404, "no report task 999"),
        ("POST", "/v1/tasks/report/999/retry", 404, "no report task 999"),
    ],
)
async def test_bad_paths_and_queries_are_4xx(
    client: httpx.AsyncClient, method: str, path: str, status: int, fragment: str
) -> None:
    response = await client.request(method, path)

    assert response.status_code == status, response.text
    assert fragment in error_of(response)["message"]


async def test_malformed_bodies_are_422(client: httpx.AsyncClient) -> None:
    task = (await client.post("/v1/tasks/report", json={"title": "x"})).json()

    broken = await client.post(
        "/v1/tasks/report", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert "not valid JSON" in error_of(broken)["message"]
    long_reason = await client.post(
        f"/v1/tasks/report/{task['id']}/cancel", json={"reason": "x" * 3000}
    )
    assert long_reason.status_code == 422
    negative = await client.post(f"/v1/tasks/report/{task['id']}/retry", json={"delay_seconds": -1})
    assert negative.status_code == 422


async def test_the_apps_metrics_count_the_tasks(client: httpx.AsyncClient) -> None:
    await client.post("/v1/tasks/report", json={"title": "x"})

    scraped = await client.get("/metrics")

    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert 'trackd_job_tasks_total{status="created",task="report"} 1.0' in scraped.text


def test_domain_columns_may_not_take_the_apis_names() -> None:
    from jobs_support import ClashingTracking

    with pytest.raises(ValueError, match="columns blocked_by clash"):
        JobDomain(ClashingTracking, async_sessionmaker())


async def test_mounted_in_trackd_tenants_stay_apart_and_readers_only_read(
    database_url: str, metrics: JobMetrics
) -> None:
    runtime = Runtime.build(Settings(database_url=database_url))
    await runtime.start()
    try:
        await create_app_tables(runtime.engine)
        async with runtime.sessions() as s:
            acme = await tokens.create(s, "acme", user_id=None, role=Role.SERVICE)
            globex = await tokens.create(s, "globex", user_id=None, role=Role.ADMIN)
            reader = await tokens.create(s, "acme", user_id=None, role=Role.READER)
            await s.commit()
        registry = DomainRegistry(
            [JobDomain(ReportTracking, runtime.sessions, options={"metrics": metrics})]
        )
        app = create_app(runtime, manage=False)
        app.include_router(tasks_router(registry, caller=trackd_bearer()))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://trackd") as c:

            def auth(token: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {token}"}

            made = await c.post("/v1/tasks/report", json={"title": "acme's"}, headers=auth(acme))
            assert made.status_code == 201, made.text
            task_id = made.json()["id"]
            assert (
                await c.get(f"/v1/tasks/report/{task_id}", headers=auth(acme))
            ).status_code == 200
            assert (
                await c.get(f"/v1/tasks/report/{task_id}", headers=auth(reader))
            ).status_code == 200
            other = await c.get(f"/v1/tasks/report/{task_id}", headers=auth(globex))
            assert other.status_code == 404
            assert (await c.get("/v1/tasks/report", headers=auth(globex))).json()["total"] == 0
            cancel = await c.post(f"/v1/tasks/report/{task_id}/cancel", headers=auth(globex))
            assert cancel.status_code == 404
            refused = await c.post("/v1/tasks/report", json={"title": "r"}, headers=auth(reader))
            assert refused.status_code == 403
            assert error_of(refused)["message"] == "role reader may not change tasks"
            anonymous = await c.get("/v1/tasks/report")
            assert anonymous.status_code == 401
            assert error_of(anonymous)["code"] == "unauthorized"
            scraped = await c.get("/metrics")
            assert scraped.status_code == 200
            assert "trackd_ingest_batches_total" in scraped.text
    finally:
        await runtime.stop()
