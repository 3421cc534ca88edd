"""Gap-free invoice numbers (issue 14, part B; docs/adr/0036). Pure.

One aggregate under one key (``invoice-numbers``) on a topic of one
partition, written through the one write path: every number is decided on
the state as of the last number given, in one order, so numbers follow one
another without a gap or a repeat whatever runs at once. An invoice id is
numbered once: asking again answers the number it has.

Numbers are ``<year>-<sequence>``: the sequence restarts at 1 with each
calendar year of issue (UTC), and has six digits at least (``2026-000123``).
The aggregate also records which months were closed (every invoice of the
month issued), so that a second close of a month is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from producers.write_path import Decision, Origin, Slice, conflict, recorded_now
from schemas.events.billing import (
    INVOICE_NUMBERS_KEY,
    AssignedNumber,
    CreditNoteNumberAssigned,
    CreditNoteNumberAssignedPayload,
    InvoiceNumberEvent,
    InvoiceNumbersAssigned,
    InvoiceNumbersAssignedPayload,
    MonthClosed,
    MonthClosedPayload,
)
from schemas.topics import BILLING_INVOICE_NUMBERS

KEY = INVOICE_NUMBERS_KEY


class NumberingState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    year: int | None = None
    last: int = 0  # the last sequence number given in ``year``
    # The numbers of invoices of months not closed yet, by invoice id: an id
    # asked again gets its number. A closed month's ids are let go (a
    # closed month cannot be closed again, so they are never asked again).
    assigned: dict[str, AssignedNumber] = Field(default_factory=dict)
    # Closed months ("2026-11") and how many invoices each has.
    closed_months: dict[str, int] = Field(default_factory=dict)
    # Credit notes have their own series (docs/adr/0041): its year, its last
    # sequence number, and the number of every credit note id given one.
    credit_year: int | None = None
    credit_last: int = 0
    credit_notes: dict[str, CreditNoteNumberAssignedPayload] = Field(default_factory=dict)


def _month_of(invoice_id: str) -> str:
    digits = invoice_id.rsplit("-", 1)[1]
    return f"{digits[:4]}-{digits[4:]}"


def evolve(state: NumberingState | None, event: InvoiceNumberEvent) -> NumberingState:
    state = state or NumberingState()
    if isinstance(event, InvoiceNumbersAssigned):
        assigned = dict(state.assigned)
        year, last = state.year, state.last
        for given in event.payload.numbers:
            assigned[given.invoice_id] = given
            given_year, sequence = (int(part) for part in given.number.split("-"))
            if year is None or given_year > year:
                year, last = given_year, sequence
            elif given_year == year:
                last = max(last, sequence)
        return state.model_copy(update={"assigned": assigned, "year": year, "last": last})
    if isinstance(event, CreditNoteNumberAssigned):
        return _evolve_credit_note(state, event)
    closed = event.payload
    return state.model_copy(
        update={
            "closed_months": {**state.closed_months, closed.month: closed.invoices},
            "assigned": {
                invoice_id: given
                for invoice_id, given in state.assigned.items()
                if _month_of(invoice_id) != closed.month
            },
        }
    )


SLICE: Slice[NumberingState] = Slice(
    "billing_invoice_numbers",
    BILLING_INVOICE_NUMBERS,
    evolve,
    lambda state: state.model_dump_json().encode(),
    NumberingState.model_validate_json,
)


def format_number(year: int, sequence: int) -> str:
    return f"{year}-{sequence:06d}"


@dataclass(frozen=True)
class Numbers:
    """The numbers of the invoice ids asked for, old and new alike."""

    numbers: dict[str, AssignedNumber]
    new: int


def decide_assign(
    state: NumberingState | None,
    *,
    invoice_ids: Sequence[str],
    origin: Origin,
    now: datetime,
) -> Decision[Numbers]:
    """Number the ids that have no number yet, in the order given: each the
    last number of the year of issue + 1, dated ``now`` (UTC). Ids of a
    closed month are refused (they were issued before it closed)."""
    current = state or NumberingState()
    for invoice_id in invoice_ids:
        month = _month_of(invoice_id)
        if month in current.closed_months:
            raise conflict(f"{month} is closed: invoice {invoice_id!r} gets no number")
    today = now.astimezone(UTC).date()
    year, last = current.year, current.last
    if year != today.year:
        # A new year of issue starts its sequence again (never an older year:
        # a clock set back does not reopen a finished sequence).
        year, last = (today.year, 0) if year is None or today.year > year else (year, last)
    fresh: list[AssignedNumber] = []
    seen: set[str] = set()
    for invoice_id in invoice_ids:
        if invoice_id in current.assigned or invoice_id in seen:
            continue
        seen.add(invoice_id)
        last += 1
        fresh.append(
            AssignedNumber(
                invoice_id=invoice_id, number=format_number(year, last), issue_date=today
            )
        )
    events: list[InvoiceNumberEvent] = []
    if fresh:
        events.append(
            InvoiceNumbersAssigned(
                **recorded_now(KEY, now, origin),
                payload=InvoiceNumbersAssignedPayload(numbers=fresh, at=now),
            )
        )
    after = current
    for event in events:
        after = evolve(after, event)
    return Decision(
        events,
        Numbers({i: after.assigned[i] for i in invoice_ids}, len(fresh)),
    )


def decide_close_month(
    state: NumberingState | None,
    *,
    month: str,
    invoices: int,
    origin: Origin,
    now: datetime,
) -> Decision[NumberingState]:
    """Record that every invoice of ``month`` was issued; once."""
    current = state or NumberingState()
    if month in current.closed_months:
        return Decision([], current)
    event = MonthClosed(
        **recorded_now(KEY, now, origin),
        payload=MonthClosedPayload(month=month, invoices=invoices, at=now),
    )
    return Decision([event], evolve(current, event))


# --- credit notes (docs/adr/0041) ---------------------------------------------------


def format_credit_note_number(year: int, sequence: int) -> str:
    return f"CN-{year}-{sequence:06d}"


def _evolve_credit_note(state: NumberingState, event: CreditNoteNumberAssigned) -> NumberingState:
    given = event.payload
    year, sequence = (int(part) for part in given.number.removeprefix("CN-").split("-"))
    last = state.credit_last
    if state.credit_year is None or year > state.credit_year:
        last = sequence
    elif year == state.credit_year:
        last = max(last, sequence)
    return state.model_copy(
        update={
            "credit_year": max(year, state.credit_year or year),
            "credit_last": last,
            "credit_notes": {**state.credit_notes, given.credit_note_id: given},
        }
    )


def decide_credit_note_number(
    state: NumberingState | None, *, credit_note_id: str, origin: Origin, now: datetime
) -> Decision[CreditNoteNumberAssignedPayload]:
    """The number of an approved credit note: the last of its year of issue
    + 1, dated ``now`` (UTC); a credit note asked again keeps its number."""
    current = state or NumberingState()
    held = current.credit_notes.get(credit_note_id)
    if held is not None:
        return Decision([], held)
    today = now.astimezone(UTC).date()
    year, last = current.credit_year, current.credit_last
    if year is None or today.year > year:
        # A new year starts the sequence again; a clock set back does not
        # reopen an older year.
        year, last = today.year, 0
    event = CreditNoteNumberAssigned(
        **recorded_now(KEY, now, origin),
        payload=CreditNoteNumberAssignedPayload(
            credit_note_id=credit_note_id,
            number=format_credit_note_number(year, last + 1),
            issue_date=today,
            at=now,
        ),
    )
    return Decision([event], event.payload)
