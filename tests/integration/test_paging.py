"""Keyset pages read in ``_ts`` windows (projections/mongo/paging.py) against
the real document store: whatever the spread of the stamps (dense bursts,
years of nothing, equal stamps, before 1970), a crawl along the cursor sees
exactly the matching documents in ``(_ts, _id)`` order, and a plain offset
gives the same pages."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import ASCENDING, AsyncMongoClient, MongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.collection import Collection

from projections.mongo.folding import Doc
from projections.mongo.paging import keyset_page
from schemas.ocpi.common import sort_stamp
from tests.services import Namespace

BASE = datetime(2001, 5, 7, 23, tzinfo=UTC)


@pytest.fixture(scope="module")
def coll(namespace: Namespace) -> Iterator[Collection[Doc]]:
    with MongoClient(namespace.settings.mongo_url, tz_aware=True) as client:
        db = client[f"{namespace.name}_paging"]
        c: Collection[Doc] = db["items"]
        c.create_index([("owner", ASCENDING), ("_ts", ASCENDING), ("_id", ASCENDING)])
        yield c
        client.drop_database(db.name)


def stamps(rng: random.Random, n: int) -> list[datetime]:
    """Bursts a millisecond apart, lone ones years apart, repeats, and a
    few before 1970."""
    out: list[datetime] = []
    at = BASE
    while len(out) < n:
        kind = rng.random()
        if kind < 0.4:
            out += [at + timedelta(milliseconds=k) for k in range(rng.randint(5, 40))]
            at += timedelta(seconds=rng.randint(1, 5))
        elif kind < 0.6:
            at += timedelta(days=rng.randint(30, 1500))
            out.append(at)
        elif kind < 0.8 and out:
            out += [rng.choice(out)] * rng.randint(2, 6)  # equal stamps: ordered by _id
        elif kind < 0.85:
            out.append(datetime(1960, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 3000)))
        else:
            at += timedelta(minutes=rng.randint(1, 300))
            out.append(at)
    return out[:n]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_a_crawl_sees_every_match_once_in_order(
    coll: Collection[Doc], aio_mongo: AsyncMongoClient[Doc], seed: int
) -> None:
    # Written on a sync client (as the projections do), paged on the async
    # one (as the API does).
    pages_of: AsyncCollection[Doc] = aio_mongo[coll.database.name][coll.name]
    rng = random.Random(seed)
    coll.delete_many({})
    docs = [
        {
            "_id": f"K{i:04d}-{rng.randrange(1000):03d}",
            "owner": rng.choice(["A", "B"]),
            "_ts": sort_stamp(at),
            "item": {"n": i},
        }
        for i, at in enumerate(stamps(rng, 400))
    ]
    docs.append({"_id": "UNSERVED", "owner": "A", "_ts": None, "item": None})
    coll.insert_many(docs)
    for _ in range(6):
        lower = rng.choice([None, BASE + timedelta(seconds=rng.randint(-(10**8), 10**8))])
        upper = rng.choice([None, BASE + timedelta(seconds=rng.randint(0, 10**9))])
        limit = rng.randint(1, 60)
        expected = sorted(
            (d for d in docs
             if d["owner"] == "A" and d["_ts"] is not None
             and (lower is None or d["_ts"] >= sort_stamp(lower))
             and (upper is None or d["_ts"] < sort_stamp(upper))),
            key=lambda d: (d["_ts"], d["_id"]),
        )  # fmt: skip
        seen: list[Doc] = []
        after = None
        pages = 0
        while True:
            page = await keyset_page(
                pages_of, "item", {"owner": "A"}, date_from=lower, date_to=upper,
                after=after, skip=0, limit=limit,
            )  # fmt: skip
            assert page.total == len(expected)
            if not page.items:
                break
            assert len(page.items) == limit or len(seen) + len(page.items) == len(expected)
            seen += page.items
            after = page.last
            pages += 1
            assert pages <= len(expected) + 1
        assert seen == [d["item"] for d in expected]
        # A client that counts offsets itself gets the same pages.
        for offset in range(0, len(expected), limit):
            by_offset = await keyset_page(
                pages_of, "item", {"owner": "A"}, date_from=lower, date_to=upper,
                after=None, skip=offset, limit=limit,
            )  # fmt: skip
            assert by_offset.items == seen[offset : offset + limit]
