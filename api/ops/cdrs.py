"""Ops API for CDRs.

* ``GET /ops/cdrs/{cdr_id}``: one of the CDRs we issued (as CPO).
* ``POST /ops/cdrs/{cdr_id}/credit``: issue the Credit CDR of one of ours
  (``total_cost`` negated, ``credit_reference_id``; mod_cdrs, "Credit
  CDRs"). The original is never edited; a CDR is credited at most once. The
  Credit CDR is a ``CdrIssued`` like any other and is pushed to the eMSP.
* ``GET /ops/cdrs/reconciliation?only_discrepancies=``: the CDRs partners
  sent us (as eMSP) with our recomputed price of each.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CdrViewDep, ContainerDep, CorrelationIdDep, EventLogDep, NowDep
from api.errors import OcpiError, envelope
from api.ocpi.cdrs import CdrIdPath, CdrStoreDep, refused
from producers.cdrs import CREDIT_SUFFIX, plan_credit
from producers.write_path import Origin, RefusedError
from schemas.events import Party, new_event_id
from schemas.events.cdrs import cdr_key
from schemas.ocpi.cdrs import NORMAL_CDR_ID_MAX
from schemas.ocpi.common import fold
from schemas.ocpi.status_codes import OcpiStatus

router = APIRouter(prefix="/ops/cdrs", tags=["ops: cdrs"])


def _us(c: ContainerDep) -> Party:
    s = c.settings
    return Party(country_code=fold(s.party_country_code), party_id=fold(s.party_id))


@router.get("/reconciliation")
def reconciliation_report(view: CdrViewDep, only_discrepancies: bool = False) -> dict[str, Any]:
    return envelope(view.reconciliation(only_discrepancies=only_discrepancies))


@router.get("/{cdr_id}")
async def get_our_cdr(cdr_id: CdrIdPath, c: ContainerDep, store: CdrStoreDep) -> dict[str, Any]:
    us = _us(c)
    doc = await store.current(cdr_key(us.country_code, us.party_id, cdr_id))
    if doc is None or doc.get("role") != "issued":
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, f"we issued no CDR {cdr_id!r}", 404)
    return envelope(doc["cdr"])


@router.post("/{cdr_id}/credit")
async def credit_our_cdr(
    cdr_id: CdrIdPath,
    c: ContainerDep,
    store: CdrStoreDep,
    event_log: EventLogDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
) -> dict[str, Any]:
    us = _us(c)
    original = await store.current(cdr_key(us.country_code, us.party_id, cdr_id))
    if original is not None and original.get("role") != "issued":
        original = None
    credit_id = cdr_id[:NORMAL_CDR_ID_MAX] + CREDIT_SUFFIX
    credit_key = cdr_key(us.country_code, us.party_id, credit_id)
    existing = await store.current(credit_key)
    try:
        event = plan_credit(
            None if original is None else original["cdr"],
            None if existing is None else existing["cdr"],
            us=us,
            cdr_id=cdr_id,
            origin=Origin(us, correlation_id),
            event_id=new_event_id(),
            now=now,
        )
    except RefusedError as exc:
        raise refused(exc) from exc
    await store.append(event_log, credit_key, [event])
    return envelope(event.payload.cdr)
