"""CDRs module, both interfaces (mod_cdrs).

Receiver (we as eMSP): ``POST /ocpi/emsp/{version}/cdrs`` stores a partner
CPO's CDR. The CDR's party must be one of the poster's; the body must be a
valid CDR (end not before start, quantities not negative, embedded tariffs
in the CDR's currency, ...); a CDR id already received is refused
(CDRs are immutable, a correction is a Credit CDR). Any of these: OCPI 2001
and nothing written. A CDR at a location we do not hold is accepted: it
carries its own CdrLocation. The answer carries a ``Location`` header with
the URL of ``GET /ocpi/emsp/{version}/cdrs/{cdr_id}``, which serves the CDR to
the party that posted it. With the CDR we record our reconciliation of it
(``CdrReconciled``, producers/cdrs.py ``reconcile``).

Sender (we as CPO): ``GET /ocpi/cpo/{version}/cdrs`` lists the CDRs we issued
for tokens of the caller's eMSP parties (api/pagination.py).

A POST goes through the one write path (producers/write_path.py,
docs/adr/0022), decided by ``producers.cdrs.decide_receive`` on the state of
the CDR's key; the token, the CPO's tariffs and the location it is judged
against are read from their slices' states as of the log, never from a view.
Reads serve the MongoDB view once it has applied the CDR's last write
(api/consistency.py).

One set of handlers for every OCPI version we offer (docs/adr/0045): a
2.1.1 CDR names no party (the poster's, which must have one) and its token
by ``auth_id`` only, and embeds the Location (``api/ocpi/edge.py``); our
CDRs leave in the route's version, the Location from our location view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from api.consistency import read_written
from api.deps import CdrViewDep, ContainerDep, CorrelationIdDep, NowDep
from api.errors import OcpiError, envelope
from api.ocpi.edge import EdgeDep
from api.ocpi.paths import VersionPath
from api.pagination import PageRequestDep, our_page
from api.routing import RoutedCaller, RoutedCallerDep
from api.writes import ExactBody, WritePathDep, body_of
from producers.cdrs import SLICE, decide_receive
from producers.receipts import cdr_receipt
from producers.write_path import WritePath
from projections.mongo.cdrs import CdrViewQuery
from schemas.events import Party
from schemas.events.cdrs import cdr_key
from schemas.ocpi.cdrs import Cdr
from schemas.ocpi.common import fold
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.wire import Kind

Json = dict[str, Any]

receiver = APIRouter(prefix="/ocpi/emsp/{version}/cdrs", tags=["ocpi: cdrs (receiver)"])
sender = APIRouter(prefix="/ocpi/cpo/{version}/cdrs", tags=["ocpi: cdrs (sender)"])

# mod_cdrs, CDR.id: CiString(39).
CdrIdPath = Annotated[str, Path(min_length=1, max_length=39, pattern=r"^[\x21-\x7E]+$")]


@dataclass(frozen=True)
class CdrReads:
    """One CDR document as the view serves it, once the view holds the
    CDR's last acknowledged write."""

    view: CdrViewQuery
    write_path: WritePath
    timeout_s: float

    async def get(self, key: str) -> Json | None:
        found: Json | None = await read_written(
            self.view, self.write_path, SLICE, key, timeout_s=self.timeout_s, what="CDR"
        )
        return found


def _reads(c: ContainerDep, view: CdrViewDep, w: WritePathDep) -> CdrReads:
    return CdrReads(view, w, c.settings.read_own_writes_timeout_s)


CdrReadsDep = Annotated[CdrReads, Depends(_reads)]


# --- Receiver -----------------------------------------------------------------


@receiver.post("", openapi_extra=body_of(Cdr))
async def post_cdr(
    version: VersionPath,
    body: ExactBody,
    caller: RoutedCallerDep,
    c: ContainerDep,
    w: WritePathDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    response: Response,
    edge: EdgeDep,
) -> Json:
    # A version without the party in the CDR (2.1.1): the poster's own (the
    # party it speaks as: a 2.1.1 partner has one).
    owner = (caller.party.country_code, caller.party.party_id)
    ours = await edge.into_ours(Kind.CDR, body, owner, patch=False, now=now)
    cdr = Cdr.model_validate(ours)  # 2001 on bad input, before anything is read
    s = c.settings
    command = await cdr_receipt(
        w,
        cdr,
        poster_owns=caller.owns,
        us=Party(country_code=s.party_country_code, party_id=s.party_id),
        tolerance=s.cdr_reconciliation_tolerance,
        correlation_id=correlation_id,
    )
    key = cdr_key(cdr.country_code, cdr.party_id, cdr.id)
    await w.write(SLICE, key, lambda state: decide_receive(state, command, now))
    prefix = receiver.prefix.replace("{version}", version)
    response.headers["Location"] = f"{s.base_url}{prefix}/{cdr.id}"
    return envelope()


def _received_keys(caller: RoutedCaller, cdr_id: str) -> list[str]:
    return [cdr_key(r.country_code, r.party_id, cdr_id) for r in caller.partner.roles]


@receiver.get("/{cdr_id}")
async def get_received_cdr(
    version: VersionPath,
    cdr_id: CdrIdPath,
    caller: RoutedCallerDep,
    reads: CdrReadsDep,
    edge: EdgeDep,
) -> Json:
    """A CDR the caller posted, by the URL its POST was answered with."""
    for key in _received_keys(caller, cdr_id):
        doc = await reads.get(key)
        if doc is not None and doc.get("role") == "received":
            cdr = doc["cdr"]
            return envelope(await edge.out(Kind.CDR, cdr, (cdr["country_code"], cdr["party_id"])))
    raise OcpiError(OcpiStatus.INVALID_PARAMETERS, f"unknown CDR {cdr_id!r}", 404)


# --- Sender -------------------------------------------------------------------


def _token_parties(caller: RoutedCaller) -> list[str]:
    return sorted({f"{fold(r.country_code)}/{fold(r.party_id)}" for r in caller.partner.roles})


@sender.get("")
async def list_our_cdrs(
    version: VersionPath,
    request: Request,
    response: Response,
    caller: RoutedCallerDep,
    c: ContainerDep,
    view: CdrViewDep,
    params: PageRequestDep,
    edge: EdgeDep,
) -> Json:
    items = await our_page(
        request, response, c, params, view.page, token_parties=_token_parties(caller)
    )
    owner = (c.settings.party_country_code, c.settings.party_id)
    return envelope([await edge.out(Kind.CDR, item, owner) for item in items])
