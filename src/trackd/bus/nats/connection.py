"""Opening the client connection: fail fast on a wrong URL, then reconnect for ever."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import nats
import nats.errors
from nats.aio.client import Client

from trackd.bus.nats.options import NatsOptions
from trackd.errors import BusUnavailableError

# Errors that mean the server could not be reached or did not answer in time.
NATS_FAILURES = (nats.errors.Error, OSError, TimeoutError)


async def open_connection(
    server: str,
    options: NatsOptions,
    *,
    on_error: Callable[[Exception], Awaitable[None]],
    on_disconnected: Callable[[], Awaitable[None]],
    on_reconnected: Callable[[], Awaitable[None]],
) -> Client:
    """A connected client that reconnects by itself from now on.

    Raises:
        BusUnavailableError: the server cannot be reached.
    """
    # nats-py retries a first connection as often as it would reconnect later (minutes by
    # default), which hides a wrong URL. A probe allowed two immediate attempts fails at
    # once instead; the connection kept afterwards reconnects forever.
    failures: list[Exception] = []

    async def remember(exc: Exception) -> None:
        failures.append(exc)

    try:
        probe = await nats.connect(
            servers=[server],
            connect_timeout=options.connect_timeout,
            max_reconnect_attempts=1,
            reconnect_time_wait=0,
            error_cb=remember,
        )
        await probe.close()
        nc = Client()
        async with asyncio.timeout(options.connect_timeout * 3):
            await nc.connect(
                servers=[server],
                name="trackd",
                connect_timeout=options.connect_timeout,
                reconnect_time_wait=1,
                max_reconnect_attempts=-1,
                error_cb=on_error,
                disconnected_cb=on_disconnected,
                reconnected_cb=on_reconnected,
            )
    except NATS_FAILURES as exc:
        cause = failures[-1] if failures else exc
        raise BusUnavailableError(
            f"cannot reach NATS at {server}: {cause!r}; is nats-server running there?"
        ) from exc
    return nc
