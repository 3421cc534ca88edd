"""Ops API of the Tokens slice.

Our own tokens (we as eMSP): ``/ops/tokens/{token_uid}[?type=]`` PUT, PATCH
and GET, with OCPI Token bodies checked as at the OCPI receiver, recorded
under our ``country_code``/``party_id``; ``PUT .../policy`` sets the rules
our real-time authorization applies (blocked, no credit, expiry, allowed
locations). Writes go through the one write path as at the receiver
(api/ocpi/tokens.py, docs/adr/0022).

Tokens presented at our chargers (we as CPO): ``POST /ops/authorize`` with
``{uid, type, location_id, evse_uids}`` answers the decision and where it
came from (the OCPP gateway calls this).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from api.deps import AuthorizationDep, CorrelationIdDep, NowDep
from api.errors import envelope
from api.ocpi.tokens import OurTokenDep, TokenReadsDep, TokenWritesDep
from api.ops.access import OPS_ACCESS
from api.writes import JsonBody, body_of
from api.writes import written as answered
from producers.authorization import AuthorizeRequest
from schemas.events.tokens import TokenPolicy
from schemas.ocpi.common import CountryCode, PartyId
from schemas.ocpi.patch import patch_model
from schemas.ocpi.tokens import LocationReferences, Token, TokenUid
from schemas.ocpi.types import TokenType, ci

router = APIRouter(prefix="/ops", tags=["ops: tokens"], dependencies=[OPS_ACCESS])

Json = dict[str, Any]


@router.get("/tokens/{token_uid}")
async def get_our_token(ref: OurTokenDep, reads: TokenReadsDep) -> Json:
    return envelope(await reads.get(ref))


@router.put("/tokens/{token_uid}", openapi_extra=body_of(Token))
async def put_our_token(
    ref: OurTokenDep, body: JsonBody, writes: TokenWritesDep, response: Response
) -> Json:
    return answered(response, await writes.put(ref, body))


@router.patch("/tokens/{token_uid}", openapi_extra=body_of(patch_model(Token)))
async def patch_our_token(
    ref: OurTokenDep, body: JsonBody, writes: TokenWritesDep, response: Response
) -> Json:
    return answered(response, await writes.patch(ref, body))


@router.put("/tokens/{token_uid}/policy", openapi_extra=body_of(TokenPolicy))
async def set_our_token_policy(
    ref: OurTokenDep, body: JsonBody, writes: TokenWritesDep, response: Response
) -> Json:
    return answered(response, await writes.set_policy(ref, body))


class AuthorizeBody(BaseModel):
    """A token presented at one of our EVSEs. ``country_code``/``party_id``
    name the owning eMSP when known (else the whitelist or every eMSP with a
    Tokens interface is asked)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uid: TokenUid
    type: TokenType = TokenType.RFID
    location_id: Annotated[str, ci(36)]
    evse_uids: list[Annotated[str, ci(36)]] | None = None
    country_code: CountryCode | None = None
    party_id: PartyId | None = None


@router.post("/authorize")
async def authorize_presented_token(
    body: AuthorizeBody,
    service: AuthorizationDep,
    correlation_id: CorrelationIdDep,
    now: NowDep,
) -> Json:
    """Refusals, and our own token's decision not recorded (no answer
    without a record: the charger asks again), become OCPI errors in
    api/errors.py."""
    location = LocationReferences(location_id=body.location_id, evse_uids=body.evse_uids)
    request = AuthorizeRequest(
        uid=body.uid,
        type=body.type,
        location=location,
        country_code=body.country_code,
        party_id=body.party_id,
    )
    decision = await service.authorize(request, correlation_id, now=now)
    return envelope(decision.model_dump(mode="json", exclude_none=True))
