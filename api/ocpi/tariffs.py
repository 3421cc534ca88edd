"""Tariffs module, both interfaces (mod_tariffs).

Receiver (``/ocpi/emsp/{version}/tariffs``, we as eMSP): partners GET, PUT and
DELETE their own Tariffs under their ``country_code``/``party_id``; there is
no PATCH in this module (answered with an OCPI error, HTTP 405). Sender
(``/ocpi/cpo/{version}/tariffs``, we as CPO): partners read the paginated list
of our tariffs.

Both need a registered partner's token and carry the routing headers
(api/routing.py). Another party's ids are refused with 2001 and nothing is
written.

Writes go through the one write path (producers/write_path.py,
docs/adr/0022): decided by ``producers.tariffs.decide`` against the tariff
as of its latest event in the log, answered once Kafka acknowledged. Bodies
are decoded with exact numbers (``ExactBody``), so every price reaches the
Tariff model digit for digit. Reads serve the MongoDB view once it has
applied the tariff's last write (api/consistency.py).

One set of handlers for every OCPI version we offer (docs/adr/0045): a
2.1.1 Tariff is converted to our model at the edge and back. 2.1.1 has a
Tariff PATCH; we take Tariffs whole in every version (405).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, Depends, Request, Response

from api.auth import wire_of
from api.consistency import read_written
from api.deps import ContainerDep, CorrelationIdDep, NowDep, TariffViewDep
from api.errors import OcpiError, envelope
from api.ocpi.paths import CountryCodePath, PartyIdPath, TariffIdPath, VersionPath
from api.pagination import PageRequestDep, our_page
from api.routing import RoutedCallerDep
from api.writes import ExactBody, WritePathDep, body_of
from api.writes import written as answered
from producers.tariffs import SLICE, DeleteTariff, PutTariff, authorize_write, decide, find
from producers.write_path import Origin, WritePath
from projections.mongo.tariffs import TariffViewQuery
from schemas.events import Party
from schemas.events.tariffs import TariffRef
from schemas.ocpi.common import fold
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.tariffs import Tariff
from schemas.ocpi.wire import Core, Kind, WireVersion

Json = dict[str, Any]

receiver = APIRouter(prefix="/ocpi/emsp/{version}/tariffs", tags=["ocpi: tariffs (receiver)"])
sender = APIRouter(prefix="/ocpi/cpo/{version}/tariffs", tags=["ocpi: tariffs (sender)"])

_CORE = Core()


# --- writing and reading one tariff (shared with the ops API) ------------------------


@dataclass(frozen=True)
class Owned:
    """A tariff and the party a write of it is recorded for (its owner)."""

    ref: TariffRef
    owner: Party


@dataclass(frozen=True)
class TariffWrites:
    """PUT and DELETE of one tariff; each answers whether a PUT created it."""

    write_path: WritePath
    correlation_id: str
    now: datetime
    # The OCPI version the body is in (our model's unless a partner's route says).
    wire: WireVersion = _CORE

    async def put(self, tariff: Owned, body: Any) -> bool:
        owner = (tariff.ref.country_code, tariff.ref.party_id)
        ours = self.wire.object_in(Kind.TARIFF, body, owner=owner, patch=False, now=self.now)
        return await self._record(PutTariff(tariff.ref, ours, self._origin(tariff)))

    async def delete(self, tariff: Owned) -> bool:
        return await self._record(DeleteTariff(tariff.ref, self._origin(tariff)))

    def _origin(self, tariff: Owned) -> Origin:
        return Origin(tariff.owner, self.correlation_id)

    async def _record(self, command: PutTariff | DeleteTariff) -> bool:
        return await self.write_path.write(
            SLICE, command.ref.tariff_key, lambda state: decide(state, command, self.now)
        )


def _writes(
    request: Request, w: WritePathDep, correlation_id: CorrelationIdDep, now: NowDep
) -> TariffWrites:
    return TariffWrites(w, correlation_id, now, wire_of(request))


TariffWritesDep = Annotated[TariffWrites, Depends(_writes)]


@dataclass(frozen=True)
class TariffReads:
    """One tariff as the view serves it, once the view holds the tariff's
    last acknowledged write."""

    view: TariffViewQuery
    write_path: WritePath
    timeout_s: float
    wire: WireVersion = _CORE

    async def get(self, ref: TariffRef) -> Json:
        current = await read_written(
            self.view,
            self.write_path,
            SLICE,
            ref.tariff_key,
            timeout_s=self.timeout_s,
            what="tariff",
        )
        return self.wire.object_out(Kind.TARIFF, find(current, ref), patch=False)


def _reads(request: Request, c: ContainerDep, view: TariffViewDep, w: WritePathDep) -> TariffReads:
    return TariffReads(view, w, c.settings.read_own_writes_timeout_s, wire_of(request))


TariffReadsDep = Annotated[TariffReads, Depends(_reads)]


def no_patch() -> NoReturn:
    """mod_tariffs has no PATCH: a Tariff is always replaced whole."""
    raise OcpiError(
        OcpiStatus.CLIENT_ERROR,
        "Tariffs have no PATCH in OCPI 2.2.1 (and we take them whole in 2.1.1 too); "
        "PUT the whole Tariff",
        405,
        headers={"Allow": "GET, PUT, DELETE"},
    )


# --- Receiver: a partner's own tariffs ------------------------------------------------

TARIFF = "/{country_code}/{party_id}/{tariff_id}"


def _their_tariff(
    version: VersionPath,
    caller: RoutedCallerDep,
    country_code: CountryCodePath,
    party_id: PartyIdPath,
    tariff_id: TariffIdPath,
) -> Owned:
    """A partner reads and writes only its own parties' tariffs (2001 otherwise)."""
    ref = TariffRef(country_code=country_code, party_id=party_id, tariff_id=tariff_id)
    parties = [
        Party(country_code=fold(r.country_code), party_id=fold(r.party_id))
        for r in caller.partner.roles
    ]
    return Owned(ref, authorize_write(ref, parties))


