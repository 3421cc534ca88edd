"""The dashboard's billing pages in a real browser (Debian's chromium through
Playwright, as tests/e2e/test_dashboard.py) against the running platform
and its billing worker (`ocpi-hub billing-worker`, here with an SMTP server
of the test's own): a billing clerk finds a corporation, invites a member
from its page, the member follows the e-mailed link, charges at one of our
chargers, the clerk closes the month from the invoices page (a second
close is refused in words) and marks the invoice paid; suspends,
reinstates and closes the corporation (closing asks first). A viewer sees
no billing in the navigation, gets 403 on the pages, and its calls of the
ops API with its session are refused and change nothing."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import BrowserContext, Page

from tests.e2e.conftest import OCPI_HUB, ROOT, Platform, ops_auth
from tests.e2e.test_dashboard import PASSWORD, _csrf, _shot, _sign_in, browser
from tests.e2e.test_dashboard_actions import WIDEST
from tests.integration.test_billing import Inbox, smtp_server
from tests.ocpi_objects import connector, evse, location
from tests.unit.test_billing import corporation_body

__all__ = ["browser"]  # the fixture, shared with the board's test

# A month long over, so it can be closed, and closed by this test alone.
MONTH = "2025-03"
NUMBER = re.compile(r"[0-9]{4}-[0-9]{6}")
INVOICE = "/ops/invoices/{invoice_id}"

POST = """async ([url, token, body]) => {
    const r = await fetch(url, {method: 'POST',
        headers: {'Content-Type': 'application/json', 'X-CSRF-Token': token},
        body: body === null ? undefined : JSON.stringify(body)});
    return r.status;
}"""


@contextmanager
def billing_worker(platform: Platform, smtp_port: int, log: Path) -> Iterator[None]:
    """`ocpi-hub billing-worker` against the platform's namespace, mailing
    through the test's SMTP server."""
    env = {
        **platform.env,
        "OCPI_HUB_SMTP_HOST": "127.0.0.1",
        "OCPI_HUB_SMTP_PORT": str(smtp_port),
        "OCPI_HUB_MAIL_RETRY_INITIAL_S": "0.2",
    }
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [OCPI_HUB, "billing-worker"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield
        assert worker.poll() is None, log.read_text(errors="replace")[-3000:]
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _ops(base: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
    answer = httpx.request(method, f"{base}{path}", json=body, headers=ops_auth(base), timeout=20)
    assert answer.status_code in (200, 201), answer.text
    reply: dict[str, Any] = answer.json()
    assert reply["status_code"] == 1000, reply
    return reply


def _a_corporation(base: str, tag: str) -> str:
    body = json.loads(json.dumps(corporation_body(legal_name=f"Fleet {tag} B.V."), default=str))
    body["contract"] = {"price_per_kwh": "0.35", "vat_rate": "0.21", "payment_term_days": 30}
    return str(_ops(base, "POST", "/ops/corporations", body)["data"]["corporation_id"])


def _a_site(base: str, loc: str) -> None:
    """One of our locations without a tariff: its CDRs cost nothing, and the
    corporation's contract prices the charge."""
    site = location(
        loc,
        country_code="ZZ",
        party_id="HUB",
        evses=[evse("EVSE1", status="AVAILABLE", connectors=[connector("1")])],
    )
    _ops(base, "PUT", f"/ops/locations/{loc}", site)


def _a_session_in_the_month(base: str, loc: str, tag: str, token: dict[str, Any]) -> None:
    """A 10 kWh session at our charger, in MONTH (the charger's clock)."""
    ids = {
        "location_id": loc,
        "evse_uid": "EVSE1",
        "connector_id": "1",
        "session_id": f"BS-{tag}",
        "transaction_id": f"BT-{tag}",
    }
    cdr_token = {k: token[k] for k in ("uid", "type", "country_code", "party_id", "contract_id")}
    started = {"token": cdr_token, "authorized": True, "auth_method": "AUTH_REQUEST",
               "meter_start_wh": 12_000, "at": f"{MONTH}-10T08:00:00Z"}  # fmt: skip
    _ops(base, "POST", "/ops/chargers/transactions/started", {**ids, **started})
    stopped = {"meter_stop_wh": 22_000, "at": f"{MONTH}-10T09:00:00Z", "reason": "EVDisconnected"}
    _ops(base, "POST", "/ops/chargers/transactions/stopped", {**ids, **stopped})


def _served(base: str) -> dict[str, Any]:
    """The platform's routes and their methods, as its OpenAPI lists them."""
    paths: dict[str, Any] = httpx.get(f"{base}/openapi.json", timeout=20).json()["paths"]
    return paths


async def _until(page: Page, selector: str, what: str, timeout_s: float = 30) -> None:
    """Reload until ``selector`` is on the page: lists and the mailer follow
    the log a moment behind."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while await page.locator(selector).count() == 0:
        assert asyncio.get_running_loop().time() < deadline, f"{what}: not shown"
        await asyncio.sleep(0.5)
        await page.reload()


async def _fits(page: Page) -> None:
    """Usable at 1,280 px and on a phone: nothing wider than the screen."""
    for width in (1280, 390):
        await page.set_viewport_size({"width": width, "height": 800})
        wide = await page.evaluate(WIDEST)
        assert await page.evaluate("document.documentElement.scrollWidth") <= width, (width, wide)
    await page.set_viewport_size({"width": 1280, "height": 800})


async def _text(page: Page, selector: str) -> str:
    return " ".join((await page.text_content(selector) or "").split())


async def test_a_billing_clerk_runs_a_month_from_the_pages_and_a_viewer_cannot(
    platform: Platform, browser: BrowserContext, tmp_path: Path
) -> None:
    base = platform.base_url
    tag = uuid.uuid4().hex[:6]
    clerk, viewer = f"bill{tag}", f"look{tag}"
    for login, role in ((clerk, "billing"), (viewer, "viewer")):
        made = platform.run("users", "add", login, "--role", role, "--password-stdin",
                            stdin=PASSWORD + "\n")  # fmt: skip
        assert made.returncode == 0, made.stderr
    cid = await asyncio.to_thread(_a_corporation, base, tag)
    loc = f"BIL-{tag.upper()}"
    await asyncio.to_thread(_a_site, base, loc)

    page = await browser.new_page()
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    inbox = Inbox()
    with (
        smtp_server(inbox) as (_, smtp_port),
        billing_worker(platform, smtp_port, tmp_path / "billing-worker.log"),
    ):
        try:
            await _sign_in(page, base, clerk)
            await _clerk(page, base, cid, tag, loc, inbox)
            await page.click("#logout")
            await page.wait_for_url(f"{base}/admin/login")
            await _viewer(page, base, cid, viewer)
        except BaseException:
            await _shot([page], f"dashboard-billing-{tag}")
            raise


async def _clerk(page: Page, base: str, cid: str, tag: str, loc: str, inbox: Inbox) -> None:
    # The navigation leads a billing account to its pages.
    assert await page.locator("#nav-corporations").count() == 1
    await page.click("#nav-corporations")
    await page.wait_for_url(f"{base}/admin/corporations")

    # Found by a part of its name (any case) and its country; not by another.
    await page.fill("input[name=name]", f"fleet {tag}")
    await page.fill("input[name=country]", "nl")
    await page.click("#corporation-filter")
    row = f'#corporations tr[data-corporation="{cid}"]'
    await _until(page, row, "the registered corporation in the list")
    assert await page.locator("#corporations tbody tr").count() == 1
    assert await page.get_attribute(row, "data-status") == "ACTIVE"
    await _fits(page)
    await page.goto(f"{base}/admin/corporations?name={tag}&country=BE")
    assert "No corporation matches these filters." in await _text(page, "#no-corporations")

    # Its page: contract, address, no members yet.
    await page.goto(f"{base}/admin/corporations?name={tag}")
    await page.click(f"{row} a")
    await page.wait_for_url(f"{base}/admin/corporations/{cid}")
    contract = await _text(page, "#contract")
    assert "0.35 EUR per kWh excl. VAT" in contract and "21 %" in contract, contract
    assert "none" in contract  # no monthly fee
    assert "Stationsplein 1" in await _text(page, "#billing-address")
    assert "No members yet" in await _text(page, "#no-members")

    # Invite a member from the page; the worker mails the link.
    email = f"ada.{tag}@acme.example"
    await page.fill("#invite-form input[name=name]", "Ada Lovelace")
    await page.fill("#invite-form input[name=email]", email)
    await page.fill("#invite-form input[name=cost_centre]", "R&D")
    await page.click("#invite-send")
    member = f'#members tr[data-email="{email}"]'
    await page.wait_for_selector(member)
    assert "Invited Ada Lovelace" in await _text(page, "#billing-outcome")
    await _until(page, f'{member}[data-state="mailed"]', "the invitation as mailed")
    await inbox.wait(1)
    [message] = [m for m in inbox.messages if email in str(m["To"])]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    [link] = re.findall(rf"{re.escape(base)}/billing/activation/\S+", text)

    # A second member, invited again from the page: a new link goes out.
    bob = f"bob.{tag}@acme.example"
    await page.click("#invite summary")
    await page.fill("#invite-form input[name=name]", "Bob")
    await page.fill("#invite-form input[name=email]", bob)
    await page.click("#invite-send")
    await _until(page, f'#members tr[data-email="{bob}"][data-state="mailed"]', "Bob mailed")
    await page.click(f'#members tr[data-email="{bob}"] button.reinvite')
    await page.wait_for_selector("#billing-outcome:not([hidden])")
    assert "again" in await _text(page, "#billing-outcome")
    await inbox.wait(3)
    assert sum(bob in str(m["To"]) for m in inbox.messages) == 2

    # The member follows the link (its page, then its button).
    await page.goto(link)
    await page.click("button[name=activate]")
    await page.wait_for_load_state()
    await page.goto(f"{base}/admin/corporations/{cid}")
    await _until(page, f'{member}[data-state="active"]', "the member as active")
    shown_token = await _text(page, f"{member} td[data-label=Token]")
    assert "APP_USER" in shown_token, shown_token
    cost_centres = await page.locator("#cost-centres tr[data-cost-centre]").evaluate_all(
        "rows => rows.map(r => r.dataset.costCentre)"
    )
    assert cost_centres == ["R&D", ""], cost_centres
    await _fits(page)

    # A session with the member's token at our charger: the worker charges it.
    members = _ops(base, "GET", f"/ops/corporations/{cid}/members")["data"]
    [ada] = [m for m in members if m["email"] == email]
    token = _ops(base, "GET", f"/ops/tokens/{ada['token_uid']}?type={ada['token_type']}")["data"]
    await asyncio.to_thread(_a_session_in_the_month, base, loc, tag.upper(), token)
    deadline = asyncio.get_running_loop().time() + 60
    while _ops(base, "GET", f"/ops/corporations/{cid}")["data"]["charges"] < 1:
        assert asyncio.get_running_loop().time() < deadline, "the member's CDR was not charged"
        await asyncio.sleep(0.5)

    # Close the month from the invoices page, then once more: refused in words.
    await page.click("#nav-invoices")
    await page.wait_for_url(f"{base}/admin/invoices")
    await page.click("#close-month summary")
    await page.fill("#close-month-value", MONTH)
    await page.click("#close-send")
    await page.wait_for_selector("#close-outcome:not([hidden])", timeout=30_000)
    closed = await _text(page, "#close-outcome")
    assert closed.startswith(f"{MONTH} is closed: 1 invoice ("), closed
    found = NUMBER.search(closed)
    assert found, closed
    number = found.group(0)
    await page.click("#close-send")
    await page.wait_for_selector("#close-problem:not([hidden])")
    again = await _text(page, "#close-problem")
    assert again == f"Not closed: {MONTH} is already closed (1 invoices), nothing written.", again
    assert await page.is_hidden("#close-outcome")

    # The month's invoice in the list (filtered), then its page.
    await page.goto(f"{base}/admin/invoices?month={MONTH}&corporation={cid}")
    invoice_id = f"{cid}-{MONTH.replace('-', '')}"
    listed = f'#invoices tr[data-invoice="{invoice_id}"]'
    await _until(page, listed, "the invoice in the list")
    assert await page.get_attribute(listed, "data-status") == "ISSUED"
    assert await _text(page, f"{listed} td[data-label=Total]") == "4.24 EUR"
    await _fits(page)
    await page.goto(f"{base}/admin/invoices?month=2025-13")
    assert "is not a month" in await _text(page, "main")
    await page.goto(f"{base}/admin/invoices?month={MONTH}&corporation={cid}")
    await page.click(f"{listed} a")
    await page.wait_for_url(f"{base}/admin/invoices/{invoice_id}")
    assert number in await _text(page, "h1")
    await _until(page, "#invoice-lines", "the invoice's lines")
    line = "#invoice-lines tr[data-kind=CHARGES]"
    assert await _text(page, f"{line} td[data-label=Member]") == "Ada Lovelace"
    assert await _text(page, f"{line} td[data-label='Cost centre']") == "R&D"
    assert await _text(page, f"{line} td[data-label=kWh]") == "10.00"
    assert await _text(page, f"{line} td[data-label=Net]") == "3.50 EUR"
    # 10 kWh x 0.35 = 3.50; VAT 21 % of it, 0.735, half up: 0.74.
    net, vat = Decimal("10") * Decimal("0.35"), Decimal("0.74")
    assert await _text(page, "#total-net") == f"{net:.2f} EUR"
    assert await _text(page, "#total-vat") == f"{vat} EUR"
    assert await _text(page, "#total-gross") == f"{net + vat:.2f} EUR"
    # Documents, e-mail and credit notes are offered exactly when the app
    # serves their ops routes (other parts of issue 14).
    served = await asyncio.to_thread(_served, base)
    kinds = [k for k in ("pdf", "xml", "csv") if "get" in served.get(f"{INVOICE}/{k}", {})]
    offered = await page.locator("#invoice-extras a.document").evaluate_all(
        "links => links.map(a => a.dataset.kind)"
    )
    assert offered == kinds
    assert await page.locator("#resend").count() == ("post" in served.get(f"{INVOICE}/mail", {}))
    notes = "get" in served.get("/ops/credit-notes", {})
    assert await page.locator("#credit-notes").count() == notes
    await _fits(page)

    # Mark it paid from the page.
    await page.fill("#paid-on", "2026-12-01")
    await page.fill("#paid-reference", f"TRX-{tag}")
    await page.click("#paid-send")
    await page.wait_for_selector("#invoice[data-status=PAID]")
    assert "Marked paid on 2026-12-01." in await _text(page, "#billing-outcome")
    words = await _text(page, "#invoice-words")
    assert words == f"Paid on 2026-12-01 (reference TRX-{tag}).", words
    assert await page.locator("#paid-form").count() == 0
    # The ops API's row (MySQL) follows a moment later.
    deadline = asyncio.get_running_loop().time() + 30
    while (held := _ops(base, "GET", f"/ops/invoices/{invoice_id}")["data"])["status"] != "PAID":
        assert asyncio.get_running_loop().time() < deadline, held
        await asyncio.sleep(0.5)
    assert (held["paid_on"], held["payment_reference"]) == ("2026-12-01", f"TRX-{tag}")

    # Suspend, reinstate, close: closing asks on the page first.
    await page.goto(f"{base}/admin/corporations/{cid}")
    await page.click("#suspend")
    await page.wait_for_selector("#corporation[data-status=SUSPENDED]")
    assert "Suspended since" in await _text(page, "#status-words")
    await page.click("#reinstate")
    await page.wait_for_selector("#corporation[data-status=ACTIVE]")
    await page.click("#close-start")
    assert await page.is_visible("#close-confirm")
    await page.click("#close-no")
    assert await page.is_hidden("#close-confirm")
    assert await page.get_attribute("#corporation", "data-status") == "ACTIVE"
    await page.click("#close-start")
    await page.fill("#status-reason", "contract ended")
    await page.click("#close-yes")
    await page.wait_for_selector("#corporation[data-status=CLOSED]")
    assert "contract ended" in await _text(page, "#status-words")
    assert await page.locator("#suspend, #reinstate, #close-start, #invite-form").count() == 0
    # The corporation's invoice is listed on its page, paid.
    assert await page.get_attribute(f'#corporation-invoices tr[data-invoice="{invoice_id}"]',
                                    "data-status") == "PAID"  # fmt: skip
    await _fits(page)


async def _viewer(page: Page, base: str, cid: str, viewer: str) -> None:
    await _sign_in(page, base, viewer)
    assert await page.locator("#nav-corporations, #nav-invoices").count() == 0
    invoice_id = f"{cid}-{MONTH.replace('-', '')}"
    for url in (
        "/admin/corporations",
        f"/admin/corporations/{cid}",
        "/admin/invoices",
        f"/admin/invoices/{invoice_id}",
    ):
        answer = await page.goto(f"{base}{url}")
        assert answer is not None and answer.status == 403, url
        assert "it needs billing" in await _text(page, "#error-message"), url
    # Writing by hand with the session's CSRF token: refused, nothing recorded.
    await page.goto(f"{base}/admin")
    token = await _csrf(page)
    before = _ops(base, "GET", f"/ops/corporations/{cid}")["data"]
    for url, body in (
        (f"/ops/corporations/{cid}/members", {"name": "Eve", "email": "eve@acme.example"}),
        (f"/ops/corporations/{cid}/status", {"status": "ACTIVE"}),
        ("/ops/billing/months/2025-04/close", None),
        (f"/ops/invoices/{invoice_id}/void", {"reason": "by hand"}),
        ("/ops/corporations", {"legal_name": "Mine"}),
    ):
        assert await page.evaluate(POST, [url, token, body]) == 403, url
    after = _ops(base, "GET", f"/ops/corporations/{cid}")["data"]
    assert after == before
    assert _ops(base, "GET", f"/ops/invoices/{invoice_id}")["data"]["status"] == "PAID"
    assert _ops(base, "GET", "/ops/invoices?month=2025-04")["data"] == []
