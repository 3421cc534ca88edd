"""Ops API for our own tariffs (we as CPO): publish, replace, withdraw, read.

``/ops/tariffs/{tariff_id}``. Every write becomes the same event a
partner's PUT or DELETE becomes, under our ``country_code``/``party_id``,
checked by the same decisions; the Sender interface serves the result.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.deps import ContainerDep, CorrelationIdDep, EventLogDep, NowDep
from api.ocpi.paths import TariffIdPath
from api.tariff_writes import (
    ExactBody,
    TariffStoreDep,
    get_tariff,
    no_patch,
    refused,
    write_tariff,
)
from producers.tariffs import authorize_write
from producers.write_path import Origin, RefusedError
from schemas.events import Party
from schemas.events.tariffs import TariffRef
from schemas.ocpi.common import fold

router = APIRouter(prefix="/ops/tariffs", tags=["ops: our tariffs"])


def _ours(c: ContainerDep, tariff_id: TariffIdPath) -> tuple[TariffRef, Party]:
    s = c.settings
    ref = TariffRef(country_code=s.party_country_code, party_id=s.party_id, tariff_id=tariff_id)
    us = Party(country_code=fold(s.party_country_code), party_id=fold(s.party_id))
    try:
        return ref, authorize_write(ref, [us])
    except RefusedError as exc:  # pragma: no cover - our own ids are always ours
        raise refused(exc) from exc


@router.get("/{tariff_id}")
async def get_our_tariff(
    c: ContainerDep, tariff_id: TariffIdPath, store: TariffStoreDep
) -> dict[str, Any]:
    ref, _ = _ours(c, tariff_id)
    return await get_tariff(store, ref)


@router.put("/{tariff_id}")
async def put_our_tariff(
    c: ContainerDep,
    tariff_id: TariffIdPath,
    body: ExactBody,
    store: TariffStoreDep,
    event_log: EventLogDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    response: Response,
) -> dict[str, Any]:
    ref, us = _ours(c, tariff_id)
    return await write_tariff(
        "PUT",
        ref,
        body,
        store=store,
        event_log=event_log,
        origin=Origin(us, correlation_id),
        now=now,
        response=response,
    )


@router.delete("/{tariff_id}")
async def delete_our_tariff(
    c: ContainerDep,
    tariff_id: TariffIdPath,
    store: TariffStoreDep,
    event_log: EventLogDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    response: Response,
) -> dict[str, Any]:
    ref, us = _ours(c, tariff_id)
    return await write_tariff(
        "DELETE",
        ref,
        None,
        store=store,
        event_log=event_log,
        origin=Origin(us, correlation_id),
        now=now,
        response=response,
    )


@router.patch("/{tariff_id}")
def patch_our_tariff() -> None:
    no_patch()
