"""Pull syncs of a partner CPO's sessions and CDRs (producers/pull_sync.py,
docs/adr/0042) on the real Kafka and Redis write path, from a real HTTP
Sender on loopback that pages with ``Link`` headers: every object recorded
as its push would be, a broken object and another party's reported while
the rest is recorded, a second sync recording nothing new, and a partner
failing mid-crawl leaving the pages already recorded in place."""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest
import redis.asyncio as aioredis
import uvicorn

from producers import cdrs, sessions, tokens
from producers.decision_store import RedisDecisionStore
from producers.log import KafkaEventLog, KafkaLogHistory, ensure_topics
from producers.partner_client import PartnerCallError
from producers.partners import PartnerState
from producers.pull_sync import CDRS_PULL, SESSIONS_PULL, sync
from producers.tokens import PutToken
from producers.write_path import Origin, WritePath
from schemas.events import Party
from schemas.events.cdrs import cdr_key
from schemas.events.sessions import session_key
from schemas.events.tokens import TokenRef
from schemas.ocpi.credentials import CredentialsRole, Role
from schemas.ocpi.locations import BusinessDetails
from schemas.ocpi.sessions import Session, to_json
from schemas.ocpi.tariffs import loads_exact
from schemas.ocpi.versions import Endpoint, InterfaceRole
from tests.cdr_objects import completed_session, issued_cdr
from tests.conftest import fresh_namespace
from tests.integration.test_push import until
from tests.services import Namespace
from tests.token_objects import token

US = Party(country_code="NL", party_id="PEE")  # the eMSP: our token RFID-77
NOW = datetime(2026, 6, 3, 9, tzinfo=UTC)
SINCE = datetime(2026, 6, 1, tzinfo=UTC)
UNTIL = datetime(2026, 6, 5, tzinfo=UTC)


@dataclass
class Sender:
    """A CPO's Sender list: ``pages`` served in turn, each with a ``Link`` to
    the next; ``fail_at`` (0-based page) answers HTTP 500 instead."""

    module: str
    pages: list[list[Any]]
    fail_at: int | None = None
    queries: list[dict[str, list[str]]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    base: str = ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        query = parse_qs(scope["query_string"].decode())
        self.queries.append(query)
        self.paths.append(scope["path"])
        page = int(query.get("page", ["0"])[0])
        headers = [(b"content-type", b"application/json")]
        if page == self.fail_at:
            status, body = 500, {"status_code": 3000, "timestamp": "2026-06-03T09:00:00Z"}
        else:
            status = 200
            body = {
                "status_code": 1000,
                "data": self.pages[page],
                "timestamp": "2026-06-03T09:00:00Z",
            }
            headers.append((b"x-total-count", str(sum(map(len, self.pages))).encode()))
            if page + 1 < len(self.pages):
                # The next link carries the filters itself (transport_and_format).
                dates = "&".join(f"{k}={v[0]}" for k, v in query.items() if k.startswith("date"))
                headers.append(
                    (b"link", f'<{self.base}?page={page + 1}&{dates}>; rel="next"'.encode())
                )
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(body, default=float).encode()})


@asynccontextmanager
async def serving(sender: Sender) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(sender, lifespan="off", log_level="warning", timeout_graceful_shutdown=1)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await until(lambda: server.started, 10, "the sender to listen")
    sender.base = f"http://127.0.0.1:{sock.getsockname()[1]}/ocpi/cpo/2.2.1/{sender.module}"
    try:
        yield sender.base
    finally:
        server.should_exit = True
        await task
        sock.close()


def cpo(url: str, module: str) -> PartnerState:
    return PartnerState(
        partner_id="ZZ-HUB",
        status="registered",
        endpoints=(Endpoint(identifier=module, role=InterfaceRole.SENDER, url=url),),
        roles=(
            CredentialsRole(
                role=Role.CPO,
                business_details=BusinessDetails(name="Hub CPO"),
                country_code="ZZ",
                party_id="HUB",
            ),
        ),
        our_token_encrypted="unused",
    )


