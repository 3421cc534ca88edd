"""Ops read API: sites (buildings, i.e. OCPI Locations) of the MySQL
operational hierarchy, each with its EVSEs counted by status.

Keyset-paginated by ``location_key``, like ``/ops/evses``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api.deps import OpsQueryDep
from api.errors import envelope
from api.ops.access import OPS_ACCESS
from api.ops.evses import KEY_TEXT, NEXT_AFTER

router = APIRouter(prefix="/ops", tags=["ops"], dependencies=[OPS_ACCESS])


@router.get("/sites")
def list_sites(
    ops: OpsQueryDep,
    response: Response,
    country_code: Annotated[str | None, Query(max_length=2)] = None,
    party_id: Annotated[str | None, Query(max_length=3)] = None,
    after: Annotated[
        str | None, Query(max_length=160, pattern=KEY_TEXT, description="last location_key seen")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    page = ops.sites(country_code=country_code, party_id=party_id, after=after, limit=limit)
    if page.next_after is not None:
        response.headers[NEXT_AFTER] = page.next_after
    return envelope(page.items)
