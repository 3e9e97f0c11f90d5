"""The Rocket League source: a player's ranked seasons from the stats site's profile API.

Target: `{"platform": "psn", "id": "nssbali_", "first_scrape": true, "tracker_id": "..."}` or
`{"url": "https://rocketleague.tracker.network/rocket-league/profile/psn/nssbali_/overview"}`.
A fetch returns one snapshot per season: the current season always and, on a tracker's first
poll (`first_scrape`, the name its stored targets keep), the three seasons before it as well
(`?season=N`), so that a new tracker starts with the history a league needs.

The site forbids unofficial use of its API and sits behind bot protection, so fetching is off
unless `TRACKD_TRN_ENABLED` is set, and the base URL (`TRACKD_TRN_API_URL`) can point at a proxy
that solves the protection. Both the API's JSON and a FlareSolverr-style proxy's answer (the
JSON HTML-escaped inside `<pre>` in `solution.response`) are read. A bot-protection page or a
429 raises SourceBlocked with the host and its Retry-After, so the poll is `blocked`, not
`failed`.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import httpx

from trackd.domain.league import TrackerProfile, TrackerRuleError, parse_profile_url, profile
from trackd.outbound.http import RefusedAddress
from trackd.sources.base import InvalidTarget, Snapshot, SourceBlocked, SourceError
from trackd.sources.rocket_league_stats import SeasonStats, current_season, parse_season

if TYPE_CHECKING:
    from trackd.settings import Settings

NAME: Final = "rocket_league"
PREVIOUS_SEASONS: Final = 3

# Phrases and names only a bot-protection interstitial carries (Cloudflare's challenge and
# block pages); a profile's JSON never contains them.
_CHALLENGE_MARKERS: Final = (
    "cf-chl",
    "cf_chl",
    "challenge-platform",
    "cf-browser-verification",
    "just a moment...",
    "attention required! | cloudflare",
    "checking your browser before accessing",
    "enable javascript and cookies to continue",
)
_PRE: Final = re.compile(r"<pre[^>]*>(.*?)</pre>", re.IGNORECASE | re.DOTALL)
_PROXY_STATUSES: Final = frozenset({"ok", "warning", "error"})


class FetchingDisabled(InvalidTarget):
    """Live fetching from the stats site is turned off in this deployment."""


class RocketLeagueSource:
    """Fetches ranked seasons of Rocket League profiles (see the module docstring).

    Args:
        api_url: the API's base URL, or a proxy's standing in for it (TRACKD_TRN_API_URL
            through `from_settings`).
        enabled: whether fetching is allowed at all; when not, fetch refuses with
            FetchingDisabled and sends nothing (TRACKD_TRN_ENABLED through `from_settings`).
        previous_seasons: how many seasons before the current one a first poll fetches.
        clock: the time snapshots are stamped with (tests pass a fixed one).
    """

    name = NAME

    def __init__(
        self,
        *,
        api_url: str,
        enabled: bool,
        previous_seasons: int = PREVIOUS_SEASONS,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        parts = urlsplit(api_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the stats API URL must be an http(s) URL, got {api_url!r}")
        if previous_seasons < 0:
            raise ValueError("previous_seasons must not be negative")
        self.api_url = api_url.rstrip("/")
        self.enabled = enabled
        self.previous_seasons = previous_seasons
        self._clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def from_settings(cls, settings: Settings) -> RocketLeagueSource:
        return cls(api_url=settings.trn_api_url, enabled=settings.trn_enabled)

    def validate(self, target: Mapping[str, Any]) -> dict[str, Any]:
        """The target as `{"platform", "id", "first_scrape"}` (plus `tracker_id` when given).

        Raises:
            InvalidTarget: neither a profile URL nor a platform and id, or not a valid one.
        """
        if not isinstance(target, Mapping):
            raise InvalidTarget(
                "a Rocket League target is an object with a url, or platform and id"
            )
        try:
            if target.get("url") is not None:
                parsed = parse_profile_url(target["url"])
            elif target.get("platform") is not None and target.get("id") is not None:
                parsed = profile(target["platform"], target["id"])
            else:
                raise InvalidTarget(
                    "a Rocket League target needs a profile `url`, or a `platform` and an `id`"
                )
        except TrackerRuleError as exc:
            raise InvalidTarget(str(exc)) from None
        first_scrape = target.get("first_scrape", False)
        if not isinstance(first_scrape, bool):
            raise InvalidTarget("first_scrape must be true or false")
        canonical: dict[str, Any] = {
            "platform": parsed.platform,
            "id": parsed.player_id,
            "first_scrape": first_scrape,
        }
        tracker_id = target.get("tracker_id")
        if tracker_id is not None:
            if not isinstance(tracker_id, str) or not tracker_id:
                raise InvalidTarget("tracker_id must be a non-empty string")
            canonical["tracker_id"] = tracker_id
        return canonical

    async def fetch(self, target: Mapping[str, Any], client: httpx.AsyncClient) -> list[Snapshot]:
        """The current season's snapshot, and on a first poll the previous seasons' too.

        Raises:
            FetchingDisabled: TRACKD_TRN_ENABLED is off.
            InvalidTarget: the target is invalid, or the site has no such player.
            SourceBlocked: bot protection or rate limiting refused a request.
            SourceError: the network failed, the site erred or answered something unreadable.
        """
        if not self.enabled:
            raise FetchingDisabled(
                "fetching from the Rocket League stats site is turned off; set "
                "TRACKD_TRN_ENABLED=true (and TRACKD_TRN_API_URL to a proxy if the site's bot "
                "protection blocks direct requests)"
            )
        canonical = self.validate(target)
        player = TrackerProfile(canonical["platform"], canonical["id"])
        subject = canonical.get("tracker_id") or player.key
        taken_at = self._clock()

        answer = await self._get(client, player.api_url(self.api_url))
        now = current_season(answer)
        seasons = [parse_season(answer)]
        if canonical["first_scrape"]:
            for season in range(now - 1, max(0, now - 1 - self.previous_seasons), -1):
                older = await self._get(client, player.api_url(self.api_url, season=season))
                seasons.append(parse_season(older, season, current=now))
        return [self._snapshot(subject, player, stats, taken_at) for stats in seasons]

    def _snapshot(
        self, subject: str, player: TrackerProfile, stats: SeasonStats, taken_at: datetime
    ) -> Snapshot:
        return Snapshot(
            subject=subject,
            source=self.name,
            data=stats.model_dump(mode="json"),
            taken_at=taken_at,
            season=str(stats.season),
            meta={
                "platform": player.platform,
                "player_id": player.player_id,
                "profile_url": player.url,
                "current_season": stats.current_season,
            },
        )

    async def _get(self, client: httpx.AsyncClient, url: str) -> Mapping[str, Any]:
        host = urlsplit(url).hostname or ""
        try:
            response = await client.get(url, headers={"Accept": "application/json"})
        except httpx.TimeoutException as exc:
            raise SourceError(f"{host} did not answer in time ({type(exc).__name__})") from exc
        except RefusedAddress as exc:
            # A private address stays private: trying again will not help, the setting will.
            raise InvalidTarget(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise SourceError(f"could not reach {host}: {type(exc).__name__}: {exc}") from exc
        return read_answer(response.status_code, response.headers, response.text, host=host)


def read_answer(
    status: int, headers: Mapping[str, str], body: str, *, host: str, now: datetime | None = None
) -> Mapping[str, Any]:
    """The profile JSON in an answer of the API or of a proxy in front of it.

    Raises:
        SourceBlocked: a bot-protection page, a 403 or a 429 (with Retry-After when sent).
        InvalidTarget: the site has no such player (404, or a NotFound error).
        SourceError: anything else that is not a profile.
    """
    document = _json(body)
    if isinstance(document, Mapping) and _is_proxy_answer(document):
        return _unwrap_proxy(document, host=host, now=now)
    if document is None:
        # A proxy may hand back the rendered page itself: the JSON inside <pre>.
        document = _json_in_pre(body)
    lowered = {key.lower(): value for key, value in headers.items()}
    if status == 429:
        raise SourceBlocked(
            f"{host} is rate limiting us (429)",
            host=host,
            retry_after=retry_after_seconds(lowered.get("retry-after"), now),
        )
    challenged = lowered.get("cf-mitigated", "").lower() == "challenge" or _is_challenge(body)
    if status == 403 or (challenged and document is None):
        what = "a bot-protection challenge" if challenged else "a refusal (403)"
        raise SourceBlocked(
            f"{host} answered with {what}",
            host=host,
            retry_after=retry_after_seconds(lowered.get("retry-after"), now),
        )
    if status == 404:
        raise InvalidTarget(f"{host} has no such Rocket League profile (404)")
    if status >= 400:
        raise SourceError(f"{host} answered HTTP {status}")
    if document is None:
        raise SourceError(f"{host} answered something that is not JSON: {_excerpt(body)!r}")
    if not isinstance(document, Mapping):
        raise SourceError(f"{host} answered JSON that is not an object")
    if not isinstance(document.get("data"), Mapping):
        raise _api_error(document, host)
    return document


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _unwrap_proxy(
    document: Mapping[str, Any], *, host: str, now: datetime | None
) -> Mapping[str, Any]:
    solution = document.get("solution")
    message = str(document.get("message") or "")
    if not isinstance(solution, Mapping):
        if "challenge" in message.lower() or "captcha" in message.lower():
            raise SourceBlocked(
                f"the proxy could not pass {host}'s protection: {message}", host=host
            )
        raise SourceError(
            f"the proxy answered {document.get('status')!r}: {message or 'no solution'}"
        )
    upstream = urlsplit(str(solution.get("url") or "")).hostname or host
    status = solution.get("status")
    headers = solution.get("headers")
    body = solution.get("response")
    return read_answer(
        status if isinstance(status, int) else 200,
        {str(k): str(v) for k, v in headers.items()} if isinstance(headers, Mapping) else {},
        body if isinstance(body, str) else json.dumps(body),
        host=upstream,
        now=now,
    )


def _is_proxy_answer(document: Mapping[str, Any]) -> bool:
    if "data" in document:
        return False
    return "solution" in document or (
        document.get("status") in _PROXY_STATUSES and isinstance(document.get("message"), str)
    )


def _api_error(document: Mapping[str, Any], host: str) -> SourceError:
    errors = document.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0] if isinstance(errors[0], Mapping) else {}
        code = str(first.get("code") or "")
        message = str(first.get("message") or code or "an error")
        if "notfound" in code.replace("_", "").lower():
            return InvalidTarget(f"{host} has no such Rocket League profile: {message}")
        return SourceError(f"{host} answered an error: {message}")
    return SourceError(f"{host} answered without a profile (no `data` object)")


def _json(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _json_in_pre(body: str) -> Any:
    match = _PRE.search(body)
    return _json(html.unescape(match.group(1))) if match else None


def _is_challenge(body: str) -> bool:
    head = body[:20_000].lower()
    return any(marker in head for marker in _CHALLENGE_MARKERS)


def _excerpt(body: str, limit: int = 80) -> str:
    text = " ".join(body.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
