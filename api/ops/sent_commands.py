"""Ops API of the sent commands: those we send as eMSP to a partner CPO's
Receiver interface (mod_commands).

* ``POST /ops/commands/sent/{partner_id}/{command}``: the body is the OCPI
  request object of ``command`` without ``response_url`` (we set it).
  Checked as the CPO would check it (2001 and nothing sent when wrong); a
  token must be one of ours. The partner must be registered with a
  Commands RECEIVER endpoint (else 404/409 with 2001). We POST it with our
  token for that partner, record ``CommandSent`` with the CPO's
  CommandResponse through the one write path (docs/adr/0022) and answer
  ``{command_id, response_url, response}``. A CPO that cannot be used (no answer, not OCPI, an OCPI
  error) is HTTP 502 with 3001, and nothing is recorded.
* ``GET /ops/commands/sent/{command_id}``: the command and its ``status``
  (``producers.sent_commands.status_of``, judged at read time), from the
  ``sent_commands`` view once it holds the command's last recorded event.
* ``GET /ops/commands/sent?partner_id=&limit=&after=``: newest first; when
  more follow, ``X-Next-After`` is the ``after`` of the next page.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ValidationError

from api.consistency import read_written
from api.deps import (
    CommandChannelDep,
    CommandIdsDep,
    ContainerDep,
    CorrelationIdDep,
    NowDep,
    SentCommandViewDep,
)
from api.errors import OcpiError, envelope
from api.ocpi.sent_commands import CommandIdPath
from api.ops.access import OPS_ACCESS
from api.ops.evses import NEXT_AFTER
from api.writes import WritePathDep, checked
from ocpi_hub.bootstrap import Container
from producers.sent_commands import (
    SLICE,
    CommandChannel,
    CommandIds,
    CommandTarget,
    CpoAnswer,
    SendFailedError,
    SentCommandState,
    build_request,
    command_target,
    decide_sent,
    outbound_headers,
    plan_sent,
    read_answer,
    response_url,
    status_of,
)
from producers.write_path import (
    Decision,
    NotRecordedError,
    OutcomeUnknownError,
    RefusedError,
    Slice,
    UnavailableError,
    WritePath,
)
from schemas.events import Party
from schemas.ocpi.adapters import WIRES
from schemas.ocpi.commands import CommandResponse, CommandType
from schemas.ocpi.common import fold
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.types import to_json
from schemas.ocpi.wire import CORE_VERSION, Core, Kind, WireVersion, version_key

log = structlog.get_logger(__name__)
CORE = Core()

M = TypeVar("M", bound=BaseModel)

router = APIRouter(
    prefix="/ops/commands/sent", tags=["ops: sent commands (as eMSP)"], dependencies=[OPS_ACCESS]
)

_BODY = {
    "description": "The OCPI request object of `command` (StartSession, StopSession, "
    "ReserveNow, CancelReservation, UnlockConnector) without `response_url`: the "
    "platform sets it.",
}


@dataclass(frozen=True)
class Sending:
    """What a request to a partner CPO's Receiver is sent and recorded with
    (a command, a charging profile)."""

    c: Container
    ids: CommandIds
    channel: CommandChannel
    write_path: WritePath
    now: datetime
    correlation_id: str


def _sending(
    c: ContainerDep,
    ids: CommandIdsDep,
    channel: CommandChannelDep,
    write_path: WritePathDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
) -> Sending:
    return Sending(c, ids, channel, write_path, now, correlation_id)


SendingDep = Annotated[Sending, Depends(_sending)]


async def send_to_receiver(
    c: Container,
    channel: CommandChannel,
    target: CommandTarget,
    method: str,
    url: str,
    body: dict[str, Any] | None,
    correlation_id: str,
    bound: Any,
    edge: WireVersion = CORE,
) -> CpoAnswer:
    """One request to a partner CPO's Receiver (Commands, ChargingProfiles)
    with our token for it and fresh ids; only the ops request's correlation
    id goes along. ``edge``: the partner's OCPI version (2.1.1: the token
    as is, no routing headers)."""
    try:
        token = c.vault.decrypt(target.sealed_token)
    except Exception as exc:
        bound.error("partner_token_unreadable", error=type(exc).__name__)
        raise OcpiError(
            OcpiStatus.SERVER_ERROR, "our token for this partner cannot be read", 500
        ) from exc
    s = c.settings
    us = Party(country_code=fold(s.party_country_code), party_id=fold(s.party_id))
    headers = outbound_headers(
        us=us, to=target.to, request_id=str(uuid.uuid4()), correlation_id=correlation_id
    )
    if not edge.routing_headers:
        headers = {k: v for k, v in headers.items() if not k.startswith("OCPI-")}
    return await channel.send(
        method, url, token=token, headers=headers, body=body, raw_token=edge.raw_token
    )


def in_our_model(answer: CpoAnswer, edge: WireVersion) -> CpoAnswer:
    """The partner's CommandResponse in our model (2.1.1: ``{result}`` only);
    an answer its version refuses is left for ``read_or_fail`` to refuse."""
    if edge.version == CORE_VERSION or not isinstance(answer.data, dict):
        return answer
    try:
        data = edge.object_in(
            Kind.COMMAND_RESPONSE, answer.data, owner=None, patch=False, now=datetime.now(UTC)
        )
    except ValidationError:
        return answer
    return dataclasses.replace(answer, data=data)


def read_or_fail(answer: CpoAnswer, model: type[M], bound: Any) -> M:
    """The partner's immediate answer, or HTTP 502 / 3001 (nothing recorded)."""
    try:
        return read_answer(answer, model)
    except SendFailedError as exc:
        bound.warning(
            "partner_request_failed",
            http_status=answer.http_status,
            ocpi_status=answer.ocpi_status,
            error=answer.error,
        )
        raise OcpiError(OcpiStatus.UNABLE_TO_USE_CLIENT_API, str(exc), 502) from exc


