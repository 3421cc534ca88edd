"""Locations module, both interfaces (mod_locations).

Receiver (``/ocpi/emsp/{version}/locations``, we as eMSP): partners PUT, PATCH
and GET their own Locations, EVSEs and Connectors under their
``country_code``/``party_id``. Sender (``/ocpi/cpo/{version}/locations``, we as
CPO): partners read our locations, a paginated list or one object.

One set of handlers for every OCPI version we offer (docs/adr/0045): a
body is converted to our model by the version's edge adapter before the
write path sees it, and what we serve is converted back (``api.auth.wire_of``).

Both need a registered partner's token (not TOKEN_A) and carry the routing
headers (api/routing.py). A partner may touch only objects of its own
parties: another party's ids are refused with 2001 and nothing is written.

Writes go through the one write path (producers/write_path.py): decided by
``producers.locations.decide`` against the location as of its latest event
in the log, answered once Kafka acknowledged. Reads serve the MongoDB view,
after it has applied the object's last write (api/consistency.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from api.auth import wire_of
from api.consistency import read_after, written
from api.deps import ContainerDep, LocationViewDep
from api.errors import OcpiError, envelope
from api.ocpi.paths import (
    ConnectorIdPath,
    CountryCodePath,
    EvseUidPath,
    LocationIdPath,
    PartyIdPath,
    VersionPath,
)
from api.pagination import PageRequestDep, our_page
from api.routing import RoutedCaller, RoutedCallerDep
from api.writes import JsonBody, WritePathDep, body_of
from api.writes import written as answered
from producers.locations import SLICE, PatchObject, PutObject, decide, find
from producers.write_path import Origin, WritePath
from projections.mongo.locations import LocationViewQuery
from schemas.events import Party
from schemas.events.locations import LocationObjectRef
from schemas.ocpi.common import fold
from schemas.ocpi.locations import Connector, Evse, Location
from schemas.ocpi.patch import patch_model
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.wire import Core, Kind, WireVersion
from schemas.topics import LOCATIONS

Json = dict[str, Any]

receiver = APIRouter(prefix="/ocpi/emsp/{version}/locations", tags=["ocpi: locations (receiver)"])
sender = APIRouter(prefix="/ocpi/cpo/{version}/locations", tags=["ocpi: locations (sender)"])

_CORE = Core()


def kind_of(ref: LocationObjectRef) -> Kind:
    """Which object of a location a reference names."""
    if ref.connector_id is not None:
        return Kind.CONNECTOR
    return Kind.EVSE if ref.evse_uid is not None else Kind.LOCATION


# --- writing and reading one object (shared with the ops API) -------------------------


@dataclass(frozen=True)
class LocationWrites:
    """PUT and PATCH of one object of a location, recorded for the location's
    own party; each answers whether a PUT created the object."""

    write_path: WritePath
    correlation_id: str
    now: datetime
    # The OCPI version the body is in (our model's unless a partner's route says).
    wire: WireVersion = _CORE

    async def put(self, ref: LocationObjectRef, body: Any) -> bool:
        return await self._record(PutObject(ref, self._ours(ref, body, False), self._origin(ref)))

    async def patch(self, ref: LocationObjectRef, body: Any) -> bool:
        return await self._record(PatchObject(ref, self._ours(ref, body, True), self._origin(ref)))

    def _ours(self, ref: LocationObjectRef, body: Any, patch: bool) -> Any:
        owner = (ref.country_code, ref.party_id)
        return self.wire.object_in(kind_of(ref), body, owner=owner, patch=patch, now=self.now)

    def _origin(self, ref: LocationObjectRef) -> Origin:
        party = Party(country_code=fold(ref.country_code), party_id=fold(ref.party_id))
        return Origin(party, self.correlation_id)

    async def _record(self, command: PutObject | PatchObject) -> bool:
        return await self.write_path.write(
            SLICE, command.ref.location_key, lambda state: decide(state, command, self.now)
        )


async def _writes(request: Request) -> LocationWrites:
    # One dependency built from the request (not three): FastAPI's cost is
    # per dependency, and this is the path of every partner's PATCH.
    return LocationWrites(
        request.app.state.write_path,
        request.state.correlation_id,
        datetime.now(UTC),
        wire_of(request),
    )


LocationWritesDep = Annotated[LocationWrites, Depends(_writes)]


@dataclass(frozen=True)
class LocationReads:
    """One object of a location as the view serves it, once the view holds
    the location's last acknowledged write."""

    view: LocationViewQuery
    write_path: WritePath
    timeout_s: float
    wire: WireVersion = _CORE

    async def get(self, ref: LocationObjectRef) -> Json:
        key = ref.location_key
        current = await read_after(
            lambda: self.view.read(key),
            lambda: self.view.positions(key),
            LOCATIONS.name,
            await written(self.write_path, SLICE, key),
            timeout_s=self.timeout_s,
            what="location",
        )
        return self.wire.object_out(kind_of(ref), find(current, ref), patch=False)


