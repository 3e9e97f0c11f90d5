"""The outbound HTTP client every source and notification channel uses.

    async with outbound_client(settings) as client:
        snapshots = await source.fetch(target, client)

It carries three protections, all in its transport so that every request is covered, each
hop of a redirect included (httpx sends each hop through the transport):

* the private-address guard: the host is resolved, *every* resolved address must be allowed
  (`trackd.outbound.addresses.refusal`), and the connection goes to the address that was
  checked, so a DNS answer that changes between check and connect (rebinding) cannot swap
  in another one. TLS still verifies, and SNI still names, the original host name;
* a rate limit per host (a leaky bucket from aiolimiter), shared by everything using the
  client, so one process is polite to each remote host however many targets it polls there;
* a cap on response size and on the total time a response may take to arrive, on top of
  httpx's connect/read timeouts (a server dripping a byte at a time never hits those).

Share one client per process: the rate limits and connection pools live in it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

import httpx
from aiolimiter import AsyncLimiter

from trackd.outbound.addresses import IPAddress, parse_address, refusal

if TYPE_CHECKING:
    from trackd.settings import Settings

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
"""Host name and port → the addresses to connect to (tests inject a fake one)."""

MAX_REDIRECTS = 5


class RefusedAddress(httpx.TransportError):
    """The host is, or resolves to, an address outbound fetches may not reach."""

    def __init__(
        self, host: str, address: IPAddress, reason: str, request: httpx.Request | None = None
    ) -> None:
        super().__init__(
            f"refusing to connect to {host} ({address}: {reason}); "
            "set TRACKD_ALLOW_PRIVATE_FETCH=true to allow private addresses",
            request=request,
        )
        self.host = host
        self.address = address
        self.reason = reason


class ResponseTooLarge(httpx.TransportError):
    """The response body passed the size cap."""


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The addresses the operating system's resolver gives for `host`, in its order."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = parse_address(str(sockaddr[0]))
        if address is not None and address not in addresses:
            addresses.append(address)
    return addresses


class HostRateLimiter:
    """A leaky bucket per host: `rate` requests a second on average, bursts up to `burst`.

    The least recently used hosts are forgotten beyond `max_hosts`, so a stream of distinct
    hosts cannot grow memory without bound.
    """

    def __init__(self, rate: float, burst: int = 1, *, max_hosts: int = 4096) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._max_hosts = max_hosts
        self._limiters: OrderedDict[str, AsyncLimiter] = OrderedDict()

    def _limiter(self, host: str) -> AsyncLimiter:
        limiter = self._limiters.get(host)
        if limiter is None:
            limiter = AsyncLimiter(self.burst, self.burst / self.rate)
            self._limiters[host] = limiter
            if len(self._limiters) > self._max_hosts:
                self._limiters.popitem(last=False)
        else:
            self._limiters.move_to_end(host)
        return limiter

    async def acquire(self, host: str) -> None:
        """Wait until one more request to `host` is within its rate."""
        await self._limiter(host.lower()).acquire()


class _CappedStream(httpx.AsyncByteStream):
    """A response body that fails once it passes `max_bytes` or its deadline."""

    def __init__(
        self,
        inner: httpx.AsyncByteStream,
        request: httpx.Request,
        max_bytes: int | None,
        deadline: float | None,
    ) -> None:
        self._inner = inner
        self._request = request
        self._max_bytes = max_bytes
        self._deadline = deadline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in self._inner:
            received += len(chunk)
            if self._max_bytes is not None and received > self._max_bytes:
                raise ResponseTooLarge(
                    f"response from {self._request.url.host} is larger than "
                    f"{self._max_bytes} bytes",
                    request=self._request,
                )
            if self._deadline is not None and time.monotonic() > self._deadline:
                raise httpx.ReadTimeout(
                    f"response from {self._request.url.host} took longer than allowed",
                    request=self._request,
                )
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class AddressGuard:
    """Resolves a host and refuses it unless every address it resolves to is allowed.

    Args:
        allow_private: allow every address (a trusted internal deployment, or tests).
        resolver: host name → addresses; the operating system's by default.
    """

    def __init__(self, *, allow_private: bool = False, resolver: Resolver | None = None) -> None:
        self.allow_private = allow_private
        self._resolve = resolver or system_resolver

    async def addresses(
        self, host: str, port: int, request: httpx.Request | None = None
    ) -> list[IPAddress]:
        """The allowed addresses of `host`, in the resolver's order.

        Raises:
            RefusedAddress: one of them is not allowed.
            httpx.ConnectError: the host does not resolve.
        """
        literal = parse_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                addresses = await self._resolve(host, port)
            except (OSError, ValueError) as exc:
                # ValueError: a name the resolver cannot even encode (IDNA's UnicodeError).
                raise httpx.ConnectError(f"cannot resolve {host}: {exc}", request=request) from exc
            if not addresses:
                raise httpx.ConnectError(f"{host} resolves to no address", request=request)
        if self.allow_private:
            return addresses
        # Every address, not just the first: a resolver may answer with a public and a
        # private one, and which one a connection would use is not ours to predict.
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                log.warning(
                    "outbound fetch refused host=%s address=%s reason=%s", host, address, reason
                )
                raise RefusedAddress(host, address, reason, request)
        return addresses


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that rate-limits, refuses private addresses and pins the checked
    address for the connection.

    Args:
        inner: the transport that really connects (default: httpx's, with no retries).
        guard: the address check; a default one refusing private addresses when None.
        limiter: per-host rate limit; none by default.
        max_bytes: largest response body accepted.
        total_timeout: seconds from sending a request to its last body byte.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        guard: AddressGuard | None = None,
        limiter: HostRateLimiter | None = None,
        max_bytes: int | None = None,
        total_timeout: float | None = None,
    ) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport(retries=0)
        self.guard = guard or AddressGuard()
        self._limiter = limiter
        self._max_bytes = max_bytes
        self._total_timeout = total_timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(
                f"only http and https can be fetched, not {request.url.scheme!r}",
                request=request,
            )
        host = request.url.host
        if self._limiter is not None:
            await self._limiter.acquire(host)
        deadline = time.monotonic() + self._total_timeout if self._total_timeout else None
        sent = request if self.guard.allow_private else await self._pinned(request)
        response = await self._inner.handle_async_request(sent)
        if self._max_bytes is None and deadline is None:
            return response
        assert isinstance(response.stream, httpx.AsyncByteStream)  # noqa: S101 — httpx's own
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_CappedStream(response.stream, request, self._max_bytes, deadline),
            extensions=response.extensions,
        )

    async def _pinned(self, request: httpx.Request) -> httpx.Request:
        """`request` sent to the checked address of its host, still naming the host."""
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        addresses = await self.guard.addresses(host, port, request)
        if parse_address(host) is not None:
            return request
        extensions = dict(request.extensions)
        if request.url.scheme == "https":
            extensions["sni_hostname"] = host
        # The Host header was set from the original URL when the request was built and is
        # kept as is, so virtual hosting works on the pinned address.
        return httpx.Request(
            request.method,
            request.url.copy_with(host=str(addresses[0])),
            headers=request.headers,
            stream=request.stream,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def user_agent() -> str:
    try:
        return f"trackd/{version('trackd')}"
    except PackageNotFoundError:
        return "trackd"


def outbound_client(
    settings: Settings,
    *,
    resolver: Resolver | None = None,
    inner: httpx.AsyncBaseTransport | None = None,
    allow_private: bool | None = None,
    guard: AddressGuard | None = None,
) -> httpx.AsyncClient:
    """The client sources and channels fetch with, configured from `settings`.

    Args:
        settings: timeouts, size cap, per-host rate and `allow_private_fetch`.
        resolver: replaces DNS resolution (tests).
        inner: replaces the connecting transport (tests: an httpx.MockTransport).
        allow_private: overrides `settings.allow_private_fetch`.
        guard: the address check to use (shared with code that cannot go through httpx);
            `resolver` and `allow_private` are ignored when it is given.
    """
    if guard is None:
        guard = AddressGuard(
            allow_private=settings.allow_private_fetch if allow_private is None else allow_private,
            resolver=resolver,
        )
    transport = GuardedTransport(
        inner,
        guard=guard,
        limiter=HostRateLimiter(settings.fetch_rate_per_host, settings.fetch_burst),
        max_bytes=settings.fetch_max_bytes,
        total_timeout=settings.fetch_timeout_s * 2,
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(
            settings.fetch_timeout_s, connect=min(10.0, settings.fetch_timeout_s)
        ),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        # Proxies and credentials from the environment would bypass or leak past the guard.
        trust_env=False,
        headers={"User-Agent": user_agent()},
    )


def retry_after(response: httpx.Response) -> float | None:
    """The `Retry-After` header in seconds (it may be a delay or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
