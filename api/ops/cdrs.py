"""Ops API for CDRs.

* ``GET /ops/cdrs/{cdr_id}``: one of the CDRs we issued (as CPO).
* ``POST /ops/cdrs/{cdr_id}/credit``: issue the Credit CDR of one of ours
  (``total_cost`` negated, ``credit_reference_id``; mod_cdrs, "Credit
  CDRs"). The original is never edited; a CDR is credited at most once (the
  credit is decided through the write path under the Credit CDR's own key).
  The Credit CDR is a ``CdrIssued`` like any other and is pushed to the eMSP.
* ``GET /ops/cdrs/reconciliation?only_discrepancies=``: the CDRs partners
  sent us (as eMSP) with our recomputed price of each.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CdrViewDep, ContainerDep, CorrelationIdDep, NowDep
from api.errors import OcpiError, envelope
from api.ocpi.cdrs import CdrIdPath, CdrReads, CdrReadsDep
from api.ops.access import OPS_ACCESS
from api.writes import WritePathDep
from producers.cdrs import SLICE, CreditCdr, credit_key, decide_credit
from producers.write_path import Origin
from schemas.events import Party
from schemas.events.cdrs import cdr_key
from schemas.ocpi.common import fold
from schemas.ocpi.status_codes import OcpiStatus

Json = dict[str, Any]

router = APIRouter(prefix="/ops/cdrs", tags=["ops: cdrs"], dependencies=[OPS_ACCESS])


def _us(c: ContainerDep) -> Party:
    s = c.settings
    return Party(country_code=fold(s.party_country_code), party_id=fold(s.party_id))


async def _ours(reads: CdrReads, us: Party, cdr_id: str) -> Json | None:
    """The CDR we issued under ``cdr_id`` (the builder's fact, read from the
    view), None if none."""
    doc = await reads.get(cdr_key(us.country_code, us.party_id, cdr_id))
    if doc is None or doc.get("role") != "issued":
        return None
    cdr: Json = doc["cdr"]
    return cdr


@router.get("/reconciliation")
async def reconciliation_report(view: CdrViewDep, only_discrepancies: bool = False) -> Json:
    return envelope(await view.reconciliation(only_discrepancies=only_discrepancies))


@router.get("/{cdr_id}")
async def get_our_cdr(cdr_id: CdrIdPath, c: ContainerDep, reads: CdrReadsDep) -> Json:
    cdr = await _ours(reads, _us(c), cdr_id)
    if cdr is None:
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, f"we issued no CDR {cdr_id!r}", 404)
    return envelope(cdr)


@router.post("/{cdr_id}/credit")
async def credit_our_cdr(
    cdr_id: CdrIdPath,
    c: ContainerDep,
    reads: CdrReadsDep,
    w: WritePathDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
) -> Json:
    us = _us(c)
    command = CreditCdr(cdr_id, await _ours(reads, us, cdr_id), us, Origin(us, correlation_id))
    # Decided under the Credit CDR's key: two credits of one CDR are
    # decided one after the other, and the second finds the first.
    credit = await w.write(
        SLICE, credit_key(us, cdr_id), lambda state: decide_credit(state, command, now)
    )
    return envelope(credit)
