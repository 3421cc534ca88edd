"""Events of the Tokens slice, on topic ``ocpi.tokens.v1``.

Every event about one token is keyed by ``token_key`` (the owning party, the
uid and the type, upper-cased): a Token is identified by (uid, type) within
its party (mod_tokens, Token.uid), so its writes and the authorizations we
decide for it keep their order.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.events.envelope import EventMeta
from schemas.ocpi.common import DateTime, fold
from schemas.ocpi.tokens import AllowedType, LocationReferences
from schemas.ocpi.types import TokenType, ci


def token_key(country_code: str, party_id: str, uid: str, token_type: str) -> str:
    """Aggregate key of a token: ``COUNTRY_CODE/PARTY_ID/UID/TYPE``, folded
    (CiStrings compare case-insensitively)."""
    return "/".join(fold(part) for part in (country_code, party_id, uid, token_type))


class TokenRef(BaseModel):
    """The token an event is about; identifiers as received."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    country_code: str
    party_id: str
    uid: str
    type: TokenType

    @property
    def key(self) -> str:
        return token_key(self.country_code, self.party_id, self.uid, self.type.value)


class TokenPutPayload(TokenRef):
    """``token`` is the complete OCPI Token in the JSON form of
    ``schemas.ocpi.tokens.Token``; it passed that model's checks."""

    token: dict[str, Any]
    last_updated: DateTime


class TokenPut(EventMeta):
    """The owner of a token (a partner eMSP, or we through ops) replaced it
    whole (OCPI PUT)."""

    event_type: Literal["TokenPut"] = "TokenPut"
    schema_version: Literal[1] = 1
    payload: TokenPutPayload


class TokenPatchedPayload(TokenRef):
    """``patch``: absent fields unchanged, ``null`` clears, any other value
    replaces the stored one whole; ``last_updated`` is always in it."""

    patch: dict[str, Any]
    last_updated: DateTime


class TokenPatched(EventMeta):
    """The owner of a token changed some of its fields (OCPI PATCH)."""

    event_type: Literal["TokenPatched"] = "TokenPatched"
    schema_version: Literal[1] = 1
    payload: TokenPatchedPayload


class TokenPolicy(BaseModel):
    """Our own rules for one of our tokens (ops; not an OCPI object), read by
    the real-time authorization we answer as eMSP.

    ``state``: ALLOWED, or the refusal to give (BLOCKED, EXPIRED, NO_CREDIT).
    ``expires_at``: from then on the token is EXPIRED. ``location_ids``: if
    set, the only locations the token may charge at (others NOT_ALLOWED)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: AllowedType = AllowedType.ALLOWED
    expires_at: DateTime | None = None
    location_ids: tuple[Annotated[str, ci(36)], ...] | None = None

    @field_validator("state")
    @classmethod
    def _a_state_of_the_account(cls, value: AllowedType) -> AllowedType:
        if value is AllowedType.NOT_ALLOWED:
            raise ValueError("NOT_ALLOWED depends on the location: use location_ids")
        return value


class TokenPolicySetPayload(TokenRef):
    policy: TokenPolicy


class TokenPolicySet(EventMeta):
    """We (as eMSP, through ops) set the authorization policy of our token."""

    event_type: Literal["TokenPolicySet"] = "TokenPolicySet"
    schema_version: Literal[1] = 1
    payload: TokenPolicySetPayload


class TokenAuthorizationDecidedPayload(TokenRef):
    """What we answered, as eMSP, to one real-time authorization request.

    ``requested`` is the LocationReferences of the request (None when it had
    none), ``location`` the one we answered with (only the EVSEs allowed).
    ``requested_by`` is the partner that asked (our partner id)."""

    allowed: AllowedType
    authorization_reference: str = Field(min_length=1, max_length=36)
    requested: LocationReferences | None = None
    location: LocationReferences | None = None
    requested_by: str | None = None
    decided_at: DateTime


class TokenAuthorizationDecided(EventMeta):
    """We decided a real-time authorization of one of our tokens. Written
    (and acknowledged) before the answer leaves, so the reference we hand out
    is on record for the Session and CDR that quote it."""

    event_type: Literal["TokenAuthorizationDecided"] = "TokenAuthorizationDecided"
    schema_version: Literal[1] = 1
    payload: TokenAuthorizationDecidedPayload
