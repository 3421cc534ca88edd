"""CDRs module objects of OCPI 2.3.0 (mod_cdrs.asciidoc, tag v2.3.0).

The CDR object is 2.2.1's with the 2.3.0 Price in every cost, 2.3.0
Tariffs in ``tariffs``, ConnectorType an OpenEnum in ``cdr_location`` and
TokenType one in ``cdr_token``. ChargingPeriod, CdrDimension and SignedData
are unchanged (``schemas.ocpi.cdrs``). CdrLocation keeps 2.2.1's lengths
(``address`` 45, ``state`` 20): 2.3.0 corrects them only on the Location.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from schemas.ocpi.cdrs import (
    NORMAL_CDR_ID_MAX,
    AuthMethod,
    CdrId,
    ChargingPeriod,
    SignedData,
)
from schemas.ocpi.common import CountryCode, DateTime, OcpiModel, PartyId
from schemas.ocpi.locations import ConnectorFormat, GeoLocation, PowerType
from schemas.ocpi.tariffs import Currency, ExactNumber, loads_exact
from schemas.ocpi.types import Bool, ci, string
from schemas.ocpi.v230.locations import OpenConnectorType
from schemas.ocpi.v230.sessions import CdrToken
from schemas.ocpi.v230.tariffs import Tariff
from schemas.ocpi.v230.types import Price


class CdrLocation(OcpiModel):
    """mod_cdrs, CdrLocation class (2.3.0)."""

    id: Annotated[str, ci(36)]
    name: Annotated[str, string(255)] | None = None
    address: Annotated[str, string(45)]
    city: Annotated[str, string(45)]
    postal_code: Annotated[str, string(10)] | None = None
    state: Annotated[str, string(20)] | None = None
    country: Annotated[str, string(3)]
    coordinates: GeoLocation
    evse_uid: Annotated[str, ci(36)]
    evse_id: Annotated[str, ci(48)]
    connector_id: Annotated[str, ci(36)]
    connector_standard: OpenConnectorType
    connector_format: ConnectorFormat
    connector_power_type: PowerType


class Cdr(OcpiModel):
    """mod_cdrs, CDR object (2.3.0); the same rules as 2.2.1's."""

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
    charging_periods: Annotated[list[ChargingPeriod], Field(min_length=1)]
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
        elif self.credit_reference_id is not None:
            raise ValueError("credit_reference_id is only for a Credit CDR (credit: true)")
        elif len(self.id) > NORMAL_CDR_ID_MAX:
            raise ValueError("the id of a CDR that is not a Credit CDR is at most 36 long")
        wrong = sorted({t.id for t in self.tariffs or () if t.currency != self.currency})
        if wrong:
            raise ValueError(f"tariffs {wrong} are not in the CDR's currency {self.currency}")
        return self


def cdr_from_json(data: str | bytes) -> Cdr:
    """Parse a 2.3.0 CDR keeping every number exactly as written."""
    return Cdr.model_validate(loads_exact(data))
