"""``GET /ops/audit``: who did what through the ops API and the command line
(docs/adr/0031), newest first, from the audit view.

Filters: ``actor`` (``api_key:<id>``, ``account:<login>``, ``cli:<user>``),
``topic`` (the slice's topic, e.g. ``ocpi.locations.v1``), ``event_type``
(e.g. ``LocationObjectPut``), ``since`` (inclusive) and ``until``
(exclusive) on when the event was recorded. When more entries follow, the
answer carries ``X-Next-After``, the ``after`` of the next page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api.deps import AuditDep
from api.errors import envelope
from api.ops.access import OPS_ACCESS
from api.ops.evses import KEY_TEXT, NEXT_AFTER

router = APIRouter(prefix="/ops", tags=["ops: audit"], dependencies=[OPS_ACCESS])


@router.get("/audit")
async def list_audit(
    audit: AuditDep,
    response: Response,
    actor: Annotated[str | None, Query(max_length=120, pattern=KEY_TEXT)] = None,
    topic: Annotated[str | None, Query(max_length=120, pattern=KEY_TEXT)] = None,
    event_type: Annotated[str | None, Query(max_length=60, pattern=KEY_TEXT)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: Annotated[
        str | None, Query(max_length=200, pattern=KEY_TEXT, description="X-Next-After")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    page = await audit.page(
        actor=actor,
        topic=topic,
        event_type=event_type,
        since=since,
        until=until,
        after=after,
        limit=limit,
    )
    if page.next_after is not None:
        response.headers[NEXT_AFTER] = page.next_after
    return envelope(page.items)
