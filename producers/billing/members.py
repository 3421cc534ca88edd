"""A corporation's members (docs/adr/0035, 5 and 6): invited by e-mail,
activated by a link, given an OCPI token of ours whose ``group_id`` is
the corporation.

The activation link carries a secret derived from the invitation with a
key only our processes hold (``link_secret``): no secret is in an event,
and a new invitation makes the older link useless. An invitation's e-mail
is recorded once (``decide_mailed``; the mailer is
processors/invitation_mailer.py). Pure: no I/O, the clock passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from producers.billing.state import CorporationState, MemberState, require_corporation
from producers.write_path import Decision, Origin, RefusedError, conflict, recorded_now, unknown
from schemas.events.billing import (
    CorporationStatus,
    Email,
    InvitationMailed,
    InvitationMailedPayload,
    MemberActivated,
    MemberActivatedPayload,
    MemberInvited,
    MemberInvitedPayload,
    MemberStatus,
    Text,
)
from schemas.ocpi.common import format_ocpi_datetime
from schemas.ocpi.status_codes import OcpiStatus


class NewMember(BaseModel):
    """``POST /ops/corporations/{id}/members``: invited by e-mail."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Text
    email: Email
    cost_centre: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    rfid_uid: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,36}$")] | None = None


def _with_member(state: CorporationState, member: MemberState, at: datetime) -> CorporationState:
    return state.model_copy(
        update={"members": {**state.members, member.member_id: member}, "updated_at": at}
    )


MemberEvents = (MemberInvited, InvitationMailed, MemberActivated)


def evolve_member(
    state: CorporationState, event: MemberInvited | InvitationMailed | MemberActivated
) -> CorporationState:
    """Fold a member's invitation, its e-mail and its activation."""
    if isinstance(event, MemberInvited):
        i = event.payload
        before = state.members.get(i.member_id)
        member = MemberState(
            member_id=i.member_id,
            name=i.name,
            email=i.email,
            cost_centre=i.cost_centre,
            status=MemberStatus.INVITED,
            invitation_id=i.invitation_id,
            expires_at=i.expires_at,
            rfid_uid=i.rfid_uid,
            invited_at=before.invited_at if before else i.at,
        )
        return _with_member(state, member, i.at)
    member_id = event.payload.member_id
    held = state.members.get(member_id)
    if held is None:
        return state
    if isinstance(event, InvitationMailed):
        m = event.payload
        return _with_member(
            state, held.model_copy(update={"mailed_invitation_id": m.invitation_id}), m.at
        )
    a = event.payload
    activated = held.model_copy(
        update={
            "status": MemberStatus.ACTIVE,
            "token_uid": a.token_uid,
            "token_type": a.token_type,
            "activated_at": a.at,
        }
    )
    return _with_member(state, activated, a.at)


def new_invitation_id() -> str:
    return secrets.token_hex(16)


def link_key(platform_key: bytes) -> bytes:
    """The key of activation links, derived from the platform's secret key
    so that it is never in an event and needs no setting of its own."""
    return hmac.new(platform_key, b"ocpi-hub billing activation link v1", hashlib.sha256).digest()


def link_secret(key: bytes, corporation_id: str, member_id: str, invitation_id: str) -> str:
    """The secret part of one invitation's link (HMAC-SHA256, hex)."""
    message = f"{corporation_id}/{member_id}/{invitation_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def link_matches(
    key: bytes, corporation_id: str, member_id: str, invitation_id: str, secret: str
) -> bool:
    expected = link_secret(key, corporation_id, member_id, invitation_id)
    return hmac.compare_digest(expected, secret)


def member_token_uid(member: MemberState) -> tuple[str, str]:
    """The uid and type of the token a member gets: the RFID card's uid
    when one was given, else an APP_USER token named after the member."""
    if member.rfid_uid is not None:
        return member.rfid_uid.upper(), "RFID"
    return f"CB{member.member_id.upper()}", "APP_USER"


def member_token_type(value: str) -> Literal["RFID", "APP_USER"]:
    return "RFID" if value == "RFID" else "APP_USER"


def member_token(
    state: CorporationState,
    member: MemberState,
    *,
    country_code: str,
    party_id: str,
    now: datetime,
) -> dict[str, Any]:
    """The OCPI Token (mod_tokens) we issue to an activated member; its
    ``group_id`` is the corporation, so partners see the fleet together."""
    uid, token_type = member_token_uid(member)
    return {
        "country_code": country_code,
        "party_id": party_id,
        "uid": uid,
        "type": token_type,
        "contract_id": f"{country_code}{party_id}C{member.member_id.upper()}",
        "issuer": state.legal_name[:64],
        "group_id": state.corporation_id.upper(),
        "valid": True,
        # Ask us in real time whenever the CPO can: a suspension then stops
        # the token at once (whitelist caches of partners cannot lag).
        "whitelist": "ALLOWED",
        "last_updated": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }


