"""Locations module, both interfaces (mod_locations).

Receiver (``/ocpi/emsp/2.2.1/locations``, we as eMSP): partners PUT, PATCH
and GET their own Locations, EVSEs and Connectors under their
``country_code``/``party_id``. Sender (``/ocpi/cpo/2.2.1/locations``, we as
CPO): partners read our locations, a paginated list or one object.

Both need a registered partner's token (not TOKEN_A) and carry the routing
headers (api/routing.py). A partner may touch only objects of its own
parties: another party's ids are refused with 2001 and nothing is written.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.deps import ContainerDep, LocationViewDep
from api.errors import OcpiError, envelope
from api.location_writes import object_routes
from api.ocpi.paths import CountryCodePath, LocationIdPath, PartyIdPath
from api.pagination import PageRequestDep, paginate
from api.routing import RoutedCaller, RoutedCallerDep, routed_caller
from schemas.events import Party
from schemas.events.locations import LocationObjectRef
from schemas.ocpi.common import fold
from schemas.ocpi.status_codes import OcpiStatus

receiver = APIRouter(prefix="/ocpi/emsp/2.2.1/locations", tags=["ocpi: locations (receiver)"])
sender = APIRouter(prefix="/ocpi/cpo/2.2.1/locations", tags=["ocpi: locations (sender)"])


def _location(
    country_code: CountryCodePath, party_id: PartyIdPath, location_id: LocationIdPath
) -> LocationObjectRef:
    return LocationObjectRef(country_code=country_code, party_id=party_id, location_id=location_id)


def _own(caller: RoutedCaller, ref: LocationObjectRef) -> Party:
    """The Receiver: a partner reads and writes only its own parties' objects."""
    if not caller.owns(ref.country_code, ref.party_id):
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS,
            f"{ref.country_code}/{ref.party_id} is not a party registered with this token; "
            "a partner may only write and read its own locations",
        )
    return Party(country_code=fold(ref.country_code), party_id=fold(ref.party_id))


object_routes(
    receiver,
    _location,
    prefix="/{country_code}/{party_id}/{location_id}",
    who=routed_caller,
    authorize=_own,
    writes=True,
)


# --- Sender -----------------------------------------------------------------


@sender.get("")
def list_locations(
    request: Request,
    response: Response,
    _: RoutedCallerDep,
    c: ContainerDep,
    view: LocationViewDep,
    params: PageRequestDep,
) -> dict[str, Any]:
    s = c.settings
    page = view.page(
        country_code=s.party_country_code,
        party_id=s.party_id,
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


def _ours(c: ContainerDep, location_id: LocationIdPath) -> LocationObjectRef:
    s = c.settings
    return LocationObjectRef(
        country_code=s.party_country_code, party_id=s.party_id, location_id=location_id
    )


def _anyone_registered(_: RoutedCaller, ref: LocationObjectRef) -> Party:
    return Party(country_code=fold(ref.country_code), party_id=fold(ref.party_id))


object_routes(
    sender,
    _ours,
    prefix="/{location_id}",
    who=routed_caller,
    authorize=_anyone_registered,
    writes=False,
)
