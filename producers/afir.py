"""Our OCPI 2.2.1 locations and tariffs as DATEX II v3 energy
infrastructure records, for the AFIR national access point feed
(Regulation (EU) 2023/1804, Art. 20; docs/afir.md, docs/adr/0048).

Pure: no I/O, the clock passed in. Three levels:

- ``site_record`` (static, ``EnergyInfrastructureTablePublication``): one
  OCPI Location is one ``energyInfrastructureSite`` with one
  ``energyInfrastructureStation`` (OCPI has no charge-point level between
  a location and its EVSEs), each EVSE one refill point
  (``aegiElectricChargingPoint``), each OCPI Connector one ``connector``;
  operator, coordinates, address, type of site, opening hours (with their
  exceptions), the energy mix and the ad-hoc price (an ``energyRate`` with
  ``ratePolicy`` adHoc and the means of paying it); from fields OCPI 2.3.0 adds,
  which our core Location keeps (``help_phone``, ``parking_places``), the
  station's helpdesk and parking spaces.
- ``site_status`` (dynamic, ``EnergyInfrastructureStatusPublication``):
  per refill point its status, with the ad-hoc price again
  (``energyRateUpdate``), each a versioned reference into the static one.
- ``table_publication`` / ``status_publication``: the payload around a
  list of records.

The JSON follows the DATEX II v3 JSON encoding of the AFIR Energy
Infrastructure profile (01-00-00, on DATEX II 3.5; docs/adr/0048 says
which files it was checked against): a class chosen among subclasses is a
key of the namespace prefix and the class name
(``aegiElectricChargingPoint``), an enumeration value is ``{"value": ...}``
(a value the profile adds is ``{"value": "extendedG", "extendedValueG":
...}``), a multilingual text is ``{"values": [{"lang", "value"}]}``, an
identifiable object carries ``idG`` and ``versionG``. What OCPI cannot
fill is left out (docs/afir.md lists it).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from schemas.ocpi.common import fold, format_ocpi_datetime, parse_ocpi_datetime

Json = dict[str, Any]

MODEL_BASE_VERSION = "3"
PROFILE_NAME = "AFIR Energy Infrastructure"
PROFILE_VERSION = "01-00-00"
TABLE_PUBLICATION = "aegiEnergyInfrastructureTablePublication"
STATUS_PUBLICATION = "aegiEnergyInfrastructureStatusPublication"
CHARGING_POINT = "aegiElectricChargingPoint"
CHARGING_POINT_STATUS = "aegiElectricChargingPointStatus"
# What a status's reference points at: the model fixes the target of a
# site's, station's and refill point's reference to their common class.
FACILITY_OBJECT = "FacilityObject"


@dataclass(frozen=True)
class Publisher:
    """Who publishes (``publicationCreator``) and in which language the texts
    are (``lang``; OCPI texts carry no language of their own)."""

    country: str
    national_identifier: str
    lang: str = "en"
    table_id: str = "ocpi-hub-energy-infrastructure"


# --- vocabularies: OCPI 2.2.1 value -> DATEX II v3 value ---------------------

# OCPI Status -> RefillPointStatusEnum (energyInfrastructure, status model).
STATUS: Mapping[str, str] = {
    "AVAILABLE": "available",
    "BLOCKED": "blocked",
    "CHARGING": "charging",
    "INOPERATIVE": "inoperative",
    "OUTOFORDER": "outOfOrder",
    "PLANNED": "planned",
    "REMOVED": "removed",
    "RESERVED": "reserved",
    "UNKNOWN": "unknown",
}

# OCPI ConnectorType -> ConnectorTypeEnum. GB/T, ChaoJi and NEMA have no
# value of their own there: "other", with the OCPI name in otherConnector.
CONNECTOR_TYPE: Mapping[str, str] = {
    "CHADEMO": "chademo",
    **{f"DOMESTIC_{c}": f"domestic{c}" for c in "ABCDEFGHIJKLMNO"},
    "IEC_60309_2_single_16": "iec60309x2single16",
    "IEC_60309_2_three_16": "iec60309x2three16",
    "IEC_60309_2_three_32": "iec60309x2three32",
    "IEC_60309_2_three_64": "iec60309x2three64",
    "IEC_62196_T1": "iec62196T1",
    "IEC_62196_T1_COMBO": "iec62196T1COMBO",
    "IEC_62196_T2": "iec62196T2",
    "IEC_62196_T2_COMBO": "iec62196T2COMBO",
    "IEC_62196_T3A": "iec62196T3A",
    "IEC_62196_T3C": "iec62196T3C",
    "PANTOGRAPH_BOTTOM_UP": "pantographBottomUp",
    "PANTOGRAPH_TOP_DOWN": "pantographTopDown",
    "TESLA_R": "teslaR",
    "TESLA_S": "teslaS",
}

# OCPI PowerType -> ChargingModeEnum; single-phase AC has no mode-3 value.
CHARGING_MODE: Mapping[str, str] = {"DC": "mode4DC", "AC_3_PHASE": "mode3AC3p"}


# OCPI Capability -> AuthenticationAndIdentificationEnum (how a driver
# starts a session) and MeansOfPaymentEnum (how the ad-hoc price is paid:
# the ad-hoc rate's payment; the profile has no means of payment of a site).
AUTHENTICATION: Mapping[str, str] = {
    "RFID_READER": "rfid",
    "CREDIT_CARD_PAYABLE": "creditCard",
    "DEBIT_CARD_PAYABLE": "debitCard",
    "CONTACTLESS_CARD_SUPPORT": "nfc",
    "PED_TERMINAL": "pinpad",
    "REMOTE_START_STOP_CAPABLE": "apps",
}
PAYMENT_MEANS: Mapping[str, str] = {
    "CREDIT_CARD_PAYABLE": "paymentCreditCard",
    "DEBIT_CARD_PAYABLE": "paymentDebitCard",
    "CONTACTLESS_CARD_SUPPORT": "nfc",
}

# OCPI TariffDimensionType -> PriceTypeEnum. PARKING_TIME has no AFIR
# price type (it is not a price of the energy): left out.
PRICE_TYPE: Mapping[str, str] = {
    "ENERGY": "pricePerKWh",
    "TIME": "pricePerMinute",
    "FLAT": "basePrice",
}

# OCPI ParkingType -> EnergyInfrastructureSiteTypeEnum (typeOfSite). The
# 3.5 model spells "onstreet" so (a slip of its camel case), and a public
# reader of a national feed (Spain's) expects that spelling: kept.
SITE_TYPE: Mapping[str, str] = {
    "ALONG_MOTORWAY": "openSpace",
    "PARKING_LOT": "openSpace",
    "PARKING_GARAGE": "inBuilding",
    "UNDERGROUND_GARAGE": "inBuilding",
    "ON_STREET": "onstreet",
    "ON_DRIVEWAY": "other",
}

# OCPI 2.3.0 VehicleType -> VehicleTypeEnum (common) of a parking space's
# applicableForVehicles. DISABLED is no kind of vehicle but a permit: the
# space's userSpecific personsWithDisabilities instead.
VEHICLE_TYPE: Mapping[str, str] = {
    "MOTORCYCLE": "motorcycle",
    "PERSONAL_VEHICLE": "car",
    "PERSONAL_VEHICLE_WITH_TRAILER": "carWithTrailer",
    "VAN": "van",
    "SEMI_TRACTOR": "heavyGoodsVehicle",
    "RIGID": "lorry",
    "TRUCK_WITH_TRAILER": "heavyGoodsVehicleWithTrailer",
    "BUS": "bus",
}
DISABLED_USERS = "personsWithDisabilities"

# OCPI energy_mix.energy_sources has no element in the profile's
# ElectricEnergy (no source ratios there): not published.
# OCPI EnvironmentalImpactCategory -> the ElectricEnergy element (both g/kWh).
ENVIRONMENTAL_IMPACT: Mapping[str, str] = {
    "CARBON_DIOXIDE": "carbonDioxideImpact",
    "NUCLEAR_WASTE": "nuclearWasteImpact",
}

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


# --- small encoders --------------------------------------------------------------


def enum(value: str) -> Json:
    return {"value": value}


def extended(value: str) -> Json:
    """A value the profile adds to a model enumeration."""
    return {"value": "extendedG", "extendedValueG": value}


def external_id(identifier: str, kind: str | None = None) -> Json:
    """One ``externalIdentifier`` (a list in the profile): the identifier
    and, when the profile names its kind (``evseId``, ...), that kind."""
    out: Json = {"identifier": identifier}
    if kind is not None:
        out["typeOfIdentifier"] = extended(kind)
    return out


def text(value: str, lang: str) -> Json:
    return {"values": [{"lang": lang, "value": value}]}


def ref(target: str, id_: str, version: str | None = None) -> Json:
    out: Json = {"targetClass": target, "idG": id_}
    if version is not None:
        out["versionG"] = version
    return out


def datex_time(value: str) -> str:
    """An OCPI DateTime (UTC) in the xs:dateTime form DATEX II uses."""
    return format_ocpi_datetime(parse_ocpi_datetime(value))


def version_of(record: Mapping[str, Any]) -> str:
    """A version of a static record: a digest of its content (``versionG``
    and ``lastUpdated`` left out), so it changes exactly when the published
    content does (an owner's status PATCH bumps ``last_updated`` but is no
    new version of the site) and a replay computes the same one."""
    body = {k: v for k, v in record.items() if k not in ("versionG", "lastUpdated")}
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return digest[:16]


def _number(value: Any) -> int | float:
    """A JSON number as published: integral values as integers."""
    d = Decimal(str(value))
    return int(d) if d == d.to_integral_value() else float(d)


# --- identifiers -------------------------------------------------------------------


def site_id(location: Mapping[str, Any]) -> str:
    return "-".join(fold(str(location[k])) for k in ("country_code", "party_id", "id"))


def station_id(location: Mapping[str, Any]) -> str:
    return site_id(location) + "-STATION"


def point_id(location: Mapping[str, Any], evse: Mapping[str, Any]) -> str:
    """The EVSE ID (eMI3) where the EVSE has one: what drivers see and what
    other feeds key charging points by; else our key of the EVSE."""
    evse_id = evse.get("evse_id")
    if evse_id:
        return str(evse_id)
    return site_id(location) + "-" + fold(str(evse["uid"]))


def rate_id(country_code: str, party_id: str, tariff_id: str) -> str:
    return "-".join(fold(p) for p in (country_code, party_id, tariff_id))


# --- the ad-hoc price ----------------------------------------------------------------


def tariff_keys(location: Mapping[str, Any]) -> list[str]:
    """The keys (``producers.tariffs`` form) of every tariff the location's
    connectors name, in order of first mention."""
    cc, party = str(location["country_code"]), str(location["party_id"])
    keys: list[str] = []
    for evse in location.get("evses") or ():
        for connector in evse.get("connectors") or ():
            for tid in connector.get("tariff_ids") or ():
                key = "/".join(fold(p) for p in (cc, party, str(tid)))
                if key not in keys:
                    keys.append(key)
    return keys


def ad_hoc_tariff(
    evse: Mapping[str, Any], location: Mapping[str, Any], tariffs: Mapping[str, Json]
) -> Json | None:
    """The ad-hoc tariff of an EVSE: the first tariff its connectors name
    whose type is AD_HOC_PAYMENT (OCPI 2.2.1 marks the price without a
    contract so). None when there is none we hold."""
    cc, party = str(location["country_code"]), str(location["party_id"])
    for connector in evse.get("connectors") or ():
        for tid in connector.get("tariff_ids") or ():
            tariff = tariffs.get("/".join(fold(p) for p in (cc, party, str(tid))))
            if tariff is not None and tariff.get("type") == "AD_HOC_PAYMENT":
                return tariff
    return None


def energy_prices(tariff: Mapping[str, Any]) -> list[Json]:
    """The price components that apply without restriction: those of the
    first element without ``restrictions`` (the tariff's base price; one
    price per dimension). A TIME price is per hour in OCPI, per minute here.
    Prices are excl. VAT (``taxIncluded`` false) with the component's VAT
    rate when it states one."""
    base = next((e for e in tariff.get("elements") or () if not e.get("restrictions")), None)
    if base is None:
        return []
    prices: list[Json] = []
    seen: set[str] = set()
    for component in base.get("price_components") or ():
        kind = PRICE_TYPE.get(str(component.get("type")))
        if kind is None or kind in seen:
            continue
        seen.add(kind)
        amount = Decimal(str(component["price"]))
        if kind == "pricePerMinute":
            amount = (amount / 60).quantize(Decimal("0.0001"))
        price: Json = {
            "priceType": enum(kind),
            "value": _number(amount),
            "taxIncluded": False,
        }
        if component.get("vat") is not None:
            price["taxRate"] = _number(component["vat"])
        prices.append(price)
    return prices


def payment_means(location: Mapping[str, Any]) -> list[str]:
    """How an ad-hoc charge at the location can be paid: from the
    capabilities of its EVSEs in the feed (the same for every point, as the
    rate is one rate of the location)."""
    capabilities = {
        c for e in location.get("evses") or () if _visible(e) for c in e.get("capabilities") or ()
    }
    return sorted({PAYMENT_MEANS[c] for c in capabilities if c in PAYMENT_MEANS})


def energy_rate(
    tariff: Mapping[str, Any], location: Mapping[str, Any], lang: str, means: Sequence[str] = ()
) -> Json:
    """An ad-hoc tariff as an ``energyRate`` (static model; identified by
    ``idG`` alone, the model gives a rate no ``versionG``), with the means
    of paying it when the capabilities name any."""
    rate: Json = {
        "idG": rate_id(str(location["country_code"]), str(location["party_id"]), tariff["id"]),
        "ratePolicy": enum("adHoc"),
        "lastUpdated": datex_time(tariff["last_updated"]),
        "applicableCurrency": [str(tariff["currency"])],
    }
    alt = tariff.get("tariff_alt_text") or ()
    if alt:
        rate["rateName"] = {"values": [{"lang": t["language"], "value": t["text"]} for t in alt]}
    if means:
        rate["payment"] = {"paymentMeans": [enum(m) for m in means]}
    rate["energyPrice"] = energy_prices(tariff)
    return rate


def energy_rate_update(tariff: Mapping[str, Any], location: Mapping[str, Any]) -> Json:
    """The ad-hoc price as the dynamic model carries it: a reference to the
    static rate and its prices now."""
    rid = rate_id(str(location["country_code"]), str(location["party_id"]), tariff["id"])
    return {
        "lastUpdated": datex_time(tariff["last_updated"]),
        "energyRateReference": ref("EnergyRate", rid),
        "energyPrice": energy_prices(tariff),
    }


# --- static ------------------------------------------------------------------------


# OverallPeriod needs a start; OCPI says nothing of since when hours hold,
# and the location's last_updated would make every status PATCH a new
# version of the site: the hours hold "since ever".
HOURS_SINCE = "1970-01-01T00:00:00Z"


def _periods(hours: Mapping[str, Any], key: str) -> list[Json]:
    """OCPI ExceptionalPeriods (UTC) as DATEX II Periods (start, end)."""
    out: list[Json] = []
    for p in _dicts(hours.get(key)):
        try:
            start, end = datex_time(p["period_begin"]), datex_time(p["period_end"])
        except (KeyError, TypeError, ValueError):
            continue  # not an ExceptionalPeriod: nothing we can state
        out.append({"startOfPeriod": start, "endOfPeriod": end})
    return out


def operating_hours(location: Mapping[str, Any]) -> Json | None:
    """OCPI opening_times: open all hours, or each regular period as a
    recurring time of day on its weekday. An exceptional opening is one more
    valid period (start and end), an exceptional closing an exception period
    of the overall period; open all hours with closings is an overall period
    without valid periods (valid throughout) but those exceptions. Openings
    on a location open all hours say nothing more."""
    hours = location.get("opening_times")
    if not hours:
        return None
    closings = _periods(hours, "exceptional_closings")
    if hours.get("twentyfourseven"):
        if not closings:
            return {"afacOpenAllHours": {}}
        periods: list[Json] = []
    else:
        periods = [
            {
                "recurringTimePeriodOfDay": [
                    {
                        "startTimeOfPeriod": f"{r['period_begin']}:00",
                        "endTimeOfPeriod": f"{r['period_end']}:00",
                    }
                ],
                "recurringDayWeekMonthPeriod": [
                    {"comDayWeekMonth": {"applicableDay": [enum(_WEEKDAYS[int(r["weekday"]) - 1])]}}
                ],
            }
            for r in hours.get("regular_hours") or ()
        ]
        periods += _periods(hours, "exceptional_openings")
        if not periods:
            return None
    overall: Json = {"overallStartTime": HOURS_SINCE}
    if periods:
        overall["validPeriod"] = periods
    if closings:
        overall["exceptionPeriod"] = closings
    # A specification is identifiable in the model: keyed by its site, its
    # version a digest of its content like every static version here.
    spec: Json = {"idG": site_id(location) + "-HOURS", "versionG": "", "overallPeriod": overall}
    spec["versionG"] = version_of(spec)
    return {"afacOperatingHoursSpecification": spec}


def _organisation(details: Mapping[str, Any] | None, lang: str) -> Json | None:
    if not details or not details.get("name"):
        return None
    org: Json = {"name": text(str(details["name"]), lang)}
    if details.get("website"):
        org["linkToGeneralInformation"] = str(details["website"])
    return {"afacAnOrganisation": org}


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a list field; fields 2.3.0 adds are kept on our core
    objects as received (docs/adr/0046), so a value of another shape is
    read as nothing rather than trusted."""
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, Mapping)]


