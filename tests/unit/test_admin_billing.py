"""The dashboard's billing pages (api/admin/billing.py, billing_rows.py):
what they show of corporations, members and invoices, which later parts
of billing they offer (from the app's routes), who may see them. The
pages that read MySQL are exercised in tests/e2e/test_dashboard_billing.py;
here the write path is the in-memory one. No services."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.admin.billing import extras
from api.admin.billing_rows import (
    BillingExtras,
    billing_extras,
    corporation_detail,
    corporation_list_row,
    cost_centre_subtotals,
    invoice_line_row,
    invoice_list_row,
    invoice_summary,
    member_state,
    percent,
    status_actions,
)
from api.admin.sessions import InMemorySessionStore, SessionPolicy
from api.app import create_app
from ocpi_hub.bootstrap import build_container
from ocpi_hub.settings import Settings
from producers import operators
from producers.billing.aggregate import SLICE
from producers.billing.corporations import StatusChange, decide_status
from producers.billing.invoices import InvoicePayment, decide_paid
from producers.billing.state import CorporationState
from producers.decision_store import InMemoryDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.write_path import RefusedError, WritePath
from projections.mysql.billing import corporation_row, invoice_line_rows, invoice_row
from schemas.events.billing import CorporationStatus, InvoiceDrafted
from schemas.events.operators import OperatorRole
from tests.unit.test_admin_sessions import _account, sign_in
from tests.unit.test_billing import CORP, MEMBER, ORIGIN, invited, registered
from tests.unit.test_invoices import ADA, BOB, CLOSE_AT, _apply, draft, issued, november

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
INVOICE = f"{CORP}-202611"


# --- members, cost centres, the contract ------------------------------------------------


def test_a_member_is_invited_then_mailed_then_active_or_expired() -> None:
    state = invited(cost_centre="R&D")
    member = state.members[MEMBER]
    assert member_state(member, NOW).state == "invited"
    assert "not been sent" in member_state(member, NOW).words
    mailed = member.model_copy(update={"mailed_invitation_id": member.invitation_id})
    shown = member_state(mailed, NOW)
    assert shown.state == "mailed"
    assert shown.words == "e-mail sent; link valid until 2026-11-09 09:30 UTC"
    # A link of an older invitation was mailed, not this one's: not mailed.
    older = member.model_copy(update={"mailed_invitation_id": "b" * 32})
    assert member_state(older, NOW).state == "invited"
    assert member_state(mailed, NOW + timedelta(days=8)).state == "expired"
    active = november().members[ADA]
    assert member_state(active, NOW).state == "active"
    assert member_state(active, NOW).words == "active since 2026-10-01 00:00 UTC"


def test_a_corporation_page_shows_contract_address_members_and_cost_centres() -> None:
    shown = corporation_detail(november(), NOW)
    assert shown["contract"] == {
        "price": "0.35 EUR per kWh excl. VAT",
        "fee": "2.50 EUR per active member a month",
        "vat": "21 %",
        "term": "30 days",
    }
    assert shown["address"] == ["Stationsplein 1", "1012 AB Amsterdam", "NL"]
    assert [(m["name"], m["cost_centre"], m["state"]) for m in shown["members"]] == [
        ("Ada", "R&D", "active"),
        ("Bob", "", "active"),
    ]
    assert not any(m["may_reinvite"] for m in shown["members"])  # both active
    # Named cost centres first, members without one last.
    assert shown["cost_centres"] == [
        {"name": "R&D", "members": 1, "active": 1},
        {"name": "", "members": 1, "active": 1},
    ]
    assert (shown["actions"], shown["may_invite"]) == (["suspend", "close"], True)
    assert invited().members[MEMBER].status.value == "INVITED"
    assert corporation_detail(invited(), NOW)["members"][0]["may_reinvite"]
    no_fee = registered(
        contract={"price_per_kwh": Decimal("0.3"), "vat_rate": Decimal("0.09"),
                  "payment_term_days": 14}
    )  # fmt: skip
    assert corporation_detail(no_fee, NOW)["contract"]["fee"] == "none"
    assert corporation_detail(no_fee, NOW)["contract"]["vat"] == "9 %"


@pytest.mark.parametrize(
    ("status", "actions"),
    [
        (CorporationStatus.ACTIVE, ["suspend", "close"]),
        (CorporationStatus.SUSPENDED, ["reinstate", "close"]),
        (CorporationStatus.CLOSED, []),
    ],
)
def test_the_actions_offered_are_those_the_slice_allows(
    status: CorporationStatus, actions: list[str]
) -> None:
    assert status_actions(status) == actions
    # Each one offered is accepted by the slice's decision; the others refused.
    targets = {"suspend": CorporationStatus.SUSPENDED, "reinstate": CorporationStatus.ACTIVE,
               "close": CorporationStatus.CLOSED}  # fmt: skip
    state = registered().model_copy(update={"status": status})
    for action, target in targets.items():
        change = StatusChange(status=target)
        if action in actions:
            decide_status(state, corporation_id=CORP, change=change, origin=ORIGIN, now=NOW)
        elif target is not status:
            with pytest.raises(RefusedError):
                decide_status(state, corporation_id=CORP, change=change, origin=ORIGIN, now=NOW)


def test_vat_rates_are_shown_as_people_say_them() -> None:
    assert percent(Decimal("0.21")) == "21 %"
    assert percent(Decimal("0.055")) == "5.5 %"
    assert percent(Decimal("0")) == "0 %"
    assert percent(None) == ""


def test_a_corporation_row_of_the_list() -> None:
    row = corporation_list_row(corporation_row(registered()))
    assert row["name"] == "Acme Fleet B.V."
    assert (row["country"], row["vat_id"]) == ("NL", "NL004495445B01")
    assert row["price"] == "0.35 EUR / kWh"
    assert (row["status"], row["href"]) == ("ACTIVE", f"/admin/corporations/{CORP}")
    assert row["registered"] == "2026-11-02 09:30 UTC"


# --- invoices ---------------------------------------------------------------------------


def _drafted() -> tuple[CorporationState, InvoiceDrafted]:
    state = november()
    decision = draft(state, "2026-11")
    [event] = [e for e in decision.events if isinstance(e, InvoiceDrafted)]
    return _apply(state, decision), event


def test_an_invoices_lines_per_member_and_cost_centre_add_up_to_its_net() -> None:
    state, event = _drafted()
    rows = invoice_line_rows(event)
    lines = [invoice_line_row(r, "EUR") for r in rows]
    charging = [line for line in lines if line["kind"] == "CHARGES"]
    assert [(line["member"], line["cost_centre"], line["sessions"], line["kwh"], line["net"])
            for line in charging] == [
        ("Ada", "R&D", 3, "24.75", "8.67 EUR"),
        ("Bob", "", 1, "10.00", "3.50 EUR"),
    ]  # fmt: skip
    fees = [line for line in lines if line["kind"] == "MONTHLY_FEE"]
    assert [(f["what"], f["sessions"], f["kwh"], f["net"]) for f in fees] == [
        ("Monthly fee", "", "", "2.50 EUR"),
        ("Monthly fee", "", "", "2.50 EUR"),
    ]
    subtotals = cost_centre_subtotals(rows, "EUR")
    assert subtotals == [
        {"name": "R&D", "net": "11.17 EUR"},
        {"name": "", "net": "6.00 EUR"},
    ]
    invoice = state.invoices[INVOICE]
    assert sum(Decimal(str(r["net"])) for r in rows) == invoice.net_total == Decimal("17.17")
    summary = invoice_summary(invoice)
    assert (summary["net"], summary["vat"], summary["gross"]) == (
        "17.17 EUR",
        "3.61 EUR",
        "20.78 EUR",
    )
    assert summary["status"] == "DRAFT" and not summary["may_settle"]


def test_only_an_issued_invoice_may_be_settled_and_a_payment_shows() -> None:
    state, _ = _drafted()
    state = issued(state)
    shown = invoice_summary(state.invoices[INVOICE])
    assert shown["may_settle"]
    assert (shown["number"], shown["issued"], shown["due"]) == (
        "2026-000007",
        "2026-12-01",
        "2026-12-31",
    )
    paid = decide_paid(
        state, invoice_id=INVOICE, body=InvoicePayment(reference="TRX-1"), origin=ORIGIN,
        now=CLOSE_AT,
    ).answer  # fmt: skip
    shown = invoice_summary(paid)
    assert (shown["status"], shown["paid"], shown["reference"]) == (
        "PAID",
        "2026-12-01",
        "TRX-1",
    )
    assert not shown["may_settle"]
    row = invoice_list_row(invoice_row(paid))
    assert (row["number"], row["gross"], row["paid"]) == ("2026-000007", "20.78 EUR", "2026-12-01")


# --- later parts: offered only when the app serves them --------------------------------


def test_documents_e_mail_and_credit_notes_follow_the_routes_served() -> None:
    assert billing_extras([]) == BillingExtras()
    served = [
        ("GET", "/ops/invoices/{invoice_id}/pdf"),
        ("GET", "/ops/invoices/{invoice_id}/csv"),
        ("POST", "/ops/invoices/{invoice_id}/mail"),
        ("GET", "/ops/invoices/{invoice_id}"),
    ]
    found = billing_extras(served)
    assert found == BillingExtras(documents=("pdf", "csv"), resend=True)
    everything = billing_extras(
        [
            *served,
            ("GET", "/ops/invoices/{invoice_id}/xml"),
            ("GET", "/ops/credit-notes"),
            ("POST", "/ops/invoices/{invoice_id}/credit-notes"),
        ]
    )
    assert everything.documents == ("pdf", "xml", "csv")
    assert everything.credit_notes and everything.credit_note_request
    # A GET of "mail" is not the re-send.
    assert not billing_extras([("GET", "/ops/invoices/{invoice_id}/mail")]).resend


class NoSessions:
    """The sessions board's reader with nothing to show: the nav test signs in
    to that board, and this tier has no document store."""

    async def recent(self, **_: object) -> list[object]:
        return []


def _app(store: InMemoryDecisionStore) -> FastAPI:
    log = InMemoryEventLog()
    settings = Settings(party_country_code="ZZ", party_id="HUB")
    container = dataclasses.replace(build_container(settings), sessions=NoSessions())
    return create_app(
        settings,
        container=container,
        event_log=log,
        write_path=WritePath(log, store, InMemoryLogHistory(log)),
        sessions=InMemorySessionStore(SessionPolicy(idle_s=600, absolute_s=3600)),
    )


def _pdf(invoice_id: str) -> str:
    return invoice_id


def test_the_app_is_asked_which_routes_it_serves() -> None:
    # The platform's app serves every later part (documents, e-mails, credit
    # notes), whatever router included the routes.
    app = _app(InMemoryDecisionStore())
    assert extras(app) == BillingExtras(
        documents=("pdf", "xml", "csv"), resend=True, credit_notes=True, credit_note_request=True
    )
    # An app without them offers none; one with a route offers that one.
    assert extras(FastAPI()) == BillingExtras()
    later = FastAPI()
    later.get("/ops/invoices/{invoice_id}/pdf")(_pdf)
    assert extras(later).documents == ("pdf",)


# --- the pages, signed in -------------------------------------------------------------


@pytest.fixture
def store() -> InMemoryDecisionStore:
    store = InMemoryDecisionStore()
    for login, role in (
        ("bea", OperatorRole.BILLING),
        ("vic", OperatorRole.VIEWER),
        ("ola", OperatorRole.OPERATOR),
    ):
        store.seed(operators.ACCOUNTS, login, _account(login, role))
    store.seed(SLICE, CORP, november())
    return store


@pytest.fixture
def client(store: InMemoryDecisionStore) -> Iterator[TestClient]:
    with TestClient(_app(store), follow_redirects=False) as c:
        yield c


def _nav(page: httpx.Response) -> list[str]:
    nav = re.search(r"<nav>(.*?)</nav>", page.text, re.S)
    assert nav, page.text
    return re.findall(r'href="(/admin[^"]*)"', nav.group(1))


def test_billing_sees_the_corporation_page_and_its_nav(client: TestClient) -> None:
    assert sign_in(client, "bea").status_code == 303
    page = client.get(f"/admin/corporations/{CORP}")
    assert page.status_code == 200, page.text
    assert {"/admin/corporations", "/admin/invoices"} <= set(_nav(page))
    assert "Acme Fleet B.V." in page.text
    assert "0.35 EUR per kWh excl. VAT" in page.text
    assert f'data-member="{ADA}" data-state="active"' in page.text
    assert f'data-member="{BOB}" data-state="active"' in page.text
    assert 'data-cost-centre="R&amp;D"' in page.text  # escaped
    assert 'id="suspend"' in page.text and 'id="close-start"' in page.text
    assert 'id="close-confirm" hidden' in page.text  # closing asks on the page first
    assert 'id="invite-form"' in page.text
    assert "/admin/static/billing.js" in page.text
    missing = client.get("/admin/corporations/zzzzzzzzzzzz")
    assert missing.status_code == 404
    assert "No corporation zzzzzzzzzzzz is registered here." in missing.text
    bad = client.get("/admin/corporations/NOT-AN-ID")
    assert bad.status_code == 400 and "cannot use" in bad.text  # a page, no trace


def test_a_closed_corporation_offers_no_action(
    client: TestClient, store: InMemoryDecisionStore
) -> None:
    closed = november().model_copy(update={"status": CorporationStatus.CLOSED,
                                           "status_reason": "contract ended"})  # fmt: skip
    store.seed(SLICE, CORP, closed)
    sign_in(client, "bea")
    page = client.get(f"/admin/corporations/{CORP}")
    assert page.status_code == 200
    assert "contract ended" in page.text
    for control in ('id="suspend"', 'id="reinstate"', 'id="close-start"', 'id="invite-form"'):
        assert control not in page.text
    assert "A closed corporation stays closed" in page.text


@pytest.mark.parametrize("login", ["vic", "ola"])
def test_viewers_and_operators_get_no_billing_nav_and_403_in_words(
    client: TestClient, login: str
) -> None:
    sign_in(client, login)
    board = client.get("/admin/sessions")
    assert board.status_code == 200
    assert not {"/admin/corporations", "/admin/invoices"} & set(_nav(board))
    for url in (
        "/admin/corporations",
        f"/admin/corporations/{CORP}",
        "/admin/invoices",
        f"/admin/invoices/{INVOICE}",
    ):
        refused = client.get(url)
        assert refused.status_code == 403, url
        assert "Not allowed" in refused.text and "billing" in refused.text
    # Nor through the ops API with the session.
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', board.text)
    assert csrf
    wrote = client.post(
        f"/ops/corporations/{CORP}/members",
        json={"name": "Eve", "email": "eve@acme.example"},
        headers={"X-CSRF-Token": csrf.group(1)},
    )
    assert wrote.status_code == 403
