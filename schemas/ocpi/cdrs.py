"""CDRs module objects (OCPI 2.2.1, mod_cdrs.asciidoc): the part pricing needs.

ChargingPeriod, CdrDimension and CdrDimensionType. Sessions use the same
ChargingPeriod (mod_sessions, Session.charging_periods links here). Volumes
are exact Decimals (``tariffs.ExactNumber``).

The CDR object (``Cdr``) with CdrLocation, SignedData and SignedValue is at
the end of this module, with CdrToken and AuthMethod (which
``schemas.ocpi.sessions`` re-exports); Price and Tariff are those of
``schemas.ocpi.tariffs``.

Definitions of the time dimensions follow the release-2.2.1-bugfixes errata:
PARKING_TIME is time "during which the vehicle is not requesting power" (the
v2.2.1-d2 text said "not charging", which the errata call a mistake).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from schemas.ocpi.common import CountryCode, DateTime, OcpiModel, PartyId
from schemas.ocpi.locations import ConnectorFormat, ConnectorType, GeoLocation, PowerType
from schemas.ocpi.tariffs import Currency, ExactNumber, Price, Tariff, TariffId, loads_exact
from schemas.ocpi.types import Bool, Int, TokenType, ci, string


class AuthMethod(StrEnum):
    """mod_cdrs, AuthMethod enum (also Session.auth_method)."""

    AUTH_REQUEST = "AUTH_REQUEST"
    COMMAND = "COMMAND"
    WHITELIST = "WHITELIST"


class CdrDimensionType(StrEnum):
    """mod_cdrs, CdrDimensionType enum, with units. The ones marked "Session
    only" in the spec are CURRENT, ENERGY_EXPORT, ENERGY_IMPORT, POWER and
    STATE_OF_CHARGE."""

    CURRENT = "CURRENT"  # A, average; Session only
    ENERGY = "ENERGY"  # kWh; negative when more went to the grid
    ENERGY_EXPORT = "ENERGY_EXPORT"  # kWh; Session only
    ENERGY_IMPORT = "ENERGY_IMPORT"  # kWh; Session only
    MAX_CURRENT = "MAX_CURRENT"  # A, sum over all phases
    MIN_CURRENT = "MIN_CURRENT"  # A, sum over all phases
    MAX_POWER = "MAX_POWER"  # kW
    MIN_POWER = "MIN_POWER"  # kW
    PARKING_TIME = "PARKING_TIME"  # h
    POWER = "POWER"  # kW, average; Session only
    RESERVATION_TIME = "RESERVATION_TIME"  # h
    STATE_OF_CHARGE = "STATE_OF_CHARGE"  # %, 0 to 100; Session only
    TIME = "TIME"  # h, charging


SESSION_ONLY_DIMENSIONS = frozenset(
    {
        CdrDimensionType.CURRENT,
        CdrDimensionType.ENERGY_EXPORT,
        CdrDimensionType.ENERGY_IMPORT,
        CdrDimensionType.POWER,
        CdrDimensionType.STATE_OF_CHARGE,
    }
)

_DURATIONS = frozenset(
    {CdrDimensionType.TIME, CdrDimensionType.PARKING_TIME, CdrDimensionType.RESERVATION_TIME}
)


class CdrDimension(OcpiModel):
    """mod_cdrs, CdrDimension class."""

    type: CdrDimensionType
    volume: ExactNumber

    @model_validator(mode="after")
    def _volume_in_range(self) -> CdrDimension:
        if self.type in _DURATIONS and self.volume < 0:
            raise ValueError(f"a {self.type} volume is a duration and cannot be negative")
        # CdrDimensionType, STATE_OF_CHARGE: "values allowed: 0 to 100".
        if self.type is CdrDimensionType.STATE_OF_CHARGE and not 0 <= self.volume <= 100:
            raise ValueError("STATE_OF_CHARGE must be between 0 and 100")
        return self


class ChargingPeriod(OcpiModel):
    """mod_cdrs, ChargingPeriod class. "A period ends when the next period
    starts. The last period ends when the session ends." """

    start_date_time: DateTime
    dimensions: Annotated[list[CdrDimension], Field(min_length=1)]  # card. +
    # "If not provided, no Tariff is relevant during this period."
    tariff_id: TariffId | None = None


class CdrToken(OcpiModel):
    """mod_cdrs, CdrToken class: the token that started a session, with the
    eMSP that owns it."""

    country_code: CountryCode  # CiString(2)
    party_id: PartyId  # CiString(3)
    uid: Annotated[str, ci(36)]
    type: TokenType
    contract_id: Annotated[str, ci(36)]


# --------------------------------------------------------------------------
# The CDR object (mod_cdrs, "Object description") and its classes
# --------------------------------------------------------------------------

# mod_cdrs, CDR.id: CiString(39); a normal CDR's id is at most 36 long, the
# extra 3 leave room for a Credit CDR's suffix ("Credit CDRs").
CdrId = Annotated[str, ci(39)]
NORMAL_CDR_ID_MAX = 36


