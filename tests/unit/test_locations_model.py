"""The Locations object model (mod_locations) and PATCH body validation."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.ocpi import locations
from schemas.ocpi.common import OcpiModel
from schemas.ocpi.locations import (
    Connector,
    EnergyMix,
    Evse,
    EvseStatus,
    EvseStatusPatch,
    EvseUid,
    Hours,
    Location,
    LocationId,
    PublishTokenType,
    validate_patch,
)
from schemas.ocpi.types import to_json

# mod_locations, "Example public charging location" (examples/location_example.json).
SPEC_LOCATION: dict[str, Any] = {
    "country_code": "BE",
    "party_id": "BEC",
    "id": "LOC1",
    "publish": True,
    "name": "Gent Zuid",
    "address": "F.Rooseveltlaan 3A",
    "city": "Gent",
    "postal_code": "9000",
    "country": "BEL",
    "coordinates": {"latitude": "51.047599", "longitude": "3.729944"},
    "parking_type": "ON_STREET",
    "evses": [
        {
            "uid": "3256",
            "evse_id": "BE*BEC*E041503001",
            "status": "AVAILABLE",
            "capabilities": ["RESERVABLE"],
            "connectors": [
                {
                    "id": "1",
                    "standard": "IEC_62196_T2",
                    "format": "CABLE",
                    "power_type": "AC_3_PHASE",
                    "max_voltage": 220,
                    "max_amperage": 16,
                    "tariff_ids": ["11"],
                    "last_updated": "2015-03-16T10:10:02Z",
                },
                {
                    "id": "2",
                    "standard": "IEC_62196_T2",
                    "format": "SOCKET",
                    "power_type": "AC_3_PHASE",
                    "max_voltage": 220,
                    "max_amperage": 16,
                    "tariff_ids": ["13"],
                    "last_updated": "2015-03-18T08:12:01Z",
                },
            ],
            "physical_reference": "1",
            "floor_level": "-1",
            "last_updated": "2015-06-28T08:12:01Z",
        },
        {
            "uid": "3257",
            "evse_id": "BE*BEC*E041503002",
            "status": "RESERVED",
            "capabilities": ["RESERVABLE"],
            "connectors": [
                {
                    "id": "1",
                    "standard": "IEC_62196_T2",
                    "format": "SOCKET",
                    "power_type": "AC_3_PHASE",
                    "max_voltage": 220,
                    "max_amperage": 16,
                    "tariff_ids": ["12"],
                    "last_updated": "2015-06-29T20:39:09Z",
                }
            ],
            "physical_reference": "2",
            "floor_level": "-2",
            "last_updated": "2015-06-29T20:39:09Z",
        },
    ],
    "operator": {"name": "BeCharged"},
    "time_zone": "Europe/Brussels",
    "last_updated": "2015-06-29T20:39:09Z",
}

# mod_locations, "Example charging location with limited visibility" (uc4).
SPEC_LIMITED_VISIBILITY: dict[str, Any] = {
    "country_code": "NL",
    "party_id": "ALL",
    "id": "f76c2e0c-a6ef-4f67-bf23-6a187e5ca0e0",
    "publish": False,
    "publish_allowed_to": [
        {"visual_number": "12345-67", "issuer": "NewMotion"},
        {"visual_number": "0055375624", "issuer": "ANWB"},
        {"uid": "12345678905880", "type": "RFID"},
    ],
    "name": "Water State",
    "address": "Taco van der Veenplein 12",
    "city": "Leeuwarden",
    "postal_code": "8923 EM",
    "country": "NLD",
    "coordinates": {"latitude": "53.213763", "longitude": "5.804638"},
    "parking_type": "UNDERGROUND_GARAGE",
    "evses": [
        {
            "uid": "8c1b3487-61ac-40a7-a367-21eee99dbd90",
            "evse_id": "NL*ALL*EGO0000013",
            "status": "AVAILABLE",
            "connectors": [
                {
                    "id": "1",
                    "standard": "IEC_62196_T2",
                    "format": "SOCKET",
                    "power_type": "AC_3_PHASE",
                    "max_voltage": 230,
                    "max_amperage": 16,
                    "last_updated": "2019-09-27T00:19:45Z",
                }
            ],
            "last_updated": "2019-09-27T00:19:45Z",
        }
    ],
    "time_zone": "Europe/Amsterdam",
    "last_updated": "2019-09-27T00:19:45Z",
}

# The spec's "Example charge point in a parking garage with opening hours",
# with every optional class of the module filled in on top, so that one
# round trip covers them all.
FULL_LOCATION: dict[str, Any] = {
    "country_code": "SE",
    "party_id": "EVC",
    "id": "cbb0df21-d17d-40ba-a4aa-dc588c8f98cb",
    "publish": True,
    "name": "P-Huset Leonard",
    "address": "Claesgatan 6",
    "city": "Malmö",
    "postal_code": "214 26",
    "state": "Skåne",
    "country": "SWE",
    "coordinates": {"latitude": "55.590325", "longitude": "13.008307"},
    "related_locations": [
        {
            "latitude": "55.5904000",
            "longitude": "13.0084000",
            "name": {"language": "sv", "text": "Infart Claesgatan"},
        }
    ],
    "parking_type": "PARKING_GARAGE",
    "evses": [
        {
            "uid": "eccb8dd9-4189-433e-b100-cc0945dd17dc",
            "evse_id": "SE*EVC*E000000123",
            "status": "AVAILABLE",
            "status_schedule": [
                {
                    "period_begin": "2017-04-01T00:00:00Z",
                    "period_end": "2017-04-02T00:00:00Z",
                    "status": "INOPERATIVE",
                }
            ],
            "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"],
            "connectors": [
                {
                    "id": "1",
                    "standard": "IEC_62196_T2",
                    "format": "SOCKET",
                    "power_type": "AC_3_PHASE",
                    "max_voltage": 230,
                    "max_amperage": 32,
                    "max_electric_power": 22000,
                    "tariff_ids": ["T1", "T2"],
                    "terms_and_conditions": "https://evc.example.se/terms",
                    "last_updated": "2017-03-07T02:21:22Z",
                }
            ],
            "floor_level": "-2",
            "coordinates": {"latitude": "55.5903100", "longitude": "13.0083200"},
            "physical_reference": "P2-17",
            "directions": [{"language": "en", "text": "Level -2, next to the lifts"}],
            "parking_restrictions": ["EV_ONLY", "PLUGGED"],
            "images": [
                {
                    "url": "https://evc.example.se/img/charger.jpg",
                    "thumbnail": "https://evc.example.se/img/charger-thumb.jpg",
                    "category": "CHARGER",
                    "type": "jpeg",
                    "width": 800,
                    "height": 600,
                }
            ],
            "last_updated": "2017-03-07T02:21:22Z",
        }
    ],
    "directions": [{"language": "sv", "text": "Infart från Claesgatan"}],
    "operator": {
        "name": "EV Charge",
        "website": "https://evc.example.se",
        "logo": {"url": "https://evc.example.se/logo.png", "category": "OPERATOR", "type": "png"},
    },
    "suboperator": {"name": "P-Huset"},
    "owner": {"name": "Malmö Stad"},
    "facilities": ["PARKING_LOT", "MALL", "WIFI"],
    "time_zone": "Europe/Stockholm",
    "opening_times": {
        "twentyfourseven": False,
        "regular_hours": [
            {"weekday": day, "period_begin": "07:00", "period_end": "18:00"} for day in range(1, 8)
        ],
        "exceptional_openings": [
            {"period_begin": "2017-06-21T09:00:00Z", "period_end": "2017-06-21T12:00:00Z"}
        ],
        "exceptional_closings": [
            {"period_begin": "2017-12-25T00:00:00Z", "period_end": "2017-12-26T00:00:00Z"}
        ],
    },
    "charging_when_closed": True,
    "images": [
        {"url": "https://evc.example.se/img/entrance.jpg", "category": "ENTRANCE", "type": "jpeg"}
    ],
    # mod_locations, EnergyMix "Complete" example.
    "energy_mix": {
        "is_green_energy": False,
        "energy_sources": [
            {"source": "GENERAL_GREEN", "percentage": 35.9},
            {"source": "GAS", "percentage": 6.3},
            {"source": "COAL", "percentage": 33.2},
            {"source": "GENERAL_FOSSIL", "percentage": 2.9},
            {"source": "NUCLEAR", "percentage": 21.7},
        ],
        "environ_impact": [
            {"category": "NUCLEAR_WASTE", "amount": 0.0006},
            {"category": "CARBON_DIOXIDE", "amount": 372},
        ],
        "supplier_name": "E.ON Energy Deutschland",
        "energy_product_name": "E.ON DirektStrom eco",
    },
    "last_updated": "2017-03-07T02:21:22Z",
}


def bad(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``doc`` with the value at ``path`` replaced (or, for the
    ``DELETE`` sentinel, removed)."""
    out = copy.deepcopy(doc)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


