"""The Rocket League source over HTTP, against a local fake of the stats site (never the real
one): seasons, id encoding, proxies, bot protection, rate limits, slow answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
import pytest_asyncio

from fakes.trn_payloads import (
    RECORDED_PLAYER,
    RECORDED_PROXY,
    challenge_page,
    playlist_segment,
    profile_payload,
    recorded,
)
from fakes.trn_server import FakeStatsSite, Reply
from trackd.errors import ConfigError
from trackd.outbound.http import outbound_client
from trackd.settings import Settings
from trackd.sources.base import InvalidTarget, Source, SourceBlocked, SourceError
from trackd.sources.registry import SourceRegistry
from trackd.sources.rocket_league import NAME, FetchingDisabled, RocketLeagueSource

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
PLATFORM, PLAYER = RECORDED_PLAYER


@pytest.fixture
def site() -> Iterator[FakeStatsSite]:
    with FakeStatsSite() as fake:
        yield fake


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


def source_for(site: FakeStatsSite) -> RocketLeagueSource:
    return RocketLeagueSource(api_url=site.url, enabled=True, clock=lambda: NOW)


def older_season(season: int, rating: int) -> dict[str, object]:
    return profile_payload(
        [playlist_segment(11, season, rating=rating, matches=100 + season)],
        platform=PLATFORM,
        player_id=PLAYER,
        current_season=34,
    )


def test_the_registry_builds_it_from_the_settings_it_is_given() -> None:
    """Installed as a plugin, it is built from the settings the runtime configured the
    registry with, not from a global."""
    reg = SourceRegistry({})
    with pytest.raises(ConfigError, match="configure"):
        reg.get(NAME)
    reg.configure(Settings(trn_api_url="http://proxy.local:8191", trn_enabled=True))
    source = reg.get(NAME)
    assert isinstance(source, RocketLeagueSource)
    assert isinstance(source, Source)
    assert (source.name, source.api_url, source.enabled) == (
        "rocket_league",
        "http://proxy.local:8191",
        True,
    )
    reg.configure(Settings(trn_api_url="http://other.local:8191", trn_enabled=False))
    rebuilt = reg.get(NAME)
    assert isinstance(rebuilt, RocketLeagueSource)
    assert (rebuilt.api_url, rebuilt.enabled) == ("http://other.local:8191", False)


def test_a_source_registered_in_place_of_a_built_one_outlives_new_settings() -> None:
    """A test's fake stays in place when a runtime configures the registry after it."""
    reg = SourceRegistry({NAME: "trackd.sources.rocket_league:RocketLeagueSource"})
    reg.configure(Settings(trn_enabled=False))
    assert reg.get(NAME).enabled is False  # built from the settings
    fake = RocketLeagueSource(api_url="http://proxy.local:8191", enabled=True)
    reg.register(fake, replace=True)
    reg.configure(Settings(trn_enabled=False))
    assert reg.get(NAME) is fake
    reg.unregister(NAME)
    rebuilt = reg.get(NAME)
    assert rebuilt is not fake
    assert isinstance(rebuilt, RocketLeagueSource)
    assert rebuilt.enabled is False


def test_settings_decide_base_url_and_switch() -> None:
    source = RocketLeagueSource.from_settings(Settings())
    assert (source.api_url, source.enabled) == ("https://api.tracker.gg", False)
    custom = RocketLeagueSource.from_settings(
        Settings(trn_api_url="http://proxy.local:8191/", trn_enabled=True)
    )
    assert (custom.api_url, custom.enabled) == ("http://proxy.local:8191", True)
    with pytest.raises(ValueError, match="http"):
        RocketLeagueSource(api_url="ftp://x", enabled=False)


def test_validate_gives_the_canonical_target() -> None:
    source = RocketLeagueSource(enabled=False, api_url="https://api.tracker.gg")
    url = "https://RocketLeague.tracker.network/rocket-league/profile/EPIC/Some%20One/overview/"
    assert source.validate({"url": url}) == {
        "platform": "epic",
        "id": "Some One",
        "first_scrape": False,
    }
    assert source.validate(
        {"platform": "psn", "id": "x", "first_scrape": True, "tracker_id": "t1"}
    ) == {
        "platform": "psn",
        "id": "x",
        "first_scrape": True,
        "tracker_id": "t1",
    }
    for bad, message in [
        ({}, "needs a profile `url`"),
        ({"url": "https://example.com"}, "not a Rocket League"),
        ({"platform": "xbox", "id": "x"}, "unsupported platform"),
        ({"platform": "psn", "id": "x", "first_scrape": "yes"}, "true or false"),
        ({"platform": "psn", "id": "x", "tracker_id": 5}, "tracker_id"),
    ]:
        with pytest.raises(InvalidTarget, match=message):
            source.validate(bad)


async def test_disabled_source_refuses_without_sending_anything(
    site: FakeStatsSite, client: httpx.AsyncClient
) -> None:
    site.add_profile(PLATFORM, PLAYER, recorded())
    source = RocketLeagueSource(api_url=site.url, enabled=False)
    with pytest.raises(FetchingDisabled, match="TRACKD_TRN_ENABLED=true"):
        await source.fetch({"platform": PLATFORM, "id": PLAYER}, client)
    assert site.requests == []


