"""The admin dashboard in a real browser (Debian's chromium, driven by
Playwright; never a downloaded browser) against the running platform:
sign in; an OCPP charger reports Faulted and the board shows OUTOFORDER
within 2 s without a reload; a viewer's write is refused; forged
cross-site requests are refused; signing out ends the session.
Screenshots of a failure go to data/screenshots/."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from ocpp.v16 import ChargePoint, call
from playwright.async_api import BrowserContext, Page, async_playwright
from websockets.asyncio.client import connect

from tests.e2e.conftest import ROOT, Platform, ops_auth
from tests.e2e.test_walking_skeleton import wait_for
from tests.ocpi_objects import connector, evse, location

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "dashboard e2e pass"
CHARGER_PASSWORD = "e2e-dashboard-charger"
SHOTS = ROOT / "data" / "screenshots"
# Set to write the README's screenshots under docs/img/ from this run.
README_SHOTS = os.environ.get("OCPI_HUB_TEST_README_SHOTS") == "1"


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    assert shutil.which(CHROMIUM), "chromium is missing: `make up` installs it with apt"
    async with async_playwright() as pw:
        # A persistent context is how Playwright takes a user data dir: a
        # fresh one per test, so nothing of another run is reused.
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=FLAGS, headless=True
        )
        try:
            yield context
        finally:
            await context.close()


async def _shot(pages: list[Page], name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for n, page in enumerate(pages):
        await page.screenshot(path=str(SHOTS / f"{name}-{n}.png"), full_page=True)


async def _history_shows_the_charger(page: Page, base: str, loc: str) -> None:
    await page.goto(f"{base}/admin/locations/ZZ/HUB/{loc}")
    charger = '#status-history tr[data-source="charger"][data-status="OUTOFORDER"]'
    deadline = time.monotonic() + 10
    while await page.locator(charger).count() == 0:
        assert time.monotonic() < deadline, "the charger's status is not in the history"
        await asyncio.sleep(0.3)
        await page.reload()
    assert await page.locator(charger).locator("td[data-label=Was]").text_content() == "AVAILABLE"
    owner = page.locator('#status-history tr[data-source="ops"]')
    assert await owner.count() == 1  # the site as we published it
    assert await owner.get_attribute("data-status") == "AVAILABLE"
    # Usable at 1,280 px and on a phone, its two new columns included.
    for width in (1280, 390):
        await page.set_viewport_size({"width": width, "height": 800})
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
    await page.set_viewport_size({"width": 1280, "height": 800})


async def _readme_shots(page: Page, base: str, charger: ChargePoint, row: str) -> None:
    """The README's pictures, from this run (OCPI_HUB_TEST_README_SHOTS=1):
    the board with the faulted EVSE, and the charger's page."""
    await page.goto(f"{base}/admin")
    await page.wait_for_selector(f"{row}[data-status=OUTOFORDER]")
    await page.screenshot(path=str(ROOT / "docs" / "img" / "status-board.png"))
    await charger.call(call.Authorize(id_tag="04A2B3C4D5E6"))
    await charger.call(call.Heartbeat())
    await page.goto(f"{base}/admin/chargers/{charger.id}")
    deadline = time.monotonic() + 10
    while not await page.locator('#ocpp-messages tr[data-action="Heartbeat"]').count():
        assert time.monotonic() < deadline, "the heartbeat is not listed"
        await asyncio.sleep(0.3)
        await page.reload()
    await page.screenshot(path=str(ROOT / "docs" / "img" / "charger.png"))


async def _sign_in(page: Page, base: str, login: str) -> None:
    await page.goto(f"{base}/admin")
    assert "/admin/login" in page.url  # no session: sent to the form
    await page.fill("#login", login)
    await page.fill("#password", PASSWORD)
    await page.click("#sign-in")
    await page.wait_for_selector("#live[data-state=live]", timeout=10_000)


async def _csrf(page: Page) -> str:
    token: str = await page.get_attribute("input[name=csrf_token]", "value") or ""
    return token


def _a_site_with_a_charger(base: str, loc: str, cp_id: str) -> None:
    admin = ops_auth(base)
    site = location(
        loc,
        country_code="ZZ",
        party_id="HUB",
        evses=[evse("EVSE1", status="AVAILABLE", connectors=[connector("1")])],
    )
    made = httpx.put(f"{base}/ops/locations/{loc}", json=site, headers=admin, timeout=20)
    assert made.status_code == 201, made.text
    plugs = [{"ocpp_connector_id": 1, "evse_uid": "EVSE1", "connector_id": "1"}]
    cp = {"location_id": loc, "password": CHARGER_PASSWORD, "connectors": plugs}
    made = httpx.put(f"{base}/ops/charge-points/{cp_id}", json=cp, headers=admin, timeout=20)
    assert made.status_code == 201, made.text

    def listed() -> bool:
        found = httpx.get(
            f"{base}/ops/evses", params={"location_id": loc}, headers=admin, timeout=10
        )
        return bool(found.json()["data"])

    wait_for(listed, "the EVSE in the MySQL hierarchy the board reads")


# fetch() from a signed-in page: a PATCH with or without the session's token.
PATCH = """async ([loc, token]) => {
    const headers = {'Content-Type': 'application/json'};
    if (token) headers['X-CSRF-Token'] = token;
    const body = JSON.stringify({status: 'BLOCKED', last_updated: '2026-12-06T10:00:00Z'});
    const r = await fetch('/ops/locations/' + loc + '/EVSE1', {method: 'PATCH', headers, body});
    return r.status;
}"""
LOGOUT_WITHOUT_TOKEN = """async () => (await fetch('/admin/logout', {method: 'POST',
    redirect: 'manual', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
    body: 'x=1'})).status"""


