"""Ops API for our own tariffs (we as CPO): publish, replace, withdraw, read.

``/ops/tariffs/{tariff_id}``. Every write becomes the same event a
partner's PUT or DELETE becomes, under our ``country_code``/``party_id``,
through the same write path and decision; the Sender interface serves the
result. Bodies are OCPI Tariffs, every number kept exactly (docs/adr/0011).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.errors import envelope
from api.ocpi.paths import TariffIdPath
from api.ocpi.tariffs import OurTariff, TariffReadsDep, TariffWritesDep, no_patch
from api.ops.access import OPS_ACCESS
from api.writes import ExactBody, body_of, written
from schemas.ocpi.tariffs import Tariff

Json = dict[str, Any]

router = APIRouter(prefix="/ops/tariffs", tags=["ops: our tariffs"], dependencies=[OPS_ACCESS])

TARIFF = "/{tariff_id}"


@router.get(TARIFF)
async def get_our_tariff(tariff: OurTariff, reads: TariffReadsDep) -> Json:
    return envelope(await reads.get(tariff.ref))


@router.put(TARIFF, openapi_extra=body_of(Tariff))
async def put_our_tariff(
    body: ExactBody, tariff: OurTariff, writes: TariffWritesDep, response: Response
) -> Json:
    return written(response, await writes.put(tariff, body))


@router.delete(TARIFF)
async def delete_our_tariff(tariff: OurTariff, writes: TariffWritesDep, response: Response) -> Json:
    return written(response, await writes.delete(tariff))


@router.patch(TARIFF)
async def patch_our_tariff(tariff_id: TariffIdPath) -> None:
    # The path parameter is declared so the OpenAPI describes the path.
    no_patch()