async def test_later_polls_fetch_the_current_season_only(
    site: FakeStatsSite, client: httpx.AsyncClient
) -> None:
    site.add_profile(PLATFORM, PLAYER, recorded())
    snapshots = await source_for(site).fetch(
        {"platform": PLATFORM, "id": PLAYER, "tracker_id": "trk-1"}, client
    )
    assert site.seasons_asked(PLATFORM, PLAYER) == [None]
    [snapshot] = snapshots
    assert (snapshot.subject, snapshot.source, snapshot.season) == ("trk-1", "rocket_league", "34")
    assert snapshot.taken_at == NOW
    assert snapshot.data["playlists"]["2v2"]["rating"] == 2629
    assert snapshot.meta["profile_url"].endswith("/profile/psn/nssbali_/overview")
    assert site.requests[0].headers["accept"] == "application/json"


async def test_first_scrape_adds_the_three_previous_seasons(
    site: FakeStatsSite, client: httpx.AsyncClient
) -> None:
    site.add_profile(PLATFORM, PLAYER, recorded())
    for season, rating in ((33, 2500), (32, 2400), (31, 2300)):
        site.add_profile(PLATFORM, PLAYER, older_season(season, rating), season=season)
    snapshots = await source_for(site).fetch(
        {"platform": PLATFORM, "id": PLAYER, "first_scrape": True}, client
    )
    assert site.seasons_asked(PLATFORM, PLAYER) == [None, "33", "32", "31"]
    assert [s.season for s in snapshots] == ["34", "33", "32", "31"]
    assert [s.data["playlists"]["2v2"]["rating"] for s in snapshots] == [2629, 2500, 2400, 2300]
    assert [s.data["current_season"] for s in snapshots] == [34] * 4
    # Without a tracker id the subject is the profile itself.
    assert {s.subject for s in snapshots} == {"psn/nssbali_"}


async def test_first_scrape_never_asks_for_season_zero(
    site: FakeStatsSite, client: httpx.AsyncClient
) -> None:
    site.add_profile("steam", "new", profile_payload([playlist_segment(10, 2)], current_season=2))
    site.add_profile(
        "steam", "new", profile_payload([playlist_segment(10, 1)], current_season=2), season=1
    )
    snapshots = await source_for(site).fetch(
        {"platform": "steam", "id": "new", "first_scrape": True}, client
    )
    assert [s.season for s in snapshots] == ["2", "1"]


async def test_ids_are_encoded_exactly_once_on_the_wire(
    site: FakeStatsSite, client: httpx.AsyncClient
) -> None:
    site.add_profile(
        "epic", "Some One", profile_payload([playlist_segment(11, 34)], platform="epic")
    )
    source = source_for(site)
    for url in (
        "https://rocketleague.tracker.network/rocket-league/profile/epic/Some%20One/overview",
        "https://rocketleague.tracker.network/rocket-league/profile/epic/Some One/overview",
    ):
        await source.fetch(source.validate({"url": url}), client)
    assert [seen.raw_path for seen in site.requests] == [
        "/api/v2/rocket-league/standard/profile/epic/Some%20One"
    ] * 2


async def test_an_id_that_would_leave_its_path_segment_never_reaches_the_wire(
    site: FakeStatsSite, client: httpx.AsyncClient
) -> None:
    source = source_for(site)
    profile = "https://rocketleague.tracker.network/rocket-league/profile/steam"
    for target in (
        {"url": f"{profile}/%2e%2e/overview"},
        {"url": f"{profile}/%2E/overview"},
        {"platform": "steam", "id": ".."},
        {"platform": "steam", "id": "a\\b"},
    ):
        with pytest.raises(InvalidTarget, match=r"path segment|backslash"):
            source.validate(target)
        with pytest.raises(InvalidTarget, match=r"path segment|backslash"):
            await source.fetch(target, client)
    assert site.requests == []
    # A literal "%2e%2e" (the id really holds percent signs) stays one segment on the wire.
    site.add_profile("epic", "%2e%2e", profile_payload([playlist_segment(11, 34)]))
    await source.fetch({"platform": "epic", "id": "%2e%2e"}, client)
    assert [seen.raw_path for seen in site.requests] == [
        "/api/v2/rocket-league/standard/profile/epic/%252e%252e"
    ]


async def test_through_a_proxy_that_wraps_the_page(client: httpx.AsyncClient) -> None:
    with FakeStatsSite(proxy=True) as proxy:
        proxy.add_profile(PLATFORM, PLAYER, recorded())
        proxy.add_profile(PLATFORM, PLAYER, older_season(33, 2500), season=33)
        proxy.add_profile(PLATFORM, PLAYER, older_season(32, 2400), season=32)
        proxy.add_profile(PLATFORM, PLAYER, older_season(31, 2300), season=31)
        snapshots = await source_for(proxy).fetch(
            {"platform": PLATFORM, "id": PLAYER, "first_scrape": True}, client
        )
        assert [s.data["playlists"]["2v2"]["rating"] for s in snapshots] == [2629, 2500, 2400, 2300]
        proxy.script(PLATFORM, PLAYER, Reply(403, challenge_page()))
        with pytest.raises(SourceBlocked) as caught:
            await source_for(proxy).fetch({"platform": PLATFORM, "id": PLAYER}, client)
        assert caught.value.host == "api.tracker.gg"