async def _reads(
    request: Request, c: ContainerDep, view: LocationViewDep, w: WritePathDep
) -> LocationReads:
    return LocationReads(view, w, c.settings.read_own_writes_timeout_s, wire_of(request))


LocationReadsDep = Annotated[LocationReads, Depends(_reads)]


# --- Receiver: a partner's own locations --------------------------------------------

LOCATION = "/{country_code}/{party_id}/{location_id}"
EVSE = LOCATION + "/{evse_uid}"
CONNECTOR = EVSE + "/{connector_id}"


def _theirs(caller: RoutedCaller, country_code: str, party_id: str) -> None:
    """A partner reads and writes only its own parties' objects."""
    if not caller.owns(country_code, party_id):
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS,
            f"{country_code}/{party_id} is not a party registered with this token; "
            "a partner may only write and read its own locations",
        )


# Each level takes its path parameters directly (not through the level
# above): one dependency less per level on every partner's PATCH.
async def _their_location(
    version: VersionPath,
    caller: RoutedCallerDep,
    country_code: CountryCodePath,
    party_id: PartyIdPath,
    location_id: LocationIdPath,
) -> LocationObjectRef:
    _theirs(caller, country_code, party_id)
    return LocationObjectRef(country_code=country_code, party_id=party_id, location_id=location_id)


TheirLocation = Annotated[LocationObjectRef, Depends(_their_location)]


async def _their_evse(
    version: VersionPath,
    caller: RoutedCallerDep,
    country_code: CountryCodePath,
    party_id: PartyIdPath,
    location_id: LocationIdPath,
    evse_uid: EvseUidPath,
) -> LocationObjectRef:
    _theirs(caller, country_code, party_id)
    return LocationObjectRef(
        country_code=country_code, party_id=party_id, location_id=location_id, evse_uid=evse_uid
    )


TheirEvse = Annotated[LocationObjectRef, Depends(_their_evse)]


async def _their_connector(
    version: VersionPath,
    caller: RoutedCallerDep,
    country_code: CountryCodePath,
    party_id: PartyIdPath,
    location_id: LocationIdPath,
    evse_uid: EvseUidPath,
    connector_id: ConnectorIdPath,
) -> LocationObjectRef:
    _theirs(caller, country_code, party_id)
    return LocationObjectRef(
        country_code=country_code,
        party_id=party_id,
        location_id=location_id,
        evse_uid=evse_uid,
        connector_id=connector_id,
    )


TheirConnector = Annotated[LocationObjectRef, Depends(_their_connector)]


@receiver.get(LOCATION)
async def get_their_location(ref: TheirLocation, reads: LocationReadsDep) -> Json:
    return envelope(await reads.get(ref))


@receiver.get(EVSE)
async def get_their_evse(ref: TheirEvse, reads: LocationReadsDep) -> Json:
    return envelope(await reads.get(ref))


