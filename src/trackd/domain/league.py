"""League trackers: profile URL rules, the stats API address, and registration limits.

A tracker is a player's profile on the Rocket League stats site, given by its public URL
(`https://rocketleague.tracker.network/rocket-league/profile/{platform}/{id}/overview`).
Everything here is pure: the store and the routes ask these rules and report their messages.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from urllib.parse import quote, unquote

from trackd.errors import RuleBroken

PLATFORMS: Final = ("steam", "epic", "xbl", "psn", "switch")
ID_MAX_LENGTH: Final = 100
# Register and add both stop at this many live trackers per user unless configured otherwise.
DEFAULT_USER_LIMIT: Final = 4
# Longer strings are refused before any pattern runs over them (100 four-byte characters,
# percent-encoded, still fit).
URL_MAX_LENGTH: Final = 2048

PROFILE_HOST: Final = "rocketleague.tracker.network"
PROFILE_URL_FORM: Final = (
    f"https://{PROFILE_HOST}/rocket-league/profile/{{platform}}/{{id}}/overview"
)
API_PATH: Final = "/api/v2/rocket-league/standard/profile/{platform}/{id}"

_PROFILE_URL = re.compile(
    r"https://rocketleague\.tracker\.network/rocket-league/profile/"
    r"(?P<platform>[a-z]+)/(?P<id>[^/?#]+)/overview/?",
    re.IGNORECASE,
)


class ScrapingStatus(StrEnum):
    """Where a tracker's latest poll stands (seed 002)."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    # The stats site's bot protection refused the fetch; it is retried after a back-off and
    # is not a failure of the tracker.
    BLOCKED = "BLOCKED"


# A tracker's scraping status is its latest poll's (DESIGN §9 poll statuses); a tracker never
# polled is PENDING. Cancelled polls (a tracker paused or deleted) do not count as its latest.
_SCRAPING_BY_POLL: Final = {
    "pending": ScrapingStatus.PENDING,
    "running": ScrapingStatus.IN_PROGRESS,
    "blocked": ScrapingStatus.BLOCKED,
    "completed": ScrapingStatus.COMPLETED,
    "failed": ScrapingStatus.FAILED,
}


def scraping_status(poll_status: str | None) -> ScrapingStatus:
    """The tracker's scraping status given its latest poll's status (None: never polled)."""
    if poll_status is None:
        return ScrapingStatus.PENDING
    try:
        return _SCRAPING_BY_POLL[poll_status]
    except KeyError:
        raise ValueError(f"unknown poll status {poll_status!r}") from None


def poll_statuses(status: ScrapingStatus) -> list[str]:
    """The poll statuses that give a tracker `status` (to filter trackers by it)."""
    return [poll for poll, scraping in _SCRAPING_BY_POLL.items() if scraping is status]


class TrackerRuleError(RuleBroken):
    """A tracker request breaks a rule; the message says which and what to do instead."""


@dataclass(frozen=True, slots=True)
class TrackerProfile:
    """A parsed profile URL.

    Attributes:
        platform: one of PLATFORMS, lower case.
        player_id: the player's id as the site shows it, percent-decoded (case kept).
    """

    platform: str
    player_id: str

    @property
    def key(self) -> str:
        """What makes two URLs the same tracker: platform and id, ignoring case."""
        return f"{self.platform}/{self.player_id.casefold()}"

    @property
    def url(self) -> str:
        """The canonical profile URL: lower-case host and platform, the id encoded once."""
        return PROFILE_URL_FORM.format(platform=self.platform, id=encode_id(self.player_id))

    def api_url(self, base_url: str, season: int | None = None) -> str:
        """The stats API address of this profile under `base_url` (the site's API or a proxy
        standing in for it), for `season` or, without one, the current season."""
        path = API_PATH.format(platform=self.platform, id=encode_id(self.player_id))
        url = base_url.rstrip("/") + path
        if season is not None:
            if season < 1:
                raise TrackerRuleError(f"seasons count from 1, got {season}")
            url += f"?season={season}"
        return url


def encode_id(player_id: str) -> str:
    """The id percent-encoded for one URL path segment (every reserved character, `/` too).

    Raises:
        TrackerRuleError: the id cannot stay one segment (see `check_player_id`); a stored id
            from before that rule is refused here rather than sent.
    """
    return quote(_one_segment(player_id), safe="")


