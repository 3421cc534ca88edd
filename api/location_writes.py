"""The one way an HTTP shell records a location write: read what we hold,
let ``producers.locations`` judge the write, append its event, answer.

Shared by the OCPI receiver (partners' locations) and the ops API (our own
locations, which the Sender interface serves and the pusher sends out).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response

from api.consistency import read_own_writes
from api.deps import (
    ContainerDep,
    CorrelationIdDep,
    EventLogDep,
    LocationViewDep,
    NowDep,
    WriteMarksDep,
)
from api.errors import OcpiError, envelope
from api.ocpi.paths import ConnectorIdPath, EvseUidPath
from producers.locations import Origin, Planned, RefusedError, find, plan_patch, plan_put
from producers.log import EventLog
from projections.mongo.locations import LocationViewQuery
from projections.write_marks import WriteMarks
from schemas.events import Party
from schemas.events.locations import LocationObjectRef
from schemas.ocpi.status_codes import OcpiStatus


def refused(exc: RefusedError) -> OcpiError:
    return OcpiError(exc.status, exc.message, exc.http_status)


@dataclass(frozen=True)
class Store:
    """Where a location is read from, and how long to wait for our own writes."""

    view: LocationViewQuery
    marks: WriteMarks
    timeout_s: float

    async def current(self, ref: LocationObjectRef) -> dict[str, Any] | None:
        return await read_own_writes(
            self.view,
            self.marks,
            ref.country_code,
            ref.party_id,
            ref.location_id,
            timeout_s=self.timeout_s,
        )


def _store(c: ContainerDep, view: LocationViewDep, marks: WriteMarksDep) -> Store:
    return Store(view, marks, c.settings.read_own_writes_timeout_s)


StoreDep = Annotated[Store, Depends(_store)]


async def get_object(store: Store, ref: LocationObjectRef) -> dict[str, Any]:
    current = await store.current(ref)
    try:
        return envelope(find(current, ref))
    except RefusedError as exc:
        raise refused(exc) from exc


async def write_object(
    method: str,
    ref: LocationObjectRef,
    body: Any,
    *,
    store: Store,
    event_log: EventLog,
    origin: Origin,
    now: datetime,
    response: Response,
) -> dict[str, Any]:
    """PUT or PATCH. A PUT that creates the object answers HTTP 201, any
    other success 200; both with OCPI 1000 and no data."""
    current = await store.current(ref)
    plan = plan_put if method == "PUT" else plan_patch
    try:
        planned: Planned = plan(ref, body, current, origin, now)
    except RefusedError as exc:
        raise refused(exc) from exc
    try:
        [position] = await event_log.append([planned.event])
    except Exception as exc:
        # Not acknowledged by Kafka: say so, so the sender retries (PUT and
        # PATCH are idempotent) rather than believing it was recorded. An
        # OCPI 3000, not an HTTP error: the request itself was fine.
        raise OcpiError(OcpiStatus.SERVER_ERROR, "the update could not be recorded; retry") from exc
    # Acknowledged: the next read of this location waits for it (a failure
    # here is answered with 3000 like a failed append, and the write is
    # idempotent to retry).
    try:
        await store.marks.mark(ref.location_key, position.partition, position.offset)
    except Exception as exc:
        raise OcpiError(
            OcpiStatus.SERVER_ERROR, "the update was recorded; retry to confirm"
        ) from exc
    response.status_code = 201 if planned.created else 200
    return envelope()


# --- routes at the three levels of a location ---------------------------------

Level = Callable[..., LocationObjectRef]
Authorize = Callable[[Any, LocationObjectRef], Party]


def levels(location: Level) -> tuple[Level, Level, Level]:
    """Dependencies naming a Location, one of its EVSEs, one of its
    Connectors, built on one that names the Location."""

    def evse(
        parent: Annotated[LocationObjectRef, Depends(location)], evse_uid: EvseUidPath
    ) -> LocationObjectRef:
        return parent.model_copy(update={"evse_uid": evse_uid})

    def connector(
        parent: Annotated[LocationObjectRef, Depends(evse)], connector_id: ConnectorIdPath
    ) -> LocationObjectRef:
        return parent.model_copy(update={"connector_id": connector_id})

    return location, evse, connector


def object_routes(
    router: APIRouter,
    location: Level,
    *,
    prefix: str,
    who: Callable[..., Any],
    authorize: Authorize,
    writes: bool,
) -> None:
    """GET (and, with ``writes``, PUT and PATCH) at ``prefix``,
    ``prefix/{evse_uid}`` and ``prefix/{evse_uid}/{connector_id}``.
    ``who`` is the dependency giving the caller; ``authorize(caller, ref)``
    returns the party the write is recorded for, or raises an OcpiError."""
    suffixes = ("", "/{evse_uid}", "/{evse_uid}/{connector_id}")
    for suffix, level in zip(suffixes, levels(location), strict=True):
        path = prefix + suffix
        router.add_api_route(path, _get(level, who, authorize), methods=["GET"])
        if writes:
            for method in ("PUT", "PATCH"):
                router.add_api_route(path, _write(method, level, who, authorize), methods=[method])


def _get(level: Level, who: Callable[..., Any], authorize: Authorize) -> Callable[..., Any]:
    async def get(
        ref: Annotated[LocationObjectRef, Depends(level)],
        caller: Annotated[Any, Depends(who)],
        store: StoreDep,
    ) -> dict[str, Any]:
        authorize(caller, ref)
        return await get_object(store, ref)

    return get


def _write(
    method: str, level: Level, who: Callable[..., Any], authorize: Authorize
) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def write(
        ref: Annotated[LocationObjectRef, Depends(level)],
        body: Annotated[Any, Body()],
        caller: Annotated[Any, Depends(who)],
        store: StoreDep,
        event_log: EventLogDep,
        now: NowDep,
        correlation_id: CorrelationIdDep,
        response: Response,
    ) -> dict[str, Any]:
        source = authorize(caller, ref)
        return await write_object(
            method,
            ref,
            body,
            store=store,
            event_log=event_log,
            origin=Origin(source, correlation_id),
            now=now,
            response=response,
        )

    return write
