"""Outbound safety: which URLs and addresses notifications may reach, checked at creation and at connect time."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import urlsplit

import httpcore

from backend.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class OutboundRefused(Exception):
    """A target is not allowed by the outbound policy (scheme, or an address that is not public)."""


@dataclass(frozen=True)
class TargetURL:
    """A parsed http(s) target."""

    url: str
    scheme: str
    host: str
    port: int


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in a mapped, 6to4, Teredo or NAT64 IPv6 address."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(ip: IPAddress) -> bool:
    """False for loopback, private, link-local, multicast, reserved, unspecified and shared addresses."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None and not is_public_address(embedded):
        return False
    return ip.is_global and not (
        ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_unspecified
    )


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


class OutboundPolicy:
    """https in production, public addresses only unless the allow-list names the host or its network."""

    def __init__(self, *, allowed_hosts: str = "", require_https: bool = False):
        self.require_https = require_https
        self.allowed_names: set[str] = set()
        self.allowed_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allowed_hosts.replace(" ", ",").split(","):
            entry = _normal_host(entry)
            if not entry:
                continue
            try:
                self.allowed_networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.allowed_names.add(entry)

    @classmethod
    def from_settings(cls, settings: Settings) -> "OutboundPolicy":
        """The policy the settings describe."""
        return cls(allowed_hosts=settings.notify_allowed_hosts, require_https=settings.environment == "production")

    def parse_target(self, url: str) -> TargetURL:
        """Check the URL's form: scheme, host, no credentials; OutboundRefused says what is wrong."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise OutboundRefused(f"not a valid URL: {exc}") from None
        allowed_schemes = ("https",) if self.require_https else ("https", "http")
        if parts.scheme not in allowed_schemes:
            raise OutboundRefused(
                "the URL must use " + " or ".join(allowed_schemes) + (" in production" if self.require_https else "")
            )
        if not parts.hostname:
            raise OutboundRefused("the URL has no host")
        if parts.username is not None or parts.password is not None:
            raise OutboundRefused("credentials in the URL are not allowed")
        default_port = 443 if parts.scheme == "https" else 80
        return TargetURL(url=url.strip(), scheme=parts.scheme, host=parts.hostname, port=port or default_port)

    def address_permitted(self, host: str, ip: IPAddress) -> bool:
        """True when the address is public, or the allow-list names the host or a network holding the address."""
        if _normal_host(host) in self.allowed_names:
            return True
        candidates = [ip] + ([e] if (e := _embedded_ipv4(ip)) is not None else [])
        if any(c in net for c in candidates for net in self.allowed_networks if c.version == net.version):
            return True
        return is_public_address(ip)

    async def resolve_permitted(self, host: str, port: int) -> list[str]:
        """Resolve `host` and return its addresses; OutboundRefused if any of them is not permitted."""
        addresses = await resolve(host, port)
        if not addresses:
            raise OutboundRefused(f"host '{host}' has no address")
        refused = [str(ip) for ip in addresses if not self.address_permitted(host, ip)]
        if refused:
            raise OutboundRefused(
                f"host '{host}' resolves to a non-public address ({', '.join(refused)}); "
                "name it in PRS_NOTIFY_ALLOWED_HOSTS to allow it"
            )
        return [str(ip) for ip in addresses]

    async def check_url(self, url: str) -> TargetURL:
        """Form and address checks of a target, as done when an endpoint is created or changed."""
        target = self.parse_target(url)
        try:
            await self.resolve_permitted(target.host, target.port)
        except socket.gaierror as exc:
            raise OutboundRefused(f"host '{target.host}' does not resolve: {exc.strerror}") from None
        return target


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every distinct address of a host name or literal, in resolver order."""
    literal = _normal_host(host)
    try:
        return [ipaddress.ip_address(literal)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(literal, port, type=socket.SOCK_STREAM)
    seen: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        ip = ipaddress.ip_address(sockaddr[0])
        if ip not in seen:
            seen.append(ip)
    return seen


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks the address right before connecting, then connects to that vetted address.

    Checking at creation time alone is not enough: DNS may answer differently later (DNS rebinding).
    TLS still verifies the certificate against the original host name.
    """

    def __init__(self, policy: OutboundPolicy, inner: httpcore.AsyncNetworkBackend | None = None):
        self.policy = policy
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to the first reachable permitted address of `host`."""
        try:
            addresses = await asyncio.wait_for(self.policy.resolve_permitted(host, port), timeout)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve '{host}': {exc.strerror}") from exc
        except asyncio.TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving '{host}' took longer than {timeout}s") from None
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None  # resolve_permitted never returns an empty list
        raise last_error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable | None = None
    ) -> httpcore.AsyncNetworkStream:
        """Unix sockets are never a notification target."""
        raise OutboundRefused("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        """Delegate to the wrapped backend."""
        await self.inner.sleep(seconds)
