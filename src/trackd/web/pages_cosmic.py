"""The dashboard's cosmic page: the Kp of the last seven days as bars coloured by storm level,
the Moon's phase drawn, the next events (quarters, sign ingress, void of course), the logged-in
user's transits and their next exact transits and stations, and the history of any tracking
key as a line chart. Everything is laid out here and drawn as inline SVG by the template: no
script, nothing fetched.

Any token of the tenant sees it (space weather and the Moon are the tenant's); transits and a
personal history are shown for the token's own user.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from trackd.access.deps import SessionDep
from trackd.errors import Conflict, NotFound
from trackd.modules import transits
from trackd.modules.base import Contribution
from trackd.modules.tracking import (
    history_of,
    read_history,
    read_module,
    tracking_modules,
)
from trackd.store.models import utcnow
from trackd.web.auth import Viewer
from trackd.web.line_chart import LineChart, Series, lines_over_time
from trackd.web.pages import PageRoute
from trackd.web.render import PageError, page

router = APIRouter(prefix="/ui", route_class=PageRoute, include_in_schema=False)

# The number a history's chart follows when none is asked for (a list counts its items).
DEFAULT_FIELDS = {
    "solar_tracking": "status.kp",
    "lunar_tracking": "phase.illumination",
    transits.HISTORY_KEY: "aspects",
}
# How far ahead the user's exact transits and stations are listed, and at most how many.
UPCOMING_DAYS = 14
UPCOMING_ROWS = 20
KP_DAYS = 7
MAX_POINTS = 500

BAR_WIDTH = 640
BAR_HEIGHT = 180
BAR_LEFT = 28
BAR_BOTTOM = 22


@dataclass(frozen=True, slots=True)
class KpBar:
    x: float
    y: float
    width: float
    height: float
    level: str
    title: str


@dataclass(frozen=True, slots=True)
class KpChart:
    width: int
    height: int
    left: int
    bottom: int
    bars: list[KpBar]
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]


def kp_bars(readings: list[tuple[datetime, float, str]], now: datetime) -> KpChart:
    """One bar per reading (time, Kp 0-9, status level) over the last `KP_DAYS` days, on a
    fixed 0-9 axis: a quiet week looks quiet."""
    start = now - timedelta(days=KP_DAYS)
    span = (now - start).total_seconds()
    plot_w = BAR_WIDTH - BAR_LEFT - 4
    bottom = BAR_HEIGHT - BAR_BOTTOM
    plot_h = bottom - 8
    # A 3-hour interval's width, at least a hair.
    width = max(1.0, round(plot_w * 3 * 3600 / span - 1, 1))

    def x(moment: datetime) -> float:
        return round(BAR_LEFT + plot_w * (moment - start).total_seconds() / span, 1)

    bars = []
    for moment, kp, level in sorted(readings):
        if not start <= moment <= now:
            continue
        height = round(plot_h * min(max(kp, 0.0), 9.0) / 9, 1)
        title = f"Kp {kp:g} ({level}) at {moment:%Y-%m-%d %H:%M}Z"
        bars.append(KpBar(x(moment), round(bottom - height, 1), width, height, level, title))
    y_ticks = [(round(bottom - plot_h * kp / 9, 1), str(kp)) for kp in (0, 3, 5, 7, 9)]
    x_ticks = [
        (x(start + timedelta(days=d)), f"{start + timedelta(days=d):%m-%d}")
        for d in range(0, KP_DAYS + 1, 2)
    ]
    return KpChart(BAR_WIDTH, BAR_HEIGHT, BAR_LEFT, bottom, bars, y_ticks, x_ticks)


@dataclass(frozen=True, slots=True)
class MoonDrawing:
    """The lit part of the Moon's disc as one SVG path (northern-hemisphere view: a waxing
    Moon is lit on the right)."""

    size: int
    radius: float
    lit: str


def moon_drawing(illumination: float, waxing: bool, size: int = 120) -> MoonDrawing:
    r = size / 2 - 2
    c = size / 2
    k = min(max(illumination, 0.0), 1.0)
    # The terminator is half an ellipse whose x radius shrinks to 0 at a quarter.
    rx = round(r * abs(1 - 2 * k), 2)
    top, bottom = f"{c},{round(c - r, 2)}", f"{c},{round(c + r, 2)}"
    limb = 1 if waxing else 0  # the lit limb: right side going down (waxing), else left
    gibbous = k > 0.5
    back = (1 - limb) if not gibbous else limb
    lit = f"M {top} A {r} {r} 0 0 {limb} {bottom} A {rx} {r} 0 0 {back} {top} Z"
    return MoonDrawing(size, r, lit)


def _number(data: dict[str, Any], path: str) -> float | None:
    """The number at a dotted `path` of a history entry; a list gives its length."""
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    if isinstance(value, list):
        return float(len(value))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def next_events(lunar: dict[str, Any], now: datetime) -> list[tuple[datetime, str]]:
    """The Moon's coming events, soonest first."""
    events = []
    for name, at in (lunar.get("next_phases") or {}).items():
        events.append((datetime.fromisoformat(at), name.replace("_", " ")))
    ingress = lunar.get("next_ingress")
    if ingress:
        events.append(
            (datetime.fromisoformat(ingress["instant"]), f"Moon enters {ingress['sign']}")
        )
    void = lunar.get("void_of_course")
    if void:
        start, end = (datetime.fromisoformat(void[k]) for k in ("start", "end"))
        if start > now:
            events.append((start, "Moon void of course begins"))
        if end > now:
            events.append((end, "Moon void of course ends"))
    return sorted(e for e in events if e[0] > now)


