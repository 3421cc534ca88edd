"""Ops API of the billing slice (issue 14, docs/adr/0035); role ``billing``.

* ``POST /ops/corporations``: register a corporation and its contract; the
  registration number and VAT id are checked per country (python-stdnum),
  an error names the field and the rule, and nothing is recorded.
* ``GET /ops/corporations[?status=&after=&limit=]``: the MySQL rows.
* ``GET /ops/corporations/{id}``: one corporation as the write path holds it.
* ``POST /ops/corporations/{id}/status``: suspend, reinstate, close; the
  active members' tokens follow (their policy in the tokens slice: BLOCKED,
  or ALLOWED again), so our real-time authorization refuses them.
* ``POST /ops/corporations/{id}/members``: invite a member by e-mail (the
  mailer sends the link, processors/invitation_mailer.py);
  ``GET`` lists them; ``POST .../members/{member_id}/invitation`` invites
  again (a new link; the older one stops working).

Invoices (docs/adr/0036), role ``billing`` too:

* ``POST /ops/billing/months/{month}/close``: close a month, as
  ``ocpi-hub billing close-month`` does (producers/invoicing.py).
* ``GET /ops/invoices[?corporation_id=&month=&status=&after=&limit=]``: the
  MySQL rows; ``GET /ops/invoices/{id}``: one with its lines.
* ``POST /ops/invoices/{id}/paid`` (``paid_on``, ``reference``) and
  ``POST /ops/invoices/{id}/void`` (``reason``): decided on the
  corporation's aggregate.

The members' side, following the link, is api/public/activation.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from api.deps import ContainerDep, CorrelationIdDep, NowDep
from api.errors import envelope
from api.ocpi.tokens import TokenWrites
from api.ops.access import OPS_ACCESS
from api.ops.billing_common import our_origin, row_json
from api.writes import ExactBody, JsonBodyOrNone, WritePathDep, body_of
from producers import tokens
from producers.billing.aggregate import SLICE as BILLING_SLICE
from producers.billing.corporations import (
    NewCorporation,
    StatusChange,
    decide_register,
    decide_status,
    new_id,
    shown,
)
from producers.billing.invoices import (
    InvoicePayment,
    InvoiceVoiding,
    corporation_of_invoice,
    decide_paid,
    decide_void,
    shown_invoice,
)
from producers.billing.members import (
    NewMember,
    active_member_tokens,
    decide_invite,
    new_invitation_id,
    shown_member,
    validity_patch,
)
from producers.billing.state import CorporationState
from producers.invoicing import close_month
from producers.write_path import Origin, RefusedError, WritePath
from projections.mysql.billing import BillingRowQuery
from schemas.events import Party
from schemas.events.billing import (
    CORPORATION_ID_PATTERN,
    INVOICE_ID_PATTERN,
    MEMBER_ID_PATTERN,
    MONTH_PATTERN,
    CorporationStatus,
    InvoiceStatus,
)
from schemas.events.tokens import TokenRef
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.tokens import AllowedType
from schemas.ocpi.types import TokenType

Json = dict[str, Any]

router = APIRouter(prefix="/ops/corporations", tags=["ops: billing"], dependencies=[OPS_ACCESS])

CorporationIdPath = Annotated[str, Path(pattern=CORPORATION_ID_PATTERN)]
MemberIdPath = Annotated[str, Path(pattern=MEMBER_ID_PATTERN)]


@dataclass(frozen=True)
class BillingWrites:
    """Writes of the billing slice, and what they cause in the tokens slice."""

    write_path: WritePath
    us: Party
    correlation_id: str
    now: datetime
    invitation_valid_for: timedelta

    @property
    def origin(self) -> Origin:
        return Origin(self.us, self.correlation_id)

    async def register(self, body: NewCorporation) -> CorporationState:
        corporation_id = new_id()
        return await self.write_path.write(
            BILLING_SLICE,
            corporation_id,
            lambda s: decide_register(
                s, corporation_id=corporation_id, body=body, origin=self.origin, now=self.now
            ),
        )

    async def change_status(self, corporation_id: str, change: StatusChange) -> CorporationState:
        """Record the change, then set each active member's token policy.
        A retry of the same request records nothing new and sets the
        policies again: that is how a failure between the two is repaired."""
        state = await self.write_path.write(
            BILLING_SLICE,
            corporation_id,
            lambda s: decide_status(
                s, corporation_id=corporation_id, change=change, origin=self.origin, now=self.now
            ),
        )
        await self.follow_tokens(state)
        return state

    async def follow_tokens(self, state: CorporationState) -> None:
        allowed = (
            AllowedType.ALLOWED if state.status is CorporationStatus.ACTIVE else AllowedType.BLOCKED
        )
        writes = TokenWrites(self.write_path, self.correlation_id, self.now)
        for uid, token_type in active_member_tokens(state):
            ref = TokenRef(
                country_code=self.us.country_code,
                party_id=self.us.party_id,
                uid=uid,
                type=TokenType(token_type),
            )
            current = await self.write_path.state(tokens.SLICE, ref.key)
            if current is None or current.token is None:
                continue  # activated, token not written yet: activation writes it
            # Keep what ops set otherwise (expiry, locations); only the state moves.
            policy: Json = current.policy.model_dump(mode="json") if current.policy else {}
            if policy.get("state") != allowed.value:
                await writes.set_policy(ref, policy | {"state": allowed.value})
            # The OCPI Token's own ``valid`` too: partner CPOs that hold our
            # tokens (pulled, whitelisted) see the suspension without asking.
            valid = allowed is AllowedType.ALLOWED
            if current.token.get("valid") is not valid:
                await writes.patch(ref, validity_patch(valid, self.now))

    async def invite(
        self, corporation_id: str, member_id: str, body: NewMember | None
    ) -> CorporationState:
        invitation_id = new_invitation_id()
        return await self.write_path.write(
            BILLING_SLICE,
            corporation_id,
            lambda s: decide_invite(
                s,
                corporation_id=corporation_id,
                member_id=member_id,
                body=body,
                invitation_id=invitation_id,
                valid_for=self.invitation_valid_for,
                origin=self.origin,
                now=self.now,
            ),
        )


def _writes(
    c: ContainerDep, w: WritePathDep, correlation_id: CorrelationIdDep, now: NowDep
) -> BillingWrites:
    s = c.settings
    return BillingWrites(
        w,
        Party(country_code=s.party_country_code, party_id=s.party_id),
        correlation_id,
        now,
        timedelta(seconds=s.billing_invitation_valid_s),
    )


BillingWritesDep = Annotated[BillingWrites, Depends(_writes)]


async def _held(w: WritePath, corporation_id: str) -> CorporationState:
    state = await w.state(BILLING_SLICE, corporation_id)
    if state is None:
        raise RefusedError(OcpiStatus.INVALID_PARAMETERS, f"no corporation {corporation_id!r}", 404)
    return state


@router.post("", openapi_extra=body_of(NewCorporation))
async def register_corporation(
    body: ExactBody, writes: BillingWritesDep, response: Response
) -> Json:
    state = await writes.register(NewCorporation.model_validate(body))
    response.status_code = 201
    return envelope(shown(state))


@router.get("")
async def list_corporations(
    c: ContainerDep,
    status: CorporationStatus | None = None,
    after: Annotated[str | None, Query(pattern=CORPORATION_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Json:
    rows = BillingRowQuery(c.mysql).corporations(
        status=status.value if status else None, after=after, limit=limit
    )
    return envelope([row_json(r) for r in rows])


@router.get("/{corporation_id}")
async def get_corporation(corporation_id: CorporationIdPath, w: WritePathDep) -> Json:
    return envelope(shown(await _held(w, corporation_id)))


@router.post("/{corporation_id}/status", openapi_extra=body_of(StatusChange))
async def change_corporation_status(
    corporation_id: CorporationIdPath, body: ExactBody, writes: BillingWritesDep
) -> Json:
    state = await writes.change_status(corporation_id, StatusChange.model_validate(body))
    return envelope(shown(state))


@router.post("/{corporation_id}/members", openapi_extra=body_of(NewMember))
async def invite_member(
    corporation_id: CorporationIdPath,
    body: ExactBody,
    writes: BillingWritesDep,
    response: Response,
) -> Json:
    member_id = new_id()
    state = await writes.invite(corporation_id, member_id, NewMember.model_validate(body))
    response.status_code = 201
    return envelope(shown_member(state.members[member_id]))


@router.get("/{corporation_id}/members")
async def list_members(corporation_id: CorporationIdPath, w: WritePathDep) -> Json:
    state = await _held(w, corporation_id)
    members = sorted(state.members.values(), key=lambda m: m.member_id)
    return envelope([shown_member(m) for m in members])


@router.post("/{corporation_id}/members/{member_id}/invitation")
async def invite_member_again(
    corporation_id: CorporationIdPath, member_id: MemberIdPath, writes: BillingWritesDep
) -> Json:
    state = await writes.invite(corporation_id, member_id, None)
    return envelope(shown_member(state.members[member_id]))


# --- invoices (docs/adr/0036) ---------------------------------------------------------

invoices_router = APIRouter(prefix="/ops", tags=["ops: billing"], dependencies=[OPS_ACCESS])

InvoiceIdPath = Annotated[str, Path(pattern=INVOICE_ID_PATTERN)]


@invoices_router.post("/billing/months/{month}/close")
async def close_billing_month(
    month: str, w: WritePathDep, c: ContainerDep, correlation_id: CorrelationIdDep, now: NowDep
) -> Json:
    """Invoice ``month`` (YYYY-MM): 409 when it has not ended or was closed
    already (nothing written); 400 for anything that is not a month (checked
    by producers/invoicing.py, so the command line says the same)."""
    report = await close_month(w, month=month, origin=our_origin(c, correlation_id), now=now)
    return envelope(report.shown())


@invoices_router.get("/invoices")
async def list_invoices(
    c: ContainerDep,
    corporation_id: Annotated[str | None, Query(pattern=CORPORATION_ID_PATTERN)] = None,
    month: Annotated[str | None, Query(pattern=MONTH_PATTERN)] = None,
    status: InvoiceStatus | None = None,
    after: Annotated[str | None, Query(pattern=INVOICE_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Json:
    rows = BillingRowQuery(c.mysql).invoices(
        corporation_id=corporation_id,
        month=month,
        status=status.value if status else None,
        after=after,
        limit=limit,
    )
    return envelope([row_json(r) for r in rows])


@invoices_router.get("/invoices/{invoice_id}")
async def get_invoice(invoice_id: InvoiceIdPath, c: ContainerDep) -> Json:
    query = BillingRowQuery(c.mysql)
    row = query.invoice(invoice_id)
    if row is None:
        raise RefusedError(OcpiStatus.INVALID_PARAMETERS, f"no invoice {invoice_id!r}", 404)
    out = row_json(row)
    out["lines"] = [row_json(line) for line in query.invoice_lines(invoice_id)]
    return envelope(out)


@invoices_router.post("/invoices/{invoice_id}/paid", openapi_extra=body_of(InvoicePayment))
async def mark_invoice_paid(
    invoice_id: InvoiceIdPath,
    body: JsonBodyOrNone,
    w: WritePathDep,
    c: ContainerDep,
    correlation_id: CorrelationIdDep,
    now: NowDep,
) -> Json:
    payment = InvoicePayment.model_validate(body if body is not None else {})
    origin = our_origin(c, correlation_id)
    invoice = await w.write(
        BILLING_SLICE,
        corporation_of_invoice(invoice_id),
        lambda s: decide_paid(s, invoice_id=invoice_id, body=payment, origin=origin, now=now),
    )
    return envelope(shown_invoice(invoice))


@invoices_router.post("/invoices/{invoice_id}/void", openapi_extra=body_of(InvoiceVoiding))
async def void_invoice(
    invoice_id: InvoiceIdPath,
    body: ExactBody,
    w: WritePathDep,
    c: ContainerDep,
    correlation_id: CorrelationIdDep,
    now: NowDep,
) -> Json:
    voiding = InvoiceVoiding.model_validate(body)
    origin = our_origin(c, correlation_id)
    invoice = await w.write(
        BILLING_SLICE,
        corporation_of_invoice(invoice_id),
        lambda s: decide_void(s, invoice_id=invoice_id, body=voiding, origin=origin, now=now),
    )
    return envelope(shown_invoice(invoice))
