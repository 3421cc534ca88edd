"""OCPP 1.6J in, our events out; charger answers in, command results out.
Pure: the gateway (``gateway/``) decodes a charger's message with the
``ocpp`` library, calls these, appends what they return, and answers.

* ``Registration``: a charge point as the registry holds it (its view
  document), with the OCPP connector -> OCPI EVSE/connector map.
* ``connector_statuses``: StatusNotification -> ``ConnectorStatusReported``,
  connector 0 (the whole charge point) as one event per mapped connector,
  an unknown connector as none.
* ``readings``: the MeterValue list of MeterValues / StopTransaction ->
  exact register readings (Wh), current (A) and power (kW).
* ``id_tag_status``: our authorization decision -> OCPP AuthorizationStatus.
* ``command_result``: the charger's answer to a command -> CommandResultType.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from producers.authorization import Decision, DecisionSource
from producers.write_path import Origin, recorded_now
from schemas.events import (
    ChargePointBooted,
    ChargePointConnected,
    ChargePointDisconnected,
    ChargePointHeartbeat,
    ConnectorStatusReported,
    EventMeta,
)
from schemas.events.charge_points import (
    ChargePointBootedPayload,
    ChargePointConnectedPayload,
    ChargePointDisconnectedPayload,
    ChargePointHeartbeatPayload,
)
from schemas.events.chargers import ConnectorStatusReportedPayload, TokenIdentity
from schemas.events.locations import location_key
from schemas.ocpi.commands import CommandResultType, CommandType
from schemas.ocpi.sessions import AuthMethod
from schemas.ocpi.tokens import AllowedType
from schemas.ocpi.types import TokenType

E = TypeVar("E", bound=EventMeta)

# --- the registry, as the gateway reads it -------------------------------------


@dataclass(frozen=True)
class Connector:
    ocpp_connector_id: int
    evse_uid: str
    connector_id: str


@dataclass(frozen=True)
class Registration:
    charge_point_id: str
    country_code: str
    party_id: str
    location_id: str
    connectors: tuple[Connector, ...]
    password_hash: str

    @property
    def location_key(self) -> str:
        return location_key(self.country_code, self.party_id, self.location_id)

    def connector(self, ocpp_connector_id: int) -> Connector | None:
        return next((c for c in self.connectors if c.ocpp_connector_id == ocpp_connector_id), None)

    def by_evse(self, evse_uid: str, connector_id: str | None = None) -> Connector | None:
        """The OCPP connector of an OCPI EVSE (and connector), CiString match."""
        for c in self.connectors:
            if c.evse_uid.upper() == evse_uid.upper() and (
                connector_id is None or c.connector_id.upper() == connector_id.upper()
            ):
                return c
        return None

    @property
    def evse_uids(self) -> list[str]:
        return sorted({c.evse_uid for c in self.connectors})


def registration_of(doc: Mapping[str, Any] | None) -> Registration | None:
    """A registered charge point from its ``charge_points`` document."""
    if not doc or not doc.get("registered"):
        return None
    return Registration(
        charge_point_id=doc["charge_point_id"],
        country_code=doc["country_code"],
        party_id=doc["party_id"],
        location_id=doc["location_id"],
        connectors=tuple(
            Connector(c["ocpp_connector_id"], c["evse_uid"], c["connector_id"])
            for c in doc["connectors"]
        ),
        password_hash=doc["password_hash"],
    )


# --- events of the connection ------------------------------------------------------


def connected(cp_id: str, gateway_id: str, origin: Origin, now: datetime) -> ChargePointConnected:
    return ChargePointConnected(
        **recorded_now(cp_id, now, origin),
        payload=ChargePointConnectedPayload(charge_point_id=cp_id, gateway_id=gateway_id, at=now),
    )


def disconnected(
    cp_id: str, gateway_id: str, reason: str | None, origin: Origin, now: datetime
) -> ChargePointDisconnected:
    return ChargePointDisconnected(
        **recorded_now(cp_id, now, origin),
        payload=ChargePointDisconnectedPayload(
            charge_point_id=cp_id,
            gateway_id=gateway_id,
            reason=reason[:200] if reason else None,
            at=now,
        ),
    )


def booted(
    cp_id: str,
    *,
    vendor: str,
    model: str,
    serial_number: str | None,
    firmware_version: str | None,
    origin: Origin,
    now: datetime,
) -> ChargePointBooted:
    return ChargePointBooted(
        **recorded_now(cp_id, now, origin),
        payload=ChargePointBootedPayload(
            charge_point_id=cp_id,
            vendor=vendor,
            model=model,
            serial_number=serial_number,
            firmware_version=firmware_version,
            at=now,
        ),
    )


def heartbeat(cp_id: str, origin: Origin, now: datetime) -> ChargePointHeartbeat:
    return ChargePointHeartbeat(
        **recorded_now(cp_id, now, origin),
        payload=ChargePointHeartbeatPayload(charge_point_id=cp_id, at=now),
    )


def connector_statuses(
    reg: Registration,
    *,
    ocpp_connector_id: int,
    status: str,
    error_code: str,
    info: str | None,
    at: datetime,
    origin: Origin,
    now: datetime,
) -> list[ConnectorStatusReported]:
    """One event per OCPI connector the report is about: connector 0 (the
    whole charge point, OCPP 1.6 StatusNotification) is every mapped one;
    a connector the registry does not map is none."""
    if ocpp_connector_id == 0:
        targets = list(reg.connectors)
    else:
        one = reg.connector(ocpp_connector_id)
        targets = [one] if one is not None else []
    return [
        ConnectorStatusReported(
            **recorded_now(reg.location_key, now, origin, occurred=at),
            payload=ConnectorStatusReportedPayload(
                country_code=reg.country_code,
                party_id=reg.party_id,
                location_id=reg.location_id,
                evse_uid=c.evse_uid,
                connector_id=c.connector_id,
                charge_point_id=reg.charge_point_id,
                ocpp_connector_id=ocpp_connector_id,
                status=status,  # validated: one of OcppConnectorStatus
                error_code=error_code,
                info=info,
                at=at,
            ),
        )
        for c in targets
    ]


# --- meter values -----------------------------------------------------------------

ENERGY = "Energy.Active.Import.Register"
CURRENT = "Current.Import"
POWER = "Power.Active.Import"


@dataclass(frozen=True)
class Reading:
    """One MeterValue element: the register in Wh (None when not sampled),
    current in A and power in kW when sampled."""

    at: datetime
    meter_wh: Decimal | None
    current_a: Decimal | None
    power_kw: Decimal | None


def _number(value: Any) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _scaled(sample: Mapping[str, Any], units: Mapping[str, Decimal]) -> Decimal | None:
    """The sample's value in the measurand's base unit; None for a unit we
    do not know or a signed (non-raw) value."""
    if sample.get("format", "Raw") != "Raw":
        return None
    number = _number(sample.get("value"))
    factor = units.get(sample.get("unit") or next(iter(units)))
    if number is None or factor is None:
        return None
    return number * factor


_WH = {"Wh": Decimal(1), "kWh": Decimal(1000)}  # first: the OCPP default unit
_A = {"A": Decimal(1)}
_KW = {"W": Decimal("0.001"), "kW": Decimal(1)}


def _measured(samples: Sequence[Mapping[str, Any]], measurand: str) -> list[Mapping[str, Any]]:
    # OCPP 1.6: a sampled value without a measurand is the energy register.
    return [s for s in samples if (s.get("measurand") or ENERGY) == measurand]


def _whole(
    samples: Sequence[Mapping[str, Any]], units: Mapping[str, Decimal], combine: str
) -> Decimal | None:
    """The charger-wide value: the sample without a phase, else the phases
    combined (summed for power, the highest for current); energy needs the
    unphased register."""
    unphased = [v for s in samples if not s.get("phase") if (v := _scaled(s, units)) is not None]
    if unphased:
        return unphased[-1]
    if combine == "none":
        return None
    # Line-to-neutral phases only (L1-N or L1); ignore line-to-line duplicates.
    phased = [
        v
        for s in samples
        if "-L" not in str(s.get("phase"))
        if (v := _scaled(s, units)) is not None
    ]
    if not phased:
        return None
    return sum(phased, Decimal(0)) if combine == "sum" else max(phased)


def readings(meter_values: Sequence[Mapping[str, Any]], parse_time: Any) -> list[Reading]:
    """``meter_values`` as the ocpp library hands them (snake_case keys:
    ``timestamp``, ``sampled_value``); ``parse_time`` turns the timestamp
    into an aware datetime (ValueError otherwise: that element is skipped)."""
    found = []
    for mv in meter_values:
        try:
            at = parse_time(mv["timestamp"])
        except (KeyError, ValueError, TypeError):
            continue
        samples = mv.get("sampled_value") or []
        energy = _whole(_measured(samples, ENERGY), _WH, "none")
        current = _whole(_measured(samples, CURRENT), _A, "max")
        power = _whole(_measured(samples, POWER), _KW, "sum")
        found.append(
            Reading(
                at=at,
                meter_wh=energy if energy is not None and energy >= 0 else None,
                current_a=current if current is not None and current >= 0 else None,
                power_kw=power if power is not None and power >= 0 else None,
            )
        )
    return found


# --- authorization ------------------------------------------------------------------


def id_tag_status(decision: Decision) -> str:
    """OCPP 1.6 AuthorizationStatus of a decision: a token nobody knows is
    Invalid; a known token refused for a reason OCPP names (blocked, expired)
    that reason; refused for credit or location, Blocked / Invalid."""
    if decision.authorized:
        return "Accepted"
    return _REFUSED.get(decision.allowed, "Invalid") if decision.allowed else "Invalid"


_REFUSED = {
    AllowedType.BLOCKED: "Blocked",
    AllowedType.EXPIRED: "Expired",
    AllowedType.NO_CREDIT: "Blocked",
    AllowedType.NOT_ALLOWED: "Invalid",
}


def token_identity(token: Mapping[str, Any] | None) -> TokenIdentity | None:
    """The identity of an OCPI Token (JSON), None when there is none."""
    if not token:
        return None
    try:
        return TokenIdentity(
            uid=token["uid"],
            type=TokenType(token["type"]),
            country_code=token["country_code"],
            party_id=token["party_id"],
            contract_id=token["contract_id"],
        )
    except (KeyError, ValueError):
        return None


def auth_method(decision: Decision) -> AuthMethod:
    """How a decision was taken, as a Session says it: from the whitelist
    (ours to take, or the eMSP unreachable), else the eMSP was asked."""
    if decision.source in (DecisionSource.WHITELIST, DecisionSource.OFFLINE):
        return AuthMethod.WHITELIST
    return AuthMethod.AUTH_REQUEST


# --- commands at the charger ---------------------------------------------------------------

_STATUS_RESULT = {
    "Accepted": CommandResultType.ACCEPTED,
    "Rejected": CommandResultType.REJECTED,
    "Occupied": CommandResultType.EVSE_OCCUPIED,
    "Faulted": CommandResultType.EVSE_INOPERATIVE,
    "Unavailable": CommandResultType.EVSE_INOPERATIVE,
    "Unlocked": CommandResultType.ACCEPTED,
    "UnlockFailed": CommandResultType.FAILED,
    "NotSupported": CommandResultType.NOT_SUPPORTED,
}


def command_result(
    command: CommandType, status: str | None, call_error: str | None = None
) -> CommandResultType:
    """The result of a command from the charger's answer: its status, or the
    code of the CallError it answered with."""
    if call_error is not None:
        if call_error in ("NotImplemented", "NotSupported"):
            return CommandResultType.NOT_SUPPORTED
        return CommandResultType.FAILED
    if command is CommandType.CANCEL_RESERVATION and status == "Rejected":
        # OCPP 1.6 CancelReservation: Rejected = no reservation with that id.
        return CommandResultType.UNKNOWN_RESERVATION
    return _STATUS_RESULT.get(status or "", CommandResultType.FAILED)


def session_id() -> str:
    """A new OCPI session id for a transaction of ours."""
    return str(uuid.uuid4())


def fact(event_type: type[E], payload: Mapping[str, Any], origin: Origin, now: datetime) -> E:
    """A charger fact (``charger.transactions.v1``) from its payload fields,
    keyed by its location; it happened at the payload's ``at``."""
    model = event_type.model_fields["payload"].annotation
    assert model is not None
    p = model.model_validate(payload)
    return event_type.model_validate(
        {**recorded_now(p.location_key, now, origin, occurred=p.at), "payload": p}
    )


def reservation_usable(held: Mapping[str, Any], now: datetime) -> bool:
    """Whether a reservation the gateway remembers still holds: until its
    expiry by our clock (an entry from before expiries were kept holds until
    Redis forgets it). After it, a start naming it is a charge of its own and
    a ReserveNow with its id a new reservation: its session has ended or is
    about to (``ReservationEnded(EXPIRED)``, docs/adr/0021)."""
    expires_at = held.get("expires_at")
    if not isinstance(expires_at, str):
        return True
    try:
        at = datetime.fromisoformat(expires_at)
    except ValueError:
        return True
    return now < (at if at.tzinfo is not None else at.replace(tzinfo=UTC))