DELETE = object()


# ---------------------------------------------------------------- accepted


@pytest.mark.parametrize("doc", [SPEC_LOCATION, SPEC_LIMITED_VISIBILITY, FULL_LOCATION])
def test_spec_locations_validate_and_round_trip(doc: dict[str, Any]) -> None:
    location = Location.model_validate(doc)
    assert to_json(location) == doc  # dict equality ignores key order
    assert location.model_dump(mode="json", exclude_none=True) == doc


def test_the_model_keeps_the_values_typed() -> None:
    location = Location.model_validate(SPEC_LOCATION)
    assert location.evses is not None
    evse = location.evses[1]
    assert evse.status is EvseStatus.RESERVED
    assert evse.connectors[0].standard is locations.ConnectorType.IEC_62196_T2
    assert location.last_updated == datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)
    assert location.operator == locations.BusinessDetails(name="BeCharged")


@pytest.mark.parametrize(
    "hours",
    [
        # mod_locations, the three Hours examples.
        {
            "twentyfourseven": True,
            "exceptional_closings": [
                {"period_begin": "2018-12-25T03:00:00Z", "period_end": "2018-12-25T05:00:00Z"}
            ],
        },
        {
            "twentyfourseven": False,
            "regular_hours": [
                {"weekday": 1, "period_begin": "01:00", "period_end": "06:00"},
                {"weekday": 2, "period_begin": "01:00", "period_end": "06:00"},
            ],
            "exceptional_closings": [
                {"period_begin": "2018-12-25T03:00:00Z", "period_end": "2018-12-25T05:00:00Z"}
            ],
        },
        {
            "twentyfourseven": False,
            "regular_hours": [
                {"weekday": 1, "period_begin": "00:00", "period_end": "04:00"},
                {"weekday": 2, "period_begin": "00:00", "period_end": "04:00"},
            ],
            "exceptional_openings": [
                {"period_begin": "2018-12-25T05:00:00Z", "period_end": "2018-12-25T06:00:00Z"}
            ],
        },
    ],
)
def test_spec_hours_examples(hours: dict[str, Any]) -> None:
    assert to_json(Hours.model_validate(hours)) == hours


