"""Pushing our locations to partners: real Kafka, real HTTP receivers.

The partner list comes from a fake of the partners query (the MongoDB view is
not the subject here); the events go through the real ``ocpi.locations.v1``
topic and the pushes through real HTTP to small receivers served by uvicorn
on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
import uvicorn
from cryptography.fernet import Fernet

from ocpi_hub.secrets import TokenVault
from ocpi_hub.settings import Settings
from processors.push import ModulePusher
from producers.log import KafkaEventLog, ensure_topics
from producers.partners import PartnerState
from schemas.events import (
    EventMeta,
    EvseStatusReported,
    LocationObjectPatched,
    LocationObjectPut,
    Party,
)
from schemas.events.locations import (
    EvseStatusReportedPayload,
    LocationObjectPatchedPayload,
    LocationObjectPutPayload,
    location_key,
)
from schemas.ocpi.credentials import CredentialsRole, Role
from schemas.ocpi.locations import BusinessDetails, EvseStatus
from schemas.ocpi.versions import Endpoint, InterfaceRole
from tests.conftest import fresh_namespace
from tests.services import Namespace

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
VAULT = TokenVault(Fernet.generate_key())

# --- small real HTTP receivers -----------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    answered: int  # HTTP status we answered (0: never answered)
    ocpi: int | None


Behaviour = Callable[[int, str], Awaitable[tuple[int, int | None]]]


@dataclass
class Receiver:
    """An eMSP's Locations Receiver: records every request, answers as told."""

    behaviour: Behaviour
    hang: bool = False  # hold every request until the receiver shuts down
    requests: list[Received] = field(default_factory=list)
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        record = Received(
            method=scope["method"],
            path=scope["raw_path"].decode(),
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=json.loads(b"".join(chunks) or b"null"),
            answered=0,
            ocpi=None,
        )
        self.requests.append(record)
        if self.hang:
            await self.closing.wait()
            status, ocpi = 503, None
        else:
            status, ocpi = await self.behaviour(len(self.requests), record.path)
        record.answered, record.ocpi = status, ocpi
        body = json.dumps(
            {"status_code": ocpi, "timestamp": "2026-06-01T12:00:00Z"} if ocpi else {}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def delivered(self, prefix: str) -> list[tuple[str, str]]:
        """(method, path) of the requests under ``prefix`` that were accepted."""
        return [
            (r.method, r.path)
            for r in self.requests
            if r.path.startswith(prefix) and r.answered == 200 and r.ocpi == 1000
        ]


@asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(receiver, lifespan="off", log_level="warning", timeout_graceful_shutdown=1)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await until(lambda: server.started, 10, "the receiver to listen")
    try:
        yield f"http://127.0.0.1:{port}/ocpi/emsp/2.2.1/locations"
    finally:
        receiver.closing.set()
        server.should_exit = True
        await task
        sock.close()


async def ok(n: int, path: str) -> tuple[int, int | None]:
    return 200, 1000


# --- the platform side ----------------------------------------------------------


class FakePartners:
    """The partners query, as the pusher uses it."""

    def __init__(self, partners: Sequence[PartnerState] = ()) -> None:
        self.partners = list(partners)

    async def all(self) -> list[PartnerState]:
        return list(self.partners)


def partner(
    partner_id: str, url: str, token: str, registered_at: datetime | None = None
) -> PartnerState:
    return PartnerState(
        partner_id=partner_id,
        status="registered",
        endpoints=(Endpoint(identifier="locations", role=InterfaceRole.RECEIVER, url=url),),
        roles=(
            CredentialsRole(
                role=Role.EMSP,
                business_details=BusinessDetails(name=partner_id),
                party_id=partner_id[-3:],
                country_code="NL",
            ),
        ),
        our_token_encrypted=VAULT.encrypt(token),
        registered_at=registered_at,
    )


@pytest.fixture(scope="module")
def namespace(services: Settings) -> Iterator[Namespace]:
    """A namespace of this module's own. Its events are minimal on purpose
    (bare objects, Python timestamps): fine for the push lanes, not for the
    views, so no platform process of another tier may ever fold them."""
    with fresh_namespace(services) as ns:
        yield ns


def push_settings(namespace: Namespace) -> Settings:
    return namespace.settings.model_copy(
        update={
            "party_country_code": "ZZ",
            "party_id": "HUB",
            "push_refresh_s": 0.2,
            "push_retry_initial_s": 0.05,
            "push_retry_max_s": 0.4,
            "push_poll_ms": 100,
            "outbound_timeout_s": 2.0,
        }
    )


@asynccontextmanager
async def pushing(settings: Settings, partners: FakePartners) -> AsyncIterator[ModulePusher]:
    await ensure_topics(settings.kafka_bootstrap, settings.topic_prefix, 1)
    pusher = ModulePusher(settings, partners, VAULT)
    stop = asyncio.Event()
    task = asyncio.create_task(pusher.run(stop))
    try:
        yield pusher
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def until(condition: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def lanes_ready(pusher: ModulePusher, *partner_ids: str) -> None:
    await until(
        lambda: all(p in pusher.lanes and pusher.lanes[p].ready.is_set() for p in partner_ids),
        25,
        f"lanes {partner_ids} to be assigned",
    )


async def append(settings: Settings, events: Sequence[EventMeta]) -> None:
    log = KafkaEventLog(settings.kafka_bootstrap, settings.topic_prefix)
    await log.start()
    try:
        await log.append(events)
    finally:
        await log.stop()


class Events:
    """Builds changes of one location, each a second later than the last."""

    def __init__(self, location_id: str, cc: str = "ZZ", pid: str = "HUB") -> None:
        self.cc, self.pid, self.loc = cc, pid, location_id
        self.at = T0

    def _meta(self) -> dict[str, Any]:
        self.at += timedelta(seconds=1)
        return {
            "event_id": uuid.uuid4(),
            "aggregate_key": location_key(self.cc, self.pid, self.loc),
            "occurred_at": self.at,
            "recorded_at": self.at,
            "source": Party(country_code=self.cc, party_id=self.pid),
            "correlation_id": f"corr-{uuid.uuid4().hex[:8]}",
        }

    def _ids(self, evse: str | None, connector: str | None) -> dict[str, Any]:
        return {
            "country_code": self.cc,
            "party_id": self.pid,
            "location_id": self.loc,
            "evse_uid": evse,
            "connector_id": connector,
        }

    def put(self, evse: str | None = None, connector: str | None = None) -> LocationObjectPut:
        meta = self._meta()
        obj = {"id": connector or evse or self.loc, "last_updated": self.at.isoformat()}
        return LocationObjectPut(
            **meta,
            payload=LocationObjectPutPayload(
                **self._ids(evse, connector), object=obj, last_updated=self.at
            ),
        )

    def patch(self, evse: str | None = None, connector: str | None = None) -> LocationObjectPatched:
        meta = self._meta()
        body = {"name": None, "last_updated": self.at.isoformat()}
        return LocationObjectPatched(
            **meta,
            payload=LocationObjectPatchedPayload(
                **self._ids(evse, connector), patch=body, last_updated=self.at
            ),
        )

    def status(self, evse: str) -> EvseStatusReported:
        meta = self._meta()
        return EvseStatusReported(
            **meta,
            payload=EvseStatusReportedPayload(
                country_code=self.cc,
                party_id=self.pid,
                location_id=self.loc,
                evse_uid=evse,
                status=EvseStatus.CHARGING,
                last_updated=self.at,
            ),
        )


def base(receiver_url: str, *ids: str) -> str:
    path = receiver_url.split("127.0.0.1", 1)[1].split("/", 1)[1]
    return "/" + path + "".join("/" + i for i in ids)


# --- the tests --------------------------------------------------------------------


async def test_our_changes_reach_each_partner_in_order_and_a_hung_partner_delays_no_one(
    namespace: Namespace,
) -> None:
    settings = push_settings(namespace)
    suffix = uuid.uuid4().hex[:6].upper()
    fast, hung = Receiver(ok), Receiver(ok, hang=True)
    token_fast, token_hung = f"tok-fast-{suffix}", f"tok-hung-{suffix}"
    loc1, loc2 = f"L1-{suffix}", f"L2-{suffix}"
    ours, other, ours2 = Events(loc1), Events(loc1, "NL", "ABC"), Events(loc2)
    changes = [
        ours.put(),
        other.put(),  # a partner's location with the same id: never pushed
        ours.patch("E1"),
        ours2.put(),
        ours.put("E1", "1"),
        ours.status("E1"),  # a bare status: the EVSE status lane's, not this lane's
        other.status("E1"),
        ours.patch(),
        ours2.patch("E9", "2"),
    ]
    with structlog.testing.capture_logs() as logs:
        async with serving(fast) as fast_url, serving(hung) as hung_url:
            partners = FakePartners(
                [
                    partner(f"NL-F{suffix}", fast_url, token_fast),
                    partner(f"NL-H{suffix}", hung_url, token_hung),
                ]
            )
            async with pushing(settings, partners) as pusher:
                await lanes_ready(pusher, f"NL-F{suffix}", f"NL-H{suffix}")
                started = time.monotonic()
                await append(settings, changes)
                await until(
                    lambda: len(fast.delivered(base(fast_url, "ZZ", "HUB"))) == 6,
                    10,
                    "the fast partner to get every change",
                )
                fast_took = time.monotonic() - started
                await until(
                    lambda: any(e["event"] == "push_retry" for e in logs),
                    settings.outbound_timeout_s + 3,
                    "the hung partner's request to time out",
                )

    b = base(fast_url)
    assert fast.delivered(b + f"/ZZ/HUB/{loc1}") == [
        ("PUT", f"{b}/ZZ/HUB/{loc1}"),
        ("PATCH", f"{b}/ZZ/HUB/{loc1}/E1"),
        ("PUT", f"{b}/ZZ/HUB/{loc1}/E1/1"),
        ("PATCH", f"{b}/ZZ/HUB/{loc1}"),
    ]
    assert fast.delivered(b + f"/ZZ/HUB/{loc2}") == [
        ("PUT", f"{b}/ZZ/HUB/{loc2}"),
        ("PATCH", f"{b}/ZZ/HUB/{loc2}/E9/2"),
    ]
    assert not [r for r in fast.requests + hung.requests if "/NL/ABC/" in r.path]
    # The hung partner's requests time out after 2 s and are retried; the
    # other partner does not wait for them.
    assert fast_took < settings.outbound_timeout_s, fast_took
    assert not hung.delivered("/")

    mine = [r for r in fast.requests if loc1 in r.path]
    assert [r.headers["x-correlation-id"] for r in mine] == [
        c.correlation_id
        for c in changes
        if c.aggregate_key == location_key("ZZ", "HUB", loc1)
        and not isinstance(c, EvseStatusReported)
    ]
    for r in mine:
        assert (
            r.headers["authorization"] == "Token " + base64.b64encode(token_fast.encode()).decode()
        )
        assert r.headers["ocpi-from-country-code"] == "ZZ"
        assert r.headers["ocpi-from-party-id"] == "HUB"
        assert r.headers["ocpi-to-country-code"] == "NL"
        assert r.headers["ocpi-to-party-id"] == f"F{suffix}"[-3:]
        assert r.headers["content-type"] == "application/json"
        assert uuid.UUID(r.headers["x-request-id"])
    assert len({r.headers["x-request-id"] for r in fast.requests}) == len(fast.requests)
    assert mine[3].body["name"] is None  # an explicit null is forwarded: it clears the field

    assert any(e["event"] == "push_delivered" for e in logs)
    assert any(e["event"] == "push_retry" and e["error"] for e in logs)
    for token in (token_fast, token_hung):
        assert token not in repr(logs)
        assert base64.b64encode(token.encode()).decode() not in repr(logs)


async def test_a_failing_partner_gets_every_change_in_order_after_retries(
    namespace: Namespace,
) -> None:
    settings = push_settings(namespace)
    suffix = uuid.uuid4().hex[:6].upper()

    async def flaky(n: int, path: str) -> tuple[int, int | None]:
        if n == 1:
            return 503, None
        if n == 2:
            return 200, 3000  # OCPI server error in an HTTP 200
        if n == 3:
            return 429, None
        if "REJECT" in path:
            return 200, 2001  # our request is wrong: do not repeat, go on
        return 200, 1000

    receiver = Receiver(flaky)
    loc = f"L-{suffix}"
    ours = Events(loc)
    changes = [
        ours.put(),
        ours.patch("E1"),
        ours.put("REJECT"),
        ours.patch("E1", "1"),
        ours.patch(),
    ]
    with structlog.testing.capture_logs() as logs:
        async with serving(receiver) as url:
            partners = FakePartners([partner(f"NL-R{suffix}", url, "tok-flaky")])
            async with pushing(settings, partners) as pusher:
                await lanes_ready(pusher, f"NL-R{suffix}")
                await append(settings, changes)
                await until(
                    lambda: (
                        len(receiver.requests) == 3 + len(changes)
                        and receiver.requests[-1].answered != 0
                    ),
                    15,
                    "every change to be answered",
                )
                await asyncio.sleep(0.3)  # nothing more should come

    b = base(url, "ZZ", "HUB", loc)
    assert [(r.method, r.path, r.answered, r.ocpi) for r in receiver.requests] == [
        ("PUT", b, 503, None),
        ("PUT", b, 200, 3000),
        ("PUT", b, 429, None),
        ("PUT", b, 200, 1000),
        ("PATCH", f"{b}/E1", 200, 1000),
        ("PUT", f"{b}/REJECT", 200, 2001),
        ("PATCH", f"{b}/E1/1", 200, 1000),
        ("PATCH", b, 200, 1000),
    ]
    # Each retry is a new request (new X-Request-ID) of the same change.
    first = receiver.requests[:4]
    assert len({r.headers["x-request-id"] for r in first}) == 4
    assert len({r.headers["x-correlation-id"] for r in first}) == 1
    retries = [e for e in logs if e["event"] == "push_retry"]
    assert [e["delay_s"] for e in retries] == [0.05, 0.1, 0.2]
    assert [e["event"] for e in logs if e["event"] == "push_rejected"] == ["push_rejected"]


async def test_nothing_is_lost_across_a_restart_and_an_unregistered_partner_gets_nothing(
    namespace: Namespace,
) -> None:
    settings = push_settings(namespace)
    suffix = uuid.uuid4().hex[:6].upper()
    receiver = Receiver(ok)
    loc = f"L-{suffix}"
    ours = Events(loc)
    before_partner, while_up, while_down, after_unregister = (
        ours.put(),
        ours.patch(),
        ours.put("E1"),
        ours.patch("E1"),
    )
    async with serving(receiver) as url:
        pid = f"NL-D{suffix}"
        partners = FakePartners([partner(pid, url, "tok-d")])
        b = base(url, "ZZ", "HUB", loc)
        # Recorded before the partner appears: it gets that with a GET, not a push.
        await append(settings, [before_partner])

        async with pushing(settings, partners) as pusher:
            await lanes_ready(pusher, pid)
            await append(settings, [while_up])
            await until(lambda: len(receiver.delivered(b)) == 1, 10, "the first push")

        await append(settings, [while_down])  # no pusher runs now

        async with pushing(settings, partners) as pusher:
            await until(lambda: len(receiver.delivered(b)) == 2, 15, "the change made while down")
            partners.partners = []  # the partner unregisters
            await until(lambda: pid not in pusher.lanes, 5, "the lane to stop")
            await append(settings, [after_unregister])
            await asyncio.sleep(1.0)

    assert receiver.delivered(b) == [("PATCH", b), ("PUT", f"{b}/E1")]


async def test_a_new_partner_gets_every_change_recorded_from_its_registration_on(
    namespace: Namespace,
) -> None:
    """The pusher sees a new partner only at its next refresh; the changes
    recorded between the registration and the lane's start still reach it,
    and those recorded before the registration do not (the partner pulls
    them). A partner that registers again resumes at its new registration."""
    settings = push_settings(namespace).model_copy(update={"push_start_margin_s": 0.0})
    suffix = uuid.uuid4().hex[:6].upper()
    receiver = Receiver(ok)
    loc = f"L-{suffix}"
    ours = Events(loc)
    before, just_after, later = ours.put(), ours.put("E1"), ours.patch("E1")
    while_unregistered, after_again = ours.patch(), ours.put("E2")
    await ensure_topics(settings.kafka_bootstrap, settings.topic_prefix, 1)
    async with serving(receiver) as url:
        pid = f"NL-N{suffix}"
        b = base(url, "ZZ", "HUB", loc)
        await append(settings, [before])
        await asyncio.sleep(0.05)  # record times are in milliseconds
        registered = datetime.now(UTC)
        await append(settings, [just_after])  # no lane exists yet
        partners = FakePartners([partner(pid, url, "tok-n", registered)])
        async with pushing(settings, partners) as pusher:
            await lanes_ready(pusher, pid)
            await append(settings, [later])
            await until(lambda: len(receiver.delivered(b)) == 2, 10, "both changes")
            partners.partners = []  # unregistered
            await until(lambda: pid not in pusher.lanes, 5, "the lane to stop")
            await append(settings, [while_unregistered])
            await asyncio.sleep(0.05)
            again = datetime.now(UTC)
            await append(settings, [after_again])
            partners.partners = [partner(pid, url, "tok-n2", again)]
            await until(lambda: len(receiver.delivered(b)) == 3, 10, "the change after it")
            await asyncio.sleep(0.5)  # nothing more should come

    assert receiver.delivered(b) == [("PUT", f"{b}/E1"), ("PATCH", f"{b}/E1"), ("PUT", f"{b}/E2")]
