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
on 127.0.0.1.

``classify`` is pure; ``check_url`` resolves the host (getaddrinfo in the
event loop's resolver thread) and raises ``UrlRefusedError``: it gives a
registration or a command a clear refusal before anything is recorded.

What makes the rule hold is ``partner_http``, the one HTTP client for
partner-supplied URLs (docs/adr/0044): its connections go through
``PinnedBackend``, which resolves the host once, checks every address and
connects to a checked address itself. There is no second resolution that
could answer differently (DNS rebinding); the Host header and TLS SNI stay
the URL's host name, as httpcore sets them from the URL, not from the socket.
Every connection is checked, so a URL stored before the policy existed, a
push endpoint whose DNS changed since registration, or a redirect target
are held to the same rule. Redirects are not followed all the same
(``follow_redirects=False``): an OCPI answer is an envelope, never a 3xx.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

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
    # In the resolver's order (its preference), each address once: the
    # pinned connection tries them in this order.
    found = (ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos)
    return list(dict.fromkeys(found))


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


# --------------------------------------------------------------------------- #
# The connection: resolved once, checked, pinned
# --------------------------------------------------------------------------- #

Resolver = Callable[[str, int], Awaitable[list[IpAddress]]]


class UrlRefusedConnectError(httpcore.ConnectError):
    """A connection the policy refused. httpx reports it as an
    ``httpx.ConnectError`` whose cause is this (``refusal_of``)."""


def refusal_of(exc: BaseException) -> str | None:
    """The policy's reason when ``exc`` (an httpx error) is its refusal."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, UrlRefusedConnectError | UrlRefusedError):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the address rule in it: ``connect_tcp``
    resolves the host once (``resolver``), refuses unless every address
    passes, then connects to those very addresses, in the resolver's order,
    until one answers. httpcore starts TLS on the returned stream with the
    URL's host name as SNI and certificate name, so pinning the address
    changes nothing a server sees."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._resolve: Resolver = resolver or resolve
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._resolve(host, port)
        except OSError as exc:
            raise UrlRefusedConnectError(f"{host} does not resolve") from exc
        if not addresses:
            raise UrlRefusedConnectError(f"{host} resolves to no address")
        if not self._allow_private:
            for address in addresses:
                if (reason := why_not_public(address)) is not None:
                    raise UrlRefusedConnectError(
                        f"{host} refused: {reason} (partner URLs must be public addresses)"
                    )
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UrlRefusedConnectError("partner URLs are never Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a pool whose connections are ``PinnedBackend``'s.
    The scheme rule is checked per request: httpx would refuse other schemes
    too, but with its own words."""

    def __init__(self, backend: PinnedBackend, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__()
        # httpx builds its pool without a way to name the network backend;
        # the pool below is the one it builds (no proxy, defaults), plus ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=httpx.Limits().max_connections,
            max_keepalive_connections=httpx.Limits().max_keepalive_connections,
            keepalive_expiry=httpx.Limits().keepalive_expiry,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if (reason := why_not_http(str(request.url))) is not None:
            raise httpx.ConnectError(f"{request.url} refused: {reason}", request=request)
        return await super().handle_async_request(request)


def partner_http(
    timeout_s: float,
    *,
    allow_private: bool,
    resolver: Resolver | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> httpx.AsyncClient:
    """The HTTP client for URLs a partner gave us (versions, endpoints, push
    receivers, ``response_url``): every connection resolved once, checked
    and pinned (``PinnedBackend``), redirects not followed, and no proxy
    from the environment (a proxy would resolve the host itself, out of our
    sight). ``ssl_context``: the system's trust store unless given (tests
    trust their own certificate)."""
    backend = PinnedBackend(allow_private=allow_private, resolver=resolver)
    return httpx.AsyncClient(
        timeout=timeout_s,
        transport=_PinnedTransport(backend, ssl_context),
        follow_redirects=False,
        trust_env=False,
    )
