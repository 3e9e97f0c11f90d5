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
from runtime_support import api_client, started
from sqlalchemy import update

from trackd.domain.access import Role
from trackd.ingest import intake
from trackd.reads import service as reads
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.store.models import ApiToken
from trackd.store.repos import tokens
from trackd.store.repos.tasks import TaskListRow
from trackd.store.repos.timeline import TimelineEntry
from trackd.testing import EventFactory
from trackd.web import pages, waterfall
from trackd.web.auth import COOKIE, CSRF_COOKIE

ACME, GLOBEX = "acme", "globex"
BASE = "http://trackd.test"
# No closing tag: an id may not hold "/" (it could not be read back at /v1/tracker/tasks/…).
EVIL_TASK = '<script>alert("task")'
EVIL_ESCAPED = "&lt;script&gt;alert(&#34;task&#34;)"
EVIL_AGENT = "<b>agent</b>"
EVIL_REASON = "<img src=x onerror=alert(1)>"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


@pytest_asyncio.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    async with started(Settings(database_url=database_url, publish_timeout_s=15)) as runtime:
        yield runtime


@pytest_asyncio.fixture
async def issued(runtime: Runtime) -> dict[str, str]:
    async with runtime.sessions() as s, s.begin():
        return {
            "reader": await tokens.create(s, ACME, user_id="rita", role=Role.READER),
            "globex": await tokens.create(s, GLOBEX, user_id=None, role=Role.READER),
        }


@pytest_asyncio.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(runtime, BASE) as client:
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
    async with api_client(runtime, "https://trackd.test") as client:
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
async def test_plan_page_draws_the_trace_as_a_waterfall_escaped(
    client: httpx.AsyncClient, issued: dict[str, str]
) -> None:
    await log_in(client, issued["reader"])
    page = assert_page(await client.get("/ui/plans/plan-1"), 200)

    # Markup from producers is text on the page, never markup.
    for evil in (EVIL_TASK, EVIL_AGENT, EVIL_REASON):
        assert evil not in page
    assert EVIL_ESCAPED in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script>" not in page.replace('<script src="/ui/static/trackd.js" defer>', "")

    # One row per task and per plan event, in the order they started; all at the top level
    # (the tasks' parent is plan.started, which is no task).
    rows = re.findall(r'<tr data-(task|event)="([^"]+)">\s*<th scope="row" class="d(\d)"', page)
    assert rows == [
        ("event", "ps", "0"),
        ("task", "task-1", "0"),
        ("task", EVIL_ESCAPED, "0"),
        ("event", "event-3", "0"),
    ]
    task_1 = row_of(page, "task-1")
    assert "4.0 s" in task_1  # requested at 1 s, completed at 5 s
    # The span runs 9 s (plan.started to plan.failed): task-1 from 1 s to 5 s.
    assert '<rect data-state="completed" x="111.1" y="2" width="444.5"' in task_1
    assert task_1.count("<line ") == 3  # its request, progress and result
    assert '<small class="error">boom</small>' in row_of(page, "&lt;script&gt;")


def row_of(page: str, marker: str) -> str:
    """The waterfall row of a task whose id starts with `marker`."""
    start = page.index(f'<tr data-task="{marker}')
    return page[start : page.index("</tr>", start)]


