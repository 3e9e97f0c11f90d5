"""The dashboard's operators' and users' pages (trackers, polls, schedules, outbox, jobs) on
SQLite and PostgreSQL, read with a browser's cookie.

Everything shown is made by trackd's own flows: trackers registered over the API and polled
by a real poller from the local fake stats site, ratings changed there and polled again,
notifications queued by those changes and delivered by the notifier to a local receiver,
job tasks created over `/v1/tasks` and run by the domain's service.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from jobs_support import create_app_tables
from league_support import League, league, site, url
from ops_support import (
    HOOK_SECRET,
    STEAM,
    notify_with_failures,
    poll_again,
    register,
    report_chain,
    report_domain,
)

from fakes.trn_server import Reply
from trackd.app import create_app
from trackd.domain.access import Role
from trackd.store.repos import tokens
from trackd.web.auth import COOKIE

__all__ = ["league", "site"]  # fixtures

pytestmark = pytest.mark.timeout(90)

BASE = "http://trackd.test"


@dataclass
class Dashboard:
    """The app with a job domain mounted, and a browser-like client per token."""

    league: League
    app: Any
    browsers: dict[str, httpx.AsyncClient]
    api: httpx.AsyncClient  # the same app with a bearer token's header, as a program calls it

    async def get(self, who: str, path: str, **params: Any) -> httpx.Response:
        return await self.browsers[who].get(path, params=params)


@pytest_asyncio.fixture
async def dashboard(league: League) -> AsyncIterator[Dashboard]:
    await create_app_tables(league.runtime.engine)
    registry = report_domain(league.runtime)
    app = create_app(league.runtime, manage=False, jobs=registry)
    async with league.runtime.sessions() as s, s.begin():
        issued = {"globex-reader": await tokens.create(s, "globex", user_id=None, role=Role.READER)}
    issued |= {w: h["Authorization"].removeprefix("Bearer ") for w, h in league.auth.items()}
    browsers = {}
    for who, token in issued.items():
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
        client.cookies.set(COOKIE, token, domain="trackd.test", path="/ui")
        browsers[who] = client
    api = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
    try:
        yield Dashboard(league, app, browsers, api)
    finally:
        for client in [*browsers.values(), api]:
            await client.aclose()


def table_rows(html: str, caption: str) -> list[str]:
    """The body rows of the table with this caption, as text without tags."""
    match = re.search(rf"<caption>{re.escape(caption)}</caption>(.*?)</table>", html, re.S)
    assert match, f"no table {caption!r}"
    body = match.group(1).split("<tbody>")[1]
    return [re.sub(r"<[^>]+>", " ", row) for row in body.split("<tr>")[1:]]


def assert_error_page(response: httpx.Response, status: int, text: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert text in response.text


async def test_trackers_list_and_a_trackers_rating_chart(dashboard: Dashboard) -> None:
    league = dashboard.league
    [steam, psn] = await register(
        league, "alice", league.profile(STEAM, rating=1500), url("psn", "nssbali_")
    )
    [bobs] = await register(league, "bob", league.profile("76561198000000002"))
    assert await league.work() == 3
    await poll_again(league, steam["id"], STEAM, 1600)
    await poll_again(league, steam["id"], STEAM, 1550)

    everyone = (await dashboard.get("reader", "/ui/trackers")).text
    assert len(table_rows(everyone, "Trackers")) == 3
    assert "COMPLETED" in everyone
    mine = (await dashboard.get("alice", "/ui/trackers")).text
    assert bobs["id"] not in mine
    assert steam["id"] in mine and psn["id"] in mine
    only_psn = (await dashboard.get("reader", "/ui/trackers", platform="psn")).text
    assert [psn["id"]] == re.findall(r'href="/ui/trackers/([0-9a-f-]{36})"', only_psn)
    by_user = (await dashboard.get("reader", "/ui/trackers", user="bob")).text
    assert re.findall(r'href="/ui/trackers/([0-9a-f-]{36})"', by_user) == [bobs["id"]]
    # The fake site serves the recorded psn profile's current season only: its first poll,
    # which asks for the older seasons too, fails on them.
    failed = (await dashboard.get("reader", "/ui/trackers", status="FAILED")).text
    assert re.findall(r'href="/ui/trackers/([0-9a-f-]{36})"', failed) == [psn["id"]]
    assert "no such Rocket League profile" in failed
    blocked = (await dashboard.get("reader", "/ui/trackers", status="BLOCKED")).text
    assert "No tracker matches" in blocked

    # Cursor paging, newest registration first, keeping the filters.
    first = (await dashboard.get("reader", "/ui/trackers", per=2)).text
    ids = re.findall(r'href="/ui/trackers/([0-9a-f-]{36})"', first)
    assert ids == [bobs["id"], psn["id"]]
    following = re.search(r'href="([^"]+)" rel="next"', first)
    assert following
    rest = (await dashboard.browsers["reader"].get(following.group(1).replace("&amp;", "&"))).text
    assert re.findall(r'href="/ui/trackers/([0-9a-f-]{36})"', rest) == [steam["id"]]
    assert 'rel="next"' not in rest

    page = await dashboard.get("alice", f"/ui/trackers/{steam['id']}")
    assert page.status_code == 200, page.text
    html = page.text
    assert 'data-chart="rating"' in html
    # 2v2 and 3v3 in season 34, one point per poll: 1500 → 1600 → 1550, 3v3 100 below.
    assert html.count("<polyline") == 2
    assert "2v2 1,600 at" in html and "2v2 1,550 at" in html and "3v3 1,400 at" in html
    assert [r.split()[2:4] for r in table_rows(html, "Ratings per snapshot")] == [
        ["1550", "Champion"],
        ["1600", "Champion"],
        ["1500", "Champion"],
    ]
    older = await dashboard.get("alice", f"/ui/trackers/{steam['id']}", season="33")
    assert older.status_code == 200
    assert "Rating in season 33" in older.text and "2v2 1,490 at" in older.text

    assert_error_page(
        await dashboard.get("alice", f"/ui/trackers/{steam['id']}", season="7"), 404, "season"
    )
    assert_error_page(await dashboard.get("bob", f"/ui/trackers/{steam['id']}"), 403, "another")
    assert_error_page(
        await dashboard.get("globex", f"/ui/trackers/{steam['id']}"), 404, "no tracker"
    )
    assert (await dashboard.get("reader", f"/ui/trackers/{steam['id']}")).status_code == 200
    assert_error_page(await dashboard.get("reader", "/ui/trackers/not-an-id"), 422, "tracker_id")
    assert_error_page(await dashboard.get("reader", "/ui/trackers", status="LOST"), 400, "LOST")
    assert_error_page(await dashboard.get("reader", "/ui/trackers", per=0), 422, "per")
    assert_error_page(await dashboard.get("reader", "/ui/trackers", before="x"), 422, "before")


async def test_polls_page_shows_statuses_blocked_hosts_and_errors(dashboard: Dashboard) -> None:
    league = dashboard.league
    # The refused poll runs last, on its own: its 429 backs the host off, and a poll of the
    # same host that fetched after it would be blocked too, whichever order a run took.
    [ok] = await register(league, "alice", league.profile(STEAM))
    [gone] = await register(league, "bob", url("steam", "nobody"))
    assert await league.work() == 2
    added = await league.post(
        "/api/trackers/add", "alice", {"url": league.profile("76561198000000004")}
    )
    assert added.status_code == 201, added.text
    refused = added.json()
    league.site.script(
        "steam", "76561198000000004", Reply(429, "slow down", headers={"Retry-After": "120"})
    )
    assert await league.work() == 1

    html = (await dashboard.get("reader", "/ui/polls")).text
    counts = dict(re.findall(r'data-state="(\w+)">\w+</mark> (\d+)', html))
    assert counts["completed"] == "1" and counts["blocked"] == "1" and counts["failed"] == "1"
    assert counts["due"] == "0"  # the blocked one waits for its host
    [host] = table_rows(html, "Hosts that refused polls, with the polls waiting for them")
    assert host.split()[:2] == ["127.0.0.1", "1"]
    assert "no such Rocket League profile" in html
    assert len(table_rows(html, "Polls, newest first")) == 3

    blocked = (await dashboard.get("reader", "/ui/polls", status="blocked")).text
    [row] = table_rows(blocked, "Polls, newest first")
    assert "rate limiting" in row and "127.0.0.1" in row
    assert f"/ui/trackers/{refused['id']}" in blocked and ok["id"] not in blocked
    failed = (await dashboard.get("reader", "/ui/polls", status="failed")).text
    assert gone["id"] in failed and len(table_rows(failed, "Polls, newest first")) == 1

    schedules = (await dashboard.get("admin", "/ui/schedules", status="active")).text
    daily = table_rows(schedules, "Schedules, newest first")
    assert len(daily) == 3 and all("0 2 * * *" in row for row in daily)  # a daily one each
    assert any(f"tracker:{gone['id']}:daily" in row for row in daily)

    assert_error_page(await dashboard.get("alice", "/ui/polls"), 403, "operators")
    assert_error_page(await dashboard.get("alice", "/ui/schedules"), 403, "operators")
    assert_error_page(await dashboard.get("reader", "/ui/polls", status="lost"), 400, "lost")
    other = (await dashboard.get("globex-reader", "/ui/polls")).text
    assert "No poll matches" in other and "127.0.0.1" not in other


async def test_outbox_page_pending_retrying_dead_and_sent(dashboard: Dashboard) -> None:
    league = dashboard.league
    [tracker] = await register(league, "alice", league.profile(STEAM, rating=1500))
    assert await league.work() == 1
    await notify_with_failures(league, tracker["id"])

    html = (await dashboard.get("reader", "/ui/outbox")).text
    counts = dict(re.findall(r'data-state="(\w+)">\w+</mark> (\d+)', html))
    # Two channel messages and the bus event per change: the first change's bus event was sent.
    assert counts == {"pending": "3", "retrying": "1", "dead": "1", "sent": "1"}
    assert HOOK_SECRET not in html and "http://127.0.0.1/…" in html
    dead = (await dashboard.get("reader", "/ui/outbox", status="dead")).text
    [row] = table_rows(dead, "Messages, newest first")
    assert "HTTP 404" in row and "1/" in row
    retrying = (await dashboard.get("reader", "/ui/outbox", status="retrying")).text
    [row] = table_rows(retrying, "Messages, newest first")
    assert "HTTP 500" in row

    mine = (await dashboard.get("alice", "/ui/outbox")).text
    assert dict(re.findall(r'data-state="(\w+)">\w+</mark> (\d+)', mine)) == {
        "pending": "2",
        "retrying": "1",
        "dead": "1",
        "sent": "0",
    }
    bobs = (await dashboard.get("bob", "/ui/outbox")).text
    assert "No message matches" in bobs
    paged = (await dashboard.get("reader", "/ui/outbox", per=4)).text
    assert len(table_rows(paged, "Messages, newest first")) == 4 and 'rel="next"' in paged
    assert_error_page(await dashboard.get("reader", "/ui/outbox", status="late"), 400, "late")


async def test_jobs_pages_show_domains_tasks_and_chains(dashboard: Dashboard) -> None:
    league = dashboard.league
    root, first, second = await report_chain(league, dashboard.api)

    listing = (await dashboard.get("reader", "/ui/jobs")).text
    [row] = table_rows(listing, "Job domains")
    assert row.split()[:2] == ["report", "3"]

    tasks = (await dashboard.get("reader", "/ui/jobs/report")).text
    assert [f"#{second}", f"#{first}", f"#{root}"] == re.findall(r">(#\d+)</a></th>", tasks)
    failed = (await dashboard.get("reader", "/ui/jobs/report", status="failed")).text
    assert re.findall(r">(#\d+)</a></th>", failed) == [f"#{second}"]
    assert "the template &lt;b&gt;is&lt;/b&gt; missing" in failed
    one = (await dashboard.get("reader", "/ui/jobs/report", per=1)).text
    following = re.search(r'href="([^"]+)" rel="next"', one)
    assert following
    two = await dashboard.browsers["reader"].get(following.group(1).replace("&amp;", "&"))
    assert re.findall(r">(#\d+)</a></th>", two.text) == [f"#{first}"]

    page = (await dashboard.get("reader", f"/ui/jobs/report/{first}")).text
    assert f"/ui/jobs/report/{root}" in page  # parent
    assert re.search(rf"runs before</dt><dd><a href=\"/ui/jobs/report/{second}\"", page)
    assert ">render<" not in page and "gather" in page  # its own column, not the other's
    failed_page = (await dashboard.get("reader", f"/ui/jobs/report/{second}")).text
    assert 'role="alert"' in failed_page and "&lt;b&gt;is&lt;/b&gt;" in failed_page
    assert re.search(rf"runs after</dt><dd><a href=\"/ui/jobs/report/{first}\"", failed_page)
    parent = (await dashboard.get("reader", f"/ui/jobs/report/{root}")).text
    assert f"/ui/jobs/report/{first}" in parent and f"/ui/jobs/report/{second}" in parent

    assert_error_page(await dashboard.get("globex", f"/ui/jobs/report/{first}"), 404, "report")
    assert "No task matches" in (await dashboard.get("globex", "/ui/jobs/report")).text
    assert_error_page(await dashboard.get("reader", "/ui/jobs/nope"), 404, "nope")
    assert_error_page(await dashboard.get("reader", "/ui/jobs/report/0"), 422, "task_id")
    assert_error_page(await dashboard.get("reader", "/ui/jobs/report", status="x"), 400, "x")


async def test_the_pages_need_a_login(dashboard: Dashboard) -> None:
    transport = httpx.ASGITransport(app=dashboard.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as anonymous:
        for path in ("/ui/trackers", "/ui/polls", "/ui/schedules", "/ui/outbox", "/ui/jobs"):
            response = await anonymous.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"] == "/ui/login"
