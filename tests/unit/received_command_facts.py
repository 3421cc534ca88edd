"""Small builders for the received-commands unit tests (we as CPO)."""

from __future__ import annotations

from typing import Any

from producers.received_commands import Caller, ChargePointEntry, Facts
from schemas.events import Party
from tests.ocpi_objects import connector, evse, location
from tests.token_objects import token

US = Party(country_code="ZZ", party_id="HUB")
EMSP = Party(country_code="NL", party_id="ABD")
CALLER = Caller(partner_id="abc", party=EMSP, parties=frozenset({EMSP}))
URL = "https://emsp.example.com/ocpi/emsp/2.2.1/commands/START_SESSION/42"


def our_location(location_id: str = "LOC1", **fields: Any) -> dict[str, Any]:
    evses = [
        evse("EVSE1", connectors=[connector("1")]),
        evse(
            "EVSE2",
            connectors=[connector("1"), connector("2")],
            capabilities=["REMOTE_START_STOP_CAPABLE", "START_SESSION_CONNECTOR_REQUIRED"],
        ),
        evse("OLD", "REMOVED"),
    ]
    return location(location_id, country_code="ZZ", party_id="HUB", evses=evses, **fields)


def charge_point(
    cp_id: str = "CP1",
    *,
    location_id: str = "LOC1",
    registered: bool = True,
    connectors: list[tuple[int, str, str]] | None = None,
) -> ChargePointEntry:
    mapped = connectors or [(1, "EVSE1", "1"), (2, "EVSE2", "1"), (3, "EVSE2", "2")]
    return ChargePointEntry.model_validate(
        {
            "_id": cp_id,
            "charge_point_id": cp_id,
            "country_code": "ZZ",
            "party_id": "HUB",
            "location_id": location_id,
            "location_key": f"ZZ/HUB/{location_id.upper()}",
            "registered": registered,
            "connectors": [
                {
                    "ocpp_connector_id": o,
                    "evse_uid": e,
                    "connector_id": c,
                    "evse_key": e.upper(),
                    "connector_key": c.upper(),
                }
                for o, e, c in mapped
            ],
            "password_hash": "pbkdf2_sha256$1$x$y",
        }
    )


def facts(**fields: Any) -> Facts:
    base: dict[str, Any] = {
        "us": US,
        "caller": CALLER,
        "command_id": "c0ffee",
        "correlation_id": "corr-1",
        "location": our_location(),
        "charge_points": (charge_point(),),
        "present": frozenset({"CP1"}),
    }
    return Facts(**{**base, **fields})


def start_body(**fields: Any) -> dict[str, Any]:
    return {
        "response_url": URL,
        "token": token(),
        "location_id": "LOC1",
        "evse_uid": "EVSE1",
        **fields,
    }


def session(status: str = "ACTIVE", **fields: Any) -> dict[str, Any]:
    return {
        "country_code": "ZZ",
        "party_id": "HUB",
        "id": "S1",
        "status": status,
        "location_id": "LOC1",
        "evse_uid": "EVSE1",
        "connector_id": "1",
        "cdr_token": {"country_code": "NL", "party_id": "ABD", "uid": "04A1B2C3"},
        **fields,
    }
