"""The dashboard's actions in a real browser (Debian's chromium through
Playwright, as tests/e2e/test_dashboard.py) against the running platform:
an operator sends UNLOCK_CONNECTOR from the chargers page to a simulated
OCPP charger (bench/ocpp_sim.py answers Unlocked) and sees its result
arrive; a viewer is offered no form and its direct call is refused. A
billing account sees a completed session and its CDR's price breakdown and
credits the CDR; the partner's dashboard shows the CDR reconciled."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from ocpp.v16 import call
from playwright.async_api import BrowserContext, Page

from bench.ocpp_sim import Connected, connect_charger
from tests.e2e.conftest import Linked, Platform, ops_auth
from tests.e2e.test_dashboard import (
    CHARGER_PASSWORD,
    PASSWORD,
    _a_site_with_a_charger,
    _csrf,
    _shot,
    _sign_in,
    browser,
)
from tests.e2e.test_money_path import charge_a_session, our_cdr, reconciliation_at_peer
from tests.ocpi_objects import connector, evse, location
from tests.token_objects import token

__all__ = ["browser"]  # the fixture, shared with the board's test

# What sticks out of a narrow screen (for the failure message).
WIDEST = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth)
    .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + e.getBoundingClientRect().right)"""

UNLOCK = """async ([loc, token]) => {
    const r = await fetch('/ops/commands/given/UNLOCK_CONNECTOR', {method: 'POST',
        headers: {'Content-Type': 'application/json', 'X-CSRF-Token': token},
        body: JSON.stringify({location_id: loc, evse_uid: 'EVSE1', connector_id: '1'})});
    return r.status;
}"""


async def test_unlock_from_the_chargers_page_and_its_result(
    platform: Platform, browser: BrowserContext
) -> None:
    base = platform.base_url
    tag = uuid.uuid4().hex[:6].upper()
    op, viewer = f"op{tag.lower()}", f"vw{tag.lower()}"
    for login, role in ((op, "operator"), (viewer, "viewer")):
        made = platform.run("users", "add", login, "--role", role, "--password-stdin",
                            stdin=PASSWORD + "\n")  # fmt: skip
        assert made.returncode == 0, made.stderr
    loc, cp_id = f"CMD-{tag}", f"CPC-{tag}"
    await asyncio.to_thread(_a_site_with_a_charger, base, loc, cp_id)

    page = await browser.new_page()
    held = await connect_charger(platform.gateway_url, cp_id, CHARGER_PASSWORD)
    try:
        await _sign_in(page, base, op)
        await page.goto(f"{base}/admin/chargers?location={loc}")
        await page.wait_for_selector(f'tr[data-charger="{cp_id}"][data-online=yes]')
        await page.select_option("#command-kind", "UNLOCK_CONNECTOR")
        assert await page.is_hidden("input[name=session_id]")  # only the command's fields
        await page.click("#command-send")
        row = "#command-log tr[data-command]"
        await page.wait_for_selector(row, timeout=10_000)
        assert await page.text_content(f"{row} td[data-label='Our answer']") == "ACCEPTED"
        # The charger's result, followed from the command's state.
        await page.wait_for_selector(f"{row}[data-result]", timeout=20_000)
        assert await page.get_attribute(row, "data-result") == "ACCEPTED"
        shown = await page.text_content(f"{row} .command-result")
        assert shown is not None and shown.startswith("ACCEPTED"), shown
        tone = await page.get_attribute(f"{row} .command-result", "class")
        assert tone == "command-result result-ok", tone
        assert len(held.charger.unlocks) == 1  # it reached the charger, once
        command_id = await page.get_attribute(row, "data-command")

        # Recorded as the operator's, and no partner was involved.
        async with httpx.AsyncClient(timeout=10) as client:
            got = await client.get(
                f"{base}/ops/commands/received/{command_id}", headers=ops_auth(base)
            )
        doc = got.json()["data"]
        assert doc["partner_id"] == f"ops:account:{op}"
        assert doc["result"] == "ACCEPTED"
        assert doc["decided_by"]

        await _the_chargers_own_page(page, base, cp_id, held)

        # A viewer sees the page without the form, and its call is refused.
        await page.click("#logout")
        await page.wait_for_url(f"{base}/admin/login")
        await _sign_in(page, base, viewer)
        await page.goto(f"{base}/admin/chargers?location={loc}")
        assert await page.locator("#command-form").count() == 0
        assert "needs the role operator" in (await page.text_content("#commands") or "")
        assert await page.evaluate(UNLOCK, [loc, await _csrf(page)]) == 403
        assert len(held.charger.unlocks) == 1
    except BaseException:
        await _shot([page], f"dashboard-command-{tag}")
        raise
    finally:
        await held.close()


