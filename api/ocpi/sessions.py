"""Sessions module, both interfaces (mod_sessions).

Receiver (``/ocpi/emsp/{version}/sessions/{cc}/{pid}/{session_id}``, we as
eMSP): a partner CPO PUTs, PATCHes and GETs its own sessions; another
party's ids are refused with 2001 and nothing is written. A session naming a
location we do not hold is accepted (docs/adr/0015).

Sender (``/ocpi/cpo/{version}/sessions``, we as CPO): a partner lists our
sessions of tokens its eMSP parties own; ``date_from`` is required (mod_sessions,
GET "Request Parameters"). ``PUT /{session_id}/charging_preferences``: we
offer no smart charging, so no EVSE of ours is CHARGING_PREFERENCES_CAPABLE
and the spec's answer is HTTP 404 with OCPI 2001 (ChargingPreferencesResponse
enum, the note above its table).

Writes go through the one write path (producers/write_path.py,
docs/adr/0022): decided by ``producers.sessions.decide`` against the
session as of its latest event in the log, with the token it bills as the
Tokens slice holds it, and answered once Kafka acknowledged. A read of one
session serves the MongoDB view once it has applied the session's last
write (api/consistency.py). Our own sessions are written by the processors,
so the Sender and charging preferences read the view as it is.

One set of handlers for every OCPI version we offer (docs/adr/0045): a
2.1.1 body is converted into our model before the write path
(``api/ocpi/edge.py``: its token found by ``auth_id``, its location
reference taken from the Location it embeds), and what we serve leaves in
the route's version (the Location embedded from our location view).
Charging preferences exist in 2.2.1 only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from api.consistency import read_written
from api.deps import ContainerDep, CorrelationIdDep, NowDep, SessionViewDep
from api.errors import OcpiError, envelope
from api.ocpi.edge import EdgeDep
from api.ocpi.paths import CountryCodePath, PartyIdPath, VersionPath
from api.pagination import PageRequestDep, our_page
from api.routing import RoutedCaller, RoutedCallerDep
from api.writes import JsonBody, WritePathDep, body_of
from api.writes import written as answered
from producers.receipts import session_billing
from producers.sessions import (
    SLICE,
    Billing,
    PatchSession,
    PutSession,
    decide,
    find,
    patch_session,
    put_session,
)
from producers.write_path import Origin, WritePath
from projections.mongo.sessions import SessionViewQuery
from schemas.events import Party
from schemas.events.sessions import SessionRef
from schemas.ocpi.common import fold
from schemas.ocpi.patch import patch_model
from schemas.ocpi.sessions import ChargingPreferences, Session
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.wire import Kind, version_key

Json = dict[str, Any]

receiver = APIRouter(prefix="/ocpi/emsp/{version}/sessions", tags=["ocpi: sessions (receiver)"])
sender = APIRouter(prefix="/ocpi/cpo/{version}/sessions", tags=["ocpi: sessions (sender)"])

# mod_sessions: Session.id is CiString(36).
SessionIdPath = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[\x21-\x7E]+$")]


@dataclass(frozen=True)
class SessionReads:
    """One partner's session as the view serves it, once the view holds the
    session's last acknowledged write."""

    view: SessionViewQuery
    write_path: WritePath
    timeout_s: float

    async def get(self, ref: SessionRef) -> Json:
        current = await read_written(
            self.view,
            self.write_path,
            SLICE,
            ref.session_key,
            timeout_s=self.timeout_s,
            what="session",
        )
        return find(current, ref)


def _reads(c: ContainerDep, view: SessionViewDep, w: WritePathDep) -> SessionReads:
    return SessionReads(view, w, c.settings.read_own_writes_timeout_s)


SessionReadsDep = Annotated[SessionReads, Depends(_reads)]


# --- Receiver -----------------------------------------------------------------


