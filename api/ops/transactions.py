"""Charger simulator: record what one of our chargers reports about a
charging transaction, as the OCPP gateway will (``charger.transactions.v1``).

``POST /ops/chargers/transactions/{started|authorized|meter-values|stopped}``
with the fact's fields (``location_id``, ``evse_uid``, ``connector_id``,
``session_id``, ``transaction_id``, ``at`` and the kind's own);
``.../{reservation-made|reservation-ended}`` with ``reservation_id`` instead
of ``transaction_id`` (EVSE and connector may be ``#NA``). The charger
must be one of our connectors that we hold: else OCPI 2003, nothing written.
The session lifecycle processor turns the facts into our OCPI Sessions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Request

from api.deps import ContainerDep, CorrelationIdDep, NowDep
from api.errors import envelope
from api.ops.access import OPS_ACCESS
from api.writes import WritePathDep, checked
from producers import locations
from producers.charger_transactions import plan_fact
from producers.write_path import Origin
from schemas.events import Party
from schemas.events.locations import location_key
from schemas.ocpi.limits import CHARGER_STAMPS

router = APIRouter(
    prefix="/ops/chargers/transactions", tags=["ops: charger simulator"], dependencies=[OPS_ACCESS]
)

Kind = Literal[
    "started", "authorized", "meter-values", "stopped", "reservation-made", "reservation-ended"
]


@router.post("/{kind}")
async def record_fact(
    kind: Kind,
    body: Annotated[Any, Body()],
    request: Request,
    c: ContainerDep,
    write_path: WritePathDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
) -> dict[str, Any]:
    s = c.settings
    # A fact's ``at`` becomes our session's last_updated (docs/adr/0027).
    checked(request, body, CHARGER_STAMPS)
    location_id = body.get("location_id") if isinstance(body, dict) else None
    location = None
    if isinstance(location_id, str) and location_id:
        key = location_key(s.party_country_code, s.party_id, location_id)
        held = await write_path.state(locations.SLICE, key)
        location = locations.asserted(held)
    us = Party(country_code=s.party_country_code, party_id=s.party_id)
    event = plan_fact(kind, body, location, Origin(us, correlation_id), now)
    await write_path.record([event])
    return envelope({"event_id": str(event.event_id)})