@receiver.get(CONNECTOR)
async def get_their_connector(ref: TheirConnector, reads: LocationReadsDep) -> Json:
    return envelope(await reads.get(ref))


@receiver.put(LOCATION, openapi_extra=body_of(Location))
async def put_their_location(
    ref: TheirLocation, body: JsonBody, writes: LocationWritesDep, response: Response
) -> Json:
    return answered(response, await writes.put(ref, body))


@receiver.put(EVSE, openapi_extra=body_of(Evse))
async def put_their_evse(
    ref: TheirEvse, body: JsonBody, writes: LocationWritesDep, response: Response
) -> Json:
    return answered(response, await writes.put(ref, body))


@receiver.put(CONNECTOR, openapi_extra=body_of(Connector))
async def put_their_connector(
    ref: TheirConnector, body: JsonBody, writes: LocationWritesDep, response: Response
) -> Json:
    return answered(response, await writes.put(ref, body))


@receiver.patch(LOCATION, openapi_extra=body_of(patch_model(Location)))
async def patch_their_location(
    ref: TheirLocation, body: JsonBody, writes: LocationWritesDep, response: Response
) -> Json:
    return answered(response, await writes.patch(ref, body))


@receiver.patch(EVSE, openapi_extra=body_of(patch_model(Evse)))
async def patch_their_evse(
    ref: TheirEvse, body: JsonBody, writes: LocationWritesDep, response: Response
) -> Json:
    return answered(response, await writes.patch(ref, body))


@receiver.patch(CONNECTOR, openapi_extra=body_of(patch_model(Connector)))
async def patch_their_connector(
    ref: TheirConnector, body: JsonBody, writes: LocationWritesDep, response: Response
) -> Json:
    return answered(response, await writes.patch(ref, body))


# --- Sender: our locations ------------------------------------------------------------


@sender.get("")
async def list_our_locations(
    version: VersionPath,
    request: Request,
    response: Response,
    _: RoutedCallerDep,
    c: ContainerDep,
    view: LocationViewDep,
    params: PageRequestDep,
) -> Json:
    items = await our_page(request, response, c, params, view.page)
    wire = wire_of(request)
    return envelope([wire.object_out(Kind.LOCATION, item, patch=False) for item in items])


async def our_location(c: ContainerDep, location_id: LocationIdPath) -> LocationObjectRef:
    """An object of one of our own locations (the Sender, the ops API)."""
    s = c.settings
    return LocationObjectRef(
        country_code=s.party_country_code, party_id=s.party_id, location_id=location_id
    )


OurLocation = Annotated[LocationObjectRef, Depends(our_location)]


async def our_evse(parent: OurLocation, evse_uid: EvseUidPath) -> LocationObjectRef:
    return parent.model_copy(update={"evse_uid": evse_uid})


OurEvse = Annotated[LocationObjectRef, Depends(our_evse)]


async def our_connector(parent: OurEvse, connector_id: ConnectorIdPath) -> LocationObjectRef:
    return parent.model_copy(update={"connector_id": connector_id})


OurConnector = Annotated[LocationObjectRef, Depends(our_connector)]


@sender.get("/{location_id}")
async def get_our_location(
    version: VersionPath, ref: OurLocation, _: RoutedCallerDep, reads: LocationReadsDep
) -> Json:
    return envelope(await reads.get(ref))


@sender.get("/{location_id}/{evse_uid}")
async def get_our_evse(
    version: VersionPath, ref: OurEvse, _: RoutedCallerDep, reads: LocationReadsDep
) -> Json:
    return envelope(await reads.get(ref))


@sender.get("/{location_id}/{evse_uid}/{connector_id}")
async def get_our_connector(
    version: VersionPath, ref: OurConnector, _: RoutedCallerDep, reads: LocationReadsDep
) -> Json:
    return envelope(await reads.get(ref))
