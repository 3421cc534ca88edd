"""Authorizing a token presented at one of our chargers (we as CPO).

mod_tokens, "Real-time authorization" and WhitelistType: the eMSP that owns a
token says, per token, whether we may decide from the copy it pushed us (the
whitelist) or must ask it in real time. ``whitelist_decision`` and
``offline_decision`` are the pure rules; ``AuthorizationService`` is the
shell: it reads the whitelist, asks the owning eMSP's ``authorize`` endpoint
(found among its registered endpoints) when it must, caches what the eMSP
answered for a short time, and says where each decision came from.

The whitelist is the Tokens slice's state as the write path holds it
(``WritePath.state``: the token as of its latest event in the log, one
Redis read), not the MongoDB view: a token blocked a moment ago is decided
blocked. The view serves only as the directory of who holds a presented uid
when the caller names no owner and the token is not ours.

The rules (docs/adr/0013):

* ALWAYS: decided here. ``valid=false`` is BLOCKED, else ALLOWED.
* ALLOWED: a valid token is ALLOWED here (we may choose, and local is
  faster); an invalid one is asked in real time (its state may have changed).
* ALLOWED_OFFLINE, NEVER: asked in real time, whatever ``valid`` says
  (WhitelistType: validity has no influence on the need to ask).
* A token not in the whitelist: asked in real time of the registered eMSPs
  (the owner, when the caller names it).
* One of our own tokens: our eMSP rule (``producers.tokens.authorize``)
  decides, and the decision is recorded before the answer.
* The eMSP cannot be reached: ALLOWED_OFFLINE lets a valid token charge;
  ALLOWED lets a valid one charge too (it may be whitelisted); NEVER and an
  unknown token are refused.

Partner tokens are unsealed only to make the call and never logged.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

import httpx
import redis.asyncio as aioredis
import structlog
from pydantic import BaseModel, ConfigDict

from producers import tokens
from producers.partner_client import authorization as authorization_header
from producers.partners import PartnerState
from producers.tokens import Origin, TokenState, authorize, decide_authorization
from producers.url_policy import partner_http
from producers.write_path import WritePath
from schemas.events import Party
from schemas.events.tokens import TokenRef, token_key
from schemas.ocpi.adapters import WIRES
from schemas.ocpi.common import fold, format_ocpi_datetime
from schemas.ocpi.tokens import (
    AllowedType,
    AuthorizationInfo,
    LocationReferences,
    Token,
    WhitelistType,
)
from schemas.ocpi.types import TokenType
from schemas.ocpi.versions import InterfaceRole, ModuleId
from schemas.ocpi.wire import CORE_VERSION, Core, EdgeContext, Kind, WireVersion

log = structlog.get_logger(__name__)
CORE = Core()


class DecisionSource(StrEnum):
    WHITELIST = "whitelist"  # the token pushed to us decided it
    CACHE = "cache"  # a recent real-time answer of the eMSP
    REAL_TIME = "real_time"  # the eMSP answered now
    OFFLINE = "partner_unreachable"  # the eMSP could not be asked: the whitelist type decided
    UNKNOWN = "unknown_token"  # nobody knows the token
    OWN = "own_token"  # one of our tokens: our eMSP rule decided (and recorded it)


class Decision(BaseModel):
    """What we tell the charger. ``authorized`` is the yes/no; ``allowed``
    the OCPI AllowedType behind it (None when nobody could say)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    authorized: bool
    allowed: AllowedType | None
    source: DecisionSource
    token: dict[str, Any] | None = None
    location: LocationReferences | None = None
    authorization_reference: str | None = None
    partner_id: str | None = None
    info: dict[str, Any] | None = None


@dataclass(frozen=True)
class AuthorizeRequest:
    """A token presented at one of our EVSEs."""

    uid: str
    type: TokenType
    location: LocationReferences | None
    # The owning eMSP when the caller knows it (e.g. from the contract id).
    country_code: str | None = None
    party_id: str | None = None


# --- the pure rules ----------------------------------------------------------


def _held(state: TokenState) -> Token:
    assert state.token is not None
    return Token.model_validate(state.token)


def whitelist_decision(state: TokenState) -> Decision | None:
    """The decision the whitelist allows us to take alone, or None when the
    eMSP must be asked in real time."""
    token = _held(state)
    if token.whitelist is WhitelistType.ALWAYS or (
        token.whitelist is WhitelistType.ALLOWED and token.valid
    ):
        allowed = AllowedType.ALLOWED if token.valid else AllowedType.BLOCKED
        return Decision(
            authorized=token.valid,
            allowed=allowed,
            source=DecisionSource.WHITELIST,
            token=state.token,
        )
    return None


