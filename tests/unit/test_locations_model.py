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
from tests.ocpi_objects import connector, evse, location

# Test data written for this project (no copies of the spec's examples).

EVSE_A = "KS-0117-1"  # first EVSE of KERB_LOCATION
EVSE_B = "KS-0117-2"  # second EVSE of KERB_LOCATION
PATCHED_AT = "2026-03-02T09:05:17Z"  # newer than anything in KERB_LOCATION


def kerb_location() -> dict[str, Any]:
    """A published kerbside Location with two EVSEs, as the tests below need
    it: EVSE_A has Connectors "1" (CABLE) and "2" (SOCKET), each with its
    own tariff and time stamp; EVSE_B is RESERVED and has one Connector "1";
    both EVSEs are RESERVABLE; the operator has a name only; no ``state``."""
    return location(
        "KS-0117",
        country_code="DE",
        party_id="OHB",
        at="2026-02-08T18:23:41Z",
        name="Ahnepark Nord",
        address="Wolfhager Straße 214",
        city="Kassel",
        postal_code="34127",
        country="DEU",
        coordinates={"latitude": "51.332417", "longitude": "9.468853"},
        parking_type="ON_STREET",
        operator={"name": "Fuldastrom Laden"},
        time_zone="Europe/Berlin",
        evses=[
            evse(
                EVSE_A,
                at="2026-01-19T11:47:05Z",
                evse_id="DE*OHB*E0117*1",
                capabilities=["RFID_READER", "RESERVABLE"],
                connectors=[
                    connector(
                        "1",
                        at="2025-11-03T07:14:52Z",
                        format="CABLE",
                        tariff_ids=["KS-AC-DAY"],
                    ),
                    connector(
                        "2",
                        at="2025-11-05T16:02:30Z",
                        power_type="AC_1_PHASE",
                        max_amperage=16,
                        tariff_ids=["KS-AC-SLOW"],
                    ),
                ],
                physical_reference="A",
                floor_level="0",
            ),
            evse(
                EVSE_B,
                "RESERVED",
                at="2026-02-08T18:23:41Z",
                evse_id="DE*OHB*E0117*2",
                capabilities=["RESERVABLE"],
                connectors=[connector("1", at="2026-02-08T18:23:41Z", tariff_ids=["KS-AC-DAY"])],
                physical_reference="B",
                floor_level="0",
            ),
        ],
    )


def limited_visibility_location() -> dict[str, Any]:
    """Not published to everyone (publish false), but to the drivers that
    ``publish_allowed_to`` names, by visual number and issuer, by RFID uid
    and by group."""
    at = "2025-09-14T05:31:08Z"
    return location(
        "350dee4e-de62-4ab2-b810-263339a4acc5",
        country_code="NL",
        party_id="DPT",
        at=at,
        publish=False,
        publish_allowed_to=[
            {"visual_number": "DPT-4471-09", "issuer": "Depotpas Noord"},
            {"uid": "04A2F9C1D3E580", "type": "RFID"},
            {"group_id": "DEPOT-STAFF-3"},
        ],
        name="Busdepot Hoogkerk",
        address="Energieweg 31",
        city="Groningen",
        postal_code="9745 AB",
        country="NLD",
        coordinates={"latitude": "53.208841", "longitude": "6.507622"},
        parking_type="PARKING_LOT",
        evses=[evse("9dff5d84-e36b-4eec-9021-8a53116f7857", at=at, evse_id="NL*DPT*E31001")],
        time_zone="Europe/Amsterdam",
    )


def complete_energy_mix() -> dict[str, Any]:
    """An EnergyMix with every field: several sources, both environmental
    impact categories, supplier and product."""
    return {
        "is_green_energy": False,
        "energy_sources": [
            {"source": "WIND", "percentage": 41.5},
            {"source": "SOLAR", "percentage": 12.25},
            {"source": "WATER", "percentage": 3.75},
            {"source": "GAS", "percentage": 24.0},
            {"source": "NUCLEAR", "percentage": 18.5},
        ],
        "environ_impact": [
            {"category": "CARBON_DIOXIDE", "amount": 214},
            {"category": "NUCLEAR_WASTE", "amount": 0.00041},
        ],
        "supplier_name": "Stadtwerk Lendkai",
        "energy_product_name": "Lendkai Mischstrom 2026",
    }


def period(begin: str, end: str) -> dict[str, str]:
    return {"period_begin": begin, "period_end": end}


def regular_hours(days: range | list[int], begin: str, end: str) -> list[dict[str, Any]]:
    return [{"weekday": day, "period_begin": begin, "period_end": end} for day in days]


