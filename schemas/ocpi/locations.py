"""Locations module objects (OCPI 2.2.1, mod_locations.asciidoc).

Location, EVSE and Connector with every data type of the module, field
limits from the spec's tables, and ``validate_patch`` for PATCH bodies.
Unknown fields are kept (``common.OcpiModel``); unknown enum values are refused.

Fields are declared in the spec's order so a dump reads like the spec. Optional
fields (``?`` and ``*``) default to ``None`` and are left out of a dump by
``types.to_json``; spec defaults (``charging_when_closed``: true) are not
materialised, so what a partner sent is what we store and send back.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    model_validator,
)

from schemas.ocpi.common import CountryCode, DateTime, OcpiModel, PartyId, ci_string, fold
from schemas.ocpi.patch import ValidatedPatch, validate_patch_body
from schemas.ocpi.types import (
    Bool,
    DisplayText,
    Int,
    Number,
    TokenType,
    Url,
    ci,
    string,
    to_json,
)

LocationId = ci_string(36)  # mod_locations, Location.id: CiString(36)
EvseUid = ci_string(36)  # mod_locations, EVSE.uid: CiString(36)


# --------------------------------------------------------------------------
# Enums (mod_locations, "Data types"). StrEnum: the JSON value is the name.
# --------------------------------------------------------------------------


class EvseStatus(StrEnum):
    """mod_locations, Status enum."""

    AVAILABLE = "AVAILABLE"
    BLOCKED = "BLOCKED"
    CHARGING = "CHARGING"
    INOPERATIVE = "INOPERATIVE"
    OUTOFORDER = "OUTOFORDER"
    PLANNED = "PLANNED"
    REMOVED = "REMOVED"
    RESERVED = "RESERVED"
    UNKNOWN = "UNKNOWN"


Status = EvseStatus  # the spec's name for it


class Capability(StrEnum):
    """mod_locations, Capability enum."""

    CHARGING_PROFILE_CAPABLE = "CHARGING_PROFILE_CAPABLE"
    CHARGING_PREFERENCES_CAPABLE = "CHARGING_PREFERENCES_CAPABLE"
    CHIP_CARD_SUPPORT = "CHIP_CARD_SUPPORT"
    CONTACTLESS_CARD_SUPPORT = "CONTACTLESS_CARD_SUPPORT"
    CREDIT_CARD_PAYABLE = "CREDIT_CARD_PAYABLE"
    DEBIT_CARD_PAYABLE = "DEBIT_CARD_PAYABLE"
    PED_TERMINAL = "PED_TERMINAL"
    REMOTE_START_STOP_CAPABLE = "REMOTE_START_STOP_CAPABLE"
    RESERVABLE = "RESERVABLE"
    RFID_READER = "RFID_READER"
    START_SESSION_CONNECTOR_REQUIRED = "START_SESSION_CONNECTOR_REQUIRED"
    TOKEN_GROUP_CAPABLE = "TOKEN_GROUP_CAPABLE"  # noqa: S105 (an enum value, not a secret)
    UNLOCK_CAPABLE = "UNLOCK_CAPABLE"


class ConnectorFormat(StrEnum):
    """mod_locations, ConnectorFormat enum."""

    SOCKET = "SOCKET"
    CABLE = "CABLE"


class ConnectorType(StrEnum):
    """mod_locations, ConnectorType enum (all 40 values of 2.2.1)."""

    CHADEMO = "CHADEMO"
    CHAOJI = "CHAOJI"
    DOMESTIC_A = "DOMESTIC_A"
    DOMESTIC_B = "DOMESTIC_B"
    DOMESTIC_C = "DOMESTIC_C"
    DOMESTIC_D = "DOMESTIC_D"
    DOMESTIC_E = "DOMESTIC_E"
    DOMESTIC_F = "DOMESTIC_F"
    DOMESTIC_G = "DOMESTIC_G"
    DOMESTIC_H = "DOMESTIC_H"
    DOMESTIC_I = "DOMESTIC_I"
    DOMESTIC_J = "DOMESTIC_J"
    DOMESTIC_K = "DOMESTIC_K"
    DOMESTIC_L = "DOMESTIC_L"
    DOMESTIC_M = "DOMESTIC_M"
    DOMESTIC_N = "DOMESTIC_N"
    DOMESTIC_O = "DOMESTIC_O"
    GBT_AC = "GBT_AC"
    GBT_DC = "GBT_DC"
    # The spec spells these four in mixed case; the value is what goes on the wire.
    IEC_60309_2_SINGLE_16 = "IEC_60309_2_single_16"
    IEC_60309_2_THREE_16 = "IEC_60309_2_three_16"
    IEC_60309_2_THREE_32 = "IEC_60309_2_three_32"
    IEC_60309_2_THREE_64 = "IEC_60309_2_three_64"
    IEC_62196_T1 = "IEC_62196_T1"
    IEC_62196_T1_COMBO = "IEC_62196_T1_COMBO"
    IEC_62196_T2 = "IEC_62196_T2"
    IEC_62196_T2_COMBO = "IEC_62196_T2_COMBO"
    IEC_62196_T3A = "IEC_62196_T3A"
    IEC_62196_T3C = "IEC_62196_T3C"
    NEMA_5_20 = "NEMA_5_20"
    NEMA_6_30 = "NEMA_6_30"
    NEMA_6_50 = "NEMA_6_50"
    NEMA_10_30 = "NEMA_10_30"
    NEMA_10_50 = "NEMA_10_50"
    NEMA_14_30 = "NEMA_14_30"
    NEMA_14_50 = "NEMA_14_50"
    PANTOGRAPH_BOTTOM_UP = "PANTOGRAPH_BOTTOM_UP"
    PANTOGRAPH_TOP_DOWN = "PANTOGRAPH_TOP_DOWN"
    TESLA_R = "TESLA_R"
    TESLA_S = "TESLA_S"


class EnergySourceCategory(StrEnum):
    """mod_locations, EnergySourceCategory enum."""

    NUCLEAR = "NUCLEAR"
    GENERAL_FOSSIL = "GENERAL_FOSSIL"
    COAL = "COAL"
    GAS = "GAS"
    GENERAL_GREEN = "GENERAL_GREEN"
    SOLAR = "SOLAR"
    WIND = "WIND"
    WATER = "WATER"


class EnvironmentalImpactCategory(StrEnum):
    """mod_locations, EnvironmentalImpactCategory enum."""

    NUCLEAR_WASTE = "NUCLEAR_WASTE"
    CARBON_DIOXIDE = "CARBON_DIOXIDE"


class Facility(StrEnum):
    """mod_locations, Facility enum."""

    HOTEL = "HOTEL"
    RESTAURANT = "RESTAURANT"
    CAFE = "CAFE"
    MALL = "MALL"
    SUPERMARKET = "SUPERMARKET"
    SPORT = "SPORT"
    RECREATION_AREA = "RECREATION_AREA"
    NATURE = "NATURE"
    MUSEUM = "MUSEUM"
    BIKE_SHARING = "BIKE_SHARING"
    BUS_STOP = "BUS_STOP"
    TAXI_STAND = "TAXI_STAND"
    TRAM_STOP = "TRAM_STOP"
    METRO_STATION = "METRO_STATION"
    TRAIN_STATION = "TRAIN_STATION"
    AIRPORT = "AIRPORT"
    PARKING_LOT = "PARKING_LOT"
    CARPOOL_PARKING = "CARPOOL_PARKING"
    FUEL_STATION = "FUEL_STATION"
    WIFI = "WIFI"


class ImageCategory(StrEnum):
    """mod_locations, ImageCategory enum."""

    CHARGER = "CHARGER"
    ENTRANCE = "ENTRANCE"
    LOCATION = "LOCATION"
    NETWORK = "NETWORK"
    OPERATOR = "OPERATOR"
    OTHER = "OTHER"
    OWNER = "OWNER"


class ParkingRestriction(StrEnum):
    """mod_locations, ParkingRestriction enum."""

    EV_ONLY = "EV_ONLY"
    PLUGGED = "PLUGGED"
    DISABLED = "DISABLED"
    CUSTOMERS = "CUSTOMERS"
    MOTORCYCLES = "MOTORCYCLES"


class ParkingType(StrEnum):
    """mod_locations, ParkingType enum."""

    ALONG_MOTORWAY = "ALONG_MOTORWAY"
    PARKING_GARAGE = "PARKING_GARAGE"
    PARKING_LOT = "PARKING_LOT"
    ON_DRIVEWAY = "ON_DRIVEWAY"
    ON_STREET = "ON_STREET"
    UNDERGROUND_GARAGE = "UNDERGROUND_GARAGE"


class PowerType(StrEnum):
    """mod_locations, PowerType enum."""

    AC_1_PHASE = "AC_1_PHASE"
    AC_2_PHASE = "AC_2_PHASE"
    AC_2_PHASE_SPLIT = "AC_2_PHASE_SPLIT"
    AC_3_PHASE = "AC_3_PHASE"
    DC = "DC"


# --------------------------------------------------------------------------
# Field types
# --------------------------------------------------------------------------


def _within(limit: int, what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if abs(float(value)) > limit:
            raise ValueError(f"{what} must be between -{limit} and {limit} degrees")
        return value

    return check


# mod_locations, GeoLocation: latitude string(10) with regex
# -?[0-9]{1,2}\.[0-9]{5,7}, longitude string(11) with -?[0-9]{1,3}\.[0-9]{5,7}.
# The regexes admit one character more than the lengths (a sign, all integer
# digits and 7 decimals: "-33.8688197", "-126.1049650"). We let the regex win:
# the string(n) limits would refuse southern and western coordinates at the
# precision the note under the table calls "better". The range check (WGS 84)
# is ours: the regex alone accepts a latitude of 99.
Latitude = Annotated[
    str,
    StringConstraints(pattern=r"^-?[0-9]{1,2}\.[0-9]{5,7}$"),
    AfterValidator(_within(90, "latitude")),
]
Longitude = Annotated[
    str,
    StringConstraints(pattern=r"^-?[0-9]{1,3}\.[0-9]{5,7}$"),
    AfterValidator(_within(180, "longitude")),
]

# mod_locations, RegularHours: string(5), 24h "HH:MM" with leading zeros.
LocalTime = Annotated[str, StringConstraints(pattern=r"^([0-1][0-9]|2[0-3]):[0-5][0-9]$")]

# mod_locations, Location.country: string(3), ISO 3166-1 alpha-3 (upper case
# as ISO publishes them; the field is a case-sensitive string).
CountryAlpha3 = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]

# mod_locations, Location.time_zone: string(255), an IANA tzdata name such as
# "Europe/Oslo". Checked by shape, not against a tz database: the one on the
# host may be older than the partner's.
TimeZone = Annotated[
    str,
    StringConstraints(max_length=255, pattern=r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$"),
]

Percentage = Annotated[Number, Field(ge=0, le=100)]


def _unique_by(key: str, what: str) -> Callable[[list[Any] | None], list[Any] | None]:
    """List check: no two items share ``key`` compared as CiStrings.

    A field-level check rather than a model validator so that a PATCH carrying
    the list gets it too (see ``validate_patch``).
    """

    def check(items: list[Any] | None) -> list[Any] | None:
        if items is None:
            return None
        seen: set[str] = set()
        for item in items:
            folded = fold(getattr(item, key))
            if folded in seen:
                raise ValueError(f"two {what} share the {key} {getattr(item, key)!r}")
            seen.add(folded)
        return items

    return check


# --------------------------------------------------------------------------
# Classes (mod_locations, "Data types")
# --------------------------------------------------------------------------


class GeoLocation(OcpiModel):
    """mod_locations, GeoLocation class (WGS 84)."""

    latitude: Latitude
    longitude: Longitude


class AdditionalGeoLocation(OcpiModel):
    """mod_locations, AdditionalGeoLocation class."""

    latitude: Latitude
    longitude: Longitude
    name: DisplayText | None = None


class Image(OcpiModel):
    """mod_locations, Image class."""

    url: Url
    thumbnail: Url | None = None
    category: ImageCategory
    type: Annotated[str, ci(4)]
    width: Annotated[Int, Field(ge=0, le=99999)] | None = None  # int(5)
    height: Annotated[Int, Field(ge=0, le=99999)] | None = None  # int(5)


class BusinessDetails(OcpiModel):
    """mod_locations, BusinessDetails class."""

    name: Annotated[str, string(100)]
    website: Url | None = None
    logo: Image | None = None


class EnergySource(OcpiModel):
    """mod_locations, EnergySource class."""

    source: EnergySourceCategory
    percentage: Percentage


class EnvironmentalImpact(OcpiModel):
    """mod_locations, EnvironmentalImpact class (g/kWh)."""

    category: EnvironmentalImpactCategory
    amount: Annotated[Number, Field(ge=0)]


class EnergyMix(OcpiModel):
    """mod_locations, EnergyMix class."""

    is_green_energy: Bool
    energy_sources: list[EnergySource] | None = None
    environ_impact: list[EnvironmentalImpact] | None = None
    supplier_name: Annotated[str, string(64)] | None = None
    energy_product_name: Annotated[str, string(64)] | None = None


class ExceptionalPeriod(OcpiModel):
    """mod_locations, ExceptionalPeriod class (UTC)."""

    period_begin: DateTime
    period_end: DateTime


class RegularHours(OcpiModel):
    """mod_locations, RegularHours class (local time)."""

    weekday: Annotated[Int, Field(ge=1, le=7)]  # int(1), Monday (1) till Sunday (7)
    period_begin: LocalTime
    period_end: LocalTime

    @model_validator(mode="after")
    def _end_after_begin(self) -> RegularHours:
        # RegularHours.period_end: "Must be later than period_begin". "HH:MM"
        # with leading zeros orders as text.
        if self.period_end <= self.period_begin:
            raise ValueError("period_end must be later than period_begin")
        return self


class Hours(OcpiModel):
    """mod_locations, Hours class: opening and access hours."""

    twentyfourseven: Bool
    regular_hours: list[RegularHours] | None = None
    exceptional_openings: list[ExceptionalPeriod] | None = None
    exceptional_closings: list[ExceptionalPeriod] | None = None

    @model_validator(mode="after")
    def _regular_hours_iff_not_247(self) -> Hours:
        # Hours.regular_hours: "Only to be used if twentyfourseven=false, then
        # this field needs to contain at least one RegularHours object."
        if self.twentyfourseven and self.regular_hours:
            raise ValueError("regular_hours must not be given when twentyfourseven is true")
        if not self.twentyfourseven and not self.regular_hours:
            raise ValueError("regular_hours needs at least one entry when twentyfourseven is false")
        return self


class PublishTokenType(OcpiModel):
    """mod_locations, PublishTokenType class: a token a Location may be shown to."""

    uid: Annotated[str, ci(36)] | None = None
    type: TokenType | None = None
    visual_number: Annotated[str, string(64)] | None = None
    issuer: Annotated[str, string(64)] | None = None
    group_id: Annotated[str, ci(36)] | None = None

    @model_validator(mode="after")
    def _identifies_a_token(self) -> PublishTokenType:
        # The three SHALL rules under the PublishTokenType table.
        if self.uid is None and self.visual_number is None and self.group_id is None:
            raise ValueError("one of uid, visual_number or group_id must be set")
        if self.uid is not None and self.type is None:
            raise ValueError("type must be set when uid is set")
        if self.visual_number is not None and self.issuer is None:
            raise ValueError("issuer must be set when visual_number is set")
        return self


class StatusSchedule(OcpiModel):
    """mod_locations, StatusSchedule class: a planned status period."""

    period_begin: DateTime
    period_end: DateTime | None = None
    status: EvseStatus


# --------------------------------------------------------------------------
# Objects (mod_locations, "Object description")
# --------------------------------------------------------------------------


class Connector(OcpiModel):
    """mod_locations, Connector Object."""

    id: Annotated[str, ci(36)]
    standard: ConnectorType
    format: ConnectorFormat
    power_type: PowerType
    max_voltage: Annotated[Int, Field(ge=0)]
    max_amperage: Annotated[Int, Field(ge=0)]
    max_electric_power: Annotated[Int, Field(ge=0)] | None = None
    tariff_ids: list[Annotated[str, ci(36)]] | None = None
    terms_and_conditions: Url | None = None
    last_updated: DateTime


class Evse(OcpiModel):
    """mod_locations, EVSE Object."""

    uid: Annotated[str, ci(36)]
    evse_id: Annotated[str, ci(48)] | None = None
    status: EvseStatus
    status_schedule: list[StatusSchedule] | None = None
    capabilities: list[Capability] | None = None
    # "+": at least one. Connector.id: "Two Connectors may have the same id as
    # long as they do not belong to the same EVSE object."
    connectors: Annotated[
        list[Connector], Field(min_length=1), AfterValidator(_unique_by("id", "connectors"))
    ]
    floor_level: Annotated[str, string(4)] | None = None
    coordinates: GeoLocation | None = None
    physical_reference: Annotated[str, string(16)] | None = None
    directions: list[DisplayText] | None = None
    parking_restrictions: list[ParkingRestriction] | None = None
    images: list[Image] | None = None
    last_updated: DateTime


class Location(OcpiModel):
    """mod_locations, Location Object."""

    country_code: CountryCode  # CiString(2), ISO-3166 alpha-2
    party_id: PartyId  # CiString(3)
    id: Annotated[str, ci(36)]
    publish: Bool
    publish_allowed_to: list[PublishTokenType] | None = None
    name: Annotated[str, string(255)] | None = None
    # address string(255) and state string(45) follow the 2.2.1 errata
    # (release-2.2.1-bugfixes): "Earlier releases ... mistakenly gave maximum
    # lengths of 45 and 20"; v2.2.1-d2 still says 45 and 20.
    address: Annotated[str, string(255)]
    city: Annotated[str, string(45)]
    postal_code: Annotated[str, string(10)] | None = None
    state: Annotated[str, string(45)] | None = None
    country: CountryAlpha3
    coordinates: GeoLocation
    related_locations: list[AdditionalGeoLocation] | None = None
    parking_type: ParkingType | None = None
    # EVSE.uid "uniquely identifies the EVSE within the CPOs platform".
    evses: Annotated[list[Evse], AfterValidator(_unique_by("uid", "EVSEs"))] | None = None
    directions: list[DisplayText] | None = None
    operator: BusinessDetails | None = None
    suboperator: BusinessDetails | None = None
    owner: BusinessDetails | None = None
    facilities: list[Facility] | None = None
    time_zone: TimeZone
    opening_times: Hours | None = None
    charging_when_closed: Bool | None = None  # absent means true (spec default)
    images: list[Image] | None = None
    energy_mix: EnergyMix | None = None
    last_updated: DateTime

    @model_validator(mode="after")
    def _publish_allowed_to_only_when_unpublished(self) -> Location:
        # Location.publish_allowed_to: "may only be used when the publish
        # field is set to false".
        if self.publish and self.publish_allowed_to:
            raise ValueError("publish_allowed_to may only be used when publish is false")
        return self


# --------------------------------------------------------------------------
# PATCH bodies (mod_locations "PATCH Method"; transport_and_format "PATCH")
# --------------------------------------------------------------------------


def validate_patch(
    target: type[Location] | type[Evse] | type[Connector], body: Any
) -> ValidatedPatch:
    """Validate the body of a PATCH on a Location, EVSE or Connector.

    Every present field is checked with its type in ``target``; ``last_updated``
    is required; ``null`` is accepted only on optional fields and means
    "clear it"; unknown fields are kept and merged like any other (``null``
    removes one). Cross-field rules of the whole
    object (``Location.publish_allowed_to`` only when unpublished) cannot be
    judged on a fragment: validate the merged object for those.

    Raises ``pydantic.ValidationError`` listing every offending field; the HTTP
    layer answers it with OCPI 2001.
    """
    return validate_patch_body(target, body)


class EvseStatusPatch(OcpiModel):
    """The body of ``PATCH .../locations/{cc}/{pid}/{location_id}/{evse_uid}``
    that carries a status change. ``last_updated`` is required on every PATCH
    (transport_and_format, PATCH)."""

    status: EvseStatus
    last_updated: DateTime


__all__ = [
    "AdditionalGeoLocation",
    "BusinessDetails",
    "Capability",
    "Connector",
    "ConnectorFormat",
    "ConnectorType",
    "DisplayText",
    "EnergyMix",
    "EnergySource",
    "EnergySourceCategory",
    "EnvironmentalImpact",
    "EnvironmentalImpactCategory",
    "Evse",
    "EvseStatus",
    "EvseStatusPatch",
    "EvseUid",
    "ExceptionalPeriod",
    "Facility",
    "GeoLocation",
    "Hours",
    "Image",
    "ImageCategory",
    "Location",
    "LocationId",
    "ParkingRestriction",
    "ParkingType",
    "PowerType",
    "PublishTokenType",
    "RegularHours",
    "Status",
    "StatusSchedule",
    "TokenType",
    "ValidatedPatch",
    "to_json",
    "validate_patch",
]
