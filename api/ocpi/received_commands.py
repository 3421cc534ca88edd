"""Received commands: the Commands module's Receiver interface, we as CPO
(mod_commands).

``POST /ocpi/cpo/{version}/commands/{command}``: a registered partner with an
eMSP role asks one of our chargers to start or stop a session, reserve,
cancel a reservation or unlock a connector. The shell validates the body
against the command's request object, gathers the facts
(``producers.received_commands.Facts``) and records through the one write path
(docs/adr/0022) what ``producers.received_commands.decide`` makes of them; the
CommandResponse is answered only once Kafka has acknowledged it. The
charger's result goes to ``response_url`` later
(processors/command_results.py, processors/command_callbacks.py).

Where the facts come from: our location and the registry entry of each
charge point from the states the write path holds (as of their latest
event in the log); which charge points are at a location, and our sessions
(the processors' facts), from the views; who is connected from the
gateway's presence keys. A CANCEL_RESERVATION finds its RESERVE_NOW through
the reservation index (``ReservationIds.reserved_by``) and the command's
state in the write path, so a cancel sent right after its reservation was
answered finds it; reservations the index does not know (a Redis that lost
it) are looked up in the ``received_commands`` view.

One set of handlers for every OCPI version we offer (docs/adr/0045): a
2.1.1 request is converted into ours first (its Token, an integer
reservation id; it has no CANCEL_RESERVATION: 2001), and the
CommandResponse leaves in the route's version (2.1.1: the result only).
In 2.3.0 CommandType is an OpenEnum: a command of the eMSP's own is
answered NOT_SUPPORTED and nothing is recorded (``_command``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Path, Request

from api.auth import wire_of
from api.deps import ContainerDep, CorrelationIdDep, NowDep
from api.errors import OcpiError, envelope
from api.ocpi.paths import VersionPath
from api.routing import RoutedCallerDep
from api.writes import JsonBodyOrNone, WritePathDep, body_of
from ocpi_hub.bootstrap import Container
from producers import charge_points, locations
from producers.received_commands import (
    SLICE,
    Caller,
    ChargePointDirectory,
    ChargePointEntry,
    Facts,
    Presence,
    ReceiveCommand,
    ReceivedCommands,
    RedisPresence,
    RedisReservationIds,
    ReservationIds,
    decide,
    new_command_id,
    reservation_held,
    reservation_key,
)
from producers.url_policy import UrlRefusedError, check_url
from producers.write_path import WritePath
from projections.mongo.sessions import SessionViewQuery
from schemas.events import Party
from schemas.events.commands import CommandTarget
from schemas.events.locations import location_key
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
from schemas.ocpi.v230.commands import is_listed_command
from schemas.ocpi.wire import Kind, version_key

log = structlog.get_logger(__name__)

Json = dict[str, Any]

receiver = APIRouter(prefix="/ocpi/cpo/{version}/commands", tags=["ocpi: commands (receiver)"])


@dataclass(frozen=True)
class CommandPorts:
    """Where the facts of a command come from, besides the write path."""

    sessions: SessionViewQuery
    charge_points: ChargePointDirectory
    received: ReceivedCommands
    presence: Presence
    reservation_ids: ReservationIds


def command_ports(c: ContainerDep) -> CommandPorts:
    assert c.received_commands is not None
    prefix = c.settings.topic_prefix
    return CommandPorts(
        sessions=c.sessions,
        charge_points=c.charge_points,
        received=c.received_commands,
        presence=RedisPresence(c.redis, prefix),
        reservation_ids=RedisReservationIds(c.redis, prefix),
    )


CommandPortsDep = Annotated[CommandPorts, Depends(command_ports)]


def _command(command: Annotated[str, Path(max_length=40)]) -> CommandType:
    # A 404 for the ops API (no such command); a partner's POST reached the
    # OCPI layer and gets 2001 at HTTP 200 (api/errors.ocpi_http_status).
    try:
        return CommandType(command)
    except ValueError:
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS,
            f"unknown command {command!r}; one of {', '.join(CommandType)}",
            404,
        ) from None


CommandDep = Annotated[CommandType, Depends(_command)]


def _ocpi_command(
    command: Annotated[str, Path(max_length=40)], version: VersionPath
) -> CommandType | str:
    """The command of a partner's POST. From OCPI 2.3.0 on, CommandType is
    an OpenEnum (mod_commands): a value we do not run is returned as the
    string, for ``receive_command`` to answer NOT_SUPPORTED; before, 2001."""
    if version_key(version) >= (2, 3) and command and not is_listed_command(command):
        return command
    return _command(command)


OcpiCommandDep = Annotated[CommandType | str, Depends(_ocpi_command)]


def emsp_caller(caller: RoutedCallerDep) -> Caller:
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
        )
    parties = frozenset(
        Party(country_code=fold(r.country_code), party_id=fold(r.party_id)) for r in partner.roles
    )
    return Caller(partner_id=partner.partner_id, party=caller.party, parties=parties)


async def _registered_at(
    ports: CommandPorts, write_path: WritePath, country_code: str, party_id: str, location_id: str
) -> list[ChargePointEntry]:
    """The charge points at a location: which ones from the registry view (a
    list), each one's registration as the write path holds it (a charge
    point moved or deregistered a moment ago is judged as it is now)."""
    docs = await ports.charge_points.at_location(country_code, party_id, location_id)
    ids = sorted({str(d["charge_point_id"]) for d in docs})
    found = await asyncio.gather(*(_registration(write_path, i) for i in ids))
    return [entry for entry in found if entry is not None]


async def _registration(write_path: WritePath, charge_point_id: str) -> ChargePointEntry | None:
    state = await write_path.state(charge_points.SLICE, charge_point_id)
    return ChargePointEntry.model_validate(state.model_dump()) if state is not None else None


async def _reservation(
    ports: CommandPorts, write_path: WritePath, key: str
) -> CommandTarget | None:
    """The target of the latest accepted RESERVE_NOW of ``key``."""
    command_id = await ports.reservation_ids.reserved_by(key)
    if command_id is not None:
        state = await write_path.state(SLICE, command_id)
        if (held := reservation_held(state)) is not None:
            return held
    # Not in the index (it lives in Redis and may have been lost with it):
    # the view holds every reservation it has projected.
    return await ports.received.reservation(key)


async def session_facts(
    ports: CommandPorts, write_path: WritePath, us: Party, session_id: str
) -> tuple[Json | None, list[ChargePointEntry]]:
    """One of our sessions (the sessions view: the processors' facts) and
    the charge points at its location, for a request about a session
    (STOP_SESSION, a charging profile)."""
    key = session_key(us.country_code, us.party_id, session_id)
    session, _ = await ports.sessions.read(key)
    if session is None:
        return None, []
    entries = await _registered_at(
        ports, write_path, session["country_code"], session["party_id"], session["location_id"]
    )
    return session, entries


@dataclass(frozen=True)
class Asked:
    """An eMSP's request about one of our chargers (a command, a charging
    profile): who asks, and what it is judged and recorded with."""

    caller: Caller
    c: Container
    ports: CommandPorts
    write_path: WritePath
    now: datetime
    correlation_id: str

    @property
    def us(self) -> Party:
        s = self.c.settings
        return Party(country_code=fold(s.party_country_code), party_id=fold(s.party_id))


def _asked(
    caller: Annotated[Caller, Depends(emsp_caller)],
    c: ContainerDep,
    ports: CommandPortsDep,
    write_path: WritePathDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
) -> Asked:
    return Asked(caller, c, ports, write_path, now, correlation_id)


AskedDep = Annotated[Asked, Depends(_asked)]


async def callable_response_url(url: str, c: ContainerDep) -> None:
    """The result goes to ``response_url`` later: a URL we would not call
    is refused now (2001), before anything is recorded (docs/adr/0039)."""
    try:
        await check_url(url, allow_private=c.settings.url_policy_allow_private, what="response_url")
    except UrlRefusedError as exc:
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, str(exc)) from exc


async def session_request_facts(
    ports: CommandPorts,
    write_path: WritePath,
    *,
    us: Party,
    caller: Caller,
    request_id: str,
    correlation_id: str,
    session_id: str,
) -> Facts:
    """The facts of a request about one of our sessions (a charging
    profile), as a STOP_SESSION gathers them."""
    session, entries = await session_facts(ports, write_path, us, session_id)
    return Facts(
        us=us,
        caller=caller,
        command_id=request_id,
        correlation_id=correlation_id,
        charge_points=tuple(entries),
        present=await ports.presence.present(cp.charge_point_id for cp in entries),
        session=session,
    )


async def gather_facts(
    request: CommandRequest,
    ports: CommandPorts,
    write_path: WritePath,
    *,
    us: Party,
    caller: Caller,
    command_id: str,
    correlation_id: str,
) -> Facts:
    """Look up everything ``decide`` needs for this request."""
    location = None
    entries: list[ChargePointEntry] = []
    session = None
    reservation = None
    ocpp_reservation_id = None
    if isinstance(request, StartSession | ReserveNow | UnlockConnector):
        key = location_key(us.country_code, us.party_id, request.location_id)
        held = await write_path.state(locations.SLICE, key)
        location = locations.asserted(held)
        if location is not None:
            entries = await _registered_at(
                ports, write_path, us.country_code, us.party_id, location["id"]
            )
    if isinstance(request, ReserveNow):
        key = reservation_key(caller.party, request.reservation_id)
        ocpp_reservation_id = await ports.reservation_ids.allocate(key)
    if isinstance(request, StopSession):
        session, entries = await session_facts(ports, write_path, us, request.session_id)
    if isinstance(request, CancelReservation):
        key = reservation_key(caller.party, request.reservation_id)
        reservation = await _reservation(ports, write_path, key)
    ids = [cp.charge_point_id for cp in entries]
    if reservation is not None:
        ids.append(reservation.charge_point_id)
    return Facts(
        us=us,
        caller=caller,
        command_id=command_id,
        correlation_id=correlation_id,
        location=location,
        charge_points=tuple(entries),
        present=await ports.presence.present(ids),
        session=session,
        reservation=reservation,
        ocpp_reservation_id=ocpp_reservation_id,
    )


def one_of(*models: type[Any]) -> dict[str, Any]:
    """``openapi_extra`` of a body that is one of ``models`` (which one: the
    path says)."""
    schemas = [body_of(m)["requestBody"]["content"]["application/json"]["schema"] for m in models]
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"oneOf": schemas}}},
        }
    }


@receiver.post(
    "/{command}",
    openapi_extra=one_of(StartSession, StopSession, ReserveNow, CancelReservation, UnlockConnector),
)
async def receive_command(
    version: VersionPath,
    http: Request,
    command: OcpiCommandDep,
    asked: AskedDep,
    body: JsonBodyOrNone,
) -> dict[str, Any]:
    wire = wire_of(http)
    if not isinstance(command, CommandType):
        # An OpenEnum value of 2.3.0 we do not run: its body has no shape we
        # know, nothing is recorded and no result will follow (timeout 0).
        text = f"command {command!r} is not supported; we run {', '.join(CommandType)}"
        unlisted = CommandResponse(
            result=CommandResponseType.NOT_SUPPORTED,
            timeout=0,
            message=[DisplayText(language="en", text=text[:512])],
        )
        return envelope(wire.object_out(Kind.COMMAND_RESPONSE, to_json(unlisted), patch=False))
    caller_party = (asked.caller.party.country_code, asked.caller.party.party_id)
    # A bad body raises pydantic's ValidationError: 2001, nothing written.
    ours = wire.object_in(
        Kind(command.value.lower()), body, owner=caller_party, patch=False, now=asked.now
    )
    request: CommandRequest = REQUEST_MODEL[command].model_validate(ours)  # type: ignore[assignment]
    s = asked.c.settings
    ports, write_path, caller, now = asked.ports, asked.write_path, asked.caller, asked.now
    await callable_response_url(str(request.response_url), asked.c)
    command_id = new_command_id()
    facts = await gather_facts(
        request,
        ports,
        write_path,
        us=asked.us,
        caller=caller,
        command_id=command_id,
        correlation_id=asked.correlation_id,
    )
    received = ReceiveCommand(command, request, facts, s.command_timeout_s)
    response = await write_path.write(SLICE, command_id, lambda state: decide(state, received, now))
    if isinstance(request, ReserveNow) and response.result is CommandResponseType.ACCEPTED:
        key = reservation_key(caller.party, request.reservation_id)
        try:
            await ports.reservation_ids.reserved(key, command_id)
        except Exception:
            # Recorded and accepted all the same: a cancel then finds the
            # reservation once the view has it.
            log.warning("reservation_index_not_updated", command_id=command_id, exc_info=True)
    return envelope(wire.object_out(Kind.COMMAND_RESPONSE, to_json(response), patch=False))
