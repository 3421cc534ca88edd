"""Ops API for our own locations (we as CPO): create, change and read them.

``/ops/locations/{location_id}[/{evse_uid}[/{connector_id}]]``. Every write
becomes the same event a partner's PUT or PATCH becomes, under our
``country_code``/``party_id``; the Sender interface serves the result and
the pusher sends it to every registered eMSP. Bodies are OCPI objects and
PATCH fragments, checked exactly as at the OCPI receiver.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ContainerDep
from api.location_writes import object_routes
from api.ocpi.paths import LocationIdPath
from schemas.events import Party
from schemas.events.locations import LocationObjectRef
from schemas.ocpi.common import fold

router = APIRouter(prefix="/ops/locations", tags=["ops: our locations"])


def _ours(c: ContainerDep, location_id: LocationIdPath) -> LocationObjectRef:
    s = c.settings
    return LocationObjectRef(
        country_code=s.party_country_code, party_id=s.party_id, location_id=location_id
    )


def _nobody() -> None:
    return None


def _us(_: object, ref: LocationObjectRef) -> Party:
    return Party(country_code=fold(ref.country_code), party_id=fold(ref.party_id))


object_routes(router, _ours, prefix="/{location_id}", who=_nobody, authorize=_us, writes=True)
