"""The Tokens object model: field limits, enums, PATCH validation."""

from typing import Any

import pytest
from pydantic import ValidationError

from schemas.ocpi.tokens import (
    AllowedType,
    AuthorizationInfo,
    LocationReferences,
    Token,
    validate_token_patch,
)
from schemas.ocpi.types import to_json
from tests.token_objects import token


def test_a_valid_token_round_trips_unchanged() -> None:
    body = token(visual_number="NL-ABD-000123", group_id="G1", language="nl")
    body["energy_contract"] = {"supplier_name": "Windmill Power"}
    assert to_json(Token.model_validate(body)) == body


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("uid", "X" * 37),  # CiString(36)
        ("uid", ""),
        ("contract_id", "C" * 37),
        ("issuer", "I" * 65),  # string(64)
        ("visual_number", "V" * 65),
        ("group_id", "G" * 37),
        ("type", "NFC"),  # not a TokenType
        ("whitelist", "SOMETIMES"),
        ("valid", "true"),  # a boolean, not a string
        ("language", "dut"),
        ("default_profile_type", "SLOW"),
        ("country_code", "NLD"),
        ("party_id", "AB"),
        ("last_updated", "2026-03-01T09:00:00+01:00"),  # UTC only
    ],
)
def test_field_limits_of_the_spec_are_enforced(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        Token.model_validate({**token(), field: value})


@pytest.mark.parametrize("missing", ["uid", "type", "contract_id", "issuer", "valid", "whitelist"])
def test_required_fields_are_required(missing: str) -> None:
    body = token()
    del body[missing]
    with pytest.raises(ValidationError):
        Token.model_validate(body)


def test_energy_contract_needs_a_supplier_of_at_most_64_characters() -> None:
    with pytest.raises(ValidationError):
        Token.model_validate({**token(), "energy_contract": {"contract_id": "K1"}})
    with pytest.raises(ValidationError):
        Token.model_validate({**token(), "energy_contract": {"supplier_name": "S" * 65}})


def test_location_references_and_authorization_info() -> None:
    refs = LocationReferences.model_validate({"location_id": "LOC1", "evse_uids": ["E1", "E2"]})
    info = AuthorizationInfo(
        allowed=AllowedType.NOT_ALLOWED, token=Token.model_validate(token()), location=refs
    )
    assert to_json(info)["location"] == {"location_id": "LOC1", "evse_uids": ["E1", "E2"]}
    with pytest.raises(ValidationError):
        LocationReferences.model_validate({"location_id": "L" * 37})
    with pytest.raises(ValidationError):
        AuthorizationInfo.model_validate(
            {"allowed": "MAYBE", "token": token(), "authorization_reference": "R"}
        )
    with pytest.raises(ValidationError):
        AuthorizationInfo.model_validate(
            {"allowed": "ALLOWED", "token": token(), "authorization_reference": "R" * 37}
        )


def test_a_patch_keeps_absent_fields_and_clears_nulls() -> None:
    patch = validate_token_patch(
        {"valid": False, "visual_number": None, "last_updated": "2026-03-02T10:00:00Z"}
    )
    assert dict(patch.values) == {"valid": False, "last_updated": "2026-03-02T10:00:00Z"}
    assert patch.cleared == frozenset({"visual_number"})
    assert patch.to_json()["visual_number"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"valid": False},  # last_updated is required on every PATCH
        {"valid": None, "last_updated": "2026-03-02T10:00:00Z"},  # a required field
        {"whitelist": "SOMETIMES", "last_updated": "2026-03-02T10:00:00Z"},
    ],
)
def test_a_bad_patch_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        validate_token_patch(body)
