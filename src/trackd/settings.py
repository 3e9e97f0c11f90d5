"""Settings from the environment (prefix TRACKD_); command-line flags override them."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACKD_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./trackd.db"
    bus_url: str = "memory://"
    default_tenant: str = Field(default="default", min_length=1, max_length=100)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    # Ingest batching: a batch is written when it holds this many events or has waited this long.
    ingest_batch_size: int = Field(default=1000, ge=1, le=50_000)
    ingest_max_wait_ms: int = Field(default=20, ge=0, le=60_000)
    # How long POST /v1/events waits for its events to be stored before answering 503.
    publish_timeout_s: float = Field(default=30.0, gt=0)
    # League trackers (seed 002). The stats site forbids unofficial API use and sits behind bot
    # protection, so live fetching is off until a deployment turns it on; the base URL is
    # replaced as a whole to go through a proxy (FlareSolverr-style) or a test server.
    trn_api_url: str = "https://api.tracker.gg"
    trn_enabled: bool = False
    tracker_user_limit: int = Field(default=4, ge=1, le=100)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
