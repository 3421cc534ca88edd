"""The Tokens slice: a token's state, the decisions on writes to it, and
the fold of its events. Pure: no I/O, the clock passed in.

``decide`` judges a write (``PutToken``, ``PatchToken``, ``SetPolicy``)
against the state the write path holds (``producers.write_path``,
docs/adr/0022: the token as of its latest event in the log, never a view)
with the ``plan_*`` helpers, and returns the event to record, or raises
``RefusedError`` with the OCPI status to answer. ``evolve`` folds the events
into a ``TokenState``; the write path and the MongoDB view both fold with
it. Every well-formed write is recorded, an older one too; the fold applies
a write only if its ``last_updated`` is not older than the token's
(docs/adr/0004).

``authorize`` is the eMSP's real-time decision for one of its own tokens
(mod_tokens, "Real-time authorization"), and ``decide_authorization`` the
event that records it. No I/O anywhere; the clock is passed in.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from producers.write_path import Decision, Origin, RefusedError, Slice, recorded_now
from schemas.events import (
    TokenAuthorizationDecided,
    TokenPatched,
    TokenPut,
)
from schemas.events.tokens import (
    TokenAuthorizationDecidedPayload,
    TokenPatchedPayload,
    TokenPolicy,
    TokenPolicySet,
    TokenPolicySetPayload,
    TokenPutPayload,
    TokenRef,
)
from schemas.ocpi import merge
from schemas.ocpi.common import fold
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.tokens import (
    AllowedType,
    AuthorizationInfo,
    LocationReferences,
    Token,
    validate_token_patch,
)
from schemas.ocpi.types import to_json
from schemas.topics import TOKENS

Json = dict[str, Any]
TokenEvent = TokenPut | TokenPatched | TokenPolicySet | TokenAuthorizationDecided

__all__ = [
    "SLICE",
    "Origin",
    "PatchToken",
    "Planned",
    "PutToken",
    "RefusedError",
    "SetPolicy",
    "TokenCommand",
    "TokenState",
    "authorize",
    "decide",
    "decide_authorization",
    "evolve",
    "find",
    "held",
    "new_authorization_reference",
    "plan_patch",
    "plan_policy",
    "plan_put",
]

_IDS = ("country_code", "party_id", "uid", "type")


class TokenState(BaseModel):
    """What the events say about one token: the OCPI Token we hold (None
    until a PUT arrives) and the ops policy of our own tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: Json | None = None
    policy: TokenPolicy | None = None


def evolve(state: TokenState | None, event: TokenEvent) -> TokenState:
    """Fold one event. A PUT or PATCH older than the held token is ignored
    (recorded, not applied); a PATCH of a token we do not hold too."""
    state = state or TokenState()
    held = state.token
    if isinstance(event, TokenPut):
        if held is not None and merge.is_stale(held["last_updated"], event.payload.last_updated):
            return state
        return state.model_copy(update={"token": dict(event.payload.token)})
    if isinstance(event, TokenPatched):
        if held is None or merge.is_stale(held["last_updated"], event.payload.last_updated):
            return state
        return state.model_copy(update={"token": merge.apply_patch(held, event.payload.patch)})
    if isinstance(event, TokenPolicySet):
        return state.model_copy(update={"policy": event.payload.policy})
    return state  # an authorization decision changes nothing we hold


def _evolve_held(state: TokenState | None, event: TokenEvent) -> TokenState | None:
    after = evolve(state, event)
    return after if after.token is not None or after.policy is not None else None


# The Tokens slice as the write path holds it (docs/adr/0022).
SLICE: Slice[TokenState] = Slice(
    "tokens",
    TOKENS,
    _evolve_held,
    lambda state: state.model_dump_json().encode(),
    TokenState.model_validate_json,
)


@dataclass(frozen=True)
class PutToken:
    """An OCPI PUT of the token ``ref`` names (its owner's, or ours through ops)."""

    ref: TokenRef
    body: Any
    origin: Origin


@dataclass(frozen=True)
class PatchToken:
    """An OCPI PATCH of the token ``ref`` names."""

    ref: TokenRef
    body: Any
    origin: Origin


@dataclass(frozen=True)
class SetPolicy:
    """Ops: the authorization policy of one of our tokens."""

    ref: TokenRef
    body: Any
    origin: Origin


TokenCommand = PutToken | PatchToken | SetPolicy


def decide(state: TokenState | None, command: TokenCommand, now: datetime) -> Decision[bool]:
    """The event a write records; the answer says whether a PUT created the
    token (HTTP 201 rather than 200)."""
    if isinstance(command, PutToken):
        plan = plan_put
    elif isinstance(command, PatchToken):
        plan = plan_patch
    else:
        plan = plan_policy
    planned = plan(command.ref, command.body, state, command.origin, now)
    return Decision([planned.event], planned.created)


@dataclass(frozen=True)
class Planned:
    event: TokenPut | TokenPatched | TokenPolicySet
    created: bool  # a PUT of a token we did not hold


def plan_put(
    ref: TokenRef, body: Any, current: TokenState | None, origin: Origin, now: datetime
) -> Planned:
    """A PUT of the token ``ref`` names. Raises ``pydantic.ValidationError``
    for a body that is not a Token (2001) and ``RefusedError`` when its
    identifiers are not those of the URL (2001)."""
    token = Token.model_validate(body)
    obj = to_json(token)
    _same_ids(ref, obj)
    event = TokenPut(
        **recorded_now(ref.key, now, origin, occurred=token.last_updated),
        payload=TokenPutPayload(**ref.model_dump(), token=obj, last_updated=token.last_updated),
    )
    return Planned(event, created=current is None or current.token is None)


