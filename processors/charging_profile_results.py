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

from processors import deadlines
from processors.deadlines import (
    Awaited,
    WaitingRule,
    awaited_rule,
    awaiting,
    deadlines_passed,
    result_meta,
)
from schemas.events import (
    ChargerProfileAnswered,
    ChargingProfileDeadlinePassed,
    ChargingProfileRequestAccepted,
    ChargingProfileResultDecided,
    EventMeta,
)
from schemas.events.charging_profiles import (
    ChargingProfileDeadlinePassedPayload,
    ChargingProfileResultDecidedPayload,
)
from schemas.ocpi.charging_profiles import ChargingProfileResultType

# Ids derived from a request id (not an event id).
_REQUEST_NS = uuid.UUID("5d0f3a52-8f7e-4d1b-b4a8-2f9c61e0d7a4")

Relevant = ChargingProfileRequestAccepted | ChargerProfileAnswered | ChargingProfileDeadlinePassed


def evolve(state: Awaited | None, event: Relevant) -> Awaited | None:
    """Pending from acceptance until its answer or its deadline."""
    if not isinstance(event, ChargingProfileRequestAccepted):
        return None
    p = event.payload
    return awaiting(
        state,
        event,
        p.request_id,
        p.deadline,
        action=p.action.value,
        session_id=p.session_id,
        partner_id=p.partner_id,
        response_url=p.response_url,
    )


def decide(
    state: Awaited | None, event: Relevant, now: datetime
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
    accepted = result is ChargingProfileResultType.ACCEPTED
    return ChargingProfileResultDecided(
        **result_meta(state, event, now),
        payload=ChargingProfileResultDecidedPayload(
            request_id=state.key,
            **state.detail,
            result=result,
            active_profile=profile if accepted else None,
            decided_by=by,
            at=now,
        ),
    )


def _time_passed(meta: dict[str, Any], item: Awaited) -> EventMeta:
    return ChargingProfileDeadlinePassed(
        **meta,
        payload=ChargingProfileDeadlinePassedPayload(
            request_id=item.key, deadline=item.deadline, at=meta["recorded_at"]
        ),
    )


def overdue(pending: list[Awaited], now: datetime) -> list[EventMeta]:
    """The deadline events of the requests whose deadline passed."""
    return deadlines_passed(pending, now, _REQUEST_NS, _time_passed)


RULE: WaitingRule[Awaited] = awaited_rule(
    "charging-profile-results",
    (ChargingProfileRequestAccepted, ChargerProfileAnswered, ChargingProfileDeadlinePassed),
    lambda event: event.payload.request_id,
    evolve,
    decide,
    overdue,
)


def register(app: Any, source_topic: Any, emit: Any, partitions: int, scan_s: float) -> Any:
    """Attach the agent, its table and the deadline timer to a Faust app."""
    agent, _ = deadlines.register(app, source_topic, emit, partitions, scan_s, RULE)
    return agent
