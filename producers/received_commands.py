"""Received commands: the Commands slice as CPO (mod_commands, our Receiver
interface): a partner eMSP POSTs a command for one of our chargers.

**Deciding.** ``plan`` judges the request against facts the HTTP shell
looked up beforehand (our location and the registry entries of its charge
points as the write path holds them, who is connected, the session, the
reservation a CANCEL_RESERVATION cancels) and returns what to record:

- ``CommandAccepted``: the command goes to the charger; its result is due by
  ``deadline`` (the timeout is armed at acceptance, so it is in the event and
  survives any restart, docs/adr/0017);
- ``CommandDeclined``: we answer REJECTED, NOT_SUPPORTED or UNKNOWN_SESSION
  and nothing goes to a charger;
- ``NotFound``: the location, EVSE or connector is not ours; nothing is
  recorded and the answer is 2003 (HTTP 200 to a partner, 404 to our ops
  API: docs/adr/0039 §2).

``decide`` is the same judgement in the write path's shape
(producers/write_path.py, docs/adr/0022): the events to record and the
CommandResponse to answer, or ``RefusedError``.

The CPO does not judge the token otherwise (mod_commands, START_SESSION: the
eMSP vouches for it), except that an eMSP may only use its own tokens.

**State.** ``ReceivedCommandState`` is one command as its events leave it
(ours, the gateway's and the processors'); ``evolve`` folds them, for the
``received_commands`` view and the write path alike. The write path keeps only
the states a later decision consults: accepted RESERVE_NOWs, which a
CANCEL_RESERVATION reuses (``SLICE``).

Everything here is pure: no I/O, the clock and the ids are passed in. The
ports the shell gathers the facts through are at the bottom, with their
Redis adapters.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict

from producers.write_path import Decision, RefusedError, Slice
from schemas.events import (
    ChargerCommandAnswered,
    CommandAccepted,
    CommandDeadlinePassed,
    CommandDeclined,
    CommandResultDecided,
    Party,
)
from schemas.events.commands import (
    CommandAcceptedPayload,
    CommandDeclinedPayload,
    CommandTarget,
)
from schemas.events.locations import location_key
from schemas.ocpi.commands import (
    CancelReservation,
    CommandRequest,
    CommandResponse,
    CommandResponseType,
    CommandResultType,
    CommandType,
    ReserveNow,
    StartSession,
    StopSession,
    UnlockConnector,
)
from schemas.ocpi.common import fold
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.types import DisplayText, to_json
from schemas.topics import COMMANDS

Json = dict[str, Any]

OFFLINE = "charge point offline"
# OCPI SessionStatus values a STOP_SESSION may still act on.
_STOPPABLE = frozenset({"ACTIVE", "PENDING"})


class ConnectorEntry(BaseModel):
    """One OCPP connector of a registered charge point (the ``charge_points``
    view's shape, common brief)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    ocpp_connector_id: int
    evse_uid: str
    connector_id: str

    @property
    def evse_key(self) -> str:
        return fold(self.evse_uid)

    @property
    def connector_key(self) -> str:
        return fold(self.connector_id)


class ChargePointEntry(BaseModel):
    """A charge point of the registry (``producers.charge_points.ChargePointState``
    has this shape, and so has the ``charge_points`` view)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    charge_point_id: str
    country_code: str
    party_id: str
    location_id: str
    registered: bool = True
    connectors: tuple[ConnectorEntry, ...] = ()


@dataclass(frozen=True)
class Caller:
    """Who sent the command: the partner and its parties (folded), and the
    party that speaks (the routing ``from``)."""

    partner_id: str
    party: Party
    parties: frozenset[Party]

    def owns(self, country_code: str, party_id: str) -> bool:
        return Party(country_code=fold(country_code), party_id=fold(party_id)) in self.parties


# A command our own operator gives from the ops API or the dashboard is
# recorded as a received command whose "partner" is ``ops:<actor>``: the
# same decision, gateway and result path as a partner's, and no partner id
# can take this form (``ocpi-hub partners invite`` refuses it), so the
# callback processor knows there is no eMSP to tell.
OPERATOR_PARTNER_PREFIX = "ops:"


def operator_caller(us: Party, actor: str) -> Caller:
    """The caller of a command our operator gives: ourselves, as eMSP of
    our own tokens."""
    return Caller(partner_id=f"{OPERATOR_PARTNER_PREFIX}{actor}", party=us, parties=frozenset({us}))


def given_by_operator(partner_id: str) -> bool:
    return partner_id.startswith(OPERATOR_PARTNER_PREFIX)


@dataclass(frozen=True)
class Facts:
    """What the shell looked up for one request, before deciding.

    ``location``: our OCPI Location of the request as its owner (we) last
    said it (None: not ours or unknown). ``charge_points``: the registry
    entries of that location (or of the session's location). ``present``:
    the charge point ids connected to a gateway now. ``session``: our OCPI
    Session of a STOP_SESSION. ``reservation``: the target of the accepted
    RESERVE_NOW a CANCEL_RESERVATION cancels. ``ocpp_reservation_id``: the
    id allocated for a RESERVE_NOW."""

    us: Party
    caller: Caller
    command_id: str
    correlation_id: str
    location: Json | None = None
    charge_points: tuple[ChargePointEntry, ...] = ()
    present: frozenset[str] = frozenset()
    session: Json | None = None
    reservation: CommandTarget | None = None
    ocpp_reservation_id: int | None = None


@dataclass(frozen=True)
class NotFound:
    """The request names a location, EVSE or connector we do not have."""

    message: str


Planned = CommandAccepted | CommandDeclined | NotFound
Declinable = Literal[
    CommandResponseType.REJECTED,
    CommandResponseType.NOT_SUPPORTED,
    CommandResponseType.UNKNOWN_SESSION,
]


class DeclinedError(Exception):
    """Why a request for one of our chargers is not sent to it (the
    ChargingProfiles module declines with the same three words)."""

    def __init__(self, result: Declinable, message: str) -> None:
        super().__init__(message)
        self.result = result
        self.message = message


class _NotFoundError(Exception):
    pass


def new_command_id() -> str:
    return uuid.uuid4().hex


def plan(
    command: CommandType,
    request: CommandRequest,
    facts: Facts,
    now: datetime,
    timeout_s: int,
    *,
    event_id: uuid.UUID | None = None,
) -> Planned:
    """Judge one validated command request against the facts."""
    try:
        target = _target(command, request, facts)
    except _NotFoundError as exc:
        return NotFound(str(exc))
    except DeclinedError as exc:
        return CommandDeclined(
            **_meta(facts, now, event_id),
            payload=CommandDeclinedPayload(
                command_id=facts.command_id,
                command=command,
                sender=facts.caller.party,
                partner_id=facts.caller.partner_id,
                result=exc.result,
                message=exc.message,
                request=to_json(request),
                at=now,
            ),
        )
    return CommandAccepted(
        **_meta(facts, now, event_id),
        payload=CommandAcceptedPayload(
            command_id=facts.command_id,
            command=command,
            sender=facts.caller.party,
            partner_id=facts.caller.partner_id,
            response_url=request.response_url,
            request=to_json(request),
            target=target,
            timeout_s=timeout_s,
            deadline=now + timedelta(seconds=timeout_s),
            at=now,
        ),
    )


def _meta(facts: Facts, now: datetime, event_id: uuid.UUID | None) -> Json:
    return {
        "event_id": event_id or uuid.uuid4(),
        "aggregate_key": facts.command_id,
        "occurred_at": now,
        "recorded_at": now,
        "source": facts.caller.party,
        "correlation_id": facts.correlation_id,
    }


def _target(command: CommandType, request: CommandRequest, facts: Facts) -> CommandTarget:
    if isinstance(request, StartSession):
        location, evse = _place(facts, request.location_id, request.evse_uid, request.connector_id)
        _own_token(facts, request.token.country_code, request.token.party_id)
        capabilities = (evse or {}).get("capabilities") or ()
        if "START_SESSION_CONNECTOR_REQUIRED" in capabilities and request.connector_id is None:
            raise DeclinedError(
                CommandResponseType.REJECTED,
                f"EVSE {request.evse_uid} needs a connector_id to start a session",
            )
        return _resolve(facts, location, request.evse_uid, request.connector_id)
    if isinstance(request, ReserveNow):
        location, _ = _place(facts, request.location_id, request.evse_uid, None)
        _own_token(facts, request.token.country_code, request.token.party_id)
        target = _resolve(facts, location, request.evse_uid, None)
        return target.model_copy(update={"ocpp_reservation_id": facts.ocpp_reservation_id})
    if isinstance(request, UnlockConnector):
        location, _ = _place(facts, request.location_id, request.evse_uid, request.connector_id)
        return _resolve(facts, location, request.evse_uid, request.connector_id)
    if isinstance(request, StopSession):
        return _stop_target(facts, request)
    if isinstance(request, CancelReservation):
        held = facts.reservation
        if held is None:
            raise DeclinedError(
                CommandResponseType.REJECTED, f"unknown reservation {request.reservation_id}"
            )
        if held.charge_point_id not in facts.present:
            raise DeclinedError(CommandResponseType.REJECTED, OFFLINE)
        return held
    raise AssertionError(f"no rule for {command}")  # pragma: no cover - CommandType is closed


def _place(
    facts: Facts, location_id: str, evse_uid: str | None, connector_id: str | None
) -> tuple[Json, Json | None]:
    """Our location and, when named, its EVSE; ``_NotFoundError`` (2003) when the
    location, EVSE or connector is not ours or was removed."""
    location = facts.location
    if (
        location is None
        or not _ours(location, facts.us)
        or fold(location["id"]) != fold(location_id)
    ):
        raise _NotFoundError(f"unknown location {location_id}")
    evses = [e for e in location.get("evses") or () if e.get("status") != "REMOVED"]
    if location.get("evses") and not evses:
        raise _NotFoundError(f"location {location_id} was removed")
    if evse_uid is None:
        return location, None
    evse = next((e for e in evses if fold(e["uid"]) == fold(evse_uid)), None)
    if evse is None:
        raise _NotFoundError(f"unknown EVSE {evse_uid} at location {location_id}")
    if connector_id is not None and not any(
        fold(c["id"]) == fold(connector_id) for c in evse.get("connectors") or ()
    ):
        raise _NotFoundError(f"unknown connector {connector_id} of EVSE {evse_uid}")
    return location, evse


def _ours(location: Json, us: Party) -> bool:
    return (fold(location["country_code"]), fold(location["party_id"])) == (
        fold(us.country_code),
        fold(us.party_id),
    )


def _own_token(facts: Facts, country_code: str, party_id: str) -> None:
    # mod_commands, StartSession: an eMSP only sends its own tokens.
    if not facts.caller.owns(country_code, party_id):
        raise DeclinedError(
            CommandResponseType.REJECTED,
            f"token of {country_code}/{party_id} is not one of the sender's tokens",
        )


def _resolve(
    facts: Facts, location: Json, evse_uid: str | None, connector_id: str | None
) -> CommandTarget:
    """The registered, connected charge point for the EVSE (or, without one,
    any of the location's), as the command's target."""
    registered = sorted(
        (cp for cp in facts.charge_points if cp.registered and _at(cp, location)),
        key=lambda cp: cp.charge_point_id,
    )
    base = {
        "country_code": location["country_code"],
        "party_id": location["party_id"],
        "location_id": location["id"],
        "evse_uid": evse_uid,
        "connector_id": connector_id,
    }
    if evse_uid is None:
        if not registered:
            raise DeclinedError(
                CommandResponseType.NOT_SUPPORTED, "no charge point at this location takes commands"
            )
        online = [cp for cp in registered if cp.charge_point_id in facts.present]
        if not online:
            raise DeclinedError(CommandResponseType.REJECTED, OFFLINE)
        return CommandTarget(**base, charge_point_id=online[0].charge_point_id)
    matches = [
        (cp, c)
        for cp in registered
        for c in cp.connectors
        if c.evse_key == fold(evse_uid)
        and (connector_id is None or c.connector_key == fold(connector_id))
    ]
    if not matches:
        raise DeclinedError(
            CommandResponseType.NOT_SUPPORTED,
            f"EVSE {evse_uid} is not on a registered charge point",
        )
    reachable = [(cp, c) for cp, c in matches if cp.charge_point_id in facts.present]
    if not reachable:
        raise DeclinedError(CommandResponseType.REJECTED, OFFLINE)
    chosen, connector = reachable[0]
    return CommandTarget(
        **base,
        charge_point_id=chosen.charge_point_id,
        ocpp_connector_id=connector.ocpp_connector_id,
    )


def _at(cp: ChargePointEntry, location: Json) -> bool:
    return location_key(cp.country_code, cp.party_id, cp.location_id) == location_key(
        location["country_code"], location["party_id"], location["id"]
    )


def _stop_target(facts: Facts, request: StopSession) -> CommandTarget:
    return session_target(facts, request.session_id)


def session_target(facts: Facts, session_id: str) -> CommandTarget:
    """The charger of one of our active sessions, for a request of the
    session's eMSP (STOP_SESSION; a charging profile: mod_charging_profiles,
    only the owner of the session's token may set one); ``DeclinedError``
    otherwise."""
    session = facts.session
    if session is None or (fold(session["country_code"]), fold(session["party_id"])) != (
        fold(facts.us.country_code),
        fold(facts.us.party_id),
    ):
        raise DeclinedError(CommandResponseType.UNKNOWN_SESSION, f"unknown session {session_id}")
    token = session.get("cdr_token") or {}
    if not facts.caller.owns(str(token.get("country_code", "")), str(token.get("party_id", ""))):
        raise DeclinedError(CommandResponseType.REJECTED, "the session is not one of the sender's")
    if session.get("status") not in _STOPPABLE:
        raise DeclinedError(
            CommandResponseType.REJECTED, f"the session is {session.get('status')}, not active"
        )
    location = {
        "country_code": session["country_code"],
        "party_id": session["party_id"],
        "id": session["location_id"],
    }
    target = _resolve(facts, location, session["evse_uid"], session["connector_id"])
    return target.model_copy(update={"session_id": session["id"]})


def reservation_key(sender: Party, reservation_id: str) -> str:
    """A reservation's identity: the eMSP's party and its reservation id, folded."""
    return f"{fold(sender.country_code)}/{fold(sender.party_id)}/{fold(reservation_id)}"


# --------------------------------------------------------------------------- #
# Deciding through the write path
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class ReceiveCommand:
    """A partner's command, validated, with the facts gathered for it and the
    timeout we announce."""

    command: CommandType
    request: CommandRequest
    facts: Facts
    timeout_s: int


def response_of(event: CommandAccepted | CommandDeclined) -> CommandResponse:
    """The CommandResponse that answers the request, from what we recorded."""
    if isinstance(event, CommandDeclined):
        p = event.payload
        message = [DisplayText(language="en", text=p.message)] if p.message else None
        return CommandResponse(result=p.result, timeout=0, message=message)
    return CommandResponse(result=CommandResponseType.ACCEPTED, timeout=event.payload.timeout_s)


def decide(
    state: ReceivedCommandState | None, received: ReceiveCommand, now: datetime
) -> Decision[CommandResponse]:
    """Record the command's acceptance or refusal and answer its
    CommandResponse; a place that is not ours is ``RefusedError`` 2003 (HTTP
    404 for the ops API, 200 for a partner: docs/adr/0039 §2) and records
    nothing. ``state`` is the command's own, always empty:
    its id is new, and what the command is judged on are other aggregates
    (``received.facts``)."""
    planned = plan(received.command, received.request, received.facts, now, received.timeout_s)
    if isinstance(planned, NotFound):
        raise RefusedError(OcpiStatus.UNKNOWN_LOCATION, planned.message, 404)
    return Decision([planned], response_of(planned))


# --------------------------------------------------------------------------- #
# State and fold
# --------------------------------------------------------------------------- #


class ShownResponse(BaseModel):
    """Our CommandResponse as recorded (message: why a command was declined)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    result: CommandResponseType
    timeout: int
    message: str | None = None


class ChargerAnswer(BaseModel):
    """What the charger answered, through the gateway holding it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    result: CommandResultType
    charger_status: str | None = None
    message: str | None = None
    at: datetime


class ReceivedCommandState(BaseModel):
    """One command a partner sent us, as its events leave it: our decision
    (request, target, response, deadline), the charger's answer, the
    deadline passing and the one result. Fields of events not folded yet
    are None."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: str
    command: CommandType | None = None
    sender: Party | None = None
    partner_id: str | None = None
    request: dict[str, Any] | None = None
    response_url: str | None = None
    received_at: datetime | None = None
    # RESERVE_NOW and CANCEL_RESERVATION: the reservation (``reservation_key``).
    reservation_key: str | None = None
    target: CommandTarget | None = None
    response: ShownResponse | None = None
    deadline: datetime | None = None
    accepted_event_id: str | None = None
    charger_answer: ChargerAnswer | None = None
    deadline_passed_at: datetime | None = None
    result: CommandResultType | None = None
    result_message: list[DisplayText] | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None


ReceivedCommandEvent = (
    CommandAccepted
    | CommandDeclined
    | ChargerCommandAnswered
    | CommandDeadlinePassed
    | CommandResultDecided
)
RECEIVED_COMMAND_EVENTS = (
    CommandAccepted,
    CommandDeclined,
    ChargerCommandAnswered,
    CommandDeadlinePassed,
    CommandResultDecided,
)


def evolve(state: ReceivedCommandState | None, event: object) -> ReceivedCommandState | None:
    """The command after one event; events of other kinds (our commands as
    eMSP share the topic) change nothing."""
    if not isinstance(event, RECEIVED_COMMAND_EVENTS):
        return state
    base = state or ReceivedCommandState(command_id=event.payload.command_id)
    update: dict[str, Any]
    if isinstance(event, CommandAccepted | CommandDeclined):
        update = _decided(event)
    elif isinstance(event, ChargerCommandAnswered):
        a = event.payload
        update = {
            "charger_answer": ChargerAnswer(
                result=a.result, charger_status=a.charger_status, message=a.message, at=a.at
            )
        }
    elif isinstance(event, CommandDeadlinePassed):
        # Stated more than once at times: the first one counts.
        update = {"deadline_passed_at": base.deadline_passed_at or event.payload.at}
    else:
        r = event.payload
        update = {
            "result": r.result,
            "result_message": r.message or None,
            "decided_by": r.decided_by,
            "decided_at": r.at,
        }
    return base.model_copy(update=update)


def _decided(event: CommandAccepted | CommandDeclined) -> dict[str, Any]:
    p = event.payload
    rid = p.request.get("reservation_id")
    update: dict[str, Any] = {
        "command": p.command,
        "sender": p.sender,
        "partner_id": p.partner_id,
        "request": p.request,
        "response_url": p.request.get("response_url"),
        "received_at": p.at,
        "reservation_key": reservation_key(p.sender, str(rid)) if rid is not None else None,
    }
    if isinstance(event, CommandAccepted):
        a = event.payload
        return update | {
            "target": a.target,
            "response": ShownResponse(result=CommandResponseType.ACCEPTED, timeout=a.timeout_s),
            "deadline": a.deadline,
            "accepted_event_id": str(event.event_id),
        }
    d = event.payload
    return update | {
        "target": None,
        "response": ShownResponse(result=d.result, timeout=0, message=d.message),
    }


def reservation_held(state: ReceivedCommandState | None) -> CommandTarget | None:
    """The reservation an accepted RESERVE_NOW made: its target."""
    if state is None or state.command is not CommandType.RESERVE_NOW:
        return None
    return state.target


def _evolve_held(state: ReceivedCommandState | None, event: object) -> ReceivedCommandState | None:
    # A received command is decided once, on other aggregates; the only
    # later decision that consults one is a CANCEL_RESERVATION (its
    # RESERVE_NOW). Holding every other command in the decision store would
    # grow it by every command ever received, for nothing.
    after = evolve(state, event)
    return after if reservation_held(after) is not None else None


# The commands partners send us, as the write path holds them (docs/adr/0022).
SLICE: Slice[ReceivedCommandState] = Slice(
    "received_commands",
    COMMANDS,
    _evolve_held,
    lambda state: state.model_dump_json().encode(),
    ReceivedCommandState.model_validate_json,
)


# --------------------------------------------------------------------------- #
# Ports the shell gathers the facts through, and their Redis adapters
# --------------------------------------------------------------------------- #


class ChargePointDirectory(Protocol):
    async def at_location(self, country_code: str, party_id: str, location_id: str) -> list[Json]:
        """The registry documents of a location's charge points (any state)."""
        ...


class ReceivedCommands(Protocol):
    async def reservation(self, key: str) -> CommandTarget | None:
        """The target of the latest accepted RESERVE_NOW under
        ``reservation_key``, as the ``received_commands`` view holds it."""
        ...


class Presence(Protocol):
    async def present(self, charge_point_ids: Iterable[str]) -> frozenset[str]: ...


class ReservationIds(Protocol):
    """The reservations of eMSPs at our chargers, by ``reservation_key``."""

    async def allocate(self, key: str) -> int:
        """The OCPP reservation id of ``reservation_key``: the same on every
        call for one key, different for different keys."""
        ...

    async def reserved(self, key: str, command_id: str) -> None:
        """The accepted RESERVE_NOW ``command_id`` holds the reservation now
        (set before its CommandResponse is answered)."""
        ...

    async def reserved_by(self, key: str) -> str | None:
        """The command id of the latest accepted RESERVE_NOW of ``key``."""
        ...


def presence_key(prefix: str, charge_point_id: str) -> str:
    """Set by the gateway while the charge point is connected (common brief)."""
    return f"{prefix}ocpi-hub:ocpp:presence:{charge_point_id}"


def seen_key(prefix: str, charge_point_id: str) -> str:
    """When the gateway last heard from the charge point (gateway/state.py)."""
    return f"{prefix}ocpi-hub:ocpp:seen:{charge_point_id}"


@dataclass
class RedisPresence:
    redis: aioredis.Redis
    prefix: str = ""

    async def present(self, charge_point_ids: Iterable[str]) -> frozenset[str]:
        found = set()
        for cp in charge_points_unique(charge_point_ids):
            if await self.redis.exists(presence_key(self.prefix, cp)):
                found.add(cp)
        return frozenset(found)


def charge_points_unique(ids: Iterable[str]) -> list[str]:
    return sorted(set(ids))


@dataclass
class RedisReservationIds:
    """Ids: ``HSETNX`` of the reservation key to a fresh ``INCR`` of a
    counter: the first allocation wins, later ones read it back. A lost race
    burns one counter value, never reuses one. Which command holds a
    reservation: a hash of reservation key to command id, the command's state
    itself being in the write path's decision store."""

    redis: aioredis.Redis
    prefix: str = ""

    def _holders(self) -> str:
        return f"{self.prefix}ocpi-hub:commands:reservation-commands"

    async def reserved(self, key: str, command_id: str) -> None:
        await self.redis.hset(self._holders(), key, command_id)

    async def reserved_by(self, key: str) -> str | None:
        held = await self.redis.hget(self._holders(), key)
        if held is None:
            return None
        return held.decode() if isinstance(held, bytes) else str(held)

    async def allocate(self, key: str) -> int:
        table = f"{self.prefix}ocpi-hub:commands:reservation-ids"
        held = await self.redis.hget(table, key)
        if held is None:
            fresh = int(await self.redis.incr(f"{self.prefix}ocpi-hub:commands:reservation-seq"))
            await self.redis.hsetnx(table, key, fresh)
            held = await self.redis.hget(table, key)
        if held is None:
            raise RuntimeError("reservation id not stored")
        return int(held)


@dataclass
class InMemoryCommandFacts:
    """Fakes of every port, for unit tests of the shell."""

    charge_points: list[Json] = field(default_factory=list)
    connected: set[str] = field(default_factory=set)
    # The received_commands view's reservations, and which command holds each.
    reservations: dict[str, CommandTarget] = field(default_factory=dict)
    holders: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    async def at_location(self, country_code: str, party_id: str, location_id: str) -> list[Json]:
        key = location_key(country_code, party_id, location_id)
        return [
            d
            for d in self.charge_points
            if location_key(d["country_code"], d["party_id"], d["location_id"]) == key
        ]

    async def reservation(self, key: str) -> CommandTarget | None:
        return self.reservations.get(key)

    async def present(self, charge_point_ids: Iterable[str]) -> frozenset[str]:
        return frozenset(i for i in charge_point_ids if i in self.connected)

    async def allocate(self, key: str) -> int:
        return self.ids.setdefault(key, len(self.ids) + 1)

    async def reserved(self, key: str, command_id: str) -> None:
        self.holders[key] = command_id

    async def reserved_by(self, key: str) -> str | None:
        return self.holders.get(key)
