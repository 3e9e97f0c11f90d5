"""What every channel shares: the message it delivers, how it fails, and how an HTTP answer
is read (2xx delivered; 429 and 5xx later; other 4xx never)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from trackd.outbound.http import AddressGuard, RefusedAddress, retry_after

if TYPE_CHECKING:
    from trackd.store.models import NotificationChannel


class DeliveryError(Exception):
    """A delivery failed.

    Attributes:
        permanent: retrying cannot help (the webhook is gone, the address is refused).
        retry_after: seconds the receiver asked us to wait, if it said.
        rate_limited: the receiver is throttling us: waiting as told is not a failure.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        rate_limited: bool = False,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
        self.rate_limited = rate_limited


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """A channel as a sender needs it. `url` and `secret` are credentials: never log them."""

    id: uuid.UUID
    tenant_id: str
    kind: str
    name: str
    url: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, row: NotificationChannel) -> ChannelConfig:
        return cls(row.id, row.tenant_id, row.kind, row.name, row.url, row.secret, row.options)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message to one channel. The receiver sees `idempotency_key` (as the
    Idempotency-Key header where the channel has headers) on every attempt."""

    idempotency_key: str
    event_type: str
    payload: dict[str, Any]
    attempt: int = 1


class ChannelSender(Protocol):
    kind: str

    async def send(
        self,
        channel: ChannelConfig,
        delivery: Delivery,
        client: httpx.AsyncClient,
        guard: AddressGuard,
    ) -> None:
        """Deliver or raise DeliveryError. `client` is the SSRF-guarded outbound client;
        `guard` is its address check, for senders that cannot send through it."""
        ...


async def post(client: httpx.AsyncClient, url: str, *, what: str, **kwargs: Any) -> httpx.Response:
    """POST through the guarded client; a failure, of transport or answer, is a DeliveryError
    naming `what` (never the URL: it is a credential)."""
    response = await post_unchecked(client, url, what=what, **kwargs)
    check(response, what)
    return response


async def post_unchecked(
    client: httpx.AsyncClient, url: str, *, what: str, **kwargs: Any
) -> httpx.Response:
    """POST through the guarded client; only transport failures raise (DeliveryError)."""
    try:
        response = await client.post(url, **kwargs)
    except RefusedAddress as exc:
        raise refused(what, exc) from None
    except httpx.InvalidURL as exc:
        # Stored before URLs were checked when channels are set up: it can never be sent.
        raise DeliveryError(f"{what}: the URL cannot be read: {exc}", permanent=True) from None
    except httpx.TimeoutException:
        raise DeliveryError(f"{what}: no answer in time") from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{what}: {type(exc).__name__}") from None
    return response


def refused(what: str, exc: RefusedAddress) -> DeliveryError:
    """The permanent failure of a delivery to an address the guard refused."""
    return DeliveryError(
        f"{what}: refused {exc.address} ({exc.reason}); "
        "set TRACKD_ALLOW_PRIVATE_FETCH=true to allow private addresses",
        permanent=True,
    )


async def unresolved(hosts: Iterable[tuple[str, int]], guard: AddressGuard) -> int:
    """Check each (host, port) against the address rule; how many did not resolve.

    Raises:
        RefusedAddress: a host is, or resolves to, an address that is not allowed.
    """
    missing = 0
    for host, port in hosts:
        try:
            await guard.addresses(host, port)
        except httpx.ConnectError:
            missing += 1
    return missing


def check(response: httpx.Response, what: str) -> None:
    """Raise the DeliveryError an unsuccessful answer means."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429:
        raise DeliveryError(
            f"{what}: rate limited (HTTP 429)",
            retry_after=retry_after(response),
            rate_limited=True,
        )
    if status in (408, 425) or status >= 500:
        raise DeliveryError(f"{what}: HTTP {status}", retry_after=retry_after(response))
    raise DeliveryError(f"{what}: HTTP {status}", permanent=True)