def upcoming_rows(found: dict[str, Any]) -> list[tuple[datetime, str]]:
    """The user's next exact transits (the Moon's left out: it makes one every few hours),
    the planets' stations and the Moon's quarters, soonest first."""
    rows = [
        (
            datetime.fromisoformat(e["instant"]),
            f"{e['transiting']} {e['aspect']} natal {e['natal']}"
            + (" (retrograde)" if e["retrograde"] else ""),
        )
        for e in found.get("exact_transits") or []
        if e["transiting"] != "moon"
    ]
    rows += [
        (datetime.fromisoformat(s["instant"]), f"{s['body']} stations {s['kind']} in {s['sign']}")
        for s in found["stations"]
    ]
    rows += [
        (datetime.fromisoformat(p["instant"]), p["phase"].replace("_", " "))
        for p in found["moon_phases"]
    ]
    return sorted(rows)[:UPCOMING_ROWS]


@dataclass(frozen=True, slots=True)
class YourTransits:
    """What the page shows of the viewer's transits: why there are none, or the reading and
    the coming events."""

    reason: str | None  # "no_user", "off", "no_chart", or None when there is a reading
    reading: Contribution | None = None
    upcoming: list[tuple[datetime, str]] | None = None


async def your_transits(
    session: SessionDep, tenant: str, user: str | None, now: datetime
) -> YourTransits:
    if user is None:
        return YourTransits("no_user")
    found = await _reading(session, tenant, user, transits.SOURCE)
    if found is None:
        return YourTransits("off")
    if found.metadata.as_of is None:
        return YourTransits("no_chart")
    config = await transits.config_of(session, tenant)
    ahead = await transits.upcoming(session, tenant, user, config, now, UPCOMING_DAYS)
    return YourTransits(None, found, upcoming_rows(ahead))


async def _reading(session: SessionDep, tenant: str, user: str | None, name: str) -> Any:
    try:
        return await read_module(session, tenant, user, name, utcnow())
    except (Conflict, NotFound):
        return None  # switched off or not installed: the page shows the rest


@router.get("/cosmic")
async def cosmic(
    request: Request,
    session: SessionDep,
    principal: Viewer,
    key: Annotated[str, Query(max_length=100)] = "solar_tracking",
    field: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Space weather, the Moon, their next events and a history chart."""
    now = utcnow()
    user = principal.user_id
    solar = await _reading(session, principal.tenant_id, user, "solar")
    lunar = await _reading(session, principal.tenant_id, user, "lunar")
    week = await read_history(
        session,
        principal.tenant_id,
        "solar_tracking",
        None,
        since=now - timedelta(days=KP_DAYS),
        until=None,
        limit=MAX_POINTS,
        after=None,
    )
    kp = [
        (e.taken_at, value, str((e.data.get("status") or {}).get("level") or "quiet"))
        for e in week.items
        if (value := _number(e.data, "status.kp")) is not None
    ]
    yours = await your_transits(session, principal.tenant_id, user, now)
    keys = [history_of(m).key for m in tracking_modules()]
    if key not in keys:
        raise PageError(404, f"no history {key!r}; there are {', '.join(keys)}")
    module = next(m for m in tracking_modules() if history_of(m).key == key)
    chosen = field or DEFAULT_FIELDS.get(key)
    chart: LineChart | None = None
    if chosen and not (history_of(module).per_user and not user):
        entries = await read_history(
            session,
            principal.tenant_id,
            key,
            user,
            since=None,
            until=None,
            limit=MAX_POINTS,
            after=None,
        )
        points = [
            (e.taken_at, value)
            for e in entries.items
            if (value := _number(e.data, chosen)) is not None
        ]
        chart = lines_over_time([Series(chosen, points)])
    phase = (lunar.data.get("phase") if lunar else None) or None
    context = {
        "principal": principal,
        "solar": solar,
        "lunar": lunar,
        "kp": kp_bars(kp, now),
        "kp_count": len(kp),
        "moon": moon_drawing(phase["illumination"], phase["waxing"]) if phase else None,
        "phase": phase,
        "events": next_events(lunar.data, now) if lunar else [],
        "void_end": (
            datetime.fromisoformat(lunar.data["void_of_course"]["end"])
            if lunar and lunar.data["void_of_course"]["is_void"]
            else None
        ),
        "yours": yours,
        "upcoming_days": UPCOMING_DAYS,
        "tenant": principal.tenant_id,
        "keys": keys,
        "key": key,
        "per_user": history_of(module).per_user,
        "field": chosen or "",
        "chart": chart,
        "now": now,
    }
    return page(request, "cosmic.html", context)
