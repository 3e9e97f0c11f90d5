"""The operators' and users' pages in a real browser: Debian's Chromium driven by Playwright
against trackd served on 127.0.0.1, on SQLite and PostgreSQL data seeded through trackd's
own flows (tests/integration/ops_support.py).

Each page is opened at a desktop width and at 390 px: the page must not scroll sideways
(wide tables scroll in their own box), and no script error or refused resource (a CSP
violation is a console error) may occur. With TRACKD_SCREENSHOTS=docs/screenshots the
pages' screenshots are written there for the README.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

# The seeding helpers live with the integration tests that use them too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from jobs_support import create_app_tables
from ops_support import (
    STEAM,
    notify_with_failures,
    register,
    report_chain,
    report_domain,
    rescrape,
)
from trackers_support import League, league, site

from fakes.trn_server import Reply
from trackd.api.app import create_app
from trackd.web.auth import COOKIE
from webfakes import serve

playwright_api = pytest.importorskip("playwright.async_api")

__all__ = ["league", "site"]  # fixtures

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="apt-get install chromium"),
]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


class Seeded:
    """trackd served over HTTP with the pages' data, and the ids the tests open."""

    def __init__(self, base_url: str, tokens: dict[str, str], ids: dict[str, Any]) -> None:
        self.base_url = base_url
        self.tokens = tokens
        self.ids = ids


@pytest_asyncio.fixture
async def served(league: League) -> AsyncIterator[Seeded]:
    await create_app_tables(league.runtime.engine)
    app = create_app(league.runtime, manage=False, jobs=report_domain(league))
    [steam] = await register(league, "alice", league.profile(STEAM, rating=1480))
    assert await league.work() == 1
    await rescrape(league, steam["id"], STEAM, 1530)
    await notify_with_failures(league, steam["id"])
    await rescrape(league, steam["id"], STEAM, 1610)
    # Last, so that no later work() runs it again once its host's wait is over.
    [blocked] = await register(league, "bob", league.profile("76561198000000004"))
    league.site.script(
        "steam", "76561198000000004", Reply(429, "slow down", headers={"Retry-After": "900"})
    )
    assert await league.work() == 1
    async with serve(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as api:
            *_, failed_task = await report_chain(league, api)
        tokens = {who: h["Authorization"].removeprefix("Bearer ") for who, h in league.auth.items()}
        ids = {"tracker": steam["id"], "blocked": blocked["id"], "failed_task": failed_task}
        yield Seeded(base_url, tokens, ids)


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def open_as(
    browser: Any, seeded: Seeded, who: str, viewport: dict[str, int]
) -> tuple[Any, list[str]]:
    """A page logged in as `who` (the login cookie set as the login form sets it), and the
    script errors and console errors it records."""
    context = await browser.new_context(viewport=viewport, service_workers="block")
    host = seeded.base_url.split("//", 1)[1].split(":")[0]
    await context.add_cookies(
        [
            {
                "name": COOKIE,
                "value": seeded.tokens[who],
                "domain": host,
                "path": "/ui",
                "httpOnly": True,
                "sameSite": "Strict",
            }
        ]
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"script error: {exc}"))

    def console(msg: Any) -> None:
        # The browser asks for /favicon.ico by itself; trackd has none, which is no page's fault.
        if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico"):
            errors.append(f"console: {msg.text} at {msg.location.get('url')}")

    page.on("console", console)
    return page, errors


async def visit(page: Any, seeded: Seeded, path: str) -> None:
    response = await page.goto(seeded.base_url + path)
    assert response is not None and response.status == 200, path
    await page.wait_for_load_state("load")


async def sideways_overflow(page: Any) -> int:
    """How many pixels the page is wider than the window (0 when it does not scroll sideways)."""
    overflow: int = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return overflow


def screenshot_dir(tmp_path: Path) -> Path:
    wanted = os.environ.get("TRACKD_SCREENSHOTS")
    return Path(wanted) if wanted else tmp_path


