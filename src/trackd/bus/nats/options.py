"""What a `nats://` URL sets: server, subject prefix, queue group, stream and limits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from trackd.errors import ConfigError

DEFAULT_PREFIX = "soorma.events"
DEFAULT_QUEUE = "tracker-service"
_PARAMETERS = ("prefix", "queue", "stream", "create_stream", "ack_wait", "buffer")
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")  # safe as a subject token, a queue and a durable name


@dataclass(frozen=True, slots=True)
class NatsOptions:
    """What the query string of a `nats://` URL sets."""

    prefix: str = DEFAULT_PREFIX
    queue: str = DEFAULT_QUEUE
    stream: str | None = None
    create_stream: bool = False
    ack_wait: float = 30.0
    buffer: int = 1000
    # Whole seconds: nats-py takes these as int.
    connect_timeout: int = 2
    request_timeout: int = 5

    @classmethod
    def from_query(cls, query: str) -> NatsOptions:
        """Options from `prefix=...&queue=...`.

        Raises:
            ConfigError: an unknown parameter, or a value that cannot be used.
        """
        raw = dict(parse_qsl(query, keep_blank_values=True))
        unknown = sorted(set(raw) - set(_PARAMETERS))
        if unknown:
            raise ConfigError(
                f"unknown NATS URL parameter(s) {unknown}; use prefix, queue, stream, "
                "create_stream, ack_wait or buffer"
            )
        prefix = raw.get("prefix", DEFAULT_PREFIX)
        if not all(_TOKEN.fullmatch(part) for part in prefix.split(".")):
            raise ConfigError(
                f"NATS prefix {prefix!r} must be dot-separated words like soorma.events"
            )
        queue = token(raw.get("queue", DEFAULT_QUEUE), "queue")
        stream = token(raw["stream"], "stream") if "stream" in raw else None
        create = raw.get("create_stream", "false").lower()
        if create not in ("true", "false", "1", "0"):
            raise ConfigError(f"create_stream={create!r}: use true or false")
        try:
            ack_wait = float(raw.get("ack_wait", "30"))
            buffer = int(raw.get("buffer", "1000"))
        except ValueError as exc:
            raise ConfigError(
                f"NATS URL: ack_wait takes seconds and buffer a count ({exc})"
            ) from None
        if ack_wait <= 0 or buffer < 1:
            raise ConfigError("NATS URL: ack_wait and buffer must be positive")
        create_stream = create in ("true", "1")
        return cls(prefix, queue, stream, create_stream, ack_wait, buffer)

    @property
    def stream_name(self) -> str | None:
        """The stream trackd looks after: the one named, else the default one when asked to
        create a stream, else none (each topic then runs on whatever the server has)."""
        if self.stream is not None:
            return self.stream
        return default_stream_name(self.prefix) if self.create_stream else None

    def subject(self, topic: str) -> str:
        """The subject a topic is published on."""
        return f"{self.prefix}.{token(topic, 'topic')}"


def default_stream_name(prefix: str) -> str:
    """The stream `create_stream=true` creates when no `stream=` is given: the prefix in
    capitals with `_` for `.` and `-` (`soorma.events` → `SOORMA_EVENTS`), so that
    deployments with their own prefixes get their own streams."""
    return re.sub(r"[.-]", "_", prefix).upper()


def split_url(url: str) -> tuple[str, NatsOptions]:
    """The server part of a `nats://` (or `tls://`) URL and the options its query sets.

    Raises:
        ConfigError: the query holds something unknown or unusable.
    """
    parts = urlsplit(url)
    server = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    return server, NatsOptions.from_query(parts.query)


def token(value: str, what: str) -> str:
    """`value`, checked to be safe as a subject token, a queue and a durable name.

    Raises:
        ConfigError: it holds anything but letters, digits, '-' and '_'.
    """
    if not _TOKEN.fullmatch(value):
        raise ConfigError(f"NATS {what} {value!r} may hold only letters, digits, '-' and '_'")
    return value