@pytest.mark.parametrize(
    "mix",
    [
        {"is_green_energy": True},
        {
            "is_green_energy": True,
            "supplier_name": "Greenpeace Energy eG",
            "energy_product_name": "eco-power",
        },
    ],
)
def test_spec_energy_mix_examples(mix: dict[str, Any]) -> None:
    assert to_json(EnergyMix.model_validate(mix)) == mix


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("id",), "x" * 36),  # CiString(36) at its limit
        (("coordinates",), {"latitude": "-33.8688197", "longitude": "-151.2092955"}),
        (("coordinates",), {"latitude": "0.00000", "longitude": "180.0000000"}),
        (("address",), "a" * 255),  # string(255) per the 2.2.1 errata
        (("state",), "s" * 45),  # string(45) per the 2.2.1 errata
        (("name",), "Gent Zuid ⚡ Laadpaal"),  # string: printable UTF-8
        (("time_zone",), "America/Argentina/Buenos_Aires"),
        (("time_zone",), "Etc/GMT+1"),
        (("last_updated",), "2015-06-29T20:39:09"),  # no designator: UTC
        (("evses", 0, "connectors", 0, "last_updated"), "2016-12-29T17:45:09.2Z"),
        (("evses", 1, "uid"), "3256-B"),
        (("evses",), []),  # "*": an empty list is allowed
        (("evses", 0, "connectors", 0, "standard"), "IEC_60309_2_single_16"),
    ],
)
def test_accepts_edge_values(path: tuple[Any, ...], value: Any) -> None:
    Location.model_validate(bad(SPEC_LOCATION, path, value))


