"""Reading profile answers: the recorded one, and written ones for the other cases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fakes.trn_payloads import (
    RECORDED_PROXY,
    RECORDED_RAW,
    challenge_page,
    not_found_payload,
    peak_segment,
    playlist_segment,
    profile_payload,
    recorded,
)
from trackd.sources.base import InvalidTarget, SourceBlocked, SourceError
from trackd.sources.rocket_league import read_answer, retry_after_seconds
from trackd.sources.rocket_league_stats import Mode, current_season, parse_season

HOST = "api.tracker.gg"


def test_recorded_profile_current_season() -> None:
    stats = parse_season(recorded())
    assert (stats.platform, stats.player_id, stats.handle) == ("psn", "nssbali_", "nssbali_")
    assert stats.season == stats.current_season == 34
    assert list(stats.playlists) == [Mode.ONES, Mode.TWOS, Mode.THREES, Mode.FOURS]
    twos = stats.playlists[Mode.TWOS]
    assert twos.playlist_id == 11
    assert twos.rank == "Supersonic Legend"
    assert (twos.tier, twos.division, twos.division_number) == (22, "Division I", 1)
    assert (twos.rating, twos.peak_rating, twos.matches_played) == (2629, 2698, 1534)
    assert twos.win_streak == -1  # a losing streak of one
    assert stats.playlists[Mode.ONES].win_streak == 11
    threes = stats.playlists[Mode.THREES]
    assert (threes.rank, threes.division_number, threes.rating) == ("Grand Champion I", 3, 1534)
    assert stats.playlists[Mode.FOURS].playlist_id == 61
    # All-time peaks come from the peak-rating segments, with the season they were reached in.
    peak = stats.all_time_peaks[Mode.TWOS]
    assert (peak.rating, peak.season, peak.rank) == (2772, 29, "Supersonic Legend")
    assert stats.last_updated == datetime(2025, 12, 9, 4, 27, 55, 897847, tzinfo=UTC)


def test_casual_and_extra_modes_are_left_out() -> None:
    stats = parse_season(recorded())
    assert {p.playlist_id for p in stats.playlists.values()} == {10, 11, 13, 61}


def test_raw_and_proxy_wrapped_recordings_read_the_same() -> None:
    raw = read_answer(200, {}, RECORDED_RAW.read_text(), host=HOST)
    wrapped = read_answer(
        200, {"Content-Type": "application/json"}, RECORDED_PROXY.read_text(), host="proxy"
    )
    assert raw == wrapped == recorded()


def test_numbers_as_strings_with_thousands_separators() -> None:
    payload = profile_payload(
        [
            playlist_segment(
                11, 34, rating=2772, matches=1534, peak=2801, win_streak=-3, strings=True
            )
        ]
    )
    twos = parse_season(payload).playlists[Mode.TWOS]
    assert (twos.rating, twos.matches_played, twos.peak_rating, twos.win_streak) == (
        2772,
        1534,
        2801,
        -3,
    )
    assert twos.division_number == 1


def test_value_null_falls_back_to_display_value() -> None:
    segment = playlist_segment(13, 34, rating=1600)
    segment["stats"]["rating"]["value"] = None
    assert parse_season(profile_payload([segment])).playlists[Mode.THREES].rating == 1600


def test_legacy_playlist_ids_of_old_seasons() -> None:
    payload = profile_payload(
        [
            playlist_segment(1, 5, rating=900),
            playlist_segment(2, 5, rating=1000),
            playlist_segment(3, 5, rating=1100),
            playlist_segment(8, 5, rating=700),
        ],
        current_season=34,
    )
    stats = parse_season(payload, season=5)
    assert stats.season == 5 and stats.current_season == 34
    assert {mode: p.rating for mode, p in stats.playlists.items()} == {
        Mode.ONES: 900,
        Mode.TWOS: 1000,
        Mode.THREES: 1100,
        Mode.FOURS: 700,
    }
    assert stats.playlists[Mode.FOURS].playlist_id == 8


@pytest.mark.parametrize("legacy_first", [True, False])
def test_current_id_wins_over_legacy_for_one_mode(legacy_first: bool) -> None:
    segments = [playlist_segment(2, 34, rating=1000), playlist_segment(11, 34, rating=1500)]
    if not legacy_first:
        segments.reverse()
    twos = parse_season(profile_payload(segments)).playlists[Mode.TWOS]
    assert (twos.playlist_id, twos.rating) == (11, 1500)


def test_other_seasons_segments_are_not_mixed_in() -> None:
    payload = profile_payload(
        [playlist_segment(11, 33, rating=1400), playlist_segment(13, 34, rating=1500)]
    )
    assert list(parse_season(payload).playlists) == [Mode.THREES]
    assert list(parse_season(payload, season=33).playlists) == [Mode.TWOS]


def test_segments_without_a_season_belong_to_the_season_asked_for() -> None:
    payload = profile_payload([playlist_segment(10, None, rating=1234)])
    assert parse_season(payload, season=31).playlists[Mode.ONES].rating == 1234


def test_missing_segments_and_stats() -> None:
    empty = parse_season(profile_payload([]))
    assert empty.playlists == {} and empty.all_time_peaks == {}
    partial = playlist_segment(10, 34, omit=("rating", "peakRating", "winStreak", "division"))
    ones = parse_season(profile_payload([partial])).playlists[Mode.ONES]
    assert ones.rating is ones.peak_rating is ones.win_streak is ones.division is None
    assert ones.matches_played == 50 and ones.rank == "Champion I"
    no_stats: dict[str, Any] = {"type": "playlist", "attributes": {"playlistId": 13, "season": 34}}
    assert parse_season(profile_payload([no_stats])).playlists[Mode.THREES].rating is None


def test_current_season_falls_back_to_the_newest_segment() -> None:
    payload = profile_payload(
        [playlist_segment(11, 30), playlist_segment(11, 32)], current_season=None
    )
    assert current_season(payload) == 32
    with pytest.raises(SourceError, match="no current season"):
        current_season(profile_payload([], current_season=None))


def test_peak_segments() -> None:
    payload = profile_payload([peak_segment(13, 20, 1888, rank="Grand Champion III")])
    peak = parse_season(payload).all_time_peaks[Mode.THREES]
    assert (peak.rating, peak.season, peak.rank) == (1888, 20, "Grand Champion III")


def test_snapshot_data_is_plain_json() -> None:
    data = parse_season(recorded()).model_dump(mode="json")
    assert data["playlists"]["2v2"]["rating"] == 2629
    assert data["all_time_peaks"]["2v2"]["season"] == 29
    assert data["last_updated"] == "2025-12-09T04:27:55.897847Z"


# --- answers that are not a profile -------------------------------------------------------


def test_not_json_and_not_a_profile() -> None:
    with pytest.raises(SourceError, match="not JSON"):
        read_answer(200, {}, "<html><body>maintenance</body></html>", host=HOST)
    with pytest.raises(SourceError, match="not an object"):
        read_answer(200, {}, "[1, 2]", host=HOST)
    with pytest.raises(SourceError, match="no `data` object"):
        read_answer(200, {}, "{}", host=HOST)
    with pytest.raises(SourceError, match="answered HTTP 500"):
        read_answer(500, {}, "oops", host=HOST)


def test_unknown_player_is_an_invalid_target() -> None:
    with pytest.raises(InvalidTarget, match="no such Rocket League profile"):
        read_answer(404, {}, json.dumps(not_found_payload()), host=HOST)
    with pytest.raises(InvalidTarget, match="could not find the player"):
        read_answer(200, {}, json.dumps(not_found_payload()), host=HOST)


def test_challenge_pages_are_blocked_not_failed() -> None:
    for status in (403, 503, 200):
        with pytest.raises(SourceBlocked, match="bot-protection challenge") as caught:
            read_answer(status, {"Retry-After": "120"}, challenge_page(), host=HOST)
        assert caught.value.host == HOST
        assert caught.value.retry_after == 120.0
    with pytest.raises(SourceBlocked, match="refusal"):
        read_answer(403, {}, "Forbidden", host=HOST)
    with pytest.raises(SourceBlocked, match="challenge"):
        read_answer(200, {"cf-mitigated": "challenge"}, "<html></html>", host=HOST)


def test_rate_limit_carries_retry_after() -> None:
    with pytest.raises(SourceBlocked, match="rate limiting") as caught:
        read_answer(429, {"retry-after": "30"}, "", host=HOST)
    assert caught.value.retry_after == 30.0
    with pytest.raises(SourceBlocked) as without:
        read_answer(429, {}, "", host=HOST)
    assert without.value.retry_after is None


def test_retry_after_as_seconds_or_date() -> None:
    now = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    later = now + timedelta(seconds=90)
    assert retry_after_seconds(later.strftime("%a, %d %b %Y %H:%M:%S GMT"), now) == 90.0
    assert retry_after_seconds("Wed, 01 Jan 2020 00:00:00 GMT", now) == 0.0
    assert retry_after_seconds("  7 ", now) == 7.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None) is None


def test_proxy_answers() -> None:
    def proxied(status: int, response: str, headers: dict[str, str] | None = None) -> str:
        return json.dumps(
            {
                "status": "ok",
                "message": "",
                "solution": {
                    "url": "https://api.tracker.gg/api/v2/rocket-league/standard/profile/psn/x",
                    "status": status,
                    "headers": headers or {},
                    "response": response,
                },
            }
        )

    with pytest.raises(SourceBlocked) as caught:
        read_answer(200, {}, proxied(403, challenge_page()), host="proxy.local")
    assert caught.value.host == "api.tracker.gg"  # the host that blocked, not the proxy
    with pytest.raises(SourceBlocked) as limited:
        read_answer(200, {}, proxied(429, "", {"Retry-After": "60"}), host="proxy.local")
    assert limited.value.retry_after == 60.0
    with pytest.raises(InvalidTarget):
        read_answer(200, {}, proxied(404, json.dumps(not_found_payload())), host="proxy.local")
    unsolved = {
        "status": "error",
        "message": "Error: Error solving the challenge. Timeout after 60.0 seconds.",
    }
    with pytest.raises(SourceBlocked, match="could not pass"):
        read_answer(500, {}, json.dumps(unsolved), host="proxy.local")
    broken = {"status": "error", "message": "Error: Request parameter 'url' is mandatory"}
    with pytest.raises(SourceError, match="mandatory") as other:
        read_answer(500, {}, json.dumps(broken), host="proxy.local")
    assert not isinstance(other.value, SourceBlocked)


def test_a_handle_that_looks_like_a_marker_is_still_a_profile() -> None:
    payload = profile_payload([playlist_segment(11, 34)], handle="Just a moment...")
    page = f"<html><body><pre>{json.dumps(payload)}</pre></body></html>"
    assert read_answer(200, {}, page, host=HOST) == payload
