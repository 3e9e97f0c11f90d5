"""Publishing a batch: to a JetStream stream (stored, acknowledged) or with NATS core."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nats.aio.client import Client
from nats.js.client import JetStreamContext

_PUBLISH_WINDOW = 256  # JetStream publishes awaiting their acks at once


async def publish_jetstream(
    js: JetStreamContext,
    subject: str,
    bodies: Sequence[bytes],
    headers: Sequence[dict[str, str] | None],
) -> None:
    """Publish and wait until the stream has stored every message."""
    # Awaiting each ack before the next publish would cost a round trip per message.
    for start in range(0, len(bodies), _PUBLISH_WINDOW):
        window = zip(
            bodies[start : start + _PUBLISH_WINDOW],
            headers[start : start + _PUBLISH_WINDOW],
            strict=True,
        )
        results = await asyncio.gather(
            *(js.publish(subject, body, headers=header) for body, header in window),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result


async def publish_core(
    nc: Client,
    subject: str,
    bodies: Sequence[bytes],
    headers: Sequence[dict[str, str] | None],
    *,
    confirm_within: int,
) -> None:
    """Publish with NATS core and wait until the server has read every message."""
    for body, header in zip(bodies, headers, strict=True):
        await nc.publish(subject, body, headers=header)
    # The server has read everything before this round trip returns; that is all core
    # NATS can confirm.
    await nc.flush(timeout=confirm_within)
