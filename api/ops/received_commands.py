"""Ops API of the received commands: those partner eMSPs sent us as CPO.

* ``GET /ops/commands/received/{command_id}``: the command as the
  ``received_commands`` view holds it: request, target, our response,
  deadline, the charger's answer and the one result (docs/adr/0017). The view is read
  once it holds our own record of the command (docs/adr/0022); what the
  gateway and the processors add later shows when the view has it.
* ``POST /ops/commands/given/{command}``: our own operator gives one of our
  chargers a command (the dashboard's chargers page, or a script). The body
  is the OCPI request of that command without ``response_url``; for
  START_SESSION and RESERVE_NOW, ``token_uid`` (and ``token_type``, RFID
  by default) may name one of our tokens instead of a whole ``token``. It is
  judged and recorded exactly as a partner's command
  (api/ocpi/received_commands.py), the caller being ``ops:<actor>``
  (``producers.received_commands.operator_caller``); the answer is the
  command id and our CommandResponse, and the charger's result is read
  from ``GET /ops/commands/received/{command_id}``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.consistency import read_written
from api.deps import ContainerDep, CorrelationIdDep, NowDep
from api.errors import OcpiError, envelope
from api.ocpi.received_commands import CommandDep, CommandPortsDep, gather_facts
from api.ops.access import OPS_ACCESS, PrincipalDep
from api.writes import JsonBodyOrNone, WritePathDep
from producers import tokens
from producers.received_commands import (
    SLICE,
    ReceiveCommand,
    decide,
    new_command_id,
    operator_caller,
    reservation_key,
)
from producers.write_path import WritePath
from schemas.events import Party
from schemas.events.tokens import token_key
from schemas.ocpi.commands import REQUEST_MODEL, CommandRequest, CommandResponseType, ReserveNow
from schemas.ocpi.common import fold
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.types import to_json

router = APIRouter(
    prefix="/ops/commands/received",
    tags=["ops: received commands (as CPO)"],
    dependencies=[OPS_ACCESS],
)
given = APIRouter(
    prefix="/ops/commands/given",
    tags=["ops: received commands (as CPO)"],
    dependencies=[OPS_ACCESS],
)


@router.get("/{command_id}")
async def get_received_command(
    command_id: Annotated[str, Path(min_length=1, max_length=64)],
    c: ContainerDep,
    write_path: WritePathDep,
) -> dict[str, Any]:
    view = c.received_commands
    assert view is not None
    wait_s = c.settings.read_own_writes_timeout_s
    doc = await read_written(view, write_path, SLICE, command_id, timeout_s=wait_s, what="command")
    if doc is None:
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, f"no received command {command_id!r}", 404)
    return envelope(doc)


_WITH_TOKEN = ("START_SESSION", "RESERVE_NOW")


async def _our_token(write_path: WritePath, us: Party, uid: Any, kind: Any) -> dict[str, Any]:
    if not isinstance(uid, str) or not uid or len(uid) > 36:
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, "token_uid must be 1 to 36 characters")
    kind = kind if isinstance(kind, str) and kind else "RFID"
    state = await write_path.state(
        tokens.SLICE, token_key(us.country_code, us.party_id, uid, kind[:20])
    )
    if state is None or state.token is None:
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS, f"we issued no {kind} token with uid {uid!r}", 404
        )
    return dict(state.token)


@given.post("/{command}")
async def give_command(
    command: CommandDep,
    principal: PrincipalDep,
    c: ContainerDep,
    ports: CommandPortsDep,
    write_path: WritePathDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    body: JsonBodyOrNone,
) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, "the body must be a JSON object")
    s = c.settings
    us = Party(country_code=fold(s.party_country_code), party_id=fold(s.party_id))
    command_id = new_command_id()
    fields = dict(body)
    if command.value in _WITH_TOKEN and "token" not in fields and "token_uid" in fields:
        fields["token"] = await _our_token(
            write_path, us, fields.pop("token_uid"), fields.pop("token_type", None)
        )
    # Where the result can be read: the request model needs an http(s) URL,
    # and nothing is POSTed to it (processors/command_callbacks.py).
    fields["response_url"] = f"{s.base_url}/ops/commands/received/{command_id}"
    # A bad body raises pydantic's ValidationError: 2001, nothing written.
    parsed: CommandRequest = REQUEST_MODEL[command].model_validate(fields)  # type: ignore[assignment]
    caller = operator_caller(us, str(principal.actor))
    facts = await gather_facts(
        parsed,
        ports,
        write_path,
        us=us,
        caller=caller,
        command_id=command_id,
        correlation_id=correlation_id,
    )
    received = ReceiveCommand(command, parsed, facts, s.command_timeout_s)
    response = await write_path.write(SLICE, command_id, lambda state: decide(state, received, now))
    if isinstance(parsed, ReserveNow) and response.result is CommandResponseType.ACCEPTED:
        await ports.reservation_ids.reserved(
            reservation_key(caller.party, parsed.reservation_id), command_id
        )
    return envelope({"command_id": command_id, "response": to_json(response)})
