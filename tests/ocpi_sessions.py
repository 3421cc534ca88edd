"""Valid OCPI 2.2.1 Session objects for tests, small and explicit."""

from __future__ import annotations

from typing import Any

AT = "2026-03-01T09:00:00Z"


def period(start: str, kwh: float | int, hours: float | int = 0.25) -> dict[str, Any]:
    return {
        "start_date_time": start,
        "dimensions": [{"type": "ENERGY", "volume": kwh}, {"type": "TIME", "volume": hours}],
    }


def session(
    session_id: str = "S1",
    *,
    country_code: str = "NL",
    party_id: str = "ABC",
    at: str = AT,
    status: str = "ACTIVE",
    kwh: float | int = 0,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "country_code": country_code,
        "party_id": party_id,
        "id": session_id,
        "start_date_time": at,
        "kwh": kwh,
        "cdr_token": {
            "country_code": "DE",
            "party_id": "MSP",
            "uid": "RFID-0042",
            "type": "RFID",
            "contract_id": "DE-MSP-C00042-7",
        },
        "auth_method": "WHITELIST",
        "location_id": "LOC1",
        "evse_uid": "EVSE1",
        "connector_id": "1",
        "currency": "EUR",
        "status": status,
        "last_updated": at,
        **fields,
    }