def helpdesk(location: Mapping[str, Any], lang: str) -> Json | None:
    """OCPI 2.3.0 ``help_phone`` (kept on the core Location) as the
    station's ``helpdesk``: an organisation whose unit's contact is that
    telephone number. The organisation needs a name: the operator's (else
    the owner's); without either the number is left out."""
    phone = location.get("help_phone")
    if not isinstance(phone, str) or not phone.strip():
        return None
    named = next(
        (
            d
            for d in (location.get("operator"), location.get("owner"))
            if isinstance(d, Mapping) and d.get("name")
        ),
        None,
    )
    if named is None:
        return None
    return {
        "afacAnOrganisation": {
            "name": text(str(named["name"]), lang),
            "organisationUnit": [
                {
                    "contactInformation": [
                        {"afacContactInformation": {"telephoneNumber": phone.strip()}}
                    ]
                }
            ],
        }
    }


def dedicated_parking_spaces(location: Mapping[str, Any]) -> list[Json]:
    """OCPI 2.3.0 ``parking_places`` (kept on the core Location) as the
    station's ``dedicatedParkingSpaces``: each OCPI Parking is one space a
    vehicle uses while charging there, so one record of one space, keyed
    by the site and the parking id, with the vehicles it is for, a
    disabled-permit space's users, whether it is roofed and lit, and its
    length and width."""
    out: list[Json] = []
    seen: set[str] = set()
    for parking in _dicts(location.get("parking_places")):
        pid = parking.get("id")
        if not isinstance(pid, str) or not pid or fold(pid) in seen:
            continue  # no Parking we can name (ids are unique per Location)
        seen.add(fold(pid))
        kinds = parking.get("vehicle_types")
        kinds = [k for k in kinds if isinstance(k, str)] if isinstance(kinds, list) else []
        space: Json = {"idG": site_id(location) + "-PARKING-" + fold(pid), "versionG": ""}
        vehicles = sorted({VEHICLE_TYPE[k] for k in kinds if k in VEHICLE_TYPE})
        if vehicles:
            space["applicableForVehicles"] = [{"vehicleType": [enum(v) for v in vehicles]}]
        amenities = {
            key: parking[field]
            for key, field in (("illuminated", "lighting"), ("roofed", "roofed"))
            if isinstance(parking.get(field), bool)
        }
        if amenities:
            space["amenities"] = amenities
        # The space's size: OCPI in cm, the model's Dimension in metres.
        size = {
            key: _number(Decimal(str(parking[field])) / 100)
            for key, field in (("length", "parking_space_length"), ("width", "parking_space_width"))
            if _measure(parking.get(field))
        }
        if size:
            space["dimension"] = size
        space["numberOfSpaces"] = 1
        if "DISABLED" in kinds:
            space["userSpecific"] = [enum(DISABLED_USERS)]
        space["versionG"] = version_of(space)
        out.append(space)
    return out