class CdrLocation(OcpiModel):
    """mod_cdrs, CdrLocation class: where the session took place, with only
    the EVSE and Connector that were used."""

    id: Annotated[str, ci(36)]
    name: Annotated[str, string(255)] | None = None
    address: Annotated[str, string(45)]
    city: Annotated[str, string(45)]
    postal_code: Annotated[str, string(10)] | None = None
    state: Annotated[str, string(20)] | None = None
    country: Annotated[str, string(3)]  # ISO 3166-1 alpha-3
    coordinates: GeoLocation
    evse_uid: Annotated[str, ci(36)]
    evse_id: Annotated[str, ci(48)]
    connector_id: Annotated[str, ci(36)]
    connector_standard: ConnectorType
    connector_format: ConnectorFormat
    connector_power_type: PowerType


class SignedValue(OcpiModel):
    """mod_cdrs, SignedValue class."""

    nature: Annotated[str, ci(32)]
    plain_data: Annotated[str, string(512)]
    signed_data: Annotated[str, string(5000)]


class SignedData(OcpiModel):
    """mod_cdrs, SignedData class."""

    encoding_method: Annotated[str, ci(36)]
    encoding_method_version: Int | None = None
    public_key: Annotated[str, string(512)] | None = None
    signed_values: Annotated[list[SignedValue], Field(min_length=1)]  # card. +
    url: Annotated[str, string(512)] | None = None


_COSTS = (
    "total_cost",
    "total_fixed_cost",
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
    "total_reservation_cost",
)


class Cdr(OcpiModel):
    """mod_cdrs, CDR object. Immutable once sent: a correction is a Credit
    CDR (``credit``, ``credit_reference_id``), never a change of this one.

    Rules checked beyond the field limits: ``end_date_time`` not before
    ``start_date_time``; at least one charging period; a Credit CDR names the
    CDR it credits, a normal one has an id of at most 36 characters and no
    credit reference; ``total_energy``, ``total_time`` and
    ``total_parking_time`` are not negative (a Credit CDR "contains all the
    data of the original CDR", only ``total_cost`` is negated, so its
    quantities are not negative either; a negative quantity on a Credit CDR
    is tolerated, as some CPOs negate everything); every embedded tariff is
    in the CDR's currency."""

    country_code: CountryCode
    party_id: PartyId
    id: CdrId
    start_date_time: DateTime
    end_date_time: DateTime
    session_id: Annotated[str, ci(36)] | None = None
    cdr_token: CdrToken
    auth_method: AuthMethod
    authorization_reference: Annotated[str, ci(36)] | None = None
    cdr_location: CdrLocation
    meter_id: Annotated[str, string(255)] | None = None
    currency: Currency
    tariffs: list[Tariff] | None = None
    charging_periods: Annotated[list[ChargingPeriod], Field(min_length=1)]  # card. +
    signed_data: SignedData | None = None
    total_cost: Price
    total_fixed_cost: Price | None = None
    total_energy: ExactNumber
    total_energy_cost: Price | None = None
    total_time: ExactNumber
    total_time_cost: Price | None = None
    total_parking_time: ExactNumber | None = None
    total_parking_cost: Price | None = None
    total_reservation_cost: Price | None = None
    remark: Annotated[str, string(255)] | None = None
    invoice_reference_id: Annotated[str, ci(39)] | None = None
    credit: Bool | None = None
    credit_reference_id: CdrId | None = None
    home_charging_compensation: Bool | None = None
    last_updated: DateTime

    @model_validator(mode="after")
    def _consistent(self) -> Cdr:
        if self.end_date_time < self.start_date_time:
            raise ValueError("end_date_time must not be earlier than start_date_time")
        if self.credit:
            if self.credit_reference_id is None:
                raise ValueError("a Credit CDR (credit: true) needs credit_reference_id")
        else:
            if self.credit_reference_id is not None:
                raise ValueError("credit_reference_id is only for a Credit CDR (credit: true)")
            if len(self.id) > NORMAL_CDR_ID_MAX:
                raise ValueError("the id of a CDR that is not a Credit CDR is at most 36 long")
            quantities = {
                "total_energy": self.total_energy,
                "total_time": self.total_time,
                "total_parking_time": self.total_parking_time,
            }
            negative = sorted(k for k, v in quantities.items() if v is not None and v < 0)
            if negative:
                raise ValueError(f"{', '.join(negative)} must not be negative")
        wrong = sorted({t.id for t in self.tariffs or () if t.currency != self.currency})
        if wrong:
            raise ValueError(f"tariffs {wrong} are not in the CDR's currency {self.currency}")
        return self


def cdr_from_json(data: str | bytes) -> Cdr:
    """Parse a CDR from JSON text keeping every number exactly as written."""
    return Cdr.model_validate(loads_exact(data))
