"""The one result of each received command: one a partner eMSP sent us and
we accepted as CPO (producers/received_commands.py, docs/adr/0017).

Reads ``ocpi.commands.v1`` (keyed by command id, so every event of one
command is in one partition, in order). A table keyed by command id holds the
commands still waiting for their result (``Pending``). Whichever comes first
in the partition decides:

- the charger's answer (``ChargerCommandAnswered``, recorded by the OCPP
  gateway) -> ``CommandResultDecided`` with the charger's result;
- the deadline (``CommandDeadlinePassed``) -> ``CommandResultDecided`` TIMEOUT.

The command then leaves the table, so anything later about it decides
nothing. The deadline is stated by a timer that scans the table: a table may
only be changed inside the agent's stream, so the timer writes an event that
the agent reads like any other. The deadline itself is in ``CommandAccepted``
and the table has a changelog, so a command accepted while this process was
down still times out once it is back.

``evolve`` and ``decide`` are pure; the Faust shell is at the bottom. Event
ids are derived (the result's from the accepted event, the deadline's from
the command), so a re-run emits the same ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from processors import deadlines
from processors.deadlines import WaitingRule
from schemas.events import (
    ChargerCommandAnswered,
    CommandAccepted,
    CommandDeadlinePassed,
    CommandResultDecided,
    derived_event_id,
)
from schemas.events.commands import CommandDeadlinePassedPayload, CommandResultDecidedPayload
from schemas.events.envelope import Party
from schemas.ocpi.commands import CommandResultType, CommandType
from schemas.ocpi.types import DisplayText

# A fixed namespace for ids derived from a command id (not an event id).
_COMMAND_NS = uuid.UUID("0b7e4c1e-31a4-4a8e-9f3c-5a2f0d3c8e17")


class Pending(BaseModel):
    """An accepted command waiting for its result."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: str
    command: CommandType
    partner_id: str
    response_url: str
    deadline: AwareDatetime
    accepted_event_id: uuid.UUID
    source: Party
    correlation_id: str


Relevant = CommandAccepted | ChargerCommandAnswered | CommandDeadlinePassed


def evolve(state: Pending | None, event: Relevant) -> Pending | None:
    """The table entry after one event: an accepted command is pending until
    its answer or its deadline; then it is gone."""
    if isinstance(event, CommandAccepted):
        if state is not None:
            return state  # the same acceptance read again
        p = event.payload
        return Pending(
            command_id=p.command_id,
            command=p.command,
            partner_id=p.partner_id,
            response_url=p.response_url,
            deadline=p.deadline,
            accepted_event_id=event.event_id,
            source=event.source,
            correlation_id=event.correlation_id,
        )
    return None


def decide(state: Pending | None, event: Relevant, now: datetime) -> CommandResultDecided | None:
    """The result this event decides, if any: only for a pending command,
    only by its answer or its deadline."""
    if state is None or isinstance(event, CommandAccepted):
        return None
    message: list[DisplayText] | None = None
    if isinstance(event, ChargerCommandAnswered):
        result = event.payload.result
        decided_by = "charger"
        if event.payload.message:
            message = [DisplayText(language="en", text=event.payload.message)]
    else:
        result = CommandResultType.TIMEOUT
        decided_by = "deadline"
        message = [DisplayText(language="en", text="the charger did not answer in time")]
    return CommandResultDecided(
        event_id=derived_event_id(state.accepted_event_id, "result"),
        aggregate_key=state.command_id,
        occurred_at=event.payload.at,
        recorded_at=now,
        source=state.source,
        correlation_id=state.correlation_id,
        causation_id=event.event_id,
        payload=CommandResultDecidedPayload(
            command_id=state.command_id,
            command=state.command,
            partner_id=state.partner_id,
            response_url=state.response_url,
            result=result,
            message=message,
            decided_by=decided_by,
            at=now,
        ),
    )


def overdue(pending: list[Pending], now: datetime) -> list[CommandDeadlinePassed]:
    """The deadline events for the pending commands whose deadline passed.
    The id is derived from the command, so stating it again is harmless."""
    return [
        CommandDeadlinePassed(
            event_id=uuid.uuid5(_COMMAND_NS, f"{p.command_id}:deadline"),
            aggregate_key=p.command_id,
            occurred_at=p.deadline,
            recorded_at=now,
            source=p.source,
            correlation_id=p.correlation_id,
            causation_id=p.accepted_event_id,
            payload=CommandDeadlinePassedPayload(
                command_id=p.command_id, deadline=p.deadline, at=now
            ),
        )
        for p in pending
        if p.deadline <= now
    ]


def pending_from_table(value: Any) -> Pending | None:
    return None if value is None else Pending.model_validate(value)


# --- Faust shell --------------------------------------------------------------

Emit = Callable[[CommandResultDecided | CommandDeadlinePassed], Awaitable[None]]

RULE: WaitingRule[Pending] = WaitingRule(
    name="command-results",
    relevant=(CommandAccepted, ChargerCommandAnswered, CommandDeadlinePassed),
    key=lambda event: event.payload.command_id,
    load=pending_from_table,
    evolve=evolve,
    decide=decide,
    due=lambda pending: pending.deadline,
    state_key=lambda pending: pending.command_id,
    overdue=lambda pending, now: list(overdue(pending, now)),
)


def register(app: Any, source_topic: Any, emit: Emit, partitions: int, scan_s: float) -> Any:
    """Attach the agent, its table (``command-results``, kept across restarts
    by its changelog topic) and the deadline timer to a Faust app
    (``processors/deadlines.py``)."""
    agent, _ = deadlines.register(app, source_topic, emit, partitions, scan_s, RULE)
    return agent
