"""The operators' and users' pages in Chromium: a tracker's rating chart, the polls page with
its blocked host and filters, the outbox, a jobs domain and a failed task's chain; a phone
screen that never scrolls sideways; a user who sees only their own trackers.

The data comes through trackd's own flows (tests/integration/ops_support.py): trackers
registered over the API and polled by a real poller from the local fake stats site, ratings
changed and polled again, notifications delivered by the notifier to a local receiver, job
tasks created over `/v1/tasks` and run by the domain's service.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import PHONE, TENANT, Browse, Screenshot, Seed
from playwright.sync_api import Page, expect

# The seeding helpers live with the integration tests, which use them too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from jobs_support import create_app_tables
from league_support import Clock, League
from ops_support import (
    STEAM,
    notify_with_failures,
    poll_again,
    register,
    report_chain,
    report_domain,
)

from fakes.trn_server import FakeStatsSite, Reply
from trackd.app import create_app
from trackd.domain.access import Role
from trackd.runtime import Runtime
from trackd.store.repos import tokens

BLOCKED_PLAYER = "76561198000000004"
# What the seed made, for the tests of the module's trackd (one backend at a time).
seeded: dict[str, Any] = {}


async def seed_ops(runtime: Runtime) -> None:
    await create_app_tables(runtime.engine)
    async with runtime.sessions() as s, s.begin():
        issued = {
            "alice": await tokens.create(s, TENANT, user_id="alice", role=Role.USER),
            "bob": await tokens.create(s, TENANT, user_id="bob", role=Role.USER),
            "bot": await tokens.create(s, TENANT, user_id=None, role=Role.SERVICE),
        }
    auth = {who: {"Authorization": f"Bearer {token}"} for who, token in issued.items()}
    app = create_app(runtime, manage=False, jobs=report_domain(runtime))
    transport = httpx.ASGITransport(app=app)
    with FakeStatsSite() as site:
        async with httpx.AsyncClient(transport=transport, base_url="http://trackd.test") as api:
            league = League(runtime, api, site, auth, Clock())
            [steam] = await register(league, "alice", league.profile(STEAM, rating=1480))
            assert await league.work() == 1
            await poll_again(league, steam["id"], STEAM, 1530)
            await notify_with_failures(league, steam["id"])
            await poll_again(league, steam["id"], STEAM, 1610)
            # Last, so that no later work() retries it once its host's wait is over.
            [blocked] = await register(league, "bob", league.profile(BLOCKED_PLAYER))
            league.site.script(
                "steam", BLOCKED_PLAYER, Reply(429, "slow down", headers={"Retry-After": "900"})
            )
            assert await league.work() == 1
            *_, failed_task = await report_chain(league, api, TENANT)
    seeded.update(
        tokens=issued, tracker=steam["id"], blocked=blocked["id"], failed_task=failed_task
    )


@pytest.fixture(scope="module")
def browser_seeds() -> list[Seed]:
    return [seed_ops]


@pytest.fixture(scope="module")
def browser_jobs() -> Any:
    return report_domain


def test_a_trackers_rating_chart(browse: Browse, screenshot: Screenshot) -> None:
    page = browse.page()
    page.goto(browse.url("/ui/trackers"))
    expect(page.get_by_role("heading", name="League trackers")).to_be_visible()
    screenshot(page, "trackers")
    page.get_by_role("link", name=STEAM).click()
    chart = page.locator('svg[data-chart="rating"]')
    expect(chart).to_be_visible()
    expect(chart.locator("polyline")).to_have_count(2)  # 2v2 and 3v3
    expect(chart.locator("circle")).to_have_count(2 * 5)  # five polls of season 34
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    screenshot(page, "tracker")
    page.get_by_role("link", name="season 33").click()
    expect(page.locator("h2#chart-title")).to_have_text("Rating in season 33")


def test_polls_with_the_blocked_host_and_a_status_filter(
    browse: Browse, screenshot: Screenshot
) -> None:
    page = browse.page()
    page.goto(browse.url("/ui/polls"))
    hosts = page.get_by_role("table", name="Hosts that refused polls", exact=False)
    expect(hosts).to_contain_text("127.0.0.1")
    screenshot(page, "polls")
    page.get_by_label("status", exact=True).select_option("blocked")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/ui/polls?status=blocked*")
    rows = page.get_by_role("table", name="Polls, newest first").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("rate limiting")


def test_the_outbox_with_errors_and_masked_urls(browse: Browse, screenshot: Screenshot) -> None:
    page = browse.page()
    page.goto(browse.url("/ui/outbox"))
    main = page.locator("main")
    expect(main).to_contain_text("HTTP 404")
    expect(main).to_contain_text("HTTP 500")
    assert "s3cr3t" not in main.inner_text()
    screenshot(page, "outbox")


def test_a_jobs_domain_and_a_failed_tasks_chain(browse: Browse, screenshot: Screenshot) -> None:
    page = browse.page()
    page.goto(browse.url("/ui/jobs"))
    page.get_by_role("link", name="report", exact=True).click()
    expect(page.get_by_role("heading", name="Jobs: report")).to_be_visible()
    screenshot(page, "jobs")
    failed = seeded["failed_task"]
    page.get_by_role("link", name=f"#{failed}", exact=True).first.click()
    expect(page.get_by_role("alert")).to_have_text("the template <b>is</b> missing")
    expect(page.locator("main")).to_contain_text("runs after")
    screenshot(page, "job_task")


def phone_pages() -> list[str]:
    return [
        "/ui/trackers",
        f"/ui/trackers/{seeded['tracker']}",
        "/ui/polls",
        "/ui/schedules",
        "/ui/outbox",
        "/ui/jobs",
        "/ui/jobs/report",
        f"/ui/jobs/report/{seeded['failed_task']}",
    ]


def sideways_overflow(page: Page) -> int:
    """How many pixels the page is wider than the window (0 when it does not scroll sideways)."""
    overflow: int = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return overflow


def test_no_page_scrolls_sideways_on_a_phone(browse: Browse, screenshot: Screenshot) -> None:
    page = browse.page(viewport=PHONE)
    for path in phone_pages():
        response = page.goto(browse.url(path))
        assert response is not None and response.status == 200, path
        assert sideways_overflow(page) == 0, path
        if path.startswith("/ui/trackers/"):
            screenshot(page, "phone-tracker")


def log_in_as(browse: Browse, who: str) -> Page:
    page = browse.page(logged_in=False)
    page.goto(browse.url("/ui/login"))
    page.get_by_label("API token").fill(seeded["tokens"][who])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(browse.url("/ui"))
    return page


def test_a_user_sees_only_their_own_trackers(browse: Browse) -> None:
    page = log_in_as(browse, "alice")
    page.goto(browse.url("/ui/trackers"))
    links = page.get_by_role("table", name="Trackers").get_by_role("link")
    assert links.all_inner_texts() == [STEAM]
    browse.allow("status of 403")  # the two pages refused below, on purpose
    response = page.goto(browse.url(f"/ui/trackers/{seeded['blocked']}"))
    assert response is not None and response.status == 403
    expect(page.locator("main")).to_contain_text("another user's")
    response = page.goto(browse.url("/ui/polls"))
    assert response is not None and response.status == 403