def _theirs(
    version: VersionPath,
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
SESSION = "/{country_code}/{party_id}/{session_id}"

# Whom a write may bill (None: no check); see ``_our_tokens``.
BillTo = Callable[[PutSession | PatchSession], Awaitable[Billing | None]]


def _our_tokens(c: ContainerDep, write_path: WritePathDep) -> BillTo:
    """The token a write names, as the Tokens slice holds it (a peek at its
    log-consistent state, not the view): ``producers.sessions.decide``
    accepts only tokens we issued."""
    us = Party(country_code=c.settings.party_country_code, party_id=c.settings.party_id)

    async def billing(command: PutSession | PatchSession) -> Billing | None:
        return await session_billing(write_path, command, us)

    return billing


BillToDep = Annotated[BillTo, Depends(_our_tokens)]


def _origin(ref: SessionRef, correlation_id: str) -> Origin:
    party = Party(country_code=fold(ref.country_code), party_id=fold(ref.party_id))
    return Origin(party, correlation_id)


async def _record(
    write_path: WritePath, command: PutSession | PatchSession, bill_to: BillTo, now: datetime
) -> bool:
    billing = await bill_to(command)
    return await write_path.write(
        SLICE, command.ref.session_key, lambda state: decide(state, command, now, billing)
    )


def _owner(ref: SessionRef) -> tuple[str, str]:
    return ref.country_code, ref.party_id


@receiver.get(SESSION)
async def get_their_session(ref: TheirSessionDep, reads: SessionReadsDep, edge: EdgeDep) -> Json:
    return envelope(await edge.out(Kind.SESSION, await reads.get(ref), _owner(ref)))


@receiver.put(SESSION, openapi_extra=body_of(Session))
async def put_their_session(
    ref: TheirSessionDep,
    body: JsonBody,
    write_path: WritePathDep,
    bill_to: BillToDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    response: Response,
    edge: EdgeDep,
) -> Json:
    ours = await edge.into_ours(Kind.SESSION, body, _owner(ref), patch=False, now=now)
    command = put_session(ref, ours, _origin(ref, correlation_id))
    return answered(response, await _record(write_path, command, bill_to, now))


@receiver.patch(SESSION, openapi_extra=body_of(patch_model(Session)))
async def patch_their_session(
    ref: TheirSessionDep,
    body: JsonBody,
    write_path: WritePathDep,
    bill_to: BillToDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    response: Response,
    edge: EdgeDep,
) -> Json:
    ours = await edge.into_ours(Kind.SESSION, body, _owner(ref), patch=True, now=now)
    command = patch_session(ref, ours, _origin(ref, correlation_id))
    return answered(response, await _record(write_path, command, bill_to, now))


# --- Sender -------------------------------------------------------------------


def _token_parties(caller: RoutedCaller) -> list[str]:
    return sorted({f"{fold(r.country_code)}/{fold(r.party_id)}" for r in caller.partner.roles})


@sender.get("")
async def list_sessions(
    version: VersionPath,
    request: Request,
    response: Response,
    caller: RoutedCallerDep,
    c: ContainerDep,
    view: SessionViewDep,
    params: PageRequestDep,
    edge: EdgeDep,
) -> dict[str, Any]:
    if params.date_from is None:
        # mod_sessions, GET "Request Parameters": date_from is required. The
        # list exists: 2001 at HTTP 200 (docs/adr/0039 §2).
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, "date_from is required")
    items = await our_page(
        request, response, c, params, view.page, token_parties=_token_parties(caller)
    )
    owner = (c.settings.party_country_code, c.settings.party_id)
    return envelope([await edge.out(Kind.SESSION, item, owner) for item in items])


@sender.put("/{session_id}/charging_preferences")
async def put_charging_preferences(
    version: VersionPath,
    session_id: SessionIdPath,
    body: ChargingPreferences,  # a bad body is 2001 whatever follows
    caller: RoutedCallerDep,
    c: ContainerDep,
    view: SessionViewDep,
) -> Json:
    if version_key(version) < version_key("2.2"):
        # 2.1.1 has no charging preferences (mod_sessions 2.2): no such route.
        raise OcpiError(
            OcpiStatus.UNSUPPORTED_VERSION, f"no charging preferences in OCPI {version}"
        )
    s = c.settings
    ref = SessionRef(country_code=s.party_country_code, party_id=s.party_id, session_id=session_id)
    # One of our sessions (the processors write them): the view as it is.
    session, _ = await view.read(ref.session_key)
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
