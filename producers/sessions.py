"""Decisions of the Sessions slice: requests in, events out. Pure.

``plan_put`` and ``plan_patch`` judge a partner's (or our processor's) write
of a Session against the session we hold and return the event to record, or
raise ``RefusedError`` with the OCPI status to answer. Every well-formed
write is recorded, an older one too; which write wins is decided by the fold
(``projections.session_state``, docs/adr/0004).

The location a session names is not checked against our location view: a
CPO's session is billing data we must not lose because we never received
(or were never sent) that location (docs/adr/0015).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from producers.write_path import Origin, RefusedError
from schemas.events import SessionPatched, SessionPut, new_event_id
from schemas.events.sessions import SessionPatchedPayload, SessionPutPayload, SessionRef
from schemas.ocpi.common import fold
from schemas.ocpi.sessions import (
    Session,
    merge_session_patch,
    to_json,
    validate_session_patch,
)
from schemas.ocpi.status_codes import OcpiStatus

Json = dict[str, Any]

__all__ = ["Origin", "PlannedSession", "RefusedError", "find", "plan_patch", "plan_put"]


@dataclass(frozen=True)
class PlannedSession:
    event: SessionPut | SessionPatched
    created: bool  # a PUT of a session we did not hold


def plan_put(
    ref: SessionRef,
    body: Any,
    current: Mapping[str, Any] | None,
    origin: Origin,
    now: datetime,
) -> PlannedSession:
    """A PUT: the body must be a valid Session naming the session of the URL.
    Raises ``pydantic.ValidationError`` (2001) or ``RefusedError``."""
    session = Session.model_validate(body)
    _same_ids(ref, session)
    event = SessionPut(
        event_id=new_event_id(),
        aggregate_key=ref.session_key,
        occurred_at=session.last_updated,
        recorded_at=now,
        source=origin.source,
        correlation_id=origin.correlation_id,
        payload=SessionPutPayload(
            **ref.model_dump(), session=to_json(session), last_updated=session.last_updated
        ),
    )
    return PlannedSession(event, created=current is None)


def plan_patch(
    ref: SessionRef,
    body: Any,
    current: Mapping[str, Any] | None,
    origin: Origin,
    now: datetime,
) -> PlannedSession:
    """A PATCH: the session must be held (else 2001: PUT it first,
    transport_and_format "PATCH"), the fragment valid field by field, and
    the merged session still a valid Session naming the same ids."""
    patch = validate_session_patch(body)
    if current is None:
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS,
            f"unknown session {ref.session_id!r}: PUT the whole session first",
        )
    body_json = patch.to_json()
    for name, expected in (
        ("country_code", ref.country_code),
        ("party_id", ref.party_id),
        ("id", ref.session_id),
    ):
        if name in body_json and fold(str(body_json[name])) != fold(expected):
            raise RefusedError(
                OcpiStatus.INVALID_PARAMETERS,
                f"{name} in the body is {body_json[name]!r}, the URL names {expected!r}",
            )
    Session.model_validate(merge_session_patch(current, body_json))
    event = SessionPatched(
        event_id=new_event_id(),
        aggregate_key=ref.session_key,
        occurred_at=patch.last_updated,
        recorded_at=now,
        source=origin.source,
        correlation_id=origin.correlation_id,
        payload=SessionPatchedPayload(
            **ref.model_dump(), patch=body_json, last_updated=patch.last_updated
        ),
    )
    return PlannedSession(event, created=False)


def find(current: Mapping[str, Any] | None, ref: SessionRef) -> Json:
    """The stored session for a GET; ``RefusedError`` (HTTP 404) when none."""
    if current is None:
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS, f"unknown session {ref.session_id!r}", 404
        )
    return dict(current)


def _same_ids(ref: SessionRef, session: Session) -> None:
    """Identifiers in a PUT body must name the session of the URL
    (mod_sessions, PUT: "SHALL be the same value")."""
    for name, got, expected in (
        ("country_code", session.country_code, ref.country_code),
        ("party_id", session.party_id, ref.party_id),
        ("id", session.id, ref.session_id),
    ):
        if fold(got) != fold(expected):
            raise RefusedError(
                OcpiStatus.INVALID_PARAMETERS,
                f"{name} in the body is {got!r}, the URL names {expected!r}",
            )