def _measure(value: Any) -> bool:
    """A finite, non-negative number (a kept field may hold anything)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return False
    return math.isfinite(value) and value >= 0


def energy_mix(location: Mapping[str, Any], lang: str) -> Json:
    """OCPI ``energy_mix`` as the members of an ``electricEnergy`` (the
    energy offered at each refill point): green or not, the CO2 and
    nuclear waste per kWh, the product's name (the profile has no element
    for the sources' shares). Empty without an energy mix."""
    mix = location.get("energy_mix")
    if not isinstance(mix, Mapping) or not isinstance(mix.get("is_green_energy"), bool):
        return {}
    out: Json = {"isGreenEnergy": mix["is_green_energy"]}
    if mix.get("energy_product_name"):
        out["energyProductName"] = text(str(mix["energy_product_name"]), lang)
    for impact in _dicts(mix.get("environ_impact")):
        key = ENVIRONMENTAL_IMPACT.get(str(impact.get("category")))
        if key is not None and key not in out and impact.get("amount") is not None:
            out[key] = _number(impact["amount"])
    return out


def _location_reference(location: Mapping[str, Any], lang: str) -> Json:
    coords = location["coordinates"]
    point = {"latitude": float(coords["latitude"]), "longitude": float(coords["longitude"])}
    address: Json = {
        "city": text(str(location["city"]), lang),
        "countryCode": str(location["country_code"]).upper(),
        "addressLine": [
            {"order": 0, "type": enum("street"), "text": text(str(location["address"]), lang)}
        ],
    }
    if location.get("postal_code"):
        address["postcode"] = str(location["postal_code"])
    return {
        "locPointLocation": {
            "coordinatesForDisplay": point,
            "pointByCoordinates": {"pointCoordinates": point},
            # The profile carries the address in the extension of the
            # Location class (prefix "loc"), as its facilityLocation.
            "locLocationExtensionG": {"facilityLocation": {"address": address}},
        }
    }


