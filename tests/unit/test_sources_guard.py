"""The private-address guard: which addresses are refused, and that the transport checks every
hop and connects to the address it checked. No network: an httpx.MockTransport stands in for
the connecting transport and a dict for DNS."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import httpx
import pytest

from trackd.outbound.addresses import IPAddress, parse_address, refusal
from trackd.outbound.http import (
    AddressGuard,
    GuardedTransport,
    RefusedAddress,
    outbound_client,
    retry_after,
)
from trackd.settings import Settings

PUBLIC = "93.184.215.14"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.1.2.3", "private network"),
        ("172.16.0.1", "private network"),
        ("192.168.1.1", "private network"),
        ("169.254.169.254", "cloud metadata service"),
        ("169.254.1.1", "link-local"),
        ("100.100.100.200", "cloud metadata service"),
        ("100.64.0.1", "not globally routable"),
        ("0.0.0.0", "unspecified address"),  # noqa: S104 — refused, not bound
        ("224.0.0.1", "multicast"),
        ("::1", "loopback"),
        ("::", "unspecified address"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private network"),
        ("fd00:ec2::254", "cloud metadata service"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback (inside ::ffff:7f00:1)"),
        ("::ffff:169.254.169.254", "cloud metadata service (inside ::ffff:a9fe:a9fe)"),
        ("64:ff9b::a00:1", "private network (inside 64:ff9b::a00:1)"),
        ("2002:7f00:1::", "loopback (inside 2002:7f00:1::)"),
    ],
)
def test_non_public_addresses_are_refused_with_the_reason(address: str, reason: str) -> None:
    parsed = parse_address(address)
    assert parsed is not None
    assert refusal(parsed) == reason


@pytest.mark.parametrize("address", ["8.8.8.8", PUBLIC, "2606:4700:4700::1111", "::ffff:1.1.1.1"])
def test_public_addresses_are_allowed(address: str) -> None:
    parsed = parse_address(address)
    assert parsed is not None
    assert refusal(parsed) is None


def test_parse_address_tells_addresses_from_host_names() -> None:
    assert parse_address("[::1]") == ipaddress.ip_address("::1")
    assert parse_address("fe80::1%eth0") == ipaddress.ip_address("fe80::1")
    assert parse_address("example.com") is None


def fake_dns(table: dict[str, list[str]]) -> Callable[[str, int], object]:
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[IPAddress]:
        calls.append(host)
        if host not in table:
            raise OSError(f"no such host {host}")
        return [ipaddress.ip_address(a) for a in table[host]]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def client_with(
    handler: Callable[[httpx.Request], httpx.Response],
    dns: dict[str, list[str]],
    **settings: object,
) -> httpx.AsyncClient:
    return outbound_client(
        Settings(**settings),  # type: ignore[arg-type]
        resolver=fake_dns(dns),  # type: ignore[arg-type]
        inner=httpx.MockTransport(handler),
    )


async def test_connects_to_the_checked_address_keeping_host_and_sni() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    async with client_with(handler, {"public.example": [PUBLIC]}) as client:
        response = await client.get("https://public.example/path?q=1")

    assert response.json() == {"ok": True}
    [sent] = seen
    assert sent.url.host == PUBLIC
    assert sent.url.path == "/path" and sent.url.query == b"q=1"
    assert sent.headers["host"] == "public.example"
    assert sent.extensions["sni_hostname"] == "public.example"
    assert str(response.request.url) == "https://public.example/path?q=1"


async def test_dns_is_asked_once_per_request_so_rebinding_cannot_swap_the_address() -> None:
    answers = iter([[PUBLIC], ["127.0.0.1"]])
    hosts: list[str] = []

    async def rebinding(host: str, port: int) -> list[IPAddress]:
        hosts.append(host)
        return [ipaddress.ip_address(a) for a in next(answers)]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.host == PUBLIC
        return httpx.Response(200)

    client = outbound_client(Settings(), resolver=rebinding, inner=httpx.MockTransport(handler))
    async with client:
        assert (await client.get("http://rebind.example/")).status_code == 200
        with pytest.raises(RefusedAddress, match="loopback"):
            await client.get("http://rebind.example/")
    assert hosts == ["rebind.example", "rebind.example"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.8:8080/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:127.0.0.1]/",
        "http://internal.example/",
        "http://mixed.example/",
    ],
)
async def test_private_targets_are_refused_before_any_connection(url: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"connected to {request.url}")

    dns = {"internal.example": ["10.9.8.7"], "mixed.example": [PUBLIC, "192.168.0.10"]}
    async with client_with(handler, dns) as client:
        with pytest.raises(RefusedAddress) as refused:
            await client.get(url)
    assert "TRACKD_ALLOW_PRIVATE_FETCH" in str(refused.value)


@pytest.mark.parametrize(
    "location", ["http://127.0.0.1:8080/", "http://internal.example/x", "http://[::1]/"]
)
async def test_a_redirect_to_a_private_address_is_refused(location: str) -> None:
    hops: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hops.append(request.headers["host"])
        return httpx.Response(302, headers={"Location": location})

    dns = {"public.example": [PUBLIC], "internal.example": ["10.0.0.5"]}
    async with client_with(handler, dns) as client:
        with pytest.raises(RefusedAddress):
            await client.get("http://public.example/start")
    assert hops == ["public.example"]


async def test_redirects_between_public_hosts_are_followed_and_checked() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["host"] == "a.example":
            return httpx.Response(301, headers={"Location": "https://b.example/final"})
        assert request.url.host == "1.1.1.1"
        return httpx.Response(200, json={"at": "b"})

    dns = {"a.example": [PUBLIC], "b.example": ["1.1.1.1"]}
    async with client_with(handler, dns) as client:
        response = await client.get("http://a.example/")
    assert response.json() == {"at": "b"}
    assert str(response.url) == "https://b.example/final"


async def test_allow_private_lets_private_addresses_through() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=request.url.host)

    async with client_with(handler, {}, allow_private_fetch=True) as client:
        assert (await client.get("http://10.1.1.1/")).text == "10.1.1.1"


async def test_an_unresolvable_host_is_a_connect_error() -> None:
    async with client_with(lambda r: httpx.Response(200), {}) as client:
        with pytest.raises(httpx.ConnectError, match=r"cannot resolve nowhere\.example"):
            await client.get("http://nowhere.example/")


async def test_the_body_is_capped() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * 5000)

    async with client_with(handler, {}, allow_private_fetch=True, fetch_max_bytes=1024) as client:
        with pytest.raises(httpx.TransportError, match="larger than 1024 bytes"):
            await client.get("http://10.0.0.1/")


async def test_other_schemes_are_refused() -> None:
    transport = GuardedTransport(httpx.MockTransport(lambda r: httpx.Response(200)))
    with pytest.raises(httpx.UnsupportedProtocol):
        await transport.handle_async_request(httpx.Request("GET", "ftp://example.com/x"))


def test_retry_after_reads_seconds_and_dates() -> None:
    def response(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert retry_after(response("7")) == 7.0
    assert retry_after(response("Wed, 21 Oct 2015 07:28:00 GMT")) == 0.0
    assert retry_after(response("soon")) is None
    assert retry_after(httpx.Response(429)) is None


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "0177.0.0.1", "127.1", "0x7f000001"])
def test_numeric_forms_a_resolver_reads_as_ipv4_are_judged_as_that_address(host: str) -> None:
    parsed = parse_address(host)
    assert parsed == ipaddress.ip_address("127.0.0.1")
    assert refusal(parsed) == "loopback"


async def test_a_resolver_that_cannot_encode_the_name_is_a_connect_error() -> None:
    async def unencodable(host: str, port: int) -> list[IPAddress]:
        raise UnicodeError("label too long")

    guard = AddressGuard(resolver=unencodable)
    with pytest.raises(httpx.ConnectError, match="cannot resolve"):
        await guard.addresses("a" * 70 + ".example", 443)


async def test_a_numeric_host_is_refused_without_asking_dns() -> None:
    dns = fake_dns({})
    guard = AddressGuard(resolver=dns)  # type: ignore[arg-type]
    with pytest.raises(RefusedAddress, match="loopback"):
        await guard.addresses("2130706433", 80)
    assert dns.calls == []  # type: ignore[attr-defined]