def validity_patch(valid: bool, now: datetime) -> dict[str, Any]:
    """The OCPI PATCH of a member token's ``valid`` (suspension, reinstatement)."""
    return {"valid": valid, "last_updated": format_ocpi_datetime(now)}


def _decided(
    state: CorporationState, events: list[MemberInvited | InvitationMailed | MemberActivated]
) -> Decision[CorporationState]:
    after = state
    for event in events:
        after = evolve_member(after, event)
    return Decision(events, after)


def decide_invite(
    state: CorporationState | None,
    *,
    corporation_id: str,
    member_id: str,
    body: NewMember | None,
    invitation_id: str,
    valid_for: timedelta,
    origin: Origin,
    now: datetime,
) -> Decision[CorporationState]:
    """Invite a new member (``body``), or invite again a member who has not
    activated yet (``body`` None): a new invitation id, so the older link
    stops working."""
    current = require_corporation(state, corporation_id)
    if current.status is not CorporationStatus.ACTIVE:
        raise conflict(f"corporation {corporation_id!r} is {current.status.value}")
    held = current.members.get(member_id)
    if body is not None:
        if held is not None:
            raise conflict(f"member {member_id!r} exists")
        email = body.email.lower()
        if any(m.email.lower() == email for m in current.members.values()):
            raise conflict(f"a member with e-mail {body.email!r} exists in this corporation")
        name, email, cost_centre, rfid = body.name, body.email, body.cost_centre, body.rfid_uid
    else:
        if held is None:
            raise unknown(f"member {member_id!r}")
        if held.status is MemberStatus.ACTIVE:
            raise conflict(f"member {member_id!r} is already active")
        name, email, cost_centre, rfid = held.name, held.email, held.cost_centre, held.rfid_uid
    event = MemberInvited(
        **recorded_now(corporation_id, now, origin),
        payload=MemberInvitedPayload(
            corporation_id=corporation_id,
            member_id=member_id,
            name=name,
            email=email,
            cost_centre=cost_centre,
            invitation_id=invitation_id,
            expires_at=now + valid_for,
            rfid_uid=rfid,
            at=now,
        ),
    )
    return _decided(current, [event])


def decide_mailed(
    state: CorporationState | None,
    *,
    corporation_id: str,
    member_id: str,
    invitation_id: str,
    message_id: str,
    origin: Origin,
    now: datetime,
) -> Decision[CorporationState]:
    """Record that an invitation's e-mail was accepted by the SMTP server;
    once per invitation."""
    current = require_corporation(state, corporation_id)
    held = current.members.get(member_id)
    if held is None:
        raise unknown(f"member {member_id!r}")
    if held.mailed_invitation_id == invitation_id:
        return Decision([], current)
    event = InvitationMailed(
        **recorded_now(corporation_id, now, origin),
        payload=InvitationMailedPayload(
            corporation_id=corporation_id,
            member_id=member_id,
            invitation_id=invitation_id,
            message_id=message_id,
            at=now,
        ),
    )
    return _decided(current, [event])


class LinkRefusedError(RefusedError):
    """The activation link cannot activate (unknown, used up, expired)."""


def _link_refused(message: str, http_status: int = 410) -> LinkRefusedError:
    return LinkRefusedError(OcpiStatus.CLIENT_ERROR, message, http_status)


def decide_activate(
    state: CorporationState | None,
    *,
    corporation_id: str,
    member_id: str,
    invitation_id: str,
    origin: Origin,
    now: datetime,
) -> Decision[CorporationState]:
    """Activate the member of a valid, unexpired link. The same link once
    more, after it activated, records nothing and answers the member (the
    token is then written again, which is how a failure between the two
    writes is repaired); any other use is refused."""
    if state is None or member_id not in state.members:
        raise _link_refused("this activation link is not known", 404)
    held = state.members[member_id]
    if held.invitation_id != invitation_id:
        raise _link_refused("this activation link was replaced by a newer invitation")
    if held.status is MemberStatus.ACTIVE:
        return Decision([], state)
    if now >= held.expires_at:
        raise _link_refused("this activation link has expired: ask for a new invitation")
    if state.status is not CorporationStatus.ACTIVE:
        raise _link_refused(f"the corporation's account is {state.status.value.lower()}", 409)
    uid, token_type = member_token_uid(held)
    event = MemberActivated(
        **recorded_now(corporation_id, now, origin),
        payload=MemberActivatedPayload(
            corporation_id=corporation_id,
            member_id=member_id,
            invitation_id=invitation_id,
            token_uid=uid,
            token_type=member_token_type(token_type),
            at=now,
        ),
    )
    return _decided(state, [event])


def active_member_tokens(state: CorporationState) -> list[tuple[str, str]]:
    """(uid, type) of the tokens of the corporation's active members."""
    return [
        (m.token_uid, m.token_type)
        for m in state.members.values()
        if m.status is MemberStatus.ACTIVE and m.token_uid and m.token_type
    ]


def shown_member(member: MemberState) -> dict[str, Any]:
    return member.model_dump(mode="json")
