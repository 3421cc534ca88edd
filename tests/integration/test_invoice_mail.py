"""Invoice files and e-mails against the real services (docs/adr/0040): a
real SMTP server (aiosmtpd over TCP), Kafka, Redis and MariaDB.

A month is closed with one corporation; the billing worker (its loop
running, in this process) sends exactly one e-mail, to the billing address
on the invoice, with the Factur-X PDF and the CSV attached: the PDF's XML
passes the official XSD, pdftotext reads the number and the totals, and
``InvoiceMailed`` records the SHA-256 of the PDF that was sent. The ops
routes serve the same bytes (a draft: 409; unknown: 404). A re-send request
sends exactly one more (a retried request, none); a restarted worker, and
a reader of the whole topic with none of the Redis claims, send nothing
again. Byte for byte: the files rendered from the states the decision store
rebuilds from the log, and from the states ``ocpi-hub replay --into``
folds into MySQL, are the files rendered live and sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import facturx  # type: ignore[import-untyped]  # the package ships no type hints
import httpx
from cryptography.fernet import Fernet
from pymongo import MongoClient
from sqlalchemy import select

from api.app import create_app
from ocpi_hub.bootstrap import (
    BillingWorker,
    billing_worker_process,
    drop_mysql_database,
    mysql_engine,
    opened,
)
from ocpi_hub.settings import Settings
from processors.invoice_mailer import InvoiceMailer
from producers.billing.aggregate import SLICE
from producers.billing.invoices import decide_draft, invoice_source
from producers.billing.mailings import mailing_asked_by
from producers.billing.state import CorporationState, InvoiceSource
from producers.decision_store import RedisDecisionStore
from producers.invoice_files import FileKind, InvoiceRenderer
from producers.invoicing import close_month
from producers.log import KafkaLogHistory, ensure_topics
from producers.write_path import Origin, WritePath
from projections.mysql.billing import corporations
from schemas.events import Party
from schemas.events.billing import FIRST_MAILING
from schemas.topics import BILLING_CORPORATIONS
from tests.conftest import fresh_namespace
from tests.integration.test_billing import Inbox, smtp_server
from tests.integration.test_invoices import _charge, _corporation
from tests.ops_admin import as_admin
from tests.services import env_of
from tests.unit.test_invoice_documents import pdftotext

ROOT = Path(__file__).parents[2]
OCPI_HUB = str(Path(sys.executable).parent / "ocpi-hub")
ORIGIN = Origin(Party(country_code="ZZ", party_id="HUB"), "test-invoice-mail")


@asynccontextmanager
async def worker_running(s: Settings) -> AsyncIterator[BillingWorker]:
    """The billing worker with its loops running (both mailers, charges)."""
    stop = asyncio.Event()
    async with billing_worker_process(s) as worker:
        task = asyncio.create_task(worker.run(stop))
        try:
            yield worker
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def _mailing_recorded(w: WritePath, cid: str, invoice_id: str, mailing_id: str) -> Any:
    for _ in range(300):
        state = await w.state(SLICE, cid)
        assert state is not None
        mailing = state.invoice_sources[invoice_id].mailings.get(mailing_id)
        if mailing is not None and mailing.message_id is not None:
            return mailing
        await asyncio.sleep(0.1)
    raise AssertionError(f"mailing {mailing_id} of {invoice_id} not recorded")


def _attachments(message: EmailMessage) -> dict[str, tuple[str, bytes]]:
    out: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        out[str(part.get_filename())] = (part.get_content_type(), payload)
    return out


def _rendered(renderer: InvoiceRenderer, source: InvoiceSource) -> dict[FileKind, bytes]:
    return {kind: renderer.render(source, kind).content for kind in FileKind}


def test_an_issued_invoice_is_mailed_once_and_served_and_replayed_byte_for_byte(
    services: Settings,
) -> None:
    with fresh_namespace(services) as namespace, smtp_server(Inbox()) as (inbox, port):
        s = namespace.settings.model_copy(
            update={
                "secret_key": Fernet.generate_key().decode(),
                "smtp_port": port,
                "mail_retry_initial_s": 0.05,
                "mail_retry_max_s": 0.2,
            }
        )
        into = f"{namespace.name}_rp"
        try:
            asyncio.run(_story(s, inbox, into))
        finally:
            drop_mysql_database(services, into)
            with MongoClient(services.mongo_url) as client:
                client.drop_database(into)


async def _story(s: Settings, inbox: Inbox, into: str) -> None:
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    app = as_admin(create_app(s))
    async with app.router.lifespan_context(app):
        w: WritePath = app.state.write_path
        cid = await _corporation(w, [("ada000000001", "0A0A0A", "R&D")])
        for n in range(3):
            await _charge(w, cid, f"A{n}", "0A0A0A", "8.25", "2026-11-10T12:00:00Z")
        await _charge(w, cid, "A3", "0A0A0A", "4", "2026-12-05T12:00:00Z")  # December's
        report = await close_month(w, month="2026-11", origin=ORIGIN, now=datetime.now(UTC))
        [number] = report.shown()["numbers"]
        invoice_id = f"{cid}-202611"
        # December drafted, never issued: a draft has no files.
        await w.write(
            SLICE,
            cid,
            lambda st: decide_draft(
                st,
                corporation_id=cid,
                month="2026-12",
                period_start=datetime(2026, 12, 1, tzinfo=UTC),
                period_end=datetime(2027, 1, 1, tzinfo=UTC),
                origin=ORIGIN,
                now=datetime(2027, 1, 2, tzinfo=UTC),
            ),
        )

        # The worker mails the issued invoice once.
        async with worker_running(s):
            await inbox.wait(1, timeout_s=60)
            first = await _mailing_recorded(w, cid, invoice_id, FIRST_MAILING)
        assert len(inbox.messages) == 1
        message = inbox.messages[0]
        assert inbox.envelopes[0][1] == ["invoices@acme.example"]  # the invoice's address
        assert number in str(message["Subject"])
        attached = _attachments(message)
        assert sorted(attached) == [f"invoice-{number}.csv", f"invoice-{number}.pdf"]
        content_type, pdf = attached[f"invoice-{number}.pdf"]
        assert content_type == "application/pdf"
        csv = attached[f"invoice-{number}.csv"][1]
        # The recorded fingerprints are those of the bytes the server received.
        assert first.pdf_sha256 == hashlib.sha256(pdf).hexdigest()
        assert first.csv_sha256 == hashlib.sha256(csv).hexdigest()
        assert first.recipient == "invoices@acme.example"
        assert first.message_id == str(message["Message-ID"])
        # The e-invoice inside passes the official XSD (factur-x checks it).
        name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
        assert name == "factur-x.xml"
        assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
        # By hand: 3 x 2.89 + fee 2.50 = 11.17; VAT 21 % 2.3457 -> 2.35; 13.52.
        text = pdftotext(pdf)
        for figure in (number, "€ 11.17", "€ 2.35", "€ 13.52"):
            assert figure in text, figure
        assert b"<ram:GrandTotalAmount>13.52</ram:GrandTotalAmount>" in xml
        assert csv.decode().count(f"{number},") == 2  # a line of sessions, a fee

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://hub.example") as http:
            served: dict[FileKind, bytes] = {}
            for kind, media in (
                (FileKind.PDF, "application/pdf"),
                (FileKind.XML, "application/xml"),
                (FileKind.CSV, "text/csv; charset=utf-8"),
            ):
                answer = await http.get(f"/ops/invoices/{invoice_id}/{kind}")
                assert answer.status_code == 200, answer.text
                assert answer.headers["content-type"] == media
                assert answer.headers["content-disposition"] == (
                    f'attachment; filename="invoice-{number}.{kind}"'
                )
                served[kind] = answer.content
            assert served[FileKind.PDF] == pdf and served[FileKind.CSV] == csv
            assert served[FileKind.XML] == xml
            draft = await http.get(f"/ops/invoices/{cid}-202612/pdf")
            assert draft.status_code == 409 and "draft" in draft.json()["status_message"]
            missing = await http.get(f"/ops/invoices/{cid}-202501/xml")
            assert missing.status_code == 404
            not_mailed = await http.post(f"/ops/invoices/{cid}-202612/mail")
            assert not_mailed.status_code == 409

            # A re-send: one more e-mail; the same request again asks for nothing new.
            headers = {"X-Correlation-Id": "resend-1"}
            asked = await http.post(f"/ops/invoices/{invoice_id}/mail", headers=headers)
            assert asked.status_code == 202, asked.text
            again = await http.post(f"/ops/invoices/{invoice_id}/mail", headers=headers)
            assert again.json()["data"]["mailing_id"] == asked.json()["data"]["mailing_id"]
            resend = asked.json()["data"]["mailing_id"]
            assert [m["mailing_id"] for m in again.json()["data"]["mailings"]] == [
                FIRST_MAILING,
                resend,
            ]

        # A restarted worker sends the re-send, once, and nothing old.
        async with worker_running(s):
            await inbox.wait(2, timeout_s=60)
            second = await _mailing_recorded(w, cid, invoice_id, resend)
            await asyncio.sleep(3)  # room for a wrong second send
        assert len(inbox.messages) == 2
        assert second.pdf_sha256 == first.pdf_sha256  # the same document, the same bytes
        resent = _attachments(inbox.messages[1])
        assert resent[f"invoice-{number}.pdf"][1] == pdf
        async with worker_running(s):
            await asyncio.sleep(3)
        assert len(inbox.messages) == 2

        # A reader of the whole topic that holds none of the claims (another
        # Redis prefix) still sends nothing: the state says what was mailed.
        state_live = await w.state(SLICE, cid)
        assert state_live is not None
        async with billing_worker_process(s) as fresh:
            fresh_reader = InvoiceMailer(
                write_path=w,
                key_prefix=f"{s.topic_prefix}other-claims-",
                mail_from=s.mail_from,
                delivery=fresh.invoices.delivery,
                renderer=fresh.invoices.renderer,
                us=fresh.invoices.us,
            )
            outcomes = []
            history = KafkaLogHistory(s.kafka_bootstrap, s.topic_prefix)
            async for _, offset, event in history.scan(BILLING_CORPORATIONS):
                # What the worker's consumer does with each event it reads.
                mailing = mailing_asked_by(event)
                if mailing is not None:
                    outcomes.append(await fresh_reader.handle(mailing, offset))
        assert outcomes == ["done", "done"]
        assert len(inbox.messages) == 2

        async with httpx.AsyncClient(transport=transport, base_url="https://hub.example") as http:
            listed = (await http.get(f"/ops/invoices/{invoice_id}/mailings")).json()["data"]
            assert [(m["mailing_id"], m["pdf_sha256"]) for m in listed] == [
                (FIRST_MAILING, first.pdf_sha256),
                (resend, first.pdf_sha256),
            ]
            # Asked for, then the invoice voided before the worker ran: not sent.
            late = await http.post(
                f"/ops/invoices/{invoice_id}/mail", headers={"X-Correlation-Id": "resend-2"}
            )
            assert late.status_code == 202
            voided = await http.post(f"/ops/invoices/{invoice_id}/void", json={"reason": "test"})
            assert voided.json()["data"]["status"] == "VOID", voided.text
            refused = await http.post(f"/ops/invoices/{invoice_id}/mail")
            assert refused.status_code == 409
            # A void invoice keeps its number, so its files.
            still = await http.get(f"/ops/invoices/{invoice_id}/pdf")
            assert still.status_code == 200 and still.content == pdf
        async with worker_running(s):
            await asyncio.sleep(3)
        assert len(inbox.messages) == 2
        never = await w.state(SLICE, cid)
        assert never is not None
        late_id = late.json()["data"]["mailing_id"]
        assert never.invoice_sources[invoice_id].mailings[late_id].message_id is None

        renderer = fresh.invoices.renderer
        live = _rendered(renderer, invoice_source(state_live, invoice_id))
        assert live[FileKind.PDF] == pdf and live[FileKind.CSV] == csv

    # Byte for byte, 1: the decision store rebuilt from the log (a store
    # under another prefix starts empty and folds the whole topic).
    rebuilt = await _rebuilt_state(s, cid)
    assert _rendered(renderer, invoice_source(rebuilt, invoice_id)) == live

    # Byte for byte, 2: `ocpi-hub replay --into` folds the same states into
    # MySQL (the corporation's row keeps it); its files are the live ones.
    done = await asyncio.to_thread(_replay_into, s, into)
    assert done.returncode == 0, done.stderr[-2000:]
    replayed = _replayed_state(s, into, cid)
    files = _rendered(renderer, invoice_source(replayed, invoice_id))
    assert files == live
    assert hashlib.sha256(files[FileKind.PDF]).hexdigest() == first.pdf_sha256
    assert hashlib.sha256(files[FileKind.CSV]).hexdigest() == first.csv_sha256


async def _rebuilt_state(s: Settings, cid: str) -> CorporationState:
    """The corporation's state from a decision store that holds nothing yet
    (another key prefix in the same Redis): rebuilt from the topic."""
    prefix = f"rebuilt-{s.topic_prefix}"
    async with opened(s) as c:
        fresh_path = WritePath(
            c.event_log,
            RedisDecisionStore(c.redis, prefix),
            KafkaLogHistory(s.kafka_bootstrap, s.topic_prefix),
        )
        try:
            await fresh_path.ensure_ready((SLICE,))
            state = await fresh_path.state(SLICE, cid)
        finally:
            async for key in c.redis.scan_iter(match=f"{prefix}*"):
                await c.redis.delete(key)
    assert state is not None
    return state


def _replayed_state(s: Settings, into: str, cid: str) -> CorporationState:
    engine = mysql_engine(s, into)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                select(corporations.c.state_json).where(corporations.c.corporation_id == cid)
            ).one()
    finally:
        engine.dispose()
    return CorporationState.model_validate(row.state_json["state"])


def _replay_into(s: Settings, into: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OCPI_HUB, "replay", "--into", into],
        env={**os.environ, **env_of(s)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