def full_location() -> dict[str, Any]:
    """A Location in a parking garage with opening hours, with every optional
    class of the module filled in, so that one round trip covers them all."""
    at = "2026-04-11T13:52:36Z"
    site = "https://parkdeck-lendkai.example"
    return location(
        "fe470076-e1b0-4c79-bf3e-fe8d675b09ba",
        country_code="AT",
        party_id="GRZ",
        at=at,
        name="Parkdeck Lendkai",
        address="Lendkai 47",
        city="Graz",
        postal_code="8020",
        state="Steiermark",
        country="AUT",
        coordinates={"latitude": "47.074215", "longitude": "15.431872"},
        related_locations=[
            {
                "latitude": "47.0744100",
                "longitude": "15.4316300",
                "name": {"language": "de", "text": "Zufahrt Lendkai"},
            }
        ],
        parking_type="PARKING_GARAGE",
        evses=[
            evse(
                "GRZ-LK-01",
                at=at,
                evse_id="AT*GRZ*E4701",
                status_schedule=[
                    {**period("2026-05-04T06:00:00Z", "2026-05-04T14:00:00Z"), "status": "BLOCKED"}
                ],
                capabilities=["CREDIT_CARD_PAYABLE", "REMOTE_START_STOP_CAPABLE"],
                connectors=[
                    connector(
                        "1",
                        at=at,
                        standard="IEC_62196_T2_COMBO",
                        format="CABLE",
                        power_type="DC",
                        max_voltage=500,
                        max_amperage=100,
                        max_electric_power=50000,
                        tariff_ids=["GRZ-DC", "GRZ-DC-ABO"],
                        terms_and_conditions=f"{site}/agb",
                    )
                ],
                floor_level="3",
                coordinates={"latitude": "47.0742630", "longitude": "15.4317940"},
                physical_reference="D3-05",
                directions=[{"language": "de", "text": "Ebene 3, gleich nach der Rampe links"}],
                parking_restrictions=["EV_ONLY", "CUSTOMERS"],
                images=[
                    {
                        "url": f"{site}/bilder/ladesaeule.png",
                        "thumbnail": f"{site}/bilder/ladesaeule-klein.png",
                        "category": "CHARGER",
                        "type": "png",
                        "width": 1024,
                        "height": 768,
                    }
                ],
            )
        ],
        directions=[{"language": "en", "text": "Enter from Lendkai, charging on level 3"}],
        operator={
            "name": "Lendkai Parken",
            "website": site,
            "logo": {"url": f"{site}/logo.gif", "category": "OPERATOR", "type": "gif"},
        },
        suboperator={"name": "Grazer Ladedienst"},
        owner={"name": "Lendkai Immobilien"},
        facilities=["SUPERMARKET", "CAFE", "TRAM_STOP"],
        time_zone="Europe/Vienna",
        opening_times={
            "twentyfourseven": False,
            "regular_hours": regular_hours(range(1, 7), "06:00", "23:00"),
            "exceptional_openings": [period("2026-05-10T08:00:00Z", "2026-05-10T16:00:00Z")],
            "exceptional_closings": [period("2026-08-15T00:00:00Z", "2026-08-16T00:00:00Z")],
        },
        charging_when_closed=False,
        images=[{"url": f"{site}/bilder/einfahrt.jpg", "category": "ENTRANCE", "type": "jpeg"}],
        energy_mix=complete_energy_mix(),
    )


KERB_LOCATION: dict[str, Any] = kerb_location()
LIMITED_VISIBILITY_LOCATION: dict[str, Any] = limited_visibility_location()
FULL_LOCATION: dict[str, Any] = full_location()


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


@pytest.mark.parametrize("doc", [KERB_LOCATION, LIMITED_VISIBILITY_LOCATION, FULL_LOCATION])
def test_locations_validate_and_round_trip(doc: dict[str, Any]) -> None:
    location = Location.model_validate(doc)
    assert to_json(location) == doc  # dict equality ignores key order
    assert location.model_dump(mode="json", exclude_none=True) == doc


def test_the_model_keeps_the_values_typed() -> None:
    location = Location.model_validate(KERB_LOCATION)
    assert location.evses is not None
    evse = location.evses[1]
    assert evse.status is EvseStatus.RESERVED
    assert evse.connectors[0].standard is locations.ConnectorType.IEC_62196_T2
    assert location.last_updated == datetime(2026, 2, 8, 18, 23, 41, tzinfo=UTC)
    assert location.operator == locations.BusinessDetails(name="Fuldastrom Laden")


