"""CDRs module, both interfaces (mod_cdrs).

Receiver (we as eMSP): ``POST /ocpi/emsp/2.2.1/cdrs`` stores a partner
CPO's CDR. The CDR's party must be one of the poster's; the body must be a
valid CDR (end not before start, quantities not negative, embedded tariffs
in the CDR's currency, ...); a CDR id already received is refused
(CDRs are immutable, a correction is a Credit CDR). Any of these: OCPI 2001
and nothing written. A CDR at a location we do not hold is accepted: it
carries its own CdrLocation. The answer carries a ``Location`` header with
the URL of ``GET /ocpi/emsp/2.2.1/cdrs/{cdr_id}``, which serves the CDR to
the party that posted it. With the CDR we record our reconciliation of it
(``CdrReconciled``, producers/cdrs.py ``reconcile``).

Sender (we as CPO): ``GET /ocpi/cpo/2.2.1/cdrs`` lists the CDRs we issued
for tokens of the caller's eMSP parties (api/pagination.py).

Writes are acknowledged only after Kafka has the events and leave a write
mark, so the next read of that CDR waits for the view (docs/adr/0009).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from api.deps import (
    CdrViewDep,
    ContainerDep,
    CorrelationIdDep,
    EventLogDep,
    LocationViewDep,
    NowDep,
    TariffViewDep,
    TokenViewDep,
    WriteMarksDep,
)
from api.errors import OcpiError, envelope
from api.pagination import PageRequestDep, paginate
from api.routing import RoutedCaller, RoutedCallerDep
from api.tariff_writes import ExactBody
from producers.cdrs import plan_receive, plan_reconciled, reconcile
from producers.log import EventLog
from producers.write_path import Origin, RefusedError
from projections.mongo.cdrs import CdrViewQuery
from projections.position import position_field
from projections.write_marks import WriteMarks
from schemas.events import Party, new_event_id
from schemas.events.cdrs import cdr_key
from schemas.events.tokens import token_key
from schemas.ocpi.cdrs import Cdr
from schemas.ocpi.common import fold
from schemas.ocpi.status_codes import OcpiStatus
from schemas.topics import CDRS

receiver = APIRouter(prefix="/ocpi/emsp/2.2.1/cdrs", tags=["ocpi: cdrs (receiver)"])
sender = APIRouter(prefix="/ocpi/cpo/2.2.1/cdrs", tags=["ocpi: cdrs (sender)"])

# mod_cdrs, CDR.id: CiString(39).
CdrIdPath = Annotated[str, Path(min_length=1, max_length=39, pattern=r"^[\x21-\x7E]+$")]

# A CdrLocation has no time zone (OCPI issue #517): when we do not hold the
# CPO's Location, reconciliation prices in UTC and says so.
FALLBACK_TIME_ZONE = "UTC"


def mark_key(key: str) -> str:
    return f"cdr:{key}"


@dataclass(frozen=True)
class CdrStore:
    """Where a CDR document is read from, waiting for our own acknowledged
    writes of it."""

    view: CdrViewQuery
    marks: WriteMarks
    timeout_s: float

    async def current(self, key: str) -> dict[str, Any] | None:
        wanted = await self.marks.marks(mark_key(key))
        deadline = time.monotonic() + self.timeout_s
        delay = 0.02
        while True:
            doc, positions = await asyncio.to_thread(self.view.read, key)
            if all(positions.get(position_field(CDRS.name, p), -1) >= o for p, o in wanted.items()):
                return doc
            if time.monotonic() >= deadline:
                raise OcpiError(
                    OcpiStatus.SERVER_ERROR,
                    "an earlier write of this CDR is still being recorded; retry",
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    async def append(self, event_log: EventLog, key: str, events: list[Any]) -> None:
        """Append, then mark; an OCPI 3000 when Kafka did not acknowledge."""
        try:
            positions = await event_log.append(events)
        except Exception as exc:
            raise OcpiError(
                OcpiStatus.SERVER_ERROR, "the CDR could not be recorded; retry"
            ) from exc
        try:
            for position in positions:
                await self.marks.mark(mark_key(key), position.partition, position.offset)
        except Exception as exc:
            raise OcpiError(
                OcpiStatus.SERVER_ERROR, "the CDR was recorded; retry to confirm"
            ) from exc


def _store(c: ContainerDep, view: CdrViewDep, marks: WriteMarksDep) -> CdrStore:
    return CdrStore(view, marks, c.settings.read_own_writes_timeout_s)


CdrStoreDep = Annotated[CdrStore, Depends(_store)]


def refused(exc: RefusedError) -> OcpiError:
    return OcpiError(exc.status, exc.message, exc.http_status)


# --- Receiver -----------------------------------------------------------------


@receiver.post("")
async def post_cdr(
    body: ExactBody,
    caller: RoutedCallerDep,
    c: ContainerDep,
    store: CdrStoreDep,
    tariffs: TariffViewDep,
    tokens: TokenViewDep,
    locations: LocationViewDep,
    event_log: EventLogDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    response: Response,
) -> dict[str, Any]:
    cdr = Cdr.model_validate(body)  # 2001 on bad input, before anything is read
    key = cdr_key(cdr.country_code, cdr.party_id, cdr.id)
    held = caller.owns(cdr.country_code, cdr.party_id) and await store.current(key) is not None
    token = cdr.cdr_token
    token_state, _ = await asyncio.to_thread(
        tokens.read, token_key(token.country_code, token.party_id, token.uid, token.type)
    )
    period_tariffs = {p.tariff_id for p in cdr.charging_periods if p.tariff_id}
    tariffs_held = {
        t
        for t in period_tariffs
        if await asyncio.to_thread(tariffs.get, cdr.country_code, cdr.party_id, t)
    }
    origin = Origin(
        Party(country_code=fold(cdr.country_code), party_id=fold(cdr.party_id)), correlation_id
    )
    us = Party(country_code=c.settings.party_country_code, party_id=c.settings.party_id)
    try:
        received = plan_receive(
            body,
            poster_owns=caller.owns,
            already_held=lambda _: held,
            us=us,
            token_held=lambda _: token_state is not None,
            tariff_held=lambda tariff_id: tariff_id in tariffs_held,
            origin=origin,
            event_id=new_event_id(),
            now=now,
        )
    except RefusedError as exc:
        raise refused(exc) from exc
    tolerance = c.settings.cdr_reconciliation_tolerance
    named = next((p.tariff_id for p in cdr.charging_periods if p.tariff_id), None)
    if named is None and cdr.tariffs:
        named = cdr.tariffs[0].id
    ours = (
        await asyncio.to_thread(tariffs.get, cdr.country_code, cdr.party_id, named)
        if named
        else None
    )
    where = await asyncio.to_thread(
        locations.get, cdr.country_code, cdr.party_id, cdr.cdr_location.id
    )
    zone = (where or {}).get("time_zone") or FALLBACK_TIME_ZONE
    result = reconcile(received.payload.cdr, ours, tolerance=tolerance, time_zone=zone)
    if where is None and result.expected is not None:
        note = f"time zone {FALLBACK_TIME_ZONE}: we hold no location {cdr.cdr_location.id!r}"
        result = replace(result, note=result.note or note)
    reconciled = plan_reconciled(received, result, tolerance=tolerance, now=now)
    await store.append(event_log, key, [received, reconciled])
    response.headers["Location"] = f"{c.settings.base_url}{receiver.prefix}/{cdr.id}"
    return envelope()


def _received_keys(caller: RoutedCaller, cdr_id: str) -> list[str]:
    return [cdr_key(r.country_code, r.party_id, cdr_id) for r in caller.partner.roles]


@receiver.get("/{cdr_id}")
async def get_received_cdr(
    cdr_id: CdrIdPath, caller: RoutedCallerDep, store: CdrStoreDep
) -> dict[str, Any]:
    """A CDR the caller posted, by the URL its POST was answered with."""
    for key in _received_keys(caller, cdr_id):
        doc = await store.current(key)
        if doc is not None and doc.get("role") == "received":
            return envelope(doc["cdr"])
    raise OcpiError(OcpiStatus.INVALID_PARAMETERS, f"unknown CDR {cdr_id!r}", 404)


# --- Sender -------------------------------------------------------------------


def _token_parties(caller: RoutedCaller) -> list[str]:
    return sorted({f"{fold(r.country_code)}/{fold(r.party_id)}" for r in caller.partner.roles})


@sender.get("")
def list_cdrs(
    request: Request,
    response: Response,
    caller: RoutedCallerDep,
    c: ContainerDep,
    view: CdrViewDep,
    params: PageRequestDep,
) -> dict[str, Any]:
    s = c.settings
    page = view.page(
        country_code=s.party_country_code,
        party_id=s.party_id,
        token_parties=_token_parties(caller),
        date_from=params.date_from,
        date_to=params.date_to,
        after=params.after,
        skip=params.offset,
        limit=params.limit,
    )
    paginate(
        request, response, c, params, returned=len(page.items), total=page.total, last=page.last
    )
    return envelope(page.items)
