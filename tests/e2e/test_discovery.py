"""QR station discovery over HTTP: a location and a tariff written through
ops, then found by the EVSE ID printed on the charger, without any token."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.e2e.conftest import Platform, ops_auth
from tests.e2e.test_walking_skeleton import wait_for
from tests.ocpi_objects import connector, evse, location
from tests.tariff_objects import tariff_json

JSON = {"Content-Type": "application/json"}


def test_a_scanned_evse_id_shows_the_public_station(platform: Platform) -> None:
    us = platform.base_url
    tag = uuid.uuid4().hex[:6].upper()
    loc, tariff_id, evse_id = f"QR-{tag}", f"QRT-{tag}", f"ZZ*HUB*E{tag}*1"
    made_tariff = httpx.put(
        f"{us}/ops/tariffs/{tariff_id}",
        content=tariff_json(tariff_id, country_code="ZZ", party_id="HUB"),
        headers=ops_auth(us, JSON),
        timeout=10,
    )
    assert made_tariff.json()["status_code"] == 1000, made_tariff.text
    site = location(
        loc,
        country_code="ZZ",
        party_id="HUB",
        name="QR station",
        postal_code="3511 CE",
        evses=[evse("E1", evse_id=evse_id, connectors=[connector("1", tariff_ids=[tariff_id])])],
    )
    made = httpx.put(
        f"{us}/ops/locations/{loc}",
        json=site,
        timeout=10,
        headers=ops_auth(us),
    )
    assert made.json()["status_code"] == 1000, made.text

    scanned = evse_id.replace("*", "").lower()

    def shown() -> dict[str, Any] | None:
        resp = httpx.get(f"{us}/public/evses/{scanned}", timeout=10)
        if resp.status_code != 200:
            return None
        data: dict[str, Any] = resp.json()["data"]
        tariffs = data["evse"]["connectors"][0]["tariffs"]
        return data if tariffs else None

    data = wait_for(shown, "the public station with its tariff")
    assert data["name"] == "QR station"
    assert data["city"] == "Utrecht"
    assert data["evse"]["evse_id"] == evse_id
    assert data["evse"]["status"] == "AVAILABLE"
    [summary] = data["evse"]["connectors"][0]["tariffs"]
    assert summary["id"] == tariff_id
    assert summary["currency"] == "EUR"
    assert summary["prices"]["ENERGY"] == {"excl_vat": 0.3175, "incl_vat": 0.384175}
    assert "_positions" not in str(data) and "party_id" not in data

    unknown = httpx.get(f"{us}/public/evses/ZZ*HUB*ENOPE{tag}*1", timeout=10)
    assert unknown.status_code == 404
    assert unknown.json()["status_code"] == 2003