async def test_ops_pages_in_chromium(served: Seeded, browser: Any, tmp_path: Path) -> None:
    shots = screenshot_dir(tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page, errors = await open_as(browser, served, "admin", DESKTOP)

    # The trackers list, then a tracker's chart by clicking through.
    await visit(page, served, "/ui/trackers")
    await page.screenshot(path=str(shots / "trackers.png"), full_page=True)
    await page.get_by_role("link", name=STEAM).click()
    await page.wait_for_load_state("load")
    chart = page.locator('svg[data-chart="rating"]')
    await chart.wait_for()
    assert await chart.locator("polyline").count() == 2  # 2v2 and 3v3
    assert await chart.locator("circle").count() == 2 * 5  # five scrapes of season 34
    box = await chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    await page.screenshot(path=str(shots / "tracker.png"), full_page=True)
    await page.get_by_role("link", name="season 33").click()
    await page.wait_for_load_state("load")
    assert "Rating in season 33" in await page.locator("h2#chart-title").inner_text()

    # Polls: the blocked one and the host it waits for; filtering by status.
    await visit(page, served, "/ui/polls")
    hosts = page.get_by_role("table", name="Hosts that refused polls", exact=False)
    assert "127.0.0.1" in await hosts.inner_text()
    await page.screenshot(path=str(shots / "polls.png"), full_page=True)
    await page.get_by_label("status", exact=True).select_option("blocked")
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_load_state("load")
    assert page.url.endswith("status=blocked&source=")
    rows = page.get_by_role("table", name="Polls, newest first").locator("tbody tr")
    assert await rows.count() == 1
    assert "rate limiting" in await rows.first.inner_text()

    # The outbox: pending, retrying and dead with their errors, and masked URLs.
    await visit(page, served, "/ui/outbox")
    text = await page.locator("main").inner_text()
    assert "HTTP 404" in text and "HTTP 500" in text and "s3cr3t" not in text
    await page.screenshot(path=str(shots / "outbox.png"), full_page=True)

    # Jobs: the domain's tasks, a failed one's page with its error and chain.
    await visit(page, served, "/ui/jobs")
    await page.get_by_role("link", name="report").click()
    await page.wait_for_load_state("load")
    await page.screenshot(path=str(shots / "jobs.png"), full_page=True)
    failed = served.ids["failed_task"]
    await page.get_by_role("link", name=f"#{failed}", exact=True).first.click()
    await page.wait_for_load_state("load")
    assert "the template <b>is</b> missing" in await page.get_by_role("alert").inner_text()
    assert "runs after" in await page.locator("main").inner_text()
    await page.screenshot(path=str(shots / "job_task.png"), full_page=True)
    assert errors == []

    # A phone: nothing scrolls sideways; the wide tables scroll in their own boxes.
    phone, phone_errors = await open_as(browser, served, "admin", PHONE)
    for path in (
        "/ui/trackers",
        f"/ui/trackers/{served.ids['tracker']}",
        "/ui/polls",
        "/ui/schedules",
        "/ui/outbox",
        "/ui/jobs",
        "/ui/jobs/report",
        f"/ui/jobs/report/{failed}",
    ):
        await visit(phone, served, path)
        assert await sideways_overflow(phone) == 0, path
        if path.startswith("/ui/trackers/"):
            await phone.screenshot(path=str(shots / "tracker-390.png"), full_page=True)
    assert phone_errors == []


async def test_a_user_sees_only_their_own(served: Seeded, browser: Any) -> None:
    page, errors = await open_as(browser, served, "alice", DESKTOP)
    await visit(page, served, "/ui/trackers")
    links = page.get_by_role("table", name="Trackers").get_by_role("link")
    assert await links.all_inner_texts() == [STEAM]
    response = await page.goto(f"{served.base_url}/ui/trackers/{served.ids['blocked']}")
    assert response is not None and response.status == 403
    assert "another user's" in await page.locator("main").inner_text()
    response = await page.goto(f"{served.base_url}/ui/polls")
    assert response is not None and response.status == 403
    # The browser reports each refused page as a failed load; nothing else may go wrong.
    assert [e for e in errors if "status of 403" not in e] == []
    assert len(errors) == 2
