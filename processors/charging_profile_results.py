"""The one result of each charging profile request we accepted as CPO
(producers/charging_profiles.py, docs/adr/0043): the charger's answer or
the deadline, whichever comes first in the request's partition of
``ocpi.charging-profiles.v1`` (the rule of docs/adr/0017, on the shared
shell of processors/deadlines.py). The result is POSTed to the Sender by
the callback sender (processors/result_callbacks.py).

``evolve``, ``decide`` and ``overdue`` are pure; ids are derived, so a
re-run emits the same ids.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from processors import deadlines
from processors.deadlines import WaitingRule
from schemas.events import (
    ChargerProfileAnswered,
    ChargingProfileDeadlinePassed,
    ChargingProfileRequestAccepted,
    ChargingProfileResultDecided,
    derived_event_id,
)
from schemas.events.charging_profiles import (
    ChargingProfileDeadlinePassedPayload,
    ChargingProfileResultDecidedPayload,
)
from schemas.events.envelope import Party
from schemas.ocpi.charging_profiles import ChargingProfileResultType, ProfileAction

# Ids derived from a request id (not an event id).
_REQUEST_NS = uuid.UUID("5d0f3a52-8f7e-4d1b-b4a8-2f9c61e0d7a4")


class PendingProfile(BaseModel):
    """An accepted request waiting for its result."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str
    action: ProfileAction
    session_id: str
    partner_id: str
    response_url: str
    deadline: AwareDatetime
    accepted_event_id: uuid.UUID
    source: Party
    correlation_id: str


Relevant = ChargingProfileRequestAccepted | ChargerProfileAnswered | ChargingProfileDeadlinePassed


def evolve(state: PendingProfile | None, event: Relevant) -> PendingProfile | None:
    """Pending from acceptance until its answer or its deadline."""
    if not isinstance(event, ChargingProfileRequestAccepted):
        return None
    if state is not None:
        return state  # the same acceptance read again
    p = event.payload
    return PendingProfile(
        request_id=p.request_id,
        action=p.action,
        session_id=p.session_id,
        partner_id=p.partner_id,
        response_url=p.response_url,
        deadline=p.deadline,
        accepted_event_id=event.event_id,
        source=event.source,
        correlation_id=event.correlation_id,
    )


def decide(
    state: PendingProfile | None, event: Relevant, now: datetime
) -> ChargingProfileResultDecided | None:
    """The result this event decides: only for a pending request, only by
    its answer or its deadline. A deadline is UNKNOWN: OCPI's result words
    have no TIMEOUT, and nothing is known of what the charger did."""
    if state is None or isinstance(event, ChargingProfileRequestAccepted):
        return None
    if isinstance(event, ChargerProfileAnswered):
        result = event.payload.result
        profile = event.payload.active_profile
        by = "charger"
    else:
        result, profile, by = ChargingProfileResultType.UNKNOWN, None, "deadline"
    return ChargingProfileResultDecided(
        event_id=derived_event_id(state.accepted_event_id, "result"),
        aggregate_key=state.request_id,
        occurred_at=event.payload.at,
        recorded_at=now,
        source=state.source,
        correlation_id=state.correlation_id,
        causation_id=event.event_id,
        payload=ChargingProfileResultDecidedPayload(
            request_id=state.request_id,
            action=state.action,
            session_id=state.session_id,
            partner_id=state.partner_id,
            response_url=state.response_url,
            result=result,
            active_profile=profile if result is ChargingProfileResultType.ACCEPTED else None,
            decided_by=by,
            at=now,
        ),
    )


def overdue(pending: list[PendingProfile], now: datetime) -> list[Any]:
    """The deadline events of the requests whose deadline passed."""
    return [
        ChargingProfileDeadlinePassed(
            event_id=uuid.uuid5(_REQUEST_NS, f"{p.request_id}:deadline"),
            aggregate_key=p.request_id,
            occurred_at=p.deadline,
            recorded_at=now,
            source=p.source,
            correlation_id=p.correlation_id,
            causation_id=p.accepted_event_id,
            payload=ChargingProfileDeadlinePassedPayload(
                request_id=p.request_id, deadline=p.deadline, at=now
            ),
        )
        for p in pending
        if p.deadline <= now
    ]


def _load(value: Any) -> PendingProfile | None:
    return None if value is None else PendingProfile.model_validate(value)


RULE: WaitingRule[PendingProfile] = WaitingRule(
    name="charging-profile-results",
    relevant=(
        ChargingProfileRequestAccepted,
        ChargerProfileAnswered,
        ChargingProfileDeadlinePassed,
    ),
    key=lambda event: event.payload.request_id,
    load=_load,
    evolve=evolve,
    decide=decide,
    due=lambda pending: pending.deadline,
    state_key=lambda pending: pending.request_id,
    overdue=overdue,
)


def register(app: Any, source_topic: Any, emit: Any, partitions: int, scan_s: float) -> Any:
    """Attach the agent, its table and the deadline timer to a Faust app."""
    agent, _ = deadlines.register(app, source_topic, emit, partitions, scan_s, RULE)
    return agent