def offline_decision(state: TokenState | None) -> Decision:
    """The decision when the owning eMSP could not be reached."""
    if state is None or state.token is None:
        return Decision(authorized=False, allowed=None, source=DecisionSource.OFFLINE)
    token = _held(state)
    may = token.whitelist in (WhitelistType.ALLOWED_OFFLINE, WhitelistType.ALLOWED)
    if may and token.valid:
        return Decision(
            authorized=True,
            allowed=AllowedType.ALLOWED,
            source=DecisionSource.OFFLINE,
            token=state.token,
        )
    return Decision(
        authorized=False,
        allowed=None if token.valid else AllowedType.BLOCKED,
        source=DecisionSource.OFFLINE,
        token=state.token,
    )


def real_time_decision(info: AuthorizationInfo, partner_id: str) -> Decision:
    return Decision(
        authorized=info.allowed is AllowedType.ALLOWED,
        allowed=info.allowed,
        source=DecisionSource.REAL_TIME,
        token=info.token.model_dump(mode="json", exclude_none=True),
        location=info.location,
        authorization_reference=info.authorization_reference,
        partner_id=partner_id,
        info=info.info.model_dump(mode="json") if info.info else None,
    )


def presented_token(
    held: TokenState | None, request: AuthorizeRequest, target: Any, now: datetime
) -> dict[str, Any]:
    """The token an eMSP's answer is about, for a version whose answer does
    not name it (2.1.1's AuthorizationInfo): the copy it pushed us, else what
    the charger presented, under the eMSP's party. 2.1.1 gives no contract
    id for a token it never pushed: the uid stands in (docs/ocpi-versions.md)."""
    if held is not None and held.token is not None:
        return dict(held.token)
    return {
        "country_code": target.to.country_code,
        "party_id": target.to.party_id,
        "uid": request.uid,
        "type": request.type.value,
        "contract_id": request.uid,
        "issuer": target.partner_id,
        "valid": True,
        "whitelist": WhitelistType.ALWAYS.value,
        "last_updated": format_ocpi_datetime(now),
    }


def cache_key(prefix: str, request: AuthorizeRequest) -> str:
    """Where a real-time answer for this question is cached: the presented
    token (uid, type, and the owner when the caller named it) and the
    location and EVSEs asked about. Not the owner found in the whitelist, so
    a hit costs one Redis read and no view lookup."""
    where = "-"
    if request.location is not None:
        evses = ",".join(sorted(fold(e) for e in request.location.evse_uids or ()))
        where = f"{fold(request.location.location_id)}|{evses}"
    owner = f"{fold(request.country_code or '')}/{fold(request.party_id or '')}"
    token = f"{owner}/{fold(request.uid)}/{request.type.value}"
    return f"{prefix}ocpi-hub:authorization:{token}:{where}"


def _last_updated(state: TokenState) -> datetime:
    return _held(state).last_updated


def owner_of(state: TokenState) -> Party:
    token = _held(state)
    return Party(country_code=fold(token.country_code), party_id=fold(token.party_id))


def tokens_sender(partner: PartnerState) -> str | None:
    """The partner's eMSP Tokens interface (where ``authorize`` lives)."""
    if partner.status != "registered" or not partner.our_token_encrypted:
        return None
    return partner.endpoint(ModuleId.TOKENS.value, InterfaceRole.SENDER.value)


# --- ports ---------------------------------------------------------------------


class TokenDirectory(Protocol):
    async def holders(
        self, uid: str, token_type: str, *, exclude_party: tuple[str, str] | None = None
    ) -> list[str]:
        """Keys of the tokens held with this uid and type, newest first."""
        ...


class PartnerDirectory(Protocol):
    async def all(self) -> list[PartnerState]: ...


class Unsealer(Protocol):
    def decrypt(self, sealed: str) -> str: ...


@dataclass(frozen=True)
class RealTimeAnswer:
    outcome: Literal["decided", "unknown", "unreachable"]
    info: AuthorizationInfo | None = None
    detail: str | None = None


class RealTimeAuthorizer(Protocol):
    async def authorize(
        self,
        url: str,
        *,
        token: str,
        headers: dict[str, str],
        location: LocationReferences | None,
        edge: WireVersion = CORE,
        presented: dict[str, Any] | None = None,
    ) -> RealTimeAnswer:
        """``edge``: the eMSP's OCPI version (2.1.1: the token as is, an
        AuthorizationInfo without the token, completed with ``presented``)."""
        ...


class DecisionCache(Protocol):
    async def get(self, key: str) -> Decision | None: ...

    async def put(self, key: str, decision: Decision, ttl_s: float) -> None: ...


# --- adapters ------------------------------------------------------------------


