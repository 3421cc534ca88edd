"""Ops read API over the MySQL operational tables."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import ChargerQueryDep
from api.errors import envelope
from schemas.ocpi.locations import EvseStatus

router = APIRouter(prefix="/ops", tags=["ops"])


@router.get("/chargers")
def list_chargers(
    chargers: ChargerQueryDep,
    status: EvseStatus | None = None,
    country_code: Annotated[str | None, Query(max_length=2)] = None,
    party_id: Annotated[str | None, Query(max_length=3)] = None,
    location_id: Annotated[str | None, Query(max_length=36)] = None,
    after: Annotated[str | None, Query(max_length=160, description="last evse_key seen")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    rows = chargers.list(
        status=status.value if status else None,
        country_code=country_code,
        party_id=party_id,
        location_id=location_id,
        after=after,
        limit=limit,
    )
    for row in rows:
        row["status_last_updated"] = row["status_last_updated"].isoformat() + "Z"
    return envelope(rows)