def _connector(connector: Mapping[str, Any]) -> Json:
    standard = str(connector["standard"])
    kind = CONNECTOR_TYPE.get(standard)
    out: Json = {"connectorType": enum(kind or "other")}
    if kind is None:
        out["otherConnector"] = standard
    cable = "otherCable" if connector["power_type"] == "DC" else "cableMode3"
    out["connectorFormat"] = enum("socket" if connector["format"] == "SOCKET" else cable)
    out["maxPowerAtSocket"] = _number(_power_w(connector))
    out["voltage"] = _number(connector["max_voltage"])
    out["maximumCurrent"] = _number(connector["max_amperage"])
    return out


def _power_w(connector: Mapping[str, Any]) -> int:
    """max_electric_power when stated; else voltage x current (x3 on three
    phases), as OCPI 2.2.1 says to compute it."""
    if connector.get("max_electric_power") is not None:
        return int(connector["max_electric_power"])
    phases = 3 if connector["power_type"] == "AC_3_PHASE" else 1
    return int(connector["max_voltage"]) * int(connector["max_amperage"]) * phases


def current_type(connectors: Sequence[Mapping[str, Any]]) -> str:
    """The point's one current type (required by the profile): ``dc`` when
    any of its connectors delivers DC (a point with a DC connector is a DC
    charger to a driver, whatever AC socket it also has), else ``ac``."""
    return "dc" if any(c.get("power_type") == "DC" for c in connectors) else "ac"