class HttpRealTimeAuthorizer:
    """POST ``{tokens_url}/{uid}/authorize?type=`` on the eMSP, over one
    pooled HTTP client. Transport failures, HTTP 5xx, non-OCPI answers and
    timeouts are "unreachable"; HTTP 404 or OCPI 2004 "unknown"."""

    def __init__(self, timeout_s: float, *, allow_private_urls: bool = False) -> None:
        # The eMSP's tokens endpoint: every connection checked and pinned
        # (producers/url_policy.py).
        self._client = partner_http(timeout_s, allow_private=allow_private_urls)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def authorize(
        self,
        url: str,
        *,
        token: str,
        headers: dict[str, str],
        location: LocationReferences | None,
        edge: WireVersion = CORE,
        presented: dict[str, Any] | None = None,
    ) -> RealTimeAnswer:
        # LocationReferences has the same fields in 2.1.1 (connector_ids aside).
        body = location.model_dump(mode="json", exclude_none=True) if location else None
        authorization = authorization_header(token, raw=edge.raw_token)
        try:
            resp = await self._client.post(
                url, headers={**headers, "Authorization": authorization}, json=body
            )
        except httpx.HTTPError as exc:
            # The type only: messages may echo headers, and headers carry the token.
            return RealTimeAnswer("unreachable", detail=type(exc).__name__)
        try:
            answer = resp.json()
        except ValueError:
            return RealTimeAnswer("unreachable", detail=f"HTTP {resp.status_code}, not JSON")
        code = answer.get("status_code") if isinstance(answer, dict) else None
        if resp.status_code == 404 or code == 2004:
            return RealTimeAnswer("unknown", detail=f"HTTP {resp.status_code}, OCPI {code}")
        if resp.status_code != 200 or code != 1000:
            return RealTimeAnswer("unreachable", detail=f"HTTP {resp.status_code}, OCPI {code}")
        try:
            data = edge.object_in(
                Kind.AUTHORIZATION,
                answer.get("data"),
                owner=None,
                patch=False,
                now=datetime.now(UTC),
                context=EdgeContext(token=presented),
            )
            info = AuthorizationInfo.model_validate(data)
        except ValueError:
            return RealTimeAnswer("unreachable", detail="not an AuthorizationInfo")
        except Exception as exc:  # our reading of it failed: the charger still gets an answer
            log.error("real_time_answer_unreadable", error_type=type(exc).__name__)
            return RealTimeAnswer("unreachable", detail=f"unreadable ({type(exc).__name__})")
        return RealTimeAnswer("decided", info=info)


class RedisDecisionCache:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def get(self, key: str) -> Decision | None:
        raw = await self._redis.get(key)
        return Decision.model_validate_json(raw) if raw else None

    async def put(self, key: str, decision: Decision, ttl_s: float) -> None:
        await self._redis.set(key, decision.model_dump_json(), px=max(1, int(ttl_s * 1000)))


class InMemoryDecisionCache:
    """For unit tests (no expiry: tests control what is held)."""

    def __init__(self) -> None:
        self.held: dict[str, str] = {}

    async def get(self, key: str) -> Decision | None:
        raw = self.held.get(key)
        return Decision.model_validate(json.loads(raw)) if raw else None

    async def put(self, key: str, decision: Decision, ttl_s: float) -> None:
        self.held[key] = decision.model_dump_json()


# --- the service -----------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    partner_id: str
    url: str
    sealed_token: str
    to: Party
    version: str = CORE_VERSION


