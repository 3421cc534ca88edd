"""OCPI 2.3.0 Payments, we as CPO, on the real services (docs/adr/0047):
a Payment Terminal Provider (a real HTTP server standing in for its Sender
interface) creates a terminal on our Receiver (the one write path, Kafka),
the projection folds it into the view, we assign our locations to it (the
PATCH reaches the PTP before anything is recorded), activate and deactivate
through the ops API, and the PTP posts a financial advice confirmation.
The CDR builder's read of the terminals view runs against MongoDB."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from fastapi.testclient import TestClient
from pymongo import MongoClient

from api.app import create_app
from ocpi_hub.bootstrap import Views, async_mongo_client, mongo_client, mysql_engine, vault, views
from ocpi_hub.compare import compare_views
from ocpi_hub.secrets import hash_token
from ocpi_hub.settings import Settings
from processors.cdr_builder import MongoCdrInputs
from producers.decision_store import RedisDecisionStore
from producers.log import KafkaEventLog, KafkaLogHistory, ensure_topics
from producers.partners import PartnerState
from producers.payments import (
    ADVICES,
    TERMINALS,
    assignment_of,
    decide_assigned,
    decide_post_advice,
    decide_post_terminal,
    evolve_terminal,
    invoice_reference_id,
)
from producers.pull_sync import PAYMENT_ADVICES_PULL, PAYMENT_TERMINALS_PULL, sync
from producers.write_path import Origin, WritePath
from projections.mongo.history import LocationHistoryQuery, TariffHistoryQuery
from projections.mongo.payments import (
    AdviceViewWriter,
    TerminalQuery,
    TerminalViewWriter,
)
from projections.position import Record
from projections.runner import run_live
from schemas.events import Party
from schemas.events.payments import advice_key, terminal_key
from schemas.ocpi.common import format_ocpi_datetime
from schemas.ocpi.credentials import CredentialsRole, Role
from schemas.ocpi.locations import BusinessDetails
from schemas.ocpi.versions import Endpoint, InterfaceRole
from schemas.topics import PAYMENTS
from tests.conftest import fresh_namespace
from tests.integration.test_pull_sessions_cdrs import Sender
from tests.integration.test_pull_sessions_cdrs import serving as serving_list
from tests.integration.test_push import Receiver, ok, push_settings, serving, until
from tests.integration.test_sent_commands import register_partner
from tests.ops_admin import as_admin
from tests.services import Namespace

PAY = "/ocpi/cpo/2.3.0/payments"
OPS = "/ops/payments"


def ptp_partner(
    settings: Settings, partner_id: str, token: str, sender_url: str, pid: str
) -> PartnerState:
    return PartnerState(
        partner_id=partner_id,
        status="registered",
        version="2.3.0",  # Payments is an OCPI 2.3.0 module
        endpoints=(Endpoint(identifier="payments", role=InterfaceRole.SENDER, url=sender_url),),
        roles=(
            CredentialsRole(
                role=Role.OTHER,
                business_details=BusinessDetails(name="Terminals GmbH"),
                country_code="DE",
                party_id=pid,
            ),
        ),
        their_token_hash=hash_token(token),
        # Sealed with the platform's key, as registration seals it.
        our_token_encrypted=vault(settings).encrypt(f"ours-{token}"),
        registered_at=datetime.now(UTC),
    )


def auth(token: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


@pytest.fixture
def namespace(services: Settings) -> Iterator[Namespace]:
    """One per test: partners recorded straight into the log are found only
    by a decision store that is rebuilt after them (docs/adr/0024)."""
    with fresh_namespace(services) as ns:
        yield ns


@asynccontextmanager
async def projecting(settings: Settings) -> AsyncIterator[None]:
    """The payments views, kept live from the log."""
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongo_url)
    writers = [
        TerminalViewWriter(client[settings.mongo_db]),
        AdviceViewWriter(client[settings.mongo_db]),
    ]
    for writer in writers:
        writer.prepare()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_live(
            settings.kafka_bootstrap,
            settings.topic_prefix,
            list(writers),
            batch_size=100,
            poll_ms=100,
            stop=stop,
        )
    )
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        client.close()


def ok_envelope(answer: Any, http: int = 200) -> Any:
    assert answer.status_code == http, answer.text
    assert answer.json()["status_code"] == 1000, answer.text
    return answer.json().get("data")


async def test_a_ptp_terminal_is_created_assigned_read_back_and_deactivated(
    namespace: Namespace,
) -> None:
    settings = push_settings(namespace)
    suffix = uuid.uuid4().hex[:6].upper()
    ptp_server = Receiver(ok)
    async with serving(ptp_server) as url:
        # The PTP's Payments Sender (its module URL; /terminals below it).
        sender = url.replace("/ocpi/emsp/2.2.1/locations", "/ocpi/ptp/2.3.0/payments")
        token, other_token = f"ptp-{suffix}", f"ptp2-{suffix}"
        ptp = ptp_partner(settings, f"ptp-{suffix}", token, sender, "PT1")
        other = ptp_partner(settings, f"ptp2-{suffix}", other_token, sender, "PT2")
        await asyncio.to_thread(register_partner, settings, ptp)
        await asyncio.to_thread(register_partner, settings, other)
        terminal_id = f"term-{suffix}".lower()
        stamp = format_ocpi_datetime(datetime.now(UTC).replace(microsecond=0))
        with TestClient(as_admin(create_app(settings))) as api:
            async with projecting(settings):
                body = {
                    "terminal_id": terminal_id,
                    "customer_reference": "ZZ-HUB",
                    "address": "Hauptstrasse 5",
                    "city": "Berlin",
                    "country": "DEU",
                    "invoice_base_url": "https://invoices.example.com/ad-hoc/",
                    "invoice_creator": "CPO",
                    "location_ids": [],
                    "last_updated": stamp,
                    "vendor_field": {"kept": True},
                }
                created = await asyncio.to_thread(
                    api.post, f"{PAY}/terminals", json=body, headers=auth(token)
                )
                ok_envelope(created)
                again = await asyncio.to_thread(
                    api.post, f"{PAY}/terminals", json=body, headers=auth(token)
                )
                ok_envelope(again, 200)
                held = ok_envelope(
                    await asyncio.to_thread(
                        api.get, f"{PAY}/terminals/{terminal_id.upper()}", headers=auth(token)
                    )
                )
                assert held["vendor_field"] == {"kept": True}
                assert held["location_ids"] == []
                # Another PTP does not see it.
                theirs = await asyncio.to_thread(
                    api.get, f"{PAY}/terminals/{terminal_id}", headers=auth(other_token)
                )
                assert theirs.status_code == 404, theirs.text
                assert theirs.json()["status_code"] == 2000

                # We assign a location and an EVSE: the PATCH goes to the PTP first.
                assignment = {"location_ids": [f"LOC-{suffix}"], "evse_uids": ["EVSE-1"]}
                path = f"{OPS}/terminals/{ptp.partner_id}/{terminal_id}/assignment"
                served = ok_envelope(await asyncio.to_thread(api.put, path, json=assignment))
                assert served["location_ids"] == [f"LOC-{suffix}"]
                assert served["evse_uids"] == ["EVSE-1"]
                [patch] = ptp_server.requests
                assert (patch.method, patch.path) == (
                    "PATCH",
                    f"/ocpi/ptp/2.3.0/payments/terminals/{terminal_id}",
                )
                assert patch.body["location_ids"] == [f"LOC-{suffix}"]
                assert patch.body["evse_uids"] == ["EVSE-1"]
                assert (
                    patch.headers["authorization"]
                    == "Token " + base64.b64encode(f"ours-{token}".encode()).decode()
                )
                # The PTP reads our assignment back.
                back = ok_envelope(
                    await asyncio.to_thread(
                        api.get, f"{PAY}/terminals/{terminal_id}", headers=auth(token)
                    )
                )
                assert back["location_ids"] == [f"LOC-{suffix}"]
                assert back["vendor_field"] == {"kept": True}

                # The CDR builder finds the terminal by the session's location.
                reads = async_mongo_client(settings)
                try:
                    db = reads[settings.mongo_db]
                    inputs = MongoCdrInputs(
                        LocationHistoryQuery(db),
                        TariffHistoryQuery(db),
                        terminals=TerminalQuery(db),
                    )
                    found = await inputs.terminals_serving(f"loc-{suffix}", "ELSEWHERE")
                    assert [t.terminal_id for t in found] == [terminal_id]
                    session = {
                        "location_id": f"LOC-{suffix}",
                        "evse_uid": "EVSE-7",
                        "authorization_reference": f"pay-{suffix}",
                        "cdr_token": {"country_code": "DE", "party_id": "PT1"},
                    }
                    assert invoice_reference_id(session, found) == f"pay-{suffix}"
                    assert await inputs.terminals_serving("NOWHERE", "NONE") == []
                finally:
                    await reads.close()

                # We PUT our changes: the whole terminal goes to the PTP first.
                one = f"{OPS}/terminals/{ptp.partner_id}/{terminal_id}"
                changes = {
                    "customer_reference": "OMV",
                    "invoice_base_url": "https://invoices.example.com/new/",
                }
                put = ok_envelope(await asyncio.to_thread(api.put, one, json=changes))
                assert put["customer_reference"] == "OMV"
                assert put["invoice_base_url"] == "https://invoices.example.com/new/"
                sent = ptp_server.requests[-1]
                assert (sent.method, sent.path) == (
                    "PUT",
                    f"/ocpi/ptp/2.3.0/payments/terminals/{terminal_id}",
                )
                assert sent.body == {**put, "last_updated": sent.body["last_updated"]}
                assert sent.body["location_ids"] == [f"LOC-{suffix}"]
                assert sent.body["vendor_field"] == {"kept": True}
                assert sent.body["city"] == "Berlin"
                # Invalid changes: 2001 naming the field, the PTP not asked.
                asked = len(ptp_server.requests)
                bad = await asyncio.to_thread(api.put, one, json={"invoice_creator": "NOBODY"})
                assert bad.json()["status_code"] == 2001 and "invoice_creator" in bad.text
                other_id = await asyncio.to_thread(api.put, one, json={"terminal_id": "t-other"})
                assert other_id.json()["status_code"] == 2001, other_id.text
                assert len(ptp_server.requests) == asked

                # A PTP that refuses: 502, nothing recorded.
                ptp_server.behaviour = refuse
                refused = await asyncio.to_thread(api.put, path, json={"location_ids": ["OTHER"]})
                assert refused.status_code == 502, refused.text
                assert refused.json()["status_code"] == 3001
                refused_put = await asyncio.to_thread(
                    api.put, one, json={"customer_reference": "REFUSED"}
                )
                assert refused_put.status_code == 502, refused_put.text
                assert refused_put.json()["status_code"] == 3001
                assert ptp_server.requests[-1].method == "PUT"
                still = ok_envelope(await asyncio.to_thread(api.get, one))
                assert still["object"]["location_ids"] == [f"LOC-{suffix}"]
                assert still["object"]["customer_reference"] == "OMV"
                ptp_server.behaviour = ok

                # Activation of an integrated terminal: POSTed to the PTP.
                activation = {"reference": f"SN-{suffix}", "location_ids": [f"LOC-{suffix}"]}
                activated = await asyncio.to_thread(
                    api.post, f"{OPS}/terminals/{ptp.partner_id}/activate", json=activation
                )
                assert ok_envelope(activated)["reference"] == f"SN-{suffix}"
                assert (ptp_server.requests[-1].method, ptp_server.requests[-1].path) == (
                    "POST",
                    "/ocpi/ptp/2.3.0/payments/terminals/activate",
                )
                assert ptp_server.requests[-1].body["reference"] == f"SN-{suffix}"
                no_reference = await asyncio.to_thread(
                    api.post, f"{OPS}/terminals/{ptp.partner_id}/activate", json={}
                )
                assert no_reference.json()["status_code"] == 2001

                # Deactivation: the PTP is told; no assignment afterwards.
                off = await asyncio.to_thread(
                    api.post, f"{OPS}/terminals/{ptp.partner_id}/{terminal_id}/deactivate"
                )
                assert ok_envelope(off)["changed"] is True
                assert ptp_server.requests[-1].path.endswith(f"/terminals/{terminal_id}/deactivate")
                late = await asyncio.to_thread(api.put, path, json=assignment)
                assert late.status_code == 409, late.text
                late_put = await asyncio.to_thread(api.put, one, json=changes)
                assert late_put.status_code == 409, late_put.text
                listing = f"{OPS}/terminals?ptp_partner_id={ptp.partner_id}"
                await until(
                    lambda: (
                        [
                            (t["terminal_id"], t["deactivated"])
                            for t in ok_envelope(api.get(listing))
                        ]
                        == [(terminal_id, True)]
                    ),
                    15,
                    "the view to show the terminal deactivated",
                )
                # A partner without a Payments Sender is no PTP to us.
                no_ptp = await asyncio.to_thread(
                    api.put, f"{OPS}/terminals/nobody-{suffix}/{terminal_id}/assignment", json={}
                )
                assert no_ptp.status_code == 404, no_ptp.text


async def refuse(n: int, path: str) -> tuple[int, int | None]:
    return 200, 2001


async def test_a_ptp_confirms_what_it_captured(namespace: Namespace) -> None:
    settings = push_settings(namespace)
    suffix = uuid.uuid4().hex[:6].upper()
    token = f"ptpf-{suffix}"
    ptp = ptp_partner(
        settings, f"ptpf-{suffix}", token, "http://127.0.0.1:9/ocpi/ptp/2.3.0/payments", "PT3"
    )
    await asyncio.to_thread(register_partner, settings, ptp)
    reference = f"pay-{suffix}"
    advice = {
        "id": f"fac-{suffix}",
        "authorization_reference": reference,
        # The module's examples write the Price in 2.2.1's shape.
        "total_costs": {"excl_vat": 10.00, "incl_vat": 11.90},
        "currency": "EUR",
        "eft_data": ["VISA", "PAN **** 4242", "EUR 11.90"],
        "capture_status_code": "SUCCESS",
        "capture_status_message": "captured",
        "last_updated": format_ocpi_datetime(datetime.now(UTC).replace(microsecond=0)),
    }
    with TestClient(as_admin(create_app(settings))) as api:
        async with projecting(settings):
            ok_envelope(
                await asyncio.to_thread(
                    api.post,
                    f"{PAY}/financial-advice-confirmations",
                    json=advice,
                    headers=auth(token),
                ),
            )
            held = ok_envelope(
                await asyncio.to_thread(
                    api.get,
                    f"{PAY}/financial-advice-confirmations/fac-{suffix}",
                    headers=auth(token),
                )
            )
            assert held["eft_data"] == advice["eft_data"]
            assert held["total_costs"] == {
                "before_taxes": 10.0,
                "taxes": [{"name": "VAT", "amount": 1.9}],
            }
            bad = await asyncio.to_thread(
                api.post,
                f"{PAY}/financial-advice-confirmations",
                json={**advice, "id": f"fac2-{suffix}", "eft_data": None},
                headers=auth(token),
            )
            assert bad.json()["status_code"] == 2001, bad.text
            gone = await asyncio.to_thread(
                api.get, f"{PAY}/financial-advice-confirmations/fac2-{suffix}", headers=auth(token)
            )
            assert gone.status_code == 404
            listed = ok_envelope(
                await asyncio.to_thread(
                    api.get,
                    f"{OPS}/financial-advice-confirmations?authorization_reference={reference.upper()}",
                )
            )
            assert [(a["advice_id"], a["capture_status_code"]) for a in listed] == [
                (f"fac-{suffix}", "SUCCESS")
            ]


@asynccontextmanager
async def payments_write_path(settings: Settings) -> AsyncIterator[WritePath]:
    await ensure_topics(settings.kafka_bootstrap, settings.topic_prefix, 1)
    log = KafkaEventLog(settings.kafka_bootstrap, settings.topic_prefix)
    await log.start()
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        path = WritePath(
            log,
            RedisDecisionStore(client, settings.topic_prefix),
            KafkaLogHistory(settings.kafka_bootstrap, settings.topic_prefix),
        )
        await path.ensure_ready([TERMINALS, ADVICES])
        yield path
    finally:
        await log.stop()
        await client.aclose()


async def test_a_ptps_terminals_and_advices_are_pulled_page_by_page_and_once(
    namespace: Namespace,
) -> None:
    """``ocpi-hub partners sync-payment-terminals`` / ``sync-payment-advices``
    (producers/pull_sync.py) from a real Sender paging with ``Link``: every
    terminal and confirmation recorded under the PTP, an invalid one named
    and skipped, a second pull recording nothing, a changed one recorded
    again; a partner not registered for 2.3.0 is not asked."""
    settings = namespace.settings
    suffix = uuid.uuid4().hex[:6].upper()
    ptp_id = f"ptp-pull-{suffix}"
    stamp = "2026-12-07T09:00:00Z"
    terminals = [
        {"terminal_id": f"t{i}-{suffix}", "city": "Berlin", "last_updated": stamp} for i in range(4)
    ]
    broken = {"terminal_id": f"bad-{suffix}", "invoice_creator": "NOBODY", "last_updated": stamp}
    no_id = {"city": "Nowhere", "last_updated": stamp}
    advice = {
        "id": f"fac-{suffix}",
        "authorization_reference": f"pay-{suffix}",
        "total_costs": {"before_taxes": 10.00, "taxes": [{"name": "VAT", "amount": 1.90}]},
        "currency": "EUR",
        "eft_data": ["VISA", "PAN **** 4242"],
        "capture_status_code": "SUCCESS",
        "last_updated": stamp,
    }
    failed = {**advice, "id": f"fac2-{suffix}", "capture_status_code": "FAILED"}
    del failed["eft_data"]
    no_eft = {**advice, "id": f"fac3-{suffix}"}
    del no_eft["eft_data"]  # required unless FAILED

    async def pull(module: Any, sender: Sender, ptp: PartnerState) -> Any:
        return await sync(
            module,
            ptp,
            "token-c",
            path,
            us=Party(country_code="ZZ", party_id="HUB"),
            clock=lambda: datetime(2026, 12, 7, 10, tzinfo=UTC),
            since=datetime(2026, 12, 1, tzinfo=UTC) if module is PAYMENT_ADVICES_PULL else None,
            allow_private_urls=True,  # the PTP here listens on loopback
        )

    term_sender = Sender("payments/terminals", [[terminals[0], broken], [*terminals[1:], no_id]])
    advice_sender = Sender("payments/financial-advice-confirmations", [[advice], [failed, no_eft]])
    async with (
        payments_write_path(settings) as path,
        serving_list(term_sender) as term_url,
        serving_list(advice_sender) as advice_url,
    ):
        ptp = ptp_partner(
            settings, ptp_id, f"tok-{suffix}", term_url.removesuffix("/terminals"), "PT9"
        )
        first = await pull(PAYMENT_TERMINALS_PULL, term_sender, ptp)
        assert (first.pages, first.recorded, first.unchanged) == (2, 4, 0)
        assert len(first.skipped) == 2
        assert any(f"bad-{suffix}" in r and "invoice_creator" in r for r in first.skipped)
        assert any("invalid terminal_id" in r for r in first.skipped)
        assert set(term_sender.paths) == {"/ocpi/cpo/2.2.1/payments/terminals"}
        held = await path.state(TERMINALS, terminal_key(ptp_id, terminals[2]["terminal_id"]))
        assert held is not None and held.object["city"] == "Berlin"
        assert held.ptp_parties == (Party(country_code="DE", party_id="PT9"),)
        assert await path.state(TERMINALS, terminal_key(ptp_id, f"bad-{suffix}")) is None

        second = await pull(PAYMENT_TERMINALS_PULL, term_sender, ptp)
        assert (second.recorded, second.unchanged) == (0, 4)
        term_sender.pages[1][0] = {
            **terminals[1],
            "city": "Potsdam",
            "last_updated": "2026-12-07T09:30:00Z",
        }
        third = await pull(PAYMENT_TERMINALS_PULL, term_sender, ptp)
        assert (third.recorded, third.unchanged) == (1, 3)
        moved = await path.state(TERMINALS, terminal_key(ptp_id, terminals[1]["terminal_id"]))
        assert moved is not None and moved.object["city"] == "Potsdam"

        # The advices, asked for from a date; the date goes with the first page.
        ptp = ptp_partner(
            settings,
            ptp_id,
            f"tok-{suffix}",
            advice_url.removesuffix("/financial-advice-confirmations"),
            "PT9",
        )
        pulled = await pull(PAYMENT_ADVICES_PULL, advice_sender, ptp)
        assert (pulled.recorded, pulled.unchanged) == (2, 0)
        assert [r.split(":")[0] for r in pulled.skipped] == [f"{ptp_id}/fac3-{suffix}"]
        assert advice_sender.queries[0]["date_from"] == ["2026-12-01T00:00:00Z"]
        again = await pull(PAYMENT_ADVICES_PULL, advice_sender, ptp)
        assert (again.recorded, again.unchanged) == (0, 2)
        confirmed = await path.state(ADVICES, advice_key(ptp_id, f"fac-{suffix}"))
        assert confirmed is not None and confirmed.authorization_reference == f"pay-{suffix}"

        # Payments is 2.3.0's: a partner registered for 2.2.1 is not asked.
        asked = len(advice_sender.queries)
        with pytest.raises(LookupError, match=r"OCPI 2\.3\.0 module"):
            await pull(
                PAYMENT_ADVICES_PULL, advice_sender, ptp.model_copy(update={"version": "2.2.1"})
            )
        assert len(advice_sender.queries) == asked


def test_the_payments_views_replayed_in_other_batches_compare_equal(
    namespace: Namespace, services: Settings
) -> None:
    """``ocpi-hub replay --compare`` covers both payments views: the same
    events applied live one by one and replayed in one batch give the same
    documents; an empty side shows each of them missing."""
    settings = namespace.settings
    when = datetime(2026, 12, 7, 9, tzinfo=UTC)
    origin = Origin(Party(country_code="DE", party_id="PT1"), "compare")
    ptp = ptp_partner(settings, "ptp-cmp", "tok-cmp", "http://127.0.0.1:9/payments", "PT1")
    posted = decide_post_terminal(
        None, ptp=ptp, body={"terminal_id": "t-cmp"}, now=when, origin=origin
    ).events
    state = evolve_terminal(None, posted[0])
    assigned = decide_assigned(
        state,
        terminal_id="t-cmp",
        assignment=assignment_of({"location_ids": ["LOC-CMP"]}),
        ptp_status_code=1000,
        now=when,
        origin=origin,
    ).events
    advice = {
        "id": "fac-cmp",
        "authorization_reference": "ref-cmp",
        "total_costs": {"before_taxes": 1},
        "currency": "EUR",
        "capture_status_code": "FAILED",
        "last_updated": "2026-12-07T09:00:00Z",
    }
    advised = decide_post_advice(None, ptp=ptp, body=advice, now=when, origin=origin).events
    records = [
        Record(PAYMENTS.name, 0, offset, event)
        for offset, event in enumerate([*posted, *assigned, *advised])
    ]
    client = mongo_client(settings)
    engine = mysql_engine(settings)
    replay_db = f"{namespace.name}_pay_rp"
    try:
        live = views(client, namespace.name, engine)
        live.prepare()
        for record in records:
            for writer in live.writers:
                writer.apply([record])
        replayed = views(client, replay_db, engine)
        for writer in replayed.writers:
            if writer.name.startswith("mongo."):
                writer.prepare()
                writer.apply(records)
        assert compare_views(live, replayed) == []
        empty = Views(mongo=client[f"{namespace.name}_pay_empty"], mysql=engine)
        missing = [d for d in compare_views(live, empty) if "payment" in d]
        assert missing == [
            "mongo.payment_terminals:ptp-cmp/terminal/T-CMP",
            "mongo.payment_advices:ptp-cmp/advice/FAC-CMP",
        ]
    finally:
        client.drop_database(replay_db)
        client.close()
        engine.dispose()