def charging_mode(connectors: Sequence[Mapping[str, Any]]) -> str | None:
    """The point's charging mode (one per point in the profile): the mode
    of its connectors when they share one, else none."""
    modes = {CHARGING_MODE.get(str(c.get("power_type"))) for c in connectors}
    return modes.pop() if len(modes) == 1 else None


def _refill_point(
    location: Mapping[str, Any],
    evse: Mapping[str, Any],
    tariffs: Mapping[str, Json],
    lang: str,
    mix: Mapping[str, Any],
) -> Json:
    connectors = list(evse.get("connectors") or ())
    # The EVSE ID first, typed so, then the OCPI uid (no kind the profile names).
    identifiers = [external_id(str(evse["evse_id"]), "evseId")] if evse.get("evse_id") else []
    identifiers.append(external_id(str(evse["uid"])))
    point: Json = {
        "idG": point_id(location, evse),
        "versionG": "",
        "externalIdentifier": identifiers,
        "deliveryUnit": enum("kWh"),
        "currentType": enum(current_type(connectors)),
        "numberOfConnectors": len(connectors),
        "availableChargingPower": sorted({_number(_power_w(c)) for c in connectors}),
        "connector": [_connector(c) for c in connectors],
    }
    mode = charging_mode(connectors)
    if mode is not None:
        point["chargingMode"] = enum(mode)
    if evse.get("physical_reference"):
        point["name"] = text(str(evse["physical_reference"]), lang)
    capabilities = set(evse.get("capabilities") or ())
    point["reservation"] = enum("optional" if "RESERVABLE" in capabilities else "notAvailable")
    # One offer of energy at the point: the location's energy mix and the
    # ad-hoc rate, each when there is one.
    energy: Json = dict(mix)
    tariff = ad_hoc_tariff(evse, location, tariffs)
    if tariff is not None:
        energy["energyRate"] = [energy_rate(tariff, location, lang, payment_means(location))]
    if energy:
        point["electricEnergy"] = [energy]
    point["versionG"] = version_of(point)
    return point


