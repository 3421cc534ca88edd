"""Sent commands: the Commands module's Sender interface (mod_commands,
"Sender Interface"; we as eMSP):
``POST /ocpi/emsp/2.2.1/commands/{command}/{command_id}`` is the
``response_url`` of every command we send, where the CPO POSTs the
CommandResult.

Only the partner the command was sent to may post its result: the command id
carries a MAC binding it to that partner and command (docs/adr/0019), so any
other caller, another command type or an id we never made is told the
command is unknown (OCPI 2003 at HTTP 200, docs/adr/0039 §2), and nothing
is written. No state
is needed for that, so a result that overtakes our record of the send (a
fast CPO) is served like any other.

The result is recorded (``CommandResultReceived``) through the one write
path (docs/adr/0022), judged on the command's state as of its latest event
in the log, and answered 1000 once Kafka acknowledged it. A repeated result
answers 1000 and records nothing: the first one stands.
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Path

from api.deps import CommandIdsDep, CorrelationIdDep, NowDep
from api.errors import OcpiError, envelope
from api.routing import RoutedCallerDep
from api.writes import JsonBodyOrNone, WritePathDep, body_of
from producers.sent_commands import SLICE, decide_result, plan_result
from schemas.ocpi.commands import CommandResult, CommandType
from schemas.ocpi.status_codes import OcpiStatus

log = structlog.get_logger(__name__)

sender = APIRouter(prefix="/ocpi/emsp/2.2.1/commands", tags=["ocpi: commands (sender)"])

CommandIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[\x21-\x7E]+$")]


@sender.post("/{command}/{command_id}", openapi_extra=body_of(CommandResult))
async def receive_command_result(
    command: CommandType,
    command_id: CommandIdPath,
    caller: RoutedCallerDep,
    ids: CommandIdsDep,
    write_path: WritePathDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    body: JsonBodyOrNone,
) -> dict[str, Any]:
    partner_id = caller.partner.partner_id
    bound = log.bind(partner_id=partner_id, command_id=command_id, command=command.value)
    if not ids.genuine(command_id, partner_id, command):
        bound.warning("command_result_unknown_command")
        raise OcpiError(
            OcpiStatus.UNKNOWN_LOCATION,
            f"no {command.value} command {command_id!r} was sent to this partner",
        )
    result = CommandResult.model_validate(body)
    event = plan_result(
        command_id=command_id,
        partner_id=partner_id,
        sender=caller.party,
        result=result,
        now=now,
        correlation_id=correlation_id,
    )
    first = await write_path.write(SLICE, command_id, lambda state: decide_result(state, event))
    if first is not None:
        bound.info("command_result_repeated", first=first.value, repeated=result.result.value)
    else:
        bound.info("command_result_received", result=result.result.value)
    return envelope()
