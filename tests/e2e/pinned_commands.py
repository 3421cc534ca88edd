"""START_SESSION from us to a partner pinned to one OCPI version
(tests/e2e/conftest.py ``pinned_partner``), as test_ocpi_211 and
test_ocpi_230 send it: the steps are the same in every version; what the
partner answers, and where its result comes back, is each test's own."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.e2e.conftest import Platform, ops_auth
from tests.e2e.test_walking_skeleton import wait_for
from tests.ocpi_objects import evse, location
from tests.token_objects import token


@dataclass(frozen=True)
class SentStart:
    uid: str  # the uid of the token of ours the command carries
    command_id: str
    response_url: str
    response: dict[str, Any]  # the partner's CommandResponse, as we read it


def start_session_at(
    us: Platform,
    them: Platform,
    partner_id: str,
    *,
    country_code: str,
    party_id: str,
    postal_code: str,
) -> SentStart:
    """We (its eMSP) issue a token, it (a CPO) writes a location with EVSE
    E1 through its ops API, and we send it START_SESSION for connector 1
    of that EVSE; our ops API must answer 1000 (the partner read the
    request in its version)."""
    base = us.base_url
    uid = f"C{uuid.uuid4().hex[:8].upper()}"
    issued = token(uid, country_code="ZZ", party_id="HUB", type="RFID")
    made = httpx.put(f"{base}/ops/tokens/{uid}", json=issued, headers=ops_auth(base), timeout=10)
    assert made.status_code == 201, made.text
    loc = f"CLOC-{uid}"
    site = location(
        loc,
        country_code=country_code,
        party_id=party_id,
        postal_code=postal_code,
        evses=[evse("E1")],
    )
    put = httpx.put(
        f"{them.base_url}/ops/locations/{loc}",
        json=site,
        headers=ops_auth(them.base_url),
        timeout=10,
    )
    assert put.json()["status_code"] == 1000, put.text
    body = {"token": issued, "location_id": loc, "evse_uid": "E1", "connector_id": "1"}
    sent = httpx.post(
        f"{base}/ops/commands/sent/{partner_id}/START_SESSION",
        json=body,
        headers=ops_auth(base),
        timeout=20,
    )
    assert sent.json()["status_code"] == 1000, sent.text
    data = sent.json()["data"]
    return SentStart(uid, data["command_id"], data["response_url"], data["response"])


def recorded_result(us: Platform, command_id: str, what: str) -> dict[str, Any]:
    """Our ops view of a sent command, once a result is recorded on it."""

    def shown() -> dict[str, Any] | None:
        got = httpx.get(
            f"{us.base_url}/ops/commands/sent/{command_id}",
            headers=ops_auth(us.base_url),
            timeout=10,
        )
        data: dict[str, Any] = got.json().get("data") or {}
        return data if data.get("result") else None

    held: dict[str, Any] = wait_for(shown, what)
    return held
