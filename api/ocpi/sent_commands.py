"""Sent commands: the Commands module's Sender interface (mod_commands,
"Sender Interface"; we as eMSP):
``POST /ocpi/emsp/{version}/commands/{command}/{command_id}`` is the
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

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Path, Request

from api.auth import wire_of
from api.deps import CommandIdsDep, CorrelationIdDep, NowDep
from api.errors import OcpiError, envelope
from api.ocpi.paths import VersionPath
from api.routing import RoutedCaller, RoutedCallerDep
from api.writes import JsonBodyOrNone, WritePathDep, body_of
from producers.sent_commands import SLICE, CommandIds, decide_result, plan_result
from producers.write_path import WritePath
from schemas.ocpi.commands import CommandResult, CommandType
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.wire import Kind

log = structlog.get_logger(__name__)

sender = APIRouter(prefix="/ocpi/emsp/{version}/commands", tags=["ocpi: commands (sender)"])

CommandIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[\x21-\x7E]+$")]


@dataclass(frozen=True)
class ResultCall:
    """A partner CPO POSTing to the response_url of a request we sent (a
    command, a charging profile request)."""

    caller: RoutedCaller
    ids: CommandIds
    write_path: WritePath
    now: datetime
    correlation_id: str

    @property
    def partner_id(self) -> str:
        return self.caller.partner.partner_id

    def require_genuine(self, request_id: str, kind: CommandType | str, what: str) -> None:
        """2003, nothing written, unless we made ``request_id`` for a
        request of ``kind`` to this very partner (docs/adr/0019)."""
        if not self.ids.genuine(request_id, self.partner_id, kind):
            log.warning("result_for_unknown_request", partner_id=self.partner_id, kind=str(kind))
            raise OcpiError(
                OcpiStatus.UNKNOWN_LOCATION, f"no {what} {request_id!r} was sent to this partner"
            )


def _result_call(
    caller: RoutedCallerDep,
    ids: CommandIdsDep,
    write_path: WritePathDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
) -> ResultCall:
    return ResultCall(caller, ids, write_path, now, correlation_id)


ResultCallDep = Annotated[ResultCall, Depends(_result_call)]


@sender.post("/{command}/{command_id}", openapi_extra=body_of(CommandResult))
async def receive_command_result(
    version: VersionPath,
    http: Request,
    command: CommandType,
    command_id: CommandIdPath,
    call: ResultCallDep,
    body: JsonBodyOrNone,
) -> dict[str, Any]:
    partner_id = call.partner_id
    bound = log.bind(partner_id=partner_id, command_id=command_id, command=command.value)
    call.require_genuine(command_id, command, f"{command.value} command")
    # 2.1.1: a CommandResponse {result}, read as our CommandResult.
    ours = wire_of(http).object_in(Kind.COMMAND_RESULT, body, owner=None, patch=False, now=call.now)
    result = CommandResult.model_validate(ours)
    event = plan_result(
        command_id=command_id,
        partner_id=partner_id,
        sender=call.caller.party,
        result=result,
        now=call.now,
        correlation_id=call.correlation_id,
    )
    first = await call.write_path.write(
        SLICE, command_id, lambda state: decide_result(state, event)
    )
    if first is not None:
        bound.info("command_result_repeated", first=first.value, repeated=result.result.value)
    else:
        bound.info("command_result_received", result=result.result.value)
    return envelope()