@pytest.fixture(scope="module")
def namespace(services: Any) -> Iterator[Namespace]:
    with fresh_namespace(services) as ns:
        yield ns


@asynccontextmanager
async def write_path(namespace: Namespace) -> AsyncIterator[WritePath]:
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    log = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix)
    await log.start()
    client = aioredis.Redis.from_url(s.redis_url)
    try:
        path = WritePath(
            log,
            RedisDecisionStore(client, s.topic_prefix),
            KafkaLogHistory(s.kafka_bootstrap, s.topic_prefix),
        )
        from producers import locations, tariffs

        await path.ensure_ready(
            [tokens.SLICE, sessions.SLICE, cdrs.SLICE, tariffs.SLICE, locations.SLICE]
        )
        # Our token, which the partner's sessions and CDRs bill.
        ref = TokenRef(country_code="NL", party_id="PEE", uid="RFID-77", type="RFID")
        body = token("RFID-77", country_code="NL", party_id="PEE")
        await path.write(
            tokens.SLICE,
            ref.key,
            lambda st: tokens.decide(st, PutToken(ref, body, Origin(US, "c-token")), NOW),
        )
        yield path
    finally:
        await log.stop()
        await client.aclose()


def their_session(session_id: str, **changes: Any) -> dict[str, Any]:
    return {**completed_session(session_id), **changes}


async def pull(path: WritePath, module: Any, url: str, **kw: Any) -> Any:
    return await sync(
        module,
        cpo(url, module.identifier),
        "token-b",
        path,
        us=US,
        clock=lambda: NOW,
        since=SINCE,
        until=UNTIL,
        allow_private_urls=True,  # the partner here listens on loopback
        **kw,
    )


async def test_sessions_are_pulled_page_by_page_as_their_pushes_and_a_second_sync_records_nothing(
    namespace: Namespace,
) -> None:
    suffix = uuid.uuid4().hex[:6].upper()
    ids = [f"S{i}-{suffix}" for i in range(5)]
    broken = their_session(f"BAD-{suffix}")
    del broken["kwh"]  # required
    theirs_not = their_session(f"OTH-{suffix}", country_code="XX", party_id="OTH")
    pages = [
        [their_session(ids[0]), broken],
        [their_session(ids[1]), theirs_not, their_session(ids[2])],
        [their_session(ids[3]), their_session(ids[4])],
    ]
    sender = Sender("sessions", pages)
    progress: list[tuple[int, int | None]] = []
    async with write_path(namespace) as path, serving(sender) as url:
        first = await pull(path, SESSIONS_PULL, url, on_page=lambda d, t: progress.append((d, t)))
        held = {i: await path.state(sessions.SLICE, session_key("ZZ", "HUB", i)) for i in ids}
        at = {i: await path.position(sessions.SLICE, session_key("ZZ", "HUB", i)) for i in ids}
        second = await pull(path, SESSIONS_PULL, url)
        again = {i: await path.position(sessions.SLICE, session_key("ZZ", "HUB", i)) for i in ids}
        bad = await path.state(sessions.SLICE, session_key("ZZ", "HUB", f"BAD-{suffix}"))

    assert (first.pages, first.recorded, first.unchanged) == (3, 5, 0)
    assert len(first.skipped) == 2
    assert f"ZZ/HUB/BAD-{suffix}: invalid kwh" in first.skipped, first.skipped  # the field by name
    assert any(f"OTH-{suffix}" in r and "not a party of ZZ-HUB" in r for r in first.skipped)
    assert progress == [(2, 7), (5, 7), (7, 7)]
    # What a PUT of each would have recorded (the receiver's own decision).
    for i in ids:
        assert held[i] == to_json(Session.model_validate(their_session(i)))
    assert bad is None
    # The date range went out on the first request; the Link carried it on.
    assert sender.queries[0] == {
        "date_from": ["2026-06-01T00:00:00Z"],
        "date_to": ["2026-06-05T00:00:00Z"],
    }
    assert all("date_from" in q for q in sender.queries)
    # Idempotent: the same range again records nothing for unchanged sessions.
    assert (second.pages, second.recorded, second.unchanged, len(second.skipped)) == (3, 0, 5, 2)
    assert again == at