def _visible(evse: Mapping[str, Any]) -> bool:
    # A REMOVED EVSE stays in OCPI for history; a feed of what exists omits it.
    return evse.get("status") != "REMOVED"


def site_record(location: Mapping[str, Any], tariffs: Mapping[str, Json], lang: str) -> Json:
    """The ``energyInfrastructureSite`` of one OCPI Location (static data:
    the owner's asserted object; statuses are the dynamic record's)."""
    evses = [e for e in location.get("evses") or () if _visible(e)]
    mix = energy_mix(location, lang)
    points = [_refill_point(location, e, tariffs, lang, mix) for e in evses]
    capabilities = sorted({c for e in evses for c in e.get("capabilities") or ()})
    station: Json = {
        "idG": station_id(location),
        "versionG": "",
        "totalMaximumPower": _number(
            sum(max((_power_w(c) for c in e.get("connectors") or ()), default=0) for e in evses)
        ),
        "numberOfRefillPoints": len(points),
        "userInterfaceLanguage": [lang],
        # Required by the profile, and not in OCPI: every station we publish
        # is a self-service charge point of a CPO (docs/adr/0048).
        "serviceType": [{"serviceType": enum("unattended")}],
        "refillPoint": [{CHARGING_POINT: p} for p in points],
    }
    auth = sorted({AUTHENTICATION[c] for c in capabilities if c in AUTHENTICATION})
    if auth:
        station["authenticationAndIdentificationMethods"] = [enum(a) for a in auth]
    desk = helpdesk(location, lang)
    if desk is not None:
        station["helpdesk"] = desk
    spaces = dedicated_parking_spaces(location)
    if spaces:
        station["dedicatedParkingSpaces"] = spaces
    station["versionG"] = version_of(station)
    # The site changes when its location or an ad-hoc price on it does.
    stamps = [location["last_updated"]]
    stamps += [t["last_updated"] for e in evses if (t := ad_hoc_tariff(e, location, tariffs))]
    last_updated = datex_time(max(stamps, key=parse_ocpi_datetime))
    site: Json = {
        "idG": site_id(location),
        "versionG": "",
        "externalIdentifier": [external_id(str(location["id"]))],
        "lastUpdated": last_updated,
        "locationReference": _location_reference(location, lang),
        "energyInfrastructureStation": [station],
    }
    if location.get("name"):
        site["name"] = text(str(location["name"]), lang)
    for role, key in (("operator", "operator"), ("owner", "owner")):
        org = _organisation(location.get(key), lang)
        if org is not None:
            site[role] = org
    hours = operating_hours(location)
    if hours is not None:
        site["operatingHours"] = hours
    site_type = SITE_TYPE.get(str(location.get("parking_type")))
    if site_type is not None:
        site["typeOfSite"] = enum(site_type)
    site["versionG"] = version_of(site)
    return site


