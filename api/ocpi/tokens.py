"""Tokens module, both interfaces (mod_tokens).

Receiver (``/ocpi/cpo/2.2.1/tokens``, we as CPO): a partner eMSP PUTs,
PATCHes and GETs its own tokens, ``/{country_code}/{party_id}/{token_uid}
[?type=]`` (type RFID when absent). They are our whitelist when a driver
presents one at our chargers (producers/authorization.py).

Sender (``/ocpi/emsp/2.2.1/tokens``, we as eMSP): a partner CPO lists our
tokens (paginated) and asks for a real-time authorization,
``POST /{token_uid}/authorize[?type=]`` with optional LocationReferences.
The decision is on Kafka (acknowledged) before we answer, so the
authorization reference we hand out is on record.

Both need a registered partner's token and carry the routing headers.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from api.deps import ContainerDep, CorrelationIdDep, EventLogDep, NowDep, TokenViewDep
from api.errors import OcpiError, envelope
from api.ocpi.paths import CountryCodePath, PartyIdPath
from api.pagination import PageRequestDep, paginate
from api.routing import RoutedCaller, RoutedCallerDep
from api.token_writes import TokenStoreDep, get_token, refused, write_token
from producers.tokens import (
    Origin,
    authorize,
    decide_authorization,
    plan_patch,
    plan_put,
)
from producers.write_path import RefusedError
from schemas.events import Party
from schemas.events.tokens import TokenRef
from schemas.ocpi.common import fold
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.tokens import LocationReferences
from schemas.ocpi.types import TokenType, to_json

receiver = APIRouter(prefix="/ocpi/cpo/2.2.1/tokens", tags=["ocpi: tokens (receiver)"])
sender = APIRouter(prefix="/ocpi/emsp/2.2.1/tokens", tags=["ocpi: tokens (sender)"])

# mod_tokens: Token.uid is CiString(36); ``type`` a TokenType, RFID if absent.
TokenUidPath = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[\x21-\x7E]+$")]
TokenTypeQuery = Annotated[TokenType, Query()]


def _theirs(
    caller: RoutedCallerDep,
    country_code: CountryCodePath,
    party_id: PartyIdPath,
    token_uid: TokenUidPath,
    type: TokenTypeQuery = TokenType.RFID,
) -> TokenRef:
    """The token of the URL, which must belong to one of the caller's parties."""
    if not caller.owns(country_code, party_id):
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS,
            f"{country_code}/{party_id} is not a party registered with this token; "
            "a partner may only write and read its own tokens",
        )
    return TokenRef(country_code=country_code, party_id=party_id, uid=token_uid, type=type)


TheirTokenDep = Annotated[TokenRef, Depends(_theirs)]


def _origin(ref: TokenRef, correlation_id: str) -> Origin:
    return Origin(
        Party(country_code=fold(ref.country_code), party_id=fold(ref.party_id)), correlation_id
    )


@receiver.get("/{country_code}/{party_id}/{token_uid}")
async def get_their_token(ref: TheirTokenDep, store: TokenStoreDep) -> dict[str, Any]:
    return await get_token(store, ref)


@receiver.put("/{country_code}/{party_id}/{token_uid}")
async def put_their_token(
    ref: TheirTokenDep,
    body: Annotated[Any, Body()],
    store: TokenStoreDep,
    event_log: EventLogDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    response: Response,
) -> dict[str, Any]:
    return await write_token(
        plan_put,
        ref,
        body,
        store=store,
        event_log=event_log,
        origin=_origin(ref, correlation_id),
        now=now,
        response=response,
    )


@receiver.patch("/{country_code}/{party_id}/{token_uid}")
async def patch_their_token(
    ref: TheirTokenDep,
    body: Annotated[Any, Body()],
    store: TokenStoreDep,
    event_log: EventLogDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    response: Response,
) -> dict[str, Any]:
    return await write_token(
        plan_patch,
        ref,
        body,
        store=store,
        event_log=event_log,
        origin=_origin(ref, correlation_id),
        now=now,
        response=response,
    )


# --- Sender -------------------------------------------------------------------


@sender.get("")
def list_our_tokens(
    request: Request,
    response: Response,
    _: RoutedCallerDep,
    c: ContainerDep,
    view: TokenViewDep,
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


def our_token(
    c: ContainerDep,
    token_uid: TokenUidPath,
    type: TokenTypeQuery = TokenType.RFID,
) -> TokenRef:
    s = c.settings
    return TokenRef(
        country_code=s.party_country_code, party_id=s.party_id, uid=token_uid, type=type
    )


OurTokenDep = Annotated[TokenRef, Depends(our_token)]


@sender.post("/{token_uid}/authorize")
async def authorize_our_token(
    ref: OurTokenDep,
    caller: RoutedCallerDep,
    store: TokenStoreDep,
    event_log: EventLogDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    body: Annotated[Any, Body()] = None,
) -> dict[str, Any]:
    """Real-time authorization (mod_tokens, Sender POST). An unknown token is
    HTTP 404 with 2004 and no data."""
    requested = LocationReferences.model_validate(body) if body is not None else None
    state = await store.current(ref)
    try:
        if state is None or state.token is None:
            raise RefusedError(
                OcpiStatus.UNKNOWN_TOKEN, f"unknown token {ref.uid!r} of type {ref.type}", 404
            )
        info = authorize(state, requested, now)
    except RefusedError as exc:
        raise refused(exc) from exc
    us = Party(country_code=fold(ref.country_code), party_id=fold(ref.party_id))
    event = decide_authorization(
        ref,
        info,
        requested,
        Origin(us, correlation_id),
        now,
        requested_by=_who(caller),
    )
    # The view does not fold decisions, so no read waits for this one.
    await store.acknowledged(ref, event, event_log, mark=False)
    return envelope(to_json(info))


def _who(caller: RoutedCaller) -> str:
    return caller.partner.partner_id
