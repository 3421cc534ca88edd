"""Our own charger's facts drive the EVSE status partners and ops see: a
running transaction shows CHARGING, a stop gives the EVSE back, and a fault
reported by its owner outranks a transaction (processors/evse_status.py)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.e2e.conftest import Platform, ops_auth
from tests.e2e.test_walking_skeleton import wait_for
from tests.ocpi_objects import evse, location

TOKEN = {
    "uid": "RFID-STATUS",
    "type": "RFID",
    "country_code": "NL",
    "party_id": "PEE",
    "contract_id": "NL-PEE-STATUS",
}


def test_a_transaction_shows_charging_until_it_stops(platform: Platform) -> None:
    us = platform.base_url
    loc = f"ST-{uuid.uuid4().hex[:6]}"
    site = location(
        loc,
        country_code="ZZ",
        party_id="HUB",
        at="2026-06-03T07:00:00Z",
        evses=[evse("E1", at="2026-06-03T07:00:00Z")],
    )
    made = httpx.put(
        f"{us}/ops/locations/{loc}",
        json=site,
        timeout=10,
        headers=ops_auth(us),
    )
    assert made.json()["status_code"] == 1000, made.text

    def shown() -> str | None:
        resp = httpx.get(
            f"{us}/ops/locations/{loc}/E1",
            timeout=10,
            headers=ops_auth(us),
        )
        if resp.status_code != 200:
            return None
        status: str = resp.json()["data"]["status"]
        return status

    def evse_row_status() -> str | None:
        rows = httpx.get(
            f"{us}/ops/evses",
            params={"location_id": loc},
            timeout=10,
            headers=ops_auth(us),
        )
        found = rows.json()["data"]
        return str(found[0]["status"]) if found else None

    wait_for(lambda: shown() == "AVAILABLE", "the new EVSE AVAILABLE")
    ids = {
        "location_id": loc,
        "evse_uid": "E1",
        "connector_id": "1",
        "session_id": f"SS-{uuid.uuid4().hex[:8]}",
        "transaction_id": "TX-1",
    }

    def record(kind: str, body: dict[str, Any]) -> None:
        resp = httpx.post(
            f"{us}/ops/chargers/transactions/{kind}",
            json={**ids, **body},
            timeout=10,
            headers=ops_auth(us),
        )
        assert resp.json()["status_code"] == 1000, resp.text

    record(
        "started",
        {"token": TOKEN, "authorized": True, "auth_method": "WHITELIST",
         "meter_start_wh": 0, "at": "2026-06-03T08:00:00Z"},
    )  # fmt: skip
    wait_for(lambda: shown() == "CHARGING", "the EVSE CHARGING while the transaction runs")
    wait_for(lambda: evse_row_status() == "CHARGING", "the MySQL EVSE row CHARGING")

    # The owner's fault outranks the running transaction.
    fault = httpx.patch(
        f"{us}/ops/locations/{loc}/E1",
        json={"status": "OUTOFORDER", "last_updated": "2026-06-03T08:10:00Z"},
        timeout=10,
        headers=ops_auth(us),
    )
    assert fault.json()["status_code"] == 1000, fault.text
    wait_for(lambda: shown() == "OUTOFORDER", "the fault shown over the transaction")

    repaired = httpx.patch(
        f"{us}/ops/locations/{loc}/E1",
        json={"status": "AVAILABLE", "last_updated": "2026-06-03T08:20:00Z"},
        timeout=10,
        headers=ops_auth(us),
    )
    assert repaired.json()["status_code"] == 1000, repaired.text
    wait_for(lambda: shown() == "CHARGING", "CHARGING again once the fault is cleared")

    record("stopped", {"meter_stop_wh": 4_000, "at": "2026-06-03T08:30:00Z"})
    wait_for(lambda: shown() == "AVAILABLE", "the EVSE AVAILABLE after the stop")
    wait_for(lambda: evse_row_status() == "AVAILABLE", "the MySQL EVSE row AVAILABLE")
