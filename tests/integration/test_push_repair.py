"""A PATCH the partner refuses as unknown is followed by a PUT of the whole
object (docs/adr/0042), on the real services: our changes go through the
real Kafka topics, the whole object is read from the real MongoDB views
(folded here, from the records at their real offsets, a little after the
lane needs them, as lagging projections would), and the partners are real
HTTP servers on loopback that keep what they are sent.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
import uvicorn
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database

from ocpi_hub.settings import Settings
from processors.push import LOCATIONS_PUSH, ModulePusher, PushModule, WholeObjects
from processors.session_push import SESSIONS_PUSH
from producers.log import KafkaEventLog, Position, ensure_topics
from projections.mongo.folding import Doc
from projections.mongo.locations import LocationViewQuery, LocationViewWriter
from projections.mongo.sessions import SessionViewQuery, SessionViewWriter
from projections.position import Record
from schemas.events import (
    EventMeta,
    LocationObjectPatched,
    LocationObjectPut,
    Party,
    SessionPatched,
    SessionPut,
)
from schemas.events.locations import (
    LocationObjectPatchedPayload,
    LocationObjectPutPayload,
    location_key,
)
from schemas.events.sessions import SessionPatchedPayload, SessionPutPayload, session_key
from schemas.ocpi.common import format_ocpi_datetime
from schemas.ocpi.credentials import CredentialsRole, Role
from schemas.ocpi.locations import BusinessDetails
from schemas.ocpi.versions import Endpoint, InterfaceRole
from tests.conftest import fresh_namespace
from tests.integration.test_push import VAULT, FakePartners, lanes_ready, push_settings, until
from tests.ocpi_objects import location
from tests.ocpi_sessions import session
from tests.services import Namespace

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
US = Party(country_code="ZZ", party_id="HUB")


@dataclass
class Partner:
    """An eMSP's receiver that keeps what it is PUT and PATCHes what it
    holds; a PATCH of anything else is 2003. ``forget()`` drops everything
    (a partner that lost its data); ``refuse_puts``: every PUT is 2001."""

    refuse_puts: bool = False
    held: dict[str, Any] = field(default_factory=dict)
    seen: list[tuple[str, str]] = field(default_factory=list)

    def forget(self) -> None:
        self.held.clear()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        method, path = scope["method"], scope["raw_path"].decode()
        body = json.loads(b"".join(chunks) or b"null")
        self.seen.append((method, path))
        if method == "PUT" and not self.refuse_puts:
            self.held[path] = body
            code = 1000
        elif method == "PATCH" and path in self.held:
            merged = {**self.held[path], **body}
            if "charging_periods" in body:  # a session's PATCH appends periods
                merged["charging_periods"] = [
                    *self.held[path].get("charging_periods", []),
                    *body["charging_periods"],
                ]
            self.held[path] = merged
            code = 1000
        else:
            code = 2001 if method == "PUT" else 2003
        answer = json.dumps({"status_code": code, "timestamp": "2026-06-01T12:00:00Z"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer})


@asynccontextmanager
async def serving(partner: Partner, module: str) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(partner, lifespan="off", log_level="warning", timeout_graceful_shutdown=1)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await until(lambda: server.started, 10, "the partner to listen")
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/ocpi/emsp/2.2.1/{module}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def emsp(partner_id: str, module: str, url: str, party_id: str, country_code: str = "NL") -> Any:
    from producers.partners import PartnerState

    return PartnerState(
        partner_id=partner_id,
        status="registered",
        endpoints=(Endpoint(identifier=module, role=InterfaceRole.RECEIVER, url=url),),
        roles=(
            CredentialsRole(
                role=Role.EMSP,
                business_details=BusinessDetails(name=partner_id),
                party_id=party_id,
                country_code=country_code,
            ),
        ),
        our_token_encrypted=VAULT.encrypt(f"tok-{partner_id}"),
        registered_at=None,  # the lane starts at the end of the log
    )


@pytest.fixture(scope="module")
def namespace(services: Settings) -> Iterator[Namespace]:
    with fresh_namespace(services) as ns:
        yield ns


@pytest.fixture(scope="module")
def view_db(namespace: Namespace) -> Iterator[Database[Doc]]:
    with MongoClient(namespace.settings.mongo_url) as client:
        db: Database[Doc] = client[namespace.settings.mongo_db]
        LocationViewWriter(db).prepare()
        SessionViewWriter(db).prepare()
        yield db
        client.drop_database(db.name)


def settings_of(namespace: Namespace) -> Settings:
    return push_settings(namespace).model_copy(update={"push_repair_view_wait_s": 20.0})


@asynccontextmanager
async def pushing(
    settings: Settings, partners: FakePartners, module: PushModule
) -> AsyncIterator[ModulePusher]:
    await ensure_topics(settings.kafka_bootstrap, settings.topic_prefix, 1)
    client: AsyncMongoClient[Doc] = AsyncMongoClient(settings.mongo_url)
    db = client[settings.mongo_db]
    wholes = WholeObjects({"locations": LocationViewQuery(db), "sessions": SessionViewQuery(db)})
    pusher = ModulePusher(settings, partners, VAULT, module, wholes=wholes)
    stop = asyncio.Event()
    task = asyncio.create_task(pusher.run(stop))
    try:
        yield pusher
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        await client.close()


async def append(settings: Settings, events: Sequence[EventMeta]) -> list[Position]:
    log = KafkaEventLog(settings.kafka_bootstrap, settings.topic_prefix)
    await log.start()
    try:
        return await log.append(events)
    finally:
        await log.stop()


def fold_into_view(
    writer: LocationViewWriter | SessionViewWriter,
    events: Sequence[EventMeta],
    positions: Sequence[Position],
) -> None:
    """What the projections would write: each event at its real position."""
    writer.apply(
        [Record(p.topic, p.partition, p.offset, e) for e, p in zip(events, positions, strict=True)]
    )


def meta(key: str, at: datetime) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4(),
        "aggregate_key": key,
        "occurred_at": at,
        "recorded_at": at,
        "source": US,
        "correlation_id": f"corr-{uuid.uuid4().hex[:8]}",
    }


def location_put(loc: str, at: datetime) -> LocationObjectPut:
    stamp = format_ocpi_datetime(at)
    body = location(loc, country_code="ZZ", party_id="HUB", at=stamp)
    return LocationObjectPut(
        **meta(location_key("ZZ", "HUB", loc), at),
        payload=LocationObjectPutPayload(
            country_code="ZZ", party_id="HUB", location_id=loc, object=body, last_updated=at
        ),
    )


def evse_patch(loc: str, at: datetime, **fields: Any) -> LocationObjectPatched:
    body = {**fields, "last_updated": format_ocpi_datetime(at)}
    return LocationObjectPatched(
        **meta(location_key("ZZ", "HUB", loc), at),
        payload=LocationObjectPatchedPayload(
            country_code="ZZ",
            party_id="HUB",
            location_id=loc,
            evse_uid="EVSE1",
            patch=body,
            last_updated=at,
        ),
    )


async def test_a_partner_that_forgot_a_location_gets_the_whole_evse_and_one_that_refuses_both_is_left(  # noqa: E501
    namespace: Namespace, view_db: Database[Doc]
) -> None:
    settings = settings_of(namespace)
    suffix = uuid.uuid4().hex[:6].upper()
    loc = f"L-{suffix}"
    forgetful, stubborn = Partner(), Partner(refuse_puts=True)
    writer = LocationViewWriter(view_db)
    evse_path = f"/ZZ/HUB/{loc}/EVSE1"
    with structlog.testing.capture_logs() as logs:
        async with (
            serving(forgetful, "locations") as forgetful_url,
            serving(stubborn, "locations") as stubborn_url,
        ):
            partners = FakePartners(
                [
                    emsp(f"NL-F{suffix}", "locations", forgetful_url, "FGT"),
                    emsp(f"NL-S{suffix}", "locations", stubborn_url, "STB"),
                ]
            )
            async with pushing(settings, partners, LOCATIONS_PUSH) as pusher:
                await lanes_ready(pusher, f"NL-F{suffix}", f"NL-S{suffix}")
                first = [location_put(loc, T0)]
                fold_into_view(writer, first, await append(settings, first))
                location_url = forgetful_url.split("2.2.1", 1)[0] + "2.2.1/locations"
                whole_path = location_url.split("127.0.0.1", 1)[1].split("/", 1)[1]
                await until(
                    lambda: len(forgetful.held) == 1, 10, "the forgetful partner to hold the PUT"
                )
                forgetful.forget()  # it lost the location
                change = [evse_patch(loc, T0 + timedelta(minutes=1), floor_level="-1")]
                positions = await append(settings, change)
                # The projections are a little behind: the lane waits for them.
                await asyncio.sleep(0.5)
                fold_into_view(writer, change, positions)
                await until(
                    lambda: any(p.endswith(evse_path) for p in forgetful.held),
                    15,
                    "the repair PUT to reach the forgetful partner",
                )
                await until(
                    lambda: any(e["event"] == "push_repair_rejected" for e in logs),
                    15,
                    "the stubborn partner to refuse the PUT as well",
                )
                # The partner holds the PUT before its answer reaches the lane,
                # which counts the repair then (a CI run read the tally in
                # between, under load).
                await until(
                    lambda: pusher.lanes[f"NL-F{suffix}"].tally.repaired > 0,
                    15,
                    "the forgetful partner's lane to count its repair",
                )
                forgetful_tally = pusher.lanes[f"NL-F{suffix}"].tally
                stubborn_tally = pusher.lanes[f"NL-S{suffix}"].tally

    served, _ = await LocationViewQuery(
        AsyncMongoClient[Doc](settings.mongo_url)[settings.mongo_db]
    ).read(location_key("ZZ", "HUB", loc))
    assert served is not None
    evse_held = forgetful.held[f"/{whole_path}{evse_path}"]
    # The whole EVSE as we serve it, with the PATCH's change in it.
    assert evse_held == served["evses"][0]
    assert evse_held["floor_level"] == "-1" and evse_held["connectors"]
    assert [m for m, p in forgetful.seen if p.endswith(evse_path)] == ["PATCH", "PUT"]
    assert forgetful_tally.repaired == 1 and forgetful_tally.failures == 0
    # The stubborn partner got the PUT of the location, the PATCH, one PUT
    # (refused) and nothing more: no loop.
    assert [m for m, p in stubborn.seen if p.endswith(evse_path)] == ["PATCH", "PUT"]
    assert stubborn.held == {}
    assert stubborn_tally.repaired == 0 and stubborn_tally.failures == 2  # first PUT, repair PUT


async def test_an_emsp_that_never_got_a_sessions_put_gets_it_whole_and_no_period_twice(
    namespace: Namespace, view_db: Database[Doc]
) -> None:
    settings = settings_of(namespace)
    suffix = uuid.uuid4().hex[:6].upper()
    sid = f"S-{suffix}"
    key = session_key("ZZ", "HUB", sid)
    partner = Partner()
    writer = SessionViewWriter(view_db)
    whole = session(sid, country_code="ZZ", party_id="HUB", at=format_ocpi_datetime(T0))
    stamp = T0 + timedelta(minutes=15)
    period = {
        "start_date_time": format_ocpi_datetime(T0),
        "dimensions": [{"type": "ENERGY", "volume": 1.5}],
    }
    second = T0 + timedelta(minutes=30)
    period2 = {
        "start_date_time": format_ocpi_datetime(stamp),
        "dimensions": [{"type": "ENERGY", "volume": 2.0}],
    }
    put = SessionPut(
        **meta(key, T0),
        payload=SessionPutPayload(
            country_code="ZZ", party_id="HUB", session_id=sid, session=whole, last_updated=T0
        ),
    )

    def patched(at: datetime, p: dict[str, Any], kwh: float) -> SessionPatched:
        body = {
            "kwh": kwh,
            "charging_periods": [p],
            "cdr_token": whole["cdr_token"],
            "last_updated": format_ocpi_datetime(at),
        }
        return SessionPatched(
            **meta(key, at),
            payload=SessionPatchedPayload(
                country_code="ZZ", party_id="HUB", session_id=sid, patch=body, last_updated=at
            ),
        )

    first_patch, second_patch = patched(stamp, period, 1.5), patched(second, period2, 3.5)
    # The session began before the partner's lane: its PUT never reached it.
    early = [put]
    fold_into_view(writer, early, await append(settings, early))
    async with serving(partner, "sessions") as url:
        partners = FakePartners([emsp(f"NL-P{suffix}", "sessions", url, "MSP", "DE")])
        async with pushing(settings, partners, SESSIONS_PUSH) as pusher:
            await lanes_ready(pusher, f"NL-P{suffix}")
            # Both PATCHes are in the view before the lane reads it: the
            # repair PUT carries both periods, and the second PATCH, which
            # the PUT already carried, is not sent (it would append again).
            later = [first_patch, second_patch]
            fold_into_view(writer, later, await append(settings, later))
            await until(lambda: len(partner.held) == 1, 15, "the repair PUT of the session")
            await asyncio.sleep(1.0)  # time for a wrongly re-sent PATCH to arrive
            tally = pusher.lanes[f"NL-P{suffix}"].tally

    [(path, held)] = partner.held.items()
    assert path.endswith(f"/ZZ/HUB/{sid}")
    assert [m for m, _ in partner.seen] == ["PATCH", "PUT"]
    assert held["kwh"] == 3.5
    assert [p["start_date_time"] for p in held["charging_periods"]] == [
        format_ocpi_datetime(T0),
        format_ocpi_datetime(stamp),
    ]
    assert tally.repaired == 1 and tally.delivered == 1