def plan_3() -> list[dict[str, Any]]:
    """A parent task starts a child that fails (a traceback), is retried and completes; a
    watchdog then fails the finished parent (an anomaly); a queued task is cancelled unrun."""
    f = EventFactory(
        source="planner", now=START, trace_id="trace-3", plan_id="plan-3", id_prefix="p3"
    )
    ps = f.plan_started(current_state="working")
    events = [ps]

    def then(seconds: float, event: dict[str, Any]) -> dict[str, Any]:
        """Keep an event (made at the clock's time), then move the clock on."""
        f.advance(seconds)
        events.append(event)
        return event

    parent = then(1, f.request("parent", "import.run", parent=ps, source="importer"))
    queued = then(0, f.state_changed("queued", None, "pending", "waits for import", parent=ps))
    child = then(1, f.request("child", "import.rows", parent=parent, source="importer"))
    then(1, f.result("child", "import.rows.done", success=False, error=TRACEBACK, parent=child))
    then(1, f.request("child", "import.rows", parent=parent, attempt=2, source="importer"))
    then(1, f.progress("child", "running", 0.5, "half the rows", parent=child, attempt=2))
    then(1, f.state_changed("queued", "pending", "cancelled", "import changed", parent=queued))
    then(1, f.result("child", "import.rows.done", parent=child, attempt=2, source="worker-b"))
    then(1, f.result("parent", "import.run.done", parent=parent, source="importer"))
    then(
        1,
        f.result(
            "parent",
            "import.run.done",
            success=False,
            error="late",
            parent=parent,
            source="watchdog",
        ),
    )
    then(1, f.plan_completed(current_state="imported"))
    return events


TRACEBACK = 'Traceback (most recent call last):\n  File "rows.py", line 3\nValueError: bad row 17'


@pytest_asyncio.fixture
async def seeded_3(runtime: Runtime) -> None:
    await publish(runtime, ACME, plan_3())


@pytest.mark.usefixtures("seeded_3")
async def test_plan_page_nests_tasks_under_the_task_that_started_them(
    client: httpx.AsyncClient, issued: dict[str, str]
) -> None:
    await log_in(client, issued["reader"])
    page = assert_page(await client.get("/ui/plans/plan-3"), 200)
    rows = re.findall(r'<tr data-(?:task|event)="([^"]+)">\s*<th scope="row" class="d(\d)"', page)
    assert [r[0] for r in rows] == ["p3-1", "parent", "child", "queued", "p3-12"]
    assert dict(rows)["child"] == "1"
    # A task cancelled before it ran has no start, no duration and no bar: a dot at the cancel.
    queued = row_of(page, "queued")
    assert '<circle data-state="cancelled"' in queued
    assert "<rect" not in queued
    assert "<td>-</td>" in queued
    assert "0.0 s" not in queued
    parent = row_of(page, "parent")
    assert '<mark data-state="anomaly" title="conflicting terminal events in attempt 1' in parent
    assert "1 anomaly" in page
    listing = assert_page(await client.get("/ui"), 200)
    plan_row = listing[listing.index('href="/ui/plans/plan-3"') :]
    assert re.findall(r"<td>(.*?)</td>", plan_row)[5] == '<mark data-state="anomaly">1</mark>'


@pytest.mark.usefixtures("seeded_3")
async def test_task_page_shows_attempts_errors_events_and_the_tasks_around_it(
    client: httpx.AsyncClient, issued: dict[str, str]
) -> None:
    await log_in(client, issued["reader"])
    page = assert_page(await client.get("/ui/tasks/child"), 200)
    attempts = page[page.index('id="attempts"') : page.index('id="transitions"')]
    found = re.findall(r"<tr><td>(\d)</td><td><mark data-state=\"(\w+)\">", attempts)
    assert found == [("1", "failed"), ("2", "completed")]
    assert "ValueError: bad row 17" in attempts and "Traceback (most recent call last)" in attempts
    assert '<a href="/ui/tasks/parent"><code>parent</code></a>' in page  # its parent
    assert '<a href="/ui/plans/plan-3">plan-3</a>' in page
    events = page[page.index('id="events"') : page.index('id="children"')]
    assert "running · 50% · half the rows" in events
    assert "failed: ValueError: bad row 17" in events
    transitions = page[page.index('id="transitions"') : page.index('id="events"')]
    assert transitions.count("<tr><td>") == 4  # running, failed, running (retry), completed

    parent = assert_page(await client.get("/ui/tasks/parent"), 200)
    assert '<a href="/ui/tasks/child"><code>child</code></a>' in parent
    assert "conflicting terminal events in attempt 1: completed and failed" in parent

    queued = assert_page(await client.get("/ui/tasks/queued"), 200)
    assert "<dt>started</dt><dd><time>-</time></dd>" in queued
    assert "<dt>took</dt><dd>-</dd>" in queued
    assert_page(await client.get("/ui/tasks/nope"), 404)


