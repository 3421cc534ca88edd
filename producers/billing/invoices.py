"""Monthly invoices (docs/adr/0036): the draft takes the corporation's open
charges and reversals in one decision (lines per cost centre and member,
monthly fees, VAT once on the net total), then issue (the number the
numbering aggregate gave, producers/invoicing.py walks the month), paid
and void. The fold also keeps what an issued invoice's files are rendered
from (``invoice_source``, docs/adr/0040, 1). Pure: no I/O, the clock
passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from producers.billing.charges import CENT
from producers.billing.state import (
    ChargeState,
    CorporationState,
    InvoiceSource,
    InvoiceState,
    Mailing,
    require_corporation,
)
from producers.write_path import Decision, Origin, conflict, recorded_now, unknown
from schemas.events.billing import (
    FIRST_MAILING,
    Buyer,
    CorporationStatus,
    CostCentreTotal,
    InvoiceDrafted,
    InvoiceDraftedPayload,
    InvoiceIssued,
    InvoiceIssuedPayload,
    InvoiceLine,
    InvoiceLineKind,
    InvoicePaid,
    InvoicePaidPayload,
    InvoiceStatus,
    InvoiceVoided,
    InvoiceVoidedPayload,
    MemberStatus,
    VatBreakdown,
)

InvoiceEvents = (InvoiceDrafted, InvoiceIssued, InvoicePaid, InvoiceVoided)


def invoice_id_of(corporation_id: str, month: str) -> str:
    """The one invoice of a corporation and month: a rerun names the same."""
    return f"{corporation_id}-{month.replace('-', '')}"


def corporation_of_invoice(invoice_id: str) -> str:
    return invoice_id.rsplit("-", 1)[0]


def _evolve_invoice(
    state: CorporationState, event: InvoiceDrafted | InvoiceIssued | InvoicePaid | InvoiceVoided
) -> CorporationState:
    if isinstance(event, InvoiceDrafted):
        d = event.payload
        invoice = InvoiceState(
            invoice_id=d.invoice_id,
            corporation_id=d.corporation_id,
            month=d.month,
            period_start=d.period_start,
            period_end=d.period_end,
            status=InvoiceStatus.DRAFT,
            buyer_legal_name=d.buyer.legal_name,
            currency=d.currency,
            net_total=d.net_total,
            vat_total=d.vat_total,
            gross_total=d.gross_total,
            payment_term_days=d.payment_term_days,
            lines=len(d.lines),
            drafted_at=d.at,
            updated_at=d.at,
            vat_rate=d.contract.vat_rate,
        )
        return state.model_copy(
            update={
                "invoices": {**state.invoices, d.invoice_id: invoice},
                "charge_invoices": state.charge_invoices
                | dict.fromkeys(d.charge_keys, d.invoice_id),
                "reversal_invoices": state.reversal_invoices
                | dict.fromkeys(d.reversal_keys, d.invoice_id),
            }
        )
    held = state.invoices.get(event.payload.invoice_id)
    if held is None:
        return state
    maps: dict[str, Any] = {}
    if isinstance(event, InvoiceIssued):
        i = event.payload
        changed: dict[str, Any] = {
            "status": InvoiceStatus.ISSUED,
            "number": i.number,
            "issue_date": i.issue_date,
            "due_date": i.due_date,
            "updated_at": i.at,
        }
    elif isinstance(event, InvoicePaid):
        p = event.payload
        changed = {
            "status": InvoiceStatus.PAID,
            "paid_on": p.paid_on,
            "payment_reference": p.reference,
            "updated_at": p.at,
        }
    else:
        v = event.payload
        changed = {"status": InvoiceStatus.VOID, "void_reason": v.reason, "updated_at": v.at}
        # A void invoice bills nothing: its charges and reversals are open
        # again and land on the next invoice drafted.
        maps = {
            "charge_invoices": {
                k: i for k, i in state.charge_invoices.items() if i != v.invoice_id
            },
            "reversal_invoices": {
                k: i for k, i in state.reversal_invoices.items() if i != v.invoice_id
            },
        }
    invoice = held.model_copy(update=changed)
    return state.model_copy(
        update={"invoices": {**state.invoices, held.invoice_id: invoice}, **maps}
    )


def _cents(value: Decimal) -> Decimal:
    # ROUND_HALF_UP rounds a half away from zero, for negative amounts too.
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def vat_of(net_total: Decimal, rate: Decimal) -> Decimal:
    """The VAT of a net total at one rate: computed once on the total,
    rounded half up to the cent (docs/adr/0036)."""
    return _cents(net_total * rate)


def _ended_before(charge: ChargeState, period_end: datetime) -> bool:
    return (
        charge.ended_at is not None
        and charge.energy_kwh is not None
        and charge.ended_at < period_end
    )


def open_items(state: CorporationState, period_end: datetime) -> tuple[list[str], list[str]]:
    """The CDR keys of the charges, and of the reversals, that an invoice
    of a period ending at ``period_end`` takes: recorded, on no invoice yet
    (or on a voided one), the session ended before the period's end. A
    reversal goes with its charge, or on the next invoice once its charge
    was invoiced. A Credit CDR read before its CDR reversed nothing (0): it
    is on no invoice."""
    charges: list[str] = []
    reversals: list[str] = []
    on_invoice, reversed_on = state.charge_invoices, state.reversal_invoices
    for key, charge in state.charges.items():
        invoiced = key in on_invoice
        due = not invoiced and _ended_before(charge, period_end)
        if due:
            charges.append(key)
        if (
            charge.reversed_by is not None
            and key not in reversed_on
            and charge.reversal_amount
            and (due or invoiced)
        ):
            reversals.append(key)
    return sorted(charges), sorted(reversals)


def invoice_lines(
    state: CorporationState,
    charge_keys: list[str],
    reversal_keys: list[str],
    *,
    period_start: datetime,
    period_end: datetime,
) -> list[InvoiceLine]:
    """The lines of an invoice, pure: per cost centre and member, the
    sessions at each price per kWh, the reversals, and the monthly fee of
    each member active at the period's end (unless the corporation had
    closed before the period began)."""
    groups: dict[tuple[str, str, InvoiceLineKind, Decimal], list[Decimal | int]] = {}

    def add(charge: ChargeState, kind: InvoiceLineKind, energy: Decimal, net: Decimal) -> None:
        price = charge.price_per_kwh if charge.price_per_kwh is not None else Decimal(0)
        group = (charge.cost_centre or "", charge.member_id, kind, price)
        sums = groups.setdefault(group, [0, Decimal(0), Decimal(0)])
        sums[0] += 1
        sums[1] += energy
        sums[2] += net

    for key in charge_keys:
        charge = state.charges[key]
        add(charge, InvoiceLineKind.CHARGES, charge.energy_kwh or Decimal(0), charge.amount)
    for key in reversal_keys:
        charge = state.charges[key]
        assert charge.reversal_amount is not None
        add(
            charge,
            InvoiceLineKind.REVERSALS,
            -(charge.energy_kwh or Decimal(0)),
            charge.reversal_amount,
        )
    fee = state.contract.monthly_fee_per_member
    closed_before = (
        state.status is CorporationStatus.CLOSED
        and state.status_since is not None
        and state.status_since < period_start
    )
    if fee and not closed_before:
        for member in state.members.values():
            if (
                member.status is MemberStatus.ACTIVE
                and member.activated_at is not None
                and member.activated_at < period_end
            ):
                group = (
                    member.cost_centre or "",
                    member.member_id,
                    InvoiceLineKind.MONTHLY_FEE,
                    fee,
                )
                groups[group] = [0, Decimal(0), _cents(fee)]
    order = list(InvoiceLineKind)

    def name(member_id: str) -> str:
        member = state.members.get(member_id)
        return member.name if member is not None else member_id

    def sort_key(group: tuple[str, str, InvoiceLineKind, Decimal]) -> tuple[Any, ...]:
        centre, member_id, kind, price = group
        # Lines without a cost centre last; then by member, kind and price.
        return (centre == "", centre, name(member_id), member_id, order.index(kind), price)

    return [
        InvoiceLine(
            kind=kind,
            member_id=member_id,
            member_name=name(member_id),
            cost_centre=centre or None,
            sessions=int(sums[0]),
            energy_kwh=Decimal(sums[1]),
            unit_price=price,
            net=Decimal(sums[2]),
        )
        for (centre, member_id, kind, price), sums in sorted(
            groups.items(), key=lambda item: sort_key(item[0])
        )
    ]


def cost_centre_totals(lines: list[InvoiceLine]) -> list[CostCentreTotal]:
    totals: dict[str | None, list[Any]] = {}
    for line in lines:
        sums = totals.setdefault(line.cost_centre, [0, Decimal(0), Decimal(0)])
        sums[0] += line.sessions if line.kind is InvoiceLineKind.CHARGES else 0
        sums[1] += line.energy_kwh
        sums[2] += line.net
    return [
        CostCentreTotal(cost_centre=centre, sessions=s[0], energy_kwh=s[1], net=s[2])
        for centre, s in totals.items()
    ]


class DraftOutcome(StrEnum):
    DRAFTED = "drafted"  # recorded now
    EXISTS = "exists"  # drafted before (a rerun)
    NOTHING = "nothing"  # nothing to bill: no invoice (docs/adr/0036)
    LATER = "later"  # a later month was invoiced already: this one is skipped


@dataclass(frozen=True)
class Drafted:
    outcome: DraftOutcome
    invoice: InvoiceState | None


def decide_draft(
    state: CorporationState | None,
    *,
    corporation_id: str,
    month: str,
    period_start: datetime,
    period_end: datetime,
    origin: Origin,
    now: datetime,
) -> Decision[Drafted]:
    """Draft the corporation's invoice of ``month``: its open charges and
    reversals of sessions that ended before the period's end, the monthly
    fees, the totals and VAT, all fixed in the event. Once per corporation
    and month; nothing when there is nothing to bill."""
    current = require_corporation(state, corporation_id)
    invoice_id = invoice_id_of(corporation_id, month)
    held = current.invoices.get(invoice_id)
    if held is not None:
        return Decision([], Drafted(DraftOutcome.EXISTS, held))
    if any(i.month > month for i in current.invoices.values()):
        return Decision([], Drafted(DraftOutcome.LATER, None))
    charge_keys, reversal_keys = open_items(current, period_end)
    lines = invoice_lines(
        current, charge_keys, reversal_keys, period_start=period_start, period_end=period_end
    )
    if not lines:
        return Decision([], Drafted(DraftOutcome.NOTHING, None))
    net_total = sum((line.net for line in lines), Decimal(0))
    rate = current.contract.vat_rate
    vat = vat_of(net_total, rate)
    event = InvoiceDrafted(
        **recorded_now(corporation_id, now, origin),
        payload=InvoiceDraftedPayload(
            invoice_id=invoice_id,
            corporation_id=corporation_id,
            month=month,
            period_start=period_start,
            period_end=period_end,
            buyer=Buyer(
                legal_name=current.legal_name,
                country=current.country,
                registration_number=current.registration_number,
                vat_id=current.vat_id,
                address=current.billing_address,
                billing_email=current.billing_email,
                currency=current.currency,
            ),
            contract=current.contract,
            currency=current.currency,
            lines=lines,
            cost_centres=cost_centre_totals(lines),
            net_total=net_total,
            vat=[VatBreakdown(rate=rate, base=net_total, amount=vat)],
            vat_total=vat,
            gross_total=net_total + vat,
            payment_term_days=current.contract.payment_term_days,
            charge_keys=charge_keys,
            reversal_keys=reversal_keys,
            at=now,
        ),
    )
    after = evolve_invoice(current, event)
    return Decision([event], Drafted(DraftOutcome.DRAFTED, after.invoices[invoice_id]))


def require_invoice(
    state: CorporationState | None, invoice_id: str
) -> tuple[CorporationState, InvoiceState]:
    corporation_id = corporation_of_invoice(invoice_id)
    current = require_corporation(state, corporation_id)
    held = current.invoices.get(invoice_id)
    if held is None:
        raise unknown(f"invoice {invoice_id!r}")
    return current, held


def _invoice_decided(
    state: CorporationState,
    invoice_id: str,
    events: list[InvoiceDrafted | InvoiceIssued | InvoicePaid | InvoiceVoided],
) -> Decision[InvoiceState]:
    after = state
    for event in events:
        after = evolve_invoice(after, event)
    return Decision(events, after.invoices[invoice_id])


def decide_issue(
    state: CorporationState | None,
    *,
    invoice_id: str,
    number: str,
    issue_date: date,
    origin: Origin,
    now: datetime,
) -> Decision[InvoiceState]:
    """Give the drafted invoice the number the numbering aggregate assigned
    it; once (a rerun with the same number records nothing)."""
    current, held = require_invoice(state, invoice_id)
    if held.status is not InvoiceStatus.DRAFT:
        if held.number != number:
            raise conflict(f"invoice {invoice_id!r} has number {held.number}, not {number}")
        return Decision([], held)
    event = InvoiceIssued(
        **recorded_now(current.corporation_id, now, origin),
        payload=InvoiceIssuedPayload(
            invoice_id=invoice_id,
            corporation_id=current.corporation_id,
            number=number,
            issue_date=issue_date,
            due_date=issue_date + timedelta(days=held.payment_term_days),
            at=now,
        ),
    )
    return _invoice_decided(current, invoice_id, [event])


class InvoicePayment(BaseModel):
    """``POST /ops/invoices/{id}/paid``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    paid_on: date | None = None  # today (UTC) when not given
    reference: Annotated[str, Field(max_length=200)] | None = None


