"""Ops API of the Tokens slice.

Our own tokens (we as eMSP): ``/ops/tokens/{token_uid}[?type=]`` PUT, PATCH
and GET, with OCPI Token bodies checked as at the OCPI receiver, recorded
under our ``country_code``/``party_id``; ``PUT .../policy`` sets the rules
our real-time authorization applies (blocked, no credit, expiry, allowed
locations).

Tokens presented at our chargers (we as CPO): ``POST /ops/authorize`` with
``{uid, type, location_id, evse_uids}`` answers the decision and where it
came from (the OCPP gateway calls this).
"""

from __future__ import annotations

from typing import Annotated, Any

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, ConfigDict

from api.deps import AuthorizationDep, CorrelationIdDep, EventLogDep, NowDep
from api.errors import OcpiError, envelope
from api.ocpi.tokens import OurTokenDep
from api.token_writes import Plan, TokenStoreDep, get_token, refused, write_token
from producers.authorization import AuthorizeRequest
from producers.tokens import Origin, plan_patch, plan_policy, plan_put
from producers.write_path import RefusedError
from schemas.events import Party
from schemas.events.tokens import TokenRef
from schemas.ocpi.common import CountryCode, PartyId, fold
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.tokens import LocationReferences, TokenUid
from schemas.ocpi.types import TokenType, ci

router = APIRouter(prefix="/ops", tags=["ops: tokens"])


def _us(ref: TokenRef, correlation_id: str) -> Origin:
    return Origin(
        Party(country_code=fold(ref.country_code), party_id=fold(ref.party_id)), correlation_id
    )


def _write(plan: Plan) -> Any:
    async def write(
        ref: OurTokenDep,
        body: Annotated[Any, Body()],
        store: TokenStoreDep,
        event_log: EventLogDep,
        now: NowDep,
        correlation_id: CorrelationIdDep,
        response: Response,
    ) -> dict[str, Any]:
        return await write_token(
            plan,
            ref,
            body,
            store=store,
            event_log=event_log,
            origin=_us(ref, correlation_id),
            now=now,
            response=response,
        )

    return write


@router.get("/tokens/{token_uid}")
async def get_our_token(ref: OurTokenDep, store: TokenStoreDep) -> dict[str, Any]:
    return await get_token(store, ref)


router.add_api_route("/tokens/{token_uid}", _write(plan_put), methods=["PUT"])
router.add_api_route("/tokens/{token_uid}", _write(plan_patch), methods=["PATCH"])
router.add_api_route("/tokens/{token_uid}/policy", _write(plan_policy), methods=["PUT"])


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
    event_log: EventLogDep,
    now: NowDep,
) -> dict[str, Any]:
    location = LocationReferences(location_id=body.location_id, evse_uids=body.evse_uids)
    request = AuthorizeRequest(
        uid=body.uid,
        type=body.type,
        location=location,
        country_code=body.country_code,
        party_id=body.party_id,
    )
    try:
        decision = await service.authorize(request, correlation_id, event_log=event_log, now=now)
    except RefusedError as exc:
        raise refused(exc) from exc
    except (OSError, TimeoutError, KafkaError) as exc:
        # Our own token's decision could not be recorded (or a store failed):
        # no answer without a record; the charger asks again.
        raise OcpiError(
            OcpiStatus.SERVER_ERROR, "the decision could not be recorded; retry"
        ) from exc
    return envelope(decision.model_dump(mode="json", exclude_none=True))
