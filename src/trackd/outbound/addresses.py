"""Which IP addresses an outbound fetch may connect to (the SSRF rule of DESIGN §9).

A target URL comes from a user. Without this rule, "fetch http://169.254.169.254/..." would
hand them the cloud instance's credentials, and "http://localhost:6379" a way into services
that trust the local network. Only globally routable unicast addresses are allowed; IPv6
forms that embed an IPv4 address (mapped, NAT64, 6to4, Teredo) are judged by that address.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance metadata services; all are non-global anyway, named so the refusal says why.
METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "169.254.170.2",  # AWS ECS task credentials
    )
)

_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")


# The IPv4 forms the C library's inet_aton also reads: 2130706433, 0x7f.1, 0177.0.0.1, 127.1.
_INET_ATON: Final = re.compile(
    r"(?:0[xX][0-9a-fA-F]*|[0-9]+)(?:\.(?:0[xX][0-9a-fA-F]*|[0-9]+)){0,3}"
)


def parse_address(text: str) -> IPAddress | None:
    """`text` as an IP address (brackets and an IPv6 zone allowed), or None for a host name.

    Numbers in the shorter or octal and hex forms a resolver also reads as IPv4 addresses
    (`2130706433`, `0x7f.1`) are addresses too, judged as the address they stand for.
    """
    candidate = text.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        pass
    if _INET_ATON.fullmatch(candidate):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(candidate))
        except OSError:
            return None
    return None


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, Teredo), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def refusal(address: IPAddress) -> str | None:
    """Why an outbound connection to `address` is refused, or None when it is allowed."""
    inner = embedded_ipv4(address)
    if inner is not None:
        reason = refusal(inner)
        return f"{reason} (inside {address})" if reason else None
    if address in METADATA_ADDRESSES:
        return "cloud metadata service"
    if address.is_unspecified:
        return "unspecified address"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private network"
    if address.is_reserved:
        return "reserved range"
    if not address.is_global:
        # Shared address space (100.64/10), benchmarking, documentation and other
        # special-purpose ranges: nothing public lives there.
        return "not globally routable"
    return None
