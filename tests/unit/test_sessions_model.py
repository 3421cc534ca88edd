"""The Session object model (mod_sessions): limits, enums, exact numbers,
and PATCH validation with the append rule of charging periods."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.ocpi.sessions import (
    ChargingPreferences,
    Session,
    SessionStatus,
    merge_session_patch,
    session_from_json,
    to_json,
    validate_session_patch,
)
from tests.ocpi_sessions import period, session


def test_a_valid_session_round_trips() -> None:
    body = session(kwh=12.5, charging_periods=[period("2026-03-01T09:00:00Z", 12.5)])
    parsed = Session.model_validate(body)
    assert parsed.kwh == Decimal("12.5")
    assert parsed.status is SessionStatus.ACTIVE
    assert to_json(parsed) == body


def test_numbers_are_kept_exactly_from_json_text() -> None:
    text = json.dumps(session(total_cost={"excl_vat": 1, "incl_vat": 1.21})).replace(
        '"kwh": 0', '"kwh": 7.123456789012345678'
    )
    parsed = session_from_json(text)
    assert parsed.kwh == Decimal("7.123456789012345678")
    assert parsed.total_cost is not None and parsed.total_cost.incl_vat == Decimal("1.21")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "x" * 37),  # CiString(36)
        ("id", ""),
        ("currency", "euro"),  # ISO 4217, three capitals
        ("status", "STOPPED"),  # not a SessionStatus
        ("auth_method", "RFID"),
        ("kwh", -1),
        ("kwh", "12.5"),  # a JSON number, not a string
        ("meter_id", "m" * 256),  # string(255)
        ("country_code", "NLD"),
        ("last_updated", "2026-03-01T09:00:00+01:00"),  # UTC only
    ],
)
def test_refuses_what_breaks_the_spec(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        Session.model_validate({**session(), field: value})


def test_refuses_missing_required_fields_and_bad_tokens() -> None:
    body = session()
    del body["cdr_token"]
    with pytest.raises(ValidationError):
        Session.model_validate(body)
    with pytest.raises(ValidationError):
        Session.model_validate(session(cdr_token={**session()["cdr_token"], "type": "CARD"}))


def test_end_before_start_is_refused_and_na_evse_is_accepted() -> None:
    with pytest.raises(ValidationError):
        Session.model_validate(session(end_date_time="2026-03-01T08:59:59Z"))
    reservation = Session.model_validate(
        session(status="RESERVATION", evse_uid="#NA", connector_id="#NA")
    )
    assert reservation.evse_uid == "#NA"


def test_charging_preferences() -> None:
    prefs = ChargingPreferences.model_validate(
        {"profile_type": "GREEN", "departure_time": "2026-03-01T17:00:00Z", "energy_need": 30}
    )
    assert prefs.energy_need == Decimal(30)
    with pytest.raises(ValidationError):
        ChargingPreferences.model_validate({"profile_type": "SLOW"})
    with pytest.raises(ValidationError):
        ChargingPreferences.model_validate({"profile_type": "FAST", "energy_need": -2})


# --- PATCH ------------------------------------------------------------------


def test_patch_needs_last_updated_and_refuses_null_on_required() -> None:
    with pytest.raises(ValidationError):
        validate_session_patch({"kwh": 3})
    with pytest.raises(ValidationError):
        validate_session_patch({"kwh": None, "last_updated": "2026-03-01T09:15:00Z"})
    with pytest.raises(ValidationError):
        validate_session_patch({"status": "DONE", "last_updated": "2026-03-01T09:15:00Z"})


def test_patch_absent_unchanged_null_clears_periods_appended() -> None:
    stored = session(
        kwh=5,
        meter_id="M-1",
        charging_periods=[period("2026-03-01T09:00:00Z", 5)],
    )
    patch = validate_session_patch(
        {
            "kwh": 9.5,
            "meter_id": None,
            "charging_periods": [period("2026-03-01T09:15:00Z", 4.5)],
            "last_updated": "2026-03-01T09:30:00Z",
        }
    )
    merged = merge_session_patch(stored, patch.to_json())
    assert merged["kwh"] == 9.5
    assert "meter_id" not in merged
    assert merged["currency"] == "EUR"  # absent: unchanged
    assert [p["start_date_time"] for p in merged["charging_periods"]] == [
        "2026-03-01T09:00:00Z",
        "2026-03-01T09:15:00Z",
    ]
    assert merged["last_updated"] == "2026-03-01T09:30:00Z"
    Session.model_validate(merged)


@pytest.mark.parametrize("periods", [[], None])
def test_patch_with_empty_or_null_periods_changes_no_period(periods: Any) -> None:
    stored = session(charging_periods=[period("2026-03-01T09:00:00Z", 5)])
    patch = validate_session_patch(
        {"charging_periods": periods, "last_updated": "2026-03-01T09:30:00Z"}
    )
    merged = merge_session_patch(stored, patch.to_json())
    assert merged["charging_periods"] == stored["charging_periods"]
