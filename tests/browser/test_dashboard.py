"""The dashboard as a person uses it, in Chromium: plans, a plan's waterfall, a failed task's
error, an anomaly, the tasks across plans (filters, paging, live rows), metrics whose totals
add up, a phone-sized screen, error pages and the API docs with no internet."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
from browser_support import PHONE, TRACEBACK, Browse, Screenshot
from playwright.sync_api import Page, expect

# Every page of the dashboard, as a path to open (plan and task pages from the demo's data).
PHONE_PAGES = [
    "/ui",
    "/ui/tasks",
    "/ui/metrics",
    "/ui/plans/handmade-001",
    "/ui/tasks/hm-upload",
    "/ui/plans/no-such-plan",
    "/ui/observer",
]


def open_first_failed_plan(page: Page) -> str:
    row = page.locator("tbody tr", has=page.locator('mark[data-state="failed"]')).first
    link = row.get_by_role("link").first
    name = link.inner_text()
    link.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    return name


def test_from_plans_to_a_failed_plan_to_its_failed_task_and_its_error(
    browse: Browse, screenshot: Screenshot
) -> None:
    page = browse.page()
    page.goto(browse.url("/ui"))
    expect(page.get_by_role("heading", name="Plans")).to_be_visible()
    screenshot(page, "plans")

    open_first_failed_plan(page)
    trace = page.get_by_role("region", name="Trace")
    failed = trace.locator("tbody tr", has=page.locator('mark[data-state="failed"]')).first
    error = failed.locator("small.error").inner_text()
    assert error  # the error is on the waterfall, next to the failed task
    screenshot(page, "plan")

    failed.get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Task")
    assert error in page.locator("pre.error").first.inner_text()
    attempts = page.get_by_role("region", name="Attempts")
    expect(attempts.locator('mark[data-state="failed"]').first).to_be_visible()


def test_a_task_page_shows_a_traceback_a_parent_and_a_task_cancelled_before_it_ran(
    browse: Browse, screenshot: Screenshot
) -> None:
    page = browse.page()
    page.goto(browse.url("/ui/plans/handmade-001"))
    waterfall = page.get_by_role("region", name="Trace")
    cancelled = waterfall.locator('tr[data-task="hm-notify"]')
    expect(cancelled.locator("circle[data-state=cancelled]")).to_have_count(1)
    expect(cancelled.locator("td").nth(1)).to_have_text("-")  # no 0.0 s for a task never run
    upload = waterfall.locator('tr[data-task="hm-upload"] th')
    assert "d1" in (upload.get_attribute("class") or "")  # under the export that started it
    upload.get_by_role("link").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Task hm-upload")
    assert page.locator("pre.error").first.inner_text() == TRACEBACK
    page.get_by_role("link", name="hm-export").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Task hm-export")
    expect(page.get_by_role("link", name="hm-upload")).to_be_visible()  # its child
    page.goto(browse.url("/ui/tasks/hm-upload"))
    screenshot(page, "task")


def test_an_anomaly_is_found_on_its_plan_and_explained_on_its_task(
    browse: Browse,
) -> None:
    page = browse.page()
    page.goto(browse.url("/ui"))
    plans = page.get_by_role("region", name="plans")
    flagged = plans.locator("tbody tr", has=page.locator('mark[data-state="anomaly"]'))
    assert flagged.count() == 2  # the demo's watchdog plans (its twists repeat every 6 plans)
    flagged.first.get_by_role("link").click()
    badge = page.locator('mark[data-state="anomaly"]')
    reason = badge.first.get_attribute("title") or ""
    assert "conflicting terminal events" in reason
    page.locator("tr", has=badge.first).get_by_role("link").first.click()
    anomalies = page.locator("#anomalies + p + ul")
    expect(anomalies).to_contain_text(reason)


def test_tasks_filter_page_and_follow_new_events_live(
    browse: Browse, screenshot: Screenshot
) -> None:
    page = browse.page()
    page.goto(browse.url("/ui/tasks"))
    table = page.get_by_role("region", name="tasks")
    first_page = table.locator("tbody tr td:first-child code").all_inner_texts()
    assert len(first_page) == 25
    screenshot(page, "tasks")

    page.get_by_role("link", name="next page").click()
    second_page = table.locator("tbody tr td:first-child code").all_inner_texts()
    assert second_page and not set(second_page) & set(first_page)

    page.goto(browse.url("/ui/tasks"))
    page.get_by_label("state").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    states = table.locator("tbody mark").all_inner_texts()
    assert states and set(states) == {"failed"}
    page.get_by_label("task id contains").fill("hm-up")
    page.get_by_role("button", name="Filter").click()
    expect(table.locator("tbody tr td:first-child code")).to_have_text(["hm-upload"])

    # A task that starts while the page is open appears without a reload.
    page.goto(browse.url("/ui/tasks"))
    marker = page.evaluate("() => (window.stays = 'this page')")
    event = {
        "id": "live-1",
        "source": "browser-test",
        "specversion": "1.0",
        "type": "live.check.requested",
        "topic": "action-requests",
        "correlation_id": "live-task",
        "time": datetime.now(UTC).isoformat(),
        "data": {},
    }
    response = httpx.post(
        browse.url("/v1/events"),
        json=event,
        headers={"Authorization": f"Bearer {browse.served.service_token}"},
    )
    assert response.status_code == 202, response.text
    expect(table.get_by_text("live-task")).to_be_visible(timeout=30_000)
    assert page.evaluate("() => window.stays") == marker  # the same page: no reload


def test_metrics_count_every_task_once_and_the_totals_add_up(
    browse: Browse, screenshot: Screenshot
) -> None:
    page = browse.page()
    page.goto(browse.url("/ui/metrics?period=24h"))
    table = page.get_by_role("region", name="Tasks by agent")
    header = [h.lower() for h in table.locator("thead th").all_inner_texts()[1:]]
    assert header == [
        "pending",
        "running",
        "delegated",
        "waiting",
        "completed",
        "failed",
        "cancelled",
        "total",
    ]

    def numbers(row: str) -> list[int]:
        return [int(n) for n in table.locator(f"{row} td").all_inner_texts()]

    rows = [
        numbers(f"tbody tr:nth-child({n + 1})") for n in range(table.locator("tbody tr").count())
    ]
    totals = numbers("tfoot tr")
    for row in rows:
        assert sum(row[:-1]) == row[-1]
    assert [sum(column) for column in zip(*rows, strict=True)] == totals
    assert totals[header.index("cancelled")] >= 1  # the handmade plan's hm-notify
    assert totals[header.index("failed")] >= 2

    # Every task of the demo is counted: the total is the number of tasks on the tasks page.
    page2 = browse.page()
    count = 0
    url = "/ui/tasks"
    while url:
        page2.goto(browse.url(url))
        count += page2.locator("tbody tr td:first-child code").count()
        nxt = page2.get_by_role("link", name="next page")
        url = (nxt.get_attribute("href") or "") if nxt.count() else ""
    assert totals[-1] == count

    chart = page.get_by_role("img", name="Durations over time")
    # Every point is a dot; when the demo's tasks ended in hours apart (it depends on the hour
    # the test runs), there is no line between them, so the dots are what must show.
    expect(chart.locator("circle").first).to_be_visible()
    for line in chart.locator("polyline").all():
        assert len(line.get_attribute("points").split()) > 1
    screenshot(page, "metrics")


def test_no_page_scrolls_sideways_on_a_phone(browse: Browse, screenshot: Screenshot) -> None:
    browse.allow(r"status of 404")  # the error page is one of them
    page = browse.page(viewport=PHONE)
    for path in PHONE_PAGES:
        page.goto(browse.url(path))
        width = page.evaluate("() => document.scrollingElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width} px wide"
        if path == "/ui/plans/handmade-001":
            screenshot(page, "phone-plan")


def test_the_observer_page_says_when_no_run_has_been_made(browse: Browse) -> None:
    page = browse.page()
    page.goto(browse.url("/ui/observer"))
    expect(page.get_by_role("region", name="Users")).to_contain_text("No user has a run yet")
    expect(page.get_by_role("region", name="Latest runs")).to_contain_text("No run yet")
    expect(page.get_by_role("region", name="Findings")).to_contain_text("no run has finished")


def test_error_pages_keep_the_navigation(browse: Browse) -> None:
    browse.allow(r"status of 40[04]")
    page = browse.page()
    response = page.goto(browse.url("/ui/plans/no-such-plan"))
    assert response is not None and response.status == 404
    expect(page.get_by_role("alert")).to_have_text("plan 'no-such-plan' not found")
    nav = page.get_by_role("navigation", name="main")
    nav.get_by_role("link", name="Tasks").click()
    expect(page.get_by_role("heading", name="Tasks")).to_be_visible()
    response = page.goto(browse.url("/ui/tasks?state=bogus"))
    assert response is not None and response.status == 400
    expect(page.get_by_role("navigation", name="main")).to_contain_text("Metrics")


def test_api_docs_render_with_the_network_blocked(browse: Browse, screenshot: Screenshot) -> None:
    page = browse.page(logged_in=False)
    outside: list[str] = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url)
            if not re.match(r"https?://127\.0\.0\.1[:/]", request.url)
            else None
        ),
    )
    page.goto(browse.url("/docs"))
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("trackd")
    expect(page.locator(".opblock-tag").first).to_be_visible()
    assert outside == []
    screenshot(page, "docs")
