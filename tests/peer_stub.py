"""A minimal OCPI party for registering with a running platform: it serves
versions and version details (checking the TOKEN_B it handed out) so the
platform's credentials handshake can complete, and records what is pushed to
its Locations receiver. Standard library only, in a background thread.

With ``commands=True`` it is also a CPO stand-in for the Commands module: its
version details list a ``commands`` RECEIVER, and every POST to
``/commands/{command}`` is recorded in ``commands_received`` (path, the
Authorization header as received, body) and answered with
``command_answer`` (a CommandResponse).

With ``payments=True`` it is a Payment Terminal Provider's Payments Sender
(OCPI 2.3.0, docs/adr/0047; register it with ``version="2.3.0"``): what a
CPO sends under ``/payments/`` (terminal PATCH, PUT, activate, deactivate)
is recorded in ``received`` and answered ``payments_status`` (1000, or an
OCPI error to refuse); its lists ``/payments/terminals`` and
``/payments/financial-advice-confirmations`` serve ``terminals`` and
``advices``, ``page_size`` at a time with a ``Link`` to the next page
(the requests' queries in ``list_queries``).

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
from urllib.parse import parse_qs, urlsplit

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
    # under ``/payments/`` (terminal PATCH, PUT, activate, deactivate) is
    # recorded in ``received`` and answered ``payments_status``; its lists
    # serve ``terminals`` and ``advices`` (see the module docstring).
    payments: bool = False
    payments_status: int = 1000
    terminals: list[dict[str, Any]] = field(default_factory=list)
    advices: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 1
    list_queries: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    # The OCPI version it offers and registers in.
    version: str = "2.2.1"

    @property
    def versions_url(self) -> str:
        return f"{self.base_url}/versions"

    def listed(self, path: str) -> tuple[int, Any, dict[str, str]] | None:
        """A page of one of its Payments Sender lists, with its paging headers."""
        parts = urlsplit(path)
        lists = {"/payments/terminals": self.terminals}
        lists["/payments/financial-advice-confirmations"] = self.advices
        if not self.payments or parts.path.rstrip("/") not in lists:
            return None
        objects = lists[parts.path.rstrip("/")]
        query = parse_qs(parts.query)
        self.list_queries.append((parts.path, query))
        offset = int(query.get("offset", ["0"])[0])
        page = objects[offset : offset + self.page_size]
        headers = {"X-Total-Count": str(len(objects)), "X-Limit": str(self.page_size)}
        if offset + self.page_size < len(objects):
            # The next link carries the filters itself (transport_and_format).
            rest = {k: v[0] for k, v in query.items() if k.startswith("date_")}
            filters = "".join(f"&{k}={v}" for k, v in rest.items())
            at = offset + self.page_size
            headers["Link"] = f'<{self.base_url}{parts.path}?offset={at}{filters}>; rel="next"'
        return 200, {"status_code": 1000, "data": page}, headers

    def answer(self, method: str, path: str, auth: str | None, body: Any) -> tuple[int, Any]:
        expected = "Token " + base64.b64encode(self.token_b.encode()).decode()
        if auth != expected:
            return 401, {"status_code": 2000, "status_message": "unknown token"}
        if method == "GET" and path == "/versions":
            return 200, {
                "status_code": 1000,
                "data": [{"version": self.version, "url": f"{self.base_url}/{self.version}"}],
            }
        if method == "GET" and path == f"/{self.version}":
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
            details = {"version": self.version, "endpoints": endpoints}
            return 200, {"status_code": 1000, "data": details}
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
            if self.payments_status != 1000:
                return 200, {"status_code": self.payments_status, "status_message": "refused"}
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
                if v["version"] == self.version
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
    version: str = "2.2.1",
) -> Iterator[PeerStub]:
    stub = PeerStub(
        country_code,
        party_id,
        commands=commands,
        role=role,
        charging_profiles=charging_profiles,
        payments=payments,
        version=version,
    )

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            auth = self.headers.get("Authorization")
            expected = "Token " + base64.b64encode(stub.token_b.encode()).decode()
            listing = self.command == "GET" and auth == expected
            page = stub.listed(self.path) if listing else None
            if page is not None:
                status, answer, extra = page
            else:
                status, answer = stub.answer(self.command, self.path, auth, body)
                extra = {}
            data = json.dumps({"timestamp": "2026-01-01T00:00:00Z", **answer}).encode()
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
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