def plan_patch(
    ref: TokenRef, body: Any, current: TokenState | None, origin: Origin, now: datetime
) -> Planned:
    """A PATCH of a token we hold (else 2004: the sender is to PUT it first).
    Identifiers may be repeated but not changed; the merged token must still
    be a valid Token."""
    patch = validate_token_patch(body)
    held = _require(current, ref)
    for name in _IDS:
        if name in patch.values:
            _same_id(name, held[name], patch.values[name])
    Token.model_validate(merge.apply_patch(held, patch.to_json()))
    event = TokenPatched(
        **recorded_now(ref.key, now, origin, occurred=patch.last_updated),
        payload=TokenPatchedPayload(
            **ref.model_dump(), patch=patch.to_json(), last_updated=patch.last_updated
        ),
    )
    return Planned(event, created=False)


def plan_policy(
    ref: TokenRef, body: Any, current: TokenState | None, origin: Origin, now: datetime
) -> Planned:
    """Ops: set the policy of one of our tokens (it must exist)."""
    policy = TokenPolicy.model_validate(body)
    _require(current, ref)
    event = TokenPolicySet(
        **recorded_now(ref.key, now, origin),
        payload=TokenPolicySetPayload(**ref.model_dump(), policy=policy),
    )
    return Planned(event, created=False)


def find(current: TokenState | None, ref: TokenRef, http_status: int = 404) -> Json:
    """The token ``ref`` names; 2004 (HTTP 404 by default) when we hold none."""
    return dict(_require(current, ref, http_status))


def held(current: TokenState | None, ref: TokenRef, http_status: int = 404) -> TokenState:
    """The state of a token we hold (one that was PUT); 2004 (HTTP 404 by
    default) when we hold none."""
    _require(current, ref, http_status)
    assert current is not None
    return current


def _require(current: TokenState | None, ref: TokenRef, http_status: int = 200) -> Json:
    if current is None or current.token is None:
        raise RefusedError(
            OcpiStatus.UNKNOWN_TOKEN,
            f"unknown token {ref.uid!r} of type {ref.type.value}",
            http_status,
        )
    return current.token


def _same_id(name: str, expected: Any, received: Any) -> None:
    if fold(str(received)) != fold(str(expected)):
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS,
            f"{name} in the body is {received!r}, the URL names {expected!r}",
        )


def _same_ids(ref: TokenRef, obj: Mapping[str, Any]) -> None:
    """Identifiers in a PUT body must name the token of the URL (mod_tokens,
    PUT: country_code and party_id "SHALL be the same value" as in the
    Token; uid and type name it)."""
    expected = {
        "country_code": ref.country_code,
        "party_id": ref.party_id,
        "uid": ref.uid,
        "type": ref.type.value,
    }
    for name, value in expected.items():
        _same_id(name, value, obj.get(name))


# --- real-time authorization of our own tokens (we as eMSP) -----------------


def new_authorization_reference() -> str:
    """A fresh reference (32 hex characters, within CiString(36))."""
    return uuid.uuid4().hex


def authorize(
    state: TokenState,
    location: LocationReferences | None,
    now: datetime,
    *,
    reference: str | None = None,
) -> AuthorizationInfo:
    """Decide whether one of our tokens may charge (at ``location``).

    In order: ``valid=false`` is BLOCKED (the spec's "This Token is
    blocked"); then the ops policy's state (BLOCKED, EXPIRED or NO_CREDIT),
    an ``expires_at`` in the past being EXPIRED; then a location the policy
    does not list is NOT_ALLOWED ("valid, but not allowed to charge at the
    given location"). Otherwise ALLOWED, with the location as asked (we do
    not judge EVSEs: the spec forbids checking status or opening hours).
    Every answer carries a fresh ``authorization_reference``. Raises
    ``RefusedError`` 2002 when the policy restricts locations and none was
    given (too little information to decide, mod_tokens POST)."""
    if state.token is None:
        raise RefusedError(OcpiStatus.UNKNOWN_TOKEN, "unknown token", 404)
    token = Token.model_validate(state.token)
    policy = state.policy
    allowed = AllowedType.ALLOWED
    answered = location
    if not token.valid:
        allowed = AllowedType.BLOCKED
    elif policy is not None and policy.state is not AllowedType.ALLOWED:
        allowed = policy.state
    elif policy is not None and policy.expires_at is not None and policy.expires_at <= now:
        allowed = AllowedType.EXPIRED
    elif policy is not None and policy.location_ids is not None:
        if location is None:
            raise RefusedError(
                OcpiStatus.NOT_ENOUGH_INFORMATION,
                "this token may charge at some locations only: give LocationReferences",
            )
        if fold(location.location_id) not in {fold(i) for i in policy.location_ids}:
            allowed = AllowedType.NOT_ALLOWED
    if allowed is not AllowedType.ALLOWED:
        # "Only the EVSEs the EV driver is allowed to charge at are returned".
        answered = None
    return AuthorizationInfo(
        allowed=allowed,
        token=token,
        location=answered,
        authorization_reference=reference or new_authorization_reference(),
    )


def decide_authorization(
    ref: TokenRef,
    info: AuthorizationInfo,
    requested: LocationReferences | None,
    origin: Origin,
    now: datetime,
    *,
    requested_by: str | None = None,
) -> TokenAuthorizationDecided:
    """The event recording an authorization we decided (before we answer)."""
    assert info.authorization_reference is not None
    return TokenAuthorizationDecided(
        **recorded_now(ref.key, now, origin),
        payload=TokenAuthorizationDecidedPayload(
            **ref.model_dump(),
            allowed=info.allowed,
            authorization_reference=info.authorization_reference,
            requested=requested,
            location=info.location,
            requested_by=requested_by,
            decided_at=now,
        ),
    )
