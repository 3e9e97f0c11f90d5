"""Generic JSON webhook: the payload POSTed as JSON, optionally signed with HMAC-SHA256.

Headers on every delivery:
    Idempotency-Key        the same on every attempt of one message: dedupe on it
    X-Trackd-Event         e.g. snapshot.changed
    X-Trackd-Attempt       1, 2, ...
    X-Trackd-Timestamp     Unix seconds when this attempt was signed
    X-Trackd-Signature     "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body), when the
                           channel has a secret; check it with `verify_signature`
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Final

import httpx

from trackd.notify.channels.base import ChannelConfig, Delivery, post
from trackd.outbound.http import AddressGuard

SIGNATURE_HEADER: Final = "X-Trackd-Signature"
TIMESTAMP_HEADER: Final = "X-Trackd-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """For receivers: whether `signature` is trackd's for this body and a recent timestamp
    (an old one could be a replay)."""
    try:
        age = abs((now or time.time()) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookSender:
    kind = "webhook"

    async def send(
        self,
        channel: ChannelConfig,
        delivery: Delivery,
        client: httpx.AsyncClient,
        guard: AddressGuard,
    ) -> None:
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": delivery.idempotency_key,
            "X-Trackd-Event": delivery.event_type,
            "X-Trackd-Attempt": str(delivery.attempt),
            TIMESTAMP_HEADER: timestamp,
        }
        if channel.secret:
            headers[SIGNATURE_HEADER] = sign(channel.secret, timestamp, body)
        await post(
            client, channel.url, what=f"webhook {channel.name!r}", content=body, headers=headers
        )
