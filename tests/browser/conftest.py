"""Fixtures of the browser tests; what they give is described in browser_support.py."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SCREENSHOTS,
    Browse,
    Screenshot,
    Seed,
    Served,
    seed_all,
)
from playwright.sync_api import Browser, Page, expect, sync_playwright

from loops import run_aside
from trackd.app import create_app
from trackd.jobs.api import DomainRegistry
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.testing_server import LocalServer


@pytest.fixture(scope="module")
def browser_seeds() -> list[Seed]:
    """More data for a module's trackd; override in a module to add its own."""
    return []


JobDomains = Callable[[Runtime], DomainRegistry] | None


@pytest.fixture(scope="module")
def browser_jobs() -> JobDomains:
    """The `trackd.jobs` domains a module's trackd serves, made over its runtime; override in
    a module to mount some."""
    return None


@pytest.fixture(scope="module")
def served(
    module_database_url: str, browser_seeds: list[Seed], browser_jobs: JobDomains
) -> Iterator[Served]:
    """trackd serving the module's database (SQLite, then PostgreSQL) from a thread."""
    settings = Settings(database_url=module_database_url, publish_timeout_s=15)
    now = datetime.now(UTC).replace(microsecond=0)
    reader, service = run_aside(seed_all(settings, now, browser_seeds))
    runtime = Runtime.build(settings)
    backend = "sqlite" if module_database_url.startswith("sqlite") else "postgres"
    app = create_app(runtime, jobs=browser_jobs(runtime) if browser_jobs else None)
    with LocalServer(app, lifespan="on") as server:
        yield Served(server.url, reader, service, backend, module_database_url, now)


@pytest.fixture(scope="session")
def _templates_first(request: pytest.FixtureRequest) -> None:
    # The database templates are async fixtures run on pytest-asyncio's loop, which cannot
    # run in this thread once Playwright's sync API keeps its own loop here: make them first.
    request.getfixturevalue("sqlite_template")
    if os.environ.get("TRACKD_TEST_POSTGRES_URL"):
        request.getfixturevalue("postgres_template")


# Assertions wait for the page to show what they expect; on a busy machine (CI shares cores)
# a page may take longer than Playwright's default 5 s to get there.
expect.set_options(timeout=20_000)


@pytest.fixture(scope="module")
def browser(_templates_first: None) -> Iterator[Browser]:
    """Debian's Chromium, headless, shared by a module's tests.

    Per module, not per session: while Playwright's sync API is open it keeps an event loop
    marked running in this thread, and every async test after it (pytest-asyncio runs them
    in this thread) would fail. Closing it when the module ends gives the thread back.
    """
    if not Path(CHROMIUM).exists():
        message = f"no Chromium at {CHROMIUM}; `make test` installs Debian's chromium package"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def _login_states() -> dict[str, dict[str, Any]]:
    return {}


@pytest.fixture
def browse(
    served: Served, browser: Browser, _login_states: dict[str, dict[str, Any]]
) -> Iterator[Browse]:
    """Pages on the module's trackd; the test fails on any JS or console error in them."""
    helper = Browse(served, browser, _login_states.get(served.url))
    try:
        yield helper
        if helper.login_state is not None:
            _login_states[served.url] = helper.login_state
        assert not helper.problems, "\n".join(helper.problems)
    finally:
        helper.close()


@pytest.fixture
def screenshot(served: Served) -> Screenshot:
    """Save the page as docs/screenshots/NAME.png for the docs (on the SQLite run only,
    so that one run writes each file once)."""

    def take(page: Page, name: str) -> None:
        if served.backend != "sqlite":
            return
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)

    return take
