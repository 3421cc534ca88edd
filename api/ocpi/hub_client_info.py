"""HubClientInfo module (mod_hub_client_info), both interfaces, at
``/ocpi/{version}/hubclientinfo`` (docs/adr/0044), 2.2.1 and 2.3.0: the
module is the same in both. 2.3.0's Role enum has no HUB (a hub gives its
party in ``Credentials.hub_party_id``, which our credentials read as a HUB
role: ``V230.credentials_in``), so a 2.3.0 hub is recognised as a 2.2.1 one.

Receiver: a hub partner PUTs a ClientInfo per party behind it
(``/{country_code}/{party_id}``, the party the object is about) and may GET
it back to check what we hold. Sender: the paginated list of what the
calling hub reported to us (``date_from``, ``date_to``, ``offset``,
``limit``, as every Sender list). A partner without the HUB role is refused
(OCPI 2000 at HTTP 200, docs/adr/0039 §2) and nothing is recorded.

This module is between a platform and a hub, not routed: it takes no
routing headers (transport_and_format, "Message Routing"). Writes go
through the one write path (``producers.hub_client_info.decide_put``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.auth import Caller, RegisteredCallerDep
from api.consistency import read_written
from api.deps import ContainerDep, CorrelationIdDep, NowDep
from api.errors import OcpiError, envelope
from api.ocpi.paths import CountryCodePath, PartyIdPath, VersionPath
from api.pagination import PageRequestDep, our_page, paginate
from api.writes import JsonBody, WritePathDep, body_of, written
from producers.hub_client_info import SLICE, decide_put, is_hub, key_of, only_hubs
from producers.write_path import Origin
from schemas.events import Party
from schemas.ocpi.common import fold
from schemas.ocpi.credentials import Role
from schemas.ocpi.hub_client_info import ClientInfo
from schemas.ocpi.status_codes import OcpiStatus

Json = dict[str, Any]

router = APIRouter(prefix="/ocpi/{version}/hubclientinfo", tags=["ocpi: hub client info"])

PARTY = "/{country_code}/{party_id}"


def _hub_party(caller: Caller) -> Party:
    """The hub's own party: the source of what it reports."""
    roles = caller.partner.roles
    role = next((r for r in roles if r.role is Role.HUB), roles[0])
    return Party(country_code=fold(role.country_code), party_id=fold(role.party_id))


@router.put(PARTY, openapi_extra=body_of(ClientInfo))
async def put_client_info(
    version: VersionPath,
    body: JsonBody,
    country_code: CountryCodePath,
    party_id: PartyIdPath,
    caller: RegisteredCallerDep,
    write_path: WritePathDep,
    correlation_id: CorrelationIdDep,
    now: NowDep,
    response: Response,
) -> Json:
    hub = caller.partner
    only_hubs(hub)
    origin = Origin(_hub_party(caller), correlation_id)
    await write_path.write(
        SLICE,
        key_of(hub.partner_id, country_code, party_id),
        lambda state: decide_put(
            state,
            hub=hub,
            country_code=country_code,
            party_id=party_id,
            body=body,
            now=now,
            origin=origin,
        ),
    )
    # HTTP 200 with the envelope, first report or not: the module's PUT
    # answers a plain OCPI response (no "created" distinction is asked).
    return written(response)


@router.get(PARTY)
async def get_client_info(
    version: VersionPath,
    country_code: CountryCodePath,
    party_id: PartyIdPath,
    caller: RegisteredCallerDep,
    c: ContainerDep,
    write_path: WritePathDep,
) -> Json:
    only_hubs(caller.partner)
    found = await read_written(
        c.hub_client_info,
        write_path,
        SLICE,
        key_of(caller.partner.partner_id, country_code, party_id),
        timeout_s=c.settings.read_own_writes_timeout_s,
        what="ClientInfo",
    )
    if found is None:
        raise OcpiError(
            OcpiStatus.CLIENT_ERROR,
            f"no ClientInfo of {country_code.upper()}/{party_id.upper()} from this hub",
            404,
        )
    return envelope(found)


@router.get("")
async def list_client_info(
    version: VersionPath,
    request: Request,
    response: Response,
    caller: RegisteredCallerDep,
    c: ContainerDep,
    params: PageRequestDep,
) -> Json:
    """What the calling hub reported to us; a partner that is no hub has
    reported nothing (an empty list)."""
    if not is_hub(caller.partner):
        paginate(request, response, c, params, returned=0, total=0, last=None)
        return envelope([])
    items = await our_page(
        request,
        response,
        c,
        params,
        c.hub_client_info.page,
        of_our_party=False,
        hub_partner_id=caller.partner.partner_id,
    )
    return envelope(items)