# --- dynamic -------------------------------------------------------------------------


def site_status(
    location: Mapping[str, Any], static: Mapping[str, Any], tariffs: Mapping[str, Json]
) -> Json:
    """The ``energyInfrastructureSiteStatus`` of one served OCPI Location
    (statuses resolved from every signal, ``producers.locations.served``),
    referring to the versions of ``static`` (its ``site_record``)."""
    station = static["energyInfrastructureStation"][0]
    versions = {
        p[CHARGING_POINT]["idG"]: p[CHARGING_POINT]["versionG"] for p in station["refillPoint"]
    }
    points: list[Json] = []
    stamps = [datex_time(location["last_updated"])]
    for evse in location.get("evses") or ():
        pid = point_id(location, evse)
        if not _visible(evse) or pid not in versions:
            continue
        updated = datex_time(evse["last_updated"])
        point: Json = {
            "reference": ref(FACILITY_OBJECT, pid, versions[pid]),
            "lastUpdated": updated,
            "status": enum(STATUS[str(evse["status"])]),
        }
        tariff = ad_hoc_tariff(evse, location, tariffs)
        if tariff is not None:
            point["energyRateUpdate"] = [energy_rate_update(tariff, location)]
            stamps.append(datex_time(tariff["last_updated"]))
        points.append({CHARGING_POINT_STATUS: point})
    return _site_status(static, points, max(stamps, key=parse_ocpi_datetime))


