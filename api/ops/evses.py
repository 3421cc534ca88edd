"""Ops read API: the EVSE rows of the MySQL operational hierarchy.

Keyset-paginated by ``evse_key``: when more EVSEs follow, the response
carries ``X-Next-After``, the value to pass as ``after`` for the next page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api.deps import OpsQueryDep
from api.errors import envelope
from api.ops.access import OPS_ACCESS
from schemas.ocpi.locations import EvseStatus

router = APIRouter(prefix="/ops", tags=["ops"], dependencies=[OPS_ACCESS])

NEXT_AFTER = "X-Next-After"
# A cursor is a key we made: upper-folded CiStrings, i.e. printable ASCII,
# compared byte for byte (ascii_bin). Other text could never be one, and
# MySQL refuses to compare it with an ASCII column (a collation error):
# refused here with 2001 (docs/adr/0027).
KEY_TEXT = r"^[\x20-\x7E]*$"


@router.get("/evses")
def list_evses(
    ops: OpsQueryDep,
    response: Response,
    status: EvseStatus | None = None,
    country_code: Annotated[str | None, Query(max_length=2)] = None,
    party_id: Annotated[str | None, Query(max_length=3)] = None,
    location_id: Annotated[str | None, Query(max_length=36)] = None,
    after: Annotated[
        str | None, Query(max_length=200, pattern=KEY_TEXT, description="last evse_key seen")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    page = ops.evses(
        status=status.value if status else None,
        country_code=country_code,
        party_id=party_id,
        location_id=location_id,
        after=after,
        limit=limit,
    )
    if page.next_after is not None:
        response.headers[NEXT_AFTER] = page.next_after
    return envelope(page.items)