def test_timestamps_are_stored_in_canonical_form() -> None:
    doc = bad(SPEC_LOCATION, ("last_updated",), "2015-06-29T20:39:09")
    assert to_json(Location.model_validate(doc))["last_updated"] == "2015-06-29T20:39:09Z"


def test_existing_names_still_work() -> None:
    assert locations.Status is EvseStatus
    assert (
        EvseStatusPatch.model_validate(
            {"status": "CHARGING", "last_updated": "2019-06-24T12:39:09Z"}
        ).status
        is EvseStatus.CHARGING
    )
    assert LocationId is not None and EvseUid is not None


def test_enums_hold_every_spec_value() -> None:
    # Counts of the value tables in mod_locations (and mod_tokens for TokenType).
    counts = {
        locations.Capability: 13,
        locations.ConnectorFormat: 2,
        locations.ConnectorType: 40,
        locations.EnergySourceCategory: 8,
        locations.EnvironmentalImpactCategory: 2,
        locations.Facility: 20,
        locations.ImageCategory: 7,
        locations.ParkingRestriction: 5,
        locations.ParkingType: 6,
        locations.PowerType: 5,
        locations.Status: 9,
        locations.TokenType: 4,
    }
    for enum, count in counts.items():
        assert len(enum) == count, enum


# ---------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("path", "value"),
    [
        # identifiers and codes
        (("id",), "x" * 37),  # CiString(36)
        (("id",), ""),
        (("id",), "LOC\n1"),  # CiString: printable ASCII
        (("evses", 0, "uid"), "u" * 37),
        (("evses", 0, "evse_id"), "E" * 49),  # CiString(48)
        (("evses", 0, "connectors", 0, "id"), "c" * 37),
        (("evses", 0, "connectors", 0, "tariff_ids"), ["t" * 37]),
        (("country_code",), "BEL"),
        (("party_id",), "BE"),
        (("country",), "BE"),  # ISO 3166-1 alpha-3
        (("country",), "bel"),
        # strings
        (("name",), "n" * 256),  # string(255)
        (("name",), "Gent\tZuid"),  # string: no control characters
        (("city",), "c" * 46),  # string(45)
        (("postal_code",), "p" * 11),  # string(10)
        (("evses", 0, "floor_level"), "-1000"),  # string(4)
        (("evses", 0, "physical_reference"), 1),  # a string, not a number
        (("time_zone",), "Europe Brussels"),
        # coordinates: GeoLocation regexes and WGS 84 range
        (("coordinates", "latitude"), "51.0475"),  # fewer than 5 decimals
        (("coordinates", "latitude"), "51.04759999"),  # more than 7
        (("coordinates", "latitude"), "151.047599"),  # 3 integer digits
        (("coordinates", "latitude"), "91.000000"),
        (("coordinates", "latitude"), "51,047599"),
        (("coordinates", "latitude"), 51.047599),  # a string in OCPI
        (("coordinates", "longitude"), "1800.00000"),
        (("coordinates", "longitude"), "-180.000001"),
        (("coordinates",), {"latitude": "51.047599"}),
        # enums: unknown or differently cased values
        (("evses", 0, "status"), "BROKEN"),
        (("evses", 0, "status"), "available"),
        (("evses", 0, "connectors", 0, "standard"), "TYPE_2"),
        (("evses", 0, "connectors", 0, "format"), "PLUG"),
        (("evses", 0, "capabilities"), ["TELEPORT"]),
        (("parking_type",), "ON_ROOF"),
        (("facilities",), ["CASINO"]),
        # "+" lists
        (("evses", 0, "connectors"), []),
        (("evses", 0, "connectors"), DELETE),
        # required fields
        (("address",), DELETE),
        (("time_zone",), DELETE),
        (("last_updated",), DELETE),
        (("evses", 0, "status"), DELETE),
        (("evses", 0, "connectors", 0, "max_voltage"), DELETE),
        (("address",), None),
        # numeric and boolean types: no coercion
        (("evses", 0, "connectors", 0, "max_voltage"), "220"),
        (("evses", 0, "connectors", 0, "max_voltage"), 220.5),
        (("evses", 0, "connectors", 0, "max_amperage"), True),
        (("evses", 0, "connectors", 0, "max_amperage"), -1),
        (("publish",), "true"),
        (("publish",), 1),
        # URLs
        (("operator", "website"), "evc.example.se"),
        (("operator", "website"), "/relative/path"),
        (("operator", "website"), "https://example.com/a b"),
        (("operator", "website"), "https://example.com/" + "a" * 240),  # URL: string(255)
        # timestamps: RFC 3339 in UTC
        (("last_updated",), "2015-06-29T20:39:09+02:00"),
        (("last_updated",), "2015-06-29 20:39:09Z"),
        (("last_updated",), 1435610349),
        (("evses", 0, "last_updated"), "29/06/2015"),
        # unknown fields, at every level
        (("rating",), 5),
        (("evses", 0, "floor"), -1),
        (("evses", 0, "connectors", 0, "voltage"), 220),
        (("coordinates", "altitude"), "3.5"),
        (("operator", "phone"), "+32 9 000 00 00"),
        # identity within the Location: EVSE uids, then Connector ids per EVSE
        (("evses", 1, "uid"), "3256"),
        (("evses", 0, "connectors", 1, "id"), "1"),
        # Location.publish_allowed_to only when publish is false
        (("publish_allowed_to",), [{"uid": "X", "type": "RFID"}]),
    ],
)
def test_refuses_invalid_locations(path: tuple[Any, ...], value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        Location.model_validate(bad(SPEC_LOCATION, path, value))
    # Refused for the field we broke (or the list / object holding it), not
    # for something else.
    for error in caught.value.errors():
        loc = error["loc"]
        assert loc == path[: len(loc)] or path == loc[: len(path)], (loc, path)


def test_evse_uids_are_unique_case_insensitively() -> None:
    doc = bad(SPEC_LOCATION, ("evses", 0, "uid"), "ab-1")
    doc = bad(doc, ("evses", 1, "uid"), "AB-1")
    with pytest.raises(ValidationError, match="share the uid"):
        Location.model_validate(doc)


def test_error_names_the_offending_field() -> None:
    doc = bad(SPEC_LOCATION, ("evses", 1, "connectors", 0, "standard"), "TYPE_2")
    with pytest.raises(ValidationError) as caught:
        Location.model_validate(doc)
    assert [e["loc"] for e in caught.value.errors()] == [("evses", 1, "connectors", 0, "standard")]


def test_the_spec_add_evse_example_is_not_a_valid_evse() -> None:
    # mod_locations, "Example: add an EVSE" sends `floor` (not a field),
    # `physical_reference` as a number and Connectors without power_type,
    # max_voltage, max_amperage and last_updated: we refuse it, as a strict
    # Receiver must.
    example = {
        "uid": "3256",
        "evse_id": "BE*BEC*E041503003",
        "status": "AVAILABLE",
        "capabilities": ["RESERVABLE"],
        "connectors": [
            {"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "tariff_ids": ["14"]}
        ],
        "floor": -1,
        "physical_reference": 3,
        "last_updated": "2019-06-24T12:39:09Z",
    }
    with pytest.raises(ValidationError) as caught:
        Evse.model_validate(example)
    assert {e["loc"] for e in caught.value.errors()} >= {
        ("floor",),
        ("physical_reference",),
        ("connectors", 0, "power_type"),
    }


@pytest.mark.parametrize(
    "hours",
    [
        {"twentyfourseven": False},  # needs regular_hours
        {"twentyfourseven": False, "regular_hours": []},
        {
            "twentyfourseven": True,
            "regular_hours": [{"weekday": 1, "period_begin": "08:00", "period_end": "20:00"}],
        },
        {
            "twentyfourseven": False,
            "regular_hours": [{"weekday": 0, "period_begin": "08:00", "period_end": "20:00"}],
        },
        {
            "twentyfourseven": False,
            "regular_hours": [{"weekday": 8, "period_begin": "08:00", "period_end": "20:00"}],
        },
        {
            "twentyfourseven": False,
            "regular_hours": [{"weekday": 1, "period_begin": "8:00", "period_end": "20:00"}],
        },
        {
            "twentyfourseven": False,
            "regular_hours": [{"weekday": 1, "period_begin": "08:00", "period_end": "24:00"}],
        },
        {
            "twentyfourseven": False,
            "regular_hours": [{"weekday": 1, "period_begin": "20:00", "period_end": "08:00"}],
        },
        {
            "twentyfourseven": False,
            "regular_hours": [{"weekday": 1, "period_begin": "08:00", "period_end": "08:00"}],
        },
        {"twentyfourseven": "yes"},
    ],
)
def test_refuses_invalid_hours(hours: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Hours.model_validate(hours)


@pytest.mark.parametrize(
    "token",
    [
        {},  # one of uid, visual_number, group_id
        {"type": "RFID", "issuer": "ANWB"},
        {"uid": "12345678905880"},  # uid needs type
        {"visual_number": "12345-67"},  # visual_number needs issuer
        {"uid": "12345678905880", "type": "CARD"},
    ],
)
def test_refuses_invalid_publish_tokens(token: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PublishTokenType.model_validate(token)


def test_publish_token_with_group_only_is_enough() -> None:
    assert to_json(PublishTokenType.model_validate({"group_id": "DEPOT-7"})) == {
        "group_id": "DEPOT-7"
    }


@pytest.mark.parametrize(
    ("model", "doc"),
    [
        (locations.EnergySource, {"source": "SOLAR", "percentage": 100.5}),
        (locations.EnergySource, {"source": "SOLAR", "percentage": "50"}),
        (locations.EnvironmentalImpact, {"category": "CARBON_DIOXIDE", "amount": -1}),
        (locations.Image, {"url": "https://x.example/a.png", "category": "LOGO", "type": "png"}),
        (locations.Image, {"url": "https://x.example/a.png", "category": "OTHER", "type": "jpeg2"}),
        (
            locations.Image,
            {"url": "https://x.example/a.png", "category": "OTHER", "type": "png", "width": 100000},
        ),
        (locations.DisplayText, {"language": "eng", "text": "hello"}),
        (locations.DisplayText, {"language": "en", "text": "x" * 513}),
        (locations.StatusSchedule, {"period_begin": "2020-01-01T00:00:00Z", "status": "GONE"}),
        (locations.ExceptionalPeriod, {"period_begin": "2020-01-01T00:00:00Z"}),
    ],
)
def test_refuses_invalid_data_types(model: type[OcpiModel], doc: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(doc)


def test_models_are_frozen() -> None:
    connector = Connector.model_validate(SPEC_LOCATION["evses"][0]["connectors"][0])
    with pytest.raises(ValidationError):
        connector.max_voltage = 400  # type: ignore[misc]


# ---------------------------------------------------------------- PATCH bodies


@pytest.mark.parametrize(
    ("target", "body"),
    [
        # mod_locations, the four PATCH examples.
        (Evse, {"status": "CHARGING", "last_updated": "2019-06-24T12:39:09Z"}),
        (Location, {"name": "Interparking Gent Zuid", "last_updated": "2019-06-24T12:39:09Z"}),
        (Connector, {"tariff_ids": ["15"], "last_updated": "2019-06-24T12:39:09Z"}),
        (Evse, {"status": "REMOVED", "last_updated": "2019-06-24T12:39:09Z"}),
    ],
)
def test_spec_patch_examples_validate(target: Any, body: dict[str, Any]) -> None:
    patch = validate_patch(target, body)
    assert dict(patch.values) == body
    assert patch.cleared == frozenset()
    assert patch.last_updated == datetime(2019, 6, 24, 12, 39, 9, tzinfo=UTC)
    assert patch.to_json() == body


def test_patch_null_on_an_optional_field_clears_it() -> None:
    patch = validate_patch(
        Evse,
        {
            "evse_id": None,
            "floor_level": None,
            "status": "REMOVED",
            "last_updated": "2019-06-24T12:39:09",
        },
    )
    assert patch.cleared == {"evse_id", "floor_level"}
    assert dict(patch.values) == {"status": "REMOVED", "last_updated": "2019-06-24T12:39:09Z"}
    assert patch.to_json() == {
        "status": "REMOVED",
        "last_updated": "2019-06-24T12:39:09Z",
        "evse_id": None,
        "floor_level": None,
    }


def test_patch_values_are_read_only_and_to_json_is_a_copy() -> None:
    patch = validate_patch(
        Connector, {"tariff_ids": ["15"], "last_updated": "2019-06-24T12:39:09Z"}
    )
    with pytest.raises(TypeError):
        patch.values["tariff_ids"] = []  # type: ignore[index]
    body = patch.to_json()
    body["tariff_ids"].append("16")
    assert patch.values["tariff_ids"] == ["15"]


def test_patch_nested_objects_are_validated_whole() -> None:
    patch = validate_patch(
        Location,
        {
            "coordinates": {"latitude": "51.047599", "longitude": "3.729944"},
            "operator": {"name": "BeCharged", "website": "https://becharged.example"},
            "opening_times": {"twentyfourseven": True},
            "last_updated": "2019-06-24T12:39:09Z",
        },
    )
    assert patch.values["operator"] == {"name": "BeCharged", "website": "https://becharged.example"}
    with pytest.raises(ValidationError) as caught:
        validate_patch(
            Location,
            {"coordinates": {"latitude": "51.047599"}, "last_updated": "2019-06-24T12:39:09Z"},
        )
    assert caught.value.errors()[0]["loc"] == ("coordinates", "longitude")


def test_patch_without_last_updated_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_patch(Evse, {"status": "CHARGING"})
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [
        (("last_updated",), "missing")
    ]


@pytest.mark.parametrize(
    ("target", "body", "offending"),
    [
        (Evse, {"status": None}, {("status",)}),  # required: cannot be cleared
        (Location, {"coordinates": None, "address": None}, {("coordinates",), ("address",)}),
        (Connector, {"max_voltage": None}, {("max_voltage",)}),
        (Evse, {"connectors": None}, {("connectors",)}),
        (Evse, {"connectors": []}, {("connectors",)}),  # "+"
        (Evse, {"status": "BROKEN"}, {("status",)}),
        (Evse, {"floor": "-1"}, {("floor",)}),  # unknown field
        (Location, {"id": "x" * 37}, {("id",)}),
        (
            Location,
            {"coordinates": {"latitude": "99.0", "longitude": "3.729944"}},
            {("coordinates", "latitude")},
        ),
        (Connector, {"max_voltage": "230"}, {("max_voltage",)}),
        (Location, {"last_updated": None}, {("last_updated",)}),
        (Evse, {"last_updated": "2019-06-24T12:39:09+02:00"}, {("last_updated",)}),
    ],
)
def test_patch_refusals_list_every_offending_field(
    target: Any, body: dict[str, Any], offending: set[tuple[Any, ...]]
) -> None:
    body = {"last_updated": "2019-06-24T12:39:09Z", **body}
    with pytest.raises(ValidationError) as caught:
        validate_patch(target, body)
    assert {e["loc"] for e in caught.value.errors()} == offending


def test_patch_null_on_required_has_a_clear_message() -> None:
    with pytest.raises(ValidationError, match="required field cannot be cleared"):
        validate_patch(Evse, {"status": None, "last_updated": "2019-06-24T12:39:09Z"})


def test_patch_body_must_be_an_object() -> None:
    with pytest.raises(ValidationError):
        validate_patch(Evse, ["status", "CHARGING"])


def test_patch_lists_keep_their_item_rules() -> None:
    with pytest.raises(ValidationError, match="share the id"):
        validate_patch(
            Evse,
            {
                "connectors": [
                    SPEC_LOCATION["evses"][0]["connectors"][0],
                    {**SPEC_LOCATION["evses"][0]["connectors"][1], "id": "1"},
                ],
                "last_updated": "2019-06-24T12:39:09Z",
            },
        )
