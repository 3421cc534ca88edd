"""Monthly invoices against the real services (docs/adr/0036): Kafka,
Redis (the decision store) and MariaDB (the tables folded by replay).

Two corporations with members and charges, a third with nothing to bill.
``ocpi-hub billing close-month`` (the command, as a process) closes
November: two invoices, numbered one after the other, issued, in MySQL
with their lines. Running it again writes nothing and says so (exit 1),
and so does the ops route. A CDR of a November session recorded after the
close lands on December's invoice; November's is unchanged. Paid and void
through the ops API; a void invoice keeps its number. Replay event by event
and all at once give the same rows.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from api.app import create_app
from ocpi_hub.bootstrap import mysql_engine
from ocpi_hub.settings import Settings
from producers.billing.aggregate import SLICE
from producers.billing.charges import decide_charge
from producers.billing.corporations import NewCorporation, decide_register, new_id
from producers.billing.members import NewMember, decide_activate, decide_invite
from producers.invoicing import close_month
from producers.log import KafkaLogHistory, ensure_topics
from producers.write_path import Origin, WritePath
from projections.mysql.billing import BillingRowWriter, invoice_lines, invoices
from projections.mysql.migrate import migrate
from projections.runner import replay
from schemas.events import Party
from schemas.topics import BILLING_CORPORATIONS, BILLING_INVOICE_NUMBERS
from tests.conftest import fresh_namespace
from tests.ops_admin import as_admin
from tests.services import env_of
from tests.unit.test_billing import corporation_body, member_cdr

ROOT = Path(__file__).parents[2]
OCPI_HUB = str(Path(sys.executable).parent / "ocpi-hub")
ORIGIN = Origin(Party(country_code="ZZ", party_id="HUB"), "test-invoices")
SEPTEMBER = datetime(2026, 9, 1, tzinfo=UTC)
INVITATION = "b" * 32


async def _corporation(w: WritePath, members: list[tuple[str, str, str | None]]) -> str:
    """A corporation (fee 2.50 per member, 0.35/kWh, 21 %) with activated
    members (member id, card uid, cost centre), through the write path."""
    cid = new_id()
    body = NewCorporation.model_validate(corporation_body())
    await w.write(
        SLICE,
        cid,
        lambda s: decide_register(s, corporation_id=cid, body=body, origin=ORIGIN, now=SEPTEMBER),
    )
    for member_id, card, centre in members:
        new = NewMember.model_validate(
            {"name": f"M {card}", "email": f"{card.lower()}@x.example", "rfid_uid": card}
            | ({"cost_centre": centre} if centre else {})
        )
        await w.write(
            SLICE,
            cid,
            lambda s, m=member_id, b=new: decide_invite(  # type: ignore[misc]
                s,
                corporation_id=cid,
                member_id=m,
                body=b,
                invitation_id=INVITATION,
                valid_for=timedelta(days=3),
                origin=ORIGIN,
                now=SEPTEMBER,
            ),
        )
        await w.write(
            SLICE,
            cid,
            lambda s, m=member_id: decide_activate(  # type: ignore[misc]
                s,
                corporation_id=cid,
                member_id=m,
                invitation_id=INVITATION,
                origin=ORIGIN,
                now=SEPTEMBER,
            ),
        )
    return cid


async def _charge(w: WritePath, cid: str, cdr_id: str, card: str, kwh: str, ended: str) -> None:
    """One partner CDR of the member's card, charged as the billing worker does."""
    token = {"country_code": "ZZ", "party_id": "HUB", "uid": card, "type": "RFID"}
    cdr = member_cdr(
        cdr_id,
        cdr_token=token | {"contract_id": "C"},
        total_energy=float(kwh),
        start_date_time=ended,
        end_date_time=ended,
    )
    await w.write(
        SLICE,
        cid,
        lambda s: decide_charge(
            s,
            corporation_id=cid,
            cdr_key_of=lambda ref: f"NL/CPO/{ref}",
            key=f"NL/CPO/{cdr_id}",
            cdr=cdr,
            role="received",
            origin=ORIGIN,
            now=datetime.now(UTC),
        ),
    )


