"""The charge point registry: password hashing, the registration decision
against the location we hold, and the view fold (the shape other slices
read)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from producers.charge_points import (
    hash_password,
    parse_register,
    plan_deregister,
    plan_register,
    verify_password,
)
from producers.write_path import Origin, RefusedError
from projections.mongo.charge_points import apply
from projections.position import Record
from schemas.events import Party
from schemas.ocpi.status_codes import OcpiStatus

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
US = Origin(Party(country_code="ZZ", party_id="HUB"), "corr")
LOCATION: dict[str, Any] = {
    "id": "Depot-1",
    "evses": [
        {"uid": "e1", "connectors": [{"id": "1"}]},
        {"uid": "e2", "connectors": [{"id": "1"}, {"id": "2"}]},
    ],
}


def body(**over: Any) -> dict[str, Any]:
    return {
        "location_id": "Depot-1",
        "password": "s3cret-pass",
        "connectors": [
            {"ocpp_connector_id": 1, "evse_uid": "e1", "connector_id": "1"},
            {"ocpp_connector_id": 2, "evse_uid": "E2", "connector_id": "2"},
        ],
        **over,
    }


def test_a_hash_verifies_its_password_only() -> None:
    encoded = hash_password("s3cret-pass", iterations=1000)
    assert encoded.startswith("pbkdf2_sha256$1000$")
    assert "s3cret-pass" not in encoded
    assert verify_password("s3cret-pass", encoded)
    assert not verify_password("s3cret-pasS", encoded)
    assert not verify_password("", encoded)
    # Two hashes of one password differ (salt).
    assert hash_password("s3cret-pass", iterations=1000) != encoded


@pytest.mark.parametrize(
    "encoded", ["", "x", "md5$1$a$b", "pbkdf2_sha256$x$a$b", "pbkdf2_sha256$1$!$!"]
)
def test_a_malformed_hash_verifies_nothing(encoded: str) -> None:
    assert not verify_password("anything", encoded)


def test_registration_of_our_connectors() -> None:
    event = plan_register(
        "CP-1", parse_register(body()), LOCATION, US, NOW, password_hash="pbkdf2_sha256$1$a$b"
    )
    p = event.payload
    assert (p.country_code, p.party_id, p.location_key) == ("ZZ", "HUB", "ZZ/HUB/DEPOT-1")
    assert event.aggregate_key == "CP-1"
    assert "s3cret" not in event.model_dump_json()


@pytest.mark.parametrize(
    ("over", "location", "status"),
    [
        ({}, None, OcpiStatus.UNKNOWN_LOCATION),
        (
            {"connectors": [{"ocpp_connector_id": 1, "evse_uid": "nope", "connector_id": "1"}]},
            LOCATION,
            OcpiStatus.UNKNOWN_LOCATION,
        ),
        (
            {"connectors": [{"ocpp_connector_id": 1, "evse_uid": "e1", "connector_id": "9"}]},
            LOCATION,
            OcpiStatus.UNKNOWN_LOCATION,
        ),
    ],
)
def test_connectors_that_are_not_ours_are_refused(
    over: dict[str, Any], location: dict[str, Any] | None, status: OcpiStatus
) -> None:
    with pytest.raises(RefusedError) as exc:
        plan_register("CP-1", parse_register(body(**over)), location, US, NOW, password_hash="h")
    assert exc.value.status is status


@pytest.mark.parametrize(
    "over",
    [
        {"password": "short"},
        {"password": "x" * 65},
        {"password": "has space in it"},
        {"password": "n\u00e9-ascii-pass"},
        {"connectors": []},
        {
            "connectors": [
                {"ocpp_connector_id": 1, "evse_uid": "e1", "connector_id": "1"},
                {"ocpp_connector_id": 1, "evse_uid": "e2", "connector_id": "1"},
            ]
        },
        {"connectors": [{"ocpp_connector_id": 0, "evse_uid": "e1", "connector_id": "1"}]},
        {"extra": 1},
    ],
)
def test_malformed_registrations_are_2001_without_the_password(over: dict[str, Any]) -> None:
    with pytest.raises(RefusedError) as exc:
        parse_register(body(**over))
    assert exc.value.status is OcpiStatus.INVALID_PARAMETERS
    assert "pass" not in exc.value.message.replace("password", "")


def test_the_view_document_and_deregistration() -> None:
    reg = plan_register("CP-1", parse_register(body()), LOCATION, US, NOW, password_hash="h")
    doc = apply(None, Record("charger.registry.v1", 0, 5, reg))
    assert doc is not None
    assert doc["_id"] == doc["charge_point_id"] == "CP-1"
    assert doc["registered"] is True
    assert doc["location_id"] == "Depot-1"
    assert doc["connectors"][1] == {
        "ocpp_connector_id": 2,
        "evse_uid": "E2",
        "connector_id": "2",
        "evse_key": "E2",
        "connector_key": "2",
    }
    assert apply(doc, Record("charger.registry.v1", 0, 5, reg)) is doc  # redelivery
    gone = apply(doc, Record("charger.registry.v1", 0, 6, plan_deregister("CP-1", True, US, NOW)))
    assert gone is not None and gone["registered"] is False and gone["connectors"]
    with pytest.raises(RefusedError):
        plan_deregister("CP-1", False, US, NOW)
