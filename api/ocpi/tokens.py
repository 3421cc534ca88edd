"""Tokens module, both interfaces (mod_tokens).

Receiver (``/ocpi/cpo/{version}/tokens``, we as CPO): a partner eMSP PUTs,
PATCHes and GETs its own tokens, ``/{country_code}/{party_id}/{token_uid}
[?type=]`` (type RFID when absent). They are our whitelist when a driver
presents one at our chargers (producers/authorization.py).

Sender (``/ocpi/emsp/{version}/tokens``, we as eMSP): a partner CPO lists our
tokens (paginated) and asks for a real-time authorization,
``POST /{token_uid}/authorize[?type=]`` with optional LocationReferences.
The decision is on Kafka (acknowledged) before we answer, so the
authorization reference we hand out is on record.

Both need a registered partner's token and carry the routing headers.

One set of handlers for every OCPI version we offer (docs/adr/0045): a
2.1.1 Token is converted to our model at the edge and back (no owner party
in the body, ``auth_id`` for ``contract_id``). 2.1.1 URLs carry no token
type: a PUT takes the body's, a GET or PATCH assumes RFID unless ``?type=``
says otherwise.

Writes go through the one write path (producers/write_path.py,
docs/adr/0022): decided by ``producers.tokens.decide`` against the token as
of its latest event in the log, answered once Kafka acknowledged. The
authorization is decided on that same state. Reads of one token serve the
MongoDB view once it has applied the token's last write (api/consistency.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api.auth import wire_of
from api.consistency import read_written
from api.deps import ContainerDep, CorrelationIdDep, NowDep, TokenViewDep
from api.errors import OcpiError, envelope
from api.ocpi.paths import CountryCodePath, PartyIdPath, VersionPath
from api.pagination import PageRequestDep, our_page
from api.routing import RoutedCallerDep
from api.writes import JsonBody, WritePathDep, body_of
from api.writes import written as answered
from producers.tokens import (
    SLICE,
    Origin,
    PatchToken,
    PutToken,
    SetPolicy,
    TokenCommand,
    authorize,
    decide,
    decide_authorization,
    find,
    held,
)
from producers.write_path import WritePath
from projections.mongo.tokens import TokenViewQuery
from schemas.events import Party
from schemas.events.tokens import TokenRef
from schemas.ocpi.common import fold
from schemas.ocpi.patch import patch_model
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.tokens import AuthorizationInfo, LocationReferences, Token
from schemas.ocpi.types import TokenType, to_json
from schemas.ocpi.wire import Core, Kind, WireVersion

Json = dict[str, Any]

receiver = APIRouter(prefix="/ocpi/cpo/{version}/tokens", tags=["ocpi: tokens (receiver)"])
sender = APIRouter(prefix="/ocpi/emsp/{version}/tokens", tags=["ocpi: tokens (sender)"])

_CORE = Core()

# mod_tokens: Token.uid is CiString(36); ``type`` a TokenType, RFID if absent.
TokenUidPath = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[\x21-\x7E]+$")]
TokenTypeQuery = Annotated[TokenType, Query()]


# --- writing and reading one token (shared with the ops API) --------------------------


@dataclass(frozen=True)
class TokenWrites:
    """PUT, PATCH and policy of one token, recorded in the name of the party
    that owns it; each answers whether a PUT created the token."""

    write_path: WritePath
    correlation_id: str
    now: datetime
    # The OCPI version the body is in (our model's unless a partner's route says).
    wire: WireVersion = _CORE

    async def put(self, ref: TokenRef, body: Any) -> bool:
        return await self._record(PutToken(ref, self._ours(ref, body, False), self.origin(ref)))

    async def patch(self, ref: TokenRef, body: Any) -> bool:
        return await self._record(PatchToken(ref, self._ours(ref, body, True), self.origin(ref)))

    def _ours(self, ref: TokenRef, body: Any, patch: bool) -> Any:
        owner = (ref.country_code, ref.party_id)
        return self.wire.object_in(Kind.TOKEN, body, owner=owner, patch=patch, now=self.now)

    async def set_policy(self, ref: TokenRef, body: Any) -> bool:
        return await self._record(SetPolicy(ref, body, self.origin(ref)))

    async def authorization(
        self, ref: TokenRef, requested: LocationReferences | None, requested_by: str
    ) -> AuthorizationInfo:
        """Our real-time decision on one of our tokens (we as eMSP), on the
        token as of its latest event in the log; the decision is on record
        before it is answered, so the reference we hand out is too."""
        current = await self.write_path.state(SLICE, ref.key)
        info = authorize(held(current, ref), requested, self.now)
        origin = self.origin(ref)
        event = decide_authorization(
            ref, info, requested, origin, self.now, requested_by=requested_by
        )
        await self.write_path.record([event])
        return info

    def origin(self, ref: TokenRef) -> Origin:
        party = Party(country_code=fold(ref.country_code), party_id=fold(ref.party_id))
        return Origin(party, self.correlation_id)

    async def _record(self, command: TokenCommand) -> bool:
        return await self.write_path.write(
            SLICE, command.ref.key, lambda state: decide(state, command, self.now)
        )


def _writes(
    request: Request, w: WritePathDep, correlation_id: CorrelationIdDep, now: NowDep
) -> TokenWrites:
    return TokenWrites(w, correlation_id, now, wire_of(request))


TokenWritesDep = Annotated[TokenWrites, Depends(_writes)]


@dataclass(frozen=True)
class TokenReads:
    """One token as the view serves it, once the view holds the token's last
    acknowledged write."""

    view: TokenViewQuery
    write_path: WritePath
    timeout_s: float
    wire: WireVersion = _CORE

    async def get(self, ref: TokenRef) -> Json:
        current = await read_written(
            self.view, self.write_path, SLICE, ref.key, timeout_s=self.timeout_s, what="token"
        )
        return self.wire.object_out(Kind.TOKEN, find(current, ref), patch=False)


def _reads(request: Request, c: ContainerDep, view: TokenViewDep, w: WritePathDep) -> TokenReads:
    return TokenReads(view, w, c.settings.read_own_writes_timeout_s, wire_of(request))


TokenReadsDep = Annotated[TokenReads, Depends(_reads)]


# --- Receiver: a partner eMSP's own tokens ---------------------------------------------

UID_PATH = "/{country_code}/{party_id}/{token_uid}"


def _theirs(
    version: VersionPath,
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


@receiver.get(UID_PATH)
async def get_their_token(ref: TheirTokenDep, reads: TokenReadsDep) -> Json:
    return envelope(await reads.get(ref))


@receiver.put(UID_PATH, openapi_extra=body_of(Token))
async def put_their_token(
    request: Request,
    ref: TheirTokenDep,
    body: JsonBody,
    writes: TokenWritesDep,
    response: Response,
) -> Json:
    typed = body.get("type") if isinstance(body, dict) else None
    if not writes.wire.token_type_in_url and "type" not in request.query_params and typed:
        # A 2.1.1 URL names no type: the Token's own says which it is.
        ref = ref.model_copy(update={"type": TokenType(typed)})
    return answered(response, await writes.put(ref, body))


@receiver.patch(UID_PATH, openapi_extra=body_of(patch_model(Token)))
async def patch_their_token(
    ref: TheirTokenDep, body: JsonBody, writes: TokenWritesDep, response: Response
) -> Json:
    return answered(response, await writes.patch(ref, body))


# --- Sender: our tokens ---------------------------------------------------------------


@sender.get("")
async def list_our_tokens(
    version: VersionPath,
    request: Request,
    response: Response,
    _: RoutedCallerDep,
    c: ContainerDep,
    view: TokenViewDep,
    params: PageRequestDep,
) -> Json:
    items = await our_page(request, response, c, params, view.page)
    wire = wire_of(request)
    return envelope([wire.object_out(Kind.TOKEN, item, patch=False) for item in items])


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
    version: VersionPath,
    ref: OurTokenDep,
    caller: RoutedCallerDep,
    writes: TokenWritesDep,
    body: LocationReferences | None = None,
) -> Json:
    """Real-time authorization (mod_tokens, Sender POST). An unknown token is
    HTTP 404 with 2004 and no data."""
    info = await writes.authorization(ref, body, requested_by=caller.partner.partner_id)
    return envelope(writes.wire.object_out(Kind.AUTHORIZATION, to_json(info), patch=False))
