"""The dashboard under /ui, in-process (httpx over ASGI) on a real runtime, SQLite and PostgreSQL.

Events go through the runtime's memory bus and its ingest consumer as a producer's would; the
pages are then read with a browser's cookie, never a bearer header.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import update

from trackd.api.app import create_app
from trackd.domain.access import Role
from trackd.domain.timeline import TimelineNode, build_tree
from trackd.ingest import intake
from trackd.ingest.consumer import IngestConsumer, IngestOptions
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.store import views
from trackd.store.models import ApiToken
from trackd.store.repos import tokens
from trackd.testing import EventFactory
from trackd.web import tree
from trackd.web.auth import COOKIE, CSRF_COOKIE

ACME, GLOBEX = "acme", "globex"
BASE = "http://trackd.test"
EVIL_TASK = '<script>alert("task")</script>'
EVIL_AGENT = "<b>agent</b>"
EVIL_REASON = "<img src=x onerror=alert(1)>"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


@pytest_asyncio.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime.build(Settings(database_url=database_url, publish_timeout_s=15))
    # The same consumer, waiting less for events that never come, so that stop() is quick.
    runtime.ingest = IngestConsumer(runtime.bus, runtime.sessions, IngestOptions(idle_wait=0.05))
    await runtime.start(migrate=False)  # the fixture's database is migrated already
    try:
        yield runtime
    finally:
        await runtime.stop()


@pytest_asyncio.fixture
async def issued(runtime: Runtime) -> dict[str, str]:
    async with runtime.sessions() as s, s.begin():
        return {
            "reader": await tokens.create(s, ACME, user_id="rita", role=Role.READER),
            "globex": await tokens.create(s, GLOBEX, user_id=None, role=Role.READER),
        }


@pytest_asyncio.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime, manage=False))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def publish(runtime: Runtime, tenant: str, events: list[dict[str, Any]]) -> None:
    """As a producer publishes; on the memory bus this returns once the events are stored."""
    ok, refused = intake.check(events, tenant)
    assert not refused
    await intake.publish(runtime.bus, ok)


def plans_of_acme() -> list[dict[str, Any]]:
    """plan-1: a search completes, an analysis fails, and the plan fails; plan-2 just started.
    Producer-supplied strings carry markup that must come out escaped."""
    f = EventFactory(source="planner", now=START, trace_id="trace-1", plan_id="plan-1")
    ps = f.plan_started(current_state="searching", event_id="ps")
    f.advance(1)
    r1 = f.request("task-1", "web.search.requested", parent=ps, event_id="r1")
    f.advance(1)
    p1 = f.progress("task-1", "running", 0.5, "half way", source="worker-a", parent=r1)
    f.advance(2)
    r2 = f.request(EVIL_TASK, "analyze.text", parent=ps, event_id="r2")
    f.advance(1)
    c1 = f.result("task-1", "web.search.completed", source="worker-a", parent=r1, event_id="c1")
    f.advance(3)
    f2 = f.result(
        EVIL_TASK, "analyze.text.completed", success=False, error="boom", source=EVIL_AGENT
    )
    f.advance(1)
    pf = f.plan_failed(current_state="failed at analysis", reason=EVIL_REASON, parent=f2)
    g = EventFactory(
        source="planner", now=START + timedelta(minutes=1), plan_id="plan-2", id_prefix="g"
    )
    ps2 = g.plan_started(current_state="planning")
    return [ps, r1, p1, r2, c1, f2, pf, ps2]


@pytest_asyncio.fixture
async def seeded(runtime: Runtime) -> None:
    await publish(runtime, ACME, plans_of_acme())
    other = EventFactory(source="globex-planner", now=START, plan_id="globex-plan", id_prefix="x")
    await publish(runtime, GLOBEX, [other.plan_started(), other.request("gx-1", "secret.job")])


FORM = {"content-type": "application/x-www-form-urlencoded"}


async def csrf_of(client: httpx.AsyncClient) -> str:
    """Open the login page as a browser would: its form and cookie carry one CSRF value."""
    page = (await client.get("/ui/login")).text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    assert client.cookies.get(CSRF_COOKIE) == found.group(1)
    return found.group(1)


async def log_in(
    client: httpx.AsyncClient, token: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    csrf = await csrf_of(client)
    return await client.post(
        "/ui/login",
        content=f"token={token}&csrf={csrf}",
        headers={**FORM, **(headers or {})},
    )


async def log_out(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None
) -> httpx.Response:
    csrf = client.cookies.get(CSRF_COOKIE, "")
    return await client.post(
        "/ui/logout", content=f"csrf={csrf}", headers={**FORM, **(headers or {})}
    )


def assert_page(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    return response.text


# --- logging in and out -----------------------------------------------------------------------


async def test_pages_without_a_login_go_to_the_login_page(
    client: httpx.AsyncClient, issued: dict[str, str]
) -> None:
    for path in ("/ui", "/ui/plans/plan-1", "/ui/metrics?period=bogus"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/login"
    client.cookies.set(COOKIE, "trk_not-a-token", domain="trackd.test", path="/ui")
    assert (await client.get("/ui")).headers["location"] == "/ui/login"
    page = assert_page(await client.get("/ui/login"), 200)
    assert 'name="token"' in page


async def test_login_sets_a_strict_httponly_cookie_and_logout_clears_it(
    client: httpx.AsyncClient, issued: dict[str, str]
) -> None:
    response = await log_in(client, issued["reader"])
    assert response.status_code == 303
    assert response.headers["location"] == "/ui"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={issued['reader']};")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    assert "tenant <code>acme</code>" in assert_page(await client.get("/ui"), 200)

    response = await log_out(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login"
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert (await client.get("/ui")).status_code == 303


async def test_login_over_https_marks_the_cookie_secure(
    runtime: Runtime, issued: dict[str, str]
) -> None:
    transport = httpx.ASGITransport(app=create_app(runtime, manage=False))
    async with httpx.AsyncClient(transport=transport, base_url="https://trackd.test") as client:
        response = await log_in(client, issued["reader"])
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


async def test_login_refuses_unknown_empty_and_cross_site_tokens(
    client: httpx.AsyncClient, issued: dict[str, str]
) -> None:
    for token in ("trk_nope", "", "x" * 5000):
        response = await log_in(client, token)
        assert "set-cookie" not in response.headers
        assert response.status_code in (401, 413)
        assert_page(response, response.status_code)
    assert "unknown or revoked token" in (await log_in(client, "trk_nope")).text


OWN = BASE
OWN_PAGE = f"{BASE}/ui/login"
FOREIGN = "https://evil.example"
# (Origin, Referer) as browsers send them with a form post, and whether the post is ours.
# Current engines send the page's origin (Referrer-Policy: same-origin); `null` comes from
# sandboxed frames, data: pages or a no-referrer policy; older engines send only a Referer.
ORIGIN_CASES = [
    ({"origin": OWN}, True),
    ({"origin": OWN, "referer": OWN_PAGE}, True),
    ({}, True),  # no header at all (not a browser): the CSRF pair alone decides
    ({"referer": OWN_PAGE}, True),
    ({"origin": "null", "referer": OWN_PAGE}, True),
    ({"origin": "null"}, False),
    ({"origin": "null", "referer": f"{FOREIGN}/attack"}, False),
    ({"referer": f"{FOREIGN}/attack"}, False),
    ({"origin": FOREIGN}, False),
    ({"origin": FOREIGN, "referer": OWN_PAGE}, False),
    ({"origin": "http://trackd.test:8080"}, False),  # another port is another origin
    ({"origin": "http://trackd.test.evil.example"}, False),
]


@pytest.mark.parametrize(("headers", "ours"), ORIGIN_CASES)
async def test_login_takes_posts_from_its_own_pages_only(
    client: httpx.AsyncClient, issued: dict[str, str], headers: dict[str, str], ours: bool
) -> None:
    response = await log_in(client, issued["reader"], headers)
    if ours:
        assert response.status_code == 303, response.text
        assert response.headers["set-cookie"].startswith(f"{COOKIE}=")
    else:
        assert "cross-site posts are refused" in assert_page(response, 403)
        assert "set-cookie" not in response.headers


@pytest.mark.parametrize(("headers", "ours"), ORIGIN_CASES)
async def test_logout_takes_posts_from_its_own_pages_only(
    client: httpx.AsyncClient, issued: dict[str, str], headers: dict[str, str], ours: bool
) -> None:
    await log_in(client, issued["reader"])
    response = await log_out(client, headers)
    assert response.status_code == (303 if ours else 403)
    assert (await client.get("/ui")).status_code == (303 if ours else 200)


async def test_login_and_logout_need_the_login_pages_csrf_pair(
    client: httpx.AsyncClient, issued: dict[str, str]
) -> None:
    token = issued["reader"]
    csrf = await csrf_of(client)
    for body in (f"token={token}", f"token={token}&csrf=forged", f"token={token}&csrf="):
        response = await client.post("/ui/login", content=body, headers=FORM)
        assert "came from another site" in assert_page(response, 403)
    client.cookies.delete(CSRF_COOKIE)  # a post from a browser that never opened the form
    response = await client.post("/ui/login", content=f"token={token}&csrf={csrf}", headers=FORM)
    assert_page(response, 403)

    await log_in(client, token)
    response = await client.post("/ui/logout", content="csrf=forged", headers=FORM)
    assert_page(response, 403)
    assert (await client.get("/ui")).status_code == 200  # still logged in
    assert (await log_out(client)).status_code == 303


async def test_pages_send_their_origin_with_form_posts(client: httpx.AsyncClient) -> None:
    # no-referrer made browsers send `Origin: null` with the login form: refused, no login.
    assert (await client.get("/ui/login")).headers["referrer-policy"] == "same-origin"


async def test_a_revoked_token_logs_the_browser_out(
    client: httpx.AsyncClient, issued: dict[str, str], runtime: Runtime
) -> None:
    await log_in(client, issued["reader"])
    assert (await client.get("/ui")).status_code == 200
    async with runtime.sessions() as s, s.begin():
        await s.execute(update(ApiToken).values(revoked_at=datetime.now(UTC)))
    assert (await client.get("/ui")).headers["location"] == "/ui/login"


# --- the pages ----------------------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
async def test_plans_page_lists_the_tenants_recent_plans(
    client: httpx.AsyncClient, issued: dict[str, str]
) -> None:
    await log_in(client, issued["reader"])
    page = assert_page(await client.get("/ui"), 200)
    rows = re.findall(r"<tr>\s*<td><a href=\"/ui/plans/([^\"]+)\">", page)
    assert rows == ["plan-2", "plan-1"]  # the newest event first
    plan_1 = page[page.index('href="/ui/plans/plan-1"') : page.index("</tbody>")]
    cells = re.findall(r"<td>(.*?)</td>", plan_1)
    assert cells[1:5] == ["failed at analysis", "2", "1", "1"]  # state, tasks, completed, failed
    assert '<mark data-state="failed">failed</mark>' in plan_1
    assert "globex" not in page.replace("tenant <code>acme</code>", "")


@pytest.mark.usefixtures("seeded")
async def test_plan_page_shows_tasks_and_the_trace_tree_escaped(
    client: httpx.AsyncClient, issued: dict[str, str]
) -> None:
    await log_in(client, issued["reader"])
    page = assert_page(await client.get("/ui/plans/plan-1"), 200)

    # Markup from producers is text on the page, never markup.
    for evil in (EVIL_TASK, EVIL_AGENT, EVIL_REASON):
        assert evil not in page
    assert "&lt;script&gt;alert(&#34;task&#34;)&lt;/script&gt;" in page
    assert "&lt;b&gt;agent&lt;/b&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script>" not in page.replace('<script src="/ui/static/trackd.js" defer>', "")

    tasks = page[page.index("<h2>Tasks</h2>") : page.index("<h2>Trace</h2>")]
    assert tasks.count("<tr>") == 3  # the header and two tasks
    assert '<mark data-state="completed">completed</mark>' in tasks
    assert '<mark data-state="failed">failed</mark>' in tasks
    assert '<progress max="1" value="1.0">100%</progress>' in tasks  # a completed task is full
    assert "4.0 s" in tasks  # task-1: requested at 1 s, completed at 5 s
    assert "worker-a" in tasks

    # The trace: r1 and r2 under plan.started, task-1's progress and result under r1.
    trace = page[page.index("<h2>Trace</h2>") :]
    assert trace.count("<li>") == 7
    assert trace.count("<ul>") == trace.count("</ul>") == 4
    under_r1 = trace[trace.index("<small>r1</small>") : trace.index("<small>r2</small>")]
    assert "<small>c1</small>" in under_r1
    assert "web.search.completed" in under_r1


@pytest.mark.usefixtures("seeded")
async def test_another_tenants_plan_is_a_404_page(
    client: httpx.AsyncClient, issued: dict[str, str]
) -> None:
    await log_in(client, issued["globex"])
    page = assert_page(await client.get("/ui/plans/plan-1"), 404)
    assert "plan &#39;plan-1&#39; not found" in page
    listing = assert_page(await client.get("/ui"), 200)
    assert "globex-plan" in listing
    assert "plan-1" not in listing
    assert_page(await client.get("/ui/plans/globex-plan"), 200)


@pytest.mark.usefixtures("seeded")
async def test_bad_input_is_a_4xx_page(client: httpx.AsyncClient, issued: dict[str, str]) -> None:
    await log_in(client, issued["reader"])
    page = assert_page(await client.get("/ui/metrics?period=2w"), 400)
    assert "unknown period &#39;2w&#39;: use one of 1h, 24h, 7d, 30d" in page
    assert_page(await client.get("/ui/metrics", params={"period": "x" * 500}), 422)
    assert_page(await client.get("/ui/plans/" + "p" * 101), 422)
    assert_page(await client.get("/ui/plans/a%01b"), 422)
    assert_page(await client.get("/ui/static/passwd"), 404)


@pytest.mark.usefixtures("seeded")
async def test_metrics_page_tables_and_charts_completed_vs_failed_per_agent(
    client: httpx.AsyncClient, issued: dict[str, str], runtime: Runtime
) -> None:
    await log_in(client, issued["reader"])
    page = assert_page(await client.get("/ui/metrics?period=1h"), 200)
    assert "<strong>1h</strong>" in page
    assert '<a href="/ui/metrics?period=7d">7d</a>' in page

    # One row per agent that ended a task, named the way the tracker names agents.
    table = page[page.index("<table>") :]
    assert re.findall(r"<tr>\s*<td>(.*?)</td>", table) == ["&lt;b&gt;agent&lt;/b&gt;", "worker-a"]
    bars = re.findall(r'<rect data-kind="(\w+)" x="[\d.]+" y="(\d+)" width="([\d.]+)"', page)
    assert bars == [
        ("completed", "0", "0.0"),
        ("failed", "0", "412.0"),  # the busiest agent's bar fills the room: 640 - 180 - 48
        ("completed", "24", "412.0"),
        ("failed", "24", "0.0"),
    ]

    # The page's rows are the same numbers as the API's per-agent read model.
    async with runtime.sessions() as s:
        every = await views.metrics_by_agent(s, ACME, "1h")
        for agent in every.agents:
            one = await views.agent_metrics(s, ACME, agent.agent_id, "1h")
            assert one.metrics == agent
        assert (await views.metrics_by_agent(s, GLOBEX, "1h")).agents == []


async def test_an_empty_tenant_sees_empty_pages(
    client: httpx.AsyncClient, issued: dict[str, str]
) -> None:
    await log_in(client, issued["reader"])
    assert "No plans yet" in assert_page(await client.get("/ui"), 200)
    assert "No task ended" in assert_page(await client.get("/ui/metrics"), 200)


async def test_static_files_come_from_the_package(client: httpx.AsyncClient) -> None:
    css = await client.get("/ui/static/trackd.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "mark[data-state" in css.text
    js = await client.get("/ui/static/trackd.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert len(css.content) + len(js.content) < 8192


# --- the trace tree's tags ---------------------------------------------------------------


def test_a_deep_chain_renders_without_recursion_and_stays_balanced() -> None:
    now = datetime.now(UTC)
    nodes = [TimelineNode(f"e{n}", "step", now, f"e{n - 1}" if n else None) for n in range(300)]
    depth = deepest = items = 0
    for tag in tree.tags(build_tree(nodes), []):
        if tag.kind == "list":
            depth += 1
            deepest = max(deepest, depth)
        elif tag.kind == "end-list":
            depth -= 1
        elif tag.kind == "item":
            items += 1
    assert (items, depth, deepest) == (300, 0, tree.MAX_DEPTH)
