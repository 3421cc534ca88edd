"""Every change of ours reaches a new partner once, in order, from the
moment it registered (issue 15): a registered eMSP (a stub OCPI party in
this process) gets the location we publish in the same second it
registers, although the push process notices new partners only every
``push_refresh_s`` (10 s here, the default); and three status changes of
one of our EVSEs reach it as three PATCHes, not six."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import fresh_namespace
from tests.e2e.conftest import cli_json, ops_auth, running_platform
from tests.ocpi_objects import connector, evse, location
from tests.peer_stub import PeerStub, peer_stub


def _locations(stub: PeerStub, loc: str) -> list[tuple[str, str, Any]]:
    return [r for r in list(stub.received) if r[1].startswith("/locations/") and loc in r[1]]


def _until(condition: Any, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_new_partner_gets_each_change_once_from_its_registration_on(
    services: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with (
        fresh_namespace(services) as ns,
        running_platform(ns, tmp_path_factory.mktemp("push-logs"), push_refresh_s=10.0) as platform,
        peer_stub("NL", "NEW", role="EMSP") as stub,
    ):
        ops = ops_auth(platform.base_url)
        invite = cli_json(
            platform, "partners", "invite", "--country-code", "NL", "--party-id", "NEW",
            "--role", "EMSP", "--partner-id", "NEW-EMSP",
        )  # fmt: skip
        stub.register_with(invite["versions_url"], invite["token_a"])
        registered = time.monotonic()
        loc = f"NEW-{uuid.uuid4().hex[:6]}"
        start = datetime.now(UTC).replace(microsecond=0)
        site = location(
            loc,
            country_code="ZZ",
            party_id="HUB",
            at=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            evses=[evse("E1", connectors=[connector("1")])],
        )
        made = httpx.put(
            f"{platform.base_url}/ops/locations/{loc}", json=site, timeout=10, headers=ops
        )
        assert made.json()["status_code"] == 1000, made.text
        assert time.monotonic() - registered < 1.0  # within the second of its registration
        _until(lambda: _locations(stub, loc), 40, "the location published right after registering")

        statuses = ["CHARGING", "AVAILABLE", "OUTOFORDER"]
        for n, status in enumerate(statuses, start=1):
            at = (start + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
            changed = httpx.patch(
                f"{platform.base_url}/ops/locations/{loc}/E1",
                json={"status": status, "last_updated": at},
                timeout=10,
                headers=ops,
            )
            assert changed.json()["status_code"] == 1000, changed.text
        _until(lambda: len(_locations(stub, loc)) >= 1 + len(statuses), 30, "three status PATCHes")
        time.sleep(3)  # a doubled push would have arrived by now

    received = _locations(stub, loc)
    assert [(method, path) for method, path, _ in received] == [
        ("PUT", f"/locations/ZZ/HUB/{loc}"),
        *[("PATCH", f"/locations/ZZ/HUB/{loc}/E1")] * len(statuses),
    ]
    assert [body["status"] for _, _, body in received[1:]] == statuses
