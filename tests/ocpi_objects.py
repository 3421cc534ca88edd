"""Valid OCPI 2.2.1 Location objects for tests, small and explicit."""

from __future__ import annotations

from typing import Any

AT = "2026-01-01T12:00:00Z"


def connector(connector_id: str = "1", *, at: str = AT, **fields: Any) -> dict[str, Any]:
    return {
        "id": connector_id,
        "standard": "IEC_62196_T2",
        "format": "SOCKET",
        "power_type": "AC_3_PHASE",
        "max_voltage": 230,
        "max_amperage": 32,
        "last_updated": at,
        **fields,
    }


def evse(
    uid: str = "EVSE1",
    status: str = "AVAILABLE",
    *,
    at: str = AT,
    connectors: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "uid": uid,
        "status": status,
        "connectors": connectors if connectors is not None else [connector(at=at)],
        "last_updated": at,
        **fields,
    }


def location(
    location_id: str = "LOC1",
    *,
    country_code: str = "NL",
    party_id: str = "ABC",
    at: str = AT,
    evses: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "country_code": country_code,
        "party_id": party_id,
        "id": location_id,
        "publish": True,
        "address": "Stationsplein 1",
        "city": "Utrecht",
        "country": "NLD",
        "coordinates": {"latitude": "52.089444", "longitude": "5.110000"},
        "time_zone": "Europe/Amsterdam",
        "evses": evses if evses is not None else [evse(at=at)],
        "last_updated": at,
        **fields,
    }
