"""Locations module objects of OCPI 2.3.0 (mod_locations.asciidoc, tag v2.3.0).

What differs from 2.2.1 (``schemas.ocpi.locations``, whose unchanged
classes are reused here):

* Location: ``parking_places`` (Parking objects) and ``help_phone``.
* EVSE: ``parking`` (EVSEParking links to the Location's parking places)
  and ``accepted_service_providers``.
* Connector: ``capabilities`` (ConnectorCapability).
* OpenEnums: Capability, ConnectorType (adds MCS and SAE_J3400),
  EnvironmentalImpactCategory, Facility, ImageCategory, ParkingRestriction
  (adds EMPLOYEES, TAXIS and TENANTS), ParkingType, VehicleType, and
  TokenType (mod_tokens) in PublishTokenType. A value our 2.2.1 enum does
  not list is kept as its string.

Field limits: Location ``address`` string(255) and ``state`` string(45), as
2.3.0 edition 2 corrects them (v2.3.0 still says 45 and 20, as 2.2.1 did;
our 2.2.1 model takes the same correction). EVSEParking: the table makes it
a class, the v2.3.0 examples list bare parking ids (edition 2 fixes the
examples); both are accepted and kept as received.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, PlainValidator, model_validator

from schemas.ocpi import locations as v221
from schemas.ocpi.common import CountryCode, DateTime, OcpiModel, PartyId, fold
from schemas.ocpi.locations import (
    AdditionalGeoLocation,
    ConnectorFormat,
    CountryAlpha3,
    EnergySource,
    EvseStatus,
    GeoLocation,
    Hours,
    PowerType,
    StatusSchedule,
    TimeZone,
)
from schemas.ocpi.types import Bool, DisplayText, Int, Number, TokenType, Url, ci, string
from schemas.ocpi.v230.types import AS_TEXT, open_enum_validator

# --------------------------------------------------------------------------
# OpenEnums over the 2.2.1 enums, and the values 2.3.0 adds to them
# --------------------------------------------------------------------------

OpenCapability = Annotated[
    v221.Capability | str, PlainValidator(open_enum_validator(v221.Capability)), AS_TEXT
]
OpenConnectorType = Annotated[
    v221.ConnectorType | str, PlainValidator(open_enum_validator(v221.ConnectorType)), AS_TEXT
]
OpenEnvironmentalImpactCategory = Annotated[
    v221.EnvironmentalImpactCategory | str,
    PlainValidator(open_enum_validator(v221.EnvironmentalImpactCategory)),
    AS_TEXT,
]
OpenFacility = Annotated[
    v221.Facility | str, PlainValidator(open_enum_validator(v221.Facility)), AS_TEXT
]
OpenImageCategory = Annotated[
    v221.ImageCategory | str, PlainValidator(open_enum_validator(v221.ImageCategory)), AS_TEXT
]
OpenParkingRestriction = Annotated[
    v221.ParkingRestriction | str,
    PlainValidator(open_enum_validator(v221.ParkingRestriction)),
    AS_TEXT,
]
OpenParkingType = Annotated[
    v221.ParkingType | str, PlainValidator(open_enum_validator(v221.ParkingType)), AS_TEXT
]
OpenTokenType = Annotated[TokenType | str, PlainValidator(open_enum_validator(TokenType)), AS_TEXT]

# Listed by 2.3.0, not by 2.2.1: kept as strings like any unlisted value.
CONNECTOR_TYPES_ADDED = frozenset({"MCS", "SAE_J3400"})
PARKING_RESTRICTIONS_ADDED = frozenset({"EMPLOYEES", "TAXIS", "TENANTS"})


class ConnectorCapability(StrEnum):
    """mod_locations, ConnectorCapability OpenEnum (new in 2.3.0)."""

    ISO_15118_2_PLUG_AND_CHARGE = "ISO_15118_2_PLUG_AND_CHARGE"
    ISO_15118_20_PLUG_AND_CHARGE = "ISO_15118_20_PLUG_AND_CHARGE"


class VehicleType(StrEnum):
    """mod_locations, VehicleType OpenEnum (new in 2.3.0)."""

    MOTORCYCLE = "MOTORCYCLE"
    PERSONAL_VEHICLE = "PERSONAL_VEHICLE"
    PERSONAL_VEHICLE_WITH_TRAILER = "PERSONAL_VEHICLE_WITH_TRAILER"
    VAN = "VAN"
    SEMI_TRACTOR = "SEMI_TRACTOR"
    RIGID = "RIGID"
    TRUCK_WITH_TRAILER = "TRUCK_WITH_TRAILER"
    BUS = "BUS"
    DISABLED = "DISABLED"


class ParkingDirection(StrEnum):
    """mod_locations, ParkingDirection enum (closed; new in 2.3.0)."""

    PARALLEL = "PARALLEL"
    PERPENDICULAR = "PERPENDICULAR"
    ANGLE = "ANGLE"


class EvsePosition(StrEnum):
    """mod_locations, EVSEPosition enum (closed; new in 2.3.0)."""

    LEFT = "LEFT"
    RIGHT = "RIGHT"
    CENTER = "CENTER"


OpenConnectorCapability = Annotated[
    ConnectorCapability | str, PlainValidator(open_enum_validator(ConnectorCapability)), AS_TEXT
]
OpenVehicleType = Annotated[
    VehicleType | str, PlainValidator(open_enum_validator(VehicleType)), AS_TEXT
]

ParkingId = Annotated[str, ci(36)]  # Parking.id: CiString[36]

# --------------------------------------------------------------------------
# Classes whose enums opened
# --------------------------------------------------------------------------


class Image(OcpiModel):
    """mod_locations, Image class (category an OpenEnum)."""

    url: Url
    thumbnail: Url | None = None
    category: OpenImageCategory
    type: Annotated[str, ci(4)]
    width: Annotated[Int, Field(ge=0, le=99999)] | None = None
    height: Annotated[Int, Field(ge=0, le=99999)] | None = None


class BusinessDetails(OcpiModel):
    """mod_locations, BusinessDetails class."""

    name: Annotated[str, string(100)]
    website: Url | None = None
    logo: Image | None = None


class EnvironmentalImpact(OcpiModel):
    """mod_locations, EnvironmentalImpact class (category an OpenEnum)."""

    category: OpenEnvironmentalImpactCategory
    amount: Annotated[Number, Field(ge=0)]


class EnergyMix(OcpiModel):
    """mod_locations, EnergyMix class."""

    is_green_energy: Bool
    energy_sources: list[EnergySource] | None = None
    environ_impact: list[EnvironmentalImpact] | None = None
    supplier_name: Annotated[str, string(64)] | None = None
    energy_product_name: Annotated[str, string(64)] | None = None


class PublishTokenType(OcpiModel):
    """mod_locations, PublishTokenType class (type an OpenEnum in 2.3.0)."""

    uid: Annotated[str, ci(36)] | None = None
    type: OpenTokenType | None = None
    visual_number: Annotated[str, string(64)] | None = None
    issuer: Annotated[str, string(64)] | None = None
    group_id: Annotated[str, ci(36)] | None = None

    @model_validator(mode="after")
    def _identifies_a_token(self) -> PublishTokenType:
        # The same three rules as in 2.2.1.
        if self.uid is None and self.visual_number is None and self.group_id is None:
            raise ValueError("one of uid, visual_number or group_id must be set")
        if self.uid is not None and self.type is None:
            raise ValueError("type must be set when uid is set")
        if self.visual_number is not None and self.issuer is None:
            raise ValueError("issuer must be set when visual_number is set")
        return self


# --------------------------------------------------------------------------
# New classes
# --------------------------------------------------------------------------

_Measure = Annotated[Number, Field(ge=0)]


class Parking(OcpiModel):
    """mod_locations, Parking object (new in 2.3.0): a parking space a
    vehicle can use while charging. Sizes in cm, weight in kg, time_limit in
    minutes."""

    id: ParkingId
    physical_reference: Annotated[str, string(12)] | None = None
    vehicle_types: Annotated[list[OpenVehicleType], Field(min_length=1)]  # card. +
    max_vehicle_weight: _Measure | None = None
    max_vehicle_height: _Measure | None = None
    max_vehicle_length: _Measure | None = None
    max_vehicle_width: _Measure | None = None
    parking_space_length: _Measure | None = None
    parking_space_width: _Measure | None = None
    dangerous_goods_allowed: Bool | None = None
    direction: ParkingDirection | None = None
    drive_through: Bool | None = None
    restricted_to_type: Bool
    reservation_required: Bool
    time_limit: Annotated[Number, Field(ge=0)] | None = None
    roofed: Bool | None = None
    images: list[Image] | None = None
    lighting: Bool | None = None
    refrigeration_outlet: Bool | None = None
    standards: list[Annotated[str, ci(36)]] | None = None
    # CiString without a length; bounded as an OpenEnum value is.
    apds_reference: Annotated[str, ci(255)] | None = None


class EvseParking(OcpiModel):
    """mod_locations, EVSEParking class (new in 2.3.0)."""

    parking_id: ParkingId
    evse_position: EvsePosition | None = None


def parking_id_of(link: EvseParking | str) -> str:
    return link if isinstance(link, str) else link.parking_id


# --------------------------------------------------------------------------
# Objects
# --------------------------------------------------------------------------


class Connector(OcpiModel):
    """mod_locations, Connector object (2.3.0)."""

    id: Annotated[str, ci(36)]
    standard: OpenConnectorType
    format: ConnectorFormat
    power_type: PowerType
    max_voltage: Annotated[Int, Field(ge=0)]
    max_amperage: Annotated[Int, Field(ge=0)]
    max_electric_power: Annotated[Int, Field(ge=0)] | None = None
    tariff_ids: list[Annotated[str, ci(36)]] | None = None
    terms_and_conditions: Url | None = None
    capabilities: list[OpenConnectorCapability] | None = None
    last_updated: DateTime


class Evse(OcpiModel):
    """mod_locations, EVSE object (2.3.0)."""

    uid: Annotated[str, ci(36)]
    evse_id: Annotated[str, ci(48)] | None = None
    status: EvseStatus
    status_schedule: list[StatusSchedule] | None = None
    capabilities: list[OpenCapability] | None = None
    connectors: Annotated[
        list[Connector], Field(min_length=1), AfterValidator(v221._unique_by("id", "connectors"))
    ]
    floor_level: Annotated[str, string(4)] | None = None
    coordinates: GeoLocation | None = None
    physical_reference: Annotated[str, string(16)] | None = None
    directions: list[DisplayText] | None = None
    parking_restrictions: list[OpenParkingRestriction] | None = None
    parking: list[EvseParking | ParkingId] | None = None
    images: list[Image] | None = None
    # String[50] per name (the table's "String[50]").
    accepted_service_providers: list[Annotated[str, string(50)]] | None = None
    last_updated: DateTime


class Location(OcpiModel):
    """mod_locations, Location object (2.3.0)."""

    country_code: CountryCode
    party_id: PartyId
    id: Annotated[str, ci(36)]
    publish: Bool
    publish_allowed_to: list[PublishTokenType] | None = None
    name: Annotated[str, string(255)] | None = None
    address: Annotated[str, string(255)]
    city: Annotated[str, string(45)]
    postal_code: Annotated[str, string(10)] | None = None
    state: Annotated[str, string(45)] | None = None
    country: CountryAlpha3
    coordinates: GeoLocation
    related_locations: list[AdditionalGeoLocation] | None = None
    parking_type: OpenParkingType | None = None
    evses: Annotated[list[Evse], AfterValidator(v221._unique_by("uid", "EVSEs"))] | None = None
    parking_places: (
        Annotated[list[Parking], AfterValidator(v221._unique_by("id", "parking places"))] | None
    ) = None
    directions: list[DisplayText] | None = None
    operator: BusinessDetails | None = None
    suboperator: BusinessDetails | None = None
    owner: BusinessDetails | None = None
    facilities: list[OpenFacility] | None = None
    time_zone: TimeZone
    opening_times: Hours | None = None
    charging_when_closed: Bool | None = None
    images: list[Image] | None = None
    energy_mix: EnergyMix | None = None
    help_phone: Annotated[str, ci(25)] | None = None
    last_updated: DateTime

    @model_validator(mode="after")
    def _consistent(self) -> Location:
        if self.publish and self.publish_allowed_to:
            raise ValueError("publish_allowed_to may only be used when publish is false")
        # EVSEParking.parking_id "refers to a Parking object from the
        # containing Location's parking_places field".
        known = {fold(p.id) for p in self.parking_places or ()}
        for evse in self.evses or ():
            for link in evse.parking or ():
                if fold(parking_id_of(link)) not in known:
                    raise ValueError(
                        f"EVSE {evse.uid!r} links to parking {parking_id_of(link)!r}, "
                        "which is not among the Location's parking_places"
                    )
        return self
