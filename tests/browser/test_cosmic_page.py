"""The cosmic page in Chromium: a week of Kp bars coloured by storm level, the Moon drawn from
the stored lunar reading, the next events, and a history chart picked by key and field; on a
phone it does not scroll sideways.

The data comes through trackd's own store: a week of solar readings recorded as the poll
records them, and the Moon computed by the `lunar` source for now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from browser_support import PHONE, TENANT, Browse, Screenshot, Seed
from playwright.sync_api import expect

from trackd.domain.space_weather import g_scale, status_level
from trackd.runtime import Runtime
from trackd.snapshots.service import record_snapshot
from trackd.sources.base import Snapshot
from trackd.sources.lunar import LunarSource

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


@pytest.fixture(scope="module")
def browser_seeds() -> list[Seed]:
    return [seed_cosmic]


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
    screenshot(page, "cosmic")

    page.get_by_label("key").select_option("lunar_tracking")
    page.get_by_label("field").fill("phase.illumination")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/ui/cosmic?key=lunar_tracking*")
    expect(page.locator('svg[data-chart="history"] circle')).to_have_count(1)


def test_the_cosmic_page_on_a_phone(browse: Browse) -> None:
    page = browse.page(viewport=PHONE)
    response = page.goto(browse.url("/ui/cosmic"))
    assert response is not None and response.status == 200
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow == 0
