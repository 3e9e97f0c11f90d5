"""Profile answers in the stats API's format, for the cases the recorded one does not cover.

The recorded answer (/work/shared/fixtures, copied into tests/fakes/data) is a real profile
in season 34; these builders write others the same way: legacy playlist ids, missing segments
and stats, numbers as strings with thousands separators, older seasons for `?season=N`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
RECORDED_RAW = DATA / "trn-rocket-league-profile-psn.json"
RECORDED_PROXY = DATA / "trn-rocket-league-profile-psn-proxy-wrapped.json"
RECORDED_PLAYER = ("psn", "nssbali_")

PLAYLIST_NAMES = {
    10: "Ranked Duel 1v1",
    11: "Ranked Doubles 2v2",
    13: "Ranked Standard 3v3",
    61: "Ranked 4v4 Quads",
    1: "Ranked Duel 1v1",
    2: "Ranked Doubles 2v2",
    3: "Ranked Standard 3v3",
    8: "Ranked 4v4 Chaos",
    27: "Hoops",
    0: "Casual",
}
DIVISIONS = ("Division I", "Division II", "Division III", "Division IV")


def recorded() -> dict[str, Any]:
    """The recorded profile answer, parsed."""
    loaded: dict[str, Any] = json.loads(RECORDED_RAW.read_text())
    return loaded


def stat(
    value: int | None, *, strings: bool = False, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One stat as the API writes it; with `strings`, the value as a string like "2,772"."""
    display = None if value is None else f"{value:,}"
    return {
        "displayName": "Matches",
        "metadata": metadata or {},
        "value": display if strings else value,
        "displayValue": display,
        "displayType": "Number",
    }


def playlist_segment(
    playlist_id: int,
    season: int | None,
    *,
    rank: str = "Champion I",
    tier: int = 16,
    division: int = 1,
    rating: int | None = 1200,
    matches: int | None = 50,
    win_streak: int = 2,
    peak: int | None = None,
    strings: bool = False,
    omit: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A `playlist` segment; `division` counts from 1 here (the API's value is one less),
    a negative `win_streak` is a losing streak, `omit` leaves stats out."""
    stats = {
        "tier": stat(tier, strings=strings, metadata={"name": rank}),
        "division": stat(division - 1, strings=strings, metadata={"name": DIVISIONS[division - 1]}),
        "matchesPlayed": stat(matches, strings=strings),
        "winStreak": {
            **stat(
                abs(win_streak),
                strings=strings,
                metadata={"type": "loss" if win_streak < 0 else "win"},
            ),
            "displayValue": str(win_streak),
        },
        "rating": stat(rating, strings=strings, metadata={"tierName": rank}),
        "peakRating": stat(peak if peak is not None else rating, strings=strings),
    }
    attributes: dict[str, Any] = {"playlistId": playlist_id}
    if season is not None:
        attributes["season"] = season
    return {
        "type": "playlist",
        "attributes": attributes,
        "metadata": {"name": PLAYLIST_NAMES.get(playlist_id, f"Playlist {playlist_id}")},
        "expiryDate": "0001-01-01T00:00:00+00:00",
        "stats": {key: value for key, value in stats.items() if key not in omit},
    }


def peak_segment(
    playlist_id: int, season: int, rating: int, rank: str = "Grand Champion I"
) -> dict[str, Any]:
    return {
        "type": "peak-rating",
        "attributes": {"playlistId": playlist_id, "season": season},
        "metadata": {"name": PLAYLIST_NAMES.get(playlist_id, f"Playlist {playlist_id}")},
        "stats": {"peakRating": stat(rating, metadata={"name": rank})},
    }


def profile_payload(
    segments: list[dict[str, Any]],
    *,
    platform: str = "steam",
    player_id: str = "76561198000000001",
    handle: str = "Player One",
    current_season: int | None = 34,
) -> dict[str, Any]:
    """A profile answer holding `segments` (plus the lifetime overview every profile has)."""
    metadata: dict[str, Any] = {
        "lastUpdated": {"value": "2026-01-10T12:00:00.1234567+00:00"},
        "playerId": 1,
    }
    if current_season is not None:
        metadata["currentSeason"] = current_season
    overview = {
        "type": "overview",
        "attributes": {},
        "metadata": {"name": "Lifetime"},
        "stats": {"wins": stat(10)},
    }
    return {
        "data": {
            "platformInfo": {
                "platformSlug": platform,
                "platformUserId": None,
                "platformUserHandle": handle,
                "platformUserIdentifier": player_id,
            },
            "userInfo": {"userId": None},
            "metadata": metadata,
            "segments": [overview, *segments],
            "availableSegments": [],
            "expiryDate": "2026-01-10T12:04:00+00:00",
        }
    }


def not_found_payload() -> dict[str, Any]:
    """What the API answers, with status 404, for a player it does not know."""
    return {
        "errors": [
            {
                "code": "CollectorResultStatus::NotFound",
                "message": "We could not find the player you were looking for.",
                "data": {},
            }
        ]
    }


def challenge_page() -> str:
    """A bot-protection interstitial as Cloudflare serves it (status 403 or 503)."""
    return (
        '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>'
        '<meta http-equiv="refresh" content="390"></head><body>'
        '<div class="main-wrapper" role="main"><div class="main-content">'
        "<noscript>Enable JavaScript and cookies to continue</noscript></div></div>"
        "<script>(function(){window._cf_chl_opt={cvId: '3',cZone: 'api.tracker.gg',"
        "cType: 'managed'};var a=document.createElement('script');"
        "a.src='/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1';"
        "document.getElementsByTagName('head')[0].appendChild(a);}());</script></body></html>"
    )
