"""Tracker URL rules, the API address and registration limits (trackd.domain.league)."""

from __future__ import annotations

import pytest

from trackd.domain.league import (
    PLATFORMS,
    ScrapingStatus,
    TrackerProfile,
    TrackerRuleError,
    already_registered,
    check_may_add,
    check_may_register,
    parse_profile_url,
    parse_register_request,
    poll_statuses,
    profile,
    scraping_status,
)

BASE = "https://rocketleague.tracker.network/rocket-league/profile"
API = "https://api.tracker.gg"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_platform_is_accepted(platform: str) -> None:
    parsed = parse_profile_url(f"{BASE}/{platform}/player_1/overview")
    assert parsed == TrackerProfile(platform, "player_1")


@pytest.mark.parametrize(
    "url",
    [
        f"{BASE}/psn/nssbali_/overview",
        f"{BASE}/psn/nssbali_/overview/",
        "HTTPS://RocketLeague.Tracker.Network/Rocket-League/Profile/PSN/nssbali_/OVERVIEW",
        f"  {BASE}/psn/nssbali_/overview  ",
    ],
)
def test_case_trailing_slash_and_surrounding_space(url: str) -> None:
    parsed = parse_profile_url(url)
    assert parsed.platform == "psn"
    assert parsed.player_id == "nssbali_"
    assert parsed.url == f"{BASE}/psn/nssbali_/overview"