@pytest.mark.parametrize(
    "hours",
    [
        # open 24/7, with an exceptional closing
        {
            "twentyfourseven": True,
            "exceptional_closings": [period("2026-03-29T00:30:00Z", "2026-03-29T03:30:00Z")],
        },
        # regular hours, with an exceptional closing inside them
        {
            "twentyfourseven": False,
            "regular_hours": regular_hours([3, 4], "06:30", "22:15"),
            "exceptional_closings": [period("2026-06-10T09:00:00Z", "2026-06-10T11:45:00Z")],
        },
        # regular hours, with an exceptional opening outside them
        {
            "twentyfourseven": False,
            "regular_hours": regular_hours([6, 7], "10:00", "16:00"),
            "exceptional_openings": [period("2026-12-19T16:00:00Z", "2026-12-19T19:30:00Z")],
        },
    ],
)
def test_hours_variants_round_trip(hours: dict[str, Any]) -> None:
    assert to_json(Hours.model_validate(hours)) == hours


@pytest.mark.parametrize(
    "mix",
    [
        {"is_green_energy": True},
        {
            "is_green_energy": True,
            "supplier_name": "Windgenossenschaft Kaufunger Wald eG",
            "energy_product_name": "Kaufunger Wind",
        },
    ],
)
def test_energy_mix_variants_round_trip(mix: dict[str, Any]) -> None:
    assert to_json(EnergyMix.model_validate(mix)) == mix


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("id",), "x" * 36),  # CiString(36) at its limit
        (("coordinates",), {"latitude": "-33.8688197", "longitude": "-151.2092955"}),
        (("coordinates",), {"latitude": "0.00000", "longitude": "180.0000000"}),
        (("address",), "a" * 255),  # string(255) per the 2.2.1 errata
        (("state",), "s" * 45),  # string(45) per the 2.2.1 errata
        (("name",), "Ahnepark Nord ⚡ Ladepunkt"),  # string: printable UTF-8
        (("time_zone",), "America/Argentina/Buenos_Aires"),
        (("time_zone",), "Etc/GMT+1"),
        (("last_updated",), "2026-02-08T18:23:41"),  # no designator: UTC
        (("evses", 0, "connectors", 0, "last_updated"), "2025-11-03T07:14:52.6Z"),
        (("evses", 1, "uid"), EVSE_A + "-B"),  # shares a prefix, not the uid
        (("evses",), []),  # "*": an empty list is allowed
        (("evses", 0, "connectors", 0, "standard"), "IEC_60309_2_single_16"),
    ],
)
def test_accepts_edge_values(path: tuple[Any, ...], value: Any) -> None:
    Location.model_validate(bad(KERB_LOCATION, path, value))


def test_timestamps_are_stored_in_canonical_form() -> None:
    doc = bad(KERB_LOCATION, ("last_updated",), "2026-02-08T18:23:41")
    assert to_json(Location.model_validate(doc))["last_updated"] == "2026-02-08T18:23:41Z"


