"""The scheduled close of a month (issue 14, part B; docs/adr/0036).

With ``OCPI_HUB_BILLING_CLOSE_DAY`` set (1-28; 0 is off), the billing worker closes
the previous month on that day of the month (UTC) or any day after it,
when the numbering aggregate does not record it as closed yet; it looks
every ``billing_close_check_s``. Closing is idempotent through the write
path (producers/invoicing.py), so two workers, or a worker and an operator
running ``close-month`` at once, give each invoice one number: one of them
completes the close, the other finds it closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from producers import invoice_numbers
from producers.invoicing import CloseReport, close_month, previous_month
from producers.write_path import Origin, RefusedError, WritePath
from schemas.events import Party

log = structlog.get_logger(__name__)


def month_to_close(now: datetime, close_day: int, closed: set[str]) -> str | None:
    """The month the schedule closes at ``now``: the previous month, from its
    close day on (0: never), unless it is closed already. Pure."""
    if not close_day or now.astimezone(UTC).day < close_day:
        return None
    month = previous_month(now)
    return None if month in closed else month


@dataclass
class ScheduledClose:
    write_path: WritePath
    us: Party
    close_day: int  # 0: no schedule
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def tick(self) -> CloseReport | None:
        """Close the month due now, if any; its report."""
        now = self.clock()
        numbering = await self.write_path.state(invoice_numbers.SLICE, invoice_numbers.KEY)
        closed = set(numbering.closed_months) if numbering is not None else set()
        month = month_to_close(now, self.close_day, closed)
        if month is None:
            return None
        origin = Origin(self.us, f"scheduled-close-{month}")
        try:
            return await close_month(self.write_path, month=month, origin=origin, now=now)
        except RefusedError as refused:
            # Another worker or an operator closed it meanwhile.
            log.info("billing_scheduled_close_refused", month=month, reason=refused.message)
            return None


async def run_scheduled_close(
    schedule: ScheduledClose, every_s: float, stop: asyncio.Event
) -> None:
    """Tick until ``stop``; a failed close (a store away) is tried at the next tick."""
    if not schedule.close_day:
        return
    while not stop.is_set():
        try:
            report = await schedule.tick()
            if report is not None:
                log.info("billing_scheduled_close", **report.shown())
        except Exception as exc:  # the next tick tries again: the close is idempotent
            log.warning("billing_scheduled_close_failed", error=f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
