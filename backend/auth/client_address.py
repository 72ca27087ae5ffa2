"""The caller's IP address: the socket peer, or, when that peer is a trusted reverse proxy, the address the
proxies recorded in X-Forwarded-For (read from the right, skipping the trusted proxies themselves)."""

from __future__ import annotations

import ipaddress
from typing import Iterable, Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> IPAddress | None:
    """An IP address, or None when the text is not one (ports and brackets are not accepted)."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    """True when the address lies in one of the trusted proxy networks."""
    return any(address.version == net.version and address in net for net in networks)


def resolve_client_ip(peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[IPNetwork]) -> str | None:
    """The client address, believing X-Forwarded-For only as far as it was written by trusted proxies."""
    if peer is None:
        return None
    peer_address = parse_address(peer)
    if peer_address is None or not trusted or not is_trusted(peer_address, trusted):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    nearest_trusted = peer_address
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            # Garbage before any untrusted hop: whatever is left of it was written by the client.
            break
        if not is_trusted(address, trusted):
            return str(address)
        nearest_trusted = address
    return str(nearest_trusted)
