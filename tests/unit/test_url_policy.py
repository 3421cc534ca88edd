"""The policy for partner-supplied URLs (producers/url_policy.py, docs/adr/0039)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
import pytest

from producers.partner_client import HttpPartnerClient, PartnerCallError
from producers.url_policy import (
    IpAddress,
    PinnedBackend,
    UrlRefusedConnectError,
    UrlRefusedError,
    check_url,
    classify,
    partner_http,
    refusal_of,
    why_not_public,
)

PUBLIC = ipaddress.ip_address("93.184.215.14")


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped: judged as the IPv4
        ("100.64.0.1", "not a public"),  # shared address space (CGNAT)
        ("240.0.0.1", "reserved"),
    ],
)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    reason = classify(
        "https://partner.example/ocpi", [ipaddress.ip_address(address)], allow_private=False
    )
    assert reason is not None and kind in reason
    # The setting for local development lets them through.
    assert (
        classify("https://partner.example/", [ipaddress.ip_address(address)], allow_private=True)
        is None
    )


def test_a_public_address_is_allowed_and_every_address_must_be_public() -> None:
    assert classify("https://partner.example/ocpi", [PUBLIC], allow_private=False) is None
    mixed = [PUBLIC, ipaddress.ip_address("10.0.0.1")]
    assert classify("https://partner.example/ocpi", mixed, allow_private=False) is not None
    assert classify("https://partner.example/ocpi", [], allow_private=False) is not None


@pytest.mark.parametrize(
    "url",
    ["ftp://partner.example/x", "file:///etc/passwd", "gopher://h/", "/relative", "https://"],
)
def test_only_http_and_https_urls_with_a_host_are_called(url: str) -> None:
    # Whatever the setting: it lifts the address rule only.
    assert classify(url, [PUBLIC], allow_private=True) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/ocpi/versions",
        "http://[::1]/ocpi/versions",
        "http://localhost:9/versions",  # resolved: every address is loopback
        "http://169.254.169.254/latest/meta-data",
        "ftp://127.0.0.1/x",
    ],
)
async def test_check_url_resolves_and_refuses(url: str) -> None:
    with pytest.raises(UrlRefusedError, match="refused"):
        await check_url(url, allow_private=False)


async def test_check_url_allows_loopback_when_the_setting_says_so() -> None:
    await check_url("http://localhost:9/versions", allow_private=True)
    with pytest.raises(UrlRefusedError, match="scheme"):
        await check_url("ftp://localhost/versions", allow_private=True)


async def test_the_partner_client_never_calls_a_refused_url() -> None:
    # Port 9 (discard) on loopback: were it called, the error would be a
    # connection failure, not the policy's refusal.
    client = HttpPartnerClient(timeout_s=1)
    with pytest.raises(PartnerCallError, match="loopback"):
        await client.versions("http://127.0.0.1:9/versions", "token-a")


def test_the_partner_client_follows_no_redirect() -> None:
    # A public URL may not hand the call on to a private one: redirects are
    # not followed (and each connection is checked besides, below).
    assert partner_http(1, allow_private=False).follow_redirects is False


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:10.0.0.1",  # IPv4-mapped private
        "::ffff:169.254.169.254",  # IPv4-mapped link-local
        "::ffff:0.0.0.0",  # IPv4-mapped unspecified
        "::ffff:224.0.0.1",  # IPv4-mapped multicast
        "fc00::1",  # unique local
        "ff0e::1",  # global-scope multicast is still multicast
        "127.255.255.254",
        "0.1.2.3",  # "this network"
    ],
)
def test_more_non_public_addresses_are_refused(address: str) -> None:
    assert why_not_public(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_unicast_addresses_pass(address: str) -> None:
    assert why_not_public(ipaddress.ip_address(address)) is None


# --- the pinned connection (PinnedBackend) ------------------------------------------


class _Recorder(httpcore.AsyncNetworkBackend):
    """Records where a connection was asked to go; connects nowhere."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.asked.append((host, port))
        raise httpcore.ConnectError("recorded, not connected")


class _Rebinding:
    """A resolver whose answers change: public first, loopback after
    (DNS rebinding with a zero TTL)."""

    def __init__(self, *answers: str) -> None:
        self.answers = [ipaddress.ip_address(a) for a in answers]
        self.calls = 0

    async def __call__(self, host: str, port: int) -> list[IpAddress]:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return [answer]


async def test_the_connection_goes_to_the_address_that_was_checked() -> None:
    resolver = _Rebinding("93.184.215.14", "127.0.0.1")
    inner = _Recorder()
    backend = PinnedBackend(allow_private=False, resolver=resolver, inner=inner)
    with pytest.raises(httpcore.ConnectError, match="recorded"):
        await backend.connect_tcp("partner.example", 443)
    # Resolved once; the socket was asked for the checked address, never for
    # the name (which a second resolution would have turned into loopback).
    assert resolver.calls == 1
    assert inner.asked == [("93.184.215.14", 443)]


async def test_a_host_resolving_to_a_private_address_is_refused_before_connecting() -> None:
    inner = _Recorder()
    backend = PinnedBackend(allow_private=False, resolver=_Rebinding("10.0.0.7"), inner=inner)
    with pytest.raises(UrlRefusedConnectError, match=r"10\.0\.0\.7 is a private address"):
        await backend.connect_tcp("partner.example", 443)
    assert inner.asked == []


async def test_every_resolved_address_must_pass() -> None:
    async def mixed(host: str, port: int) -> list[IpAddress]:
        return [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("::1")]

    inner = _Recorder()
    backend = PinnedBackend(allow_private=False, resolver=mixed, inner=inner)
    with pytest.raises(UrlRefusedConnectError, match="loopback"):
        await backend.connect_tcp("partner.example", 443)
    assert inner.asked == []


async def test_each_checked_address_is_tried_in_turn() -> None:
    async def two(host: str, port: int) -> list[IpAddress]:
        return [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("93.184.215.15")]

    inner = _Recorder()
    backend = PinnedBackend(allow_private=False, resolver=two, inner=inner)
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_tcp("partner.example", 80)
    assert inner.asked == [("93.184.215.14", 80), ("93.184.215.15", 80)]


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    async def nothing(host: str, port: int) -> list[IpAddress]:
        raise OSError("NXDOMAIN")

    backend = PinnedBackend(allow_private=False, resolver=nothing, inner=_Recorder())
    with pytest.raises(UrlRefusedConnectError, match="does not resolve"):
        await backend.connect_tcp("nowhere.example", 80)


async def test_the_client_reports_a_refusal_as_the_policy_s() -> None:
    async with partner_http(1, allow_private=False) as client:
        with pytest.raises(httpx.ConnectError) as raised:
            await client.get("http://127.0.0.1:9/versions")
    reason = refusal_of(raised.value)
    assert reason is not None and "loopback" in reason
