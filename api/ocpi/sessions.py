"""Sessions module, both interfaces (mod_sessions).

Receiver (``/ocpi/emsp/2.2.1/sessions/{cc}/{pid}/{session_id}``, we as
eMSP): a partner CPO PUTs, PATCHes and GETs its own sessions; another
party's ids are refused with 2001 and nothing is written. A session naming a
location we do not hold is accepted (docs/adr/0015).

Sender (``/ocpi/cpo/2.2.1/sessions``, we as CPO): a partner lists our
sessions of tokens its eMSP parties own; ``date_from`` is required (mod_sessions,
GET "Request Parameters"). ``PUT /{session_id}/charging_preferences``: we
offer no smart charging, so no EVSE of ours is CHARGING_PREFERENCES_CAPABLE
and the spec's answer is HTTP 404 with OCPI 2001 (ChargingPreferencesResponse
enum, the note above its table).

Writes are acknowledged only after Kafka has the event; a write leaves a
mark so the next read of the session waits for the view (as for locations,
docs/adr/0009).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request, Response

from api.deps import (
    ContainerDep,
    CorrelationIdDep,
    EventLogDep,
    NowDep,
    SessionViewDep,
    TokenViewDep,
    WriteMarksDep,
)
from api.errors import OcpiError, envelope
from api.ocpi.paths import CountryCodePath, PartyIdPath
from api.pagination import PageRequestDep, paginate
from api.routing import RoutedCaller, RoutedCallerDep
from producers.log import EventLog
from producers.sessions import find, plan_patch, plan_put
from producers.write_path import Origin, RefusedError
from projections.mongo.sessions import SessionViewQuery
from projections.position import position_field
from projections.write_marks import WriteMarks
from schemas.events import Party, SessionPut
from schemas.events.sessions import SessionRef
from schemas.events.tokens import token_key
from schemas.ocpi.common import fold
from schemas.ocpi.sessions import ChargingPreferences
from schemas.ocpi.status_codes import OcpiStatus
from schemas.topics import SESSIONS

receiver = APIRouter(prefix="/ocpi/emsp/2.2.1/sessions", tags=["ocpi: sessions (receiver)"])
sender = APIRouter(prefix="/ocpi/cpo/2.2.1/sessions", tags=["ocpi: sessions (sender)"])

# mod_sessions: Session.id is CiString(36).
SessionIdPath = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[\x21-\x7E]+$")]


def mark_key(session_key: str) -> str:
    """Write-mark key of a session (apart from location keys, which look alike)."""
    return f"session:{session_key}"


@dataclass(frozen=True)
class SessionStore:
    """Where a session is read from, waiting for our own acknowledged writes."""

    view: SessionViewQuery
    marks: WriteMarks
    timeout_s: float

    async def current(self, ref: SessionRef) -> dict[str, Any] | None:
        wanted = await self.marks.marks(mark_key(ref.session_key))
        deadline = time.monotonic() + self.timeout_s
        delay = 0.02
        while True:
            session, positions = await asyncio.to_thread(self.view.read, ref.session_key)
            if all(
                positions.get(position_field(SESSIONS.name, p), -1) >= o for p, o in wanted.items()
            ):
                return session
            if time.monotonic() >= deadline:
                raise OcpiError(
                    OcpiStatus.SERVER_ERROR,
                    "an earlier update of this session is still being recorded; retry",
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)


def _store(c: ContainerDep, view: SessionViewDep, marks: WriteMarksDep) -> SessionStore:
    return SessionStore(view, marks, c.settings.read_own_writes_timeout_s)


SessionStoreDep = Annotated[SessionStore, Depends(_store)]


def _refused(exc: RefusedError) -> OcpiError:
    return OcpiError(exc.status, exc.message, exc.http_status)


# Checks the cdr_token a session write names; raises OcpiError to refuse it.
BillTo = Callable[[dict[str, Any]], Awaitable[None]]


async def write_session(
    method: str,
    ref: SessionRef,
    body: Any,
    *,
    store: SessionStore,
    event_log: EventLog,
    origin: Origin,
    now: datetime,
    response: Response,
    bill_to: BillTo | None = None,
) -> dict[str, Any]:
    """PUT or PATCH of a session: judge, append, mark, answer (201 when a PUT
    creates the session, else 200; OCPI 1000, no data). ``bill_to`` checks
    the ``cdr_token`` a write names, raising ``OcpiError`` to refuse it."""
    current = await store.current(ref)
    plan = plan_put if method == "PUT" else plan_patch
    try:
        planned = plan(ref, body, current, origin, now)
    except RefusedError as exc:
        raise _refused(exc) from exc
    event = planned.event
    token = (event.payload.session if isinstance(event, SessionPut) else event.payload.patch).get(
        "cdr_token"
    )
    if token is not None and bill_to is not None:
        await bill_to(token)
    try:
        [position] = await event_log.append([planned.event])
    except Exception as exc:
        raise OcpiError(OcpiStatus.SERVER_ERROR, "the update could not be recorded; retry") from exc
    try:
        await store.marks.mark(mark_key(ref.session_key), position.partition, position.offset)
    except Exception as exc:
        raise OcpiError(
            OcpiStatus.SERVER_ERROR, "the update was recorded; retry to confirm"
        ) from exc
    response.status_code = 201 if planned.created else 200
    return envelope()


# --- Receiver -----------------------------------------------------------------


def _theirs(
    caller: RoutedCallerDep,
    country_code: CountryCodePath,
    party_id: PartyIdPath,
    session_id: SessionIdPath,
) -> SessionRef:
    """A partner reads and writes only sessions of its own CPO parties."""
    if not caller.owns(country_code, party_id):
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS,
            f"{country_code}/{party_id} is not a party registered with this token; "
            "a partner may only write and read its own sessions",
        )
    return SessionRef(country_code=country_code, party_id=party_id, session_id=session_id)


TheirSessionDep = Annotated[SessionRef, Depends(_theirs)]
_PATH = "/{country_code}/{party_id}/{session_id}"


@receiver.get(_PATH)
async def get_session(ref: TheirSessionDep, store: SessionStoreDep) -> dict[str, Any]:
    try:
        return envelope(find(await store.current(ref), ref))
    except RefusedError as exc:
        raise _refused(exc) from exc


def _our_tokens(c: ContainerDep, tokens: TokenViewDep) -> BillTo:
    """A partner CPO sends us (the eMSP) the sessions of OUR tokens: another
    eMSP's token is 2001 (send it there), one we never issued 2004."""
    us = (fold(c.settings.party_country_code), fold(c.settings.party_id))

    async def check(token: dict[str, Any]) -> None:
        owner = (fold(str(token["country_code"])), fold(str(token["party_id"])))
        if owner != us:
            raise OcpiError(
                OcpiStatus.INVALID_PARAMETERS,
                f"the session's token belongs to {token['country_code']}/{token['party_id']}, "
                "not to us: send it to the eMSP that owns the token",
            )
        key = token_key(token["country_code"], token["party_id"], token["uid"], token["type"])
        state, _ = await asyncio.to_thread(tokens.read, key)
        if state is None:
            raise OcpiError(
                OcpiStatus.UNKNOWN_TOKEN, f"we issued no {token['type']} token {token['uid']!r}"
            )

    return check


