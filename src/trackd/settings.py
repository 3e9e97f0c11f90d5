"""Settings from the environment (prefix TRACKD_); command-line flags override them."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from trackd.domain.jsonpolicy import DEFAULT_MAX_DEPTH, STORE_MAX_DEPTH, JsonPolicy


class SourceRetention(BaseModel):
    """One source's snapshot retention; a field left out takes the global default."""

    keep: int | None = Field(default=None, ge=1)
    days: float | None = Field(default=None, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACKD_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./trackd.db"
    bus_url: str = "memory://"
    default_tenant: str = Field(default="default", min_length=1, max_length=100)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    # Ingest batching: a batch is written when it holds this many events or has waited this long.
    ingest_batch_size: int = Field(default=2500, ge=1, le=50_000)
    ingest_max_wait_ms: int = Field(default=20, ge=0, le=60_000)
    # How long POST /v1/events waits for its events to be stored before answering 503.
    publish_timeout_s: float = Field(default=30.0, gt=0)
    # How long a process trusts its cached module config when it hears of no change (a
    # change announced on the bus is seen at once; this covers a missed announcement).
    module_config_ttl_s: float = Field(default=30.0, gt=0, le=3600)
    # How far ahead of this server's clock an event may be dated (clock drift between
    # producers); an event from next year would set plans' as_of and skew metrics for good.
    max_event_future_seconds: float = Field(default=86_400.0, gt=0, le=10 * 365 * 86_400)
    # Every request body, on every route, counted while it is read (chunked bodies too).
    max_request_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    # How deeply JSON in a request may nest (trackd.domain.jsonpolicy); stored JSON columns
    # refuse more than STORE_MAX_DEPTH whatever this says.
    json_max_depth: int = Field(default=DEFAULT_MAX_DEPTH, ge=2, le=STORE_MAX_DEPTH)
    # League trackers (seed 002). The stats site forbids unofficial API use and sits behind bot
    # protection, so live fetching is off until a deployment turns it on; the base URL is
    # replaced as a whole to go through a proxy (FlareSolverr-style) or a test server.
    trn_api_url: str = "https://api.tracker.gg"
    trn_enabled: bool = False
    tracker_user_limit: int = Field(default=4, ge=1, le=100)
    # Every live tracker is refreshed daily on this cron (UTC), spread over the jitter so the
    # stats site is not asked for every profile in the same minute.
    tracker_refresh_cron: str = "0 2 * * *"
    tracker_refresh_jitter_s: float = Field(default=3600.0, ge=0, le=86_400)
    # Space weather (issue 12): NOAA SWPC's JSON service and GFZ Potsdam's Kp API, no key;
    # base URLs so a deployment can go through a proxy and tests through a local fake.
    noaa_swpc_url: str = "https://services.swpc.noaa.gov"
    gfz_kp_url: str = "https://kp.gfz.de"
    # Outbound HTTP (sources and notification channels). Private, loopback, link-local and
    # cloud-metadata addresses are refused unless this is on (a trusted, internal deployment).
    allow_private_fetch: bool = False
    fetch_timeout_s: float = Field(default=15.0, gt=0, le=600)
    fetch_max_bytes: int = Field(default=5_000_000, ge=1024)
    # Requests per second to one host, with bursts of up to `fetch_burst`.
    fetch_rate_per_host: float = Field(default=2.0, gt=0)
    fetch_burst: int = Field(default=5, ge=1)
    # Snapshot history kept per subject: the newest `snapshot_keep` and none older than
    # `snapshot_keep_days` (the newest one is always kept). Per source, as JSON:
    # TRACKD_SNAPSHOT_RETENTION='{"rocket_league": {"keep": 5000, "days": 730}}'.
    snapshot_keep: int = Field(default=1000, ge=1)
    snapshot_keep_days: float = Field(default=365.0, gt=0)
    snapshot_retention: dict[str, SourceRetention] = Field(default_factory=dict)
    # The notifier delivers the outbox (channels and bus events); off leaves rows queued for
    # another process's notifier.
    notifier_enabled: bool = True
    notify_max_attempts: int = Field(default=8, ge=1, le=100)
    notify_poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    notify_lease_s: float = Field(default=60.0, ge=5)
    notify_batch_size: int = Field(default=50, ge=1, le=1000)

    # Scheduling (DESIGN §9). `trackd serve` runs the scheduler and the pollers in its own
    # process unless these are off (`trackd scheduler` / `trackd worker` run them elsewhere).
    scheduler_enabled: bool = True
    worker_enabled: bool = True
    scheduler_tick_s: float = Field(default=1.0, gt=0, le=60)
    # Runs already due when a scheduler starts are spread over this window, not fired at once.
    scheduler_startup_spread_s: float = Field(default=30.0, ge=0, le=3600)
    poll_concurrency: int = Field(default=4, ge=1, le=256)
    # A poll whose worker stops renewing its lease for this long runs again elsewhere.
    poll_lease_s: float = Field(default=30.0, ge=0.5, le=3600)
    poll_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    poll_sweep_interval_s: float = Field(default=1.0, gt=0, le=60)
    poll_max_blocks: int = Field(default=8, ge=1, le=100)
    # Prometheus metrics (GET /metrics): event and task types each tenant's series name before
    # the rest are labelled "other"; how long store-derived gauges are reused between scrapes
    # (a scrape storm reads the store once per window); how late a due schedule must be before
    # it counts as not fired.
    metrics_top_types: int = Field(default=20, ge=1, le=1000)
    metrics_cache_s: float = Field(default=5.0, ge=0, le=300)
    metrics_schedule_late_s: float = Field(default=60.0, gt=0, le=86_400)

    @property
    def max_event_future(self) -> timedelta:
        return timedelta(seconds=self.max_event_future_seconds)

    @property
    def json_policy(self) -> JsonPolicy:
        """The JSON policy request bodies are judged by."""
        return JsonPolicy(max_depth=self.json_max_depth)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