async def _the_chargers_own_page(page: Page, base: str, cp_id: str, held: Connected) -> None:
    """The charger's page lists its recent OCPP messages both ways (the
    unlock above included), its last heartbeat apart, and no token uid in
    clear; usable at 1,280 px and on a phone."""
    sim = held.charger
    await sim.call(call.StatusNotification(connector_id=1, error_code="NoError",
                                           status="Preparing", info="plug in"))  # fmt: skip
    await sim.call(call.Authorize(id_tag="04A2B3C4D5E6"))
    await sim.call(call.Heartbeat())
    await page.goto(f"{base}/admin/chargers")
    await page.click(f'tr[data-charger="{cp_id}"] a')
    await page.wait_for_url(f"{base}/admin/chargers/{cp_id}")
    rows = "#ocpp-messages tbody tr"
    # The gateway writes its log after it answers: the page shows it a moment later.
    deadline = asyncio.get_running_loop().time() + 10
    while await page.locator(f'{rows}[data-action="Heartbeat"][data-dir="out"]').count() == 0:
        assert asyncio.get_running_loop().time() < deadline, "the heartbeat is not listed"
        await asyncio.sleep(0.3)
        await page.reload()
    status = page.locator(f'{rows}[data-action="StatusNotification"][data-dir="in"]')
    assert await status.count() == 1
    assert await status.get_attribute("data-type") == "CALL"
    shown = await status.locator("td.summary").text_content() or ""
    assert "status=Preparing" in shown and "info=plug in" in shown, shown
    answered = page.locator(f'{rows}[data-action="StatusNotification"][data-dir="out"]')
    assert await answered.get_attribute("data-type") == "CALLRESULT"
    # Our unlock and the charger's answer, named by the call.
    assert await page.locator(f'{rows}[data-action="UnlockConnector"][data-dir="out"]'
                              '[data-type="CALL"]').count() == 1  # fmt: skip
    unlocked = page.locator(f'{rows}[data-action="UnlockConnector"][data-dir="in"]')
    assert "status=Unlocked" in (await unlocked.locator("td.summary").text_content() or "")
    # Newest first: the heartbeat's answer is the first row.
    first = page.locator(rows).first
    assert (await first.get_attribute("data-action"), await first.get_attribute("data-dir")) == (
        "Heartbeat",
        "out",
    )
    text = await page.text_content("main") or ""
    assert "********D5E6" in text and "04A2B3C4D5E6" not in text
    assert " s ago" in (await page.text_content("#last-heartbeat") or "")
    assert await page.get_attribute("#connection", "data-online") == "yes"
    for width in (1280, 390):
        await page.set_viewport_size({"width": width, "height": 800})
        wide = await page.evaluate(WIDEST)
        assert await page.evaluate("document.documentElement.scrollWidth") <= width, wide
    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.goto(f"{base}/admin/chargers/NOPE-{cp_id}")
    assert "No charge point" in (await page.text_content("main") or "")
    await page.goto(f"{base}/admin/chargers")


