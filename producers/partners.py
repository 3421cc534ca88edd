"""The partners slice (credentials.asciidoc; topic ``ocpi.partners.v1``,
keyed by partner id): its state, its fold and its decisions. Pure.

``PartnerState`` is the fold of a partner's events (``evolve``). The write
path keeps it per partner in the decision store (``SLICE``, docs/adr/0022),
found also by the hash of the one token the partner may present to us now
(``lookups``, docs/adr/0024); the MongoDB partners view is the same fold
with its log positions, for readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from producers.write_path import Decision, Origin, RefusedError, Slice, recorded_now
from schemas.events import (
    PartnerCredentialsUpdated,
    PartnerInvited,
    PartnerRegistered,
    PartnerUnregistered,
    Party,
)
from schemas.events.partners import (
    PartnerConnectionPayload,
    PartnerInvitedPayload,
    PartnerUnregisteredPayload,
)
from schemas.ocpi.credentials import CredentialsRole, Role
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.versions import Endpoint
from schemas.topics import PARTNERS

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
    # When the partner last completed a registration (our record of it):
    # changes recorded from then on reach it by push (processors/push.py).
    registered_at: datetime | None = None

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
            registered_at=event.recorded_at
            if isinstance(event, PartnerRegistered) or state is None
            else state.registered_at,
        )
    assert state is not None, "an unregistration needs a partner"
    return state.model_copy(
        update={"status": "unregistered", "their_token_hash": None, "our_token_encrypted": None}
    )


def tokens(state: PartnerState) -> tuple[str, ...]:
    """The hash of the token the partner may present to us now: its TOKEN_A
    while invited, the token we gave it once registered; none after."""
    if state.status == "invited" and state.token_a_hash:
        return (state.token_a_hash,)
    if state.status == "registered" and state.their_token_hash:
        return (state.their_token_hash,)
    return ()


SLICE: Slice[PartnerState] = Slice(
    "partners",
    PARTNERS,
    evolve,
    lambda state: state.model_dump_json().encode(),
    PartnerState.model_validate_json,
    tokens,
)


class NotAllowedError(RefusedError):
    """The request is not allowed in the partner's current state (HTTP 405 on
    the credentials endpoint, credentials.asciidoc POST/PUT/DELETE)."""

    def __init__(self, message: str) -> None:
        super().__init__(OcpiStatus.CLIENT_ERROR, message, 405)


def _still_presented(state: PartnerState | None, presented: str | None) -> None:
    """A partner's own request is decided on the state the log holds, which
    may have moved on since its token was checked (a rotation, a new
    invitation in between): the token must still be the one it may use."""
    if presented is not None and (state is None or presented not in tokens(state)):
        raise RefusedError(OcpiStatus.CLIENT_ERROR, "the token is no longer valid", 401)


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
) -> Decision[PartnerState]:
    if state is not None and state.status == "registered":
        raise NotAllowedError(
            f"partner {partner_id} is registered; unregister it before a new invite"
        )
    if partner_id.startswith("ops:"):
        # Kept for our operator's own commands (producers/received_commands.py).
        raise NotAllowedError(f"partner ids starting with 'ops:' are reserved: {partner_id}")
    return _decided(
        state,
        PartnerInvited(
            **recorded_now(partner_id, now, Origin(us, correlation_id)),
            payload=PartnerInvitedPayload(
                partner_id=partner_id,
                country_code=country_code.upper() if country_code else None,
                party_id=party_id.upper() if party_id else None,
                role=role,
                token_a_hash=token_a_hash,
                legacy_token=legacy_token,
            ),
        ),
    )


def _decided(state: PartnerState | None, event: PartnerEvent) -> Decision[PartnerState]:
    """Record ``event``; the answer is the partner as it leaves it."""
    return Decision([event], evolve(state, event))


def check_connection(state: PartnerState | None, method: Literal["POST", "PUT"]) -> None:
    """A credentials POST registers, a PUT updates (credentials.asciidoc):
    the other way round is not allowed."""
    registered = state is not None and state.status == "registered"
    if method == "POST" and registered:
        raise NotAllowedError("already registered: use PUT to update the credentials")
    if method == "PUT" and not registered:
        raise NotAllowedError("not registered: use POST to register")


def check_invited_role(state: PartnerState | None, roles: Sequence[CredentialsRole]) -> None:
    """A partner invited for a role must register with that role among its
    own (an invite for a CPO does not let a HUB in); a platform with several
    roles may list the others too. Refused with 2001, nothing recorded."""
    if state is None or state.status != "invited" or state.invited_as is None:
        return
    if not any(r.role == state.invited_as for r in roles):
        offered = ", ".join(r.role.value for r in roles) or "none"
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS,
            f"invited as {state.invited_as.value}, but the credentials list the roles {offered}",
        )


def decide_connection(
    state: PartnerState | None,
    *,
    method: Literal["POST", "PUT"],
    connection: PartnerConnectionPayload,
    now: datetime,
    source: Party,
    correlation_id: str,
    presented: str | None = None,
) -> Decision[PartnerState]:
    """Record a registration (POST) or an update (PUT) of the connection.
    ``presented``: the hash of the token the partner's request came with
    (none for our own writes)."""
    check_connection(state, method)
    _still_presented(state, presented)
    if method == "POST":
        check_invited_role(state, connection.roles)
    meta = recorded_now(connection.partner_id, now, Origin(source, correlation_id))
    if method == "POST":
        return _decided(state, PartnerRegistered(**meta, payload=connection))
    return _decided(state, PartnerCredentialsUpdated(**meta, payload=connection))


def registered(state: PartnerState | None) -> PartnerState:
    """The state of a registered partner, else NotAllowedError."""
    if state is None or state.status != "registered":
        raise NotAllowedError("not registered")
    return state


def connection_of(state: PartnerState | None) -> PartnerConnectionPayload:
    """The connection a registered partner's state holds, to record it again
    with some of it changed (our side of a token rotation)."""
    state = registered(state)
    assert state.version and state.versions_url and state.direction
    assert state.their_token_hash and state.our_token_encrypted
    return PartnerConnectionPayload(
        partner_id=state.partner_id,
        direction=state.direction,
        version=state.version,
        versions_url=state.versions_url,
        endpoints=state.endpoints,
        roles=state.roles,
        their_token_hash=state.their_token_hash,
        our_token_encrypted=state.our_token_encrypted,
        legacy_token=state.legacy_token,
    )


def decide_unregister(
    state: PartnerState | None,
    *,
    now: datetime,
    source: Party,
    correlation_id: str,
    presented: str | None = None,
) -> Decision[PartnerState]:
    state = registered(state)
    _still_presented(state, presented)
    return _decided(
        state,
        PartnerUnregistered(
            **recorded_now(state.partner_id, now, Origin(source, correlation_id)),
            payload=PartnerUnregisteredPayload(partner_id=state.partner_id),
        ),
    )
