"""Charger facts (topic ``charger.transactions.v1``): what our own chargers
report about charging transactions, as the OCPP gateway will state them (for
now the charger simulator of the ops API). Keyed by the location key of the
charger's location, so every fact of one site keeps its order.

These are facts of the charger, not OCPI objects: meter readings are raw
register values in Wh as the meter shows them (they may wrap or jump back);
the session lifecycle processor (``processors/sessions.py``) turns them into
our OCPI Sessions.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events.envelope import EventMeta
from schemas.events.locations import location_key
from schemas.ocpi.common import CountryCode, DateTime, PartyId, fold
from schemas.ocpi.sessions import AuthMethod, SessionId
from schemas.ocpi.tariffs import ExactNumber
from schemas.ocpi.types import TokenType, ci

Wh = Annotated[ExactNumber, Field(ge=0)]
Ci36 = Annotated[str, ci(36)]


class ChargerRef(BaseModel):
    """Where: one connector of one EVSE of one of our locations, and the
    OCPI session the transaction belongs to (the gateway names it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    country_code: CountryCode
    party_id: PartyId
    location_id: Ci36
    evse_uid: Ci36
    connector_id: Ci36
    session_id: SessionId
    transaction_id: Ci36  # the charger's own transaction id

    @property
    def location_key(self) -> str:
        return location_key(self.country_code, self.party_id, self.location_id)

    @property
    def session_key(self) -> str:
        return "/".join(fold(p) for p in (self.country_code, self.party_id, self.session_id))


class TokenIdentity(BaseModel):
    """The token the driver presented and, once authorised, the eMSP that
    owns it (mod_cdrs CdrToken)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uid: Ci36
    type: TokenType
    country_code: CountryCode
    party_id: PartyId
    contract_id: Ci36


class TransactionStartedPayload(ChargerRef):
    token: TokenIdentity
    # False: the charger started before the token was authorised (PENDING).
    authorized: bool
    auth_method: AuthMethod
    authorization_reference: Ci36 | None = None
    meter_start_wh: Wh
    at: DateTime


class TransactionStarted(EventMeta):
    event_type: Literal["TransactionStarted"] = "TransactionStarted"
    schema_version: Literal[1] = 1
    payload: TransactionStartedPayload


class TransactionAuthorizedPayload(ChargerRef):
    auth_method: AuthMethod
    authorization_reference: Ci36 | None = None
    at: DateTime


class TransactionAuthorized(EventMeta):
    """The token of a started transaction was authorised after the start."""

    event_type: Literal["TransactionAuthorized"] = "TransactionAuthorized"
    schema_version: Literal[1] = 1
    payload: TransactionAuthorizedPayload


class MeterValuesSampledPayload(ChargerRef):
    meter_wh: Wh
    current_a: Annotated[ExactNumber, Field(ge=0)] | None = None
    power_kw: Annotated[ExactNumber, Field(ge=0)] | None = None
    at: DateTime


class MeterValuesSampled(EventMeta):
    event_type: Literal["MeterValuesSampled"] = "MeterValuesSampled"
    schema_version: Literal[1] = 1
    payload: MeterValuesSampledPayload


class TransactionStoppedPayload(ChargerRef):
    meter_stop_wh: Wh
    at: DateTime
    reason: Annotated[str, Field(min_length=1, max_length=40)] = "Local"


class TransactionStopped(EventMeta):
    event_type: Literal["TransactionStopped"] = "TransactionStopped"
    schema_version: Literal[1] = 1
    payload: TransactionStoppedPayload


class ReservationRef(BaseModel):
    """Where a reservation holds a charger: ``evse_uid`` and ``connector_id``
    may be ``#NA`` when no EVSE is assigned yet (mod_sessions, Session)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    country_code: CountryCode
    party_id: PartyId
    location_id: Ci36
    evse_uid: Ci36
    connector_id: Ci36
    session_id: SessionId
    reservation_id: Ci36

    @property
    def location_key(self) -> str:
        return location_key(self.country_code, self.party_id, self.location_id)

    @property
    def session_key(self) -> str:
        return "/".join(fold(p) for p in (self.country_code, self.party_id, self.session_id))


class ReservationMadePayload(ReservationRef):
    token: TokenIdentity
    authorization_reference: Ci36 | None = None
    expires_at: DateTime
    at: DateTime


class ReservationMade(EventMeta):
    """A charger was reserved for a driver (ReserveNow): a session in RESERVATION."""

    event_type: Literal["ReservationMade"] = "ReservationMade"
    schema_version: Literal[1] = 1
    payload: ReservationMadePayload


class ReservationEndedPayload(ReservationRef):
    reason: Literal["EXPIRED", "CANCELLED"]
    at: DateTime


class ReservationEnded(EventMeta):
    """A reservation expired or was cancelled without being used."""

    event_type: Literal["ReservationEnded"] = "ReservationEnded"
    schema_version: Literal[1] = 1
    payload: ReservationEndedPayload


class ReservationExpiryPassedPayload(ReservationRef):
    expires_at: DateTime  # the expiry this statement is about
    at: DateTime  # when the timer noticed it had passed


class ReservationExpiryPassed(EventMeta):
    """The expiry time of a reservation passed, as the reservation-expiry
    processor's timer states it (docs/adr/0021). Not a decision: it may be
    stated more than once, or after the reservation was used, cancelled or
    moved to a later expiry; the processor then decides nothing. The one
    decision is ``ReservationEnded(EXPIRED)``."""

    event_type: Literal["ReservationExpiryPassed"] = "ReservationExpiryPassed"
    schema_version: Literal[1] = 1
    payload: ReservationExpiryPassedPayload


# OCPP 1.6 ChargePointStatus, as the charger states it.
OcppConnectorStatus = Literal[
    "Available",
    "Preparing",
    "Charging",
    "SuspendedEVSE",
    "SuspendedEV",
    "Finishing",
    "Reserved",
    "Unavailable",
    "Faulted",
]


class ConnectorStatusReportedPayload(BaseModel):
    """StatusNotification of one OCPP connector, mapped through the registry
    to the OCPI connector (and EVSE) it is. Connector 0 (the whole charge
    point) is stated once per mapped connector."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    country_code: CountryCode
    party_id: PartyId
    location_id: Ci36
    evse_uid: Ci36
    connector_id: Ci36
    charge_point_id: Annotated[str, Field(min_length=1, max_length=48)]
    ocpp_connector_id: Annotated[int, Field(ge=0)]
    status: OcppConnectorStatus
    error_code: Annotated[str, Field(min_length=1, max_length=50)] = "NoError"
    info: Annotated[str, Field(max_length=50)] | None = None
    at: DateTime

    @property
    def location_key(self) -> str:
        return location_key(self.country_code, self.party_id, self.location_id)


class ConnectorStatusReported(EventMeta):
    """What a charger says of a connector: available, occupied, faulted...
    (a signal of the EVSE status processor)."""

    event_type: Literal["ConnectorStatusReported"] = "ConnectorStatusReported"
    schema_version: Literal[1] = 1
    payload: ConnectorStatusReportedPayload


ChargerEvent = (
    TransactionStarted
    | TransactionAuthorized
    | MeterValuesSampled
    | TransactionStopped
    | ReservationMade
    | ReservationEnded
    | ReservationExpiryPassed
    | ConnectorStatusReported
)

__all__ = [
    "ChargerEvent",
    "ChargerRef",
    "ConnectorStatusReported",
    "MeterValuesSampled",
    "ReservationEnded",
    "ReservationExpiryPassed",
    "ReservationMade",
    "ReservationRef",
    "TokenIdentity",
    "TransactionAuthorized",
    "TransactionStarted",
    "TransactionStopped",
]