def parse_profile_url(url: str) -> TrackerProfile:
    """The profile a tracker URL names.

    The URL is matched case-insensitively and may end in a slash. The id is percent-decoded
    exactly once, so `Some%20Name` and `Some Name` are the same player and neither is encoded
    twice on the way to the API.

    Raises:
        TrackerRuleError: the URL is not a supported profile URL; the message shows the form.
    """
    if not isinstance(url, str):
        raise TrackerRuleError("a tracker URL must be a string")
    text = url.strip()
    if not text:
        raise TrackerRuleError(f"the tracker URL is empty; expected {PROFILE_URL_FORM}")
    if len(text) > URL_MAX_LENGTH:
        raise TrackerRuleError(f"the tracker URL is longer than {URL_MAX_LENGTH} characters")
    match = _PROFILE_URL.fullmatch(text)
    if match is None:
        raise TrackerRuleError(
            f"not a Rocket League tracker profile URL: {_shorten(text)!r}; "
            f"expected {PROFILE_URL_FORM} with platform one of {', '.join(PLATFORMS)}"
        )
    platform = match["platform"].lower()
    if platform not in PLATFORMS:
        raise TrackerRuleError(
            f"unsupported platform {match['platform']!r}; use one of {', '.join(PLATFORMS)}"
        )
    try:
        player_id = unquote(match["id"], errors="strict")
    except UnicodeDecodeError:
        raise TrackerRuleError(
            "the player id in the URL is not valid percent-encoded UTF-8"
        ) from None
    return TrackerProfile(platform, check_player_id(player_id))


def profile(platform: str, player_id: str) -> TrackerProfile:
    """A profile from its parts, checked as a URL would be (the id given decoded)."""
    name = platform.strip().lower() if isinstance(platform, str) else ""
    if name not in PLATFORMS:
        raise TrackerRuleError(
            f"unsupported platform {platform!r}; use one of {', '.join(PLATFORMS)}"
        )
    if not isinstance(player_id, str):
        raise TrackerRuleError("a player id must be a string")
    return TrackerProfile(name, check_player_id(player_id))


def check_player_id(player_id: str) -> str:
    """The id if it may name a player: 1 to 100 characters, no control characters, no slash."""
    if not player_id or not player_id.strip():
        raise TrackerRuleError("the player id is empty")
    if len(player_id) > ID_MAX_LENGTH:
        raise TrackerRuleError(
            f"the player id is {len(player_id)} characters long; at most {ID_MAX_LENGTH} allowed"
        )
    # A decoded `/` would become another path segment on the site; control characters are never
    # part of a player name and only serve to smuggle something into logs or URLs.
    if "/" in player_id or any(unicodedata.category(c) == "Cc" for c in player_id):
        raise TrackerRuleError("the player id contains a slash or a control character")
    return _one_segment(player_id)


def _one_segment(player_id: str) -> str:
    """The id, if it stays one path segment of the stats API's URL once encoded."""
    # "." and ".." are dot segments: percent-encoding leaves them as they are, and a client,
    # proxy or server removes them, so the request would climb out of the profile path.
    if player_id in (".", ".."):
        raise TrackerRuleError(
            f"the player id {player_id!r} cannot be one path segment of a profile URL"
        )
    # Some servers take a backslash, even encoded, for a slash; the same rule as for `/`.
    if "/" in player_id or "\\" in player_id:
        raise TrackerRuleError("the player id contains a slash or a backslash")
    return player_id


def parse_register_request(
    urls: Sequence[str], *, limit: int = DEFAULT_USER_LIMIT
) -> list[TrackerProfile]:
    """The profiles of a registration request of 1 to `limit` distinct URLs.

    Raises:
        TrackerRuleError: too few or too many URLs, a URL that is not a profile URL (its
            position is named), or the same profile twice.
    """
    if isinstance(urls, str | bytes):
        raise TrackerRuleError("urls must be a list of tracker URLs, not a single string")
    if not urls:
        raise TrackerRuleError(f"give between 1 and {limit} tracker URLs; the list is empty")
    if len(urls) > limit:
        raise TrackerRuleError(f"give between 1 and {limit} tracker URLs; {len(urls)} were given")
    profiles: list[TrackerProfile] = []
    seen: dict[str, int] = {}
    for position, url in enumerate(urls, start=1):
        try:
            parsed = parse_profile_url(url)
        except TrackerRuleError as exc:
            raise TrackerRuleError(f"URL {position}: {exc}") from None
        if parsed.key in seen:
            raise TrackerRuleError(
                f"URL {position} is the same tracker as URL {seen[parsed.key]} "
                f"({parsed.platform} {parsed.player_id!r}); give each tracker once"
            )
        seen[parsed.key] = position
        profiles.append(parsed)
    return profiles


def check_may_register(live_trackers: int) -> None:
    """Registration is for users with no live tracker yet; the others add one at a time."""
    if live_trackers > 0:
        raise TrackerRuleError(
            f"you already have {live_trackers} tracker{'s' if live_trackers != 1 else ''}; "
            "use POST /api/trackers/add to add another"
        )


def check_may_add(live_trackers: int, adding: int = 1, *, limit: int = DEFAULT_USER_LIMIT) -> None:
    """Whether `adding` more trackers keep a user within `limit` live ones."""
    if live_trackers + adding > limit:
        free = max(0, limit - live_trackers)
        raise TrackerRuleError(
            f"a user may have at most {limit} trackers; you have {live_trackers}"
            + (f", so you can add {free} more" if free else "; delete one before adding another")
        )


def already_registered(tracker: TrackerProfile, *, own: bool) -> TrackerRuleError:
    """The error for a URL a live tracker already has, worded for its owner or someone else."""
    if own:
        return TrackerRuleError(f"you already track {tracker.url}")
    return TrackerRuleError(f"{tracker.url} is already registered by another user")


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
