"""The Sessions slice: a session's state, the decisions on a partner CPO's
writes of it, and the fold of its events. Pure: no I/O, the clock passed in.

**State** is the OCPI Session we hold (JSON form, None if we hold none).
``evolve`` folds one event of ``ocpi.sessions.v1`` into it:

* ``SessionPut`` replaces the session whole, ``charging_periods`` included
  (mod_sessions, "PUT Method");
* ``SessionPatched`` merges the fragment: absent fields unchanged, ``null``
  clears, ``charging_periods`` appended (mod_sessions, "PATCH Method"); a
  PATCH of a session we do not hold changes nothing (the receiver refuses
  it, so only a log written by hand could hold one);
* a write older (``last_updated``) than the session held is kept in the log
  and changes nothing (docs/adr/0004); equal timestamps apply, so a PATCH
  stamped like the PUT before it is not lost.

The write path, the MongoDB and MySQL views and the CDR builder all fold
with this one ``evolve``, so a replay rebuilds the same session everywhere.

**Decisions.** A partner's write is parsed first (``put_session``,
``patch_session``: the body alone, ``pydantic.ValidationError`` is 2001),
then ``decide`` judges it against the state the write path holds (docs/
adr/0022) and returns the event to record, or raises ``RefusedError``.
Every well-formed write is recorded, an older one too; the fold decides
which wins. A session a partner sends us bills one of *our* tokens: the
caller peeks the Tokens slice for the token the write names and hands it
in as ``Billing``.

The location a session names is not checked against our locations: a
CPO's session is billing data we must not lose because we never received
(or were never sent) that location (docs/adr/0015). Our own sessions are
written by the session lifecycle processor (processors/), not here.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from producers.tokens import TokenState
from producers.write_path import Decision, Origin, RefusedError, Slice
from schemas.events import Party, SessionPatched, SessionPut, new_event_id
from schemas.events.sessions import SessionPatchedPayload, SessionPutPayload, SessionRef
from schemas.events.tokens import TokenRef
from schemas.ocpi.common import fold, format_ocpi_datetime
from schemas.ocpi.patch import ValidatedPatch
from schemas.ocpi.sessions import (
    Session,
    is_older,
    merge_session_patch,
    to_json,
    validate_session_patch,
)
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.types import TokenType
from schemas.topics import SESSIONS

Json = dict[str, Any]

__all__ = [
    "SLICE",
    "Billing",
    "Origin",
    "PatchSession",
    "PlannedSession",
    "PutSession",
    "RefusedError",
    "billed_token",
    "decide",
    "evolve",
    "find",
    "patch_session",
    "plan_patch",
    "plan_put",
    "put_session",
]


# --- state and fold -------------------------------------------------------------------


def evolve(session: Json | None, event: object) -> Json | None:
    """The session after one event (the same object when it changes nothing)."""
    if isinstance(event, SessionPut):
        incoming = format_ocpi_datetime(event.payload.last_updated)
        if session is not None and is_older(session.get("last_updated"), incoming):
            return session
        return copy.deepcopy(event.payload.session)
    if isinstance(event, SessionPatched):
        if session is None:
            return None
        incoming = format_ocpi_datetime(event.payload.last_updated)
        if is_older(session.get("last_updated"), incoming):
            return session
        return merge_session_patch(session, event.payload.patch)
    return session


def _load(raw: bytes) -> Json:
    loaded: Json = orjson.loads(raw)
    return loaded


# The Sessions slice as the write path holds it (docs/adr/0022).
SLICE: Slice[Json] = Slice("sessions", SESSIONS, evolve, orjson.dumps, _load)


# --- commands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PutSession:
    """A partner CPO's PUT of a whole Session (the body validated)."""

    ref: SessionRef
    session: Session
    origin: Origin


@dataclass(frozen=True)
class PatchSession:
    """A partner CPO's PATCH of a Session (the fragment validated field by field)."""

    ref: SessionRef
    patch: ValidatedPatch
    origin: Origin


def put_session(ref: SessionRef, body: Any, origin: Origin) -> PutSession:
    """Raises ``pydantic.ValidationError`` (2001) for a body that is not a Session."""
    return PutSession(ref, Session.model_validate(body), origin)


def patch_session(ref: SessionRef, body: Any, origin: Origin) -> PatchSession:
    """Raises ``pydantic.ValidationError`` (2001) for a fragment that is not
    one of a Session (``last_updated`` is required)."""
    return PatchSession(ref, validate_session_patch(body), origin)


def billed_token(command: PutSession | PatchSession) -> TokenRef | None:
    """The token a write names as the session's ``cdr_token`` (a PATCH may
    name none)."""
    if isinstance(command, PutSession):
        t = command.session.cdr_token
        return TokenRef(country_code=t.country_code, party_id=t.party_id, uid=t.uid, type=t.type)
    named = command.patch.values.get("cdr_token")
    if named is None:
        return None
    return TokenRef(
        country_code=named["country_code"],
        party_id=named["party_id"],
        uid=named["uid"],
        type=TokenType(named["type"]),
    )


@dataclass(frozen=True)
class Billing:
    """Whom a partner's session may bill: tokens we (``us``) issued.
    ``token`` is the Tokens slice's state of the token the write names
    (``billed_token``), None when we hold none."""

    us: Party
    token: TokenState | None


def decide(
    state: Json | None,
    command: PutSession | PatchSession,
    now: datetime,
    billing: Billing | None = None,
) -> Decision[bool]:
    """The event a write records; the answer says whether a PUT created the
    session (HTTP 201 rather than 200). With ``billing``, the token the
    write names must be one we issued (checked last, as a partner would
    expect: the session itself first)."""
    if isinstance(command, PutSession):
        planned = _put(command.ref, command.session, state, command.origin, now)
    else:
        planned = _patch(command.ref, command.patch, state, command.origin, now)
    named = billed_token(command)
    if named is not None and billing is not None:
        _bills_our_token(named, billing)
    return Decision([planned.event], planned.created)


def _bills_our_token(named: TokenRef, billing: Billing) -> None:
    """A partner CPO sends us (the eMSP) the sessions of OUR tokens: another
    eMSP's token is 2001 (send it there), one we never issued 2004."""
    us = (fold(billing.us.country_code), fold(billing.us.party_id))
    if (fold(named.country_code), fold(named.party_id)) != us:
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS,
            f"the session's token belongs to {named.country_code}/{named.party_id}, "
            "not to us: send it to the eMSP that owns the token",
        )
    if billing.token is None or billing.token.token is None:
        raise RefusedError(
            OcpiStatus.UNKNOWN_TOKEN, f"we issued no {named.type.value} token {named.uid!r}"
        )


# --- decisions --------------------------------------------------------------------------


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
    return _put(ref, Session.model_validate(body), current, origin, now)


def _put(
    ref: SessionRef,
    session: Session,
    current: Mapping[str, Any] | None,
    origin: Origin,
    now: datetime,
) -> PlannedSession:
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
    return _patch(ref, validate_session_patch(body), current, origin, now)


def _patch(
    ref: SessionRef,
    patch: ValidatedPatch,
    current: Mapping[str, Any] | None,
    origin: Origin,
    now: datetime,
) -> PlannedSession:
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