def test_id_case_is_kept_but_does_not_make_another_tracker() -> None:
    upper = parse_profile_url(f"{BASE}/epic/Some.Player/overview")
    lower = parse_profile_url(f"{BASE}/epic/some.player/overview")
    assert upper.player_id == "Some.Player"
    assert upper.key == lower.key == "epic/some.player"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("https://example.com/rocket-league/profile/psn/x/overview", "not a Rocket League"),
        (f"{BASE}/origin/x/overview", "unsupported platform 'origin'"),
        (f"{BASE}/psn/x/matches", "not a Rocket League"),
        (f"{BASE}/psn//overview", "not a Rocket League"),
        (f"{BASE}/psn/x/overview?x=1", "not a Rocket League"),
        ("http://rocketleague.tracker.network/rocket-league/profile/psn/x/overview", "not a"),
        (f"{BASE}/psn/x/y/overview", "not a Rocket League"),
        (f"{BASE}/psn/{'a' * 101}/overview", "101 characters long; at most 100"),
        (f"{BASE}/psn/a%2Fb/overview", "slash"),
        (f"{BASE}/psn/a%0Ab/overview", "control character"),
        (f"{BASE}/psn/%2e%2e/overview", "one path segment"),
        (f"{BASE}/psn/%2E/overview", "one path segment"),
        (f"{BASE}/psn/../overview", "one path segment"),
        (f"{BASE}/psn/./overview", "one path segment"),
        (f"{BASE}/psn/%2e./overview", "one path segment"),
        (f"{BASE}/psn/a%5Cb/overview", "backslash"),
        (f"{BASE}/psn/a%252Fb%2F/overview", "slash"),
        (f"{BASE}/psn/%20%20/overview", "empty"),
        (f"{BASE}/psn/%FF/overview", "not valid percent-encoded UTF-8"),
        ("x" * 3000, "longer than 2048"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(TrackerRuleError, match=message) as caught:
        parse_profile_url(url)
    if "not a Rocket League" in message:
        assert "expected https://rocketleague.tracker.network/" in str(caught.value)


def test_id_lengths_at_the_limits() -> None:
    assert parse_profile_url(f"{BASE}/steam/{'7' * 100}/overview").player_id == "7" * 100
    assert parse_profile_url(f"{BASE}/steam/7/overview").player_id == "7"
    # The limit counts characters of the decoded id, not of its encoding.
    encoded = "%C3%A9" * 100
    assert parse_profile_url(f"{BASE}/epic/{encoded}/overview").player_id == "é" * 100


def test_api_url_for_current_and_given_season() -> None:
    parsed = parse_profile_url(f"{BASE}/psn/nssbali_/overview")
    assert parsed.api_url(API) == f"{API}/api/v2/rocket-league/standard/profile/psn/nssbali_"
    assert parsed.api_url(API + "/", season=33).endswith("/psn/nssbali_?season=33")
    with pytest.raises(TrackerRuleError, match="seasons count from 1"):
        parsed.api_url(API, season=0)


def test_an_id_with_an_encoded_space_is_encoded_exactly_once() -> None:
    encoded = parse_profile_url(f"{BASE}/epic/Some%20Player/overview")
    raw = parse_profile_url(f"{BASE}/epic/Some Player/overview")
    assert encoded == raw == TrackerProfile("epic", "Some Player")
    for parsed in (encoded, raw):
        assert parsed.api_url(API).endswith("/profile/epic/Some%20Player")
        assert "%2520" not in parsed.api_url(API)
        assert parsed.url == f"{BASE}/epic/Some%20Player/overview"


def test_an_id_holding_a_literal_percent_sign_stays_literal() -> None:
    # `%2520` on the site means the id really contains "%20": decoded once, encoded once.
    parsed = parse_profile_url(f"{BASE}/epic/100%2520/overview")
    assert parsed.player_id == "100%20"
    assert parsed.api_url(API).endswith("/profile/epic/100%2520")


def test_reserved_characters_in_ids_are_encoded() -> None:
    parsed = parse_profile_url(f"{BASE}/xbl/a%3Fb%23c%26d/overview")
    assert parsed.player_id == "a?b#c&d"
    assert parsed.api_url(API).endswith("/profile/xbl/a%3Fb%23c%26d")
    assert parse_profile_url(parsed.url) == parsed


@pytest.mark.parametrize("player_id", [".", "..", "a/b", "a\\b"])
def test_ids_that_are_not_one_path_segment_are_refused_however_given(player_id: str) -> None:
    with pytest.raises(TrackerRuleError):
        profile("steam", player_id)
    # Nor can a stored one reach the stats API's path.
    with pytest.raises(TrackerRuleError):
        TrackerProfile("steam", player_id).api_url(API)


def test_ids_with_dots_that_stay_one_segment_are_kept() -> None:
    for player_id in ("...", "a..b", ".hidden", "v1.2"):
        parsed = profile("epic", player_id)
        assert parsed.api_url(API).endswith(f"/profile/epic/{player_id}")


def test_profile_from_parts() -> None:
    assert profile(" PSN ", "Name") == TrackerProfile("psn", "Name")
    with pytest.raises(TrackerRuleError, match="unsupported platform"):
        profile("xbox", "Name")
    with pytest.raises(TrackerRuleError, match="empty"):
        profile("psn", "")


def test_register_request_of_one_to_four_urls() -> None:
    urls = [f"{BASE}/{p}/p{i}/overview" for i, p in enumerate(PLATFORMS[:4])]
    assert [p.player_id for p in parse_register_request(urls)] == ["p0", "p1", "p2", "p3"]
    assert len(parse_register_request(urls[:1])) == 1


@pytest.mark.parametrize(
    ("urls", "message"),
    [
        ([], "between 1 and 4 tracker URLs; the list is empty"),
        ([f"{BASE}/psn/p{i}/overview" for i in range(5)], "between 1 and 4 tracker URLs; 5 were"),
        ([f"{BASE}/psn/a/overview", "nope"], "URL 2: not a Rocket League"),
        (
            [f"{BASE}/psn/Ab/overview", f"{BASE}/steam/x/overview", f"{BASE}/PSN/aB/overview/"],
            "URL 3 is the same tracker as URL 1",
        ),
        (f"{BASE}/psn/a/overview", "not a single string"),
    ],
)
def test_register_request_rules(urls: list[str], message: str) -> None:
    with pytest.raises(TrackerRuleError, match=message):
        parse_register_request(urls)


def test_register_request_follows_a_configured_limit() -> None:
    urls = [f"{BASE}/psn/p{i}/overview" for i in range(6)]
    assert len(parse_register_request(urls, limit=6)) == 6
    with pytest.raises(TrackerRuleError, match="between 1 and 2"):
        parse_register_request(urls[:3], limit=2)


def test_register_is_only_for_users_without_live_trackers() -> None:
    check_may_register(0)
    with pytest.raises(
        TrackerRuleError, match=r"already have 1 tracker; use POST /api/trackers/add"
    ):
        check_may_register(1)
    with pytest.raises(TrackerRuleError, match="already have 3 trackers"):
        check_may_register(3)


def test_add_respects_the_user_limit() -> None:
    check_may_add(3)
    check_may_add(0, 4)
    with pytest.raises(TrackerRuleError, match="at most 4 trackers; you have 4; delete one"):
        check_may_add(4)
    with pytest.raises(TrackerRuleError, match="you have 2, so you can add 2 more"):
        check_may_add(2, 3)
    check_may_add(5, limit=6)
    with pytest.raises(TrackerRuleError, match="at most 6"):
        check_may_add(6, limit=6)


def test_already_registered_messages() -> None:
    parsed = profile("psn", "nssbali_")
    assert "you already track" in str(already_registered(parsed, own=True))
    assert "registered by another user" in str(already_registered(parsed, own=False))


def test_scraping_status_follows_the_newest_poll() -> None:
    assert scraping_status(None) is ScrapingStatus.PENDING
    assert scraping_status("pending") is ScrapingStatus.PENDING
    assert scraping_status("running") is ScrapingStatus.IN_PROGRESS
    assert scraping_status("blocked") is ScrapingStatus.BLOCKED
    assert scraping_status("completed") is ScrapingStatus.COMPLETED
    assert scraping_status("failed") is ScrapingStatus.FAILED
    with pytest.raises(ValueError, match="unknown poll status"):
        scraping_status("cancelled")
    assert poll_statuses(ScrapingStatus.IN_PROGRESS) == ["running"]
    assert all(poll_statuses(s) for s in ScrapingStatus)
