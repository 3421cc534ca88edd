"""Push our sessions to the eMSP that owns each session's token
(mod_sessions, "Push model": PUT a new session, PATCH its changes, at
``{sessions receiver}/{country_code}/{party_id}/{session_id}``).

The lanes, ordering, retries and at-least-once delivery are those of
``processors.push`` (ADR 0008), run with ``SESSIONS_PUSH``: they read
``ocpi.sessions.v1`` and send to each partner's Sessions RECEIVER endpoint,
in a consumer group of their own per partner. A session goes only to the
partner with the party of its ``cdr_token`` (our lifecycle processor puts the
token in every event of our sessions); sessions of other CPOs are never
pushed. ``plan_session`` is pure.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from processors.push import PushModule, PushRequest, WholeRef, is_ours
from schemas.events import Party, SessionPatched, SessionPut
from schemas.ocpi.common import fold
from schemas.ocpi.versions import ModuleId
from schemas.topics import SESSIONS


def plan_session(event: object, us: Party) -> PushRequest | None:
    """The request for one event of ``ocpi.sessions.v1``; None unless it is a
    change of one of our own sessions that names its token's eMSP."""
    method: Literal["PUT", "PATCH"]
    if isinstance(event, SessionPut):
        method, body = "PUT", event.payload.session
    elif isinstance(event, SessionPatched):
        method, body = "PATCH", event.payload.patch
    else:
        return None
    p = event.payload
    if not is_ours(p.country_code, p.party_id, us):
        return None
    token = body.get("cdr_token")
    if not isinstance(token, dict):
        return None  # whose it is cannot be told: nobody gets it
    ids = (p.country_code, p.party_id, p.session_id)
    return PushRequest(
        method=method,
        path="".join("/" + quote(i, safe="") for i in ids),
        body=body,
        object_key="/".join(fold(i) for i in ids),
        last_updated=p.last_updated,
        correlation_id=event.correlation_id,
        event_id=str(event.event_id),
        audience=Party(
            country_code=fold(str(token["country_code"])), party_id=fold(str(token["party_id"]))
        ),
        # A PATCH the eMSP refuses as unknown is followed by a PUT of the
        # whole session from the sessions view (docs/adr/0042).
        whole=WholeRef("sessions", event.aggregate_key) if method == "PATCH" else None,
    )


SESSIONS_PUSH = PushModule(
    name="sessions",
    module_id=ModuleId.SESSIONS.value,
    topic=SESSIONS.name,
    event_types=frozenset(SESSIONS.event_types),
    plan=plan_session,
    group_suffix="sessions-",
    ready_event="sessions_push_lane_ready",
)
