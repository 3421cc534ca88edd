"""Locations module objects of OCPI 2.1.1 (mod_locations.md, tag 2.1.1-d2).

Only what differs from 2.2.1 is declared here; the classes both versions
share field for field (GeoLocation, Image, BusinessDetails, RegularHours,
ExceptionalPeriod, StatusSchedule, EnergySource, DisplayText) are ours.
Ids are CiString(36), as our model holds them (2.1.1 allows 39 for
Location.id and EVSE.uid: longer ones are refused, docs/ocpi-versions.md).
Unknown fields are kept, as in every OcpiModel.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from schemas.ocpi.common import DateTime, OcpiModel
from schemas.ocpi.locations import (
    AdditionalGeoLocation,
    BusinessDetails,
    ConnectorFormat,
    CountryAlpha3,
    EnergySource,
    EnvironmentalImpactCategory,
    EvseStatus,
    ExceptionalPeriod,
    GeoLocation,
    Image,
    ParkingRestriction,
    RegularHours,
    StatusSchedule,
    TimeZone,
)
from schemas.ocpi.types import Bool, DisplayText, Int, Number, Url, ci, string


class LocationType(StrEnum):
    """2.1.1 LocationType enum (2.2.1 replaced it by the optional ParkingType)."""

    ON_STREET = "ON_STREET"
    PARKING_GARAGE = "PARKING_GARAGE"
    UNDERGROUND_GARAGE = "UNDERGROUND_GARAGE"
    PARKING_LOT = "PARKING_LOT"
    OTHER = "OTHER"
    UNKNOWN = "UNKNOWN"


class Capability(StrEnum):
    """2.1.1 Capability enum: six of the thirteen values of 2.2.1."""

    CHARGING_PROFILE_CAPABLE = "CHARGING_PROFILE_CAPABLE"
    CREDIT_CARD_PAYABLE = "CREDIT_CARD_PAYABLE"
    REMOTE_START_STOP_CAPABLE = "REMOTE_START_STOP_CAPABLE"
    RESERVABLE = "RESERVABLE"
    RFID_READER = "RFID_READER"
    UNLOCK_CAPABLE = "UNLOCK_CAPABLE"


class Facility(StrEnum):
    """2.1.1 Facility enum (no BIKE_SHARING, TRAM_STOP, METRO_STATION, PARKING_LOT)."""

    HOTEL = "HOTEL"
    RESTAURANT = "RESTAURANT"
    CAFE = "CAFE"
    MALL = "MALL"
    SUPERMARKET = "SUPERMARKET"
    SPORT = "SPORT"
    RECREATION_AREA = "RECREATION_AREA"
    NATURE = "NATURE"
    MUSEUM = "MUSEUM"
    BUS_STOP = "BUS_STOP"
    TAXI_STAND = "TAXI_STAND"
    TRAIN_STATION = "TRAIN_STATION"
    AIRPORT = "AIRPORT"
    CARPOOL_PARKING = "CARPOOL_PARKING"
    FUEL_STATION = "FUEL_STATION"
    WIFI = "WIFI"


class ConnectorType(StrEnum):
    """2.1.1 ConnectorType enum: 25 of the 40 values of 2.2.1."""

    CHADEMO = "CHADEMO"
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
    TESLA_R = "TESLA_R"
    TESLA_S = "TESLA_S"


class PowerType(StrEnum):
    """2.1.1 PowerType enum (no AC_2_PHASE, AC_2_PHASE_SPLIT)."""

    AC_1_PHASE = "AC_1_PHASE"
    AC_3_PHASE = "AC_3_PHASE"
    DC = "DC"


class EnvironmentalImpact(OcpiModel):
    """2.1.1 EnvironmentalImpact class: the category is named ``source``."""

    source: EnvironmentalImpactCategory
    amount: Annotated[Number, Field(ge=0)]


class EnergyMix(OcpiModel):
    """2.1.1 EnergyMix class."""

    is_green_energy: Bool
    energy_sources: list[EnergySource] | None = None
    environ_impact: list[EnvironmentalImpact] | None = None
    supplier_name: Annotated[str, string(64)] | None = None
    energy_product_name: Annotated[str, string(64)] | None = None


class Hours(OcpiModel):
    """2.1.1 Hours class: a choice of ``regular_hours`` or ``twentyfourseven``."""

    regular_hours: list[RegularHours] | None = None
    twentyfourseven: Bool | None = None
    exceptional_openings: list[ExceptionalPeriod] | None = None
    exceptional_closings: list[ExceptionalPeriod] | None = None

    @model_validator(mode="after")
    def _one_of_two(self) -> Hours:
        if self.twentyfourseven and self.regular_hours:
            raise ValueError("regular_hours must not be given when twentyfourseven is true")
        if not self.twentyfourseven and not self.regular_hours:
            raise ValueError("give regular_hours, or twentyfourseven true")
        return self


class Connector(OcpiModel):
    """2.1.1 Connector Object: ``voltage``/``amperage``, one ``tariff_id``."""

    id: Annotated[str, ci(36)]
    standard: ConnectorType
    format: ConnectorFormat
    power_type: PowerType
    voltage: Annotated[Int, Field(ge=0)]
    amperage: Annotated[Int, Field(ge=0)]
    tariff_id: Annotated[str, ci(36)] | None = None
    terms_and_conditions: Url | None = None
    last_updated: DateTime


class Evse(OcpiModel):
    """2.1.1 EVSE Object."""

    uid: Annotated[str, ci(36)]
    evse_id: Annotated[str, ci(48)] | None = None
    status: EvseStatus
    status_schedule: list[StatusSchedule] | None = None
    capabilities: list[Capability] | None = None
    connectors: Annotated[list[Connector], Field(min_length=1)]
    floor_level: Annotated[str, string(4)] | None = None
    coordinates: GeoLocation | None = None
    physical_reference: Annotated[str, string(16)] | None = None
    directions: list[DisplayText] | None = None
    parking_restrictions: list[ParkingRestriction] | None = None
    images: list[Image] | None = None
    last_updated: DateTime


class Location(OcpiModel):
    """2.1.1 Location Object: no owner party, no ``publish``; a required
    ``type``; ``time_zone`` optional (our model needs it: see
    docs/ocpi-versions.md)."""

    id: Annotated[str, ci(36)]
    type: LocationType
    name: Annotated[str, string(255)] | None = None
    address: Annotated[str, string(45)]
    city: Annotated[str, string(45)]
    postal_code: Annotated[str, string(10)]
    country: CountryAlpha3
    coordinates: GeoLocation
    related_locations: list[AdditionalGeoLocation] | None = None
    evses: list[Evse] | None = None
    directions: list[DisplayText] | None = None
    operator: BusinessDetails | None = None
    suboperator: BusinessDetails | None = None
    owner: BusinessDetails | None = None
    facilities: list[Facility] | None = None
    time_zone: TimeZone | None = None
    opening_times: Hours | None = None
    charging_when_closed: Bool | None = None
    images: list[Image] | None = None
    energy_mix: EnergyMix | None = None
    last_updated: DateTime
