"""Tariffs module, both interfaces (mod_tariffs).

Receiver (``/ocpi/emsp/2.2.1/tariffs``, we as eMSP): partners GET, PUT and
DELETE their own Tariffs under their ``country_code``/``party_id``; there is
no PATCH in this module (answered with an OCPI error, HTTP 405). Sender
(``/ocpi/cpo/2.2.1/tariffs``, we as CPO): partners read the paginated list
of our tariffs.

Both need a registered partner's token and carry the routing headers
(api/routing.py). Another party's ids are refused with 2001 and nothing is
written.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.deps import ContainerDep, CorrelationIdDep, EventLogDep, NowDep, TariffViewDep
from api.errors import envelope
from api.ocpi.paths import CountryCodePath, PartyIdPath, TariffIdPath
from api.pagination import PageRequestDep, paginate
from api.routing import RoutedCaller, RoutedCallerDep
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

receiver = APIRouter(prefix="/ocpi/emsp/2.2.1/tariffs", tags=["ocpi: tariffs (receiver)"])
sender = APIRouter(prefix="/ocpi/cpo/2.2.1/tariffs", tags=["ocpi: tariffs (sender)"])

_PATH = "/{country_code}/{party_id}/{tariff_id}"


def _ref(country_code: str, party_id: str, tariff_id: str) -> TariffRef:
    return TariffRef(country_code=country_code, party_id=party_id, tariff_id=tariff_id)


def _own(caller: RoutedCaller, ref: TariffRef) -> Party:
    parties = [
        Party(country_code=fold(r.country_code), party_id=fold(r.party_id))
        for r in caller.partner.roles
    ]
    try:
        return authorize_write(ref, parties)
    except RefusedError as exc:
        raise refused(exc) from exc


@receiver.get(_PATH)
async def get_partner_tariff(
    country_code: CountryCodePath,
    party_id: PartyIdPath,
    tariff_id: TariffIdPath,
    caller: RoutedCallerDep,
    store: TariffStoreDep,
) -> dict[str, Any]:
    ref = _ref(country_code, party_id, tariff_id)
    _own(caller, ref)
    return await get_tariff(store, ref)


@receiver.put(_PATH)
async def put_partner_tariff(
    country_code: CountryCodePath,
    party_id: PartyIdPath,
    tariff_id: TariffIdPath,
    caller: RoutedCallerDep,
    body: ExactBody,
    store: TariffStoreDep,
    event_log: EventLogDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    response: Response,
) -> dict[str, Any]:
    ref = _ref(country_code, party_id, tariff_id)
    source = _own(caller, ref)
    return await write_tariff(
        "PUT",
        ref,
        body,
        store=store,
        event_log=event_log,
        origin=Origin(source, correlation_id),
        now=now,
        response=response,
    )


@receiver.delete(_PATH)
async def delete_partner_tariff(
    country_code: CountryCodePath,
    party_id: PartyIdPath,
    tariff_id: TariffIdPath,
    caller: RoutedCallerDep,
    store: TariffStoreDep,
    event_log: EventLogDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    response: Response,
) -> dict[str, Any]:
    ref = _ref(country_code, party_id, tariff_id)
    source = _own(caller, ref)
    return await write_tariff(
        "DELETE",
        ref,
        None,
        store=store,
        event_log=event_log,
        origin=Origin(source, correlation_id),
        now=now,
        response=response,
    )


@receiver.patch(_PATH)
def patch_partner_tariff(_: RoutedCallerDep) -> None:
    no_patch()


# --- Sender -----------------------------------------------------------------


@sender.get("")
def list_tariffs(
    request: Request,
    response: Response,
    _: RoutedCallerDep,
    c: ContainerDep,
    view: TariffViewDep,
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
