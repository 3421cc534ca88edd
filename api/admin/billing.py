"""The dashboard's billing pages (issue 14, issue 13's last item;
docs/adr/0034): corporations and invoices, role ``billing``.

Lists read the MySQL rows as they are (``BillingRowQuery``, like
``GET /ops/corporations`` and ``GET /ops/invoices``); one corporation or
one invoice is read from the write path's state, what the next write is
decided on, so an action taken on the page shows when it reloads. The
invoice's lines are the MySQL rows folded from its draft (written once).

The pages write nothing themselves: their buttons call the ops API with
the session's CSRF token (``api/admin/static/billing.js``), the same
routes, checks and audit trail as a script's.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi import Path as FastApiPath
from starlette.concurrency import run_in_threadpool

from api.admin.billing_rows import (
    CORPORATION_STATUSES,
    INVOICE_STATUSES,
    BillingExtras,
    billing_extras,
    corporation_detail,
    corporation_list_row,
    cost_centre_subtotals,
    invoice_line_row,
    invoice_list_row,
    invoice_summary,
)
from api.admin.render import error_page, page
from api.ops.access import ADMIN_ACCESS, SignedInDep
from ocpi_hub.bootstrap import Container
from producers.billing.aggregate import SLICE
from producers.billing.invoices import corporation_of_invoice
from producers.write_path import WritePath
from projections.mysql.billing import BillingRowQuery
from schemas.events.billing import CORPORATION_ID_PATTERN, INVOICE_ID_PATTERN, MONTH_PATTERN

router = APIRouter(prefix="/admin", include_in_schema=False, dependencies=[ADMIN_ACCESS])

# One page of each list; the next page is a link (keyset, by id).
PAGE = 100

CorporationIdPath = Annotated[str, FastApiPath(pattern=CORPORATION_ID_PATTERN)]
InvoiceIdPath = Annotated[str, FastApiPath(pattern=INVOICE_ID_PATTERN)]


def extras(app: FastAPI) -> BillingExtras:
    """Which later parts of billing (documents, e-mails, credit notes) this
    app serves, read once from its own routes: a page offers a link or a
    button only for a route that is there, whatever was deployed."""
    held: BillingExtras | None = getattr(app.state, "billing_extras", None)
    if held is None:
        # From the OpenAPI document, not ``app.routes``: FastAPI may wrap an
        # included router's routes, so they are not all APIRoutes there.
        held = billing_extras(
            (method.upper(), path)
            for path, operations in app.openapi()["paths"].items()
            for method in operations
        )
        app.state.billing_extras = held
    return held


def _rows(request: Request) -> BillingRowQuery:
    container: Container = request.app.state.container
    return BillingRowQuery(container.mysql)


def _given(text: str | None) -> str | None:
    """A filter as typed, or None when left empty."""
    return text.strip() or None if text else None


def _next(path: str, query: dict[str, str], rows: list[dict[str, Any]], key: str) -> str | None:
    if len(rows) < PAGE:
        return None
    return f"{path}?" + urlencode({**query, "after": rows[-1][key]})


# --- corporations ---------------------------------------------------------------------


@router.get("/corporations")
async def corporations_page(
    request: Request,
    browser: SignedInDep,
    status: Annotated[str | None, Query(max_length=16)] = None,
    country: Annotated[str | None, Query(max_length=2)] = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    after: Annotated[str | None, Query(pattern=CORPORATION_ID_PATTERN)] = None,
) -> Response:
    """Our corporate customers, by id, filtered by status, country and a
    part of the legal name."""
    wanted_status = status if status in CORPORATION_STATUSES else None
    wanted_country = _given(country.upper() if country else None)
    wanted_name = _given(name)
    found = await run_in_threadpool(
        _rows(request).corporations,
        status=wanted_status,
        country=wanted_country,
        name=wanted_name,
        after=after,
        limit=PAGE,
    )
    query = {
        k: v
        for k, v in (("status", wanted_status), ("country", wanted_country), ("name", wanted_name))
        if v
    }
    return page(
        request,
        "corporations.html",
        {
            "account": browser.account,
            "csrf_token": browser.session.csrf_token,
            "rows": [corporation_list_row(r) for r in found],
            "statuses": CORPORATION_STATUSES,
            "filters": {
                "status": wanted_status or "",
                "country": wanted_country or "",
                "name": wanted_name or "",
            },
            "filtered": bool(query),
            "paged": after is not None,
            "next": _next("/admin/corporations", query, found, "corporation_id"),
            "section": "corporations",
        },
    )


@router.get("/corporations/{corporation_id}")
async def corporation_page(
    request: Request, browser: SignedInDep, corporation_id: CorporationIdPath
) -> Response:
    """One corporation: contract, billing address, members and where each
    stands, cost centres, invoices; invite, re-invite, suspend, reinstate,
    close."""
    path: WritePath = request.app.state.write_path
    state = await path.state(SLICE, corporation_id)
    if state is None:
        return error_page(request, 404, f"No corporation {corporation_id} is registered here.")
    return page(
        request,
        "corporation.html",
        {
            "account": browser.account,
            "csrf_token": browser.session.csrf_token,
            "c": corporation_detail(state, datetime.now(UTC)),
            "section": "corporations",
        },
    )


# --- invoices -------------------------------------------------------------------------


@router.get("/invoices")
async def invoices_page(
    request: Request,
    browser: SignedInDep,
    month: Annotated[str | None, Query(max_length=7)] = None,
    corporation: Annotated[str | None, Query(max_length=12)] = None,
    status: Annotated[str | None, Query(max_length=8)] = None,
    after: Annotated[str | None, Query(pattern=INVOICE_ID_PATTERN)] = None,
) -> Response:
    """Invoices by id (corporation, then month), filtered by month,
    corporation and state; closing a month."""
    problems = []
    wanted_month = _given(month)
    if wanted_month is not None and not re.fullmatch(MONTH_PATTERN, wanted_month):
        problems.append(f"{wanted_month!r} is not a month: write it as YYYY-MM, e.g. 2026-11.")
        wanted_month = None
    wanted_corporation = _given(corporation.lower() if corporation else None)
    if wanted_corporation is not None and not re.fullmatch(
        CORPORATION_ID_PATTERN, wanted_corporation
    ):
        problems.append(f"{wanted_corporation!r} is not a corporation id (12 letters and digits).")
        wanted_corporation = None
    wanted_status = status if status in INVOICE_STATUSES else None
    found = await run_in_threadpool(
        _rows(request).invoices,
        corporation_id=wanted_corporation,
        month=wanted_month,
        status=wanted_status,
        after=after,
        limit=PAGE,
    )
    query = {
        k: v
        for k, v in (
            ("month", wanted_month),
            ("corporation", wanted_corporation),
            ("status", wanted_status),
        )
        if v
    }
    return page(
        request,
        "invoices.html",
        {
            "account": browser.account,
            "csrf_token": browser.session.csrf_token,
            "rows": [invoice_list_row(r) for r in found],
            "statuses": INVOICE_STATUSES,
            "filters": {
                "month": wanted_month or "",
                "corporation": wanted_corporation or "",
                "status": wanted_status or "",
            },
            "problems": problems,
            "filtered": bool(query),
            "paged": after is not None,
            "next": _next("/admin/invoices", query, found, "invoice_id"),
            "section": "invoices",
        },
    )


@router.get("/invoices/{invoice_id}")
async def invoice_page(
    request: Request, browser: SignedInDep, invoice_id: InvoiceIdPath
) -> Response:
    """One invoice: its lines per member and cost centre, the subtotals per
    cost centre, VAT and totals; mark paid, void; its documents, e-mail
    and credit notes when the app serves them."""
    path: WritePath = request.app.state.write_path
    state = await path.state(SLICE, corporation_of_invoice(invoice_id))
    held = state.invoices.get(invoice_id) if state is not None else None
    if held is None:
        return error_page(request, 404, f"No invoice {invoice_id} is known here.")
    lines = await run_in_threadpool(_rows(request).invoice_lines, invoice_id)
    return page(
        request,
        "invoice.html",
        {
            "account": browser.account,
            "csrf_token": browser.session.csrf_token,
            "i": invoice_summary(held),
            "lines": [invoice_line_row(line, held.currency) for line in lines],
            # The lines are folded from the draft by the projections: a
            # moment after a close they may not be there yet.
            "lines_pending": len(lines) < held.lines,
            "cost_centres": cost_centre_subtotals(lines, held.currency),
            "extras": extras(request.app),
            "section": "invoices",
        },
    )