async def test_a_session_of_a_token_we_never_issued_is_reported_and_a_changed_one_recorded(
    namespace: Namespace,
) -> None:
    suffix = uuid.uuid4().hex[:6].upper()
    sid = f"SC-{suffix}"
    stranger = their_session(f"ST-{suffix}")
    stranger["cdr_token"] = {**stranger["cdr_token"], "uid": "NEVER-ISSUED"}
    sender = Sender("sessions", [[their_session(sid, status="ACTIVE"), stranger]])
    async with write_path(namespace) as path, serving(sender) as url:
        first = await pull(path, SESSIONS_PULL, url)
        sender.pages = [[their_session(sid, kwh=9.5, last_updated="2026-06-02T08:45:00Z")]]
        second = await pull(path, SESSIONS_PULL, url)
        held = await path.state(sessions.SLICE, session_key("ZZ", "HUB", sid))
    assert (first.recorded, second.recorded, second.unchanged) == (1, 1, 0)
    assert any("NEVER-ISSUED" in r for r in first.skipped)
    assert held is not None and held["kwh"] == 9.5


async def test_a_partner_failing_mid_crawl_raises_and_the_pages_before_stay_recorded(
    namespace: Namespace,
) -> None:
    suffix = uuid.uuid4().hex[:6].upper()
    ids = [f"F{i}-{suffix}" for i in range(4)]
    sender = Sender(
        "sessions",
        [[their_session(ids[0]), their_session(ids[1])], [their_session(ids[2])], []],
        fail_at=1,
    )
    async with write_path(namespace) as path, serving(sender) as url:
        with pytest.raises(PartnerCallError, match="HTTP 500"):
            await pull(path, SESSIONS_PULL, url)
        recorded = [await path.state(sessions.SLICE, session_key("ZZ", "HUB", i)) for i in ids]
    assert [r is not None for r in recorded] == [True, True, False, False]


async def test_cdrs_are_pulled_reconciled_and_never_recorded_twice(namespace: Namespace) -> None:
    suffix = uuid.uuid4().hex[:6].upper()

    def their_cdr(n: int) -> dict[str, Any]:
        cdr = copy.deepcopy(
            issued_cdr(NOW, session=completed_session(f"CS{n}-{suffix}")).payload.cdr
        )
        cdr["id"] = f"CDR{n}-{suffix}"
        # Exact numbers, as a CPO's JSON would carry them.
        return dict(loads_exact(json.dumps(cdr, default=float)))

    wrong_token = their_cdr(9)
    wrong_token["cdr_token"] = {**wrong_token["cdr_token"], "party_id": "OTH"}
    sender = Sender("cdrs", [[their_cdr(0), their_cdr(1)], [wrong_token, their_cdr(2)]])
    async with write_path(namespace) as path, serving(sender) as url:
        first = await pull(path, CDRS_PULL, url)
        second = await pull(path, CDRS_PULL, url)
        held = [
            await path.state(cdrs.SLICE, cdr_key("ZZ", "HUB", f"CDR{n}-{suffix}")) for n in range(3)
        ]
    assert (first.pages, first.recorded, first.unchanged) == (2, 3, 0), first.skipped
    assert [r for r in first.skipped if f"CDR9-{suffix}" in r and "not to us" in r]
    # Received and reconciled, as a POST to our receiver records it.
    assert all(h is not None and h.role == "received" and h.reconciled for h in held)
    assert (second.recorded, second.unchanged, len(second.skipped)) == (0, 3, 1)