@pytest.mark.usefixtures("seeded", "seeded_3")
async def test_tasks_across_plans_filter_search_and_page(
    client: httpx.AsyncClient, issued: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await log_in(client, issued["reader"])

    async def ids(query: str) -> list[str]:
        page = assert_page(await client.get("/ui/tasks?" + query), 200)
        return re.findall(r'<td><a href="/ui/tasks/[^"]+"><code>([^<]+)</code>', page)

    everything = await ids("")
    assert sorted(everything) == sorted(
        [
            "task-1",
            EVIL_ESCAPED,
            "parent",
            "child",
            "queued",
        ]
    )
    assert await ids("state=cancelled") == ["queued"]
    assert await ids("state=failed") == [EVIL_ESCAPED]
    assert sorted(await ids("type=import.")) == ["child", "parent"]
    assert await ids("type=import.rows") == ["child"]
    assert await ids("q=hil") == ["child"]
    assert await ids("q=%25") == []  # LIKE's wildcards are searched for, not expanded
    assert await ids("agent=worker-b") == ["child"]
    since = (START + timedelta(seconds=6)).strftime("%Y-%m-%dT%H:%M:%S")
    until = (START + timedelta(seconds=7)).strftime("%Y-%m-%dT%H:%M:%S")
    assert sorted(await ids(f"since={since}")) == sorted([EVIL_ESCAPED, "child", "parent"])
    assert await ids(f"since={since}&until={until}") == ["child"]
    assert "globex" not in str(everything)

    # Paging: two a page, every task once, in the same order as one long page.
    monkeypatch.setattr(pages, "TASKS_PER_PAGE", 2)
    seen: list[str] = []
    query = ""
    while True:
        page = assert_page(await client.get("/ui/tasks" + query), 200)
        seen += re.findall(r'<td><a href="/ui/tasks/[^"]+"><code>([^<]+)</code>', page)
        link = re.search(r'<a href="/ui/tasks(\?[^"]+)" rel="next">', page)
        if link is None:
            break
        query = link.group(1).replace("&amp;", "&")
        assert "data-live" not in page.split("<tbody", 1)[1].split(">", 1)[0] or not seen[2:]
    assert seen == everything

    # The live fragment is the table's rows alone, with the page's filters.
    fragment = assert_page(await client.get("/ui/tasks?state=cancelled&rows=1"), 200)
    assert fragment.lstrip().startswith("<tr>")
    assert "<nav" not in fragment and "queued" in fragment


@pytest.mark.usefixtures("seeded")
async def test_bad_task_filters_are_400_pages(
    client: httpx.AsyncClient, issued: dict[str, str]
) -> None:
    await log_in(client, issued["reader"])
    assert "unknown state" in assert_page(await client.get("/ui/tasks?state=bogus"), 400)
    assert "not a date" in assert_page(await client.get("/ui/tasks?since=yesterday"), 400)
    assert "damaged" in assert_page(await client.get("/ui/tasks?after=%21%21"), 400)
    assert "damaged" in assert_page(await client.get("/ui/tasks?after=Zm9v"), 400)
    assert_page(await client.get("/ui/tasks?q=" + "x" * 500), 422)


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


@pytest.mark.usefixtures("seeded", "seeded_3")
async def test_metrics_page_counts_every_task_once_so_totals_add_up(
    client: httpx.AsyncClient, issued: dict[str, str], runtime: Runtime
) -> None:
    await log_in(client, issued["reader"])
    page = assert_page(await client.get("/ui/metrics?period=1h"), 200)
    assert '<strong aria-current="page">1h</strong>' in page
    assert '<a href="/ui/metrics?period=7d">7d</a>' in page

    table = page[page.index("<table") : page.index("</table>")]
    rows = re.findall(r'<tr><th scope="row">(.*?)</th>(.*?)</tr>', table)
    counts = {
        name: dict(re.findall(r'<td data-state="(\w+)">(\d+)</td>', cells)) for name, cells in rows
    }
    assert list(counts) == [
        "&lt;b&gt;agent&lt;/b&gt;",
        "importer",
        "planner",
        "worker-a",
        "worker-b",
        "all agents",
    ]
    assert counts["importer"]["completed"] == "1"  # parent (the watchdog's failure is refused)
    assert counts["planner"]["cancelled"] == "1"  # queued: no agent, counted under its requester
    for name, by_state in counts.items():
        states = [int(v) for k, v in by_state.items() if k != "total"]
        assert sum(states) == int(by_state["total"]), name
    total = counts.pop("all agents")
    for state, n in total.items():
        assert int(n) == sum(int(c[state]) for c in counts.values()), state
    assert total["total"] == "5"  # every task of the tenant, once
    assert '<rect data-kind="cancelled"' in page

    # Durations over time: p50 and p95 lines from the tasks that completed or failed.
    # Each line shows a dot per time with an ending; a line joins only neighbouring dots, so the
    # four endings may all fall in one bucket (a dot, no polyline) depending on the clock.
    for name in ("p50", "p95"):
        group = page[page.index(f'<g data-line="{name}">') :]
        group = group[: group.index("</g>")]
        assert "<circle cx=" in group, name

    async with runtime.sessions() as s:
        v = await reads.outcomes(s, ACME, "1h")
        assert v.totals.total == 5
        assert sum(p.count for p in v.durations) == 4  # all but the cancelled one
        assert (await reads.outcomes(s, GLOBEX, "1h")).totals.running == 1  # gx-1, open
        every = await reads.metrics_by_agent(s, ACME, "1h")
        for agent in every.agents:  # the API's numbers agree with the page's
            mine = next(a for a in v.agents if a.agent_id == agent.agent_id)
            assert (agent.completed_tasks, agent.failed_tasks) == (mine.completed, mine.failed)
            assert agent.total_tasks == mine.completed + mine.failed + mine.cancelled


async def test_an_empty_tenant_sees_empty_pages(
    client: httpx.AsyncClient, issued: dict[str, str]
) -> None:
    await log_in(client, issued["reader"])
    assert "No plans yet" in assert_page(await client.get("/ui"), 200)
    assert "No task in this period" in assert_page(await client.get("/ui/metrics"), 200)
    assert "No task matches" in assert_page(await client.get("/ui/tasks"), 200)


async def test_static_files_come_from_the_package(client: httpx.AsyncClient) -> None:
    css = await client.get("/ui/static/trackd.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "mark[data-state" in css.text
    js = await client.get("/ui/static/trackd.js")
    assert js.headers["content-type"].startswith("text/javascript")
    # Two small files, no framework: the whole dashboard, the cosmic page's bars and Moon
    # included, stays under 12 KiB of CSS and JS.
    assert len(css.content) + len(js.content) < 12 * 1024


# --- the waterfall's layout -----------------------------------------------------------


def test_a_deep_chain_of_tasks_lays_out_without_recursion_and_bounded_indent() -> None:
    now = datetime.now(UTC)
    events = [
        TimelineEntry(
            f"e{n}",
            "step",
            now + timedelta(seconds=n),
            f"e{n - 1}" if n else None,
            "action-requests",
            "agent",
            f"t{n}",
            "trace",
            "plan",
        )
        for n in range(3000)
    ]
    rows = [
        TaskListRow(
            f"t{n}",
            "step",
            "running",
            now + timedelta(seconds=n),
            None,
            None,
            1,
            None,
            now + timedelta(seconds=n),
            "plan",
            None,
            f"e{n - 1}" if n else None,
            None,
        )
        for n in range(3000)
    ]
    laid = waterfall.build(rows, events, [], now + timedelta(seconds=3000))
    assert [r.task.task_id for r in laid.rows if r.task] == [f"t{n}" for n in range(3000)]
    assert max(r.depth for r in laid.rows) == waterfall.MAX_INDENT
    assert laid.rows[-1].open and laid.rows[-1].x + laid.rows[-1].width == waterfall.WIDTH
