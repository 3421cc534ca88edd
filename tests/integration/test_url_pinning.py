"""Partner URLs checked at connection time (producers/url_policy.py,
docs/adr/0044): a real HTTP server on loopback, resolver answers pointing at
it, and the address rule on (``allow_private`` off) where the test says so.

The push lane's check runs against real Kafka: a partner whose receiver URL
was stored before the policy existed (``localhost``, which the system
resolver answers with loopback) gets nothing while the rule is on.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ocpi_hub.settings import Settings
from producers.partner_client import HttpPartnerClient, PartnerCallError
from producers.url_policy import IpAddress, partner_http, refusal_of
from tests.conftest import fresh_namespace
from tests.integration.test_push import (
    Events,
    FakePartners,
    Receiver,
    append,
    lanes_ready,
    ok,
    partner,
    push_settings,
    pushing,
    serving,
    until,
)
from tests.services import Namespace

LOOPBACK = ipaddress.ip_address("127.0.0.1")


@dataclass
class Seen:
    """Every request the server got: (Host header, path)."""

    requests: list[tuple[str, str]] = field(default_factory=list)


def app(seen: Seen) -> Any:
    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        path = scope["path"]
        seen.requests.append((headers.get("host", ""), path))
        if path == "/hop":
            # A redirect to what no partner URL may reach.
            status, extra, body = 302, [(b"location", b"http://127.0.0.1/inside")], b"{}"
        else:
            status, extra = 200, []
            body = b'{"status_code": 1000, "data": [], "timestamp": "2026-12-06T00:00:00Z"}'
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *extra],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return asgi


@asynccontextmanager
async def server(tls: tuple[Path, Path] | None = None) -> AsyncIterator[tuple[int, Seen]]:
    seen = Seen()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    certfile, keyfile = tls if tls else (None, None)
    srv = uvicorn.Server(
        uvicorn.Config(
            app(seen),
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=1,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
    )
    task = asyncio.create_task(srv.serve(sockets=[sock]))
    await until(lambda: srv.started, 10, "the server to listen")
    try:
        yield port, seen
    finally:
        srv.should_exit = True
        await task
        sock.close()


class Resolver:
    """Answers every name with ``address`` and counts the questions."""

    def __init__(self, address: IpAddress) -> None:
        self.address = address
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IpAddress]:
        self.asked.append(host)
        return [self.address]


async def test_the_connection_goes_to_the_resolved_address_with_the_host_name_kept() -> None:
    # "partner.test" resolves nowhere but in this resolver: the request can
    # only reach the server through the address the backend checked.
    resolver = Resolver(LOOPBACK)
    async with (
        server() as (port, seen),
        partner_http(5, allow_private=True, resolver=resolver) as client,
    ):
        answer = await client.get(f"http://partner.test:{port}/ocpi/versions")
    assert answer.status_code == 200
    assert seen.requests == [(f"partner.test:{port}", "/ocpi/versions")]
    assert resolver.asked == ["partner.test"]


def certificate_for(name: str, into: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` only (no IP address in it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = into / "cert.pem", into / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile


async def test_tls_to_the_pinned_address_still_names_the_host(tmp_path: Path) -> None:
    # The certificate names partner.test only: the handshake succeeds only
    # if the client sent that name (SNI) and checked the certificate against
    # it, although the socket went to 127.0.0.1.
    certfile, keyfile = certificate_for("partner.test", tmp_path)
    trust = ssl.create_default_context(cafile=str(certfile))
    resolver = Resolver(LOOPBACK)
    async with (
        server((certfile, keyfile)) as (port, seen),
        partner_http(5, allow_private=True, resolver=resolver, ssl_context=trust) as client,
    ):
        answer = await client.get(f"https://partner.test:{port}/ocpi/versions")
        with pytest.raises(httpx.ConnectError):
            # The same server by its address: not the name the certificate has.
            await client.get(f"https://127.0.0.1:{port}/ocpi/versions")
    assert answer.status_code == 200
    assert seen.requests == [(f"partner.test:{port}", "/ocpi/versions")]


async def test_a_name_resolving_to_loopback_is_refused_and_nothing_reaches_the_server() -> None:
    resolver = Resolver(LOOPBACK)
    async with (
        server() as (port, seen),
        partner_http(5, allow_private=False, resolver=resolver) as client,
    ):
        with pytest.raises(httpx.ConnectError) as raised:
            await client.get(f"http://partner.test:{port}/ocpi/versions")
    reason = refusal_of(raised.value)
    assert reason is not None and "127.0.0.1 is a loopback address" in reason
    assert seen.requests == []


async def test_redirects_are_not_followed() -> None:
    async with server() as (port, seen), partner_http(5, allow_private=True) as client:
        answer = await client.get(f"http://127.0.0.1:{port}/hop")
    assert answer.status_code == 302
    assert [path for _, path in seen.requests] == ["/hop"]


async def test_the_partner_client_refuses_a_host_the_system_resolves_to_loopback() -> None:
    async with server() as (port, seen):
        client = HttpPartnerClient(timeout_s=5)
        with pytest.raises(PartnerCallError, match="loopback"):
            await client.versions(f"http://localhost:{port}/ocpi/versions", "token-a")
    assert seen.requests == []


# --- push lanes: the receiver URL checked at send time --------------------------------


@pytest.fixture(scope="module")
def namespace(services: Settings) -> Iterator[Namespace]:
    with fresh_namespace(services) as ns:
        yield ns


async def test_a_push_url_stored_before_the_policy_reaches_no_private_address(
    namespace: Namespace,
) -> None:
    settings = push_settings(namespace).model_copy(update={"url_policy_allow_private": False})
    suffix = uuid.uuid4().hex[:6].upper()
    receiver = Receiver(ok)
    ours = Events(f"L-{suffix}")
    with structlog.testing.capture_logs() as logs:
        async with serving(receiver) as url:
            # As registered when partner URLs were not checked: a name that
            # resolves to loopback.
            stored = url.replace("127.0.0.1", "localhost")
            pid = f"NL-U{suffix}"
            async with pushing(settings, FakePartners([partner(pid, stored, "tok-u")])) as pusher:
                await lanes_ready(pusher, pid)
                await append(settings, [ours.put()])
                deadline = asyncio.get_running_loop().time() + 10
                while not any(e["event"] == "push_retry" for e in logs):
                    assert asyncio.get_running_loop().time() < deadline, "no push attempt"
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)
    assert receiver.requests == []
    retries = [e for e in logs if e["event"] == "push_retry"]
    assert retries and all(e["error"] == "UrlRefused" for e in retries)