async def test_the_recorded_proxy_answer_as_served(
    site: FakeStatsSite, client: httpx.AsyncClient
) -> None:
    site.script(
        PLATFORM,
        PLAYER,
        Reply(body=RECORDED_PROXY.read_text(), headers={"content-type": "application/json"}),
    )
    [snapshot] = await source_for(site).fetch({"platform": PLATFORM, "id": PLAYER}, client)
    assert snapshot.data["playlists"]["3v3"]["rank"] == "Grand Champion I"


async def test_bot_protection_page_is_blocked(
    site: FakeStatsSite, client: httpx.AsyncClient
) -> None:
    site.script(
        PLATFORM, PLAYER, Reply(403, challenge_page(), headers={"cf-mitigated": "challenge"})
    )
    with pytest.raises(SourceBlocked, match="bot-protection") as caught:
        await source_for(site).fetch({"platform": PLATFORM, "id": PLAYER}, client)
    assert caught.value.host == "127.0.0.1"


async def test_rate_limit_is_blocked_with_retry_after(
    site: FakeStatsSite, client: httpx.AsyncClient
) -> None:
    site.add_profile(PLATFORM, PLAYER, recorded())
    site.script(PLATFORM, PLAYER, Reply(429, "Too Many Requests", headers={"Retry-After": "42"}))
    with pytest.raises(SourceBlocked, match="rate limiting") as caught:
        await source_for(site).fetch({"platform": PLATFORM, "id": PLAYER}, client)
    assert caught.value.retry_after == 42.0
    # The next poll, once the host lets us, goes through.
    assert len(await source_for(site).fetch({"platform": PLATFORM, "id": PLAYER}, client)) == 1


async def test_blocked_while_fetching_a_previous_season_blocks_the_whole_poll(
    site: FakeStatsSite, client: httpx.AsyncClient
) -> None:
    site.script(
        PLATFORM,
        PLAYER,
        Reply(body=recorded()),
        Reply(429, headers={"Retry-After": "5"}),
    )
    with pytest.raises(SourceBlocked):
        await source_for(site).fetch(
            {"platform": PLATFORM, "id": PLAYER, "first_scrape": True}, client
        )
    assert site.seasons_asked(PLATFORM, PLAYER) == [None, "33"]


async def test_unknown_player_is_an_invalid_target(
    site: FakeStatsSite, client: httpx.AsyncClient
) -> None:
    with pytest.raises(InvalidTarget, match="no such Rocket League profile"):
        await source_for(site).fetch({"platform": "xbl", "id": "nobody"}, client)


async def test_server_error_is_worth_retrying(
    site: FakeStatsSite, client: httpx.AsyncClient
) -> None:
    site.script(PLATFORM, PLAYER, Reply(502, "Bad Gateway"))
    with pytest.raises(SourceError, match="HTTP 502") as caught:
        await source_for(site).fetch({"platform": PLATFORM, "id": PLAYER}, client)
    assert not isinstance(caught.value, InvalidTarget | SourceBlocked)


async def test_a_slow_answer_times_out_as_a_source_error(site: FakeStatsSite) -> None:
    site.script(PLATFORM, PLAYER, Reply(body=recorded(), delay=2.0))
    async with httpx.AsyncClient(timeout=0.2) as impatient:
        with pytest.raises(SourceError, match="did not answer in time"):
            await source_for(site).fetch({"platform": PLATFORM, "id": PLAYER}, impatient)


async def test_an_unreachable_site_is_a_source_error(client: httpx.AsyncClient) -> None:
    with FakeStatsSite() as gone:
        url = gone.url
    source = RocketLeagueSource(api_url=url, enabled=True)
    with pytest.raises(SourceError, match=r"could not reach 127\.0\.0\.1"):
        await source.fetch({"platform": PLATFORM, "id": PLAYER}, client)


async def test_through_trackds_guarded_client(site: FakeStatsSite) -> None:
    site.add_profile(PLATFORM, PLAYER, recorded())
    target = {"platform": PLATFORM, "id": PLAYER}
    # The fake site is on loopback: refused unless private addresses are allowed.
    async with outbound_client(Settings(), allow_private=False) as guarded:
        with pytest.raises(InvalidTarget, match="TRACKD_ALLOW_PRIVATE_FETCH"):
            await source_for(site).fetch(target, guarded)
    async with outbound_client(Settings(), allow_private=True) as allowed:
        [snapshot] = await source_for(site).fetch(target, allowed)
    assert snapshot.data["playlists"]["1v1"]["rating"] == 1721
