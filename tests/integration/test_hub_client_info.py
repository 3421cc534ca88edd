"""Hub client info end to end on the real services (docs/adr/0044): a hub
partner reports a party through our API (the one write path, Kafka), the
projection folds it into the view, the pusher reads the view and keeps a
lane for the party while it is CONNECTED. While the hub reports it OFFLINE
a change is not sent; once CONNECTED again it arrives, once.

The locations events come from ``tests.integration.test_push`` (minimal on
purpose): only the hub client info view is run here.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from api.app import create_app
from ocpi_hub.bootstrap import async_mongo_client
from ocpi_hub.secrets import hash_token
from ocpi_hub.settings import Settings
from processors.push import ModulePusher
from producers.partners import PartnerState
from projections.mongo.hub_client_info import HubClientInfoQuery, HubClientInfoViewWriter
from projections.runner import run_live
from schemas.ocpi.common import format_ocpi_datetime
from schemas.ocpi.credentials import BusinessDetails, CredentialsRole, Role
from schemas.ocpi.versions import Endpoint, InterfaceRole
from tests.conftest import fresh_namespace
from tests.integration.test_push import (
    VAULT,
    Events,
    FakePartners,
    Receiver,
    append,
    base,
    ok,
    push_settings,
    serving,
    until,
)
from tests.integration.test_sent_commands import register_partner
from tests.ops_admin import as_admin
from tests.services import Namespace

HCI = "/ocpi/2.2.1/hubclientinfo"


@dataclass
class Hub:
    """The hub partner as our API knows it, and its client."""

    state: PartnerState
    api: TestClient
    token: str
    clock: datetime

    def report(self, cc: str, pid: str, status: str, role: str = "EMSP") -> Any:
        self.clock += timedelta(seconds=1)
        body = {
            "country_code": cc,
            "party_id": pid,
            "role": role,
            "status": status,
            "last_updated": format_ocpi_datetime(self.clock),
        }
        answer = self.api.put(f"{HCI}/{cc}/{pid}", json=body, headers=self.headers)
        assert answer.status_code == 200, answer.text  # a first report too
        assert answer.json()["status_code"] == 1000, answer.text
        return answer

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": "Token " + base64.b64encode(self.token.encode()).decode()}


def hub_partner(partner_id: str, token: str, receiver_url: str) -> PartnerState:
    return PartnerState(
        partner_id=partner_id,
        status="registered",
        endpoints=(
            Endpoint(identifier="locations", role=InterfaceRole.RECEIVER, url=receiver_url),
        ),
        roles=(
            CredentialsRole(
                role=Role.HUB,
                business_details=BusinessDetails(name="the hub"),
                country_code="NL",
                party_id="HBX",
            ),
        ),
        their_token_hash=hash_token(token),
        our_token_encrypted=VAULT.encrypt(f"ours-{token}"),
        registered_at=datetime.now(UTC),
    )


@pytest.fixture(scope="module")
def namespace(services: Settings) -> Iterator[Namespace]:
    with fresh_namespace(services) as ns:
        yield ns


@asynccontextmanager
async def projecting(settings: Settings) -> AsyncIterator[None]:
    """The hub client info view, kept live from the log."""
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongo_url)
    writer = HubClientInfoViewWriter(client[settings.mongo_db])
    writer.prepare()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_live(
            settings.kafka_bootstrap,
            settings.topic_prefix,
            [writer],
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


@asynccontextmanager
async def pushing(settings: Settings, partners: FakePartners) -> AsyncIterator[ModulePusher]:
    reads = async_mongo_client(settings)
    pusher = ModulePusher(
        settings, partners, VAULT, hub_reports=HubClientInfoQuery(reads[settings.mongo_db])
    )
    stop = asyncio.Event()
    task = asyncio.create_task(pusher.run(stop))
    try:
        yield pusher
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        await reads.close()


async def lane_ready(pusher: ModulePusher, lane: str) -> None:
    await until(
        lambda: lane in pusher.lanes and pusher.lanes[lane].ready.is_set(), 25, f"lane {lane}"
    )


async def test_a_party_the_hub_reports_offline_gets_its_changes_once_it_is_connected_again(
    namespace: Namespace,
) -> None:
    settings = push_settings(namespace).model_copy(update={"push_start_margin_s": 0.0})
    suffix = uuid.uuid4().hex[:6].upper()
    receiver = Receiver(ok)
    ours = Events(f"L-{suffix}")
    first, while_offline, after = ours.put(), ours.patch(), ours.put("E1")
    async with serving(receiver) as url:
        token = f"hub-{suffix}"
        hub_state = hub_partner(f"hub-{suffix}", token, url)
        await asyncio.to_thread(register_partner, settings, hub_state)
        with TestClient(as_admin(create_app(settings))) as api:
            hub = Hub(hub_state, api, token, datetime.now(UTC))
            partners = FakePartners([hub_state])
            lane = f"hub-{suffix}@DE-EMA"
            async with projecting(settings), pushing(settings, partners) as pusher:
                # Before any report: one lane to the hub itself.
                await lane_ready(pusher, f"hub-{suffix}")
                hub.report("DE", "EMA", "CONNECTED")
                await lane_ready(pusher, lane)
                assert f"hub-{suffix}" not in pusher.lanes
                await append(settings, [first])
                b = base(url, "ZZ", "HUB", ours.loc)
                await until(lambda: len(receiver.delivered(b)) == 1, 15, "the first change")

                hub.report("DE", "EMA", "OFFLINE")
                await until(lambda: lane not in pusher.lanes, 15, "the lane to pause")
                await append(settings, [while_offline])
                await asyncio.sleep(1.5)  # several refreshes and polls: nothing may go
                assert receiver.delivered(b) == [("PUT", b)]

                hub.report("DE", "EMA", "CONNECTED")
                await lane_ready(pusher, lane)
                await append(settings, [after])
                await until(lambda: len(receiver.delivered(b)) == 3, 15, "the held changes")
                await asyncio.sleep(0.5)  # nothing more should come

            # Our copy, as the hub reads it back (Receiver GET, Sender list).
            one = api.get(f"{HCI}/de/ema", headers=hub.headers)
            assert one.status_code == 200, one.text
            assert one.json()["data"]["status"] == "CONNECTED"
            listed = api.get(HCI, headers=hub.headers)
            assert [(o["party_id"], o["status"]) for o in listed.json()["data"]] == [
                ("EMA", "CONNECTED")
            ]
            assert listed.headers["X-Total-Count"] == "1"
            # And as operators see it.
            ops = api.get(f"/ops/partners/hub-{suffix}/client-info")
            assert ops.status_code == 200, ops.text
            [seen] = ops.json()["data"]
            assert (seen["country_code"], seen["party_id"], seen["status"]) == (
                "DE",
                "EMA",
                "CONNECTED",
            )
            assert seen["connected_since"] is not None

    assert receiver.delivered(b) == [("PUT", b), ("PATCH", b), ("PUT", f"{b}/E1")]
    assert len(receiver.requests) == 3  # no change sent twice, none sent while offline
    # Each change once, addressed through the hub to the party it reported.
    assert all(
        (r.headers["ocpi-to-country-code"], r.headers["ocpi-to-party-id"]) == ("DE", "EMA")
        for r in receiver.requests
    )
    assert len({r.headers["x-correlation-id"] for r in receiver.requests}) == 3


@pytest.fixture
def own_namespace(services: Settings) -> Iterator[Namespace]:
    with fresh_namespace(services) as ns:
        yield ns


async def test_a_230_hub_reports_reads_and_lists_at_the_230_route(
    own_namespace: Namespace,
) -> None:
    """A hub registered on OCPI 2.3.0 (it gave ``hub_party_id``, which our
    credentials hold as its HUB role) uses /ocpi/2.3.0/hubclientinfo: the
    PUT answers HTTP 200, its copy and its list come back from the view with
    its own field kept; its token on the 2.2.1 route is not its version.
    A namespace of its own: its partner is appended to the log only, which
    the API reads into a decision store that has not held partners yet."""
    await _a_230_hub(push_settings(own_namespace))


async def _a_230_hub(settings: Settings) -> None:
    suffix = uuid.uuid4().hex[:6].upper()
    token = f"hub230-{suffix}"
    state = hub_partner(f"hub230-{suffix}", token, "https://hub.example.com/ocpi/2.3.0/locations")
    state = state.model_copy(update={"version": "2.3.0"})
    await asyncio.to_thread(register_partner, settings, state)
    hci = "/ocpi/2.3.0/hubclientinfo"
    with TestClient(as_admin(create_app(settings))) as api:
        hub = Hub(state, api, token, datetime.now(UTC))
        body = {
            "country_code": "DE",
            "party_id": "EMB",
            "role": "EMSP",
            "status": "CONNECTED",
            "last_updated": format_ocpi_datetime(hub.clock),
            "x_region": "north",
        }
        async with projecting(settings):
            put = api.put(f"{hci}/DE/EMB", json=body, headers=hub.headers)
            assert (put.status_code, put.json()["status_code"]) == (200, 1000), put.text
            # The view folds it in this loop (``projecting``): wait, not block.
            # A fresh namespace: the consumer's first join and the topic's
            # first leader can take the projections 10-15 s on a busy broker.
            await until(
                lambda: api.get(f"{hci}/de/emb", headers=hub.headers).json()["status_code"] == 1000,
                40,
                "our copy in the view",
            )
            one = api.get(f"{hci}/de/emb", headers=hub.headers)
            assert one.status_code == 200, one.text
            assert one.json().get("data") == body, one.text
            listed = api.get(hci, headers=hub.headers)
            assert [o["party_id"] for o in listed.json()["data"]] == ["EMB"], listed.text
            # Two more parties, then the list a page of two at a time by its Link.
            for party in ("EMC", "EMD"):
                put = api.put(
                    f"{hci}/DE/{party}", json={**body, "party_id": party}, headers=hub.headers
                )
                assert (put.status_code, put.json()["status_code"]) == (200, 1000), put.text
            await until(
                lambda: api.get(hci, headers=hub.headers).headers.get("X-Total-Count") == "3",
                15,
                "three parties in the view",
            )
            first = api.get(hci, params={"limit": 2}, headers=hub.headers)
            assert first.headers["X-Total-Count"] == "3", first.headers
            assert len(first.json()["data"]) == 2, first.text
            second = api.get(first.links["next"]["url"], headers=hub.headers)
            assert second.status_code == 200, second.text
            assert "next" not in second.links, second.headers
            paged = [o["party_id"] for page in (first, second) for o in page.json()["data"]]
            assert sorted(paged) == ["EMB", "EMC", "EMD"], paged
            other = api.get(HCI, headers=hub.headers)
            assert other.json()["status_code"] == 2000, other.text
            assert "registered for OCPI 2.3.0" in other.text
