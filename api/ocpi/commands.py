"""Commands module, Receiver interface: we as CPO (mod_commands).

``POST /ocpi/cpo/2.2.1/commands/{command}``: a registered partner with an
eMSP role asks one of our chargers to start or stop a session, reserve,
cancel a reservation or unlock a connector. The shell validates the body
against the command's request object, looks up the facts
(``producers.commands.Facts``), lets ``producers.commands.decide`` judge and
records the outcome; the CommandResponse is answered only once Kafka has
acknowledged it. The charger's result goes to ``response_url`` later
(processors/command_results.py, processors/command_callbacks.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path

from api.deps import ContainerDep, CorrelationIdDep, EventLogDep, NowDep
from api.errors import OcpiError, envelope
from api.routing import RoutedCallerDep
from producers.commands import (
    Caller,
    ChargePointDirectory,
    ChargePointEntry,
    Facts,
    NotFound,
    Presence,
    ReceivedCommands,
    RedisPresence,
    RedisReservationIds,
    ReservationIds,
    decide,
    new_command_id,
    reservation_key,
)
from projections.mongo.locations import LocationViewQuery
from projections.mongo.sessions import SessionViewQuery
from schemas.events import CommandDeclined, Party
from schemas.events.sessions import session_key
from schemas.ocpi.commands import (
    REQUEST_MODEL,
    CancelReservation,
    CommandRequest,
    CommandResponse,
    CommandResponseType,
    CommandType,
    ReserveNow,
    StartSession,
    StopSession,
    UnlockConnector,
)
from schemas.ocpi.common import fold
from schemas.ocpi.credentials import Role
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.types import DisplayText, to_json

receiver = APIRouter(prefix="/ocpi/cpo/2.2.1/commands", tags=["ocpi: commands (receiver)"])


@dataclass(frozen=True)
class CommandPorts:
    """Where the facts of a command come from."""

    locations: LocationViewQuery
    sessions: SessionViewQuery
    charge_points: ChargePointDirectory
    received: ReceivedCommands
    presence: Presence
    reservation_ids: ReservationIds


def command_ports(c: ContainerDep) -> CommandPorts:
    assert c.charge_points is not None and c.received_commands is not None
    prefix = c.settings.topic_prefix
    return CommandPorts(
        locations=c.locations,
        sessions=c.sessions,
        charge_points=c.charge_points,
        received=c.received_commands,
        presence=RedisPresence(c.redis, prefix),
        reservation_ids=RedisReservationIds(c.redis, prefix),
    )


CommandPortsDep = Annotated[CommandPorts, Depends(command_ports)]


def _command(command: Annotated[str, Path(max_length=40)]) -> CommandType:
    try:
        return CommandType(command)
    except ValueError:
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS,
            f"unknown command {command!r}; one of {', '.join(CommandType)}",
            404,
        ) from None


CommandDep = Annotated[CommandType, Depends(_command)]


def _caller(caller: RoutedCallerDep) -> Caller:
    partner = caller.partner
    emsp = {
        Party(country_code=fold(r.country_code), party_id=fold(r.party_id))
        for r in partner.roles
        if r.role == Role.EMSP
    }
    if caller.party not in emsp:
        raise OcpiError(
            OcpiStatus.CLIENT_ERROR,
            f"{caller.party.country_code}/{caller.party.party_id} has no eMSP role; "
            "only an eMSP sends commands",
            403,
        )
    parties = frozenset(
        Party(country_code=fold(r.country_code), party_id=fold(r.party_id)) for r in partner.roles
    )
    return Caller(partner_id=partner.partner_id, party=caller.party, parties=parties)


async def gather_facts(
    request: CommandRequest,
    ports: CommandPorts,
    *,
    us: Party,
    caller: Caller,
    command_id: str,
    correlation_id: str,
) -> Facts:
    """Look up everything ``decide`` needs for this request."""
    location = None
    charge_points: list[dict[str, Any]] = []
    session = None
    reservation = None
    ocpp_reservation_id = None
    if isinstance(request, StartSession | ReserveNow | UnlockConnector):
        location = await asyncio.to_thread(
            ports.locations.get, us.country_code, us.party_id, request.location_id
        )
        if location is not None:
            charge_points = await asyncio.to_thread(
                ports.charge_points.at_location, us.country_code, us.party_id, location["id"]
            )
    if isinstance(request, ReserveNow):
        key = reservation_key(caller.party, request.reservation_id)
        ocpp_reservation_id = await ports.reservation_ids.allocate(key)
    if isinstance(request, StopSession):
        key = session_key(us.country_code, us.party_id, request.session_id)
        session, _ = await asyncio.to_thread(ports.sessions.read, key)
        if session is not None:
            charge_points = await asyncio.to_thread(
                ports.charge_points.at_location,
                session["country_code"],
                session["party_id"],
                session["location_id"],
            )
    if isinstance(request, CancelReservation):
        key = reservation_key(caller.party, request.reservation_id)
        reservation = await asyncio.to_thread(ports.received.reservation, key)
    entries = tuple(ChargePointEntry.model_validate(d) for d in charge_points)
    ids = [cp.charge_point_id for cp in entries]
    if reservation is not None:
        ids.append(reservation.charge_point_id)
    return Facts(
        us=us,
        caller=caller,
        command_id=command_id,
        correlation_id=correlation_id,
        location=location,
        charge_points=entries,
        present=await ports.presence.present(ids),
        session=session,
        reservation=reservation,
        ocpp_reservation_id=ocpp_reservation_id,
    )


@receiver.post("/{command}")
async def receive_command(
    command: CommandDep,
    caller: Annotated[Caller, Depends(_caller)],
    c: ContainerDep,
    ports: CommandPortsDep,
    event_log: EventLogDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    body: Annotated[Any, Body()] = None,
) -> dict[str, Any]:
    # A bad body raises pydantic's ValidationError: 2001, nothing written.
    request: CommandRequest = REQUEST_MODEL[command].model_validate(body)  # type: ignore[assignment]
    s = c.settings
    us = Party(country_code=fold(s.party_country_code), party_id=fold(s.party_id))
    facts = await gather_facts(
        request,
        ports,
        us=us,
        caller=caller,
        command_id=new_command_id(),
        correlation_id=correlation_id,
    )
    decision = decide(command, request, facts, now, s.command_timeout_s)
    if isinstance(decision, NotFound):
        raise OcpiError(OcpiStatus.UNKNOWN_LOCATION, decision.message, 404)
    try:
        await event_log.append([decision])
    except Exception as exc:
        raise OcpiError(
            OcpiStatus.SERVER_ERROR, "the command could not be recorded; retry"
        ) from exc
    if isinstance(decision, CommandDeclined):
        p = decision.payload
        response = CommandResponse(
            result=p.result,
            timeout=0,
            message=[DisplayText(language="en", text=p.message)] if p.message else None,
        )
    else:
        response = CommandResponse(
            result=CommandResponseType.ACCEPTED, timeout=decision.payload.timeout_s
        )
    return envelope(to_json(response))
