"""The dashboard's actions in a real browser (Debian's chromium through
Playwright, as tests/e2e/test_dashboard.py) against the running platform:
an operator sends UNLOCK_CONNECTOR from the chargers page to a simulated
OCPP charger (bench/ocpp_sim.py answers Unlocked) and sees its result
arrive; a viewer is offered no form and its direct call is refused."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from playwright.async_api import BrowserContext

from bench.ocpp_sim import connect_charger
from tests.e2e.conftest import Platform, ops_auth
from tests.e2e.test_dashboard import (
    CHARGER_PASSWORD,
    PASSWORD,
    _a_site_with_a_charger,
    _csrf,
    _shot,
    _sign_in,
    browser,
)

__all__ = ["browser"]  # the fixture, shared with the board's test

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