async def test_sessions_cdrs_and_crediting_a_cdr_from_the_page(
    linked: Linked, browser: BrowserContext
) -> None:
    us, peer = linked.us, linked.peer
    tag = uuid.uuid4().hex[:6]
    clerk, watcher = f"bill{tag}", f"peer{tag}"
    made = us.run("users", "add", clerk, "--role", "billing", "--password-stdin",
                  stdin=PASSWORD + "\n")  # fmt: skip
    assert made.returncode == 0, made.stderr
    made = peer.run("users", "add", watcher, "--role", "billing", "--password-stdin",
                    stdin=PASSWORD + "\n")  # fmt: skip
    assert made.returncode == 0, made.stderr
    run = await asyncio.to_thread(charge_a_session, linked)
    sid = run["sid"]
    cdr = await asyncio.to_thread(our_cdr, linked, sid)

    page = await browser.new_page()
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    try:
        await _sign_in(page, us.base_url, clerk)
        # The completed session, among the past ones, with its energy.
        await page.goto(f"{us.base_url}/admin/sessions?state=past")
        session = f'tr[data-session="{sid}"]'
        assert await page.get_attribute(session, "data-status") == "COMPLETED"
        assert await page.text_content(f"{session} td[data-label=kWh]") == "8.25"
        await page.goto(f"{us.base_url}/admin/sessions?state=active")
        assert await page.locator(session).count() == 0

        # The CDR, its total and breakdown as issued.
        await page.goto(f"{us.base_url}/admin/cdrs")
        row = f'#cdrs tr[data-cdr="{sid}"]'
        total = await page.text_content(f"{row} td[data-label=Total]")
        assert total is not None and total.strip().startswith("3.575 EUR"), total
        assert cdr["total_cost"]["excl_vat"] == 3.575
        parts = await page.locator(f"{row} ul.parts li").all_text_contents()
        assert "Energy: 2.475 EUR" in [p.split(" (")[0] for p in parts], parts
        assert await page.get_attribute(row, "data-credited") == "no"

        # Credit it from the page: the row says so, and the ops API agrees.
        await page.click(f"{row} button.credit")
        await page.wait_for_selector(f"{row}[data-credited=yes]", timeout=10_000)
        said = await page.text_content(f"{row} .credit-cell")
        assert said is not None and f"{sid}-C" in said and "-3.575" in said, said
        async with httpx.AsyncClient(timeout=10) as client:
            credit = await client.get(
                f"{us.base_url}/ops/cdrs/{sid}-C", headers=ops_auth(us.base_url)
            )
        assert credit.json()["data"]["credit_reference_id"] == sid
        # After a reload: credited, no button, and the Credit CDR listed.
        await page.goto(f"{us.base_url}/admin/cdrs")
        assert await page.get_attribute(row, "data-credited") == "yes"
        assert await page.locator(f"{row} button.credit").count() == 0
        assert await page.get_attribute(f'#cdrs tr[data-cdr="{sid}-C"]', "data-credit-of") == sid

        # The partner's dashboard: our CDR received and priced the same.
        await asyncio.to_thread(reconciliation_at_peer, linked, sid)
        await _sign_in(page, peer.base_url, watcher)
        await page.goto(f"{peer.base_url}/admin/cdrs")
        received = f'#reconciliation tr[data-cdr="{sid}"]'
        assert await page.get_attribute(received, "data-verdict") == "ok"
        assert await page.text_content(f"{received} td[data-label=Verdict]") == "matches"
    except BaseException:
        await _shot([page], f"dashboard-cdrs-{tag}")
        raise


async def test_partners_page_pushes_pulls_invite_rotate_and_unregister(
    linked: Linked, browser: BrowserContext
) -> None:
    us, peer = linked.us, linked.peer
    base = us.base_url
    tag = uuid.uuid4().hex[:6].upper()
    boss = f"adm{tag.lower()}"
    made = us.run("users", "add", boss, "--role", "admin", "--password-stdin",
                  stdin=PASSWORD + "\n")  # fmt: skip
    assert made.returncode == 0, made.stderr
    # A change pushed to the peer, and a pull of our locations by the peer.
    site = location(f"PP-{tag}", country_code="ZZ", party_id="HUB",
                    evses=[evse("EVSE1", connectors=[connector("1")])])  # fmt: skip
    async with httpx.AsyncClient(timeout=20) as client:
        put = await client.put(f"{base}/ops/locations/PP-{tag}", json=site, headers=ops_auth(base))
        assert put.status_code == 201, put.text
        pulled = await client.get(f"{base}/ocpi/cpo/2.2.1/locations", headers=linked.peer_token)
        assert pulled.json()["status_code"] == 1000

    page = await browser.new_page()
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    card = f'section[data-partner="{linked.peer_id}"]'
    try:
        await _sign_in(page, base, boss)
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            await page.goto(f"{base}/admin/partners")
            last = await page.text_content(
                f"{card} tr[data-module=locations] td[data-label='Last accepted']"
            )
            if last is not None and "ago" in last:
                break
            assert asyncio.get_running_loop().time() < deadline, f"no push shown: {last}"
            await asyncio.sleep(0.5)
        assert await page.get_attribute(card, "data-status") == "registered"
        assert "CPO NL-PEE" in (await page.text_content(card) or "")
        backlog = await page.text_content(
            f"{card} tr[data-module=locations] td[data-label=Backlog]"
        )
        assert backlog is not None and backlog.strip().isdigit(), backlog
        pulls = await page.text_content(card)
        assert pulls is not None and "locations" in pulls.split("Their pulls:")[1], pulls
        for width in (1280, 390):  # usable on a phone too
            await page.set_viewport_size({"width": width, "height": 800})
            assert await page.evaluate("document.documentElement.scrollWidth") <= width
        await page.set_viewport_size({"width": 1280, "height": 800})

        # Invite: TOKEN_A shown once; the peer registers with it.
        await page.click("#invite summary")  # folded while there are partners
        await page.fill("#invite-form input[name=country_code]", "nl")
        await page.fill("#invite-form input[name=party_id]", "pee")
        await page.select_option("#invite-form select[name=role]", "CPO")
        await page.fill("#invite-form input[name=partner_id]", f"DASH-{tag}")
        await page.click("#invite-send")
        await page.wait_for_selector("#token-a:not([hidden])", timeout=10_000)
        token_a = await page.text_content("#token-a-value")
        versions = await page.text_content("#token-a-url")
        assert token_a and versions == f"{base}/ocpi/versions"
        joined = peer.run("partners", "register", "--versions-url", versions,
                          "--token-a", token_a, "--partner-id", f"HUB-{tag}")  # fmt: skip
        assert joined.returncode == 0, joined.stderr
        ours = f'section[data-partner="DASH-{tag}"]'
        deadline = asyncio.get_running_loop().time() + 15
        while True:  # the page reads the partners' view, which follows the log
            await page.goto(f"{base}/admin/partners")
            status = await page.get_attribute(ours, "data-status")
            if status == "registered":
                break
            assert asyncio.get_running_loop().time() < deadline, f"still {status}"
            await asyncio.sleep(0.5)
        assert token_a not in (await page.content())  # never shown again

        # Rotate their token, then unregister them, from the page.
        await page.click(f"{ours} button.rotate")
        await page.wait_for_selector(f"{ours} .outcome:has-text('Token rotated.')", timeout=15_000)
        await page.click(f"{ours} button.unregister")
        await page.wait_for_selector(f"{ours}[data-status=unregistered]", timeout=15_000)
        # The page shows the write's answer; the list is a view, which follows
        # the log shortly after (a write never waits for a view).
        deadline = asyncio.get_running_loop().time() + 15
        async with httpx.AsyncClient(timeout=10) as client:
            while True:
                listed = await client.get(f"{base}/ops/partners", headers=ops_auth(base))
                states = {p["partner_id"]: p for p in listed.json()["data"]}
                status = states[f"DASH-{tag}"]["status"]
                if status == "unregistered":
                    break
                assert asyncio.get_running_loop().time() < deadline, f"still {status}"
                await asyncio.sleep(0.2)
        assert "our_token_encrypted" not in states[linked.peer_id]
        assert await page.is_hidden("#partner-problem")
    except BaseException:
        await _shot([page], f"dashboard-partners-{tag}")
        raise


