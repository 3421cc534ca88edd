"""A minimal OCPI party for registering with a running platform: it serves
versions and version details (checking the TOKEN_B it handed out) so the
platform's credentials handshake can complete, and records what is pushed to
its Locations receiver. Standard library only, in a background thread.

With ``commands=True`` it is also a CPO stand-in for the Commands module: its
version details list a ``commands`` RECEIVER, and every POST to
``/commands/{command}`` is recorded in ``commands_received`` (path, the
Authorization header as received, body) and answered with
``command_answer`` (a CommandResponse).

Used where no second platform runs: the quick-start test against the
platform `make up` started, and `make bench`.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


@dataclass
class PeerStub:
    country_code: str
    party_id: str
    base_url: str = ""
    token_b: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    received: list[tuple[str, str, Any]] = field(default_factory=list)
    commands: bool = False
    command_answer: dict[str, Any] = field(
        default_factory=lambda: {"result": "ACCEPTED", "timeout": 30}
    )
    commands_received: list[tuple[str, str | None, Any]] = field(default_factory=list)
    role: str = "CPO"  # the role it registers with (EMSP to send us commands)
    # An eMSP stand-in for the ChargingProfiles module: its version details
    # list a ``chargingprofiles`` SENDER; results POSTed to its response
    # URLs and ActiveChargingProfile PUTs under ``/chargingprofiles/`` are
    # recorded in ``received``.
    charging_profiles: bool = False
    # A Payment Terminal Provider stand-in (OCPI 2.3.0 Payments, docs/adr/0047):
    # its version details list a ``payments`` SENDER; what the CPO sends
    # under ``/payments/`` (terminal PATCH, activate, deactivate) is recorded
    # in ``received``.
    payments: bool = False

    @property
    def versions_url(self) -> str:
        return f"{self.base_url}/versions"

    def answer(self, method: str, path: str, auth: str | None, body: Any) -> tuple[int, Any]:
        expected = "Token " + base64.b64encode(self.token_b.encode()).decode()
        if auth != expected:
            return 401, {"status_code": 2000, "status_message": "unknown token"}
        if method == "GET" and path == "/versions":
            return 200, {
                "status_code": 1000,
                "data": [{"version": "2.2.1", "url": f"{self.base_url}/2.2.1"}],
            }
        if method == "GET" and path == "/2.2.1":
            endpoints = [
                {
                    "identifier": "credentials",
                    "role": "SENDER",
                    "url": f"{self.base_url}/credentials",
                },
                {
                    "identifier": "locations",
                    "role": "RECEIVER",
                    "url": f"{self.base_url}/locations",
                },
            ]
            if self.commands:
                endpoints.append(
                    {
                        "identifier": "commands",
                        "role": "RECEIVER",
                        "url": f"{self.base_url}/commands",
                    }
                )
            if self.charging_profiles:
                endpoints.append(
                    {
                        "identifier": "chargingprofiles",
                        "role": "SENDER",
                        "url": f"{self.base_url}/chargingprofiles",
                    }
                )
            if self.payments:
                endpoints.append(
                    {"identifier": "payments", "role": "SENDER", "url": f"{self.base_url}/payments"}
                )
            return 200, {"status_code": 1000, "data": {"version": "2.2.1", "endpoints": endpoints}}
        if self.commands and method == "POST" and path.startswith("/commands/"):
            self.commands_received.append((path, auth, body))
            return 200, {"status_code": 1000, "data": self.command_answer}
        if path.startswith("/commands/") and method == "POST":
            # A response_url of a command it sent (the CommandResult).
            self.received.append((method, path, body))
            return 200, {"status_code": 1000}
        if path.startswith("/chargingprofiles/") and method in ("POST", "PUT"):
            self.received.append((method, path, body))
            return 200, {"status_code": 1000}
        if self.payments and path.startswith("/payments/") and method in ("POST", "PATCH", "PUT"):
            self.received.append((method, path, body))
            return 200, {"status_code": 1000}
        if path.startswith("/locations/") and method in ("PUT", "PATCH"):
            self.received.append((method, path, body))
            return 200, {"status_code": 1000}
        return 404, {"status_code": 2000, "status_message": "not here"}

    def register_with(self, versions_url: str, token_a: str) -> str:
        """Run the handshake as the registering party; return our TOKEN_C."""
        auth = {"Authorization": "Token " + base64.b64encode(token_a.encode()).decode()}
        with httpx.Client(timeout=30) as client:
            [version] = [
                v
                for v in client.get(versions_url, headers=auth).json()["data"]
                if v["version"] == "2.2.1"
            ]
            details = client.get(version["url"], headers=auth).json()["data"]
            [credentials_url] = [
                e["url"] for e in details["endpoints"] if e["identifier"] == "credentials"
            ]
            ours = {
                "token": self.token_b,
                "url": self.versions_url,
                "roles": [
                    {
                        "role": self.role,
                        "business_details": {"name": "Peer stub"},
                        "party_id": self.party_id,
                        "country_code": self.country_code,
                    }
                ],
            }
            resp = client.post(credentials_url, json=ours, headers=auth)
            body = resp.json()
            if body.get("status_code") != 1000:
                raise AssertionError(f"registration refused: {body}")
            token_c: str = body["data"]["token"]
            return token_c


@contextmanager
def peer_stub(
    country_code: str,
    party_id: str,
    role: str = "CPO",
    *,
    commands: bool = False,
    charging_profiles: bool = False,
    payments: bool = False,
) -> Iterator[PeerStub]:
    stub = PeerStub(
        country_code,
        party_id,
        commands=commands,
        role=role,
        charging_profiles=charging_profiles,
        payments=payments,
    )

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, answer = stub.answer(
                self.command, self.path, self.headers.get("Authorization"), body
            )
            data = json.dumps({"timestamp": "2026-01-01T00:00:00Z", **answer}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_PATCH = do_POST = _serve  # noqa: N815 - the stdlib calls these

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