TheirTariff = Annotated[Owned, Depends(_their_tariff)]


@receiver.get(TARIFF)
async def get_their_tariff(tariff: TheirTariff, reads: TariffReadsDep) -> Json:
    return envelope(await reads.get(tariff.ref))


@receiver.put(TARIFF, openapi_extra=body_of(Tariff))
async def put_their_tariff(
    body: ExactBody, tariff: TheirTariff, writes: TariffWritesDep, response: Response
) -> Json:
    return answered(response, await writes.put(tariff, body))


@receiver.delete(TARIFF)
async def delete_their_tariff(
    tariff: TheirTariff, writes: TariffWritesDep, response: Response
) -> Json:
    return answered(response, await writes.delete(tariff))


@receiver.patch(TARIFF)
async def patch_their_tariff(
    version: VersionPath,
    _: RoutedCallerDep,
    country_code: CountryCodePath,
    party_id: PartyIdPath,
    tariff_id: TariffIdPath,
) -> None:
    # The path is declared (OpenAPI names every parameter of a path) though
    # no Tariff is ever patched.
    no_patch()


# --- Sender: our tariffs --------------------------------------------------------------


def our_tariff(c: ContainerDep, tariff_id: TariffIdPath) -> Owned:
    """One of our own tariffs (the ops API), recorded for us."""
    s = c.settings
    ref = TariffRef(country_code=s.party_country_code, party_id=s.party_id, tariff_id=tariff_id)
    return Owned(ref, Party(country_code=fold(s.party_country_code), party_id=fold(s.party_id)))


OurTariff = Annotated[Owned, Depends(our_tariff)]


@sender.get("")
async def list_our_tariffs(
    version: VersionPath,
    request: Request,
    response: Response,
    _: RoutedCallerDep,
    c: ContainerDep,
    view: TariffViewDep,
    params: PageRequestDep,
) -> Json:
    items = await our_page(request, response, c, params, view.page)
    wire = wire_of(request)
    return envelope([wire.object_out(Kind.TARIFF, item, patch=False) for item in items])
