"""The policy for partner-supplied URLs (producers/url_policy.py, docs/adr/0039)."""

from __future__ import annotations

import ipaddress

import pytest

from producers.partner_client import HttpPartnerClient, PartnerCallError
from producers.url_policy import UrlRefusedError, check_url, classify

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
    # not followed by our clients (httpx's default, which we keep).
    import httpx

    assert httpx.AsyncClient().follow_redirects is False