def test_existing_names_still_work() -> None:
    assert locations.Status is EvseStatus
    assert (
        EvseStatusPatch.model_validate({"status": "CHARGING", "last_updated": PATCHED_AT}).status
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
        (("country_code",), "DEU"),
        (("party_id",), "OH"),
        (("country",), "DE"),  # ISO 3166-1 alpha-3
        (("country",), "deu"),
        # strings
        (("name",), "n" * 256),  # string(255)
        (("name",), "Ahnepark\tNord"),  # string: no control characters
        (("city",), "c" * 46),  # string(45)
        (("postal_code",), "p" * 11),  # string(10)
        (("evses", 0, "floor_level"), "-1000"),  # string(4)
        (("evses", 0, "physical_reference"), 1),  # a string, not a number
        (("time_zone",), "Europe Berlin"),
        # coordinates: GeoLocation regexes and WGS 84 range
        (("coordinates", "latitude"), "51.3324"),  # fewer than 5 decimals
        (("coordinates", "latitude"), "51.33241700"),  # more than 7
        (("coordinates", "latitude"), "151.332417"),  # 3 integer digits
        (("coordinates", "latitude"), "91.000000"),
        (("coordinates", "latitude"), "51,332417"),
        (("coordinates", "latitude"), 51.332417),  # a string in OCPI
        (("coordinates", "longitude"), "1800.00000"),
        (("coordinates", "longitude"), "-180.000001"),
        (("coordinates",), {"latitude": "51.332417"}),
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
        (("evses", 0, "connectors", 0, "max_voltage"), "230"),
        (("evses", 0, "connectors", 0, "max_voltage"), 230.5),
        (("evses", 0, "connectors", 0, "max_amperage"), True),
        (("evses", 0, "connectors", 0, "max_amperage"), -1),
        (("publish",), "true"),
        (("publish",), 1),
        # URLs
        (("operator", "website"), "fuldastrom.example"),
        (("operator", "website"), "/relative/path"),
        (("operator", "website"), "https://example.com/a b"),
        (("operator", "website"), "https://example.com/" + "a" * 240),  # URL: string(255)
        # timestamps: RFC 3339 in UTC
        (("last_updated",), "2026-02-08T18:23:41+01:00"),
        (("last_updated",), "2026-02-08 18:23:41Z"),
        (("last_updated",), 1770575021),
        (("evses", 0, "last_updated"), "19/01/2026"),
        # identity within the Location: EVSE uids, then Connector ids per EVSE
        (("evses", 1, "uid"), EVSE_A),
        (("evses", 0, "connectors", 1, "id"), "1"),
        # Location.publish_allowed_to only when publish is false
        (("publish_allowed_to",), [{"uid": "X", "type": "RFID"}]),
    ],
)
def test_refuses_invalid_locations(path: tuple[Any, ...], value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        Location.model_validate(bad(KERB_LOCATION, path, value))
    # Refused for the field we broke (or the list / object holding it), not
    # for something else.
    for error in caught.value.errors():
        loc = error["loc"]
        assert loc == path[: len(loc)] or path == loc[: len(path)], (loc, path)


def test_evse_uids_are_unique_case_insensitively() -> None:
    doc = bad(KERB_LOCATION, ("evses", 0, "uid"), "ab-1")
    doc = bad(doc, ("evses", 1, "uid"), "AB-1")
    with pytest.raises(ValidationError, match="share the uid"):
        Location.model_validate(doc)


def test_error_names_the_offending_field() -> None:
    doc = bad(KERB_LOCATION, ("evses", 1, "connectors", 0, "standard"), "TYPE_2")
    with pytest.raises(ValidationError) as caught:
        Location.model_validate(doc)
    assert [e["loc"] for e in caught.value.errors()] == [("evses", 1, "connectors", 0, "standard")]


def test_evse_put_with_wrong_types_is_refused_and_its_unknown_field_is_not_blamed() -> None:
    # An EVSE PUT body with an unknown field (`floor`, kept: docs/adr/0039),
    # `physical_reference` as a number (it is a string) and a Connector
    # without the required power_type, max_voltage, max_amperage and
    # last_updated: refused, naming each offending field and not `floor`.
    body = {
        "uid": "KS-0117-3",
        "evse_id": "DE*OHB*E0117*3",
        "status": "AVAILABLE",
        "capabilities": ["REMOTE_START_STOP_CAPABLE"],
        "connectors": [
            {"id": "1", "standard": "IEC_62196_T2", "format": "CABLE", "tariff_ids": ["KS-AC-DAY"]}
        ],
        "floor": 0,
        "physical_reference": 7,
        "last_updated": PATCHED_AT,
    }
    with pytest.raises(ValidationError) as caught:
        Evse.model_validate(body)
    offending = {e["loc"] for e in caught.value.errors()}
    assert offending >= {("physical_reference",), ("connectors", 0, "power_type")}
    assert ("floor",) not in offending


@pytest.mark.parametrize(
    "hours",
    [
        {"twentyfourseven": False},  # needs regular_hours
        {"twentyfourseven": False, "regular_hours": []},
        # regular_hours only when not open 24/7
        {"twentyfourseven": True, "regular_hours": regular_hours([2], "06:30", "22:00")},
        # weekday 1 (Monday) to 7 (Sunday)
        {"twentyfourseven": False, "regular_hours": regular_hours([0], "06:30", "22:00")},
        {"twentyfourseven": False, "regular_hours": regular_hours([8], "06:30", "22:00")},
        # "HH:MM" with leading zeros, hours 00-23
        {"twentyfourseven": False, "regular_hours": regular_hours([2], "6:30", "22:00")},
        {"twentyfourseven": False, "regular_hours": regular_hours([2], "06:30", "24:00")},
        # a period ends after it begins
        {"twentyfourseven": False, "regular_hours": regular_hours([2], "22:00", "06:30")},
        {"twentyfourseven": False, "regular_hours": regular_hours([2], "06:30", "06:30")},
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
        {"type": "RFID", "issuer": "Depotpas Noord"},
        {"uid": "04A2F9C1D3E580"},  # uid needs type
        {"visual_number": "DPT-4471-09"},  # visual_number needs issuer
        {"uid": "04A2F9C1D3E580", "type": "CARD"},
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
    connector = Connector.model_validate(KERB_LOCATION["evses"][0]["connectors"][0])
    with pytest.raises(ValidationError):
        connector.max_voltage = 400  # type: ignore[misc]


# ---------------------------------------------------------------- PATCH bodies


@pytest.mark.parametrize(
    ("target", "body"),
    [
        # A PATCH body at each level: an EVSE status change, a Location field,
        # a Connector's tariff_ids, and an EVSE removed (status REMOVED).
        (Evse, {"status": "CHARGING", "last_updated": PATCHED_AT}),
        (Location, {"name": "Ahnepark Nord (P+R)", "last_updated": PATCHED_AT}),
        (Connector, {"tariff_ids": ["KS-AC-2026"], "last_updated": PATCHED_AT}),
        (Evse, {"status": "REMOVED", "last_updated": PATCHED_AT}),
    ],
)
def test_patch_bodies_at_each_level_validate(target: Any, body: dict[str, Any]) -> None:
    patch = validate_patch(target, body)
    assert dict(patch.values) == body
    assert patch.cleared == frozenset()
    assert patch.last_updated == datetime(2026, 3, 2, 9, 5, 17, tzinfo=UTC)
    assert patch.to_json() == body


def test_patch_null_on_an_optional_field_clears_it() -> None:
    patch = validate_patch(
        Evse,
        {
            "evse_id": None,
            "floor_level": None,
            "status": "REMOVED",
            "last_updated": "2026-03-02T09:05:17",
        },
    )
    assert patch.cleared == {"evse_id", "floor_level"}
    assert dict(patch.values) == {"status": "REMOVED", "last_updated": PATCHED_AT}
    assert patch.to_json() == {
        "status": "REMOVED",
        "last_updated": PATCHED_AT,
        "evse_id": None,
        "floor_level": None,
    }


def test_patch_values_are_read_only_and_to_json_is_a_copy() -> None:
    patch = validate_patch(Connector, {"tariff_ids": ["KS-AC-2026"], "last_updated": PATCHED_AT})
    with pytest.raises(TypeError):
        patch.values["tariff_ids"] = []  # type: ignore[index]
    body = patch.to_json()
    body["tariff_ids"].append("KS-AC-2027")
    assert patch.values["tariff_ids"] == ["KS-AC-2026"]


def test_patch_nested_objects_are_validated_whole() -> None:
    patch = validate_patch(
        Location,
        {
            "coordinates": {"latitude": "51.332417", "longitude": "9.468853"},
            "operator": {"name": "Fuldastrom Laden", "website": "https://fuldastrom.example"},
            "opening_times": {"twentyfourseven": True},
            "last_updated": PATCHED_AT,
        },
    )
    assert patch.values["operator"] == {
        "name": "Fuldastrom Laden",
        "website": "https://fuldastrom.example",
    }
    with pytest.raises(ValidationError) as caught:
        validate_patch(
            Location,
            {"coordinates": {"latitude": "51.332417"}, "last_updated": PATCHED_AT},
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
        (Location, {"id": "x" * 37}, {("id",)}),
        (
            Location,
            {"coordinates": {"latitude": "99.0", "longitude": "9.468853"}},
            {("coordinates", "latitude")},
        ),
        (Connector, {"max_voltage": "230"}, {("max_voltage",)}),
        (Location, {"last_updated": None}, {("last_updated",)}),
        (Evse, {"last_updated": "2026-03-02T09:05:17+01:00"}, {("last_updated",)}),
    ],
)
def test_patch_refusals_list_every_offending_field(
    target: Any, body: dict[str, Any], offending: set[tuple[Any, ...]]
) -> None:
    body = {"last_updated": PATCHED_AT, **body}
    with pytest.raises(ValidationError) as caught:
        validate_patch(target, body)
    assert {e["loc"] for e in caught.value.errors()} == offending


def test_patch_null_on_required_has_a_clear_message() -> None:
    with pytest.raises(ValidationError, match="required field cannot be cleared"):
        validate_patch(Evse, {"status": None, "last_updated": PATCHED_AT})


def test_patch_body_must_be_an_object() -> None:
    with pytest.raises(ValidationError):
        validate_patch(Evse, ["status", "CHARGING"])


def test_patch_lists_keep_their_item_rules() -> None:
    with pytest.raises(ValidationError, match="share the id"):
        validate_patch(
            Evse,
            {
                "connectors": [
                    KERB_LOCATION["evses"][0]["connectors"][0],
                    {**KERB_LOCATION["evses"][0]["connectors"][1], "id": "1"},
                ],
                "last_updated": PATCHED_AT,
            },
        )
