"""Browser tests' helpers: a served trackd with demo-like data, driven by Playwright in Chromium.

One trackd per test module and backend (`served`, on SQLite and PostgreSQL), one browser per
module (`browser`), a fresh browser context per test. Every context:

- blocks the network beyond 127.0.0.1, so a page that needs the internet shows it;
- fails the test on any JavaScript error or console error (`Browse.allow` lets a test name a
  console message it expects, e.g. the 404 of an error page it opens on purpose).

    def test_something(browse: Browse, screenshot: Screenshot) -> None:
        page = browse.page()  # logged in through the form once per module
        page.goto(browse.url("/ui"))
        screenshot(page, "plans")  # docs/screenshots/plans.png (SQLite run only)

A module seeds more data by overriding the `browser_seeds` fixture with a list of coroutines
`async def seed(runtime: Runtime) -> None`, run after the demo's events are stored.

Chromium is Debian's (/usr/bin/chromium; `make test` installs it when missing): Playwright
never downloads a browser. Without it the tests are skipped locally and fail in CI.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Route,
)

from trackd.cli import demo
from trackd.domain.access import Role
from trackd.ingest import intake
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.store.repos import tokens
from trackd.testing import Envelope, EventFactory

CHROMIUM = os.environ.get("TRACKD_TEST_CHROMIUM", "/usr/bin/chromium")
# Quiet and self-contained: no GPU in CI, no calls home, no first-run UI. --no-sandbox because
# CI runs as root, where Chromium's sandbox refuses to start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP = {"width": 1200, "height": 760}
PHONE = {"width": 390, "height": 844}
TENANT = demo.TENANT
DEMO_PLANS = 12
HANDMADE_PLAN = "handmade-001"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "worker/export.py", line 42, in run\n'
    "    upload(report)\n"
    "PermissionError: [Errno 13] bucket 'reports' is read-only"
)

Seed = Callable[[Runtime], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Served:
    """A trackd serving on 127.0.0.1 with the demo's plans and more, for one test module."""

    url: str
    token: str  # a reader token of TENANT
    service_token: str  # may publish events to TENANT
    backend: str  # "sqlite" or "postgres"
    database_url: str
    now: datetime  # when the data was seeded: the demo's plans ran in the hour before


def handmade_plan(now: datetime) -> list[Envelope]:
    """A plan the demo does not make: a task fails with a traceback, one is cancelled before it
    ever started, and a child task runs under a parent task."""
    f = EventFactory(
        source="handmade-planner",
        now=now - timedelta(minutes=5),
        trace_id="trace-handmade",
        plan_id=HANDMADE_PLAN,
        id_prefix="hm",
    )
    events = [f.plan_started(current_state="exporting")]
    ps = events[0]

    def then(seconds: float, event: Envelope) -> Envelope:
        """Keep an event (made at the clock's time), then move the clock on."""
        f.advance(seconds)
        events.append(event)
        return event

    export = then(1, f.request("hm-export", "report.export.requested", parent=ps))
    then(1, f.progress("hm-export", "running", 0.3, "rendering pages", parent=export))
    upload = then(1, f.request("hm-upload", "report.upload.requested", parent=export))
    then(
        2,
        f.result(
            "hm-upload",
            "report.upload.completed",
            success=False,
            error=TRACEBACK,
            source="uploader",
            parent=upload,
        ),
    )
    then(
        1,
        f.result(
            "hm-export",
            "report.export.completed",
            success=False,
            error="upload failed",
            source="exporter",
            parent=export,
        ),
    )
    queued = then(0, f.state_changed("hm-notify", None, "pending", "queued", parent=ps))
    gone = then(
        1, f.state_changed("hm-notify", "pending", "cancelled", "export failed", parent=queued)
    )
    then(1, f.plan_failed(current_state="export failed", reason="upload failed", parent=gone))
    return events


async def seed_all(settings: Settings, now: datetime, extra: list[Seed]) -> tuple[str, str]:
    """Store the demo's plans and the handmade one as producers would send them; return a
    reader token and a service token."""
    runtime = Runtime.build(settings)
    try:
        async with runtime.sessions() as session, session.begin():
            reader = await tokens.create(session, TENANT, user_id="browser", role=Role.READER)
            service = await tokens.create(session, TENANT, user_id=None, role=Role.SERVICE)
        _, past = demo.simulate(DEMO_PLANS, now)
        await demo.seed(runtime, [*past, *handmade_plan(now)])
        for more in extra:
            await more(runtime)
    finally:
        await runtime.bus.close()
        await runtime.engine.dispose()
    return reader, service


async def publish(runtime: Runtime, events: list[Envelope], tenant: str = TENANT) -> None:
    """For `browser_seeds`: publish events and wait until they are stored."""
    ok, refused = intake.check(events, tenant)
    assert not refused, refused
    await demo.seed(runtime, ok)


def _local_only(route: Route) -> None:
    if urlsplit(route.request.url).hostname == "127.0.0.1":
        route.continue_()
    else:
        route.abort("internetdisconnected")


@dataclass
class Browse:
    """Opens pages on `served` in fresh contexts and collects what goes wrong in them."""

    served: Served
    browser: Browser
    login_state: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.served.url + path

    def allow(self, pattern: str) -> None:
        """Accept console errors matching `pattern` (a regex) for the rest of the test."""
        self.allowed.append(re.compile(pattern))

    def page(self, *, logged_in: bool = True, viewport: dict[str, int] | None = None) -> Page:
        """A new page in a context of its own; logged in unless told otherwise."""
        state = self._login_state() if logged_in else None
        context = self.browser.new_context(
            viewport=viewport or DESKTOP,  # type: ignore[arg-type]
            storage_state=state,  # type: ignore[arg-type]
            service_workers="block",
        )
        self.contexts.append(context)
        context.route("**/*", _local_only)
        page = context.new_page()
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", self._console)
        return page

    def log_in(self, page: Page) -> None:
        """Log in through the form, as a person would."""
        page.goto(self.url("/ui/login"))
        page.get_by_label("API token").fill(self.served.token)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(self.url("/ui"))

    def _login_state(self) -> dict[str, Any]:
        if self.login_state is None:
            page = self.page(logged_in=False)
            self.log_in(page)
            self.login_state = dict(page.context.storage_state())
        return self.login_state

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        if any(p.search(message.text) for p in self.allowed):
            return
        self.problems.append(f"console error: {message.text} at {message.location}")

    def close(self) -> None:
        for context in self.contexts:
            context.close()


Screenshot = Callable[[Page, str], None]