BillToDep = Annotated[BillTo, Depends(_our_tokens)]


async def _write(
    method: str,
    ref: SessionRef,
    body: Any,
    store: SessionStore,
    event_log: EventLog,
    now: datetime,
    correlation_id: str,
    response: Response,
    bill_to: BillTo,
) -> dict[str, Any]:
    source = Party(country_code=fold(ref.country_code), party_id=fold(ref.party_id))
    return await write_session(
        method,
        ref,
        body,
        store=store,
        event_log=event_log,
        origin=Origin(source, correlation_id),
        now=now,
        response=response,
        bill_to=bill_to,
    )


@receiver.put(_PATH)
async def put_session(
    ref: TheirSessionDep,
    body: Annotated[Any, Body()],
    store: SessionStoreDep,
    event_log: EventLogDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    response: Response,
    bill_to: BillToDep,
) -> dict[str, Any]:
    return await _write("PUT", ref, body, store, event_log, now, correlation_id, response, bill_to)


@receiver.patch(_PATH)
async def patch_session(
    ref: TheirSessionDep,
    body: Annotated[Any, Body()],
    store: SessionStoreDep,
    event_log: EventLogDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    response: Response,
    bill_to: BillToDep,
) -> dict[str, Any]:
    return await _write(
        "PATCH", ref, body, store, event_log, now, correlation_id, response, bill_to
    )


# --- Sender -------------------------------------------------------------------


def _token_parties(caller: RoutedCaller) -> list[str]:
    return sorted({f"{fold(r.country_code)}/{fold(r.party_id)}" for r in caller.partner.roles})


@sender.get("")
def list_sessions(
    request: Request,
    response: Response,
    caller: RoutedCallerDep,
    c: ContainerDep,
    view: SessionViewDep,
    params: PageRequestDep,
) -> dict[str, Any]:
    if params.date_from is None:
        # mod_sessions, GET "Request Parameters": date_from is required.
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, "date_from is required", 400)
    s = c.settings
    page = view.page(
        country_code=s.party_country_code,
        party_id=s.party_id,
        date_from=params.date_from,
        date_to=params.date_to,
        after=params.after,
        skip=params.offset,
        limit=params.limit,
        token_parties=_token_parties(caller),
    )
    paginate(
        request, response, c, params, returned=len(page.items), total=page.total, last=page.last
    )
    return envelope(page.items)


@sender.put("/{session_id}/charging_preferences")
async def put_charging_preferences(
    session_id: SessionIdPath,
    body: Annotated[Any, Body()],
    caller: RoutedCallerDep,
    c: ContainerDep,
    store: SessionStoreDep,
) -> dict[str, Any]:
    ChargingPreferences.model_validate(body)  # a bad body is 2001 whatever follows
    s = c.settings
    ref = SessionRef(country_code=s.party_country_code, party_id=s.party_id, session_id=session_id)
    session = await store.current(ref)
    token_parties = _token_parties(caller)
    if session is None or (
        f"{fold(session['cdr_token']['country_code'])}/{fold(session['cdr_token']['party_id'])}"
        not in token_parties
    ):
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, f"unknown session {session_id!r}", 404)
    # No EVSE of ours is CHARGING_PREFERENCES_CAPABLE: the spec's answer.
    raise OcpiError(
        OcpiStatus.INVALID_PARAMETERS,
        "charging preferences are not supported: the EVSE of this session is not "
        "CHARGING_PREFERENCES_CAPABLE",
        404,
    )
