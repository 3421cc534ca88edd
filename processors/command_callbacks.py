"""POST the result of each received command (we as CPO decided it) to the
eMSP's ``response_url`` (mod_commands: the CPO sends CommandResult to the
URL of the request; docs/adr/0017). Results of the commands we sent are
received, not sent, here: api/ocpi/sent_commands.py.

The delivery rules (retry, give up, at most once per command) are those of
every decided result: processors/result_callbacks.py. This is the commands'
kind of it.
"""

from __future__ import annotations

from typing import Any

from processors.result_callbacks import CallbackKind
from producers.received_commands import given_by_operator
from schemas.events import CommandResultDecided
from schemas.ocpi.commands import CommandResult
from schemas.ocpi.types import to_json
from schemas.ocpi.wire import Kind
from schemas.topics import COMMANDS


def callback_body(event: CommandResultDecided) -> dict[str, Any]:
    p = event.payload
    return to_json(CommandResult(result=p.result, message=p.message))


COMMAND_CALLBACKS = CallbackKind(
    name="command",
    topic=COMMANDS,
    event_type=CommandResultDecided,
    group="ocpi-hub-command-callbacks",
    marker="commands:callback",
    key=lambda event: event.payload.command_id,
    partner_id=lambda event: event.payload.partner_id,
    url=lambda event, partner: event.payload.response_url,
    body=callback_body,
    # Our operator's own command: no eMSP to tell; its result is read from
    # the ops API and the dashboard.
    internal=lambda event: given_by_operator(event.payload.partner_id),
    fields=lambda event: {"result": event.payload.result.value},
    # A 2.1.1 eMSP takes a CommandResponse {result} at its response_url.
    wire_kind=Kind.COMMAND_RESULT,
)