def _cli(s: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OCPI_HUB, "billing", "close-month", *args],
        env={**os.environ, **env_of(s)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _events(s: Settings, topic: Any) -> list[Any]:
    history = KafkaLogHistory(s.kafka_bootstrap, s.topic_prefix)
    return [event async for _, _, event in history.scan(topic)]


def _rows(s: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    engine = mysql_engine(s)
    try:
        with engine.connect() as conn:
            heads = {r.invoice_id: dict(r._mapping) for r in conn.execute(select(invoices))}
            lines = {
                f"{r.invoice_id}/{r.line_no}": dict(r._mapping)
                for r in conn.execute(select(invoice_lines))
            }
        return heads, lines
    finally:
        engine.dispose()


async def _replayed(s: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The invoice tables rebuilt from the topic, event by event and in large
    batches (and event by event once more: the offset guard)."""
    engine = mysql_engine(s)
    try:
        await asyncio.to_thread(migrate, engine)
        writer = BillingRowWriter(engine)
        topics = (BILLING_CORPORATIONS.name,)
        await asyncio.to_thread(writer.wipe)
        await replay(s.kafka_bootstrap, s.topic_prefix, [writer], batch_size=1, topics=topics)
        one_by_one = _rows(s)
        await replay(s.kafka_bootstrap, s.topic_prefix, [writer], batch_size=1, topics=topics)
        assert _rows(s) == one_by_one
        await asyncio.to_thread(writer.wipe)
        await replay(s.kafka_bootstrap, s.topic_prefix, [writer], batch_size=500, topics=topics)
        assert _rows(s) == one_by_one
        return one_by_one
    finally:
        engine.dispose()


def test_a_month_is_closed_once_with_consecutive_numbers(services: Settings) -> None:
    with fresh_namespace(services) as namespace:
        asyncio.run(_month_story(namespace.settings))


async def _month_story(s: Settings) -> None:
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    app = as_admin(create_app(s))
    async with app.router.lifespan_context(app):
        w: WritePath = app.state.write_path
        acme = await _corporation(
            w, [("ada000000001", "0A0A0A", "R&D"), ("bob000000002", "0B0B0B", None)]
        )
        beta = await _corporation(w, [("cyd000000003", "0C0C0C", None)])
        await _corporation(w, [])  # nothing to bill: no member, no fee
        for n in range(3):
            await _charge(w, acme, f"A{n}", "0A0A0A", "8.25", "2026-11-10T12:00:00Z")
        await _charge(w, acme, "B0", "0B0B0B", "10", "2026-11-30T23:59:59Z")
        await _charge(w, beta, "C0", "0C0C0C", "20", "2026-11-15T12:00:00Z")
        # Ended on the first instant of December: not November's.
        await _charge(w, beta, "C1", "0C0C0C", "4", "2026-12-01T00:00:00Z")

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://hub.example") as http:
            # Bad input: nothing written.
            for month, status in (("2026-13", 400), ("2026-12", 409), ("2099-01", 409)):
                refused = await http.post(f"/ops/billing/months/{month}/close")
                assert refused.status_code == status, (month, refused.text)
            bad = _cli(s, "--month", "11-2026")
            assert bad.returncode == 1 and "is not a month (YYYY-MM)" in bad.stderr, bad
            assert await _events(s, BILLING_INVOICE_NUMBERS) == []
            before = len(await _events(s, BILLING_CORPORATIONS))

            # The command closes November.
            closed = _cli(s, "--month", "2026-11")
            assert closed.returncode == 0, closed.stderr
            report = json.loads(closed.stdout.strip().splitlines()[-1])
            year = datetime.now(UTC).year
            first, second = f"{year}-000001", f"{year}-000002"
            assert report["numbers"] == [first, second], report
            assert (report["invoices"], report["drafted"], report["nothing_to_bill"]) == (2, 2, 1)
            # Numbers in invoice id order: the smaller corporation id first.
            numbered = dict(zip(sorted([acme, beta]), (first, second), strict=True))

            # Again: refused, nothing written (the command and the route alike).
            written = len(await _events(s, BILLING_CORPORATIONS))
            assert written == before + 4  # two drafts, two issues
            again = _cli(s, "--month", "2026-11")
            assert again.returncode == 1
            assert "2026-11 is already closed (2 invoices), nothing written" in again.stderr
            route = await http.post("/ops/billing/months/2026-11/close")
            assert route.status_code == 409 and "already closed" in route.json()["status_message"]
            assert len(await _events(s, BILLING_CORPORATIONS)) == written
            assert len(await _events(s, BILLING_INVOICE_NUMBERS)) == 2  # numbers, month closed

            # A CDR of a November session, recorded after the close.
            await _charge(w, acme, "LATE", "0B0B0B", "2", "2026-11-20T12:00:00Z")
            december = await close_month(
                w, month="2026-12", origin=ORIGIN, now=datetime(2027, 1, 2, tzinfo=UTC)
            )
            assert december.shown()["numbers"] == ["2027-000001", "2027-000002"]

        heads, _ = await _replayed(s)

        async with httpx.AsyncClient(transport=transport, base_url="https://hub.example") as http:
            nov = (await http.get("/ops/invoices?month=2026-11")).json()["data"]
            assert [(i["corporation_id"], i["number"]) for i in nov] == sorted(numbered.items())
            assert {i["status"] for i in nov} == {"ISSUED"}
            acme_nov = (await http.get(f"/ops/invoices/{acme}-202611")).json()["data"]
            # By hand: 3 x 2.89 + 3.50 + 2 fees of 2.50 = 17.17; VAT 21 % 3.61.
            assert (acme_nov["net_total"], acme_nov["vat_total"], acme_nov["gross_total"]) == (
                "17.170000",
                "3.610000",
                "20.780000",
            )
            assert [
                (ln["kind"], ln["cost_centre"], ln["sessions"], ln["net"])
                for ln in acme_nov["lines"]
            ] == [
                ("CHARGES", "R&D", 3, "8.670000"),
                ("MONTHLY_FEE", "R&D", 0, "2.500000"),
                ("CHARGES", None, 1, "3.500000"),
                ("MONTHLY_FEE", None, 0, "2.500000"),
            ]
            beta_nov = (await http.get(f"/ops/invoices/{beta}-202611")).json()["data"]
            assert beta_nov["net_total"] == "9.500000"  # 20 kWh x 0.35 + 2.50: not C1
            # The late CDR is on December's invoice, November's is unchanged.
            acme_dec = (await http.get(f"/ops/invoices/{acme}-202612")).json()["data"]
            late = [ln for ln in acme_dec["lines"] if ln["kind"] == "CHARGES"]
            assert [(ln["member_id"], ln["energy_kwh"], ln["net"]) for ln in late] == [
                ("bob000000002", "2.000000", "0.700000")
            ]
            beta_dec = (await http.get(f"/ops/invoices/{beta}-202612")).json()["data"]
            assert [ln["energy_kwh"] for ln in beta_dec["lines"] if ln["kind"] == "CHARGES"] == [
                "4.000000"
            ]
            assert heads[f"{acme}-202611"]["lines"] == 4

            # Paid and void (role billing); a void invoice keeps its number.
            paid = await http.post(
                f"/ops/invoices/{acme}-202611/paid",
                json={"paid_on": "2026-12-20", "reference": "BANK-7"},
            )
            assert paid.json()["data"]["status"] == "PAID", paid.text
            voided = await http.post(f"/ops/invoices/{beta}-202611/void", json={"reason": "test"})
            assert voided.json()["data"]["status"] == "VOID", voided.text
            assert voided.json()["data"]["number"] == numbered[beta]
            no_reason = await http.post(f"/ops/invoices/{beta}-202611/void", json={})
            assert no_reason.json()["status_code"] == 2001
            cannot = await http.post(f"/ops/invoices/{acme}-202611/void", json={"reason": "x"})
            assert cannot.status_code == 409
            missing = await http.get(f"/ops/invoices/{beta}-202501")
            assert missing.status_code == 404

    heads, _ = await _replayed(s)
    assert heads[f"{acme}-202611"]["status"] == "PAID"
    assert str(heads[f"{acme}-202611"]["paid_on"]) == "2026-12-20"
    assert (heads[f"{beta}-202611"]["status"], heads[f"{beta}-202611"]["number"]) == (
        "VOID",
        numbered[beta],
    )
    numbers = sorted(h["number"] for h in heads.values())
    assert numbers == [f"{year}-000001", f"{year}-000002", "2027-000001", "2027-000002"]
    assert heads[f"{acme}-202612"]["gross_total"] == Decimal("6.900000")  # 5.70 + 1.197 -> 1.20
