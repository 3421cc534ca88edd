"""Test data of the CDRs slice: our own tariff, location, session and CDR."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from producers.cdrs import plan_issue
from schemas.events import CdrIssued
from schemas.ocpi.tariffs import loads_exact
from tests.ocpi_objects import connector, evse, location

# Start fee 0.50, 0.30 per kWh, 1.20 per hour of charging; 20 % VAT each.
SIMPLE_ELEMENTS = """[
  {"price_components": [
    {"type": "FLAT", "price": 0.50, "vat": 20.0, "step_size": 1},
    {"type": "ENERGY", "price": 0.30, "vat": 20.0, "step_size": 1},
    {"type": "TIME", "price": 1.20, "vat": 20.0, "step_size": 1}]}
]"""


def simple_tariff(
    tariff_id: str = "CDR-T1",
    *,
    country_code: str = "ZZ",
    party_id: str = "HUB",
    energy_price: str = "0.30",
    at: str = "2026-05-01T00:00:00Z",
    currency: str = "EUR",
) -> dict[str, Any]:
    ids = json.dumps(
        {"country_code": country_code, "party_id": party_id, "id": tariff_id, "currency": currency}
    )
    elements = SIMPLE_ELEMENTS.replace('"price": 0.30', f'"price": {energy_price}')
    text = "{" + ids[1:-1] + f', "elements": {elements}, "last_updated": "{at}"}}'
    data: dict[str, Any] = loads_exact(text)
    return data


def priced_location(
    location_id: str = "LOC-CDR",
    *,
    tariff_ids: list[str] | None = None,
    country_code: str = "ZZ",
    party_id: str = "HUB",
) -> dict[str, Any]:
    plug = connector("1", tariff_ids=tariff_ids) if tariff_ids else connector("1")
    return location(
        location_id,
        country_code=country_code,
        party_id=party_id,
        evses=[evse("EVSE1", connectors=[plug], evse_id="ZZ*HUB*E1")],
    )


def completed_session(
    session_id: str = "OS-1", *, location_id: str = "LOC-CDR", periods: bool = True
) -> dict[str, Any]:
    """8.25 kWh in 30 minutes, two periods (3.5 kWh then 4.75 kWh)."""
    body: dict[str, Any] = {
        "country_code": "ZZ",
        "party_id": "HUB",
        "id": session_id,
        "start_date_time": "2026-06-02T08:00:00Z",
        "end_date_time": "2026-06-02T08:30:00Z",
        "kwh": 8.25,
        "cdr_token": {
            "country_code": "NL",
            "party_id": "PEE",
            "uid": "RFID-77",
            "type": "RFID",
            "contract_id": "NL-PEE-C77",
        },
        "auth_method": "AUTH_REQUEST",
        "authorization_reference": "AUTH-REF-1",
        "location_id": location_id,
        "evse_uid": "EVSE1",
        "connector_id": "1",
        "currency": "EUR",
        "status": "COMPLETED",
        "last_updated": "2026-06-02T08:30:00Z",
    }
    if periods:
        body["charging_periods"] = [
            {
                "start_date_time": "2026-06-02T08:00:00Z",
                "dimensions": [
                    {"type": "ENERGY", "volume": 3.5},
                    {"type": "TIME", "volume": 0.25},
                ],
            },
            {
                "start_date_time": "2026-06-02T08:15:00Z",
                "dimensions": [
                    {"type": "ENERGY", "volume": 4.75},
                    {"type": "TIME", "volume": 0.25},
                ],
            },
        ]
    return body


def issued_cdr(
    now: datetime,
    *,
    session: dict[str, Any] | None = None,
    cause: uuid.UUID | None = None,
    correlation_id: str = "c",
) -> CdrIssued:
    """Our builder's ``CdrIssued`` for ``completed_session()`` (or
    ``session``) at LOC-CDR, priced with ``simple_tariff()``."""
    return plan_issue(
        session or completed_session(),
        priced_location(tariff_ids=["CDR-T1"]),
        {"CDR-T1": simple_tariff()},
        cause_event_id=cause or uuid.uuid4(),
        correlation_id=correlation_id,
        now=now,
    )
