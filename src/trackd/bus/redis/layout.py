"""Settings and key names of the Redis Streams bus, shared by its publisher and consumers.

Every process of one deployment must agree on these: a publisher and a consumer that split
keys over different partition counts would never meet, so the count is also stored in Redis
and checked by each process (see `RedisStreamsBus`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from trackd.errors import ConfigError

# What "Redis is away" looks like (BusyLoadingError, a restarted server reading its
# append-only file, is a ConnectionError); everything else is a bug or a misconfiguration.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)

# The longest single XREADGROUP BLOCK: a fetch asked to wait longer returns empty sooner,
# which the protocol allows, and keeps lease checks and shutdown prompt.
MAX_BLOCK_S = 2.0


@dataclass(frozen=True, slots=True)
class RedisStreamsOptions:
    """How the bus lays out and looks after its streams; each is a URL query parameter.

    Attributes:
        partitions: streams per topic; one key always maps to one partition (crc32 % N).
            Change it only with every stream drained.
        prefix: the first part of every key the bus creates, so deployments (and tests)
            can share one Redis database.
        lease_ttl: seconds a partition lease lasts without renewal; a consumer that dies
            holds its partitions this long, and renews every third of it.
        rebalance_interval: seconds between a consumer's checks of its fair share.
        trim_interval: seconds between trims of the streams a consumer owns (acks also trim,
            at most once a second per stream).
        publish_timeout: seconds `publish` keeps retrying an unreachable Redis before it
            raises `BusUnavailableError`.
    """

    partitions: int = 16
    prefix: str = "trackd"
    lease_ttl: float = 10.0
    rebalance_interval: float = 1.0
    trim_interval: float = 30.0
    publish_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.partitions <= 4096:
            raise ConfigError(f"partitions={self.partitions}: use 1 to 4096")
        if not self.prefix or any(c in self.prefix for c in " {}*?[]"):
            raise ConfigError(f"prefix={self.prefix!r}: use letters, digits, ':', '-' or '_'")
        for name in ("lease_ttl", "rebalance_interval", "trim_interval", "publish_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be a positive number of seconds")

    @classmethod
    def split_url(cls, url: str) -> tuple[str, RedisStreamsOptions]:
        """The Redis URL without trackd's query parameters, and the options they set.

        Raises:
            ConfigError: a parameter is not a number where one is needed, or out of range.
        """
        parts = urlsplit(url)
        ours: dict[str, str] = {}
        theirs: list[tuple[str, str]] = []
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name in cls.__dataclass_fields__:
                ours[name] = value
            else:  # redis-py's own, e.g. ?socket_timeout=5
                theirs.append((name, value))
        try:
            changes: dict[str, object] = {
                name: (value if name == "prefix" else _number(name, value))
                for name, value in ours.items()
            }
        except ValueError as exc:
            raise ConfigError(f"bus URL: {exc}") from None
        options = replace(cls(), **changes)  # type: ignore[arg-type]
        rest = urlunsplit(parts._replace(query=urlencode(theirs)))
        return rest, options


def _number(name: str, value: str) -> int | float:
    try:
        return int(value) if name == "partitions" else float(value)
    except ValueError:
        kind = "an integer" if name == "partitions" else "a number of seconds"
        raise ValueError(f"{name}={value!r} is not {kind}") from None


def partition_of(key: str, partitions: int) -> int:
    """The partition of a key: stable across processes and Python versions (not `hash`)."""
    return zlib.crc32(key.encode()) % partitions


def stream_name(prefix: str, topic: str, partition: int) -> str:
    return f"{prefix}:{topic}:{partition}"


def id_before(entry_id: str) -> str:
    """The greatest stream id below `entry_id`: reading after it starts at `entry_id`."""
    ms, _, seq = entry_id.partition("-")
    if int(seq or 0) > 0:
        return f"{ms}-{int(seq) - 1}"
    if int(ms) > 0:
        return f"{int(ms) - 1}-{2**64 - 1}"
    return "0-0"
