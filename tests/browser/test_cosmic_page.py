"""The cosmic page in Chromium: a week of Kp bars coloured by storm level, the Moon drawn from
the stored lunar reading, the next events, a user's transits and coming exact transits, and a
history chart picked by key and field; on a phone it does not scroll sideways.

The data comes through trackd's own store: a week of solar readings recorded as the poll
records them, the Moon computed by the `lunar` source for now, and a user with a natal chart
whose last three daily transit readings are stored as the daily refresh stores them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from browser_support import PHONE, TENANT, Browse, Screenshot, Seed
from playwright.sync_api import Page, expect

from trackd.domain.access import Role
from trackd.domain.space_weather import g_scale, status_level
from trackd.modules import natal, transits
from trackd.runtime import Runtime
from trackd.snapshots.service import record_snapshot
from trackd.sources.base import Snapshot
from trackd.sources.lunar import LunarSource
from trackd.store.repos import tokens

# Kp every 3 hours for a week: quiet, with a storm rising to G3 two days ago.
HOURS = list(range(0, 7 * 24, 3))


def kp_at(hours_ago: int) -> float:
    return 7.0 if 45 <= hours_ago <= 54 else 5.33 if 36 <= hours_ago <= 60 else 1.67


async def seed_cosmic(runtime: Runtime) -> None:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    async with runtime.sessions() as s, s.begin():
        for hours_ago in reversed(HOURS):
            kp = kp_at(hours_ago)
            data = {
                "status": {
                    "level": status_level(kp),
                    "g_scale": g_scale(kp),
                    "kp": kp,
                    "kp_source": "official_3h",
                },
                "as_of": (now - timedelta(hours=hours_ago)).isoformat(),
            }
            taken = now - timedelta(hours=hours_ago)
            await record_snapshot(
                s, TENANT, Snapshot("solar", "noaa_swpc", data, taken), settings=runtime.settings
            )
        async with httpx.AsyncClient() as unused:
            [moon] = await LunarSource(clock=lambda: now).fetch({}, unused)
        await record_snapshot(s, TENANT, moon, settings=runtime.settings)


# The token of the user with a chart, by database URL (one served trackd per backend).
USER = "ada"
USER_TOKENS: dict[str, str] = {}
TRANSIT_DAYS = 3
# The aspects of the user's latest stored reading, by database URL.
LATEST_ASPECTS: dict[str, int] = {}


async def seed_transits(runtime: Runtime) -> None:
    """A user token for `USER`, their chart, and a transit reading a day for three days."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    config = transits.TransitsConfig()
    async with runtime.sessions() as s, s.begin():
        token = await tokens.create(s, TENANT, user_id=USER, role=Role.USER)
        chart = await natal.set_chart(
            s,
            TENANT,
            USER,
            birth=datetime(1990, 5, 1, 12, 0),
            timezone="Europe/Paris",
            latitude=48.85,
            longitude=2.35,
        )
    for days_ago in reversed(range(TRANSIT_DAYS)):
        sky = transits.sky_at(now - timedelta(days=days_ago), config)
        (reading,) = transits.readings(sky, [natal.longitudes(chart.points)], config)
        async with runtime.sessions() as s, s.begin():
            await record_snapshot(
                s,
                TENANT,
                Snapshot(USER, transits.SOURCE, reading, sky.instant),
                settings=runtime.settings,
            )
    USER_TOKENS[runtime.settings.database_url] = token
    LATEST_ASPECTS[runtime.settings.database_url] = len(reading["aspects"])


@pytest.fixture(scope="module")
def browser_seeds() -> list[Seed]:
    return [seed_cosmic, seed_transits]


def test_the_cosmic_page(browse: Browse, screenshot: Screenshot) -> None:
    page = browse.page()
    page.goto(browse.url("/ui"))
    page.get_by_role("link", name="Cosmic").click()
    expect(page.get_by_role("heading", name="Cosmic", exact=True)).to_be_visible()

    bars = page.locator('svg[data-chart="kp"] rect.kp')
    expect(bars).to_have_count(len(HOURS))
    expect(page.locator('rect.kp[data-level="G3"]')).to_have_count(4)
    colours = {
        level: page.locator(f'rect.kp[data-level="{level}"]').first.evaluate(
            "e => getComputedStyle(e).fill"
        )
        for level in ("quiet", "G1", "G3")
    }
    assert len(set(colours.values())) == 3, colours

    moon = page.locator('svg[data-chart="moon"]')
    expect(moon).to_be_visible()
    expect(moon.locator("path.moon-lit")).to_have_count(1)
    expect(page.get_by_role("table", name="Next events")).to_contain_text("full moon")
    expect(page.locator("main")).to_contain_text("Geomagnetic status")

    history = page.locator('svg[data-chart="history"]')
    expect(history.locator("circle")).to_have_count(len(HOURS))
    # The reader's user has no chart: the page says how to store one.
    transits_section = page.get_by_role("region", name="Your transits")
    expect(transits_section).to_contain_text("You have no natal chart yet")
    expect(transits_section).to_contain_text("trackd natal set --tenant default --user browser")
    expect(transits_section).to_contain_text("PUT /v1/me/natal")

    page.get_by_label("key").select_option("lunar_tracking")
    page.get_by_label("field").fill("phase.illumination")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/ui/cosmic?key=lunar_tracking*")
    expect(page.locator('svg[data-chart="history"] circle')).to_have_count(1)


def user_page(browse: Browse, viewport: dict[str, int] | None = None) -> Page:
    """The cosmic page, logged in through the form with the user's token."""
    page = browse.page(logged_in=False, viewport=viewport)
    page.goto(browse.url("/ui/login"))
    page.get_by_label("API token").fill(USER_TOKENS[browse.served.database_url])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(browse.url("/ui"))
    page.goto(browse.url("/ui/cosmic"))
    return page


def test_a_user_sees_their_transits_and_their_history(
    browse: Browse, screenshot: Screenshot
) -> None:
    page = user_page(browse)

    section = page.get_by_role("region", name="Your transits")
    aspects = section.locator('table[data-table="transits"] tbody tr')
    expect(aspects).to_have_count(LATEST_ASPECTS[browse.served.database_url])
    first = aspects.first.locator("td")
    expect(first).to_have_count(6)
    expect(first.nth(1)).to_have_text(re.compile("^(conjunction|sextile|square|trine|opposition)$"))
    expect(first.nth(4)).to_have_text(re.compile("^(applying|separating)$"))
    upcoming = section.locator('table[data-table="upcoming"] tbody tr')
    # A fortnight always holds at least one of the Moon's quarters.
    expect(
        upcoming.filter(has_text=re.compile("new moon|first quarter|full moon|last quarter"))
    ).not_to_have_count(0)
    expect(section).not_to_contain_text("no natal chart")
    screenshot(page, "cosmic")
    page.get_by_role("heading", name="Your transits").evaluate("e => e.scrollIntoView()")
    screenshot(page, "cosmic-transits")

    page.get_by_label("key").select_option("transit_tracking")
    page.get_by_label("field").fill("aspects")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/ui/cosmic?key=transit_tracking*")
    expect(page.locator('svg[data-chart="history"] circle')).to_have_count(TRANSIT_DAYS)


def test_the_cosmic_page_on_a_phone(browse: Browse) -> None:
    page = browse.page(viewport=PHONE)
    response = page.goto(browse.url("/ui/cosmic"))
    assert response is not None and response.status == 200
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow == 0
    # With a user's transits tables too.
    page = user_page(browse, viewport=PHONE)
    expect(page.locator('table[data-table="transits"]')).to_be_visible()
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow == 0
