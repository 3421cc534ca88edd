"""Decisions of the Credentials slice (credentials.asciidoc). Pure.

``PartnerState`` is the fold of a partner's events; the same fold feeds the
MongoDB partners view, so what the API checks is what the events say.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas.events import (
    EventMeta,
    PartnerCredentialsUpdated,
    PartnerInvited,
    PartnerRegistered,
    PartnerUnregistered,
    Party,
    new_event_id,
)
from schemas.events.partners import (
    PartnerConnectionPayload,
    PartnerInvitedPayload,
    PartnerUnregisteredPayload,
)
from schemas.ocpi.credentials import CredentialsRole, Role
from schemas.ocpi.versions import Endpoint

PartnerEvent = PartnerInvited | PartnerRegistered | PartnerCredentialsUpdated | PartnerUnregistered


class PartnerState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    partner_id: str
    status: Literal["invited", "registered", "unregistered"]
    token_a_hash: str | None = None
    invited_as: Role | None = None
    direction: Literal["inbound", "outbound"] | None = None
    version: str | None = None
    versions_url: str | None = None
    endpoints: tuple[Endpoint, ...] = ()
    roles: tuple[CredentialsRole, ...] = ()
    their_token_hash: str | None = None
    our_token_encrypted: str | None = None
    legacy_token: bool = False

    def endpoint(self, identifier: str, role: str) -> str | None:
        for e in self.endpoints:
            if e.identifier == identifier and e.role == role:
                return str(e.url)
        return None

    def owns(self, country_code: str, party_id: str) -> bool:
        """May this partner write objects under (country_code, party_id)?"""
        return any(
            r.country_code.upper() == country_code.upper()
            and r.party_id.upper() == party_id.upper()
            for r in self.roles
        )


def evolve(state: PartnerState | None, event: PartnerEvent) -> PartnerState:
    if isinstance(event, PartnerInvited):
        p = event.payload
        roles = state.roles if state else ()
        return PartnerState(
            partner_id=p.partner_id,
            status="invited",
            token_a_hash=p.token_a_hash,
            invited_as=p.role,
            roles=roles,
            legacy_token=p.legacy_token,
        )
    if isinstance(event, PartnerRegistered | PartnerCredentialsUpdated):
        c = event.payload
        return PartnerState(
            partner_id=c.partner_id,
            status="registered",
            token_a_hash=None,  # TOKEN_A stops working once registration completes
            invited_as=state.invited_as if state else None,
            direction=c.direction,
            version=c.version,
            versions_url=c.versions_url,
            endpoints=c.endpoints,
            roles=c.roles,
            their_token_hash=c.their_token_hash,
            our_token_encrypted=c.our_token_encrypted,
            legacy_token=c.legacy_token,
        )
    assert state is not None, "an unregistration needs a partner"
    return state.model_copy(
        update={"status": "unregistered", "their_token_hash": None, "our_token_encrypted": None}
    )


class NotAllowedError(Exception):
    """The request is not allowed in the partner's current state (HTTP 405 on
    the credentials endpoint, credentials.asciidoc POST/PUT/DELETE)."""


def _meta(partner_id: str, now: datetime, source: Party, correlation_id: str) -> dict[str, object]:
    return {
        "event_id": new_event_id(),
        "aggregate_key": partner_id,
        "occurred_at": now,
        "recorded_at": now,
        "source": source,
        "correlation_id": correlation_id,
    }


def decide_invite(
    state: PartnerState | None,
    *,
    partner_id: str,
    country_code: str | None,
    party_id: str | None,
    role: Role | None,
    token_a_hash: str,
    legacy_token: bool = False,
    now: datetime,
    us: Party,
    correlation_id: str,
) -> list[EventMeta]:
    if state is not None and state.status == "registered":
        raise NotAllowedError(
            f"partner {partner_id} is registered; unregister it before a new invite"
        )
    return [
        PartnerInvited(
            **_meta(partner_id, now, us, correlation_id),
            payload=PartnerInvitedPayload(
                partner_id=partner_id,
                country_code=country_code.upper() if country_code else None,
                party_id=party_id.upper() if party_id else None,
                role=role,
                token_a_hash=token_a_hash,
                legacy_token=legacy_token,
            ),
        )
    ]


def decide_connection(
    state: PartnerState | None,
    *,
    method: Literal["POST", "PUT"],
    connection: PartnerConnectionPayload,
    now: datetime,
    source: Party,
    correlation_id: str,
) -> list[EventMeta]:
    """A credentials POST registers, a PUT updates (credentials.asciidoc)."""
    registered = state is not None and state.status == "registered"
    if method == "POST" and registered:
        raise NotAllowedError("already registered: use PUT to update the credentials")
    if method == "PUT" and not registered:
        raise NotAllowedError("not registered: use POST to register")
    meta = _meta(connection.partner_id, now, source, correlation_id)
    if method == "POST":
        return [PartnerRegistered(**meta, payload=connection)]
    return [PartnerCredentialsUpdated(**meta, payload=connection)]


def decide_unregister(
    state: PartnerState | None, *, now: datetime, source: Party, correlation_id: str
) -> list[EventMeta]:
    if state is None or state.status != "registered":
        raise NotAllowedError("not registered")
    return [
        PartnerUnregistered(
            **_meta(state.partner_id, now, source, correlation_id),
            payload=PartnerUnregisteredPayload(partner_id=state.partner_id),
        )
    ]
