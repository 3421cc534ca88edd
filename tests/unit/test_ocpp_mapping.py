"""OCPP 1.6J -> our events, and the charger's answers -> command results
(producers/ocpp.py): units made exact, connector 0, unknown connectors,
authorization statuses."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from gateway.charge_point import parse_time
from gateway.server import basic_credentials
from producers import ocpp as rules
from producers.authorization import Decision, DecisionSource
from producers.write_path import Origin
from schemas.events import Party
from schemas.ocpi.commands import CommandResultType as R
from schemas.ocpi.commands import CommandType as C
from schemas.ocpi.sessions import AuthMethod
from schemas.ocpi.tokens import AllowedType

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
US = Origin(Party(country_code="ZZ", party_id="HUB"), "ocpp:CP-1")
DOC: dict[str, Any] = {
    "charge_point_id": "CP-1",
    "country_code": "ZZ",
    "party_id": "HUB",
    "location_id": "Depot-1",
    "registered": True,
    "password_hash": "h",
    "connectors": [
        {"ocpp_connector_id": 1, "evse_uid": "E1", "connector_id": "1"},
        {"ocpp_connector_id": 2, "evse_uid": "E2", "connector_id": "1"},
    ],
}


def reg() -> rules.Registration:
    registration = rules.registration_of(DOC)
    assert registration is not None
    return registration


def test_a_deregistered_or_missing_charge_point_is_no_registration() -> None:
    assert rules.registration_of(None) is None
    assert rules.registration_of({**DOC, "registered": False}) is None


def _statuses(connector: int) -> list[Any]:
    return rules.connector_statuses(
        reg(),
        ocpp_connector_id=connector,
        status="Faulted",
        error_code="GroundFailure",
        info=None,
        at=NOW,
        origin=US,
        now=NOW,
    )


def test_a_connector_status_names_its_ocpi_evse_and_connector() -> None:
    [event] = _statuses(2)
    p = event.payload
    assert (p.evse_uid, p.connector_id, p.ocpp_connector_id) == ("E2", "1", 2)
    assert (p.status, p.error_code) == ("Faulted", "GroundFailure")
    assert event.aggregate_key == "ZZ/HUB/DEPOT-1"


def test_connector_zero_is_every_mapped_connector() -> None:
    events = _statuses(0)
    assert [e.payload.evse_uid for e in events] == ["E1", "E2"]
    assert {e.payload.ocpp_connector_id for e in events} == {0}


def test_an_unknown_connector_is_no_event() -> None:
    assert _statuses(7) == []


def mv(*samples: dict[str, Any], at: str = "2026-03-01T12:00:00Z") -> dict[str, Any]:
    return {"timestamp": at, "sampled_value": list(samples)}


@pytest.mark.parametrize(
    ("samples", "wh", "amps", "kw"),
    [
        ([{"value": "1234"}], Decimal(1234), None, None),  # defaults: energy, Wh
        (
            [{"value": "12.3456", "unit": "kWh", "measurand": rules.ENERGY}],
            Decimal("12345.6"),
            None,
            None,
        ),
        (
            [
                {"value": "100", "unit": "Wh"},
                {"value": "16.5", "measurand": "Current.Import", "unit": "A"},
                {"value": "7400", "measurand": "Power.Active.Import", "unit": "W"},
            ],
            Decimal(100),
            Decimal("16.5"),
            Decimal("7.4"),
        ),
        (
            [
                {"value": "1", "measurand": "Power.Active.Import", "unit": "kW", "phase": "L1"},
                {"value": "2", "measurand": "Power.Active.Import", "unit": "kW", "phase": "L2"},
                {"value": "9", "measurand": "Current.Import", "phase": "L1"},
                {"value": "11", "measurand": "Current.Import", "phase": "L2"},
            ],
            None,
            Decimal(11),
            Decimal(3),
        ),
        # per-phase energy registers are not the register; signed data is skipped
        ([{"value": "5", "phase": "L1"}], None, None, None),
        ([{"value": "5", "format": "SignedData"}], None, None, None),
        ([{"value": "five"}], None, None, None),
        ([{"value": "5", "unit": "varh"}], None, None, None),
        ([{"value": "20", "measurand": "SoC", "unit": "Percent"}], None, None, None),
    ],
)
def test_meter_readings_are_exact_in_wh_a_and_kw(
    samples: list[dict[str, Any]], wh: Decimal | None, amps: Decimal | None, kw: Decimal | None
) -> None:
    [reading] = rules.readings([mv(*samples)], parse_time)
    assert (reading.meter_wh, reading.current_a, reading.power_kw) == (wh, amps, kw)
    assert reading.at == NOW


def test_a_reading_without_a_valid_time_is_skipped() -> None:
    assert (
        rules.readings([mv({"value": "1"}, at="yesterday"), {"sampled_value": []}], parse_time)
        == []
    )


@pytest.mark.parametrize(
    ("authorized", "allowed", "status"),
    [
        (True, AllowedType.ALLOWED, "Accepted"),
        (False, AllowedType.BLOCKED, "Blocked"),
        (False, AllowedType.EXPIRED, "Expired"),
        (False, AllowedType.NO_CREDIT, "Blocked"),
        (False, AllowedType.NOT_ALLOWED, "Invalid"),
        (False, None, "Invalid"),
    ],
)
def test_id_tag_status(authorized: bool, allowed: AllowedType | None, status: str) -> None:
    decision = Decision(authorized=authorized, allowed=allowed, source=DecisionSource.WHITELIST)
    assert rules.id_tag_status(decision) == status


@pytest.mark.parametrize(
    ("source", "method"),
    [
        (DecisionSource.WHITELIST, AuthMethod.WHITELIST),
        (DecisionSource.OFFLINE, AuthMethod.WHITELIST),
        (DecisionSource.REAL_TIME, AuthMethod.AUTH_REQUEST),
        (DecisionSource.CACHE, AuthMethod.AUTH_REQUEST),
        (DecisionSource.OWN, AuthMethod.AUTH_REQUEST),
    ],
)
def test_auth_method_of_a_decision(source: DecisionSource, method: AuthMethod) -> None:
    assert rules.auth_method(Decision(authorized=True, allowed=None, source=source)) is method


@pytest.mark.parametrize(
    ("command", "status", "error", "result"),
    [
        (C.START_SESSION, "Accepted", None, R.ACCEPTED),
        (C.START_SESSION, "Rejected", None, R.REJECTED),
        (C.RESERVE_NOW, "Occupied", None, R.EVSE_OCCUPIED),
        (C.RESERVE_NOW, "Faulted", None, R.EVSE_INOPERATIVE),
        (C.RESERVE_NOW, "Unavailable", None, R.EVSE_INOPERATIVE),
        (C.RESERVE_NOW, "Rejected", None, R.REJECTED),
        (C.CANCEL_RESERVATION, "Accepted", None, R.ACCEPTED),
        (C.CANCEL_RESERVATION, "Rejected", None, R.UNKNOWN_RESERVATION),
        (C.UNLOCK_CONNECTOR, "Unlocked", None, R.ACCEPTED),
        (C.UNLOCK_CONNECTOR, "UnlockFailed", None, R.FAILED),
        (C.UNLOCK_CONNECTOR, "NotSupported", None, R.NOT_SUPPORTED),
        (C.STOP_SESSION, "Something", None, R.FAILED),
        (C.STOP_SESSION, None, "NotImplemented", R.NOT_SUPPORTED),
        (C.STOP_SESSION, None, "NotSupported", R.NOT_SUPPORTED),
        (C.STOP_SESSION, None, "InternalError", R.FAILED),
    ],
)
def test_command_results(command: C, status: str | None, error: str | None, result: R) -> None:
    assert rules.command_result(command, status, error) is result


def test_token_identity_of_an_ocpi_token() -> None:
    token = {
        "country_code": "NL",
        "party_id": "PEE",
        "uid": "CARD1",
        "type": "RFID",
        "contract_id": "NL-PEE-C1",
    }
    identity = rules.token_identity(token)
    assert identity is not None and identity.contract_id == "NL-PEE-C1"
    assert rules.token_identity(None) is None
    assert rules.token_identity({"uid": "x"}) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Basic Q1AtMTpzM2NyZXQ6d2l0aC1jb2xvbg==", ("CP-1", "s3cret:with-colon")),
        ("basic Q1AtMTpwYXNz", ("CP-1", "pass")),
        (None, None),
        ("", None),
        ("Bearer abc", None),
        ("Basic !!!", None),
        ("Basic bm9jb2xvbg==", None),  # "nocolon"
    ],
)
def test_basic_credentials(header: str | None, expected: tuple[str, str] | None) -> None:
    assert basic_credentials(header) == expected
