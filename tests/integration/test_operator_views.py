"""The operators' views and the audit view (projections/mongo/operators.py,
projections/mongo/audit.py) on the real MongoDB-wire server: folds without
hashes, idempotent re-delivery, and the audit list's filters and keyset
pages as ``GET /ops/audit`` reads them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database

from producers import operators as ops
from producers.write_path import Origin
from projections.mongo.audit import AuditQuery, AuditViewWriter
from projections.mongo.operators import AccountViewWriter, ApiKeyViewWriter
from projections.position import Record
from schemas.events import Actor, EventMeta, Party
from schemas.events.operators import OperatorRole
from tests.services import Namespace

Doc = dict[str, Any]
T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ORIGIN = Origin(Party(country_code="ZZ", party_id="HUB"), "c-1")
ADA = Actor(kind="account", id="ada")
BOT = Actor(kind="api_key", id="k00000000001")


@pytest.fixture
def db(namespace: Namespace) -> Iterator[Database[Doc]]:
    with MongoClient(namespace.settings.mongo_url, tz_aware=True) as client:
        name = f"{namespace.name}_ops{uuid.uuid4().hex[:6]}"
        yield client[name]
        client.drop_database(name)


@pytest.fixture
async def adb(namespace: Namespace, db: Database[Doc]) -> AsyncIterator[Any]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(namespace.settings.mongo_url, tz_aware=True)
    try:
        yield client[db.name]
    finally:
        await client.close()


def _records(topic: str, events: list[EventMeta]) -> list[Record[object]]:
    return [Record(topic, 0, offset, event) for offset, event in enumerate(events)]


def test_the_account_and_key_views_fold_without_hashes(db: Database[Doc]) -> None:
    added = ops.decide_add_account(
        None, login="ada", display_name="Ada", role=OperatorRole.VIEWER,
        password_hash=ops.hash_password("a long enough passphrase"), origin=ORIGIN, now=T0,
    )  # fmt: skip
    disabled = ops.decide_disable(added.answer, login="ada", origin=ORIGIN, now=T0)
    key_id, key = ops.new_api_key()
    made = ops.decide_create_key(
        None, key_id=key_id, name="bot", role=OperatorRole.ADMIN,
        key_hash=ops.hash_api_key(key), origin=ORIGIN, now=T0,
    )  # fmt: skip
    revoked = ops.decide_revoke_key(made.answer, key_id=key_id, origin=ORIGIN, now=T0)
    accounts, keys = AccountViewWriter(db), ApiKeyViewWriter(db)
    account_records = _records("ocpi-hub.operator-accounts.v1", [*added.events, *disabled.events])
    key_records = _records("ocpi-hub.api-keys.v1", [*made.events, *revoked.events])
    for _ in range(2):  # re-delivered: the same documents
        accounts.apply(account_records)
        keys.apply(key_records)
    ada = db["operator_accounts"].find_one({"_id": "ada"})
    assert ada is not None and ada["disabled"] is True and ada["role"] == "viewer"
    assert "password_hash" not in ada
    doc = db["api_keys"].find_one({"_id": key_id})
    assert doc is not None and doc["revoked"] is True and "key_hash" not in doc


async def test_the_audit_lists_operators_writes_filtered_and_paged(
    db: Database[Doc], adb: Any
) -> None:
    events: list[EventMeta] = []
    for n in range(5):
        _, key = ops.new_api_key()
        decision = ops.decide_create_key(
            None, key_id=f"k{n:011d}", name=f"key {n}", role=OperatorRole.VIEWER,
            key_hash=ops.hash_api_key(key), origin=ORIGIN, now=T0 + timedelta(minutes=n),
        )  # fmt: skip
        [event] = decision.events
        actor = ADA if n % 2 == 0 else BOT
        events.append(event.model_copy(update={"actor": actor}))
    # One event no operator asked for: not in the audit.
    _, key = ops.new_api_key()
    events += ops.decide_create_key(
        None, key_id="kxxxxxxxxxxx", name="partner", role=OperatorRole.VIEWER,
        key_hash=ops.hash_api_key(key), origin=ORIGIN, now=T0,
    ).events  # fmt: skip
    writer = AuditViewWriter(db)
    writer.prepare()
    records = _records("ocpi-hub.api-keys.v1", events)
    assert writer.apply(records) == 5
    writer.apply(records)  # re-delivered: the same entries
    assert db["audit"].count_documents({}) == 5

    query = AuditQuery(adb)
    everything = (await query.page()).items
    assert [e["aggregate_key"] for e in everything] == [f"k{n:011d}" for n in (4, 3, 2, 1, 0)]
    assert everything[0]["actor"] == "account:ada" and everything[0]["actor_kind"] == "account"
    ada = (await query.page(actor="account:ada")).items
    assert [e["aggregate_key"] for e in ada] == [f"k{n:011d}" for n in (4, 2, 0)]
    assert (await query.page(event_type="ApiKeyRevoked")).items == []
    assert len((await query.page(topic="ocpi-hub.api-keys.v1")).items) == 5
    window = await query.page(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3))
    assert [e["aggregate_key"] for e in window.items] == [f"k{n:011d}" for n in (2, 1)]
    first = await query.page(limit=2)
    assert first.next_after is not None
    second = await query.page(limit=2, after=first.next_after)
    third = await query.page(limit=2, after=second.next_after)
    assert third.next_after is None
    paged = [e["event_id"] for p in (first, second, third) for e in p.items]
    assert paged == [e["event_id"] for e in everything]
