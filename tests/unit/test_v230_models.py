"""The OCPI 2.3.0 wire models (schemas/ocpi/v230): new fields, open enums,
the new Price, liberal input, exact output. Objects written for these
tests (our ids), following the v2.3.0 tables."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.ocpi.common import unknown_fields
from schemas.ocpi.locations import ConnectorType
from schemas.ocpi.tariffs import exact_numbers, loads_exact
from schemas.ocpi.types import to_json
from schemas.ocpi.v230.cdrs import cdr_from_json
from schemas.ocpi.v230.credentials import Credentials
from schemas.ocpi.v230.locations import Location, VehicleType
from schemas.ocpi.v230.tariffs import TaxIncluded, tariff_from_json
from schemas.ocpi.v230.types import Price, Role

AT = "2025-03-01T10:00:00Z"


def location_230() -> dict[str, Any]:
    return {
        "country_code": "NL",
        "party_id": "V23",
        "id": "LOC-230",
        "publish": True,
        "address": "Kade 1",
        "city": "Utrecht",
        "country": "NLD",
        "coordinates": {"latitude": "52.090737", "longitude": "5.121420"},
        "parking_type": "PARKING_LOT",
        "evses": [
            {
                "uid": "E1",
                "status": "AVAILABLE",
                "capabilities": ["RFID_READER", "ISO_15118_PNC_FUTURE"],
                "connectors": [
                    {
                        "id": "1",
                        "standard": "MCS",
                        "format": "CABLE",
                        "power_type": "DC",
                        "max_voltage": 1000,
                        "max_amperage": 3000,
                        "capabilities": ["ISO_15118_20_PLUG_AND_CHARGE"],
                        "last_updated": AT,
                    }
                ],
                "parking_restrictions": ["EV_ONLY", "TAXIS"],
                "parking": [{"parking_id": "P1", "evse_position": "LEFT"}, "p2"],
                "accepted_service_providers": ["Some eMSP"],
                "last_updated": AT,
            }
        ],
        "parking_places": [
            {
                "id": "P1",
                "vehicle_types": ["PERSONAL_VEHICLE", "DISABLED"],
                "max_vehicle_weight": 3500,
                "parking_space_width": 350.5,
                "direction": "PERPENDICULAR",
                "restricted_to_type": False,
                "reservation_required": False,
                "roofed": True,
            },
            {
                "id": "P2",
                "vehicle_types": ["HOVERCRAFT"],
                "restricted_to_type": True,
                "reservation_required": True,
                "time_limit": 120,
            },
        ],
        "facilities": ["CAFE", "EV_LOUNGE"],
        "time_zone": "Europe/Amsterdam",
        "help_phone": "+31301234567",
        "last_updated": AT,
    }


def test_a_location_with_2_3_0_fields_is_read_and_written_back_unchanged() -> None:
    body = location_230()
    location = Location.model_validate(copy.deepcopy(body))
    assert to_json(location) == body
    assert unknown_fields(location) == []
    assert location.parking_places is not None
    assert location.parking_places[0].vehicle_types == [
        VehicleType.PERSONAL_VEHICLE,
        VehicleType.DISABLED,
    ]
    # A value the spec does not list is kept as its string.
    assert location.parking_places[1].vehicle_types == ["HOVERCRAFT"]
    assert location.evses is not None
    assert location.evses[0].connectors[0].standard == "MCS"
    assert not isinstance(location.evses[0].connectors[0].standard, ConnectorType)


@pytest.mark.parametrize(
    ("path", "value", "why"),
    [
        (("evses", 0, "parking", 1), "P9", "not among the Location's parking_places"),
        (("parking_places", 1, "id"), "p1", "share the id"),
        (("parking_places", 0, "vehicle_types"), [], "at least 1"),
        (("evses", 0, "connectors", 0, "standard"), "", "printable ASCII"),
        (("evses", 0, "connectors", 0, "standard"), 7, "must be a string"),
        (("facilities", 0), "CAFÉ", "printable ASCII"),
        (("help_phone",), "0" * 26, "at most 25"),
        (("parking_places", 0, "direction"), "DIAGONAL", "PARALLEL"),  # a closed enum
    ],
)
def test_what_2_3_0_does_not_allow_is_refused(path: tuple[Any, ...], value: Any, why: str) -> None:
    body = location_230()
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValidationError, match=why):
        Location.model_validate(body)


def test_unknown_fields_are_kept_at_every_level() -> None:
    body = location_230()
    body["x_site_code"] = "A-7"
    body["parking_places"][0]["x_surface"] = "gravel"
    location = Location.model_validate(body)
    assert sorted(unknown_fields(location)) == ["parking_places[0].x_surface", "x_site_code"]
    assert to_json(location) == body


def tariff_230(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "country_code": "DE",
        "party_id": "V23",
        "id": "T-230",
        "currency": "EUR",
        "min_price": {"before_taxes": Decimal("0.50"), "after_taxes": Decimal("0.55")},
        "max_price": {"before_taxes": 10},
        "preauthorize_amount": 25,
        "elements": [
            {
                "price_components": [
                    {"type": "ENERGY", "price": Decimal("0.25"), "vat": 10, "step_size": 1}
                ]
            }
        ],
        "tax_included": "NO",
        "last_updated": AT,
    }
    body.update(fields)
    return body


def test_a_tariff_with_tax_included_and_price_limits() -> None:
    from schemas.ocpi.tariffs import dumps_exact

    body = tariff_230()
    tariff = tariff_from_json(dumps_exact(body))
    assert tariff.tax_included is TaxIncluded.NO
    assert tariff.min_price is not None and tariff.min_price.after_taxes == Decimal("0.55")
    assert exact_numbers(to_json(tariff)) == exact_numbers(loads_exact(dumps_exact(body)))
    assert tariff_from_json(dumps_exact(tariff_230(tax_included="N/A"))).tax_included is (
        TaxIncluded.NOT_APPLICABLE
    )


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"tax_included": "MAYBE"}, "YES"),
        ({"min_price": {"before_taxes": 11}}, "min_price.before_taxes is above"),
        ({"min_price": {"after_taxes": 1}}, "before_taxes"),
        ({"max_price": {"before_taxes": -1}}, "greater than or equal to 0"),
    ],
)
def test_bad_tariffs_are_refused(fields: dict[str, Any], why: str) -> None:
    from schemas.ocpi.tariffs import dumps_exact

    with pytest.raises(ValidationError, match=why):
        tariff_from_json(dumps_exact(tariff_230(**fields)))


def test_a_tariff_without_tax_included_is_accepted_and_read_as_before_taxes() -> None:
    # The spec's own CDR example embeds a Tariff without the field.
    from schemas.ocpi.tariffs import dumps_exact

    body = tariff_230()
    del body["tax_included"]
    assert tariff_from_json(dumps_exact(body)).tax_included is None


def test_price_before_taxes_and_a_list_of_taxes() -> None:
    price = Price.model_validate(
        loads_exact(
            '{"before_taxes": 4.00, "taxes": [{"name": "GST", "percentage": 5, "amount": 0.20},'
            ' {"name": "QST", "account_number": "1234567890TQ0001", "percentage": 9.975,'
            ' "amount": 0.399}]}'
        )
    )
    assert price.after_taxes() == Decimal("4.599")
    assert Price(before_taxes=Decimal(1)).after_taxes() is None
    with pytest.raises(ValidationError, match="amount"):
        Price.model_validate({"before_taxes": 1, "taxes": [{"name": "VAT"}]})
    with pytest.raises(ValidationError, match=r"before_taxes"):
        Price.model_validate({"excl_vat": 1, "incl_vat": 2})  # a 2.2.1 Price


def test_a_cdr_in_2_3_0_form() -> None:
    cdr = cdr_from_json(
        '{"country_code": "BE", "party_id": "V23", "id": "CDR-1",'
        ' "start_date_time": "2025-03-01T10:00:00Z", "end_date_time": "2025-03-01T11:00:00Z",'
        ' "cdr_token": {"country_code": "DE", "party_id": "EMS", "uid": "U1", "type": "CAR_KEY",'
        ' "contract_id": "C1"}, "auth_method": "WHITELIST",'
        ' "cdr_location": {"id": "L1", "address": "A 1", "city": "B", "country": "BEL",'
        ' "coordinates": {"latitude": "51.047599", "longitude": "3.729944"}, "evse_uid": "E1",'
        ' "evse_id": "BE*V23*E1", "connector_id": "1", "connector_standard": "SAE_J3400",'
        ' "connector_format": "CABLE", "connector_power_type": "DC"}, "currency": "EUR",'
        ' "charging_periods": [{"start_date_time": "2025-03-01T10:00:00Z",'
        ' "dimensions": [{"type": "TIME", "volume": 1}]}],'
        ' "total_cost": {"before_taxes": 4.00, "taxes": [{"name": "VAT", "amount": 0.40}]},'
        ' "total_energy": 15.342, "total_time": 1, "last_updated": "2025-03-01T11:00:01Z"}'
    )
    assert cdr.total_cost.after_taxes() == Decimal("4.40")
    assert cdr.cdr_token.type == "CAR_KEY"
    assert cdr.cdr_location.connector_standard == "SAE_J3400"


def test_credentials_with_hub_party_id() -> None:
    body = {
        "token": "abc",
        "url": "https://hub.example.com/ocpi/versions",
        "hub_party_id": "NLHUB",
        "roles": [
            {
                "role": "CPO",
                "party_id": "ABC",
                "country_code": "NL",
                "business_details": {"name": "A"},
            }
        ],
    }
    credentials = Credentials.model_validate(body)
    assert credentials.hub_party_id == "NLHUB"
    assert credentials.roles[0].role is Role.CPO
    with pytest.raises(ValidationError, match="hub_party_id"):
        Credentials.model_validate({**body, "hub_party_id": "NL-HUB"})