async def test_locations_map_detail_and_status_history(
    platform: Platform, browser: BrowserContext
) -> None:
    base = platform.base_url
    tag = uuid.uuid4().hex[:6].upper()
    who = f"loc{tag.lower()}"
    made = platform.run("users", "add", who, "--role", "viewer", "--password-stdin",
                        stdin=PASSWORD + "\n")  # fmt: skip
    assert made.returncode == 0, made.stderr
    loc = f"MAP-{tag}"
    plug = evse("EVSE1", status="AVAILABLE", connectors=[connector("1")])
    site = location(loc, country_code="ZZ", party_id="HUB", evses=[plug])
    async with httpx.AsyncClient(timeout=20) as client:
        put = await client.put(f"{base}/ops/locations/{loc}", json=site, headers=ops_auth(base))
        assert put.status_code == 201, put.text
        patch = {"status": "BLOCKED", "last_updated": "2026-12-06T10:00:00Z"}
        patched = await client.patch(
            f"{base}/ops/locations/{loc}/EVSE1", json=patch, headers=ops_auth(base)
        )
        assert patched.status_code == 200, patched.text

    page = await browser.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: refused.append(r.url) if r.status >= 400 else None)
    try:
        await _sign_in(page, base, who)
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            await page.goto(f"{base}/admin/locations?party=ZZ-HUB")
            if await page.locator(f'tr[data-location="{loc}"]').count():
                break
            assert asyncio.get_running_loop().time() < deadline, "the location is not listed"
            await asyncio.sleep(0.5)
        # Leaflet, served by us from the cache, drew one circle per location.
        await page.wait_for_selector("#map[data-markers]", timeout=5_000)
        markers = int(await page.get_attribute("#map", "data-markers") or "0")
        assert markers >= 1
        assert await page.locator("#map path.leaflet-interactive").count() == markers
        assert not refused, refused  # nothing refused by the page's policy, no script error
        for width in (1280, 390):
            await page.set_viewport_size({"width": width, "height": 800})
            wide = await page.evaluate(WIDEST)
            assert await page.evaluate("document.documentElement.scrollWidth") <= width, wide
        await page.set_viewport_size({"width": 1280, "height": 800})

        await page.click(f'tr[data-location="{loc}"] a')
        await page.wait_for_url(f"{base}/admin/locations/ZZ/HUB/{loc}")
        assert await page.get_attribute('tr[data-evse="EVSE1"]', "data-status") == "BLOCKED"
        history = page.locator("#status-history tbody tr")
        assert await history.count() == 2
        assert await history.nth(0).get_attribute("data-status") == "BLOCKED"
        assert await history.nth(1).get_attribute("data-status") == "AVAILABLE"
        was = await history.nth(0).locator("td[data-label=Was]").text_content()
        assert was == "AVAILABLE"
        # We published the location: both statements are ours (ops).
        assert {await history.nth(n).get_attribute("data-source") for n in (0, 1)} == {"ops"}

        await page.goto(f"{base}/admin/locations/ZZ/HUB/NOPE-{tag}")
        assert "No location" in (await page.text_content("main") or "")
    except BaseException:
        await _shot([page], f"dashboard-locations-{tag}")
        raise


