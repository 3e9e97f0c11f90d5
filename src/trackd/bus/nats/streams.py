"""JetStream streams: creating trackd's own, and finding which one covers a subject."""

from __future__ import annotations

import logging
import time

import nats.js.errors
from nats.js.api import StorageType, StreamConfig
from nats.js.client import JetStreamContext

from trackd.bus.nats.options import NatsOptions
from trackd.errors import ConfigError

log = logging.getLogger(__name__)

_LOOKUP_TTL = 30.0  # seconds a publisher trusts its stream lookup, so a new stream is noticed


async def ensure_stream(js: JetStreamContext, server: str, options: NatsOptions) -> None:
    """Check that the URL's stream exists, creating it over `{prefix}.>` if asked to.

    Raises:
        ConfigError: the stream does not exist and may not be created, or the server has
            no JetStream.
    """
    name = options.stream_name
    if name is None:
        return
    subjects = [f"{options.prefix}.>"]
    try:
        try:
            await js.stream_info(name)
            return
        except nats.js.errors.NotFoundError:
            if not options.create_stream:
                raise ConfigError(
                    f"NATS stream {name!r} does not exist; create it or add create_stream=true"
                ) from None
        try:
            await js.add_stream(
                StreamConfig(name=name, subjects=subjects, storage=StorageType.FILE)
            )
            log.info("nats stream created name=%s subjects=%s", name, subjects)
        except nats.js.errors.BadRequestError:
            await js.stream_info(name)  # another process created it first
    except nats.js.errors.ServiceUnavailableError:
        raise ConfigError(
            f"NATS at {server} has no JetStream, so stream {name!r} cannot be used; "
            "start nats-server with -js, or drop stream= and create_stream= from the URL"
        ) from None


async def find_stream(js: JetStreamContext, subject: str) -> str | None:
    """The stream that stores `subject`, or None (none does, or there is no JetStream)."""
    try:
        return await js.find_stream_name_by_subject(subject)
    except nats.js.errors.NotFoundError:
        return None
    except nats.js.errors.ServiceUnavailableError:
        return None  # the server runs without JetStream


class StreamLookup:
    """`find_stream` with each answer trusted for a while, as a publisher asks per batch."""

    def __init__(self) -> None:
        self._streams: dict[str, tuple[str | None, float]] = {}  # subject -> (stream, until)

    async def find(self, js: JetStreamContext, subject: str) -> str | None:
        now = time.monotonic()
        cached = self._streams.get(subject)
        if cached is not None and cached[1] > now:
            return cached[0]
        stream = await find_stream(js, subject)
        self._streams[subject] = (stream, now + _LOOKUP_TTL)
        return stream

    def forget(self, subject: str) -> None:
        """Look the subject up again next time (its stream may have changed)."""
        self._streams.pop(subject, None)
