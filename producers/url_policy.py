"""Which partner-supplied URLs we call (docs/adr/0039, issue 15 item 6).

A partner hands us URLs we then call from inside our network: its versions
URL, the endpoint URLs of its version details and the ``response_url`` of
each command. Unchecked, that is server-side request forgery: a partner
could make us call our own admin ports, a cloud metadata address or a host
on the private network. So a URL is called only if

* its scheme is http or https and it names a host, and
* every address its host resolves to is a public unicast address: not
  loopback, private, link-local, multicast, unspecified or reserved (IPv4
  and IPv6; an IPv4-mapped IPv6 address is judged as the IPv4 it maps).

``allow_private`` (``OCPI_HUB_URL_POLICY_ALLOW_PRIVATE``) lifts the address
rule, not the scheme rule: local development and the tests run every party
on 127.0.0.1. Redirects are never followed (httpx's default, kept by every
client of ours), so a public URL cannot hand the call on to a private one.

``classify`` is pure; ``check_url`` resolves the host (getaddrinfo in the
event loop's resolver thread) and raises ``UrlRefusedError``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefusedError(Exception):
    """A partner-supplied URL our policy does not let us call (the partner
    client reports it as a PartnerCallError: OCPI 3001 at registration)."""


def why_not_http(url: str) -> str | None:
    """Why ``url`` is not an absolute http(s) URL with a host; None if it is."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "not a URL"
    if parts.scheme.lower() not in ("http", "https"):
        return f"scheme {parts.scheme or '(none)'!r} is not http or https"
    if not parts.hostname:
        return "no host"
    return None


def why_not_public(address: IpAddress) -> str | None:
    """Why we do not call ``address``; None for a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind, flagged in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    ):
        if flagged:
            return f"{address} is a {kind} address"
    if not address.is_global:  # shared (100.64/10) and other non-global ranges
        return f"{address} is not a public address"
    return None


def classify(url: str, addresses: Iterable[IpAddress], *, allow_private: bool) -> str | None:
    """Why a call to ``url``, whose host resolved to ``addresses``, is
    refused; None when it may be made. Every address must pass: a host that
    resolves to one public and one private address is refused."""
    if (reason := why_not_http(url)) is not None:
        return reason
    if allow_private:
        return None
    resolved = list(addresses)
    if not resolved:
        return "the host resolves to no address"
    for address in resolved:
        if (reason := why_not_public(address)) is not None:
            return reason
    return None


async def resolve(host: str, port: int) -> list[IpAddress]:
    """Every address ``host`` resolves to (a literal address is itself)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list({ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos})


async def check_url(url: str, *, allow_private: bool, what: str = "URL") -> None:
    """Raise ``UrlRefusedError`` unless ``url`` may be called."""
    if (reason := why_not_http(url)) is not None:
        raise UrlRefusedError(f"{what} {url} refused: {reason}")
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        addresses = await resolve(host, port)
    except OSError as exc:
        raise UrlRefusedError(f"{what} {url} refused: {host} does not resolve") from exc
    if (reason := classify(url, addresses, allow_private=False)) is not None:
        raise UrlRefusedError(
            f"{what} {url} refused: {reason} (partner URLs must be public http(s) addresses)"
        )
