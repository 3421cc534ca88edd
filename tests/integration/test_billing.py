"""The billing slice against the real services: Kafka, Redis, MariaDB and a
real SMTP server (aiosmtpd, over TCP, as `make up` runs it).

A corporation is registered through the ops API (an invalid VAT id first:
refused, nothing on the topic); a member is invited; the mailer process
hands the activation e-mail to the SMTP server; the test reads the
received message, follows its link (the page, then its button), and sees
the member active and the member's token authorizing at our chargers;
suspending the corporation stops the token, reinstating lets it charge
again. The mailer never sends one invitation twice. A replay rebuilds the
MySQL rows, batch by batch and all at once alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import re
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from email.message import EmailMessage
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography.fernet import Fernet
from sqlalchemy import select

from api.app import create_app
from ocpi_hub.bootstrap import billing_worker_process, mysql_engine
from ocpi_hub.settings import Settings
from producers import tokens
from producers.billing.aggregate import SLICE as BILLING_SLICE
from producers.log import KafkaLogHistory, ensure_topics
from projections.mysql.billing import BillingRowWriter, charges, corporations, members
from projections.mysql.migrate import migrate
from projections.runner import replay
from schemas.events import CdrReceived, Party, new_event_id
from schemas.events.billing import MemberInvited
from schemas.events.cdrs import CdrReceivedPayload, cdr_key
from schemas.events.tokens import token_key
from schemas.topics import BILLING_CORPORATIONS
from tests.conftest import fresh_namespace
from tests.ops_admin import as_admin
from tests.unit.test_billing import corporation_body as exact_body
from tests.unit.test_cdr_api import partner_cdr


def corporation_body(**changes: Any) -> Any:
    """The unit tests' corporation as JSON (amounts as decimal strings)."""
    return json.loads(json.dumps(exact_body(**changes), default=str))


