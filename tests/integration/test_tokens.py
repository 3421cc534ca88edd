"""Tokens adapters against the real services: the MongoDB tokens view (fold,
position guard, keyset pages, whitelist lookup) and the real-time decision
cache in Redis (the same contract as the in-memory fake, plus expiry)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database

from api.consistency import holds, written
from ocpi_hub.bootstrap import async_mongo_client, mysql_engine
from ocpi_hub.bootstrap import views as bootstrap_views
from ocpi_hub.settings import Settings
from producers import tokens
from producers.authorization import (
    Decision,
    DecisionCache,
    DecisionSource,
    HttpRealTimeAuthorizer,
    InMemoryDecisionCache,
    RedisDecisionCache,
)
from producers.decision_store import RedisDecisionStore
from producers.log import KafkaEventLog, KafkaLogHistory, ensure_topics
from producers.tokens import (
    Origin,
    TokenState,
    authorize,
    decide_authorization,
    plan_patch,
    plan_policy,
    plan_put,
)
from producers.write_path import WritePath
from projections.mongo.folding import Doc
from projections.mongo.tokens import COLLECTION, TokenViewQuery, TokenViewWriter
from projections.position import Record
from projections.runner import replay
from schemas.events import Party
from schemas.events.tokens import TokenPolicy, TokenRef
from schemas.ocpi.common import parse_ocpi_datetime
from schemas.ocpi.tokens import AllowedType
from schemas.ocpi.types import TokenType
from schemas.topics import TOKENS
from tests.conftest import fresh_namespace
from tests.services import Namespace
from tests.token_objects import token

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ORIGIN = Origin(Party(country_code="NL", party_id="ABD"), "corr")


@pytest.fixture(scope="module")
def db(namespace: Namespace) -> Iterator[Database[Doc]]:
    with MongoClient(namespace.settings.mongo_url, tz_aware=True) as client:
        database: Database[Doc] = client[f"{namespace.name}_tokview"]
        TokenViewWriter(database).prepare()
        yield database
        client.drop_database(database.name)


@pytest.fixture(autouse=True)
def empty(db: Database[Doc]) -> None:
    TokenViewWriter(db).wipe()  # the documents and their counts


def _ref(uid: str, cc: str = "NL", pid: str = "ABD", t: str = "RFID") -> TokenRef:
    return TokenRef(country_code=cc, party_id=pid, uid=uid, type=TokenType(t))


def _put(offset: int, uid: str, partition: int = 0, **kw: Any) -> Record[Any]:
    cc, pid = kw.get("country_code", "NL"), kw.get("party_id", "ABD")
    event = plan_put(
        _ref(uid, cc, pid, kw.get("type", "RFID")), token(uid, **kw), None, ORIGIN, NOW
    )
    return Record("ocpi.tokens.v1", partition, offset, event.event)


async def test_written_once_redelivery_and_stale_writes_change_nothing(
    aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]
) -> None:
    writer = TokenViewWriter(db)
    query = TokenViewQuery(aio_mongo[db.name])
    ref = _ref("04a1b2c3")
    held = (await query.read(ref.key))[0]
    assert held is None
    batch = [_put(1, "04A1B2C3"), _put(2, "04A1B2C3", type="APP_USER")]
    assert writer.apply(batch) == 2
    before = list(db[COLLECTION].find().sort("_id"))
    assert writer.apply(batch) == 0  # at-least-once: the same batch again
    assert list(db[COLLECTION].find().sort("_id")) == before

    state, positions = await query.read(ref.key)
    assert state is not None and state.token == token("04A1B2C3")
    assert positions == {"ocpi_tokens_v1@0": 1}
    invalidate = plan_patch(
        ref, {"valid": False, "last_updated": "2026-03-02T00:00:00Z"}, state, ORIGIN, NOW
    ).event
    older = plan_put(ref, token("04A1B2C3", at="2026-02-01T00:00:00Z"), state, ORIGIN, NOW).event
    policy = plan_policy(ref, {"state": "NO_CREDIT"}, state, ORIGIN, NOW).event
    writer.apply(
        [
            Record("ocpi.tokens.v1", 0, 3, invalidate),
            Record("ocpi.tokens.v1", 0, 4, older),
            Record("ocpi.tokens.v1", 0, 5, policy),
        ]
    )
    state, positions = await query.read(ref.key)
    assert state is not None and state.token is not None
    assert state.token["valid"] is False  # the older PUT was recorded, not applied
    assert state.policy == TokenPolicy(state=AllowedType.NO_CREDIT)
    assert positions == {"ocpi_tokens_v1@0": 5} == await query.positions(ref.key)


async def test_keyset_pages_of_one_party(
    aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]
) -> None:
    writer = TokenViewWriter(db)
    records = [_put(i, f"T{i:02d}", at=f"2026-03-01T09:{i // 2:02d}:00Z") for i in range(9)] + [
        _put(20, "THEIRS", party_id="XYZ")
    ]
    writer.apply(records)
    query = TokenViewQuery(aio_mongo[db.name])
    seen: list[str] = []
    after = None
    while True:
        page = await query.page(country_code="nl", party_id="abd", after=after, limit=4)
        assert page.total == 9
        seen += [t["uid"] for t in page.items]
        if len(page.items) < 4:
            break
        after = page.last
    assert seen == [f"T{i:02d}" for i in range(9)]
    assert [
        t["uid"]
        for t in (await query.page(country_code="NL", party_id="ABD", skip=7, limit=4)).items
    ] == [
        "T07",
        "T08",
    ]
    window = await query.page(
        country_code="NL",
        party_id="ABD",
        date_from=parse_ocpi_datetime("2026-03-01T09:01:00Z"),
        date_to=parse_ocpi_datetime("2026-03-01T09:03:00Z"),
        limit=10,
    )
    assert [t["uid"] for t in window.items] == ["T02", "T03", "T04", "T05"]


async def test_the_holders_of_a_presented_uid_are_found_in_any_party(
    aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]
) -> None:
    TokenViewWriter(db).apply(
        [
            _put(1, "CARD1"),
            _put(2, "CARD1", country_code="ZZ", party_id="HUB", at="2026-03-03T00:00:00Z"),
            _put(3, "CARD1", type="APP_USER"),
            _put(4, "CARD1", party_id="XYZ", at="2026-03-02T00:00:00Z"),
        ]
    )
    query = TokenViewQuery(aio_mongo[db.name])
    found = await query.holders("card1", "RFID", exclude_party=("zz", "hub"))
    assert found == ["NL/XYZ/CARD1/RFID", "NL/ABD/CARD1/RFID"]  # newest first
    assert len(await query.holders("CARD1", "RFID")) == 3
    assert await query.holders("CARD2", "RFID") == []


# --- the decision cache: one contract, the fake and Redis --------------------------


@pytest.fixture(params=["memory", "redis"])
async def cache(
    request: pytest.FixtureRequest, namespace: Namespace
) -> AsyncIterator[DecisionCache]:
    if request.param == "memory":
        yield InMemoryDecisionCache()
        return
    client = aioredis.Redis.from_url(namespace.settings.redis_url)
    try:
        yield RedisDecisionCache(client)
    finally:
        await client.aclose()


DECISION = Decision(
    authorized=True,
    allowed=AllowedType.ALLOWED,
    source=DecisionSource.REAL_TIME,
    token=token(),
    authorization_reference="REF-1",
    partner_id="abd",
)


async def test_the_cache_gives_back_what_was_put(
    cache: DecisionCache, namespace: Namespace
) -> None:
    key = f"{namespace.settings.topic_prefix}authz-test:{uuid.uuid4().hex}"
    assert await cache.get(key) is None
    await cache.put(key, DECISION, 30)
    assert await cache.get(key) == DECISION
    other = DECISION.model_copy(update={"authorization_reference": "REF-2"})
    await cache.put(key, other, 30)
    assert await cache.get(key) == other


async def test_redis_forgets_a_decision_after_its_ttl(namespace: Namespace) -> None:
    client = aioredis.Redis.from_url(namespace.settings.redis_url)
    try:
        cache = RedisDecisionCache(client)
        key = f"{namespace.settings.topic_prefix}authz-test:{uuid.uuid4().hex}"
        await cache.put(key, DECISION, 0.3)
        assert await cache.get(key) == DECISION
        assert 0 < await client.pttl(key) <= 300
        await asyncio.sleep(0.5)
        assert await cache.get(key) is None
    finally:
        await client.aclose()


# --- replay: the tokens view is rebuilt from ocpi.tokens.v1 -------------------------


def test_replay_rebuilds_the_tokens_view(services: Settings) -> None:
    with fresh_namespace(services) as namespace:
        asyncio.run(_replay_tokens(namespace))


async def _replay_tokens(namespace: Namespace) -> None:
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    log = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix)
    await log.start()
    ref = _ref("R1")
    try:
        put = plan_put(ref, token("R1"), None, ORIGIN, NOW)
        state = TokenState(token=token("R1"))
        patch = plan_patch(
            ref, {"valid": False, "last_updated": "2026-03-02T00:00:00Z"}, state, ORIGIN, NOW
        )
        info = authorize(state, None, NOW)
        decided = decide_authorization(ref, info, None, ORIGIN, NOW)
        await log.append([put.event, patch.event, decided])
    finally:
        await log.stop()
    # The decision store rebuilt from the topic holds the token at its last
    # event, the decision; the view must reach that position too, or a read
    # waiting for it (api/consistency.py) would never be answered.
    redis = aioredis.Redis.from_url(s.redis_url)
    try:
        store = RedisDecisionStore(redis, s.topic_prefix)
        path = WritePath(log, store, KafkaLogHistory(s.kafka_bootstrap, s.topic_prefix))
        await path.ensure_ready([tokens.SLICE])
        rebuilt = await path.state(tokens.SLICE, ref.key)
        wanted = await written(path, tokens.SLICE, ref.key)
    finally:
        await redis.aclose()
    assert rebuilt is not None and rebuilt.token is not None and rebuilt.token["valid"] is False
    with MongoClient(s.mongo_url, tz_aware=True) as client:
        views = bootstrap_views(client, s.mongo_db, mysql_engine(s))
        try:
            views.prepare()
            count = await replay(s.kafka_bootstrap, s.topic_prefix, views.writers, batch_size=10)
            assert count == 3
            aio = async_mongo_client(s)  # this test runs its own loop: its own client
            try:
                held, positions = await TokenViewQuery(aio[s.mongo_db]).read(ref.key)
            finally:
                await aio.close()
            assert held == rebuilt
            assert list(positions) == [next(iter(positions))]  # one partition: the key's
            assert holds(positions, TOKENS.name, wanted)
        finally:
            views.mysql.dispose()


# --- the real-time HTTP client: failures of the transport ---------------------------


async def test_a_peer_that_does_not_listen_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        client = HttpRealTimeAuthorizer(timeout_s=2, allow_private_urls=True)
        try:
            answer = await client.authorize(
                f"http://127.0.0.1:{port}/ocpi/emsp/2.2.1/tokens/X/authorize?type=RFID",
                token="secret-token-value",
                headers={"X-Request-ID": "r"},
                location=None,
            )
        finally:
            await client.aclose()
    assert answer.outcome == "unreachable"
    assert answer.detail is not None and "secret-token-value" not in answer.detail


@contextmanager
def emsp_answering(data: dict[str, Any], seen: dict[str, Any]) -> Iterator[str]:
    """An eMSP's authorize endpoint on a real socket that answers ``data``
    in an OCPI envelope and keeps what it was sent in ``seen``; its base URL."""
    import json as jsonlib
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Emsp(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen["path"] = self.path
            seen["authorization"] = self.headers["Authorization"]
            length = int(self.headers.get("Content-Length") or 0)
            seen["body"] = jsonlib.loads(self.rfile.read(length) or b"null")
            answer = {"status_code": 1000, "timestamp": "2026-12-07T00:00:00Z", "data": data}
            raw = jsonlib.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Emsp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


async def test_a_211_emsp_answers_over_http_in_its_shape() -> None:
    """A 2.1.1 eMSP's authorize endpoint over a real socket: our client sends
    the token as is and reads its AuthorizationInfo (no token in it) as ours,
    completed with the token presented."""
    from schemas.ocpi.adapters import wire
    from schemas.ocpi.tokens import LocationReferences
    from tests.token_objects import token as token_object

    seen: dict[str, Any] = {}
    presented = token_object("04A1B2C3", whitelist="NEVER")
    client = HttpRealTimeAuthorizer(timeout_s=5, allow_private_urls=True)
    data = {"allowed": "ALLOWED", "location": {"location_id": "LOC1"}}
    try:
        with emsp_answering(data, seen) as base:
            answer = await client.authorize(
                f"{base}/ocpi/emsp/2.1.1/tokens/04A1B2C3/authorize",
                token="raw-token-211",
                headers={"X-Request-ID": "r"},
                location=LocationReferences(location_id="LOC1"),
                edge=wire("2.1.1"),
                presented=presented,
            )
    finally:
        await client.aclose()
    assert seen["path"] == "/ocpi/emsp/2.1.1/tokens/04A1B2C3/authorize"
    assert seen["authorization"] == "Token raw-token-211"  # 2.1.1: as is
    assert seen["body"] == {"location_id": "LOC1"}
    assert answer.outcome == "decided" and answer.info is not None
    assert answer.info.allowed.value == "ALLOWED"
    assert answer.info.token.uid == "04A1B2C3"


async def test_an_answer_we_fail_to_read_is_unreachable_not_a_crash() -> None:
    """Our reading of an eMSP's answer failing for a reason of ours (as a
    2.3.0 AuthorizationInfo once did, KeyError in its adapter): the eMSP
    counts as unreachable, so the charger gets the offline decision, not an
    error."""
    from schemas.ocpi.wire import Core, Kind

    class Unreadable(Core):
        def object_in(self, kind: Kind, body: Any, **_: Any) -> Any:
            raise KeyError(kind)

    seen: dict[str, Any] = {}
    client = HttpRealTimeAuthorizer(timeout_s=5, allow_private_urls=True)
    data = {"allowed": "ALLOWED", "token": {"uid": "X"}}
    try:
        with emsp_answering(data, seen) as base:
            answer = await client.authorize(
                f"{base}/ocpi/emsp/2.2.1/tokens/X/authorize?type=RFID",
                token="secret-token-value",
                headers={"X-Request-ID": "r"},
                location=None,
                edge=Unreadable(),
            )
    finally:
        await client.aclose()
    assert seen["path"] == "/ocpi/emsp/2.2.1/tokens/X/authorize?type=RFID"
    assert answer.outcome == "unreachable" and answer.info is None
    assert answer.detail == "unreadable (KeyError)"
