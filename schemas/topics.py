"""The topic catalogue: a public contract for downstream subscribers.

Documented in ``docs/topics.md``; a change here is a change of contract. Event
topics are the system of record and are kept forever (no time or size
retention). A topic's name carries its major version: an incompatible change
is a new topic, never a rewrite of an old one.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    key: str  # what the record key is, in words (documented contract)
    event_types: tuple[str, ...]
    config: dict[str, str] = field(default_factory=dict)


_KEEP_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}

LOCATIONS = TopicSpec(
    name="ocpi.locations.v1",
    partitions=6,
    key="location key: COUNTRY_CODE/PARTY_ID/LOCATION_ID, upper-cased",
    event_types=("LocationObjectPut", "LocationObjectPatched", "EvseStatusReported"),
    config=_KEEP_FOREVER,
)

EVSE_STATUS = TopicSpec(
    name="ocpi.evse-status.v1",
    partitions=6,
    key="location key: COUNTRY_CODE/PARTY_ID/LOCATION_ID, upper-cased",
    event_types=("EvseStatusResolved",),
    config=_KEEP_FOREVER,
)

PARTNERS = TopicSpec(
    name="ocpi.partners.v1",
    partitions=1,
    key="partner id",
    event_types=(
        "PartnerInvited",
        "PartnerRegistered",
        "PartnerCredentialsUpdated",
        "PartnerUnregistered",
    ),
    config=_KEEP_FOREVER,
)

TARIFFS = TopicSpec(
    name="ocpi.tariffs.v1",
    partitions=6,
    key="tariff key: COUNTRY_CODE/PARTY_ID/TARIFF_ID, upper-cased",
    event_types=("TariffPut", "TariffDeleted"),
    config=_KEEP_FOREVER,
)

TOKENS = TopicSpec(
    name="ocpi.tokens.v1",
    partitions=6,
    key="token key: COUNTRY_CODE/PARTY_ID/UID/TYPE, upper-cased",
    event_types=("TokenPut", "TokenPatched", "TokenPolicySet", "TokenAuthorizationDecided"),
    config=_KEEP_FOREVER,
)

SESSIONS = TopicSpec(
    name="ocpi.sessions.v1",
    partitions=6,
    key="session key: COUNTRY_CODE/PARTY_ID/SESSION_ID, upper-cased",
    event_types=("SessionPut", "SessionPatched"),
    config=_KEEP_FOREVER,
)

CHARGER_TRANSACTIONS = TopicSpec(
    name="charger.transactions.v1",
    partitions=6,
    key="location key: COUNTRY_CODE/PARTY_ID/LOCATION_ID, upper-cased",
    event_types=(
        "TransactionStarted",
        "TransactionAuthorized",
        "MeterValuesSampled",
        "TransactionStopped",
        "ReservationMade",
        "ReservationEnded",
        "ReservationExpiryPassed",
        "ConnectorStatusReported",
    ),
    config=_KEEP_FOREVER,
)

CHARGER_REGISTRY = TopicSpec(
    name="charger.registry.v1",
    partitions=1,
    key="charge point id, as the charger names itself (case-sensitive)",
    event_types=("ChargePointRegistered", "ChargePointDeregistered"),
    config=_KEEP_FOREVER,
)

CHARGER_CONNECTIONS = TopicSpec(
    name="charger.connections.v1",
    partitions=6,
    key="charge point id, as the charger names itself (case-sensitive)",
    event_types=(
        "ChargePointConnected",
        "ChargePointDisconnected",
        "ChargePointBooted",
        "ChargePointHeartbeat",
    ),
    config=_KEEP_FOREVER,
)

COMMANDS = TopicSpec(
    name="ocpi.commands.v1",
    partitions=6,
    key="command id (ours, one per command, either role)",
    event_types=(
        "CommandAccepted",
        "CommandDeclined",
        "ChargerCommandAnswered",
        "CommandDeadlinePassed",
        "CommandResultDecided",
        "CommandSent",
        "CommandResultReceived",
    ),
    config=_KEEP_FOREVER,
)

# Smart charging (mod_charging_profiles, docs/adr/0043): requests either
# role sends or receives, their one result, and active profiles.
CHARGING_PROFILES = TopicSpec(
    name="ocpi.charging-profiles.v1",
    partitions=6,
    key=(
        "request id (ours, one per request, either role); ActiveChargingProfileChanged and "
        "ActiveChargingProfileReceived: the session key COUNTRY_CODE/PARTY_ID/SESSION_ID "
        "(ours, the CPO's), upper-cased"
    ),
    event_types=(
        "ChargingProfileRequestAccepted",
        "ChargingProfileRequestDeclined",
        "ChargerProfileAnswered",
        "ChargingProfileDeadlinePassed",
        "ChargingProfileResultDecided",
        "ActiveChargingProfileChanged",
        "ChargingProfileRequestSent",
        "ChargingProfileResultReceived",
        "ActiveChargingProfileReceived",
    ),
    config=_KEEP_FOREVER,
)

CDRS = TopicSpec(
    name="ocpi.cdrs.v1",
    partitions=6,
    key="cdr key: COUNTRY_CODE/PARTY_ID/CDR_ID, upper-cased",
    event_types=("CdrIssued", "CdrReceived", "CdrReconciled"),
    config=_KEEP_FOREVER,
)

# Our own record of events a projection could not apply (docs/adr/0028).
DEAD_LETTERS = TopicSpec(
    name="ocpi-hub.dead-letters.v1",
    partitions=1,
    key="source position: TOPIC/PARTITION/OFFSET of the event that could not be applied",
    event_types=("EventQuarantined", "QuarantinedEventResolved"),
    config=_KEEP_FOREVER,
)

# Who may use the ops API (docs/adr/0031): people and machines.
OPERATOR_ACCOUNTS = TopicSpec(
    name="ocpi-hub.operator-accounts.v1",
    partitions=1,
    key="login of the operator account, lower-cased",
    event_types=("OperatorAccountAdded", "OperatorRoleSet", "OperatorAccountDisabled"),
    config=_KEEP_FOREVER,
)

API_KEYS = TopicSpec(
    name="ocpi-hub.api-keys.v1",
    partitions=1,
    key="API key id (12 lower-case letters and digits; not the key)",
    event_types=("ApiKeyCreated", "ApiKeyRevoked"),
    config=_KEEP_FOREVER,
)

# Corporate billing (issue 14, docs/adr/0035): corporations, their contract
# and members, one aggregate per corporation.
BILLING_CORPORATIONS = TopicSpec(
    name="ocpi-hub.billing-corporations.v1",
    partitions=6,
    key="corporation id (12 lower-case letters and digits)",
    event_types=(
        "CorporationRegistered",
        "CorporationStatusChanged",
        "MemberInvited",
        "InvitationMailed",
        "MemberActivated",
        "ChargeRecorded",
        "ChargeReversed",
        "InvoiceDrafted",
        "InvoiceIssued",
        "InvoicePaid",
        "InvoiceVoided",
        "InvoiceMailingRequested",
        "InvoiceMailed",
        # credit notes (docs/adr/0041)
        "CreditNoteRequested",
        "CreditNoteApproved",
        "CreditNoteRejected",
        "CreditNoteIssued",
        "CreditNoteMailed",
    ),
    config=_KEEP_FOREVER,
)

# Gap-free invoice numbers (docs/adr/0036): one aggregate under one key, so
# one partition and one order for every number ever given.
BILLING_INVOICE_NUMBERS = TopicSpec(
    name="ocpi-hub.billing-invoice-numbers.v1",
    partitions=1,
    key="the one numbering aggregate: invoice-numbers",
    event_types=("InvoiceNumbersAssigned", "MonthClosed", "CreditNoteNumberAssigned"),
    config=_KEEP_FOREVER,
)

# Hub client info (mod_hub_client_info, docs/adr/0044): what each hub
# partner reports about the parties behind it.
HUB_CLIENT_INFO = TopicSpec(
    name="ocpi.hub-client-info.v1",
    partitions=1,
    key="hub partner id / COUNTRY_CODE/PARTY_ID of the reported party, upper-cased",
    event_types=("ClientInfoPut",),
    config=_KEEP_FOREVER,
)

# Payments (OCPI 2.3.0 mod_payments, we as CPO; docs/adr/0047): the
# terminals of Payment Terminal Providers at our chargers and what they
# captured.
PAYMENTS = TopicSpec(
    name="ocpi.payments.v1",
    partitions=1,
    key="PTP partner id / terminal|advice|activation / its id, upper-cased",
    event_types=(
        "TerminalPosted",
        "TerminalPulled",
        "TerminalPut",
        "TerminalAssigned",
        "TerminalDeactivated",
        "TerminalActivationRequested",
        "FinancialAdviceConfirmationPosted",
    ),
    config=_KEEP_FOREVER,
)

CATALOGUE: tuple[TopicSpec, ...] = (
    LOCATIONS,
    EVSE_STATUS,
    PARTNERS,
    TARIFFS,
    TOKENS,
    SESSIONS,
    CHARGER_TRANSACTIONS,
    CDRS,
    CHARGER_REGISTRY,
    CHARGER_CONNECTIONS,
    COMMANDS,
    CHARGING_PROFILES,
    DEAD_LETTERS,
    OPERATOR_ACCOUNTS,
    API_KEYS,
    BILLING_CORPORATIONS,
    BILLING_INVOICE_NUMBERS,
    HUB_CLIENT_INFO,
    PAYMENTS,
)

_TOPIC_OF_EVENT = {event_type: spec for spec in CATALOGUE for event_type in spec.event_types}


def topic_for(event_type: str) -> TopicSpec:
    """The one topic an event type is written to."""
    return _TOPIC_OF_EVENT[event_type]
