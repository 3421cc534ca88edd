"""A member's activation link (issue 14, docs/adr/0035).

``GET /billing/activation/{corporation}/{member}/{invitation}/{secret}``
answers a small page with one button; the button's ``POST`` to the same
address activates. A GET changes nothing: mail scanners and link previews
open links on their own, and must not use up the member's invitation.

The secret is the link's HMAC (producers/billing/members.py: ``link_secret``): a
link that does not match is "not known", whatever else is wrong with it.
Activating records ``MemberActivated`` through the write path, then writes
the member's token through the tokens slice (an OCPI Token of ours), so
authorization, whitelist and commands treat it like any token of ours.
The same link once more after it activated writes the token again and
answers the same page: a failure between the two writes is repaired by
pressing the button again.
"""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse

from api.deps import ContainerDep, CorrelationIdDep, NowDep
from api.ocpi.tokens import TokenWrites
from api.writes import WritePathDep
from ocpi_hub.bootstrap import billing_link_key
from producers.billing.aggregate import SLICE
from producers.billing.members import (
    LinkRefusedError,
    decide_activate,
    link_matches,
    member_token,
    validity_patch,
)
from producers.write_path import Origin, RefusedError
from schemas.events import Party
from schemas.events.billing import CORPORATION_ID_PATTERN, MEMBER_ID_PATTERN, CorporationStatus
from schemas.events.tokens import TokenRef
from schemas.ocpi.tokens import AllowedType
from schemas.ocpi.types import TokenType

router = APIRouter(prefix="/billing/activation", tags=["public: member activation"])

_PATH = "/{corporation_id}/{member_id}/{invitation_id}/{secret}"
CorporationIdPath = Annotated[str, Path(pattern=CORPORATION_ID_PATTERN)]
MemberIdPath = Annotated[str, Path(pattern=MEMBER_ID_PATTERN)]
InvitationPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
SecretPath = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width">'
        f"<title>{escape(title)}</title></head><body><main><h1>{escape(title)}</h1>"
        f"{body}</main></body></html>",
        status_code=status,
    )


def _refused(exc: RefusedError) -> HTMLResponse:
    return _page(
        "This link cannot activate an account",
        f"<p>{escape(exc.message)}</p>",
        410 if exc.http_status == 200 else exc.http_status,
    )


def _checked(
    c: ContainerDep, corporation_id: str, member_id: str, invitation_id: str, secret: str
) -> bool:
    key = billing_link_key(c.settings)
    return link_matches(key, corporation_id, member_id, invitation_id, secret)


@router.get(_PATH, response_class=HTMLResponse)
async def activation_page(
    corporation_id: CorporationIdPath,
    member_id: MemberIdPath,
    invitation_id: InvitationPath,
    secret: SecretPath,
    c: ContainerDep,
    w: WritePathDep,
    now: NowDep,
) -> HTMLResponse:
    if not _checked(c, corporation_id, member_id, invitation_id, secret):
        return _page("This link cannot activate an account", "<p>This link is not known.</p>", 404)
    state = await w.state(SLICE, corporation_id)
    member = state.members.get(member_id) if state else None
    if state is None or member is None or member.invitation_id != invitation_id:
        return _page(
            "This link cannot activate an account",
            "<p>This link was replaced or is not known.</p>",
            410,
        )
    if now >= member.expires_at and member.activated_at is None:
        return _page("This link cannot activate an account", "<p>This link has expired.</p>", 410)
    return _page(
        f"Charging with {state.legal_name}",
        f"<p>Hello {escape(member.name)}, activate your charging account with "
        f"{escape(state.legal_name)}.</p>"
        "<form method=post><button type=submit name=activate value=1>Activate</button></form>",
    )


@router.post(_PATH, response_class=HTMLResponse)
async def activate(
    corporation_id: CorporationIdPath,
    member_id: MemberIdPath,
    invitation_id: InvitationPath,
    secret: SecretPath,
    c: ContainerDep,
    w: WritePathDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
) -> HTMLResponse:
    if not _checked(c, corporation_id, member_id, invitation_id, secret):
        return _page("This link cannot activate an account", "<p>This link is not known.</p>", 404)
    s = c.settings
    us = Party(country_code=s.party_country_code, party_id=s.party_id)
    origin = Origin(us, correlation_id)
    try:
        state = await w.write(
            SLICE,
            corporation_id,
            lambda held: decide_activate(
                held,
                corporation_id=corporation_id,
                member_id=member_id,
                invitation_id=invitation_id,
                origin=origin,
                now=now,
            ),
        )
    except LinkRefusedError as exc:
        return _refused(exc)
    member = state.members[member_id]
    token = member_token(
        state, member, country_code=s.party_country_code, party_id=s.party_id, now=now
    )
    # The link followed again while the corporation is suspended or closed
    # (the member was activated before): the token is written as it must be now.
    token["valid"] = state.status is CorporationStatus.ACTIVE
    ref = TokenRef(
        country_code=s.party_country_code,
        party_id=s.party_id,
        uid=token["uid"],
        type=TokenType(token["type"]),
    )
    writes = TokenWrites(w, correlation_id, now)
    await writes.put(ref, token)
    # Suspended meanwhile (after the activation, before the token existed):
    # the suspension found no token to block, so block it here.
    after = await w.state(SLICE, corporation_id)
    if after is not None and after.status is not CorporationStatus.ACTIVE:
        await writes.set_policy(ref, {"state": AllowedType.BLOCKED.value})
        await writes.patch(ref, validity_patch(False, now))
    return _page(
        "Your charging account is active",
        f"<p>Welcome, {escape(member.name)}. Your token: "
        f"<code id=token-uid>{escape(ref.uid)}</code> ({escape(ref.type.value)}).</p>",
    )