async def test_tokens_policy_from_the_page_and_the_audit_trail(
    platform: Platform, browser: BrowserContext
) -> None:
    base = platform.base_url
    tag = uuid.uuid4().hex[:6].upper()
    boss = f"aud{tag.lower()}"
    made = platform.run("users", "add", boss, "--role", "admin", "--password-stdin",
                        stdin=PASSWORD + "\n")  # fmt: skip
    assert made.returncode == 0, made.stderr
    uid = f"TK{tag}"
    async with httpx.AsyncClient(timeout=20) as client:
        issued = await client.put(
            f"{base}/ops/tokens/{uid}",
            json=token(uid, country_code="ZZ", party_id="HUB"),
            headers=ops_auth(base),
        )
        assert issued.status_code == 201, issued.text

    page = await browser.new_page()
    row = f'#tokens tr[data-token="{uid}"]'

    async def shown(state: str) -> None:
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            await page.goto(f"{base}/admin/tokens?party=ZZ-HUB")
            if await page.locator(f"{row}[data-state={state}]").count():
                return
            assert asyncio.get_running_loop().time() < deadline, f"{uid} never shown {state}"
            await asyncio.sleep(0.5)

    try:
        await _sign_in(page, base, boss)
        await shown("ALLOWED")
        assert await page.get_attribute(row, "data-ours") == "yes"
        await page.click(f"{row} details.set-policy summary")
        await page.select_option(f"{row} select[name=state]", "BLOCKED")
        await page.fill(f"{row} input[name=location_ids]", "LOC1")
        async with page.expect_navigation():  # recorded: the page reads itself again
            await page.click(f"{row} form.policy-form button")
        await shown("BLOCKED")
        assert "only at LOC1" in (await page.text_content(f"{row} td.policy") or "")

        # The audit trail names the account that did it.
        actor = f"account:{boss}"
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            await page.goto(f"{base}/admin/audit?actor={actor}")
            kinds = await page.locator("#audit tbody tr").evaluate_all(
                "rows => rows.map(r => r.dataset.type)"
            )
            if "TokenPolicySet" in kinds:
                break
            assert asyncio.get_running_loop().time() < deadline, kinds
            await asyncio.sleep(0.5)
        assert set(kinds) == {"TokenPolicySet"}  # the filter holds: only this account's
        await page.goto(f"{base}/admin/audit?actor=account:nobody{tag.lower()}")
        assert "No entries" in (await page.text_content("main") or "")
    except BaseException:
        await _shot([page], f"dashboard-tokens-{tag}")
        raise


async def test_charts_draw_what_the_platform_sampled(
    platform: Platform, browser: BrowserContext
) -> None:
    base = platform.base_url
    tag = uuid.uuid4().hex[:6].lower()
    made = platform.run("users", "add", f"ch{tag}", "--role", "viewer", "--password-stdin",
                        stdin=PASSWORD + "\n")  # fmt: skip
    assert made.returncode == 0, made.stderr
    page = await browser.new_page()
    try:
        await _sign_in(page, base, f"ch{tag}")
        # The first sample is taken when the API starts: EVSE counts at least.
        deadline = asyncio.get_running_loop().time() + 70
        while True:
            await page.goto(f"{base}/admin/charts")
            if await page.locator("#chart-statuses svg.chart").count():
                break
            assert asyncio.get_running_loop().time() < deadline, "no status chart drawn"
            await asyncio.sleep(2)
        legend = await page.locator("#chart-statuses .legend li").all_text_contents()
        assert legend and all(item.split()[0].isupper() for item in legend), legend
        assert await page.locator("#chart-lag").count() == 1
        for width in (1280, 390):
            await page.set_viewport_size({"width": width, "height": 800})
            assert await page.evaluate("document.documentElement.scrollWidth") <= width
    except BaseException:
        await _shot([page], f"dashboard-charts-{tag}")
        raise
