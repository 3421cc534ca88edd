"""Events of the Credentials slice: who our partners are and how we talk.

Topic ``ocpi.partners.v1``, keyed by partner id. Tokens are never stored in
clear: tokens partners present to us are kept as SHA-256 hashes; the token we
present to a partner is kept encrypted with the platform's secret key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events.envelope import EventMeta
from schemas.ocpi.credentials import CredentialsRole, Role
from schemas.ocpi.versions import Endpoint


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PartnerInvitedPayload(_Payload):
    """A token issued before registration completes: a TOKEN_A we hand out,
    or, when we register with them, the token we send them (party unknown
    until their credentials answer)."""

    partner_id: str = Field(min_length=1, max_length=40)
    country_code: str | None
    party_id: str | None
    role: Role | None
    token_a_hash: str
    # The partner sends its token un-encoded (OCPI 2.1 habit); accept that.
    legacy_token: bool = False


class PartnerInvited(EventMeta):
    """We issued a TOKEN_A for a partner to register with us."""

    event_type: Literal["PartnerInvited"] = "PartnerInvited"
    schema_version: Literal[1] = 1
    payload: PartnerInvitedPayload


class PartnerConnectionPayload(_Payload):
    partner_id: str = Field(min_length=1, max_length=40)
    # inbound: they registered with us; outbound: we registered with them.
    direction: Literal["inbound", "outbound"]
    version: str
    versions_url: str
    endpoints: tuple[Endpoint, ...]
    roles: tuple[CredentialsRole, ...]
    # The token they present to us (our TOKEN_C, or our TOKEN_B when we
    # registered with them), hashed.
    their_token_hash: str
    # The token we present to them, encrypted (never logged, never sent on).
    our_token_encrypted: str
    legacy_token: bool = False


class PartnerRegistered(EventMeta):
    """A registration completed (credentials POST, either direction)."""

    event_type: Literal["PartnerRegistered"] = "PartnerRegistered"
    schema_version: Literal[1] = 1
    payload: PartnerConnectionPayload


class PartnerCredentialsUpdated(EventMeta):
    """Credentials were rotated or the version/endpoints changed (credentials PUT)."""

    event_type: Literal["PartnerCredentialsUpdated"] = "PartnerCredentialsUpdated"
    schema_version: Literal[1] = 1
    payload: PartnerConnectionPayload


class PartnerUnregisteredPayload(_Payload):
    partner_id: str


class PartnerUnregistered(EventMeta):
    """The connection ended (credentials DELETE, either direction)."""

    event_type: Literal["PartnerUnregistered"] = "PartnerUnregistered"
    schema_version: Literal[1] = 1
    payload: PartnerUnregisteredPayload
