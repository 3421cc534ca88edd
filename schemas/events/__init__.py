"""All events of the platform, and the one way to parse them."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, TypeAdapter

from schemas.events.billing import (
    ChargeRecorded,
    ChargeReversed,
    CorporationRegistered,
    CorporationStatusChanged,
    CreditNoteApproved,
    CreditNoteIssued,
    CreditNoteMailed,
    CreditNoteNumberAssigned,
    CreditNoteRejected,
    CreditNoteRequested,
    InvitationMailed,
    InvoiceDrafted,
    InvoiceIssued,
    InvoiceMailed,
    InvoiceMailingRequested,
    InvoiceNumbersAssigned,
    InvoicePaid,
    InvoiceVoided,
    MemberActivated,
    MemberInvited,
    MonthClosed,
)
from schemas.events.cdrs import CdrIssued, CdrReceived, CdrReconciled
from schemas.events.charge_points import (
    ChargePointBooted,
    ChargePointConnected,
    ChargePointDeregistered,
    ChargePointDisconnected,
    ChargePointHeartbeat,
    ChargePointRegistered,
)
from schemas.events.chargers import (
    ConnectorStatusReported,
    MeterValuesSampled,
    ReservationEnded,
    ReservationExpiryPassed,
    ReservationMade,
    TransactionAuthorized,
    TransactionStarted,
    TransactionStopped,
)
from schemas.events.charging_profiles import (
    ActiveChargingProfileChanged,
    ActiveChargingProfileReceived,
    ChargerProfileAnswered,
    ChargingProfileDeadlinePassed,
    ChargingProfileRequestAccepted,
    ChargingProfileRequestDeclined,
    ChargingProfileRequestSent,
    ChargingProfileResultDecided,
    ChargingProfileResultReceived,
)
from schemas.events.commands import (
    ChargerCommandAnswered,
    CommandAccepted,
    CommandDeadlinePassed,
    CommandDeclined,
    CommandResultDecided,
    CommandResultReceived,
    CommandSent,
)
from schemas.events.dead_letters import EventQuarantined, QuarantinedEventResolved
from schemas.events.envelope import Actor, EventMeta, Party, derived_event_id, new_event_id
from schemas.events.hub_client_info import ClientInfoPut
from schemas.events.locations import (
    EvseStatusReported,
    EvseStatusResolved,
    LocationObjectPatched,
    LocationObjectPut,
)
from schemas.events.operators import (
    ApiKeyCreated,
    ApiKeyRevoked,
    OperatorAccountAdded,
    OperatorAccountDisabled,
    OperatorRoleSet,
)
from schemas.events.partners import (
    PartnerCredentialsUpdated,
    PartnerInvited,
    PartnerRegistered,
    PartnerUnregistered,
)
from schemas.events.payments import (
    FinancialAdviceConfirmationPosted,
    TerminalActivationRequested,
    TerminalAssigned,
    TerminalDeactivated,
    TerminalPosted,
    TerminalPulled,
    TerminalPut,
)
from schemas.events.sessions import SessionPatched, SessionPut
from schemas.events.tariffs import TariffDeleted, TariffPut
from schemas.events.tokens import (
    TokenAuthorizationDecided,
    TokenPatched,
    TokenPolicySet,
    TokenPut,
)

Event = Annotated[
    EvseStatusReported
    | EvseStatusResolved
    | LocationObjectPut
    | LocationObjectPatched
    | PartnerInvited
    | PartnerRegistered
    | PartnerCredentialsUpdated
    | PartnerUnregistered
    | TariffPut
    | TariffDeleted
    | TokenPut
    | TokenPatched
    | TokenPolicySet
    | TokenAuthorizationDecided
    | SessionPut
    | SessionPatched
    | TransactionStarted
    | TransactionAuthorized
    | MeterValuesSampled
    | TransactionStopped
    | ReservationMade
    | ReservationEnded
    | ReservationExpiryPassed
    | CdrIssued
    | CdrReceived
    | CdrReconciled
    | ConnectorStatusReported
    | ChargePointRegistered
    | ChargePointDeregistered
    | ChargePointConnected
    | ChargePointDisconnected
    | ChargePointBooted
    | ChargePointHeartbeat
    | CommandAccepted
    | CommandDeclined
    | ChargerCommandAnswered
    | CommandDeadlinePassed
    | CommandResultDecided
    | CommandSent
    | CommandResultReceived
    | ChargingProfileRequestAccepted
    | ChargingProfileRequestDeclined
    | ChargerProfileAnswered
    | ChargingProfileDeadlinePassed
    | ChargingProfileResultDecided
    | ActiveChargingProfileChanged
    | ChargingProfileRequestSent
    | ChargingProfileResultReceived
    | ActiveChargingProfileReceived
    | EventQuarantined
    | QuarantinedEventResolved
    | CorporationRegistered
    | CorporationStatusChanged
    | MemberInvited
    | InvitationMailed
    | MemberActivated
    | ChargeRecorded
    | ChargeReversed
    | InvoiceDrafted
    | InvoiceIssued
    | InvoicePaid
    | InvoiceVoided
    | InvoiceMailingRequested
    | InvoiceMailed
    | InvoiceNumbersAssigned
    | MonthClosed
    | CreditNoteRequested
    | CreditNoteApproved
    | CreditNoteRejected
    | CreditNoteIssued
    | CreditNoteMailed
    | CreditNoteNumberAssigned
    | OperatorAccountAdded
    | OperatorRoleSet
    | OperatorAccountDisabled
    | ApiKeyCreated
    | ApiKeyRevoked
    | ClientInfoPut
    | TerminalPosted
    | TerminalPulled
    | TerminalPut
    | TerminalAssigned
    | TerminalDeactivated
    | TerminalActivationRequested
    | FinancialAdviceConfirmationPosted,
    Field(discriminator="event_type"),
]

_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(raw: bytes | str) -> Event:
    """Parse one serialized event (JSON) into its typed model."""
    return _EVENT_ADAPTER.validate_json(raw)


def serialize_event(event: EventMeta) -> bytes:
    if event.actor is None:
        return event.model_dump_json(exclude={"actor"}).encode()
    return event.model_dump_json().encode()


__all__ = [
    "ActiveChargingProfileChanged",
    "ActiveChargingProfileReceived",
    "Actor",
    "ApiKeyCreated",
    "ApiKeyRevoked",
    "CdrIssued",
    "CdrReceived",
    "CdrReconciled",
    "ChargePointBooted",
    "ChargePointConnected",
    "ChargePointDeregistered",
    "ChargePointDisconnected",
    "ChargePointHeartbeat",
    "ChargePointRegistered",
    "ChargerCommandAnswered",
    "ChargerProfileAnswered",
    "ChargingProfileDeadlinePassed",
    "ChargingProfileRequestAccepted",
    "ChargingProfileRequestDeclined",
    "ChargingProfileRequestSent",
    "ChargingProfileResultDecided",
    "ChargingProfileResultReceived",
    "ClientInfoPut",
    "CommandAccepted",
    "CommandDeadlinePassed",
    "CommandDeclined",
    "CommandResultDecided",
    "CommandResultReceived",
    "CommandSent",
    "ConnectorStatusReported",
    "Event",
    "EventMeta",
    "EventQuarantined",
    "EvseStatusReported",
    "EvseStatusResolved",
    "FinancialAdviceConfirmationPosted",
    "LocationObjectPatched",
    "LocationObjectPut",
    "MeterValuesSampled",
    "OperatorAccountAdded",
    "OperatorAccountDisabled",
    "OperatorRoleSet",
    "PartnerCredentialsUpdated",
    "PartnerInvited",
    "PartnerRegistered",
    "PartnerUnregistered",
    "Party",
    "QuarantinedEventResolved",
    "ReservationEnded",
    "ReservationExpiryPassed",
    "ReservationMade",
    "SessionPatched",
    "SessionPut",
    "TariffDeleted",
    "TariffPut",
    "TerminalActivationRequested",
    "TerminalAssigned",
    "TerminalDeactivated",
    "TerminalPosted",
    "TerminalPulled",
    "TerminalPut",
    "TokenAuthorizationDecided",
    "TokenPatched",
    "TokenPolicySet",
    "TokenPut",
    "TransactionAuthorized",
    "TransactionStarted",
    "TransactionStopped",
    "derived_event_id",
    "new_event_id",
    "parse_event",
    "serialize_event",
]
