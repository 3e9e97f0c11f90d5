"""Which bus a URL names: the backend by scheme, imported only when used, so that a missing
optional dependency is an error naming the extra to install."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trackd.errors import ConfigError

if TYPE_CHECKING:
    from trackd.bus.base import Bus


def from_url(url: str, *, platform_group: str | None = None) -> Bus:
    """The bus for a URL, its backend imported only when used.

    `memory://` (in-process, the default), `redis://host:port/db` (Redis Streams),
    `nats://host:port` (NATS, compatible with the agent platform's subjects). On NATS the
    consumer group `platform_group` (trackd's ingest, when the runtime builds the bus) joins
    the agent platform's queue group (`tracker-service` unless the URL says `queue=`).

    Raises:
        ConfigError: the scheme is unknown, or the backend's optional dependency is missing.
    """
    kind = scheme(url)
    if in_process(url):
        from trackd.bus.memory import MemoryBus

        return MemoryBus()
    if kind in ("redis", "rediss"):
        try:
            from trackd.bus.redis.bus import RedisStreamsBus
        except ImportError as exc:
            raise ConfigError(_missing("redis", exc)) from None
        return RedisStreamsBus.from_url(url)
    if kind in ("nats", "tls"):
        try:
            from trackd.bus.nats import NatsBus
        except ImportError as exc:
            raise ConfigError(_missing("nats", exc)) from None
        return NatsBus.from_url(url, platform_group=platform_group)
    raise ConfigError(
        f"unsupported bus URL {url!r}; use memory://, redis://host:6379/0 or nats://host:4222"
    )


def in_process(url: str) -> bool:
    """Whether a bus URL names the in-process bus (`memory://`), which only the process
    that holds it can hear: another process's worker or ingest never sees its messages."""
    return scheme(url) == "memory"


def scheme(url: str) -> str:
    """A URL's scheme in lower case (`memory`, `redis`, `https` ...); '' when it has none."""
    return url.split("://", 1)[0].lower() if "://" in url else ""


def _missing(extra: str, exc: ImportError) -> str:
    return (
        f"the {extra} bus needs an optional dependency ({exc.name}): pip install 'trackd[{extra}]'"
    )
