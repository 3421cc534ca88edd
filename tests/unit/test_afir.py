"""The AFIR mapper (producers/afir.py): OCPI 2.2.1 locations and tariffs
as DATEX II v3 energy infrastructure publications, checked against our own
schema of what we publish (schemas/afir)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers import afir
from schemas.afir import feed_schema
from schemas.ocpi.locations import (
    ConnectorType,
    EnergySourceCategory,
    EnvironmentalImpactCategory,
    Location,
    ParkingType,
)
from schemas.ocpi.tariffs import Tariff, json_numbers, loads_exact
from schemas.ocpi.types import to_json
from schemas.ocpi.v230.locations import Parking, VehicleType
from tests.ocpi_objects import connector, evse, location

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
PUBLISHER = afir.Publisher(country="NL", national_identifier="NL-ABC", lang="nl")
VALIDATOR = jsonschema.Draft202012Validator(feed_schema())

Json = dict[str, Any]


def ad_hoc_tariff(tariff_id: str = "ADHOC", **fields: Any) -> Json:
    body = {
        "country_code": "NL",
        "party_id": "ABC",
        "id": tariff_id,
        "currency": "EUR",
        "type": "AD_HOC_PAYMENT",
        "elements": [
            {
                "price_components": [
                    {"type": "ENERGY", "price": 0.4599, "vat": 21.0, "step_size": 1},
                    {"type": "TIME", "price": 1.20, "vat": 21.0, "step_size": 60},
                    {"type": "FLAT", "price": 0.35, "step_size": 1},
                    {"type": "PARKING_TIME", "price": 2.0, "step_size": 60},
                ]
            },
            {
                "price_components": [{"type": "ENERGY", "price": 0.30, "step_size": 1}],
                "restrictions": {"start_time": "23:00", "end_time": "07:00"},
            },
        ],
        "last_updated": "2026-12-01T08:00:00Z",
        **fields,
    }
    return dict(json_numbers(to_json(Tariff.model_validate(loads_exact(_dumps(body))))))


def _dumps(body: Json) -> str:
    import json

    return json.dumps(body)


def tariffs_by_key(*tariffs: Json) -> dict[str, Json]:
    return {f"{t['country_code']}/{t['party_id']}/{t['id']}".upper(): t for t in tariffs}


def valid(document: Json) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(document)]


def sample() -> Json:
    return location(
        name="Stationsplein",
        postal_code="3511 ED",
        operator={"name": "Example Charging", "website": "https://example.com"},
        opening_times={
            "twentyfourseven": False,
            "regular_hours": [
                {"weekday": 1, "period_begin": "07:00", "period_end": "22:00"},
                {"weekday": 6, "period_begin": "09:00", "period_end": "18:00"},
            ],
        },
        evses=[
            evse(
                "E1",
                "CHARGING",
                evse_id="NL*ABC*E1",
                capabilities=["RFID_READER", "CREDIT_CARD_PAYABLE", "RESERVABLE"],
                connectors=[
                    connector("1", tariff_ids=["ADHOC", "CONTRACT"]),
                    connector(
                        "2",
                        standard="IEC_62196_T2_COMBO",
                        format="CABLE",
                        power_type="DC",
                        max_voltage=920,
                        max_amperage=250,
                        max_electric_power=150000,
                    ),
                ],
            ),
            evse("E2", "OUTOFORDER", connectors=[connector("1", standard="GBT_DC")]),
            evse("E3", "REMOVED"),
        ],
    )


def test_a_location_maps_to_one_site_one_station_and_a_point_per_evse() -> None:
    loc = sample()
    site = afir.site_record(loc, tariffs_by_key(ad_hoc_tariff()), "nl")
    assert site["idG"] == "NL-ABC-LOC1"
    assert site["name"] == {"values": [{"lang": "nl", "value": "Stationsplein"}]}
    assert site["operator"] == {
        "afacAnOrganisation": {
            "name": {"values": [{"lang": "nl", "value": "Example Charging"}]},
            "linkToGeneralInformation": "https://example.com",
        }
    }
    point_loc = site["locationReference"]["locPointLocation"]
    assert point_loc["coordinatesForDisplay"] == {"latitude": 52.089444, "longitude": 5.11}
    address = point_loc["locLocationExtensionG"]["facilityLocation"]["address"]
    assert address["postcode"] == "3511 ED" and address["countryCode"] == "NL"
    [station] = site["energyInfrastructureStation"]
    # E3 is REMOVED: not in a feed of what exists.
    points = [p["aegiElectricChargingPoint"] for p in station["refillPoint"]]
    assert [p["idG"] for p in points] == ["NL*ABC*E1", "NL-ABC-LOC1-E2"]
    assert station["numberOfRefillPoints"] == 2
    # AC 3 phase 230 V x 32 A x 3 + the DC 150 kW: the EVSE's largest, summed.
    assert station["totalMaximumPower"] == 150000 + 22080
    assert [a["value"] for a in station["authenticationAndIdentificationMethods"]] == [
        "creditCard",
        "rfid",
    ]
    assert station["serviceType"] == [{"serviceType": {"value": "unattended"}}]
    assert site["externalIdentifier"] == [{"identifier": "LOC1"}]
    # The profile has no means of payment of a site: the ad-hoc rate has them.
    assert "paymentMethod" not in site
    e1 = points[0]
    # The EVSE ID typed as such, then the OCPI uid; no evseId element.
    assert e1["externalIdentifier"] == [
        {
            "identifier": "NL*ABC*E1",
            "typeOfIdentifier": {"value": "extendedG", "extendedValueG": "evseId"},
        },
        {"identifier": "E1"},
    ]
    assert "evseId" not in e1
    assert e1["reservation"] == {"value": "optional"}
    assert [c["connectorType"]["value"] for c in e1["connector"]] == [
        "iec62196T2",
        "iec62196T2COMBO",
    ]
    # An AC 3-phase and a DC connector: a DC point, and no one charging
    # mode (the mode is the point's in the profile, no longer a connector's).
    assert e1["currentType"] == {"value": "dc"}
    assert "chargingMode" not in e1
    assert all("chargingMode" not in c for c in e1["connector"])
    assert e1["connector"][1]["maxPowerAtSocket"] == 150000
    assert e1["connector"][1]["connectorFormat"] == {"value": "otherCable"}
    e2 = points[1]
    assert e2["externalIdentifier"] == [{"identifier": "E2"}]
    assert e2["connector"][0]["connectorType"] == {"value": "other"}
    assert e2["connector"][0]["otherConnector"] == "GBT_DC"
    # The sample's GB/T socket is on AC three phase: one mode for the point.
    assert e2["connector"][0]["connectorFormat"] == {"value": "socket"}
    assert e2["currentType"] == {"value": "ac"}
    assert e2["chargingMode"] == {"value": "mode3AC3p"}
    assert "electricEnergy" not in e2  # no ad-hoc tariff named


def test_the_current_type_and_charging_mode_are_the_points() -> None:
    def point(*power_types: str) -> dict[str, Any]:
        loc = sample() | {
            "evses": [
                evse(
                    "E1",
                    connectors=[
                        connector(str(i), power_type=t, standard="IEC_62196_T2")
                        for i, t in enumerate(power_types, 1)
                    ],
                )
            ]
        }
        site = afir.site_record(loc, {}, "nl")
        p: dict[str, Any] = site["energyInfrastructureStation"][0]["refillPoint"][0][
            "aegiElectricChargingPoint"
        ]
        return p

    ac1 = point("AC_1_PHASE")
    assert ac1["currentType"] == {"value": "ac"} and "chargingMode" not in ac1
    ac3 = point("AC_3_PHASE", "AC_3_PHASE")
    assert ac3["currentType"] == {"value": "ac"} and ac3["chargingMode"] == {"value": "mode3AC3p"}
    dc = point("DC")
    assert dc["currentType"] == {"value": "dc"} and dc["chargingMode"] == {"value": "mode4DC"}
    mixed = point("AC_1_PHASE", "AC_3_PHASE")
    assert mixed["currentType"] == {"value": "ac"} and "chargingMode" not in mixed


def test_the_ad_hoc_price_is_the_unrestricted_element_excl_vat() -> None:
    loc = sample()
    tariffs = tariffs_by_key(ad_hoc_tariff(), ad_hoc_tariff("CONTRACT", type="REGULAR"))
    site = afir.site_record(loc, tariffs, "nl")
    point = site["energyInfrastructureStation"][0]["refillPoint"][0]["aegiElectricChargingPoint"]
    [rate] = point["electricEnergy"][0]["energyRate"]
    assert rate["idG"] == "NL-ABC-ADHOC"
    assert "versionG" not in rate  # the model identifies a rate by idG alone
    assert rate["ratePolicy"] == {"value": "adHoc"}
    assert rate["applicableCurrency"] == ["EUR"]
    # How it can be paid: from the capabilities of the location's EVSEs.
    assert rate["payment"] == {"paymentMeans": [{"value": "paymentCreditCard"}]}
    assert rate["energyPrice"] == [
        {
            "priceType": {"value": "pricePerKWh"},
            "value": 0.4599,
            "taxIncluded": False,
            "taxRate": 21,
        },
        # 1.20 per hour is 0.02 per minute.
        {
            "priceType": {"value": "pricePerMinute"},
            "value": 0.02,
            "taxIncluded": False,
            "taxRate": 21,
        },
        {"priceType": {"value": "basePrice"}, "value": 0.35, "taxIncluded": False},
    ]


def test_a_contract_tariff_alone_gives_no_ad_hoc_price() -> None:
    loc = sample()
    site = afir.site_record(loc, tariffs_by_key(ad_hoc_tariff("ADHOC", type="REGULAR")), "nl")
    point = site["energyInfrastructureStation"][0]["refillPoint"][0]["aegiElectricChargingPoint"]
    assert "electricEnergy" not in point


def test_opening_hours_map_to_recurring_periods_or_open_all_hours() -> None:
    site = afir.site_record(sample(), {}, "nl")
    hours = site["operatingHours"]["afacOperatingHoursSpecification"]
    assert hours["idG"] == "NL-ABC-LOC1-HOURS" and hours["versionG"]
    spec = hours["overallPeriod"]
    assert spec["validPeriod"][0] == {
        "recurringTimePeriodOfDay": [
            {"startTimeOfPeriod": "07:00:00", "endTimeOfPeriod": "22:00:00"}
        ],
        "recurringDayWeekMonthPeriod": [
            {"comDayWeekMonth": {"applicableDay": [{"value": "monday"}]}}
        ],
    }
    days = spec["validPeriod"][1]["recurringDayWeekMonthPeriod"][0]["comDayWeekMonth"]
    assert days["applicableDay"] == [{"value": "saturday"}]
    # Its version follows its content.
    later = sample()
    later["opening_times"]["regular_hours"][0]["period_end"] = "23:00"
    moved = afir.site_record(later, {}, "nl")["operatingHours"]["afacOperatingHoursSpecification"]
    assert moved["versionG"] != hours["versionG"]
    always = afir.site_record(sample() | {"opening_times": {"twentyfourseven": True}}, {}, "nl")
    assert always["operatingHours"] == {"afacOpenAllHours": {}}


def test_exceptional_openings_and_closings_are_periods_of_the_hours() -> None:
    loc = sample()
    loc["opening_times"]["exceptional_openings"] = [
        {"period_begin": "2026-12-27T10:00:00Z", "period_end": "2026-12-27T16:00:00Z"}
    ]
    loc["opening_times"]["exceptional_closings"] = [
        {"period_begin": "2026-12-25T00:00:00Z", "period_end": "2026-12-26T00:00:00Z"}
    ]
    site = afir.site_record(loc, {}, "nl")
    overall = site["operatingHours"]["afacOperatingHoursSpecification"]["overallPeriod"]
    # The two regular periods, then the opening as one more valid period.
    assert len(overall["validPeriod"]) == 3
    assert overall["validPeriod"][2] == {
        "startOfPeriod": "2026-12-27T10:00:00Z",
        "endOfPeriod": "2026-12-27T16:00:00Z",
    }
    assert overall["exceptionPeriod"] == [
        {"startOfPeriod": "2026-12-25T00:00:00Z", "endOfPeriod": "2026-12-26T00:00:00Z"}
    ]
    # Open all hours but closed on a day: valid throughout but the closing;
    # an opening adds nothing to all hours.
    always = sample() | {
        "opening_times": {
            "twentyfourseven": True,
            "exceptional_openings": loc["opening_times"]["exceptional_openings"],
            "exceptional_closings": loc["opening_times"]["exceptional_closings"],
        }
    }
    hours = afir.site_record(always, {}, "nl")["operatingHours"]
    assert hours["afacOperatingHoursSpecification"]["overallPeriod"] == {
        "overallStartTime": afir.HOURS_SINCE,
        "exceptionPeriod": overall["exceptionPeriod"],
    }
    opened = always | {
        "opening_times": {
            "twentyfourseven": True,
            "exceptional_openings": [
                {"period_begin": "2026-12-27T10:00:00Z", "period_end": "2026-12-27T16:00:00Z"}
            ],
        }
    }
    assert afir.site_record(opened, {}, "nl")["operatingHours"] == {"afacOpenAllHours": {}}
    for doc in (loc, always):
        static, _ = afir.records(doc, doc, {}, "nl")
        assert static is not None
        assert valid(afir.table_publication(PUBLISHER, [static], NOW)) == []


def test_the_parking_type_is_the_type_of_site() -> None:
    expected = {
        "ALONG_MOTORWAY": "openSpace",
        "PARKING_LOT": "openSpace",
        "PARKING_GARAGE": "inBuilding",
        "UNDERGROUND_GARAGE": "inBuilding",
        "ON_STREET": "onstreet",
        "ON_DRIVEWAY": "other",
    }
    assert set(expected) == {t.value for t in ParkingType}
    for parking_type, site_type in expected.items():
        site = afir.site_record(sample() | {"parking_type": parking_type}, {}, "nl")
        assert site["typeOfSite"] == {"value": site_type}
        assert valid(afir.table_publication(PUBLISHER, [site], NOW)) == []
    assert "typeOfSite" not in afir.site_record(sample(), {}, "nl")


def test_the_kept_help_phone_is_the_station_helpdesk() -> None:
    loc = sample() | {"help_phone": "+31 30 123 4567"}
    station = afir.site_record(loc, {}, "nl")["energyInfrastructureStation"][0]
    assert station["helpdesk"] == {
        "afacAnOrganisation": {
            "name": {"values": [{"lang": "nl", "value": "Example Charging"}]},
            "organisationUnit": [
                {
                    "contactInformation": [
                        {"afacContactInformation": {"telephoneNumber": "+31 30 123 4567"}}
                    ]
                }
            ],
        }
    }
    # The owner names it when no operator does.
    owned = {k: v for k, v in loc.items() if k != "operator"} | {"owner": {"name": "Gemeente"}}
    desk = afir.site_record(owned, {}, "nl")["energyInfrastructureStation"][0]["helpdesk"]
    assert desk["afacAnOrganisation"]["name"]["values"][0]["value"] == "Gemeente"
    # Nobody to name it, or a kept value that is no phone number: left out.
    nameless = {k: v for k, v in loc.items() if k != "operator"}
    for doc in (nameless, sample() | {"help_phone": 31301234567}, sample() | {"help_phone": " "}):
        assert "helpdesk" not in afir.site_record(doc, {}, "nl")["energyInfrastructureStation"][0]


def test_the_kept_parking_places_are_the_stations_dedicated_spaces() -> None:
    loc = sample() | {
        "parking_places": [
            {
                "id": "P1",
                "vehicle_types": ["PERSONAL_VEHICLE", "VAN"],
                "restricted_to_type": False,
                "reservation_required": False,
                "roofed": True,
                "lighting": False,
                "parking_space_length": 500,
                "parking_space_width": 250.5,
            },
            {
                "id": "p2",
                "vehicle_types": ["DISABLED", "A_FUTURE_TYPE"],
                "restricted_to_type": True,
                "reservation_required": False,
            },
            {"vehicle_types": ["BUS"]},  # no id: not a Parking we can name
            {"id": "P1", "vehicle_types": ["BUS"]},  # P1 again: the first one counts
            {"id": "P3", "vehicle_types": ["BUS"], "parking_space_length": float("inf")},
            "not an object",
        ]
    }
    station = afir.site_record(loc, {}, "nl")["energyInfrastructureStation"][0]
    spaces = station["dedicatedParkingSpaces"]
    assert [s["idG"] for s in spaces] == [
        "NL-ABC-LOC1-PARKING-P1",
        "NL-ABC-LOC1-PARKING-P2",
        "NL-ABC-LOC1-PARKING-P3",
    ]
    assert "dimension" not in spaces[2]
    assert all(s["numberOfSpaces"] == 1 and s["versionG"] for s in spaces)
    assert spaces[0]["applicableForVehicles"] == [
        {"vehicleType": [{"value": "car"}, {"value": "van"}]}
    ]
    assert spaces[0]["amenities"] == {"illuminated": False, "roofed": True}
    assert spaces[0]["dimension"] == {"length": 5, "width": 2.505}
    assert "dimension" not in spaces[1]
    assert spaces[1]["userSpecific"] == [{"value": "personsWithDisabilities"}]
    assert "applicableForVehicles" not in spaces[1] and "amenities" not in spaces[1]
    assert valid(afir.table_publication(PUBLISHER, [afir.site_record(loc, {}, "nl")], NOW)) == []
    assert (
        "dedicatedParkingSpaces"
        not in afir.site_record(sample() | {"parking_places": {"id": "P1"}}, {}, "nl")[
            "energyInfrastructureStation"
        ][0]
    )


def test_a_2_3_0_location_in_our_core_gives_its_helpdesk_spaces_and_type() -> None:
    """A 2.3.0 Location as our 2.3.0 edge makes it a core object
    (schemas/ocpi/v230/mapping.py): the fields 2.3.0 adds are kept there
    and reach the feed; a 2.3.0 parking type 2.2.1 does not list (kept
    aside under ``ocpi_v230``) gives no type of site."""
    from schemas.ocpi.v230 import locations as v230
    from schemas.ocpi.v230.mapping import location_to_core

    body = sample() | {
        "help_phone": "+31 30 123 4567",
        "parking_type": "PARKING_LOT",
        "parking_places": [
            {
                "id": "P1",
                "vehicle_types": ["TRUCK_WITH_TRAILER"],
                "restricted_to_type": True,
                "reservation_required": False,
                "lighting": True,
            }
        ],
    }
    core = to_json(location_to_core(v230.Location.model_validate(body)))
    site = afir.site_record(core, {}, "nl")
    station = site["energyInfrastructureStation"][0]
    assert site["typeOfSite"] == {"value": "openSpace"}
    assert "helpdesk" in station
    [space] = station["dedicatedParkingSpaces"]
    assert space["applicableForVehicles"] == [
        {"vehicleType": [{"value": "heavyGoodsVehicleWithTrailer"}]}
    ]
    assert space["amenities"] == {"illuminated": True}
    unlisted = to_json(
        location_to_core(v230.Location.model_validate(body | {"parking_type": "ON_ROOFTOP"}))
    )
    assert "typeOfSite" not in afir.site_record(unlisted, {}, "nl")


def test_the_energy_mix_is_part_of_the_energy_offered_at_each_point() -> None:
    loc = sample() | {
        "energy_mix": {
            "is_green_energy": True,
            "energy_sources": [
                {"source": "SOLAR", "percentage": 62.5},
                {"source": "WIND", "percentage": 37.5},
            ],
            "environ_impact": [
                {"category": "CARBON_DIOXIDE", "amount": 0},
                {"category": "NUCLEAR_WASTE", "amount": 0.0001},
            ],
            "supplier_name": "Energie BV",
            "energy_product_name": "Groene Stroom",
        }
    }
    site = afir.site_record(loc, tariffs_by_key(ad_hoc_tariff()), "nl")
    points = [
        p["aegiElectricChargingPoint"]
        for p in site["energyInfrastructureStation"][0]["refillPoint"]
    ]
    [priced] = points[0]["electricEnergy"]
    assert priced["isGreenEnergy"] is True
    assert priced["energyProductName"] == {"values": [{"lang": "nl", "value": "Groene Stroom"}]}
    assert priced["carbonDioxideImpact"] == 0 and priced["nuclearWasteImpact"] == 0.0001
    # The profile's ElectricEnergy has no sources' shares: left out.
    assert "electricEnergySourceRatio" not in priced
    assert priced["energyRate"][0]["idG"] == "NL-ABC-ADHOC"
    # E2 has no ad-hoc price: the mix alone.
    [unpriced] = points[1]["electricEnergy"]
    assert "energyRate" not in unpriced and unpriced["isGreenEnergy"] is True
    assert valid(afir.table_publication(PUBLISHER, [site], NOW)) == []
    assert set(afir.ENVIRONMENTAL_IMPACT) == {c.value for c in EnvironmentalImpactCategory}


def test_new_elements_change_versions_only_with_their_content() -> None:
    loc = sample()
    plain = afir.site_record(loc, {}, "nl")
    rich = loc | {
        "help_phone": "+31301234567",
        "parking_type": "PARKING_LOT",
        "parking_places": [
            {
                "id": "P1",
                "vehicle_types": ["BUS"],
                "restricted_to_type": True,
                "reservation_required": False,
            }
        ],
        "energy_mix": {"is_green_energy": False},
    }
    before = afir.site_record(rich, {}, "nl")
    assert before["versionG"] != plain["versionG"]
    station_before = before["energyInfrastructureStation"][0]
    assert station_before["versionG"] != plain["energyInfrastructureStation"][0]["versionG"]
    # A status PATCH moves last_updated only: no new version anywhere.
    patched = copy.deepcopy(rich)
    patched["evses"][0]["status"] = "AVAILABLE"
    patched["evses"][0]["last_updated"] = "2026-12-07T09:00:00Z"
    patched["last_updated"] = "2026-12-07T09:00:00Z"
    after = afir.site_record(patched, {}, "nl")
    assert after["versionG"] == before["versionG"]
    assert after["energyInfrastructureStation"] == before["energyInfrastructureStation"]
    # A new help phone is a new station (and site), not new refill points.
    moved = afir.site_record(patched | {"help_phone": "+31309999999"}, {}, "nl")
    assert moved["versionG"] != before["versionG"]
    station_moved = moved["energyInfrastructureStation"][0]
    assert station_moved["versionG"] != station_before["versionG"]
    assert station_moved["refillPoint"] == station_before["refillPoint"]
    # A greener mix is new energy at every point.
    greener = afir.site_record(patched | {"energy_mix": {"is_green_energy": True}}, {}, "nl")
    assert all(
        a != b
        for a, b in zip(
            greener["energyInfrastructureStation"][0]["refillPoint"],
            station_before["refillPoint"],
            strict=True,
        )
    )


def test_statuses_refer_to_the_static_versions() -> None:
    loc = sample()
    tariffs = tariffs_by_key(ad_hoc_tariff())
    static, dynamic = afir.records(loc, loc, tariffs, "nl")
    assert static is not None and dynamic is not None
    # Site, station and point are referred to by their common class.
    assert dynamic["reference"] == {
        "targetClass": "FacilityObject",
        "idG": static["idG"],
        "versionG": static["versionG"],
    }
    station = dynamic["energyInfrastructureStationStatus"][0]
    assert station["reference"]["targetClass"] == "FacilityObject"
    statuses = [p["aegiElectricChargingPointStatus"] for p in station["refillPointStatus"]]
    assert [s["status"]["value"] for s in statuses] == ["charging", "outOfOrder"]
    assert station["isAvailable"] is False
    points = static["energyInfrastructureStation"][0]["refillPoint"]
    assert [s["reference"]["versionG"] for s in statuses] == [
        p["aegiElectricChargingPoint"]["versionG"] for p in points
    ]
    assert {s["reference"]["targetClass"] for s in statuses} == {"FacilityObject"}
    [update] = statuses[0]["energyRateUpdate"]
    assert update["energyRateReference"] == {"targetClass": "EnergyRate", "idG": "NL-ABC-ADHOC"}
    assert update["energyPrice"][0]["value"] == 0.4599


def test_every_ocpi_status_has_a_datex_status() -> None:
    from schemas.ocpi.locations import EvseStatus

    assert set(afir.STATUS) == {s.value for s in EvseStatus}


def test_a_status_change_is_no_new_static_version_but_a_power_change_is() -> None:
    loc = sample()
    before = afir.site_record(loc, {}, "nl")
    patched = copy.deepcopy(loc)
    patched["evses"][0]["status"] = "AVAILABLE"
    patched["evses"][0]["last_updated"] = "2026-12-07T09:00:00Z"
    patched["last_updated"] = "2026-12-07T09:00:00Z"
    after = afir.site_record(patched, {}, "nl")
    assert after["versionG"] == before["versionG"]
    assert after["lastUpdated"] != before["lastUpdated"]
    patched["evses"][0]["connectors"][1]["max_electric_power"] = 100000
    changed = afir.site_record(patched, {}, "nl")
    assert changed["versionG"] != before["versionG"]
    p_before = before["energyInfrastructureStation"][0]["refillPoint"]
    p_after = changed["energyInfrastructureStation"][0]["refillPoint"]
    assert p_before[0] != p_after[0] and p_before[1] == p_after[1]


def test_only_published_locations_are_in_the_feed() -> None:
    hidden = sample() | {"publish": False}
    assert afir.records(hidden, hidden, {}, "nl") == (None, None)
    narrowed = sample() | {"publish_allowed_to": [{"uid": "012345678"}]}
    assert afir.records(narrowed, narrowed, {}, "nl") == (None, None)
    assert afir.records(None, None, {}, "nl") == (None, None)


def test_publications_are_valid_against_our_schema() -> None:
    loc = sample()
    tariffs = tariffs_by_key(ad_hoc_tariff())
    static, dynamic = afir.records(loc, loc, tariffs, "nl")
    assert static is not None and dynamic is not None
    table = afir.table_publication(PUBLISHER, [static], NOW)
    status = afir.status_publication(PUBLISHER, [dynamic], NOW)
    assert valid(table) == []
    assert valid(status) == []
    head = table["payload"]
    assert head["modelBaseVersionG"] == "3"
    pub = head["aegiEnergyInfrastructureTablePublication"]
    assert pub["publicationTime"] == "2026-12-07T09:30:00Z"
    assert pub["publicationCreator"] == {"country": "NL", "nationalIdentifier": "NL-ABC"}
    assert "aegiEnergyInfrastructureStatusPublication" in status["payload"]


def test_the_schema_refuses_what_we_must_not_publish() -> None:
    """Our schema is a check that can fail: a wrong enumeration value, a
    missing required element, an unknown member."""
    loc = sample()
    static, dynamic = afir.records(loc, loc, {}, "nl")
    assert static is not None and dynamic is not None
    bad_status = copy.deepcopy(dynamic)
    point = bad_status["energyInfrastructureStationStatus"][0]["refillPointStatus"][0]
    point["aegiElectricChargingPointStatus"]["status"] = {"value": "CHARGING"}
    assert valid(afir.status_publication(PUBLISHER, [bad_status], NOW))
    no_station = {k: v for k, v in static.items() if k != "energyInfrastructureStation"}
    assert valid(afir.table_publication(PUBLISHER, [no_station], NOW))
    extra = static | {"evses": []}
    assert valid(afir.table_publication(PUBLISHER, [extra], NOW))
    bad_connector = copy.deepcopy(static)
    conn = bad_connector["energyInfrastructureStation"][0]["refillPoint"][0]
    conn["aegiElectricChargingPoint"]["connector"][0]["connectorType"] = {"value": "IEC_62196_T2"}
    assert valid(afir.table_publication(PUBLISHER, [bad_connector], NOW))
    assert valid(
        afir.table_publication(PUBLISHER, [static | {"typeOfSite": {"value": "onStreet"}}], NOW)
    )
    bad_mix = copy.deepcopy(static)
    point = bad_mix["energyInfrastructureStation"][0]["refillPoint"][0]["aegiElectricChargingPoint"]
    # Source ratios are no member of the profile's ElectricEnergy.
    point["electricEnergy"] = [
        {
            "electricEnergySourceRatio": [
                {"energySource": {"value": "solar"}, "sourceRatioValue": {"percentage": 50}}
            ]
        }
    ]
    assert valid(afir.table_publication(PUBLISHER, [bad_mix], NOW))
    # What the profile changed from the 3.5 model we first read: the EVSE ID
    # as an element, an identifier as a plain string, a charging mode on a
    # connector, a point without its current type, a station without its
    # service type, a site's means of payment, a status pointing at a class
    # of its own.
    point = copy.deepcopy(static)["energyInfrastructureStation"][0]["refillPoint"][0][
        "aegiElectricChargingPoint"
    ]
    old_shapes = [
        point | {"evseId": "NL*ABC*E1"},
        point | {"externalIdentifier": "E1"},
        {k: v for k, v in point.items() if k != "currentType"},
        point | {"connector": [point["connector"][0] | {"chargingMode": {"value": "mode3AC3p"}}]},
    ]
    for old in old_shapes:
        site = copy.deepcopy(static)
        site["energyInfrastructureStation"][0]["refillPoint"][0]["aegiElectricChargingPoint"] = old
        assert valid(afir.table_publication(PUBLISHER, [site], NOW)), old
    no_service = copy.deepcopy(static)
    del no_service["energyInfrastructureStation"][0]["serviceType"]
    assert valid(afir.table_publication(PUBLISHER, [no_service], NOW))
    paid = static | {"paymentMethod": {"paymentMeans": [{"value": "nfc"}]}}
    assert valid(afir.table_publication(PUBLISHER, [paid], NOW))
    own_class = copy.deepcopy(dynamic)
    own_class["reference"]["targetClass"] = "EnergyInfrastructureSite"
    assert valid(afir.status_publication(PUBLISHER, [own_class], NOW))
    no_count = copy.deepcopy(static)
    no_count["energyInfrastructureStation"][0]["dedicatedParkingSpaces"] = [
        {"idG": "P", "versionG": "1"}
    ]
    assert valid(afir.table_publication(PUBLISHER, [no_count], NOW))


# --- many generated locations ---------------------------------------------------------

_texts = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40)
_ids = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-", min_size=1, max_size=12)
_stamps = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"))


@st.composite
def connectors(draw: st.DrawFn, cid: str) -> Json:
    out: Json = {
        "id": cid,
        "standard": draw(st.sampled_from([c.value for c in ConnectorType])),
        "format": draw(st.sampled_from(["SOCKET", "CABLE"])),
        "power_type": draw(st.sampled_from(["AC_1_PHASE", "AC_3_PHASE", "DC"])),
        "max_voltage": draw(st.integers(0, 1500)),
        "max_amperage": draw(st.integers(0, 800)),
        "last_updated": draw(_stamps),
    }
    if draw(st.booleans()):
        out["max_electric_power"] = draw(st.integers(0, 1_000_000))
    if draw(st.booleans()):
        out["tariff_ids"] = draw(st.lists(st.sampled_from(["ADHOC", "T2", "T3"]), max_size=3))
    return out


@st.composite
def evses(draw: st.DrawFn, uid: str) -> Json:
    out: Json = {
        "uid": uid,
        "status": draw(st.sampled_from(list(afir.STATUS))),
        "connectors": [draw(connectors(str(i))) for i in range(1, draw(st.integers(1, 3)) + 1)],
        "last_updated": draw(_stamps),
    }
    if draw(st.booleans()):
        out["evse_id"] = f"NL*ABC*E{uid}"
    if draw(st.booleans()):
        out["capabilities"] = draw(
            st.lists(st.sampled_from([*sorted(afir.AUTHENTICATION), "RESERVABLE"]), unique=True)
        )
    if draw(st.booleans()):
        out["physical_reference"] = draw(_texts.map(lambda t: t[:16]))
    return out


@st.composite
def locations(draw: st.DrawFn) -> Json:
    n = draw(st.integers(0, 4))
    body: Json = location(
        draw(_ids),
        evses=[draw(evses(f"E{i}")) for i in range(n)],
        at=draw(_stamps),
        coordinates={
            "latitude": f"{draw(st.floats(-90, 90)):.6f}",
            "longitude": f"{draw(st.floats(-180, 180)):.6f}",
        },
    )
    if draw(st.booleans()):
        body["name"] = draw(_texts)
    if draw(st.booleans()):
        body["operator"] = {"name": draw(_texts)}
    hours = draw(st.sampled_from(["none", "always", "regular"]))
    if hours == "always":
        body["opening_times"] = {"twentyfourseven": True}
    elif hours == "regular":
        body["opening_times"] = {
            "twentyfourseven": False,
            "regular_hours": [
                {"weekday": d, "period_begin": "08:00", "period_end": "20:00"}
                for d in draw(st.lists(st.integers(1, 7), min_size=1, max_size=7))
            ],
        }
    if hours != "none":
        for key in ("exceptional_openings", "exceptional_closings"):
            if draw(st.booleans()):
                body["opening_times"][key] = [
                    {"period_begin": a, "period_end": b}
                    for a, b in draw(st.lists(st.tuples(_stamps, _stamps), max_size=3))
                ]
    if draw(st.booleans()):
        body["parking_type"] = draw(st.sampled_from([t.value for t in ParkingType]))
    if draw(st.booleans()):
        body["energy_mix"] = draw(energy_mixes())
    out = to_json(Location.model_validate(body))
    # Fields 2.3.0 adds, as our core Location keeps them (docs/adr/0046):
    # from a 2.3.0 object, or anything an unknown field can hold.
    phone = draw(st.sampled_from(["none", "phone", "junk"]))
    if phone == "phone":
        out["help_phone"] = draw(st.text("+0123456789 ", min_size=1, max_size=25))
    elif phone == "junk":
        out["help_phone"] = draw(st.one_of(st.integers(), st.none(), st.just({"n": 1})))
    places = draw(st.sampled_from(["none", "places", "junk"]))
    if places == "places":
        out["parking_places"] = draw(st.lists(parking_places(), max_size=3, unique_by=_id_of))
    elif places == "junk":
        out["parking_places"] = draw(
            st.one_of(st.just("P1"), st.just([1, "x", {"vehicle_types": "BUS"}]), st.just({}))
        )
    return out


def _id_of(parking: Json) -> str:
    return str(parking["id"]).upper()


@st.composite
def energy_mixes(draw: st.DrawFn) -> Json:
    mix: Json = {"is_green_energy": draw(st.booleans())}
    if draw(st.booleans()):
        mix["energy_sources"] = [
            {"source": s, "percentage": draw(st.integers(0, 100))}
            for s in draw(st.lists(st.sampled_from(list(EnergySourceCategory)), max_size=4))
        ]
    if draw(st.booleans()):
        mix["environ_impact"] = [
            {"category": c, "amount": draw(st.integers(0, 1000))}
            for c in draw(st.lists(st.sampled_from(list(EnvironmentalImpactCategory)), max_size=2))
        ]
    if draw(st.booleans()):
        mix["energy_product_name"] = draw(_texts)
    return mix


@st.composite
def parking_places(draw: st.DrawFn) -> Json:
    body: Json = {
        "id": draw(_ids),
        "vehicle_types": draw(
            st.lists(
                st.sampled_from([*(v.value for v in VehicleType), "A_FUTURE_TYPE"]), min_size=1
            )
        ),
        "restricted_to_type": draw(st.booleans()),
        "reservation_required": draw(st.booleans()),
    }
    for key in ("roofed", "lighting"):
        if draw(st.booleans()):
            body[key] = draw(st.booleans())
    for key in ("parking_space_length", "parking_space_width"):
        if draw(st.booleans()):
            body[key] = draw(st.one_of(st.integers(0, 5000), st.floats(0, 5000)))
    return to_json(Parking.model_validate(body))


@given(locations(), st.booleans())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_generated_locations_make_schema_valid_publications(loc: Json, priced: bool) -> None:
    tariffs = tariffs_by_key(ad_hoc_tariff(), ad_hoc_tariff("T2", type="REGULAR")) if priced else {}
    static, dynamic = afir.records(loc, loc, tariffs, "en")
    assert static is not None and dynamic is not None
    assert valid(afir.table_publication(PUBLISHER, [static], NOW)) == []
    assert valid(afir.status_publication(PUBLISHER, [dynamic], NOW)) == []
    # Every status refers to a point of the static record, at its version.
    points = {
        p["aegiElectricChargingPoint"]["idG"]: p["aegiElectricChargingPoint"]["versionG"]
        for p in static["energyInfrastructureStation"][0]["refillPoint"]
    }
    statuses = dynamic["energyInfrastructureStationStatus"][0]["refillPointStatus"]
    refs = {
        s["aegiElectricChargingPointStatus"]["reference"]["idG"]: s[
            "aegiElectricChargingPointStatus"
        ]["reference"]["versionG"]
        for s in statuses
    }
    assert refs == points
    shown = [e for e in loc.get("evses") or () if e["status"] != "REMOVED"]
    assert len(points) == len(shown)
    # What the generated location holds of the newer inputs is published.
    station = static["energyInfrastructureStation"][0]
    assert ("typeOfSite" in static) == ("parking_type" in loc)
    phone = loc.get("help_phone")
    if isinstance(phone, str) and phone.strip() and "operator" in loc:
        desk = station["helpdesk"]["afacAnOrganisation"]["organisationUnit"][0]
        contact = {"afacContactInformation": {"telephoneNumber": phone.strip()}}
        assert desk["contactInformation"] == [contact]
    else:
        assert "helpdesk" not in station
    places = loc.get("parking_places")
    generated = isinstance(places, list) and all(isinstance(q, dict) and "id" in q for q in places)
    expected = len(places) if generated and isinstance(places, list) else 0
    assert len(station.get("dedicatedParkingSpaces", [])) == expected
    for p in station["refillPoint"]:
        energy = p["aegiElectricChargingPoint"].get("electricEnergy", [{}])
        mix = loc.get("energy_mix")
        assert energy[0].get("isGreenEnergy") == (mix["is_green_energy"] if mix else None)


# --- the pull credential and the push plan ---------------------------------------------


def test_only_the_configured_access_point_credential_is_let_in() -> None:
    import base64

    from pydantic import SecretStr

    from api.afir import access_point_allowed
    from ocpi_hub.settings import Settings

    nothing = Settings()
    assert not access_point_allowed("Bearer anything", nothing)
    assert not access_point_allowed(None, nothing)
    s = Settings(
        afir_pull_token=SecretStr("tok-1"),
        afir_pull_user="nap",
        afir_pull_password=SecretStr("pw"),
    )
    assert access_point_allowed("Bearer tok-1", s)
    assert not access_point_allowed("Bearer tok-2", s)
    assert not access_point_allowed("Bearer ", s)
    good = base64.b64encode(b"nap:pw").decode()
    assert access_point_allowed(f"Basic {good}", s)
    assert not access_point_allowed("Basic " + base64.b64encode(b"nap:px").decode(), s)
    assert not access_point_allowed("Basic " + base64.b64encode(b"napx").decode(), s)
    assert not access_point_allowed("Basic not-base64!", s)
    # The secret is never shown in the settings' repr.
    assert "tok-1" not in repr(s) and "pw'" not in repr(s)


def test_the_push_plans_our_events_only_and_sends_a_state_once() -> None:
    import uuid

    from processors.afir_push import Sent, deltas, plan
    from schemas.events import EvseStatusResolved, Party
    from schemas.events.locations import EvseStatusResolvedPayload

    us = Party(country_code="NL", party_id="ABC")

    def resolved(party: str) -> EvseStatusResolved:
        return EvseStatusResolved(
            event_id=uuid.uuid4(),
            aggregate_key=f"NL/{party}/LOC1",
            occurred_at=NOW,
            recorded_at=NOW,
            source=us,
            correlation_id="c",
            payload=EvseStatusResolvedPayload(
                country_code="NL",
                party_id=party,
                location_id="LOC1",
                evse_uid="E1",
                status="AVAILABLE",  # type: ignore[arg-type]
                last_updated=NOW,
                reported_status=None,
            ),
        )

    planned = plan(resolved("ABC"), us)
    assert planned is not None and planned.location == "NL/ABC/LOC1" and not planned.static
    assert plan(resolved("XYZ"), us) is None
    assert plan(object(), us) is None

    loc = sample()
    static, dynamic = afir.records(loc, loc, {}, "nl")
    doc = {"static": static, "dynamic": dynamic}
    bodies, sent = deltas(PUBLISHER, [doc], True, NOW, Sent())
    assert [
        next(iter(b["payload"].keys() - {"modelBaseVersionG", "profileNameG", "profileVersionG"}))
        for b in bodies
    ] == [
        afir.TABLE_PUBLICATION,
        afir.STATUS_PUBLICATION,
    ]
    again, _ = deltas(PUBLISHER, [doc], True, NOW, sent)
    assert again == []
    assert deltas(PUBLISHER, [{"static": None, "dynamic": None}], True, NOW, Sent())[0] == []


def test_a_withdrawn_site_is_pushed_once_and_its_static_again_when_back() -> None:
    from processors.afir_push import Sent, deltas

    loc = sample()
    static, dynamic = afir.records(loc, loc, {}, "nl")
    assert static is not None
    shown = {"static": static, "dynamic": dynamic, "_withdrawn": False}
    _, sent = deltas(PUBLISHER, [shown], True, NOW, Sent())

    gone = afir.withdrawal(static, "2026-12-01T11:00:00Z")
    withdrawn = {"static": None, "dynamic": gone, "_withdrawn": True}
    bodies, sent = deltas(PUBLISHER, [withdrawn], True, NOW, sent)
    assert len(bodies) == 1 and valid(bodies[0]) == []
    records = bodies[0]["payload"][afir.STATUS_PUBLICATION]["energyInfrastructureSiteStatus"]
    assert records == [gone]
    points = records[0]["energyInfrastructureStationStatus"][0]["refillPointStatus"]
    assert {p["aegiElectricChargingPointStatus"]["status"]["value"] for p in points} == {"removed"}
    assert deltas(PUBLISHER, [withdrawn], True, NOW, sent)[0] == []
    # Published again with the same content: its static record is sent again.
    back, _ = deltas(PUBLISHER, [shown], True, NOW, sent)
    assert len(back) == 2 and afir.TABLE_PUBLICATION in back[0]["payload"]


def test_a_table_without_sites_is_not_a_valid_publication() -> None:
    # The model wants a site in every table: the static pull answers 204
    # rather than send this (tests/e2e/test_afir.py).
    assert valid(afir.table_publication(PUBLISHER, [], NOW)) != []
    site = afir.site_record(sample(), {}, "nl")
    assert valid(afir.table_publication(PUBLISHER, [site], NOW)) == []
