"""The one way an HTTP shell records a tariff write: read what we hold
(waiting for our own acknowledged writes), let ``producers.tariffs`` judge
the write, append its event, answer.

Shared by the OCPI receiver (partners' tariffs) and the ops API (our own
tariffs, which the Sender interface serves). Bodies are decoded here with
``loads_exact`` so that every number reaches the Tariff model digit for
digit (FastAPI's own body parsing would read them as binary floats).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request, Response

from api.consistency import read_after
from api.deps import ContainerDep, TariffViewDep, WriteMarksDep
from api.errors import OcpiError, envelope
from producers.log import EventLog
from producers.tariffs import PlannedTariff, find, plan_delete, plan_put
from producers.write_path import Origin, RefusedError
from projections.mongo.tariffs import TariffViewQuery
from projections.write_marks import WriteMarks
from schemas.events.tariffs import TariffRef
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.tariffs import loads_exact
from schemas.topics import TARIFFS


def refused(exc: RefusedError) -> OcpiError:
    return OcpiError(exc.status, exc.message, exc.http_status)


def _mark_key(ref: TariffRef) -> str:
    # Marks share Redis with the locations' ones: keep the key spaces apart.
    return f"tariff:{ref.tariff_key}"


@dataclass(frozen=True)
class TariffStore:
    """Where a tariff is read from, and how long to wait for our own writes
    (the read-your-writes rule of docs/adr/0009, for tariffs)."""

    view: TariffViewQuery
    marks: WriteMarks
    timeout_s: float

    async def current(self, ref: TariffRef) -> dict[str, Any] | None:
        key = ref.tariff_key
        return await read_after(
            lambda: asyncio.to_thread(self.view.read, key),
            lambda: _positions(self.view, key),
            TARIFFS.name,
            await self.marks.marks(_mark_key(ref)),
            timeout_s=self.timeout_s,
            what="tariff",
        )

    async def mark(self, ref: TariffRef, partition: int, offset: int) -> None:
        await self.marks.mark(_mark_key(ref), partition, offset)


def _store(c: ContainerDep, view: TariffViewDep, marks: WriteMarksDep) -> TariffStore:
    return TariffStore(view, marks, c.settings.read_own_writes_timeout_s)


TariffStoreDep = Annotated[TariffStore, Depends(_store)]


async def exact_body(request: Request) -> Any:
    """The request body as JSON, numbers as Decimals."""
    raw = await request.body()
    try:
        return loads_exact(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        # status_codes: a message that is not valid JSON gets HTTP 400.
        raise OcpiError(OcpiStatus.CLIENT_ERROR, "request body is not valid JSON", 400) from exc


ExactBody = Annotated[Any, Depends(exact_body)]


async def get_tariff(store: TariffStore, ref: TariffRef) -> dict[str, Any]:
    try:
        return envelope(find(await store.current(ref), ref))
    except RefusedError as exc:
        raise refused(exc) from exc


async def write_tariff(
    method: str,
    ref: TariffRef,
    body: Any,
    *,
    store: TariffStore,
    event_log: EventLog,
    origin: Origin,
    now: datetime,
    response: Response,
) -> dict[str, Any]:
    """PUT (``body`` given) or DELETE. A PUT that creates the tariff answers
    HTTP 201, any other success 200; both OCPI 1000 without data. Success
    only once Kafka acknowledged the event."""
    current = await store.current(ref)
    try:
        planned: PlannedTariff = (
            plan_put(ref, body, current, origin, now)
            if method == "PUT"
            else plan_delete(ref, current, origin, now)
        )
    except RefusedError as exc:
        raise refused(exc) from exc
    try:
        [position] = await event_log.append([planned.event])
    except Exception as exc:
        raise OcpiError(OcpiStatus.SERVER_ERROR, "the update could not be recorded; retry") from exc
    try:
        await store.mark(ref, position.partition, position.offset)
    except Exception as exc:
        raise OcpiError(
            OcpiStatus.SERVER_ERROR, "the update was recorded; retry to confirm"
        ) from exc
    response.status_code = 201 if planned.created else 200
    return envelope()


def no_patch() -> None:
    """mod_tariffs has no PATCH: a Tariff is always replaced whole."""
    raise OcpiError(
        OcpiStatus.CLIENT_ERROR,
        "Tariffs have no PATCH in OCPI 2.2.1; PUT the whole Tariff",
        405,
        headers={"Allow": "GET, PUT, DELETE"},
    )


async def _positions(view: Any, key: str) -> dict[str, int]:
    """The positions a view has applied to one document (its read's second half)."""
    _, positions = await asyncio.to_thread(view.read, key)
    held: dict[str, int] = positions
    return held
