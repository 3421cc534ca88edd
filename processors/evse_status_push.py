"""Push the status our own EVSEs show to every partner's Locations Receiver
(mod_locations, EVSE-level PATCH ``{status, last_updated}``).

The status a partner should see is the one the platform resolved from every
signal (``processors/evse_status.py``): what the owner stated, and what our
chargers report over OCPP (a fault, a transaction running, a reservation,
the connector free again). Those charger-driven changes are only on
``ocpi.evse-status.v1`` as ``EvseStatusResolved``, so the locations lanes,
which read ``ocpi.locations.v1``, never sent them: an eMSP kept seeing an
EVSE as it was first published. The lanes, ordering, retries and
at-least-once delivery are those of ``processors.push`` (ADR 0008), run with
``EVSE_STATUS_PUSH`` in consumer groups of their own per partner.
``plan_evse_status`` is pure.
"""

from __future__ import annotations

from urllib.parse import quote

from processors.push import PushModule, PushRequest, is_ours, location_whole
from schemas.events import EvseStatusResolved, Party
from schemas.events.locations import location_key
from schemas.ocpi.common import fold, format_ocpi_datetime
from schemas.ocpi.versions import ModuleId
from schemas.topics import EVSE_STATUS


def plan_evse_status(event: object, us: Party) -> PushRequest | None:
    """The EVSE status PATCH for one resolution of one of our own EVSEs; None
    for anything else (partners' EVSEs are never pushed), and for a
    resolution that only repeats what the owner's PUT or PATCH carrying it
    already told partners (the locations lane sent that write whole). A
    status the owner stated alone goes out here only (processors/push.py
    leaves it), so each status change reaches a partner once."""
    if not isinstance(event, EvseStatusResolved):
        return None
    p = event.payload
    if not is_ours(p.country_code, p.party_id, us):
        return None
    if p.cause == "object" and p.status == p.reported_status:
        return None
    ids = (p.country_code, p.party_id, p.location_id, p.evse_uid)
    return PushRequest(
        method="PATCH",
        path="".join("/" + quote(i, safe="") for i in ids),
        body={"status": p.status.value, "last_updated": format_ocpi_datetime(p.last_updated)},
        object_key="/".join(fold(i) for i in ids),
        last_updated=p.last_updated,
        correlation_id=event.correlation_id,
        event_id=str(event.event_id),
        # An EVSE the partner does not know gets the whole EVSE as a PUT
        # from the locations view, which folds these resolutions too
        # (docs/adr/0042).
        whole=location_whole(location_key(p.country_code, p.party_id, p.location_id), ids),
    )


EVSE_STATUS_PUSH = PushModule(
    name="evse_status",
    module_id=ModuleId.LOCATIONS.value,
    topic=EVSE_STATUS.name,
    event_types=frozenset(EVSE_STATUS.event_types),
    plan=plan_evse_status,
    group_suffix="evse-status-",
    ready_event="evse_status_push_lane_ready",
)