async def test_the_board_live_sign_in_roles_csrf_and_sign_out(
    platform: Platform, browser: BrowserContext
) -> None:
    base = platform.base_url
    for login, role in (("ada", "operator"), ("vic", "viewer")):
        made = platform.run("users", "add", login, "--role", role, "--password-stdin",
                            stdin=PASSWORD + "\n")  # fmt: skip
        assert made.returncode == 0, made.stderr
    tag = uuid.uuid4().hex[:6].upper()
    loc, cp_id = f"DASH-{tag}", f"CP-{tag}"
    row = f'tr[data-key="ZZ/HUB/{loc}/EVSE1"]'
    await asyncio.to_thread(_a_site_with_a_charger, base, loc, cp_id)

    page = await browser.new_page()
    try:
        await _sign_in(page, base, "ada")
        await page.wait_for_selector(f"{row}[data-status=AVAILABLE]", timeout=5_000)
        # Usable at 1,280 px and on a phone: nothing wider than the screen.
        for width in (1280, 390):
            await page.set_viewport_size({"width": width, "height": 800})
            assert await page.evaluate("document.documentElement.scrollWidth") <= width
        await page.set_viewport_size({"width": 1280, "height": 800})
        # A marker that a reload would wipe: the change must arrive live.
        await page.evaluate("window.__noReload = true")

        auth = base64.b64encode(f"{cp_id}:{CHARGER_PASSWORD}".encode()).decode()
        async with connect(
            f"{platform.gateway_url}/{cp_id}",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Basic {auth}"},
        ) as ws:
            charger = ChargePoint(cp_id, ws, response_timeout=10)
            listening = asyncio.create_task(charger.start())
            try:
                await charger.call(call.BootNotification(charge_point_model="Sim-1",
                                                         charge_point_vendor="Tests"))  # fmt: skip
                sent = time.monotonic()
                await charger.call(
                    call.StatusNotification(connector_id=1, error_code="GroundFailure",
                                            status="Faulted")
                )  # fmt: skip
                await page.wait_for_selector(f"{row}[data-status=OUTOFORDER]", timeout=2_000)
                shown_after = time.monotonic() - sent
                assert await page.evaluate("window.__noReload === true")
                assert await page.text_content(f"{row} .status") == "OUTOFORDER"
                # The server-rendered row changed; no second row was added.
                assert await page.locator(row).count() == 1
                assert await page.text_content('[data-count="OUTOFORDER"]') not in (None, "0")

                # The chargers page: this one online, heard from just now.
                await page.goto(f"{base}/admin/chargers?location={loc}")
                charger_row = f'tr[data-charger="{cp_id}"]'
                assert await page.get_attribute(charger_row, "data-online") == "yes"
                heard = await page.text_content(f"{charger_row} td[data-label='Last message']")
                assert heard is not None and " s ago" in heard, heard

                # The location's status history: the charger's doing, as such.
                await _history_shows_the_charger(page, base, loc)
                if README_SHOTS:
                    await _readme_shots(page, base, charger, row)
            finally:
                listening.cancel()
        assert shown_after < 2.0

        async def offline() -> bool:
            await page.goto(f"{base}/admin/chargers?location={loc}")
            return await page.get_attribute(charger_row, "data-online") == "no"

        deadline = time.monotonic() + 10
        while not await offline():
            assert time.monotonic() < deadline, "the charger still shown online after it left"
            await asyncio.sleep(0.5)
        await page.goto(f"{base}/admin")

        # Forged: the operator's cookie without the session's token (what a
        # cross-site form would send if SameSite did not stop it)...
        assert await page.evaluate(PATCH, [loc, None]) == 403
        assert await page.evaluate(LOGOUT_WITHOUT_TOKEN) == 403
        # ... and a real cross-site page posting a form to us.
        await page.route("http://forger.test/", lambda route: route.fulfill(
            content_type="text/html",
            body=f'<form id="f" method="post" action="{base}/admin/logout"></form>'
                 '<script>document.getElementById("f").submit()</script>',
        ))  # fmt: skip
        await page.goto("http://forger.test/")
        await page.wait_for_load_state()
        await page.goto(f"{base}/admin")
        assert page.url.startswith(f"{base}/admin") and "/login" not in page.url  # still signed in
        assert await page.text_content(f"{row} .status") == "OUTOFORDER"  # nothing was changed

        cookies = {c["name"]: c["value"] for c in await browser.cookies(base)}
        await page.click("#logout")
        await page.wait_for_url(f"{base}/admin/login")
        await page.goto(f"{base}/admin")
        assert "/admin/login" in page.url
        # The old cookie, replayed, opens nothing.
        async with httpx.AsyncClient(cookies=cookies, timeout=10) as replay:
            old = await replay.get(f"{base}/ops/locations/{loc}")
        assert old.status_code == 401

        # A viewer may look, not write (through /ops, with a valid CSRF token).
        await _sign_in(page, base, "vic")
        assert await page.evaluate(PATCH, [loc, await _csrf(page)]) == 403
    except BaseException:
        await _shot([page], f"dashboard-{tag}")
        raise
