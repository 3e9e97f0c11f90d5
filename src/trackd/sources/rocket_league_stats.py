"""What a Rocket League profile says about one season, read from the stats API's JSON.

The API (`/api/v2/rocket-league/standard/profile/{platform}/{id}`, DESIGN §10) answers
`data.platformInfo`, `data.metadata.currentSeason` and `data.segments[]`. Segments of type
`playlist` carry `attributes.playlistId`, `attributes.season` and `stats`, each stat being
`{value, displayValue, metadata}`; segments of type `peak-rating` hold the best rating ever
reached per playlist and the season it was reached in. Values sometimes arrive as strings with
thousands separators ("2,772") and sometimes as null; both are read here, nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from trackd.sources.base import SourceError


class Mode(StrEnum):
    """The ranked playlists a league cares about."""

    ONES = "1v1"
    TWOS = "2v2"
    THREES = "3v3"
    FOURS = "4v4"


# Playlist ids in today's seasons, and the ids the same modes had in the oldest seasons.
CURRENT_PLAYLISTS: Final = {10: Mode.ONES, 11: Mode.TWOS, 13: Mode.THREES, 61: Mode.FOURS}
LEGACY_PLAYLISTS: Final = {1: Mode.ONES, 2: Mode.TWOS, 3: Mode.THREES, 8: Mode.FOURS}
PLAYLISTS: Final = {**CURRENT_PLAYLISTS, **LEGACY_PLAYLISTS}

_ROMAN: Final = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5}
_THOUSANDS: Final = re.compile(r"[,\s\u00a0\u202f_']")


class PlaylistStats(BaseModel):
    """One ranked playlist in one season.

    Attributes:
        mode: 1v1, 2v2, 3v3 or 4v4.
        playlist_id: the site's playlist id (current or legacy).
        name: the site's playlist name ("Ranked Doubles 2v2").
        rank: the tier name ("Grand Champion I"), from `stats.tier.metadata.name`.
        tier: the tier number (0 unranked, 22 Supersonic Legend).
        division: the division name ("Division III").
        division_number: 1 to 4.
        rating: the rating (MMR) at the time of the fetch.
        matches_played: ranked games played this season.
        win_streak: the current streak; negative for a losing streak.
        peak_rating: the best rating reached this season.
    """

    model_config = ConfigDict(frozen=True)

    mode: Mode
    playlist_id: int
    name: str | None = None
    rank: str | None = None
    tier: int | None = None
    division: str | None = None
    division_number: int | None = None
    rating: int | None = None
    matches_played: int | None = None
    win_streak: int | None = None
    peak_rating: int | None = None


class PeakRating(BaseModel):
    """The best rating a player ever reached in a mode, the rank it was, and in which season."""

    model_config = ConfigDict(frozen=True)

    mode: Mode
    playlist_id: int
    rating: int | None = None
    rank: str | None = None
    season: int | None = None


class SeasonStats(BaseModel):
    """A player's ranked playlists in one season, as one snapshot stores them.

    Attributes:
        platform: the platform slug (steam, epic, xbl, psn, switch).
        player_id: the identifier the site resolves the profile by.
        handle: the name the player shows.
        season: the season these playlists belong to.
        current_season: the season the site called current when this was taken.
        playlists: the ranked modes the player has data for in this season.
        all_time_peaks: the best rating ever per mode (profile-wide, not per season).
        last_updated: when the site last refreshed the profile.
    """

    model_config = ConfigDict(frozen=True)

    platform: str | None = None
    player_id: str | None = None
    handle: str | None = None
    season: int
    current_season: int
    playlists: dict[Mode, PlaylistStats]
    all_time_peaks: dict[Mode, PeakRating] = {}
    last_updated: datetime | None = None


def current_season(payload: Mapping[str, Any]) -> int:
    """The season the profile calls current (`data.metadata.currentSeason`), or else the
    newest season any playlist segment belongs to."""
    data = _data(payload)
    declared = _integer(_get(data, "metadata", "currentSeason"))
    if declared is not None and declared >= 1:
        return declared
    seasons = [
        season
        for segment in _segments(data)
        if segment.get("type") == "playlist"
        and (season := _integer(_get(segment, "attributes", "season"))) is not None
    ]
    if not seasons:
        raise SourceError("the profile names no current season (data.metadata.currentSeason)")
    return max(seasons)


def parse_season(
    payload: Mapping[str, Any], season: int | None = None, *, current: int | None = None
) -> SeasonStats:
    """The ranked playlists of `season` (default: the current one) in a profile answer.

    Segments that name no season are taken to be the season asked for, as the API answers a
    `?season=N` request with that season's segments. A mode present under both its current and
    its legacy playlist id is read from the current id. `current` is the current season when
    the caller knows it already (an older season's answer need not say it).

    Raises:
        SourceError: the answer is not a profile (no `data` object), or names no current
            season when `current` is not given.
    """
    data = _data(payload)
    now = current if current is not None else current_season(payload)
    wanted = now if season is None else season
    info = _get(data, "platformInfo")
    info = info if isinstance(info, Mapping) else {}
    playlists: dict[Mode, PlaylistStats] = {}
    peaks: dict[Mode, PeakRating] = {}
    for segment in _segments(data):
        kind = segment.get("type")
        playlist_id = _integer(_get(segment, "attributes", "playlistId"))
        mode = PLAYLISTS.get(playlist_id) if playlist_id is not None else None
        if mode is None or playlist_id is None:
            continue
        if kind == "playlist":
            segment_season = _integer(_get(segment, "attributes", "season"))
            if segment_season not in (None, wanted):
                continue
            known = playlists.get(mode)
            if known is not None and known.playlist_id in CURRENT_PLAYLISTS:
                continue
            playlists[mode] = _playlist(mode, playlist_id, segment)
        elif kind == "peak-rating":
            known_peak = peaks.get(mode)
            if known_peak is not None and known_peak.playlist_id in CURRENT_PLAYLISTS:
                continue
            peaks[mode] = PeakRating(
                mode=mode,
                playlist_id=playlist_id,
                rating=_stat_number(_get(segment, "stats", "peakRating")),
                rank=_text(_get(segment, "stats", "peakRating", "metadata", "name")),
                season=_integer(_get(segment, "attributes", "season")),
            )
    return SeasonStats(
        platform=_text(info.get("platformSlug")),
        player_id=_text(info.get("platformUserIdentifier")),
        handle=_text(info.get("platformUserHandle")),
        season=wanted,
        current_season=now,
        playlists=dict(sorted(playlists.items())),
        all_time_peaks=dict(sorted(peaks.items())),
        last_updated=_timestamp(_get(data, "metadata", "lastUpdated", "value")),
    )


def _playlist(mode: Mode, playlist_id: int, segment: Mapping[str, Any]) -> PlaylistStats:
    stats = segment.get("stats")
    stats = stats if isinstance(stats, Mapping) else {}
    division_name = _text(_get(stats, "division", "metadata", "name"))
    division_value = _stat_number(stats.get("division"))
    if division_value is not None:
        division_number: int | None = division_value + 1  # the site counts divisions from 0
    else:
        division_number = _division_from_name(division_name)
    return PlaylistStats(
        mode=mode,
        playlist_id=playlist_id,
        name=_text(_get(segment, "metadata", "name")),
        rank=_text(_get(stats, "tier", "metadata", "name"))
        or _text(_get(stats, "rating", "metadata", "tierName")),
        tier=_stat_number(stats.get("tier")),
        division=division_name,
        division_number=division_number,
        rating=_stat_number(stats.get("rating")),
        matches_played=_stat_number(stats.get("matchesPlayed")),
        win_streak=_win_streak(stats.get("winStreak")),
        peak_rating=_stat_number(stats.get("peakRating")),
    )


def _win_streak(stat: Any) -> int | None:
    """The streak, negative when losing: the site gives the length as `value` and says which
    kind in `metadata.type` (its `displayValue` carries the sign too)."""
    length = _stat_number(stat)
    if length is None or not isinstance(stat, Mapping):
        return length
    kind = _get(stat, "metadata", "type")
    display = stat.get("displayValue")
    losing = kind == "loss" or (
        kind is None and isinstance(display, str) and display.strip().startswith("-")
    )
    return -abs(length) if losing else abs(length)


def _stat_number(stat: Any) -> int | None:
    """A stat's number: its `value`, else its `displayValue`, as an integer."""
    if not isinstance(stat, Mapping):
        return None
    value = _integer(stat.get("value"))
    return value if value is not None else _integer(stat.get("displayValue"))


def _integer(value: Any) -> int | None:
    """An integer from a JSON number or a string like "2,772"; None when there is none."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value) if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        text = _THOUSANDS.sub("", value.strip())
        try:
            number = float(text) if "." in text else int(text)
        except ValueError:
            return None
        return _integer(number)
    return None


def _division_from_name(name: str | None) -> int | None:
    if not name:
        return None
    return _ROMAN.get(name.rsplit(" ", 1)[-1].upper())


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(_seven_digit_fraction(value))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _seven_digit_fraction(value: str) -> str:
    # .NET writes seven fractional digits ("04:27:55.8978479+00:00"); Python reads up to six.
    return re.sub(r"(\.\d{6})\d+", r"\1", value)


def _data(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    data = payload.get("data") if isinstance(payload, Mapping) else None
    if not isinstance(data, Mapping):
        raise SourceError("the stats API answered without a profile (no `data` object)")
    return data


def _segments(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    segments = data.get("segments")
    if not isinstance(segments, list):
        return []
    return [segment for segment in segments if isinstance(segment, Mapping)]


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value