class InvoiceVoiding(BaseModel):
    """``POST /ops/invoices/{id}/void``: a reason is required."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=500)]


def decide_paid(
    state: CorporationState | None,
    *,
    invoice_id: str,
    body: InvoicePayment,
    origin: Origin,
    now: datetime,
) -> Decision[InvoiceState]:
    """ISSUED -> PAID; a paid invoice again records nothing."""
    current, held = require_invoice(state, invoice_id)
    if held.status is InvoiceStatus.PAID:
        return Decision([], held)
    if held.status is not InvoiceStatus.ISSUED:
        raise conflict(f"invoice {invoice_id!r} is {held.status.value}: it cannot be paid")
    event = InvoicePaid(
        **recorded_now(current.corporation_id, now, origin),
        payload=InvoicePaidPayload(
            invoice_id=invoice_id,
            corporation_id=current.corporation_id,
            paid_on=body.paid_on or now.astimezone(UTC).date(),
            reference=body.reference,
            at=now,
        ),
    )
    return _invoice_decided(current, invoice_id, [event])


def decide_void(
    state: CorporationState | None,
    *,
    invoice_id: str,
    body: InvoiceVoiding,
    origin: Origin,
    now: datetime,
) -> Decision[InvoiceState]:
    """ISSUED -> VOID, keeping the number; a void invoice again records
    nothing. A paid invoice is not voided (a credit note refunds it), and a
    draft is not either (finish the month's close first)."""
    current, held = require_invoice(state, invoice_id)
    if held.status is InvoiceStatus.VOID:
        return Decision([], held)
    if held.status is not InvoiceStatus.ISSUED:
        raise conflict(f"invoice {invoice_id!r} is {held.status.value}: it cannot be voided")
    if held.credited_count or held.reserved_net:
        # Voiding would cancel what its credit notes credit a second time.
        raise conflict(f"invoice {invoice_id!r} has credit notes: it cannot be voided")
    event = InvoiceVoided(
        **recorded_now(current.corporation_id, now, origin),
        payload=InvoiceVoidedPayload(
            invoice_id=invoice_id, corporation_id=current.corporation_id, reason=body.reason, at=now
        ),
    )
    return _invoice_decided(current, invoice_id, [event])


def shown_invoice(invoice: InvoiceState) -> dict[str, Any]:
    return invoice.model_dump(mode="json")


def _with_source(
    state: CorporationState, event: InvoiceDrafted | InvoiceIssued | InvoicePaid | InvoiceVoided
) -> CorporationState:
    """Keep what an invoice's files are rendered from: the draft's content
    and the issue's number and dates; the issue also asks for the first
    mailing."""
    if isinstance(event, InvoiceDrafted):
        drafted = event.payload.model_copy(update={"charge_keys": [], "reversal_keys": []})
        source = InvoiceSource(drafted=drafted)
    elif isinstance(event, InvoiceIssued):
        held = state.invoice_sources.get(event.payload.invoice_id)
        if held is None:
            return state
        first = Mailing(mailing_id=FIRST_MAILING, requested_at=event.payload.at)
        source = held.model_copy(
            update={"issued": event.payload, "mailings": {FIRST_MAILING: first}}
        )
    else:
        return state
    return state.model_copy(
        update={"invoice_sources": {**state.invoice_sources, source.drafted.invoice_id: source}}
    )


def evolve_invoice(
    state: CorporationState, event: InvoiceDrafted | InvoiceIssued | InvoicePaid | InvoiceVoided
) -> CorporationState:
    """Fold an invoice's events into its summary and its documents' source."""
    return _with_source(_evolve_invoice(state, event), event)


def invoice_source(state: CorporationState | None, invoice_id: str) -> InvoiceSource:
    """An issued (or paid, or void) invoice's source; ``RefusedError`` 404
    for an unknown invoice and 409 for a draft (it has no number yet)."""
    _, held = require_invoice(state, invoice_id)
    assert state is not None
    source = state.invoice_sources.get(invoice_id)
    if held.status is InvoiceStatus.DRAFT or source is None or source.issued is None:
        raise conflict(f"invoice {invoice_id!r} is a draft: it has no number and no documents yet")
    return source