def _site_status(static: Mapping[str, Any], points: list[Json], last_updated: str) -> Json:
    """A site status record around its refill points' statuses, referring
    to the versions of ``static``; available when any point is."""
    station = static["energyInfrastructureStation"][0]
    available = any(p[CHARGING_POINT_STATUS]["status"]["value"] == "available" for p in points)
    return {
        "reference": ref(FACILITY_OBJECT, static["idG"], static["versionG"]),
        "lastUpdated": last_updated,
        "energyInfrastructureStationStatus": [
            {
                "reference": ref(FACILITY_OBJECT, station["idG"], station["versionG"]),
                "lastUpdated": last_updated,
                "isAvailable": available,
                "refillPointStatus": points,
            }
        ],
    }


def withdrawal(last_static: Mapping[str, Any], at: str) -> Json:
    """The ``energyInfrastructureSiteStatus`` saying a site left the feed
    (its owner stopped publishing it): every refill point it last showed
    (``last_static``, its last ``site_record``) ``removed``, at ``at`` (the
    location's ``last_updated`` when it stopped). A delta reader learns of
    the removal from it; a whole feed simply no longer holds the site."""
    station = last_static["energyInfrastructureStation"][0]
    when = datex_time(at)
    points = [
        {
            CHARGING_POINT_STATUS: {
                "reference": ref(
                    FACILITY_OBJECT, p[CHARGING_POINT]["idG"], p[CHARGING_POINT]["versionG"]
                ),
                "lastUpdated": when,
                "status": enum(STATUS["REMOVED"]),
            }
        }
        for p in station["refillPoint"]
    ]
    return _site_status(last_static, points, when)


# --- publications ----------------------------------------------------------------------


def _payload(kind: str, publication: Json) -> Json:
    return {
        "payload": {
            "modelBaseVersionG": MODEL_BASE_VERSION,
            "profileNameG": PROFILE_NAME,
            "profileVersionG": PROFILE_VERSION,
            kind: publication,
        }
    }


def _head(publisher: Publisher, now: datetime) -> Json:
    return {
        "lang": publisher.lang,
        "publicationTime": format_ocpi_datetime(now),
        "publicationCreator": {
            "country": publisher.country.upper(),
            "nationalIdentifier": publisher.national_identifier,
        },
        "headerInformation": {
            "confidentiality": enum("noRestriction"),
            "informationStatus": enum("real"),
        },
    }


def table_publication(publisher: Publisher, sites: Sequence[Json], now: datetime) -> Json:
    """The static publication of ``sites`` (all of them, or a delta)."""
    table = {
        "idG": publisher.table_id,
        "versionG": _table_version(sites),
        "energyInfrastructureSite": list(sites),
    }
    return _payload(
        TABLE_PUBLICATION, {**_head(publisher, now), "energyInfrastructureTable": [table]}
    )


def status_publication(publisher: Publisher, statuses: Sequence[Json], now: datetime) -> Json:
    """The dynamic publication of ``statuses`` (all of them, or a delta)."""
    return _payload(
        STATUS_PUBLICATION,
        {
            **_head(publisher, now),
            "tableReference": [ref("EnergyInfrastructureTable", publisher.table_id)],
            "energyInfrastructureSiteStatus": list(statuses),
        },
    )


def _table_version(sites: Iterable[Mapping[str, Any]]) -> str:
    return version_of({"sites": sorted(f"{s['idG']}@{s['versionG']}" for s in sites)})


# --- what is published -------------------------------------------------------------------


def published(location: Mapping[str, Any] | None) -> bool:
    """Only a location its owner published is in the feed (OCPI ``publish``;
    ``publish_allowed_to`` narrows it to some drivers, which a public
    access point cannot honour: such a location is left out too)."""
    return bool(
        location and location.get("publish") is True and not location.get("publish_allowed_to")
    )


def records(
    asserted: Mapping[str, Any] | None,
    served_location: Mapping[str, Any] | None,
    tariffs: Mapping[str, Json],
    lang: str,
) -> tuple[Json | None, Json | None]:
    """The static and dynamic record of one location, or (None, None) when
    it is not published. Static data comes from what the owner asserted
    (a status change alone is no new version of the site), dynamic from the
    served object (statuses resolved from every signal)."""
    if asserted is None or served_location is None or not published(asserted):
        return None, None
    static = site_record(asserted, tariffs, lang)
    return static, site_status(served_location, static, tariffs)