class Inbox:
    """An aiosmtpd handler keeping every message it accepted."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 OK"

    async def wait(self, count: int, timeout_s: float = 30.0) -> None:
        for _ in range(int(timeout_s / 0.1)):
            if len(self.messages) >= count:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{len(self.messages)} message(s) received, {count} expected")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def smtp_server(handler: Inbox | None = None) -> Any:
    """A real aiosmtpd server on a free port; its handler and the port."""
    inbox = handler or Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@contextlib.asynccontextmanager
async def mailer_running(s: Settings) -> AsyncIterator[Any]:
    stop = asyncio.Event()
    async with billing_worker_process(s) as worker:
        task = asyncio.create_task(worker.run(stop))
        try:
            yield worker.mailer
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def _events(s: Settings) -> list[Any]:
    history = KafkaLogHistory(s.kafka_bootstrap, s.topic_prefix)
    return [event async for _, _, event in history.scan(BILLING_CORPORATIONS)]


async def _authorize(http: httpx.AsyncClient, uid: str, token_type: str) -> dict[str, Any]:
    answer = await http.post(
        "/ops/authorize",
        json={
            "uid": uid,
            "type": token_type,
            "location_id": "LOC1",
            "country_code": "ZZ",
            "party_id": "HUB",
        },
    )
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


async def _charge(app: Any, cid: str, key: str, *, reversed_: bool) -> Any:
    for _ in range(300):
        state = await app.state.write_path.state(BILLING_SLICE, cid)
        charged = state.charges.get(key)
        if charged is not None and (charged.reversed_by is not None) == reversed_:
            return charged
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {'reversed ' if reversed_ else ''}charge of {key}")


def _received(cdr: dict[str, Any]) -> CdrReceived:
    now = datetime.now(UTC)
    return CdrReceived(
        event_id=new_event_id(),
        aggregate_key=cdr_key("NL", "CPO", cdr["id"]),
        occurred_at=now,
        recorded_at=now,
        source=Party(country_code="NL", party_id="CPO"),
        correlation_id="test-cdr",
        payload=CdrReceivedPayload(country_code="NL", party_id="CPO", cdr_id=cdr["id"], cdr=cdr),
    )


def _rows(s: Settings) -> tuple[dict[Any, Any], dict[Any, Any]]:
    engine = mysql_engine(s)
    try:
        with engine.connect() as conn:
            corps = {r.corporation_id: dict(r._mapping) for r in conn.execute(select(corporations))}
            corps |= {r.cdr_key: dict(r._mapping) for r in conn.execute(select(charges))}
            people = {
                (r.corporation_id, r.member_id): dict(r._mapping)
                for r in conn.execute(select(members))
            }
        return corps, people
    finally:
        engine.dispose()


def test_a_member_invited_by_e_mail_activates_and_charges(services: Settings) -> None:
    with fresh_namespace(services) as namespace, smtp_server() as (inbox, port):
        s = namespace.settings.model_copy(
            update={
                "smtp_port": port,
                "secret_key": Fernet.generate_key().decode(),
                "public_url": "https://hub.example",
                "mail_retry_initial_s": 0.1,
            }
        )
        # Bounded: this story hung three times on a loaded machine (never
        # alone); a timeout's traceback shows the await it was stuck on.
        asyncio.run(asyncio.wait_for(_member_story(s, inbox), 300))


async def _member_story(s: Settings, inbox: Inbox) -> None:
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    app = as_admin(create_app(s))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://hub.example") as http:
            # An invalid VAT id: the field and the rule named, nothing recorded.
            bad = await http.post(
                "/ops/corporations", json=corporation_body(vat_id="NL004495446B01")
            )
            assert bad.json()["status_code"] == 2001, bad.text
            assert "vat_id" in bad.json()["status_message"]
            assert "checksum" in bad.json()["status_message"]
            # A negative price: the field named, nothing recorded either.
            negative = corporation_body()
            negative["contract"]["price_per_kwh"] = "-0.01"
            answer = (await http.post("/ops/corporations", json=negative)).json()
            assert answer["status_code"] == 2001 and "price_per_kwh" in answer["status_message"]
            assert await _events(s) == []
            # An unknown corporation: 404, nothing recorded.
            for method, path, body in (
                ("GET", "/ops/corporations/nosuchcorp00", None),
                ("POST", "/ops/corporations/nosuchcorp00/status", {"status": "SUSPENDED"}),
                (
                    "POST",
                    "/ops/corporations/nosuchcorp00/members",
                    {"name": "A", "email": "a@b.cc"},
                ),
            ):
                unknown = await http.request(method, path, json=body)
                assert unknown.status_code == 404, (path, unknown.text)
                assert "no corporation" in unknown.json()["status_message"]
            assert await _events(s) == []

            created = await http.post("/ops/corporations", json=corporation_body())
            assert created.status_code == 201, created.text
            corporation = created.json()["data"]
            cid = corporation["corporation_id"]
            assert corporation["contract"]["price_per_kwh"] == "0.3500"
            assert corporation["vat_id"] == "NL004495445B01"

            invited = await http.post(
                f"/ops/corporations/{cid}/members",
                json={"name": "Ada Lovelace", "email": "ada@acme.example", "cost_centre": "R&D"},
            )
            assert invited.status_code == 201, invited.text
            member = invited.json()["data"]
            mid = member["member_id"]
            assert member["status"] == "INVITED"

            async with mailer_running(s) as mailer:
                await inbox.wait(1)
                # Mailed is recorded after the server took it.
                for _ in range(100):
                    listed = (await http.get(f"/ops/corporations/{cid}/members")).json()["data"]
                    if listed[0]["mailed_invitation_id"] == member["invitation_id"]:
                        break
                    await asyncio.sleep(0.1)
                assert listed[0]["mailed_invitation_id"] == member["invitation_id"]
                # The same invitation handed to the mailer again: nothing sent.
                [invitation] = [e for e in await _events(s) if isinstance(e, MemberInvited)]
                assert await mailer.handle(invitation) == "done"
                await asyncio.sleep(0.5)
                assert len(inbox.messages) == 1

            message = inbox.messages[0]
            assert inbox.envelopes[0][1] == ["ada@acme.example"]
            assert message["To"] == "Ada Lovelace <ada@acme.example>"
            assert "Acme Fleet B.V." in message["Subject"]
            body = message.get_body(("plain",))
            assert body is not None
            [link] = re.findall(r"https://hub\.example/billing/activation/\S+", body.get_content())
            path = link.removeprefix("https://hub.example")
            assert path.startswith(f"/billing/activation/{cid}/{mid}/{member['invitation_id']}/")

            # The link shows a page with a button; only the button activates.
            page = await http.get(path)
            assert page.status_code == 200 and "<form method=post>" in page.text
            assert (await http.get(f"/ops/corporations/{cid}/members")).json()["data"][0][
                "status"
            ] == "INVITED"
            # A tampered link activates nothing.
            tampered = path[:-1] + ("0" if path[-1] != "0" else "1")
            assert (await http.post(tampered)).status_code == 404

            activated = await http.post(path)
            assert activated.status_code == 200, activated.text
            [uid] = re.findall(r"<code id=token-uid>([^<]+)</code>", activated.text)
            listed = (await http.get(f"/ops/corporations/{cid}/members")).json()["data"]
            assert listed[0]["status"] == "ACTIVE"
            assert listed[0]["token_uid"] == uid and listed[0]["token_type"] == "APP_USER"

            # The member's token is ours: our own rule authorizes it.
            decision = await _authorize(http, uid, "APP_USER")
            assert (decision["authorized"], decision["allowed"], decision["source"]) == (
                True,
                "ALLOWED",
                "own_token",
            )
            held = await app.state.write_path.state(
                tokens.SLICE, token_key("ZZ", "HUB", uid, "APP_USER")
            )
            assert held is not None and held.token is not None
            assert held.token["group_id"] == cid.upper()
            assert held.token["issuer"] == "Acme Fleet B.V."

            # A partner CPO's CDR of the member's token becomes a charge; its
            # Credit CDR reverses it (the billing worker, from ocpi.cdrs.v1).
            member_token = {
                "country_code": "ZZ",
                "party_id": "HUB",
                "uid": uid,
                "type": "APP_USER",
                "contract_id": "C",
            }
            cdr = partner_cdr(id="CDR-M1", cdr_token=member_token)
            credit = partner_cdr(
                id="CDR-M1-C", cdr_token=member_token, credit=True, credit_reference_id="CDR-M1"
            )
            await app.state.write_path.record([_received(cdr)])
            async with mailer_running(s):
                charged = await _charge(app, cid, "NL/CPO/CDR-M1", reversed_=False)
                assert charged.amount == Decimal("2.89") and charged.reversed_by is None
                # The credit after its CDR was charged (the other order, a
                # credit first, is a unit test: nothing is charged then).
                await app.state.write_path.record([_received(credit)])
                charged = await _charge(app, cid, "NL/CPO/CDR-M1", reversed_=True)
            assert charged.amount == Decimal("2.89")
            assert charged.reversed_by == "NL/CPO/CDR-M1-C"
            assert len(inbox.messages) == 1  # a second run mailed nothing

            # Following the link again: still one activation, same page.
            again = await http.post(path)
            assert again.status_code == 200 and uid in again.text

            # Suspended: the token stops; reinstated: it charges again.
            suspended = await http.post(
                f"/ops/corporations/{cid}/status", json={"status": "SUSPENDED", "reason": "unpaid"}
            )
            assert suspended.json()["data"]["status"] == "SUSPENDED", suspended.text
            decision = await _authorize(http, uid, "APP_USER")
            assert (decision["authorized"], decision["allowed"]) == (False, "BLOCKED")
            key = token_key("ZZ", "HUB", uid, "APP_USER")
            blocked = await app.state.write_path.state(tokens.SLICE, key)
            assert blocked.policy.state.value == "BLOCKED" and blocked.token["valid"] is False
            # The link followed again meanwhile does not make it valid again.
            assert (await http.post(path)).status_code == 200
            blocked = await app.state.write_path.state(tokens.SLICE, key)
            assert blocked.policy.state.value == "BLOCKED" and blocked.token["valid"] is False
            assert (await _authorize(http, uid, "APP_USER"))["authorized"] is False
            # A new member cannot be invited meanwhile.
            refused = await http.post(
                f"/ops/corporations/{cid}/members",
                json={"name": "Bob", "email": "bob@acme.example"},
            )
            assert refused.status_code == 409
            await http.post(f"/ops/corporations/{cid}/status", json={"status": "ACTIVE"})
            assert (await _authorize(http, uid, "APP_USER"))["authorized"] is True
            assert (await app.state.write_path.state(tokens.SLICE, key)).token["valid"] is True
            closed = await http.post(f"/ops/corporations/{cid}/status", json={"status": "CLOSED"})
            assert closed.json()["data"]["status"] == "CLOSED"
            assert (await _authorize(http, uid, "APP_USER"))["allowed"] == "BLOCKED"
            reopened = await http.post(f"/ops/corporations/{cid}/status", json={"status": "ACTIVE"})
            assert reopened.status_code == 409

    # Replay builds the MySQL rows; event by event and all at once agree.
    engine = mysql_engine(s)
    try:
        await asyncio.to_thread(migrate, engine)
        writer = BillingRowWriter(engine)
        topics = (BILLING_CORPORATIONS.name,)
        await replay(s.kafka_bootstrap, s.topic_prefix, [writer], batch_size=1, topics=topics)
        one_by_one = _rows(s)
        # Applying the same events again changes nothing (the offset guard).
        await replay(s.kafka_bootstrap, s.topic_prefix, [writer], batch_size=1, topics=topics)
        assert _rows(s) == one_by_one
        await asyncio.to_thread(writer.wipe)
        await replay(s.kafka_bootstrap, s.topic_prefix, [writer], batch_size=500, topics=topics)
        assert _rows(s) == one_by_one
    finally:
        engine.dispose()
    corps, people = one_by_one
    row = corps[cid]
    assert row["status"] == "CLOSED" and str(row["price_per_kwh"]) == "0.350000"
    assert row["vat_id"] == "NL004495445B01" and row["billing_city"] == "Amsterdam"
    person = people[(cid, mid)]
    assert person["status"] == "ACTIVE" and person["invitation_mailed"] is True
    assert (person["token_uid"], person["cost_centre"]) == (uid, "R&D")
    row = corps["NL/CPO/CDR-M1"]
    assert (row["member_id"], row["role"], row["amount"], row["reversal_amount"]) == (
        mid,
        "received",
        Decimal("2.890000"),
        Decimal("-2.890000"),
    )
    assert row["energy_kwh"] == Decimal("8.25") and row["cost_centre"] == "R&D"

    # The ops list reads those rows, filtered by status.
    app = as_admin(create_app(s))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://hub.example") as http:
            closed = (await http.get("/ops/corporations?status=CLOSED")).json()["data"]
            active = (await http.get("/ops/corporations?status=ACTIVE")).json()["data"]
            everyone = (await http.get("/ops/corporations")).json()["data"]
    assert [c["corporation_id"] for c in closed] == [cid] and active == []
    assert everyone == closed
    assert closed[0]["price_per_kwh"] == "0.350000" and closed[0]["vat_rate"] == "0.210000"