class AuthorizationService:
    def __init__(
        self,
        *,
        write_path: WritePath,
        directory: TokenDirectory,
        partners: PartnerDirectory,
        realtime: RealTimeAuthorizer,
        cache: DecisionCache,
        vault: Unsealer,
        us: Party,
        cache_ttl_s: float,
        key_prefix: str = "",
    ) -> None:
        self._write_path = write_path
        self._directory = directory
        self._partners = partners
        self._realtime = realtime
        self._cache = cache
        self._vault = vault
        self._us = us
        self._ttl_s = cache_ttl_s
        self._prefix = key_prefix

    async def authorize(
        self, request: AuthorizeRequest, correlation_id: str, *, now: datetime
    ) -> Decision:
        """Decide. When the token is one of ours (we are its eMSP too), the
        decision is recorded (acknowledged by Kafka) before the answer."""
        # Only real-time answers are cached, so a hit is an answer the eMSP
        # gave for this question within the TTL: no token lookup needed.
        key = cache_key(self._prefix, request)
        cached = await self._cache.get(key)
        if cached is not None:
            return cached.model_copy(update={"source": DecisionSource.CACHE})
        ours, held = await self._presented(request)
        if ours is not None:
            return await self._own(ours, request, correlation_id, now)
        if held is not None and (decided := whitelist_decision(held)) is not None:
            return decided
        owner = owner_of(held) if held is not None else self._named_owner(request)
        targets = await self._targets(owner)
        unreachable = False
        for target in targets:
            edge = WIRES.get(target.version, CORE)
            url = f"{target.url.rstrip('/')}/{request.uid}/authorize"
            headers = self._headers(target, correlation_id)
            if not edge.routing_headers:
                headers = {k: v for k, v in headers.items() if not k.startswith("OCPI-")}
            answer = await self._realtime.authorize(
                # 2.1.1 names a token by its uid alone.
                f"{url}?type={request.type.value}" if edge.token_type_in_url else url,
                token=self._vault.decrypt(target.sealed_token),
                headers=headers,
                location=request.location,
                edge=edge,
                presented=presented_token(held, request, target, now),
            )
            log.info(
                "real_time_authorization",
                partner=target.partner_id,
                outcome=answer.outcome,
                detail=answer.detail,
            )
            if answer.outcome == "decided":
                assert answer.info is not None
                decision = real_time_decision(answer.info, target.partner_id)
                await self._cache.put(key, decision, self._ttl_s)
                return decision
            unreachable = unreachable or answer.outcome == "unreachable"
        if unreachable or (held is not None and not targets):
            return offline_decision(held)
        return Decision(authorized=False, allowed=None, source=DecisionSource.UNKNOWN)

    async def _presented(
        self, request: AuthorizeRequest
    ) -> tuple[TokenState | None, TokenState | None]:
        """Our own token with this uid and type, and a partner's (the newest),
        as the Tokens slice holds them."""
        us = (fold(self._us.country_code), fold(self._us.party_id))
        uid, kind = request.uid, request.type.value
        if request.country_code and request.party_id:
            owner = (fold(request.country_code), fold(request.party_id))
            state = await self._state(token_key(*owner, uid, kind))
            return (state, None) if owner == us else (None, state)
        ours = await self._state(token_key(*us, uid, kind))
        if ours is not None:
            return ours, None
        # Whose token it may be: the view is only the index here (it may lag
        # a token pushed a moment ago, then its eMSPs are asked); each
        # holder's state comes from the write path.
        keys = await self._directory.holders(uid, kind, exclude_party=us)
        found = [s for s in await asyncio.gather(*map(self._state, keys)) if s is not None]
        if not found:
            return None, None
        return None, max(found, key=_last_updated)

    async def _state(self, key: str) -> TokenState | None:
        state = await self._write_path.state(tokens.SLICE, key)
        return state if state is not None and state.token is not None else None

    async def _own(
        self,
        state: TokenState,
        request: AuthorizeRequest,
        correlation_id: str,
        now: datetime,
    ) -> Decision:
        """One of our tokens at one of our chargers: we are the eMSP, so our
        own rule decides (``producers.tokens.authorize``), recorded as for a
        partner's request before the answer."""
        info = authorize(state, request.location, now)
        token = info.token
        ref = TokenRef(
            country_code=token.country_code, party_id=token.party_id, uid=token.uid, type=token.type
        )
        event = decide_authorization(
            ref, info, request.location, Origin(self._us, correlation_id), now
        )
        # A fact no decision of the write path depends on: recorded, not held.
        await self._write_path.record([event])
        return Decision(
            authorized=info.allowed is AllowedType.ALLOWED,
            allowed=info.allowed,
            source=DecisionSource.OWN,
            token=state.token,
            location=info.location,
            authorization_reference=info.authorization_reference,
        )

    @staticmethod
    def _named_owner(request: AuthorizeRequest) -> Party | None:
        if request.country_code and request.party_id:
            return Party(country_code=fold(request.country_code), party_id=fold(request.party_id))
        return None

    async def _targets(self, owner: Party | None) -> Sequence[_Target]:
        """Who to ask: the partner owning the token's party, else every
        registered partner with a Tokens Sender interface."""
        targets = []
        for partner in await self._partners.all():
            url = tokens_sender(partner)
            if url is None or not partner.roles:
                continue
            if owner is not None and not partner.owns(owner.country_code, owner.party_id):
                continue
            to = owner or Party(
                country_code=fold(partner.roles[0].country_code),
                party_id=fold(partner.roles[0].party_id),
            )
            assert partner.our_token_encrypted is not None
            targets.append(
                _Target(
                    partner.partner_id,
                    url,
                    partner.our_token_encrypted,
                    to,
                    partner.version or CORE_VERSION,
                )
            )
        return targets

    def _headers(self, target: _Target, correlation_id: str) -> dict[str, str]:
        return {
            "X-Request-ID": str(uuid.uuid4()),
            "X-Correlation-ID": correlation_id,
            "OCPI-from-country-code": self._us.country_code,
            "OCPI-from-party-id": self._us.party_id,
            "OCPI-to-country-code": target.to.country_code,
            "OCPI-to-party-id": target.to.party_id,
        }