async def record_sent(
    write_path: WritePath,
    slice_: Slice[Any],
    key: str,
    decide: Callable[[Any], Decision[Any]],
    bound: Any,
    what: str,
) -> None:
    """Record a request the partner has: when that fails, say so with its id
    (the write path's own answer, "retry", would send it twice)."""
    try:
        await write_path.write(slice_, key, decide)
    except (NotRecordedError, OutcomeUnknownError, UnavailableError) as exc:
        bound.error("partner_request_not_recorded")
        raise OcpiError(
            OcpiStatus.SERVER_ERROR,
            f"{what} but could not be recorded; its result will still be taken at its response_url",
            500,
        ) from exc


@router.post("/{partner_id}/{command}")
async def send_command(
    partner_id: Annotated[str, Path(min_length=1, max_length=100)],
    command: CommandType,
    sending: SendingDep,
    http: Request,
    body: Annotated[Any, Body(**_BODY)] = None,
) -> dict[str, Any]:
    c, ids, channel = sending.c, sending.ids, sending.channel
    write_path, now, correlation_id = sending.write_path, sending.now, sending.correlation_id
    s = c.settings
    checked(http, body)
    us = Party(country_code=fold(s.party_country_code), party_id=fold(s.party_id))
    command_id = ids.new(partner_id, command)
    partner = await c.partners.get(partner_id)
    edge = WIRES.get(partner.version or CORE_VERSION, CORE) if partner else CORE
    if command is CommandType.CANCEL_RESERVATION and version_key(edge.version) < (2, 2):
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS,
            f"partner {partner_id!r} speaks OCPI {edge.version}, which has no CANCEL_RESERVATION",
            409,
        )
    url = response_url(s.base_url, command, command_id, edge.version)
    request = build_request(command, body, url, us)
    target = command_target(partner_id, partner)
    bound = log.bind(partner_id=partner_id, command_id=command_id, command=command.value)
    sent_body = edge.object_out(Kind(command.value.lower()), request, patch=False)
    answer = await send_to_receiver(
        c,
        channel,
        target,
        "POST",
        target.command_url(command),
        sent_body,
        correlation_id,
        bound,
        edge,
    )
    response = read_or_fail(in_our_model(answer, edge), CommandResponse, bound)
    event = plan_sent(
        command_id=command_id,
        command=command,
        target=target,
        request=request,
        response=response,
        us=us,
        now=now,
        correlation_id=correlation_id,
    )
    await record_sent(
        write_path,
        SLICE,
        command_id,
        lambda state: decide_sent(state, event),
        bound,
        f"command {command_id} was sent (the partner answered {response.result.value})",
    )
    bound.info("command_sent", response=response.result.value, timeout_s=response.timeout)
    return envelope({"command_id": command_id, "response_url": url, "response": to_json(response)})


def _shown(state: SentCommandState, now: datetime) -> dict[str, Any]:
    return {"status": status_of(state, now), **state.model_dump(mode="json", exclude_none=True)}


@router.get("/{command_id}")
async def get_sent_command(
    command_id: CommandIdPath,
    c: ContainerDep,
    view: SentCommandViewDep,
    write_path: WritePathDep,
    now: NowDep,
) -> dict[str, Any]:
    wait_s = c.settings.read_own_writes_timeout_s
    sent = await read_written(view, write_path, SLICE, command_id, timeout_s=wait_s, what="command")
    if sent is None:
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, f"we sent no command {command_id!r}", 404)
    return envelope(_shown(sent, now))


@router.get("")
async def list_sent_commands(
    view: SentCommandViewDep,
    response: Response,
    now: NowDep,
    partner_id: Annotated[str | None, Query(max_length=100)] = None,
    after: Annotated[str | None, Query(max_length=200, description="X-Next-After")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    page = await view.page(partner_id=partner_id, after=after, limit=limit)
    if page.next_after is not None:
        response.headers[NEXT_AFTER] = page.next_after
    return envelope([_shown(state, now) for state in page.items])
