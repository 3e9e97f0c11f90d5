"""The observer pages in Chromium: the tenant's observed users, runs and findings; a finding
with its figures (equal to the API's) and its three charts, whose points match the data; who
may see what; on a phone nothing scrolls sideways.

The data comes through trackd's own code: a solar history, journals (ada's energy 3 points
lower on storm days, bob's noise), and a run of the real analysis per user stored by the
observer's runs code; another tenant has a finding of its own.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from browser_support import PHONE, TENANT, Browse, Screenshot, Seed
from playwright.sync_api import Page, expect

from observer_seed import DAYS, TESTS_PER_RUN, seed_observed
from trackd.domain.access import Role
from trackd.runtime import Runtime
from trackd.store.repos import observer as observer_repo
from trackd.store.repos import tokens

OTHER_TENANT = "globex"
# By database URL (one served trackd per backend): user tokens, and ids worth opening.
USER_TOKENS: dict[str, dict[str, str]] = {}
IDS: dict[str, dict[str, str]] = {}


async def seed_observer(runtime: Runtime) -> None:
    await seed_observed(runtime.sessions, TENANT, {"ada": -3.0, "bob": 0.0})
    await seed_observed(runtime.sessions, OTHER_TENANT, {"zed": -3.0}, seed=12)
    async with runtime.sessions() as s, s.begin():
        USER_TOKENS[runtime.settings.database_url] = {
            user: await tokens.create(s, TENANT, user_id=user, role=Role.USER)
            for user in ("ada", "bob")
        }
        ada = await observer_repo.findings(s, TENANT, "ada")
        (storm,) = [f for f in ada if (f.outcome, f.driver, f.lag) == ("energy", "storm_day", 0)]
        (elsewhere, *_) = await observer_repo.findings(s, OTHER_TENANT, "zed")
    IDS[runtime.settings.database_url] = {"storm": str(storm.id), "other": str(elsewhere.id)}


@pytest.fixture(scope="module")
def browser_seeds() -> list[Seed]:
    return [seed_observer]


def api(browse: Browse, path: str, **params: Any) -> Any:
    """What the API answers the reader token."""
    response = httpx.get(
        browse.url(path),
        params=params,
        headers={"Authorization": f"Bearer {browse.served.token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def as_user(browse: Browse, user: str, viewport: dict[str, int] | None = None) -> Page:
    page = browse.page(logged_in=False, viewport=viewport)
    page.goto(browse.url("/ui/login"))
    page.get_by_label("API token").fill(USER_TOKENS[browse.served.database_url][user])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(browse.url("/ui"))
    return page


def test_the_observer_page_lists_users_runs_and_findings(
    browse: Browse, screenshot: Screenshot
) -> None:
    page = browse.page()
    page.goto(browse.url("/ui"))
    page.get_by_role("navigation", name="main").get_by_role("link", name="Observer").click()
    expect(page.get_by_role("heading", name="Observer", exact=True)).to_be_visible()
    expect(page.get_by_role("list", name="observed users").get_by_role("listitem")).to_have_text(
        ["ada", "bob"]
    )
    runs = page.locator('table[data-table="runs"] tbody tr')
    expect(runs).to_have_count(2)
    expect(runs.locator('[data-field="tests_run"]')).to_have_text([str(TESTS_PER_RUN)] * 2)
    bob_run = api(browse, "/v1/observer/runs", user="bob")["runs"][0]
    bob_row = page.locator(f'tr[data-run="{bob_run["id"]}"]')
    # bob's journal is noise: his run (seeded, the same on both backends) finds nothing.
    assert bob_run["found"] == 0
    expect(bob_row.locator('[data-field="found"]')).to_have_text("0")
    expect(bob_row).to_contain_text(f"{TESTS_PER_RUN} tests were run and none passed")

    holding = [
        f
        for user in ("ada", "bob")
        for f in api(browse, "/v1/observer/findings", user=user)["findings"]
    ]
    rows = page.locator('table[data-table="findings"] tbody tr')
    expect(rows).to_have_count(len(holding))
    screenshot(page, "observer")

    strict = [f for f in holding if f["q"] <= 0.001]
    page.get_by_label("max q").fill("0.001")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/ui/observer?*max_q=0.001*")
    if strict:
        expect(rows).to_have_count(len(strict))
    else:
        expect(page.get_by_role("region", name="Findings")).to_contain_text("No finding")
    page.get_by_label("status").select_option("stopped")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("region", name="Findings")).to_contain_text("No finding stopped")


def test_a_finding_shows_the_apis_numbers_and_its_charts(
    browse: Browse, screenshot: Screenshot
) -> None:
    finding_id = IDS[browse.served.database_url]["storm"]
    (shown,) = [
        f
        for f in api(browse, "/v1/observer/findings", user="ada")["findings"]
        if f["id"] == finding_id
    ]
    page = browse.page()
    page.goto(browse.url("/ui/observer?user=ada"))
    page.get_by_role("link", name=shown["sentence"]).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("a geomagnetic storm")
    expect(page.locator('[data-field="sentence"]')).to_have_text(shown["sentence"])
    for name in ("effect", "ci_low", "ci_high", "p", "q", "n_days", "lag"):
        value = page.locator(f'[data-field="{name}"]').get_attribute("data-value")
        assert value is not None and float(value) == pytest.approx(shown[name], rel=1e-12), name
    expect(page.locator('[data-field="status"]')).to_have_text("holding")

    levels = page.get_by_role("img", name="mean energy per level of a geomagnetic storm")
    expect(levels.locator("g.estimate")).to_have_count(2)
    expect(levels.locator("g.estimate title")).to_contain_text(
        [f"storm days: mean {shown['details']['means'][0]:.2f}", "other days: mean"]
    )
    lags = page.get_by_role("img", name="difference in means")
    expect(lags.locator("g.estimate")).to_have_count(3)
    expect(lags.locator("g.estimate[data-marked] title")).to_contain_text(
        f"lag 0: {shown['effect']:.3f}"
    )
    outcome = page.get_by_role("img", name="energy per day")
    expect(outcome.locator("circle")).to_have_count(DAYS)
    driver = page.get_by_role("img", name="a geomagnetic storm per day, moved 0 days later")
    expect(driver.locator("circle")).to_have_count(DAYS)
    screenshot(page, "observer-finding")
    page.get_by_role("heading", name="The effect by lag").evaluate("e => e.scrollIntoView()")
    screenshot(page, "observer-finding-charts")


def test_who_may_see_which_finding(browse: Browse) -> None:
    browse.allow(r"status of 40[034]")
    ids = IDS[browse.served.database_url]
    page = as_user(browse, "bob")
    response = page.goto(browse.url(f"/ui/observer/findings/{ids['storm']}"))
    assert response is not None and response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("only that user's findings")
    page.goto(browse.url("/ui/observer"))
    expect(page.get_by_role("list", name="observed users").get_by_role("listitem")).to_have_text(
        ["bob"]
    )
    expect(page.locator("body")).not_to_contain_text("ada")
    response = page.goto(browse.url("/ui/observer?user=ada"))
    assert response is not None and response.status == 403

    reader = browse.page()
    for missing in (ids["other"], "00000000-0000-0000-0000-000000000000", "not-an-id"):
        response = reader.goto(browse.url(f"/ui/observer/findings/{missing}"))
        assert response is not None and response.status == 404, missing
    response = reader.goto(browse.url("/ui/observer?max_q=2"))
    assert response is not None and response.status == 400

    ada = as_user(browse, "ada")
    response = ada.goto(browse.url(f"/ui/observer/findings/{ids['storm']}"))
    assert response is not None and response.status == 200


def test_the_observer_pages_on_a_phone(browse: Browse) -> None:
    page = browse.page(viewport=PHONE)
    finding = IDS[browse.served.database_url]["storm"]
    for path in ("/ui/observer", f"/ui/observer/findings/{finding}"):
        response = page.goto(browse.url(path))
        assert response is not None and response.status == 200
        width = page.evaluate("() => document.scrollingElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width} px wide"
