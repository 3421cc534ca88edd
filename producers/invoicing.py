"""Closing a month (issue 14, part B; docs/adr/0036): one invoice per
corporation, numbered without gaps, through the one write path.

``close_month`` walks every corporation the decision store holds (the log's
list, never a view's) and, for the month asked:

1. drafts each corporation's invoice on its own aggregate
   (``decide_draft``: the open charges, the fees, the totals);
2. asks the numbering aggregate for the numbers of every invoice still a
   draft, in invoice id order (``invoice_numbers.decide_assign``), 100
   corporations at a time;
3. issues each draft with its number and the number's date
   (``decide_issue``);
4. records the month as closed (``invoice_numbers.decide_close_month``).

Every step is idempotent: a run that stopped anywhere is completed by the
next one, which drafts nothing twice and gives no number twice. A month
recorded as closed is refused as a whole, before anything is written.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import structlog

from producers import invoice_numbers
from producers.billing.aggregate import SLICE as BILLING_SLICE
from producers.billing.invoices import (
    Drafted,
    DraftOutcome,
    corporation_of_invoice,
    decide_draft,
    decide_issue,
)
from producers.billing.state import InvoiceState
from producers.write_path import Decision, Origin, RefusedError, WritePath, conflict
from schemas.events.billing import MONTH_PATTERN, AssignedNumber, InvoiceStatus
from schemas.ocpi.status_codes import OcpiStatus

log = structlog.get_logger(__name__)

T = TypeVar("T")

# How many corporations are written at once; each write holds only its own
# aggregate, so they do not wait on one another.
CONCURRENCY = 16
# Corporations drafted, numbered and issued together; one numbering event
# per chunk (100 ids: far below the largest event Kafka takes; about 1.5 MB
# of memory per corporation of 1,000 charges while its chunk is closed).
CORPORATIONS_PER_CHUNK = 100


def month_period(month: str) -> tuple[datetime, datetime]:
    """The period of ``YYYY-MM`` in UTC: [first instant, first instant of
    the next month). Raises ``RefusedError`` (2001) for anything else."""
    if not re.fullmatch(MONTH_PATTERN, month):
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS,
            f"invalid or missing parameters: month: {month!r} is not a month (YYYY-MM)",
            400,
        )
    year, number = int(month[:4]), int(month[5:])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def previous_month(now: datetime) -> str:
    today = now.astimezone(UTC)
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year:04d}-{month:02d}"


@dataclass
class CloseReport:
    """What a close did; ``invoices`` are the month's, issued, in number order."""

    month: str
    drafted: int = 0  # recorded by this run
    numbered: int = 0  # numbers given by this run
    issued: int = 0  # issued by this run
    nothing_to_bill: int = 0  # corporations without an invoice this month
    skipped_later: int = 0  # corporations already invoiced for a later month
    invoices: list[dict[str, Any]] = field(default_factory=list)

    def shown(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "closed": True,
            "invoices": len(self.invoices),
            "drafted": self.drafted,
            "numbered": self.numbered,
            "issued": self.issued,
            "nothing_to_bill": self.nothing_to_bill,
            "skipped_later": self.skipped_later,
            "numbers": [i["number"] for i in self.invoices],
        }


async def _each(items: Sequence[str], work: Callable[[str], Awaitable[T]]) -> list[T]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(item: str) -> T:
        async with gate:
            return await work(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


async def close_month(
    write_path: WritePath, *, month: str, origin: Origin, now: datetime
) -> CloseReport:
    """Close ``month`` (see the module); raises ``RefusedError`` with nothing
    written for a malformed month, a month not over yet (``now`` is before
    its end) or a month already closed."""
    start, end = month_period(month)
    if now < end:
        raise conflict(f"{month} has not ended yet: it can be closed from {end.date()} (UTC)")
    numbering = await write_path.state(invoice_numbers.SLICE, invoice_numbers.KEY)
    if numbering is not None and month in numbering.closed_months:
        count = numbering.closed_months[month]
        raise conflict(f"{month} is already closed ({count} invoices), nothing written")
    report = CloseReport(month)
    corporations = await write_path.keys(BILLING_SLICE)

    async def draft(corporation_id: str) -> Drafted:
        return await write_path.write(
            BILLING_SLICE,
            corporation_id,
            lambda s: decide_draft(
                s,
                corporation_id=corporation_id,
                month=month,
                period_start=start,
                period_end=end,
                origin=origin,
                now=now,
            ),
        )

    def assign(
        ids: list[str], state: invoice_numbers.NumberingState | None
    ) -> Decision[invoice_numbers.Numbers]:
        return invoice_numbers.decide_assign(state, invoice_ids=ids, origin=origin, now=now)

    async def issue(numbers: dict[str, AssignedNumber], invoice_id: str) -> InvoiceState:
        assigned = numbers[invoice_id]
        return await write_path.write(
            BILLING_SLICE,
            corporation_of_invoice(invoice_id),
            lambda s: decide_issue(
                s,
                invoice_id=invoice_id,
                number=assigned.number,
                issue_date=assigned.issue_date,
                origin=origin,
                now=now,
            ),
        )

    final: list[InvoiceState] = []
    # Draft, number and issue a chunk of corporations at a time, in id order
    # (so numbers still follow invoice ids), and let their states go from
    # this process's cache once issued: a month of 1,000 large aggregates is
    # not held in memory at once.
    for first in range(0, len(corporations), CORPORATIONS_PER_CHUNK):
        chunk = corporations[first : first + CORPORATIONS_PER_CHUNK]
        invoices: list[InvoiceState] = []
        for outcome in await _each(chunk, draft):
            if outcome.outcome is DraftOutcome.DRAFTED:
                report.drafted += 1
            elif outcome.outcome is DraftOutcome.NOTHING:
                report.nothing_to_bill += 1
            elif outcome.outcome is DraftOutcome.LATER:
                report.skipped_later += 1
            if outcome.invoice is not None:
                invoices.append(outcome.invoice)
        drafts = sorted(i.invoice_id for i in invoices if i.status is InvoiceStatus.DRAFT)
        numbers: dict[str, AssignedNumber] = {}
        if drafts:
            given = await write_path.write(
                invoice_numbers.SLICE, invoice_numbers.KEY, partial(assign, drafts)
            )
            numbers = given.numbers
            report.numbered += given.new
        issued = {i.invoice_id: i for i in await _each(drafts, partial(issue, numbers))}
        report.issued += len(issued)
        final += [issued.get(i.invoice_id, i) for i in invoices]
        for corporation_id in chunk:
            write_path.forget(BILLING_SLICE, corporation_id)
    await write_path.write(
        invoice_numbers.SLICE,
        invoice_numbers.KEY,
        lambda s: invoice_numbers.decide_close_month(
            s, month=month, invoices=len(final), origin=origin, now=now
        ),
    )
    report.invoices = sorted(
        (
            {
                "invoice_id": i.invoice_id,
                "corporation_id": i.corporation_id,
                "number": i.number,
                "status": i.status.value,
                "gross_total": str(i.gross_total),
                "currency": i.currency,
            }
            for i in final
        ),
        key=lambda shown: str(shown["number"]),
    )
    log.info(
        "billing_month_closed",
        month=month,
        invoices=len(final),
        drafted=report.drafted,
        numbered=report.numbered,
        issued=report.issued,
    )
    return report
