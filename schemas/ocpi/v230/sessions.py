"""Sessions module objects of OCPI 2.3.0 (mod_sessions.asciidoc, tag v2.3.0).

The Session object is 2.2.1's with the 2.3.0 Price in ``total_cost`` and
TokenType an OpenEnum in ``cdr_token`` (mod_tokens).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import model_validator

from schemas.ocpi.cdrs import AuthMethod, ChargingPeriod
from schemas.ocpi.common import CountryCode, DateTime, OcpiModel, PartyId
from schemas.ocpi.sessions import Currency, SessionId, SessionStatus
from schemas.ocpi.tariffs import NonNegativeNumber, loads_exact
from schemas.ocpi.types import ci, string
from schemas.ocpi.v230.locations import OpenTokenType
from schemas.ocpi.v230.types import Price


class CdrToken(OcpiModel):
    """mod_cdrs, CdrToken class (type an OpenEnum in 2.3.0)."""

    country_code: CountryCode
    party_id: PartyId
    uid: Annotated[str, ci(36)]
    type: OpenTokenType
    contract_id: Annotated[str, ci(36)]


class Session(OcpiModel):
    """mod_sessions, Session object (2.3.0)."""

    country_code: CountryCode
    party_id: PartyId
    id: SessionId
    start_date_time: DateTime
    end_date_time: DateTime | None = None
    kwh: NonNegativeNumber
    cdr_token: CdrToken
    auth_method: AuthMethod
    authorization_reference: Annotated[str, ci(36)] | None = None
    location_id: Annotated[str, ci(36)]
    evse_uid: Annotated[str, ci(36)]
    connector_id: Annotated[str, ci(36)]
    meter_id: Annotated[str, string(255)] | None = None
    currency: Currency
    charging_periods: list[ChargingPeriod] | None = None
    total_cost: Price | None = None
    status: SessionStatus
    last_updated: DateTime

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> Session:
        if self.end_date_time is not None and self.end_date_time < self.start_date_time:
            raise ValueError("end_date_time must not be earlier than start_date_time")
        return self


def session_from_json(data: str | bytes) -> Session:
    """Parse a 2.3.0 Session keeping every number exactly as written."""
    return Session.model_validate(loads_exact(data))
